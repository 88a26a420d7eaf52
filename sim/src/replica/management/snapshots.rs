//! Canister snapshots (IC interface specification, "IC method take_canister_snapshot",
//! "IC method load_canister_snapshot", "IC method list_canister_snapshots", "IC method
//! delete_canister_snapshot").
//!
//! A snapshot belongs to its canister and lives in its subnet's state; it is gone when the
//! canister is deleted. Its id is the owner's canister id followed by the owner's snapshot counter
//! (big-endian u64), so the owner follows from the id alone (the spec only calls it an opaque blob).

use super::{change_origin, decode, empty_reply, encode, Answer, ManagementCall};
use crate::exec::CanisterInstance;
use crate::replica::errors;
use crate::replica::state::CanisterSnapshot;
use crate::replica::Sim;
use crate::types::{limits, CanisterRunStatus, Principal, Reject};
use candid::Reserved;
use ic_management_canister_types::{
    CanisterIdRecord, ChangeDetails, DeleteCanisterSnapshotArgs, LoadCanisterSnapshotArgs,
    LoadSnapshotRecord, Snapshot, SnapshotSource, SnapshotVisibility, TakeCanisterSnapshotArgs,
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
        instance: instance.snapshot(),
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
    let instance = CanisterInstance::from_snapshot(&snapshot.instance)
        .map_err(|reason| errors::snapshot_not_loadable(target, &args.snapshot_id, &reason))?;
    let certified_data = snapshot.certified_data.clone();
    let chunk_store = snapshot.chunk_store.clone();
    let record = LoadSnapshotRecord {
        from_canister_id: (owner != target).then_some(owner),
        snapshot_id: args.snapshot_id,
        canister_version: snapshot.canister_version,
        taken_at_timestamp: snapshot.taken_at_nanos,
        source: SnapshotSource::TakenFromCanister(Reserved),
    };
    let origin = change_origin(call, args.sender_canister_version);
    let time = sim.time_nanos;
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
