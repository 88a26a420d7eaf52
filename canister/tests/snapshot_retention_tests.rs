//! Snapshot retention on the real Wasm: a policy's `keep_snapshots` bounds the deployer's
//! snapshots of each child, the oldest replaced, and a snapshot another controller took is
//! never touched.
//! Spec: IC interface specification, management canister, "IC method take_canister_snapshot"
//! (`replace_snapshot`) and "IC method list_canister_snapshots".

mod rollout_support;
mod support;

use candid::Principal;
use deployer::{PolicyArg, Selector};
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

#[test]
fn rollouts_keep_the_newest_snapshots_the_deployer_made_and_no_other() {
    let (mut fleet, children, _, first) = v2_rollout(CHILDREN, 50);
    fleet.run_to_end(operator(), first, 2_000);
    // Every tenth child also holds a snapshot its other controller took.
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
        let mut counts = Vec::new();
        for &child in &children {
            let own = fleet.get_child_ok(operator(), child).snapshots;
            let held = snapshots_of(&mut fleet, child);
            assert!(
                own.iter()
                    .all(|id| held.iter().any(|s| s.id == id.as_slice())),
                "the deployer's record names only snapshots the child holds"
            );
            counts.push(own.len());
        }
        counts.dedup();
        kept_by_round.push(counts);
    }
    // The first rollout's snapshot is kept alongside the second's; from then on each new
    // snapshot replaces the oldest.
    assert_eq!(kept_by_round, vec![vec![2], vec![2], vec![2]]);
    for (child, id) in foreign {
        let held = snapshots_of(&mut fleet, child);
        assert!(
            held.iter().any(|s| s.id == id),
            "{child}'s own snapshot is kept"
        );
        assert_eq!(held.len(), usize::from(KEEP) + 1);
    }
}
