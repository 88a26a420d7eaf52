//! A child restored to a snapshot of the operator's choice on the real Wasm, journaled as a
//! rollout: stop, load, start, verify; the fleet registry learns the module the snapshot held.
//! Spec: IC interface specification, management canister, "IC method load_canister_snapshot".

mod rollout_support;
mod support;

use candid::Principal;
use deployer::{
    ChildHistoryArg, ChildState, ErrorKind, RestoreChildArg, RollbackCause, RolloutOperation,
    Selector, StartBackupRunArg, Verdict,
};
use ic_sim::artifacts;
use ic_sim::scenario::IcEnvExt;
use rollout_support::*;
use serde_bytes::ByteBuf;

fn history(fleet: &mut Fleet, rollout_id: u64, canister_id: Principal) -> deployer::ChildHistory {
    fleet.child_history_ok(
        operator(),
        ChildHistoryArg {
            rollout_id,
            canister_id,
            from: None,
            limit: None,
        },
    )
}

fn restore(fleet: &mut Fleet, canister_id: Principal, snapshot_id: &[u8]) -> deployer::RolloutInfo {
    fleet.restore_child_ok(
        operator(),
        RestoreChildArg {
            canister_id,
            snapshot_id: ByteBuf::from(snapshot_id.to_vec()),
        },
    )
}

#[test]
fn a_child_restored_to_a_backup_runs_snapshot_runs_its_module_and_state_again() {
    let (mut fleet, children, v2, first) = v2_rollout(20, 10);
    fleet.run_to_end(operator(), first, 2_000);
    let backup = fleet
        .start_backup_run_ok(
            operator(),
            StartBackupRunArg {
                selector: Selector::All,
                policy: None,
                stop_children: false,
            },
        )
        .rollout_id;
    fleet.run_to_end(operator(), backup, 2_000);
    let counters = counters_of(&mut fleet, &children);
    let child = children[3];
    let snapshot = history(&mut fleet, backup, child)
        .snapshot
        .expect("the backup run's snapshot");

    // After the backup, the child moves on: more state, then v3.
    for _ in 0..5 {
        let _: (u64,) = fleet.env.update(admin(), child, "increment", ()).unwrap();
    }
    let v3 = release(&mut fleet, &artifacts::wasm("child_v3"), "3");
    let upgrade = fleet
        .start_rollout_of(
            operator(),
            &v3,
            Selector::Explicit(vec![child]),
            policy(1, vec![], 1),
        )
        .expect("start")
        .rollout_id;
    fleet.run_to_end(operator(), upgrade, 2_000);
    assert_eq!(version_of(&mut fleet, child), "v3");

    let info = restore(&mut fleet, child, &snapshot);
    assert_eq!(
        info.operation,
        Some(RolloutOperation::RestoreChild {
            snapshot_id: snapshot.clone()
        })
    );
    assert!(info.release_sha256.is_empty());
    let done = fleet.run_to_end(operator(), info.rollout_id, 2_000);
    assert_eq!(done.summary.counts.rolled_back, 1);

    let restored = history(&mut fleet, info.rollout_id, child);
    assert_eq!(
        restored.state,
        ChildState::Finished(Verdict::RolledBack(RollbackCause::Restore))
    );
    let steps: Vec<_> = restored.steps.iter().map(|record| record.step).collect();
    use deployer::Step;
    assert_eq!(
        steps,
        [Step::Stop, Step::LoadSnapshot, Step::Start, Step::Verify]
    );
    assert_eq!(
        version_of(&mut fleet, child),
        "v2",
        "the snapshot's module runs"
    );
    assert_eq!(counter_of(&mut fleet, child), counters[3], "and its state");
    let record = fleet.get_child_ok(operator(), child);
    assert_eq!(
        record.module_hash,
        Some(v2.summary.sha256.clone()),
        "the registry names the module the snapshot held"
    );
    // Every other child is as the backup left it.
    let mut others = counters_of(&mut fleet, &children);
    others.remove(3);
    let mut expected = counters.clone();
    expected.remove(3);
    assert_eq!(others, expected);
}

#[test]
fn restores_the_deployer_cannot_carry_out_are_refused_or_leave_the_child_running() {
    let (mut fleet, children, _, first) = v2_rollout(3, 3);
    fleet.run_to_end(operator(), first, 2_000);
    let child = children[0];
    let counter = counter_of(&mut fleet, child);
    let refused = |fleet: &mut Fleet, canister_id: Principal, snapshot_id: Vec<u8>| {
        fleet
            .restore_child(
                operator(),
                RestoreChildArg {
                    canister_id,
                    snapshot_id: ByteBuf::from(snapshot_id),
                },
            )
            .unwrap_err()
            .deployer_error()
            .kind()
            .clone()
    };
    // No snapshot id; a canister outside the fleet; a caller without a role.
    assert!(matches!(
        refused(&mut fleet, child, vec![]),
        ErrorKind::InvalidRolloutPlan { .. }
    ));
    assert!(matches!(
        refused(&mut fleet, child, vec![1; 65]),
        ErrorKind::InvalidRolloutPlan { .. }
    ));
    let outsider = Principal::from_slice(&[9; 10]);
    let not_adopted = refused(&mut fleet, outsider, vec![1; 18]);
    assert!(
        not_adopted.to_string().contains(&outsider.to_text()),
        "{not_adopted}"
    );
    let error = fleet
        .restore_child(
            stranger(),
            RestoreChildArg {
                canister_id: child,
                snapshot_id: ByteBuf::from(vec![1; 18]),
            },
        )
        .unwrap_err()
        .reject();
    // Refused by canister_inspect_message before the method runs.
    assert!(
        error.message.contains("requires the Operator role"),
        "{error:?}"
    );
    let listed = fleet.list_rollouts_ok(operator(), Default::default());
    assert_eq!(listed.rollouts.len(), 1, "nothing was started");

    // A snapshot the child does not hold: the IC refuses the load, the child runs again as it was.
    let missing = [child.as_slice(), &[0, 0, 0, 0, 0, 0, 0, 42]].concat();
    let info = restore(&mut fleet, child, &missing);
    fleet.run_to_end(operator(), info.rollout_id, 2_000);
    let state = history(&mut fleet, info.rollout_id, child).state;
    assert!(
        matches!(state, ChildState::Finished(Verdict::NeedsAttention { .. })),
        "{state:?}"
    );
    assert_eq!(counter_of(&mut fleet, child), counter);
    assert_eq!(version_of(&mut fleet, child), "v2");
}
