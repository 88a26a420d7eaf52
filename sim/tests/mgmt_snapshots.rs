//! Conformance tests: canister snapshots (IC interface specification, "The IC management
//! canister": `take_canister_snapshot`, `load_canister_snapshot`, `list_canister_snapshots`,
//! `delete_canister_snapshot`, `canister_status` memory metrics, canister history).

mod replica_support;

use candid::Principal;
use ic_management_canister_types::{
    CanisterInfoArgs, CanisterInfoResult, CanisterSettings, CanisterStatusResult, ChangeDetails,
    DeleteCanisterSnapshotArgs, LoadCanisterSnapshotArgs, Snapshot, SnapshotSource,
    SnapshotVisibility, TakeCanisterSnapshotArgs, UpdateSettingsArgs,
};
use ic_sim::{CanisterRunStatus, InstallMode, Reject, RejectCode, Sim, SimConfig};
use replica_support::*;
use sha2::{Digest, Sha256};

fn take_args(canister: Principal) -> TakeCanisterSnapshotArgs {
    TakeCanisterSnapshotArgs {
        canister_id: canister,
        replace_snapshot: None,
        uninstall_code: None,
        sender_canister_version: None,
    }
}

fn take(sim: &mut Sim, args: &TakeCanisterSnapshotArgs) -> Result<Snapshot, Reject> {
    management_ingress(sim, user(), "take_canister_snapshot", args).map(|r| decode(&r))
}

fn load(sim: &mut Sim, canister: Principal, snapshot_id: &[u8]) -> Result<(), Reject> {
    let args = LoadCanisterSnapshotArgs {
        canister_id: canister,
        snapshot_id: snapshot_id.to_vec(),
        sender_canister_version: None,
    };
    management_ingress(sim, user(), "load_canister_snapshot", &args).map(|_| ())
}

fn list(sim: &mut Sim, canister: Principal) -> Vec<Snapshot> {
    decode(
        &management_ingress(sim, user(), "list_canister_snapshots", &id_record(canister)).unwrap(),
    )
}

fn delete(sim: &mut Sim, canister: Principal, snapshot_id: &[u8]) -> Result<(), Reject> {
    let args = DeleteCanisterSnapshotArgs {
        canister_id: canister,
        snapshot_id: snapshot_id.to_vec(),
    };
    management_ingress(sim, user(), "delete_canister_snapshot", &args).map(|_| ())
}

fn update(sim: &mut Sim, canister: Principal, method: &str, arg: &[u8]) {
    sim.update_call(user(), canister, method, arg.to_vec())
        .unwrap();
}

fn query(sim: &mut Sim, canister: Principal, method: &str) -> Vec<u8> {
    sim.query_call(user(), canister, method, Vec::new())
        .unwrap()
}

fn latest_change(sim: &mut Sim, canister: Principal) -> ChangeDetails {
    let reader = forwarder(sim, 0);
    let info: CanisterInfoResult = decode(
        &forward_management(
            sim,
            reader,
            "canister_info",
            &CanisterInfoArgs {
                canister_id: canister,
                num_requested_changes: Some(1),
            },
        )
        .reply_data(),
    );
    info.recent_changes[0].details.clone().unwrap()
}

fn module_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

// `take_canister_snapshot` then `load_canister_snapshot`: module, heap and stable memory come
// back as they were; loading bumps the canister version and records a `load_snapshot` change.
// Neither requires a stopped canister (the spec only advises stopping first).
#[test]
fn load_restores_module_heap_and_stable_memory_of_a_running_canister() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    update(&mut sim, canister, "write", b"heap at snapshot");
    update(&mut sim, canister, "stable_write", b"stable at snapshot");
    let version_at_snapshot = sim.canister(canister).unwrap().version;
    let time = sim.time_nanos();
    let snapshot = take(&mut sim, &take_args(canister)).unwrap();
    assert!(snapshot.taken_at_timestamp > time);
    assert!(snapshot.total_size >= 64 * 65536, "{snapshot:?}");
    assert_eq!(list(&mut sim, canister), vec![snapshot.clone()]);

    update(&mut sim, canister, "write", b"later heap");
    update(&mut sim, canister, "stable_write", b"later stable");
    let v2 = echo_wasm_version(2);
    let upgrade = InstallMode::Upgrade {
        skip_pre_upgrade: false,
        keep_wasm_memory: false,
    };
    sim.install_code(user(), canister, &v2, Vec::new(), upgrade)
        .unwrap();
    let before_load = sim.canister(canister).unwrap();
    assert_eq!(before_load.status, CanisterRunStatus::Running);

    load(&mut sim, canister, &snapshot.id).unwrap();
    let after = sim.canister(canister).unwrap();
    assert_eq!(after.module_hash, Some(module_hash(&echo_wasm())));
    assert_eq!(after.version, before_load.version + 1);
    assert_eq!(query(&mut sim, canister, "read"), b"heap at snapshot");
    assert_eq!(
        query(&mut sim, canister, "stable_read"),
        b"stable at snapshot"
    );
    match latest_change(&mut sim, canister) {
        ChangeDetails::LoadSnapshot(record) => {
            assert_eq!(record.snapshot_id, snapshot.id);
            assert_eq!(record.canister_version, version_at_snapshot);
            assert_eq!(record.taken_at_timestamp, snapshot.taken_at_timestamp);
            assert_eq!(record.from_canister_id, None);
            assert_eq!(
                record.source,
                SnapshotSource::TakenFromCanister(candid::Reserved)
            );
        }
        other => panic!("expected load_snapshot, got {other:?}"),
    }
    // The loaded canister keeps working.
    update(&mut sim, canister, "write", b"after load");
    assert_eq!(query(&mut sim, canister, "read"), b"after load");
}

// `take_canister_snapshot`: at most `MAX_SNAPSHOTS` = 10 per canister; `replace_snapshot` names
// one to delete once the new one exists, and must name an existing snapshot of the canister.
#[test]
fn ten_snapshots_per_canister_and_replace_snapshot() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let snapshots: Vec<Snapshot> = (0..10)
        .map(|_| take(&mut sim, &take_args(canister)).unwrap())
        .collect();
    assert_eq!(sim.canister(canister).unwrap().snapshots, 10);
    let err = take(&mut sim, &take_args(canister)).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(err.error_code.as_deref(), Some("IC0406"));
    assert_eq!(
        err.message,
        format!("Canister {canister} has reached the maximum number of snapshots allowed: 10.")
    );

    let replacing = TakeCanisterSnapshotArgs {
        replace_snapshot: Some(snapshots[0].id.clone()),
        ..take_args(canister)
    };
    let replacement = take(&mut sim, &replacing).unwrap();
    let ids: Vec<Vec<u8>> = list(&mut sim, canister).into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 10);
    assert!(!ids.contains(&snapshots[0].id));
    assert!(ids.contains(&replacement.id));

    // The replaced snapshot is gone for good.
    let err = take(&mut sim, &replacing).unwrap_err();
    assert_eq!(err.code, RejectCode::DestinationInvalid);
    assert_eq!(err.error_code.as_deref(), Some("IC0305"));
    assert_eq!(
        err.message,
        format!(
            "Could not find the snapshot ID {} for canister {canister}.",
            hex::encode(&snapshots[0].id)
        )
    );
}

// `uninstall_code = opt true` uninstalls after taking the snapshot; a snapshot of an empty
// canister fails, and then the snapshot named in `replace_snapshot` is kept.
#[test]
fn take_with_uninstall_code_and_a_failed_replacement() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    update(&mut sim, canister, "write", b"kept in the snapshot");
    let snapshot = take(
        &mut sim,
        &TakeCanisterSnapshotArgs {
            uninstall_code: Some(true),
            ..take_args(canister)
        },
    )
    .unwrap();
    assert_eq!(sim.canister(canister).unwrap().module_hash, None);
    assert_eq!(
        latest_change(&mut sim, canister),
        ChangeDetails::CodeUninstall
    );

    let err = take(
        &mut sim,
        &TakeCanisterSnapshotArgs {
            replace_snapshot: Some(snapshot.id.clone()),
            ..take_args(canister)
        },
    )
    .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0406"));
    assert_eq!(
        err.message,
        format!("Failed to create snapshot for empty canister {canister}.")
    );
    assert_eq!(list(&mut sim, canister), vec![snapshot.clone()]);

    load(&mut sim, canister, &snapshot.id).unwrap();
    assert_eq!(query(&mut sim, canister, "read"), b"kept in the snapshot");
}

// `load_canister_snapshot` onto another canister of the same subnet: the caller must control
// both; the history names the source canister. A snapshot on another subnet is not found.
#[test]
fn load_onto_another_canister_of_the_same_subnet() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        ..SimConfig::default()
    });
    let source = echo(&mut sim);
    update(&mut sim, source, "write", b"from the source");
    let snapshot = take(&mut sim, &take_args(source)).unwrap();
    let target = install_on(&mut sim, 0, &echo_wasm_version(3), Vec::new());

    // A controller of the target only.
    let other_target = sim.create_canister(0, vec![other_user()]);
    let args = LoadCanisterSnapshotArgs {
        canister_id: other_target,
        snapshot_id: snapshot.id.clone(),
        sender_canister_version: None,
    };
    let err =
        management_ingress(&mut sim, other_user(), "load_canister_snapshot", &args).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(
        err.message,
        format!(
            "Only a controller of the canister that snapshot {} belongs to can load it on canister {other_target}. Sender: {}.",
            hex::encode(&snapshot.id),
            other_user()
        )
    );

    let far = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let err = load(&mut sim, far, &snapshot.id).unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0305"));

    load(&mut sim, target, &snapshot.id).unwrap();
    assert_eq!(query(&mut sim, target, "read"), b"from the source");
    assert_eq!(
        sim.canister(target).unwrap().module_hash,
        Some(module_hash(&echo_wasm()))
    );
    match latest_change(&mut sim, target) {
        ChangeDetails::LoadSnapshot(record) => assert_eq!(record.from_canister_id, Some(source)),
        other => panic!("expected load_snapshot, got {other:?}"),
    }
    // Still the source's snapshot: the target has none.
    assert!(list(&mut sim, target).is_empty());
}

// `delete_canister_snapshot`: removes the snapshot; an unknown one is an error; a snapshot of
// another canister cannot be deleted through this one.
#[test]
fn delete_snapshot() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let other = echo(&mut sim);
    let snapshot = take(&mut sim, &take_args(canister)).unwrap();

    let err = delete(&mut sim, other, &snapshot.id).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(
        err.message,
        format!(
            "The snapshot {} does not belong to canister {other}.",
            hex::encode(&snapshot.id)
        )
    );

    delete(&mut sim, canister, &snapshot.id).unwrap();
    assert!(list(&mut sim, canister).is_empty());
    let err = delete(&mut sim, canister, &snapshot.id).unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0305"));
    let err = load(&mut sim, canister, &snapshot.id).unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0305"));
}

// Snapshots count in the canister's memory: `memory_metrics.snapshots_size` and `memory_size`.
#[test]
fn snapshots_count_in_canister_status() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let status = |sim: &mut Sim| -> CanisterStatusResult {
        decode(&management_ingress(sim, user(), "canister_status", &id_record(canister)).unwrap())
    };
    let before = status(&mut sim);
    assert_eq!(before.memory_metrics.snapshots_size, 0u8);
    let first = take(&mut sim, &take_args(canister)).unwrap();
    let second = take(&mut sim, &take_args(canister)).unwrap();
    let after = status(&mut sim);
    let total = first.total_size + second.total_size;
    assert_eq!(after.memory_metrics.snapshots_size, total);
    assert_eq!(after.memory_size, before.memory_size + total);
}

// `take_canister_snapshot` and `list_canister_snapshots` are for controllers;
// `snapshot_visibility` may open the list to others.
#[test]
fn snapshot_access() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let stranger = forwarder(&mut sim, 0);
    take(&mut sim, &take_args(canister)).unwrap();
    let answer = forward_management(
        &mut sim,
        stranger,
        "take_canister_snapshot",
        &take_args(canister),
    );
    assert!(
        matches!(&answer, Forwarded::Reject { code, message, .. }
            if *code == RejectCode::CanisterError as u32 && message.starts_with("Only the controllers")),
        "{answer:?}"
    );
    let answer = forward_management(
        &mut sim,
        stranger,
        "list_canister_snapshots",
        &id_record(canister),
    );
    assert!(matches!(answer, Forwarded::Reject { .. }), "{answer:?}");

    let settings = UpdateSettingsArgs {
        canister_id: canister,
        settings: CanisterSettings {
            snapshot_visibility: Some(SnapshotVisibility::Public),
            ..CanisterSettings::default()
        },
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "update_settings", &settings).unwrap();
    let listed: Vec<Snapshot> = decode(
        &forward_management(
            &mut sim,
            stranger,
            "list_canister_snapshots",
            &id_record(canister),
        )
        .reply_data(),
    );
    assert_eq!(listed.len(), 1);
    assert_eq!(sim.canister(canister).unwrap().snapshots, 1);
}

// Strict mode (`SimConfig::snapshots_require_stopped`, not the IC's behaviour): take and load
// refuse a canister that is not stopped, and work once it is.
#[test]
fn strict_mode_requires_a_stopped_canister() {
    let mut sim = Sim::new(SimConfig {
        snapshots_require_stopped: true,
        ..SimConfig::default()
    });
    let canister = echo(&mut sim);
    let err = take(&mut sim, &take_args(canister)).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0510"));
    assert!(list(&mut sim, canister).is_empty());

    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    let snapshot = take(&mut sim, &take_args(canister)).unwrap();
    management_ingress(&mut sim, user(), "start_canister", &id_record(canister)).unwrap();
    let err = load(&mut sim, canister, &snapshot.id).unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0510"));
    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    load(&mut sim, canister, &snapshot.id).unwrap();
}
