//! Every fleet and rollout error of the deployer's interface reaches a client of the real Wasm
//! with its facts. (`upload_errors_tests.rs` checks that no declared error goes unproduced.)

mod rollout_support;
mod support;

use candid::Principal;
use deployer::fleet::{ChildInfo, FleetError, Selector};
use deployer::rollout::{Command, OnFailure, RolloutPhase};
use deployer::rollouts::{ChildHistory, ChildHistoryArg, PolicyArg, RolloutInfo};
use deployer::{Error, ErrorKind};
use ic_sim::artifacts;
use rollout_support::*;
use support::{admin, operator};

fn kind<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorKind {
    result.expect_err("refused").kind().clone()
}

#[test]
fn adoption_refuses_strangers_unknown_canisters_and_repeats() {
    let mut fleet = Fleet::new(1);
    let child = fleet.create_children(0, 1)[0];
    let foreign = fleet.sim.create_canister(0, vec![admin()]);
    let missing = Principal::from_slice(&[0xee; 10]);

    // The deployer reads its own status (a canister may), but does not control itself.
    let itself = fleet.deployer;
    let results = fleet.adopt(&[child, foreign, missing, itself, child], None, &[]);

    let adopted: &ChildInfo = results[0].as_ref().expect("adopted");
    assert_eq!(
        adopted.subnet,
        fleet.sim.subnet_id(0),
        "the deployer's own subnet"
    );
    // Only controllers may read a canister's status (interface specification,
    // "IC method canister_status"): a canister the deployer does not control is refused there.
    assert!(matches!(
        kind(results[1].clone()),
        ErrorKind::CanisterStatusUnavailable { canister_id, code: 5, .. } if canister_id == foreign
    ));
    assert!(matches!(
        kind(results[2].clone()),
        ErrorKind::CanisterStatusUnavailable { canister_id, code: 3, .. } if canister_id == missing
    ));
    assert_eq!(
        kind(results[3].clone()),
        ErrorKind::NotAController {
            canister_id: itself
        }
    );
    assert!(matches!(
        kind(results[4].clone()),
        ErrorKind::Fleet(FleetError::AlreadyAdopted { canister_id, .. }) if canister_id == child
    ));
}

#[test]
fn a_chunk_store_must_be_empty_and_registered_for_a_chunked_release() {
    let mut fleet = Fleet::new(2);
    let children = fleet.create_children(1, 1);
    fleet.adopt_all(&[vec![], children]);
    let occupied = fleet.create_children(1, 1)[0];
    let subnet = fleet.sim.subnet_id(1);
    let refused: Result<(), Error> =
        fleet.call(admin(), "register_chunk_store", (subnet, occupied));
    assert_eq!(
        kind(refused),
        ErrorKind::StoreNotEmpty {
            canister_id: occupied
        }
    );

    let large = fleet.release(&artifacts::wasm("child_large"), "large");
    assert!(large.summary.chunk_count > 1);
    assert_eq!(
        kind(fleet.start(&large, Selector::All, PolicyArg::default())),
        ErrorKind::NoChunkStore { subnet }
    );
}

#[test]
fn rollouts_refuse_bad_plans_unknown_ids_and_commands_out_of_phase() {
    let mut fleet = Fleet::new(1);
    let children = fleet.create_children(0, 2);
    fleet.adopt_all(std::slice::from_ref(&children));
    let release = fleet.release(&artifacts::wasm("child_v2"), "2");

    let zero = PolicyArg {
        max_concurrency: Some(0),
        ..PolicyArg::default()
    };
    assert!(matches!(
        kind(fleet.start(&release, Selector::All, zero)),
        ErrorKind::InvalidRolloutPlan { reason } if reason.contains("max_concurrency")
    ));
    let unknown: Result<RolloutInfo, Error> = fleet.query("get_rollout", (7u64,));
    assert_eq!(kind(unknown), ErrorKind::RolloutNotFound { rollout_id: 7 });

    let no_snapshots = PolicyArg {
        snapshot_before_install: Some(false),
        on_failure: Some(OnFailure::LeaveStopped),
        ..policy(1, vec![], 1)
    };
    let id = fleet
        .start(
            &release,
            Selector::Explicit(vec![children[0]]),
            no_snapshots,
        )
        .unwrap()
        .rollout_id;
    let resumed: Result<RolloutInfo, Error> = fleet.call(operator(), "resume_rollout", (id,));
    assert_eq!(
        kind(resumed),
        ErrorKind::RolloutCommandRefused {
            rollout_id: id,
            command: Command::Resume,
            phase: RolloutPhase::Running,
        }
    );
    let rolled_back: Result<RolloutInfo, Error> = fleet.call(operator(), "rollback_rollout", (id,));
    assert_eq!(
        kind(rolled_back),
        ErrorKind::NothingToRollBack { rollout_id: id }
    );
    let history: Result<ChildHistory, Error> = fleet.query(
        "child_history",
        (ChildHistoryArg {
            rollout_id: id,
            canister_id: children[1],
            from: None,
            limit: None,
        },),
    );
    assert_eq!(
        kind(history),
        ErrorKind::NotInRollout {
            rollout_id: id,
            canister_id: children[1],
        }
    );
    let claimed = fleet.start(&release, Selector::All, PolicyArg::default());
    assert!(matches!(
        kind(claimed),
        ErrorKind::Fleet(FleetError::ClaimConflict { total: 1, .. })
    ));
}
