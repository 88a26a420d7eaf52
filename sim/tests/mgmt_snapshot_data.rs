//! Snapshot download and upload.
//! Spec: IC interface specification, management canister, "IC method
//! read_canister_snapshot_metadata", "read_canister_snapshot_data",
//! "upload_canister_snapshot_metadata", "upload_canister_snapshot_data" (ic.did types; reads of
//! at most 2,000,000 bytes and within the snapshot, replica `SliceTooLarge` / `InvalidSlice`;
//! only snapshots created by a metadata upload take data, `CanisterSnapshotImmutable`).

mod replica_support;
use candid::Principal;
use ic_management_canister_types::*;
use ic_sim::{RejectCode, Sim};
use replica_support::*;

/// The metadata reply with the `ic.did` types: `source` and `globals` are plain variants.
#[derive(candid::CandidType, serde::Deserialize, Debug)]
struct IcDidMetadata {
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

fn call<A: candid::CandidType>(sim: &mut Sim, method: &str, arg: &A) -> Vec<u8> {
    management_ingress(sim, user(), method, arg).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn stop(sim: &mut Sim, canister: Principal) {
    call(sim, "stop_canister", &id_record(canister));
}

fn read(
    sim: &mut Sim,
    canister: Principal,
    id: &[u8],
    kind: SnapshotDataKind,
) -> Result<Vec<u8>, ic_sim::Reject> {
    let args = ReadCanisterSnapshotDataArgs {
        canister_id: canister,
        snapshot_id: id.to_vec(),
        kind,
    };
    management_ingress(sim, user(), "read_canister_snapshot_data", &args)
        .map(|bytes| decode::<ReadCanisterSnapshotDataResult>(&bytes).chunk)
}

/// Downloads `len` bytes in slices of at most 2,000,000.
fn download(
    sim: &mut Sim,
    canister: Principal,
    id: &[u8],
    len: u64,
    kind: fn(u64, u64) -> SnapshotDataKind,
) -> Vec<u8> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let size = (len - out.len() as u64).min(2_000_000);
        out.extend(read(sim, canister, id, kind(out.len() as u64, size)).unwrap());
    }
    out
}

#[test]
fn a_snapshot_is_downloaded_and_uploaded_into_another_canister_which_loads_it() {
    let mut sim = new_sim();
    let source = echo(&mut sim);
    sim.update_call(user(), source, "write", b"heap state".to_vec())
        .unwrap();
    sim.update_call(user(), source, "stable_write", b"stable state".to_vec())
        .unwrap();
    stop(&mut sim, source);
    let taken: Snapshot = decode(&call(
        &mut sim,
        "take_canister_snapshot",
        &TakeCanisterSnapshotArgs {
            canister_id: source,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: None,
        },
    ));
    let metadata: IcDidMetadata = decode(&call(
        &mut sim,
        "read_canister_snapshot_metadata",
        &ReadCanisterSnapshotMetadataArgs {
            canister_id: source,
            snapshot_id: taken.id.clone(),
        },
    ));
    assert!(matches!(
        metadata.source,
        SnapshotSource::TakenFromCanister(_)
    ));
    assert_eq!(metadata.wasm_module_size, echo_wasm().len() as u64);
    assert_eq!(metadata.wasm_memory_size, 64 * 65536);
    assert_eq!(metadata.stable_memory_size, 65536);

    let module = download(
        &mut sim,
        source,
        &taken.id,
        metadata.wasm_module_size,
        |offset, size| SnapshotDataKind::WasmModule { offset, size },
    );
    assert_eq!(module, echo_wasm());
    let heap = download(
        &mut sim,
        source,
        &taken.id,
        metadata.wasm_memory_size,
        |offset, size| SnapshotDataKind::WasmMemory { offset, size },
    );
    let stable = download(
        &mut sim,
        source,
        &taken.id,
        metadata.stable_memory_size,
        |offset, size| SnapshotDataKind::StableMemory { offset, size },
    );
    // Limits of one read.
    let err = read(
        &mut sim,
        source,
        &taken.id,
        SnapshotDataKind::WasmMemory {
            offset: 0,
            size: 2_000_001,
        },
    )
    .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(err.message, "Requested slice too large: 2000001 > 2000000");
    let err = read(
        &mut sim,
        source,
        &taken.id,
        SnapshotDataKind::StableMemory {
            offset: 65_530,
            size: 7,
        },
    )
    .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0408"));
    assert_eq!(
        err.message,
        "Invalid subslice into wasm module / main memory / stable memory: offset: 65530, size: 7"
    );

    // Upload it all into a new snapshot of another canister, then load it there.
    let target = echo(&mut sim);
    stop(&mut sim, target);
    let uploaded: UploadCanisterSnapshotMetadataResult = decode(&call(
        &mut sim,
        "upload_canister_snapshot_metadata",
        &UploadCanisterSnapshotMetadataArgs {
            canister_id: target,
            replace_snapshot: None,
            wasm_module_size: metadata.wasm_module_size,
            globals: metadata.globals.clone(),
            wasm_memory_size: metadata.wasm_memory_size,
            stable_memory_size: metadata.stable_memory_size,
            certified_data: metadata.certified_data.to_vec(),
            global_timer: None,
            on_low_wasm_memory_hook_status: None,
        },
    ));
    let upload = |sim: &mut Sim, kind: SnapshotDataOffset, chunk: &[u8]| {
        call(
            sim,
            "upload_canister_snapshot_data",
            &UploadCanisterSnapshotDataArgs {
                canister_id: target,
                snapshot_id: uploaded.snapshot_id.clone(),
                kind,
                chunk: chunk.to_vec(),
            },
        )
    };
    upload(
        &mut sim,
        SnapshotDataOffset::WasmModule { offset: 0 },
        &module,
    );
    for (i, piece) in heap.chunks(1_000_000).enumerate() {
        upload(
            &mut sim,
            SnapshotDataOffset::WasmMemory {
                offset: i as u64 * 1_000_000,
            },
            piece,
        );
    }
    upload(
        &mut sim,
        SnapshotDataOffset::StableMemory { offset: 0 },
        &stable,
    );
    let read_back: IcDidMetadata = decode(&call(
        &mut sim,
        "read_canister_snapshot_metadata",
        &ReadCanisterSnapshotMetadataArgs {
            canister_id: target,
            snapshot_id: uploaded.snapshot_id.clone(),
        },
    ));
    assert!(matches!(
        read_back.source,
        SnapshotSource::MetadataUpload(_)
    ));
    call(
        &mut sim,
        "load_canister_snapshot",
        &LoadCanisterSnapshotArgs {
            canister_id: target,
            snapshot_id: uploaded.snapshot_id.clone(),
            sender_canister_version: None,
        },
    );
    call(&mut sim, "start_canister", &id_record(target));
    assert_eq!(
        sim.query_call(user(), target, "read", vec![]).unwrap(),
        b"heap state"
    );
    assert_eq!(
        sim.query_call(user(), target, "stable_read", vec![])
            .unwrap(),
        b"stable state"
    );

    // A taken snapshot takes no data; a write past the declared size is refused.
    let err = management_ingress(
        &mut sim,
        user(),
        "upload_canister_snapshot_data",
        &UploadCanisterSnapshotDataArgs {
            canister_id: source,
            snapshot_id: taken.id.clone(),
            kind: SnapshotDataOffset::StableMemory { offset: 0 },
            chunk: vec![1],
        },
    )
    .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0409"));
    assert_eq!(
        err.message,
        "Only canister snapshots created by metadata upload can be mutated."
    );
    let err = management_ingress(
        &mut sim,
        user(),
        "upload_canister_snapshot_data",
        &UploadCanisterSnapshotDataArgs {
            canister_id: target,
            snapshot_id: uploaded.snapshot_id.clone(),
            kind: SnapshotDataOffset::StableMemory { offset: 65_536 },
            chunk: vec![1],
        },
    )
    .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0408"));
    // Someone else may not read.
    let err = management_ingress(
        &mut sim,
        other_user(),
        "read_canister_snapshot_metadata",
        &ReadCanisterSnapshotMetadataArgs {
            canister_id: source,
            snapshot_id: taken.id,
        },
    )
    .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
}
