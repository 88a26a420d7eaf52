//! Every fleet and rollout error of the deployer's interface reaches a client of the real Wasm
//! with its facts. (`upload_errors_tests.rs` checks that no declared error goes unproduced.)

mod rollout_support;
mod support;

use candid::Principal;
use deployer::{ChildHistory, ChildHistoryArg, PolicyArg, RolloutInfo};
use deployer::{ChildInfo, FleetError, Selector};
use deployer::{Command, OnFailure, RolloutPhase};
use deployer::{Error, ErrorKind};
use ic_sim::artifacts;
use rollout_support::*;
use support::{admin, operator};

fn kind<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorKind {
    result.expect_err("refused").kind().clone()
}

#[test]
fn adoption_refuses_strangers_unknown_canisters_and_repeats() {
    let mut fleet = fleet(1);
    let child = create_children(&mut fleet, 0, 1)[0];
    let foreign = fleet.env.create_canister(0, vec![admin()]);
    let missing = Principal::from_slice(&[0xee; 10]);

    // The deployer and its chunk stores are never children (it could not upgrade itself in a
    // rollout; a store's chunks are what installs read).
    let itself = fleet.canister;
    let results = fleet.adopt_children_ok(
        admin(),
        deployer::AdoptChildrenArg {
            canister_ids: [child, foreign, missing, itself, child].to_vec(),
            subnet: None,
            labels: [].to_vec(),
        },
    );

    let adopted: &ChildInfo = results[0].as_ref().expect("adopted");
    assert_eq!(
        adopted.subnet,
        fleet.env.subnet_id(0),
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
        ErrorKind::Fleet(FleetError::NotAChildCanister {
            canister_id: itself
        })
    );
    assert!(matches!(
        kind(results[4].clone()),
        ErrorKind::Fleet(FleetError::AlreadyAdopted { canister_id, .. }) if canister_id == child
    ));

    let store = fleet.register_store(admin(), 0);
    let results = fleet.adopt_children_ok(
        admin(),
        deployer::AdoptChildrenArg {
            canister_ids: vec![store],
            subnet: None,
            labels: Vec::new(),
        },
    );
    assert_eq!(
        kind(results[0].clone()),
        ErrorKind::Fleet(FleetError::NotAChildCanister { canister_id: store })
    );

    // One call adopts at most 100: its status reads all go out at once, within the IC's queue
    // of 500, and its reply stays under the reply limit.
    let many = deployer::AdoptChildrenArg {
        canister_ids: vec![child; 101],
        subnet: None,
        labels: Vec::new(),
    };
    assert_eq!(
        kind(fleet.adopt_children(admin(), many).answer()),
        ErrorKind::Fleet(FleetError::TooManyToAdopt {
            count: 101,
            max: 100
        })
    );
}

#[test]
fn a_chunk_store_must_be_empty_and_registered_for_a_chunked_release() {
    let mut fleet = fleet(2);
    let children = create_children(&mut fleet, 1, 1);
    fleet.adopt_all(admin(), &[vec![], children]);
    let occupied = create_children(&mut fleet, 1, 1)[0];
    let subnet = fleet.env.subnet_id(1);
    let refused: Result<(), Error> = fleet
        .register_chunk_store(admin(), subnet, occupied)
        .answer();
    assert_eq!(
        kind(refused),
        ErrorKind::StoreNotEmpty {
            canister_id: occupied
        }
    );

    let large = release(&mut fleet, &artifacts::wasm("child_large"), "large");
    assert!(large.summary.chunk_count > 1);
    let fixture = PolicyArg {
        gate_overrides: deployer_client::fixture_gates(),
        ..PolicyArg::default()
    };
    assert_eq!(
        kind(
            fleet
                .start_rollout_of(operator(), &large, Selector::All, fixture)
                .answer()
        ),
        ErrorKind::NoChunkStore { subnet }
    );
}

#[test]
fn rollouts_refuse_bad_plans_unknown_ids_and_commands_out_of_phase() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 2);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");

    let zero = PolicyArg {
        max_concurrency: Some(0),
        ..policy(1, vec![], 1)
    };
    assert!(matches!(
        kind(fleet.start_rollout_of(operator(), &release, Selector::All, zero).answer()),
        ErrorKind::InvalidRolloutPlan { reason } if reason.contains("max_concurrency")
    ));
    // A wait that would overflow the clock, and a health method name as long as a message.
    let forever = PolicyArg {
        bake_nanos: Some(u64::MAX),
        ..policy(1, vec![], 1)
    };
    assert!(matches!(
        kind(fleet.start_rollout_of(operator(), &release, Selector::All, forever).answer()),
        ErrorKind::InvalidRolloutPlan { reason } if reason.contains("bake at most")
    ));
    let long_name = PolicyArg {
        verification: Some(deployer::Verification {
            health_method: Some("m".repeat(10_000)),
        }),
        ..policy(1, vec![], 1)
    };
    assert!(matches!(
        kind(fleet.start_rollout_of(operator(), &release, Selector::All, long_name).answer()),
        ErrorKind::InvalidRolloutPlan { reason } if reason.contains("health method name")
    ));
    let unknown: Result<RolloutInfo, Error> = fleet.get_rollout(operator(), 7u64).answer();
    assert_eq!(kind(unknown), ErrorKind::RolloutNotFound { rollout_id: 7 });

    let no_snapshots = PolicyArg {
        snapshot_before_install: Some(false),
        on_failure: Some(OnFailure::LeaveStopped),
        ..policy(1, vec![], 1)
    };
    let id = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::Explicit(vec![children[0]]),
            no_snapshots,
        )
        .answer()
        .unwrap()
        .rollout_id;
    let resumed: Result<RolloutInfo, Error> = fleet.resume_rollout(operator(), id).answer();
    assert_eq!(
        kind(resumed),
        ErrorKind::RolloutCommandRefused {
            rollout_id: id,
            command: Command::Resume,
            phase: RolloutPhase::Running,
        }
    );
    let rolled_back: Result<RolloutInfo, Error> = fleet.rollback_rollout(operator(), id).answer();
    assert_eq!(
        kind(rolled_back),
        ErrorKind::NothingToRollBack { rollout_id: id }
    );
    let history: Result<ChildHistory, Error> = fleet
        .child_history(
            operator(),
            ChildHistoryArg {
                rollout_id: id,
                canister_id: children[1],
                from: None,
                limit: None,
            },
        )
        .answer();
    assert_eq!(
        kind(history),
        ErrorKind::NotInRollout {
            rollout_id: id,
            canister_id: children[1],
        }
    );
    let claimed = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 1))
        .answer();
    assert!(matches!(
        kind(claimed),
        ErrorKind::Fleet(FleetError::ClaimConflict { total: 1, .. })
    ));
}

/// Retention: beyond the last 100 finished rollouts, a finished rollout keeps only its overview.
/// Its summary still reads; its children's histories and a rollback of it are refused with a
/// typed error that says so.
#[test]
fn the_oldest_finished_rollouts_keep_their_overview_only() {
    let (mut fleet, children, release, first) = v2_rollout(1, 1);
    fleet.run_to_end(operator(), first, 1_000);
    // Every later rollout of the same release finds the child on it and finishes at once.
    let retained = deployer::rollouts::RETAINED_FINISHED_CHECKPOINTS;
    let mut last = first;
    for _ in 0..=retained {
        let started = fleet
            .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 1))
            .answer()
            .expect("start");
        assert_eq!(started.summary.phase, RolloutPhase::Completed);
        last = started.rollout_id;
    }
    assert_eq!(last, first + retained + 1);

    let pruned = fleet.get_rollout_ok(operator(), first);
    assert_eq!(pruned.summary.counts.upgraded, 1, "the overview stays");
    let history = |rollout_id| ChildHistoryArg {
        rollout_id,
        canister_id: children[0],
        from: None,
        limit: None,
    };
    let details = fleet.child_history(operator(), history(first)).answer();
    assert_eq!(
        kind(details),
        ErrorKind::RolloutDetailsPruned { rollout_id: first }
    );
    let rollback = fleet.rollback_rollout(operator(), first).answer();
    assert_eq!(
        kind(rollback),
        ErrorKind::RolloutDetailsPruned { rollout_id: first }
    );
    // The newest finished rollouts keep their details.
    fleet.child_history_ok(operator(), history(last));
    let kept = fleet.child_history_ok(operator(), history(first + 2));
    assert_eq!(kept.canister_id, children[0]);
}

/// Upgrade gates, checked at planning before any child is touched: children running a module
/// that is no release, and a release lower than the one they run, are refused with a typed
/// error; an override with a reason lets the rollout through and stays with it.
#[test]
fn upgrade_gates_refuse_unknown_modules_and_downgrades_unless_overridden() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 2);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let v2 = release(&mut fleet, &artifacts::wasm("child_v2"), "2.0.0");
    let every_gate = PolicyArg {
        gate_overrides: None,
        ..policy(1, vec![], 2)
    };
    let unknown = fleet
        .start_rollout_of(operator(), &v2, Selector::All, every_gate.clone())
        .answer();
    let v1 = fleet
        .get_child_ok(operator(), children[0])
        .module_hash
        .unwrap();
    assert_eq!(
        kind(unknown),
        ErrorKind::UpgradeGateClosed {
            gate: deployer::UpgradeGate::KnownModule,
            children: 2,
            canister_id: children[0],
            running: Some(format!("module {}", hex(&v1))),
            detail: None,
        }
    );
    let listed = fleet.list_rollouts_ok(operator(), deployer::ListRolloutsArg::default());
    assert!(listed.rollouts.is_empty(), "nothing started");

    // The fixture's override, with its reason, lets the first rollout through.
    let started = fleet
        .start_rollout_of(operator(), &v2, Selector::All, policy(1, vec![], 2))
        .answer()
        .unwrap();
    assert_eq!(
        started.policy.gate_overrides,
        deployer_client::fixture_gates()
    );
    let done = fleet.run_to_end(operator(), started.rollout_id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 2);

    // The children now run child 2.0.0: 1.5.0 would take them back.
    let lower = release(&mut fleet, &artifacts::wasm("child_v3"), "1.5.0");
    let downgrade = fleet
        .start_rollout_of(operator(), &lower, Selector::All, every_gate.clone())
        .answer();
    assert!(matches!(
        kind(downgrade),
        ErrorKind::UpgradeGateClosed {
            gate: deployer::UpgradeGate::HigherVersion,
            children: 2,
            running: Some(running),
            ..
        } if running == "child@2.0.0"
    ));
    let back = PolicyArg {
        gate_overrides: Some(vec![deployer::GateOverride {
            gate: deployer::UpgradeGate::HigherVersion,
            reason: "2.0.0 corrupts the counters; back to the 1.x line".into(),
        }]),
        ..every_gate
    };
    let started = fleet
        .start_rollout_of(operator(), &lower, Selector::All, back)
        .answer()
        .unwrap();
    let done = fleet.run_to_end(operator(), started.rollout_id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 2);
}

#[test]
fn the_candid_gate_refuses_a_release_whose_service_the_childrens_clients_cannot_call() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 3);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let v2 = release(&mut fleet, &artifacts::wasm("child_v2"), "2.0.0");
    let started = fleet
        .start_rollout_of(operator(), &v2, Selector::All, policy(1, vec![], 3))
        .answer()
        .unwrap();
    fleet.run_to_end(operator(), started.rollout_id, 1_000);

    // child 3.0.0: the same code, but its interface says `counter` replies text and
    // `increment` is gone. Clients of 2.0.0 would fail to decode or find nothing.
    let service = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/child/child.did"),
    )
    .unwrap()
    .replace(
        "counter : () -> (nat64) query;",
        "counter : () -> (text) query;",
    )
    .replace("increment : () -> (nat64);", "");
    let module =
        deployer_client::modules::with_candid_service(&artifacts::wasm("child_v3"), &service);
    let v3 = release(&mut fleet, &module, "3.0.0");
    assert!(v3.summary.has_candid_service);
    let every_gate = PolicyArg {
        gate_overrides: None,
        ..policy(1, vec![], 3)
    };
    let refused = fleet
        .start_rollout_of(operator(), &v3, Selector::All, every_gate.clone())
        .answer();
    let ErrorKind::UpgradeGateClosed {
        gate: deployer::UpgradeGate::CandidCompatible,
        children: 3,
        running: Some(running),
        detail: Some(detail),
        ..
    } = kind(refused)
    else {
        panic!("the Candid gate refuses");
    };
    assert_eq!(running, "child@2.0.0");
    assert!(
        detail.contains("counter") && detail.contains("increment"),
        "both incompatibilities named: {detail}"
    );
    // The preview voters would read refuses the same way, and nothing started.
    let preview = fleet
        .preview_rollout(
            operator(),
            deployer::StartRolloutArg {
                plan_sha256: None,
                release: deployer::ReleaseSelector::Sha256(v3.summary.sha256.clone()),
                selector: Selector::All,
                policy: Some(every_gate.clone()),
            },
        )
        .answer();
    assert!(matches!(
        kind(preview),
        ErrorKind::UpgradeGateClosed {
            gate: deployer::UpgradeGate::CandidCompatible,
            ..
        }
    ));
    assert_eq!(
        fleet
            .list_rollouts_ok(operator(), deployer::ListRolloutsArg::default())
            .rollouts
            .len(),
        1
    );

    // Knowing no client calls them, the operator overrides the gate with the reason.
    let overridden = PolicyArg {
        gate_overrides: Some(vec![deployer::GateOverride {
            gate: deployer::UpgradeGate::CandidCompatible,
            reason: "the counter is read only by our dashboard, updated in the same release".into(),
        }]),
        ..every_gate
    };
    let started = fleet
        .start_rollout_of(operator(), &v3, Selector::All, overridden)
        .answer()
        .unwrap();
    let done = fleet.run_to_end(operator(), started.rollout_id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 3);
}

/// Issue 19: a start reads its children 500 a message, the deployer calling itself between two,
/// and holds each child as it reads it. Of two starts planned at once over the same child, the
/// one that reads it first holds it; the other is refused whole, naming it and its holder, and
/// every child it held is free again.
#[test]
fn of_two_starts_planned_at_once_the_one_that_reads_a_child_first_holds_it() {
    use ic_sim::scenario::IcEnv;

    let mut fleet = fleet(1);
    let mut children = create_children(&mut fleet, 0, 1_200);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    // The order a selection of every child reads them in.
    children.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    let last = *children.last().unwrap();
    let arg = |selector| {
        candid::encode_one(deployer::StartRolloutArg {
            plan_sha256: None,
            release: deployer::ReleaseSelector::Sha256(release.summary.sha256.clone()),
            selector,
            policy: Some(policy(1, vec![], 10)),
        })
        .unwrap()
    };
    let canister = fleet.canister;
    let mut submit = |selector| {
        fleet
            .env
            .submit_update_raw(operator(), canister, "start_rollout", arg(selector))
            .expect("submitted")
    };
    let whole = submit(Selector::All);
    let single = submit(Selector::Explicit(vec![last]));
    let mut reply = |call| {
        let bytes = fleet.env.await_update_raw(call).expect("a reply");
        candid::decode_one::<Result<RolloutInfo, Error>>(&bytes).unwrap()
    };
    let whole = reply(whole);
    let single = reply(single).expect("the start of one child");
    match kind(whole) {
        ErrorKind::Fleet(FleetError::ClaimConflict { conflicts, total }) => {
            assert_eq!(total, 1);
            assert_eq!(conflicts[0].canister_id, last);
            assert_eq!(conflicts[0].rollout_id, single.rollout_id);
        }
        other => panic!("the whole fleet's start: {other:?}"),
    }
    // What the refused start held is free: its first and its last child read.
    let again = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::Explicit(vec![children[0], children[children.len() - 2]]),
            policy(1, vec![], 10),
        )
        .answer()
        .expect("children the refused start held start again");
    assert_eq!(again.summary.counts.queued + again.summary.counts.active, 2);
}
