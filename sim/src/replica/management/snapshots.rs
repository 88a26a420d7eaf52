//! Canister snapshots (IC interface specification, "IC method take_canister_snapshot",
//! "IC method load_canister_snapshot", "IC method list_canister_snapshots", "IC method
//! delete_canister_snapshot").
//!
//! A snapshot belongs to its canister and lives in its subnet's state; it is gone when the
//! canister is deleted. Its id is the owner's canister id followed by the owner's snapshot counter
//! (big-endian u64), so the owner follows from the id alone (the spec only calls it an opaque blob).

use super::{change_origin, decode, empty_reply, encode, Answer, ManagementCall};
use crate::exec::{CanisterInstance, CompiledModule, GlobalType, InstanceSnapshot, PagedMemory};
use crate::replica::errors;
use crate::replica::state::{CanisterSnapshot, SnapshotContent, UploadedSnapshot};
use crate::replica::Sim;
use crate::types::{limits, CanisterRunStatus, Principal, Reject};
use candid::{CandidType, Reserved};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterTimer, ChangeDetails, ChunkHash, DeleteCanisterSnapshotArgs,
    LoadCanisterSnapshotArgs, LoadSnapshotRecord, OnLowWasmMemoryHookStatus,
    ReadCanisterSnapshotDataArgs, ReadCanisterSnapshotDataResult, ReadCanisterSnapshotMetadataArgs,
    Snapshot, SnapshotDataKind, SnapshotDataOffset, SnapshotMetadataGlobal, SnapshotSource,
    SnapshotVisibility, TakeCanisterSnapshotArgs, UploadCanisterSnapshotDataArgs,
    UploadCanisterSnapshotMetadataArgs, UploadCanisterSnapshotMetadataResult,
};

fn snapshot_id(owner: Principal, index: u64) -> Vec<u8> {
    let mut id = owner.as_slice().to_vec();
    id.extend_from_slice(&index.to_be_bytes());
    id
}

/// The owner and index an id names, if it is one `snapshot_id` could have made.
fn parse_snapshot_id(id: &[u8]) -> Option<(Principal, u64)> {
    let split = id.len().checked_sub(8)?;
    let owner = Principal::try_from_slice(&id[..split]).ok()?;
    let index = u64::from_be_bytes(id[split..].try_into().ok()?);
    Some((owner, index))
}

impl Sim {
    /// The snapshot `id` as seen from `canister`'s subnet: its owner and index. A snapshot of a
    /// canister on another subnet is not in this subnet's state, so it is not found either.
    fn find_snapshot(&self, canister: Principal, id: &[u8]) -> Result<(Principal, u64), Reject> {
        let subnet = self.canisters[&canister].subnet;
        parse_snapshot_id(id)
            .filter(|(owner, index)| {
                self.canisters
                    .get(owner)
                    .is_some_and(|o| o.subnet == subnet && o.snapshots.contains_key(index))
            })
            .ok_or_else(|| errors::snapshot_not_found(canister, id))
    }

    /// The index of snapshot `id`, which must belong to `canister` (replica `get_snapshot`).
    fn owned_snapshot(&self, canister: Principal, id: &[u8]) -> Result<u64, Reject> {
        let (owner, index) = self.find_snapshot(canister, id)?;
        if owner == canister {
            Ok(index)
        } else {
            Err(errors::snapshot_invalid_ownership(canister, id))
        }
    }

    /// `SimConfig::snapshots_require_stopped`: take and load only on a stopped canister.
    fn check_snapshot_mode(&self, canister: Principal) -> Result<(), Reject> {
        let stopped = self.canisters[&canister].status == CanisterRunStatus::Stopped;
        if self.config.snapshots_require_stopped && !stopped {
            return Err(errors::snapshot_requires_stopped(canister));
        }
        Ok(())
    }
}

/// Takes a snapshot; with `replace_snapshot` the named one is deleted once the new one exists;
/// with `uninstall_code = opt true` the code is uninstalled afterwards.
pub(super) fn take_canister_snapshot(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: TakeCanisterSnapshotArgs = decode(call)?;
    let canister = args.canister_id;
    sim.controlled_canister(canister, call.caller)?;
    sim.check_snapshot_mode(canister)?;
    let replaced = match &args.replace_snapshot {
        Some(id) => Some(sim.owned_snapshot(canister, id)?),
        None if sim.canisters[&canister].snapshots.len() >= limits::MAX_SNAPSHOTS_PER_CANISTER => {
            return Err(errors::snapshot_limit_reached(
                canister,
                limits::MAX_SNAPSHOTS_PER_CANISTER,
            ))
        }
        None => None,
    };
    let time = sim.time_nanos;
    let state = sim.canister_mut(canister)?;
    let instance = state
        .instance
        .as_ref()
        .ok_or_else(|| errors::snapshot_of_empty_canister(canister))?;
    let snapshot = CanisterSnapshot {
        content: SnapshotContent::Taken(instance.snapshot()),
        certified_data: state.certified_data.clone(),
        chunk_store: state.chunk_store.clone(),
        taken_at_nanos: time,
        canister_version: state.version,
    };
    let total_size = snapshot.total_size();
    if let Some(index) = replaced {
        state.snapshots.remove(&index);
    }
    let index = state.next_snapshot_index;
    state.next_snapshot_index += 1;
    state.snapshots.insert(index, snapshot);
    if args.uninstall_code == Some(true) {
        let origin = change_origin(call, args.sender_canister_version);
        sim.uninstall(canister, origin);
    }
    Ok(Answer::Now(encode(&Snapshot {
        id: snapshot_id(canister, index),
        taken_at_timestamp: time,
        total_size,
    })))
}

/// Restores module, heap, globals, stable memory, certified data and chunk store from a snapshot
/// of this canister or of another canister on the same subnet; the global timer and the call
/// contexts stay as they are (as the replica does for snapshots it took).
pub(super) fn load_canister_snapshot(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: LoadCanisterSnapshotArgs = decode(call)?;
    let target = args.canister_id;
    sim.controlled_canister(target, call.caller)?;
    sim.check_snapshot_mode(target)?;
    let (owner, index) = sim.find_snapshot(target, &args.snapshot_id)?;
    let owner_state = &sim.canisters[&owner];
    if owner != target && !owner_state.is_controller(&call.caller) {
        return Err(errors::snapshot_not_controller(
            target,
            &args.snapshot_id,
            call.caller,
        ));
    }
    let snapshot = &owner_state.snapshots[&index];
    let (instance, source) = match &snapshot.content {
        SnapshotContent::Taken(taken) => (
            CanisterInstance::from_snapshot(taken),
            SnapshotSource::TakenFromCanister(Reserved),
        ),
        SnapshotContent::Uploaded(uploaded) => (
            uploaded_instance(uploaded),
            SnapshotSource::MetadataUpload(Reserved),
        ),
    };
    let instance = instance
        .map_err(|reason| errors::snapshot_not_loadable(target, &args.snapshot_id, &reason))?;
    let certified_data = snapshot.certified_data.clone();
    let chunk_store = snapshot.chunk_store.clone();
    let record = LoadSnapshotRecord {
        from_canister_id: (owner != target).then_some(owner),
        snapshot_id: args.snapshot_id,
        canister_version: snapshot.canister_version,
        taken_at_timestamp: snapshot.taken_at_nanos,
        source,
    };
    let origin = change_origin(call, args.sender_canister_version);
    let time = sim.time_nanos;
    // The snapshot's module may export a heartbeat.
    sim.note_may_have_work(target);
    let state = sim.canister_mut(target)?;
    state.instance = Some(instance);
    state.certified_data = certified_data;
    state.chunk_store = chunk_store;
    state.version += 1;
    state.history.push(
        time,
        state.version,
        origin,
        ChangeDetails::LoadSnapshot(record),
    );
    Ok(empty_reply())
}

/// Controllers and, by `snapshot_visibility`, other viewers may list a canister's snapshots.
pub(super) fn list_canister_snapshots(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: CanisterIdRecord = decode(call)?;
    let canister = args.canister_id;
    let state = sim
        .canisters
        .get(&canister)
        .ok_or_else(|| errors::canister_not_found(canister))?;
    let viewer = match &state.settings.snapshot_visibility {
        SnapshotVisibility::Public => true,
        SnapshotVisibility::AllowedViewers(viewers) => viewers.contains(&call.caller),
        SnapshotVisibility::Controllers => false,
    };
    if !(viewer || state.is_controller(&call.caller)) {
        return Err(errors::not_a_controller(
            canister,
            &state.settings.controllers,
            call.caller,
        ));
    }
    let snapshots: Vec<Snapshot> = state
        .snapshots
        .iter()
        .map(|(index, snapshot)| Snapshot {
            id: snapshot_id(canister, *index),
            taken_at_timestamp: snapshot.taken_at_nanos,
            total_size: snapshot.total_size(),
        })
        .collect();
    Ok(Answer::Now(encode(&snapshots)))
}

pub(super) fn delete_canister_snapshot(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: DeleteCanisterSnapshotArgs = decode(call)?;
    let canister = args.canister_id;
    sim.controlled_canister(canister, call.caller)?;
    let index = sim.owned_snapshot(canister, &args.snapshot_id)?;
    sim.canister_mut(canister)?.snapshots.remove(&index);
    Ok(empty_reply())
}

// ---- Snapshot data: download and upload (IC interface specification, "IC method
// read_canister_snapshot_metadata", "read_canister_snapshot_data",
// "upload_canister_snapshot_metadata", "upload_canister_snapshot_data"). ----

/// The most bytes one `read_canister_snapshot_data` returns (replica `MAX_SLICE_SIZE_BYTES`).
const MAX_SLICE_SIZE: u64 = 2_000_000;

/// `read_canister_snapshot_metadata`'s reply as `ic.did` has it: `source` and each global are
/// plain variants (the Rust crate wraps them in `opt`).
#[derive(CandidType)]
struct MetadataReply {
    source: SnapshotSource,
    taken_at_timestamp: u64,
    wasm_module_size: u64,
    globals: Vec<SnapshotMetadataGlobal>,
    wasm_memory_size: u64,
    stable_memory_size: u64,
    wasm_chunk_store: Vec<ChunkHash>,
    canister_version: u64,
    certified_data: serde_bytes::ByteBuf,
    global_timer: Option<CanisterTimer>,
    on_low_wasm_memory_hook_status: Option<OnLowWasmMemoryHookStatus>,
}

fn metadata_global(ty: GlobalType, bits: u64) -> SnapshotMetadataGlobal {
    match ty {
        GlobalType::I32 => SnapshotMetadataGlobal::I32(bits as u32 as i32),
        GlobalType::I64 => SnapshotMetadataGlobal::I64(bits as i64),
        GlobalType::F32 => SnapshotMetadataGlobal::F32(f32::from_bits(bits as u32)),
        GlobalType::F64 => SnapshotMetadataGlobal::F64(f64::from_bits(bits)),
    }
}

fn global_bits(ty: GlobalType, global: &SnapshotMetadataGlobal) -> Option<u64> {
    match (ty, global) {
        (GlobalType::I32, SnapshotMetadataGlobal::I32(v)) => Some(*v as u32 as u64),
        (GlobalType::I64, SnapshotMetadataGlobal::I64(v)) => Some(*v as u64),
        (GlobalType::F32, SnapshotMetadataGlobal::F32(v)) => Some(v.to_bits() as u64),
        (GlobalType::F64, SnapshotMetadataGlobal::F64(v)) => Some(v.to_bits()),
        _ => None,
    }
}

/// `buffer` read as its declared `size` (zeros past what was uploaded).
fn padded(buffer: &[u8], size: u64) -> Vec<u8> {
    let mut out = buffer.to_vec();
    out.resize(size as usize, 0);
    out
}

/// An uploaded snapshot as an instance: its module compiled, its globals matched by type.
fn uploaded_instance(uploaded: &UploadedSnapshot) -> Result<CanisterInstance, String> {
    let module = CompiledModule::compile(&padded(&uploaded.module, uploaded.module_size))?;
    let types = module.mutable_global_types();
    if types.len() != uploaded.globals.len() {
        return Err(format!(
            "the snapshot has {} globals but the module has {} mutable globals",
            uploaded.globals.len(),
            types.len()
        ));
    }
    let globals = types
        .iter()
        .zip(&uploaded.globals)
        .map(|(ty, global)| global_bits(*ty, global))
        .collect::<Option<Vec<u64>>>()
        .ok_or("the snapshot's globals do not have the module's global types")?;
    let paged = |buffer: &[u8], size: u64| {
        let mut memory = PagedMemory::from_bytes(buffer);
        memory.set_len(size);
        memory
    };
    CanisterInstance::from_snapshot(&InstanceSnapshot {
        module,
        wasm_memory: paged(&uploaded.wasm_memory, uploaded.wasm_memory_size),
        globals,
        stable_memory: paged(&uploaded.stable_memory, uploaded.stable_memory_size),
    })
}

impl Sim {
    /// Who may read a snapshot: controllers, and the viewers `snapshot_visibility` names.
    fn check_snapshot_reader(&self, canister: Principal, caller: Principal) -> Result<(), Reject> {
        let state = self
            .canisters
            .get(&canister)
            .ok_or_else(|| errors::canister_not_found(canister))?;
        let viewer = match &state.settings.snapshot_visibility {
            SnapshotVisibility::Public => true,
            SnapshotVisibility::AllowedViewers(viewers) => viewers.contains(&caller),
            SnapshotVisibility::Controllers => false,
        };
        if viewer || state.is_controller(&caller) {
            Ok(())
        } else {
            Err(errors::not_a_controller(
                canister,
                &state.settings.controllers,
                caller,
            ))
        }
    }
}

pub(super) fn read_canister_snapshot_metadata(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: ReadCanisterSnapshotMetadataArgs = decode(call)?;
    let canister = args.canister_id;
    sim.check_snapshot_reader(canister, call.caller)?;
    let index = sim.owned_snapshot(canister, &args.snapshot_id)?;
    let snapshot = &sim.canisters[&canister].snapshots[&index];
    let (source, wasm_module_size, globals, wasm_memory_size, stable_memory_size, global_timer) =
        match &snapshot.content {
            SnapshotContent::Taken(taken) => (
                SnapshotSource::TakenFromCanister(Reserved),
                taken.module.wasm_binary_size() as u64,
                taken
                    .module
                    .mutable_global_types()
                    .iter()
                    .zip(&taken.globals)
                    .map(|(ty, bits)| metadata_global(*ty, *bits))
                    .collect(),
                taken.wasm_memory.len(),
                taken.stable_memory.len(),
                None,
            ),
            SnapshotContent::Uploaded(u) => (
                SnapshotSource::MetadataUpload(Reserved),
                u.module_size,
                u.globals.clone(),
                u.wasm_memory_size,
                u.stable_memory_size,
                u.global_timer.clone(),
            ),
        };
    let reply = MetadataReply {
        source,
        taken_at_timestamp: snapshot.taken_at_nanos,
        wasm_module_size,
        globals,
        wasm_memory_size,
        stable_memory_size,
        wasm_chunk_store: snapshot
            .chunk_store
            .hashes()
            .map(|hash| ChunkHash {
                hash: hash.to_vec(),
            })
            .collect(),
        canister_version: snapshot.canister_version,
        certified_data: serde_bytes::ByteBuf::from(snapshot.certified_data.clone()),
        global_timer,
        on_low_wasm_memory_hook_status: None,
    };
    Ok(Answer::Now(encode(&reply)))
}

/// Snapshot data to read from: a buffer that reads as zeros past its end, or paged memory.
enum Data<'a> {
    Bytes(&'a [u8]),
    Pages(&'a PagedMemory),
}

/// `offset`..`offset + size` of `data` (of declared length `len`), with the replica's checks.
fn slice(data: Data<'_>, len: u64, offset: u64, size: u64) -> Result<Vec<u8>, Reject> {
    if size > MAX_SLICE_SIZE {
        return Err(errors::snapshot_slice_too_large(size, MAX_SLICE_SIZE));
    }
    match offset.checked_add(size) {
        Some(end) if end <= len => {
            let mut out = vec![0; size as usize];
            match data {
                Data::Bytes(data) => {
                    let available = data.len().min(end as usize);
                    if (offset as usize) < available {
                        out[..available - offset as usize]
                            .copy_from_slice(&data[offset as usize..available]);
                    }
                }
                Data::Pages(pages) => pages.read(offset, &mut out),
            }
            Ok(out)
        }
        _ => Err(errors::snapshot_invalid_slice(offset, size)),
    }
}

pub(super) fn read_canister_snapshot_data(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: ReadCanisterSnapshotDataArgs = decode(call)?;
    let canister = args.canister_id;
    sim.check_snapshot_reader(canister, call.caller)?;
    let index = sim.owned_snapshot(canister, &args.snapshot_id)?;
    let snapshot = &sim.canisters[&canister].snapshots[&index];
    let (module, heap, stable): (&[u8], Data<'_>, Data<'_>);
    let (module_len, heap_len, stable_len);
    match &snapshot.content {
        SnapshotContent::Taken(taken) => {
            module = taken.module.wasm_binary();
            heap = Data::Pages(&taken.wasm_memory);
            stable = Data::Pages(&taken.stable_memory);
            (module_len, heap_len, stable_len) = (
                module.len() as u64,
                taken.wasm_memory.len(),
                taken.stable_memory.len(),
            );
        }
        SnapshotContent::Uploaded(u) => {
            module = &u.module;
            heap = Data::Bytes(&u.wasm_memory);
            stable = Data::Bytes(&u.stable_memory);
            (module_len, heap_len, stable_len) =
                (u.module_size, u.wasm_memory_size, u.stable_memory_size);
        }
    }
    let chunk = match args.kind {
        SnapshotDataKind::WasmModule { offset, size } => {
            slice(Data::Bytes(module), module_len, offset, size)?
        }
        SnapshotDataKind::WasmMemory { offset, size } => slice(heap, heap_len, offset, size)?,
        SnapshotDataKind::StableMemory { offset, size } => slice(stable, stable_len, offset, size)?,
        SnapshotDataKind::WasmChunk { hash } => snapshot
            .chunk_store
            .get(&hash)
            .ok_or_else(|| errors::chunk_not_found(canister, &hash))?
            .to_vec(),
    };
    Ok(Answer::Now(encode(&ReadCanisterSnapshotDataResult {
        chunk,
    })))
}

pub(super) fn upload_canister_snapshot_metadata(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: UploadCanisterSnapshotMetadataArgs = decode(call)?;
    let canister = args.canister_id;
    sim.controlled_canister(canister, call.caller)?;
    let replaced = match &args.replace_snapshot {
        Some(id) => Some(sim.owned_snapshot(canister, id)?),
        None if sim.canisters[&canister].snapshots.len() >= limits::MAX_SNAPSHOTS_PER_CANISTER => {
            return Err(errors::snapshot_limit_reached(
                canister,
                limits::MAX_SNAPSHOTS_PER_CANISTER,
            ))
        }
        None => None,
    };
    if args.wasm_module_size > limits::MAX_WASM_MODULE_SIZE as u64 {
        return Err(errors::invalid_management_argument(
            &call.method,
            &format!(
                "wasm_module_size {} exceeds the maximum of {} bytes",
                args.wasm_module_size,
                limits::MAX_WASM_MODULE_SIZE
            ),
        ));
    }
    if args.certified_data.len() > 32 {
        return Err(errors::invalid_management_argument(
            &call.method,
            "certified_data is at most 32 bytes",
        ));
    }
    let time = sim.time_nanos;
    let state = sim.canister_mut(canister)?;
    if let Some(index) = replaced {
        state.snapshots.remove(&index);
    }
    let index = state.next_snapshot_index;
    state.next_snapshot_index += 1;
    let version = state.version;
    state.snapshots.insert(
        index,
        CanisterSnapshot {
            content: SnapshotContent::Uploaded(UploadedSnapshot {
                module: Vec::new(),
                module_size: args.wasm_module_size,
                wasm_memory: Vec::new(),
                wasm_memory_size: args.wasm_memory_size,
                stable_memory: Vec::new(),
                stable_memory_size: args.stable_memory_size,
                globals: args.globals,
                global_timer: args.global_timer,
            }),
            certified_data: args.certified_data,
            chunk_store: Default::default(),
            taken_at_nanos: time,
            canister_version: version,
        },
    );
    Ok(Answer::Now(encode(&UploadCanisterSnapshotMetadataResult {
        snapshot_id: snapshot_id(canister, index),
    })))
}

/// Writes `chunk` at `offset` of `buffer` (declared length `len`).
fn write_at(buffer: &mut Vec<u8>, len: u64, offset: u64, chunk: &[u8]) -> Result<(), Reject> {
    match offset.checked_add(chunk.len() as u64) {
        Some(end) if end <= len => {
            if buffer.len() < end as usize {
                buffer.resize(end as usize, 0);
            }
            buffer[offset as usize..end as usize].copy_from_slice(chunk);
            Ok(())
        }
        _ => Err(errors::snapshot_invalid_slice(offset, chunk.len() as u64)),
    }
}

pub(super) fn upload_canister_snapshot_data(
    sim: &mut Sim,
    call: &mut ManagementCall,
) -> Result<Answer, Reject> {
    let args: UploadCanisterSnapshotDataArgs = decode(call)?;
    let canister = args.canister_id;
    sim.controlled_canister(canister, call.caller)?;
    let index = sim.owned_snapshot(canister, &args.snapshot_id)?;
    let snapshot = sim
        .canister_mut(canister)?
        .snapshots
        .get_mut(&index)
        .expect("owned");
    let SnapshotContent::Uploaded(uploaded) = &mut snapshot.content else {
        return Err(errors::snapshot_immutable());
    };
    match args.kind {
        SnapshotDataOffset::WasmModule { offset } => write_at(
            &mut uploaded.module,
            uploaded.module_size,
            offset,
            &args.chunk,
        )?,
        SnapshotDataOffset::WasmMemory { offset } => write_at(
            &mut uploaded.wasm_memory,
            uploaded.wasm_memory_size,
            offset,
            &args.chunk,
        )?,
        SnapshotDataOffset::StableMemory { offset } => write_at(
            &mut uploaded.stable_memory,
            uploaded.stable_memory_size,
            offset,
            &args.chunk,
        )?,
        SnapshotDataOffset::WasmChunk => {
            snapshot
                .chunk_store
                .insert(args.chunk)
                .map_err(|e| errors::chunk_store_error(&e))?;
        }
    }
    Ok(empty_reply())
}
