//! Snapshot retention and backup runs on the real Wasm: a policy's `keep_snapshots` bounds the
//! deployer's snapshots of each child, the oldest replaced, and a snapshot another controller
//! took is never touched; a backup run snapshots every selected child with a rollout's waves and
//! concurrency, stopping it only when asked, and installs nothing.
//! Spec: IC interface specification, management canister, "IC method take_canister_snapshot"
//! (`replace_snapshot`) and "IC method list_canister_snapshots".

mod rollout_support;
mod support;

use candid::Principal;
use deployer::{PolicyArg, Selector, StartBackupRunArg, Verdict};
use deployer_client::modules::grown;
use ic_management_canister_types::{CanisterIdRecord, Snapshot, TakeCanisterSnapshotArgs};
use ic_sim::artifacts;
use ic_sim::scenario::IcEnvExt;
use rollout_support::*;

const CHILDREN: usize = 200;
const KEEP: u8 = 2;

fn snapshots_of(fleet: &mut Fleet, canister_id: Principal) -> Vec<Snapshot> {
    let (snapshots,): (Vec<Snapshot>,) = fleet
        .env
        .update(
            admin(),
            Principal::management_canister(),
            "list_canister_snapshots",
            (CanisterIdRecord { canister_id },),
        )
        .unwrap();
    snapshots
}

/// Every tenth child also gets a snapshot its other controller (the admin) takes.
fn take_foreign_snapshots(fleet: &mut Fleet, children: &[Principal]) -> Vec<(Principal, Vec<u8>)> {
    let mut foreign = Vec::new();
    for &canister_id in children.iter().step_by(10) {
        let (snapshot,): (Snapshot,) = fleet
            .env
            .update(
                admin(),
                Principal::management_canister(),
                "take_canister_snapshot",
                (TakeCanisterSnapshotArgs {
                    canister_id,
                    replace_snapshot: None,
                    uninstall_code: None,
                    sender_canister_version: None,
                },),
            )
            .unwrap();
        foreign.push((canister_id, snapshot.id));
    }
    foreign
}

/// How many snapshots the deployer's registry holds for each child (deduplicated), checking
/// that the child holds every one of them.
fn deployer_snapshot_counts(fleet: &mut Fleet, children: &[Principal]) -> Vec<usize> {
    let mut counts = Vec::new();
    for &child in children {
        let own = fleet.get_child_ok(operator(), child).snapshots;
        let held = snapshots_of(fleet, child);
        assert!(
            own.iter()
                .all(|id| held.iter().any(|s| s.id == id.as_slice())),
            "the deployer's record names only snapshots the child holds"
        );
        counts.push(own.len());
    }
    counts.dedup();
    counts
}

/// Each child's other controller's snapshot is still there, beside `kept` of the deployer's.
fn assert_foreign_kept(fleet: &mut Fleet, foreign: &[(Principal, Vec<u8>)], kept: u8) {
    for (child, id) in foreign {
        let held = snapshots_of(fleet, *child);
        assert!(
            held.iter().any(|s| s.id == *id),
            "{child}'s own snapshot is kept"
        );
        assert_eq!(held.len(), usize::from(kept) + 1);
    }
}

#[test]
fn backup_runs_snapshot_every_child_keep_the_newest_and_install_nothing() {
    let (mut fleet, children, v2, first) = v2_rollout(CHILDREN, 50);
    fleet.run_to_end(operator(), first, 2_000);
    let foreign = take_foreign_snapshots(&mut fleet, &children);
    let counters = counters_of(&mut fleet, &children);
    let stops = |fleet: &Fleet| -> usize {
        children
            .iter()
            .map(|&child| {
                let calls = fleet.management_calls(child);
                calls
                    .iter()
                    .filter(|(method, _)| method == "stop_canister")
                    .count()
            })
            .sum()
    };
    let keeping = PolicyArg {
        keep_snapshots: Some(KEEP),
        ..policy(1, vec![], 50)
    };
    let mut kept_by_run = Vec::new();
    for stop_children in [false, true, false] {
        let stops_before = stops(&fleet);
        let info = fleet.start_backup_run_ok(
            operator(),
            StartBackupRunArg {
                selector: Selector::All,
                policy: Some(keeping.clone()),
                stop_children,
            },
        );
        assert!(
            info.release_sha256.is_empty(),
            "a backup run installs no release"
        );
        assert_eq!(
            info.operation,
            Some(deployer::RolloutOperation::Backup { stop_children })
        );
        let done = fleet.run_to_end(operator(), info.rollout_id, 2_000);
        assert_eq!(done.summary.counts.backed_up, Some(CHILDREN as u32));
        assert_eq!(done.summary.counts.upgraded, 0);
        assert_eq!(done.summary.waves.len(), 2, "a canary, then the rest");
        let expected_stops = if stop_children { CHILDREN } else { 0 };
        assert_eq!(stops(&fleet) - stops_before, expected_stops);
        kept_by_run.push(deployer_snapshot_counts(&mut fleet, &children));
        let history = fleet.child_history_ok(
            operator(),
            deployer::ChildHistoryArg {
                rollout_id: info.rollout_id,
                canister_id: children[0],
                from: None,
                limit: None,
            },
        );
        assert_eq!(
            history.state,
            deployer::ChildState::Finished(Verdict::BackedUp)
        );
        assert!(
            history.snapshot.is_some(),
            "the run names the snapshot it took"
        );
    }
    // The rollout's snapshot and the first run's make two; each later run replaces the oldest.
    assert_eq!(kept_by_run, vec![vec![2], vec![2], vec![2]]);
    assert_foreign_kept(&mut fleet, &foreign, KEEP);

    // Retention lowered to one: the run deletes the deployer's older snapshots, no other.
    let info = fleet.start_backup_run_ok(
        operator(),
        StartBackupRunArg {
            selector: Selector::All,
            policy: Some(PolicyArg {
                keep_snapshots: Some(1),
                ..keeping.clone()
            }),
            stop_children: false,
        },
    );
    let done = fleet.run_to_end(operator(), info.rollout_id, 2_000);
    assert_eq!(done.summary.counts.backed_up, Some(CHILDREN as u32));
    assert_eq!(deployer_snapshot_counts(&mut fleet, &children), vec![1]);
    assert_foreign_kept(&mut fleet, &foreign, 1);
    assert_eq!(
        counters_of(&mut fleet, &children),
        counters,
        "no child's state moved"
    );
    for &child in &children {
        let record = fleet.get_child_ok(operator(), child);
        assert_eq!(record.module_hash, Some(v2.summary.sha256.clone()));
        assert_eq!(
            successful_installs(&fleet, child),
            1,
            "only the v2 rollout installed"
        );
    }
}

#[test]
fn rollouts_keep_the_newest_snapshots_the_deployer_made_and_no_other() {
    let (mut fleet, children, _, first) = v2_rollout(CHILDREN, 50);
    fleet.run_to_end(operator(), first, 2_000);
    let foreign = take_foreign_snapshots(&mut fleet, &children);
    let keeping = PolicyArg {
        keep_snapshots: Some(KEEP),
        ..policy(1, vec![], 50)
    };
    let mut kept_by_round = Vec::new();
    // child_v2 again, grown by a custom section: a module of its own.
    let v2_again = grown(&artifacts::wasm("child_v2"), 1024, 5);
    let modules = [
        (artifacts::wasm("child_v3"), "3"),
        (artifacts::wasm("child_v1"), "4"),
        (v2_again, "5"),
    ];
    for (module, version) in modules {
        let release = release(&mut fleet, &module, version);
        let id = fleet
            .start_rollout_of(operator(), &release, Selector::All, keeping.clone())
            .expect("start")
            .rollout_id;
        let done = fleet.run_to_end(operator(), id, 2_000);
        assert_eq!(done.summary.counts.upgraded as usize, CHILDREN);
        kept_by_round.push(deployer_snapshot_counts(&mut fleet, &children));
    }
    // The first rollout's snapshot is kept alongside the second's; from then on each new
    // snapshot replaces the oldest.
    assert_eq!(kept_by_round, vec![vec![2], vec![2], vec![2]]);
    assert_foreign_kept(&mut fleet, &foreign, KEEP);
}
