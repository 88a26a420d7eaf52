//! Scenario tests of one child's pipeline against the world model: the steps, their
//! retries, reconciles of unknown outcomes, and where failures lead.

use super::world::{failing, id, is, plan, policy, snapshot, spec, upgrade_steps, Fate, Harness};
use super::world::{PREVIOUS, RELEASE, ROUNDS, START};
use super::*;

#[test]
fn upgrade_stops_snapshots_installs_starts_verifies_and_checks_health() {
    let mut policy = policy();
    policy.verification.health_method = Some("health".into());
    policy.install = InstallOptions {
        skip_pre_upgrade: true,
        wasm_memory_persistence: Some(WasmMemoryPersistence::Keep),
        arg: vec![0x44, 0x49, 0x44, 0x4c],
    };
    let mut h = Harness::new(plan(1, policy.clone()));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(h.steps(&id(0)), upgrade_steps(true));
    let kinds: Vec<&ActionKind> = h.issued.iter().map(|action| &action.kind).collect();
    assert_eq!(
        kinds[0],
        &ActionKind::CheckCycles,
        "the child's cycles are read before it is touched"
    );
    assert_eq!(
        kinds[3],
        &ActionKind::InstallCode {
            module_hash: RELEASE,
            options: policy.install
        }
    );
    assert_eq!(
        kinds[5],
        &ActionKind::ReadStatus {
            expected_module: Some(RELEASE)
        }
    );
    assert_eq!(
        kinds[6],
        &ActionKind::HealthCheck {
            method: "health".into()
        }
    );
    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module, child.installs),
        (RunStatus::Running, Some(RELEASE), 1)
    );
    assert_eq!(*h.rollout.phase(), RolloutPhase::Completed);
    assert!(h.rollout.is_settled());
}

#[test]
fn chunked_release_installs_from_the_store_on_the_childs_subnet() {
    let mut plan = plan(1, policy());
    plan.operation = Operation::Upgrade(TargetRelease {
        module_hash: RELEASE,
        delivery: Delivery::ChunkStore,
    });
    plan.children[0].subnet = SubnetIndex(3);
    let mut h = Harness::new(plan);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let install = h
        .issued
        .iter()
        .find(|action| is(Step::Install)(action))
        .unwrap();
    assert_eq!(
        install.kind,
        ActionKind::InstallChunked {
            module_hash: RELEASE,
            subnet: SubnetIndex(3),
            options: InstallOptions::default()
        }
    );
    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
}

#[test]
fn child_already_on_the_release_is_skipped_and_never_touched() {
    let mut plan = plan(2, policy());
    plan.children[1].module_hash = Some(RELEASE);
    let mut h = Harness::new(plan);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(
        h.verdict(&id(1)),
        Verdict::Skipped(SkipReason::AlreadyOnRelease)
    );
    assert!(h.steps(&id(1)).is_empty());
    assert_eq!(h.rollout.child(&id(1)).unwrap().wave(), None);
    let summary = h.rollout.summary();
    assert_eq!((summary.counts.skipped, summary.counts.upgraded), (1, 1));
}

#[test]
fn backoff_doubles_up_to_its_maximum() {
    let retry = policy().retry;
    let waits: Vec<Nanos> = [1, 2, 3, 4, 200].map(|n| retry.backoff(n)).to_vec();
    assert_eq!(waits, vec![10, 20, 40, 40, 40]);
}

#[test]
fn transient_install_rejects_are_retried_with_backoff_then_the_child_fails_and_runs_again() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(ROUNDS, |action| match is(Step::Install)(action) {
        true => Fate::Transient,
        false => Fate::Ok,
    })
    .unwrap();

    let installs: Vec<Nanos> = h
        .rollout
        .child(&id(0))
        .unwrap()
        .history()
        .iter()
        .filter(|record| record.step == Step::Install)
        .map(|record| record.issued_at)
        .collect();
    assert_eq!(installs, vec![START, START + 10, START + 30]);
    let Verdict::Failed(failure) = h.verdict(&id(0)) else {
        panic!("expected a failed child")
    };
    assert_eq!((failure.step, failure.attempts), (Step::Install, 3));
    assert!(matches!(
        failure.kind,
        FailureKind::RetriesExhausted {
            code: reject_code::SYS_TRANSIENT,
            ..
        }
    ));
    assert_eq!(h.steps(&id(0)).last(), Some(&(Path::Restart, Step::Start)));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module),
        (RunStatus::Running, Some(PREVIOUS))
    );
}

#[test]
fn trapping_install_fails_the_child_and_starts_it_on_its_previous_module() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(ROUNDS, failing(1, is(Step::Install), Fate::Permanent))
        .unwrap();

    let Verdict::Failed(failure) = h.verdict(&id(0)) else {
        panic!("expected a failed child")
    };
    assert!(matches!(
        failure.kind,
        FailureKind::Rejected {
            code: reject_code::CANISTER_ERROR,
            ..
        }
    ));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module, child.installs),
        (RunStatus::Running, Some(PREVIOUS), 0)
    );
}

#[test]
fn leave_stopped_policy_keeps_a_child_whose_install_failed_stopped() {
    let mut policy = policy();
    policy.on_failure = OnFailure::LeaveStopped;
    let mut h = Harness::new(plan(1, policy));
    h.run(ROUNDS, failing(1, is(Step::Install), Fate::Permanent))
        .unwrap();

    assert!(matches!(
        h.verdict(&id(0)),
        Verdict::LeftStopped(Failure {
            step: Step::Install,
            ..
        })
    ));
    assert!(!h.steps(&id(0)).contains(&(Path::Restart, Step::Start)));
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Stopped);
}

#[test]
fn failed_health_check_rolls_the_child_back_from_its_snapshot() {
    let mut policy = policy();
    policy.verification.health_method = Some("health".into());
    let mut h = Harness::new(plan(1, policy));
    let state_before = h.world.child(&id(0)).state;
    h.run(ROUNDS, failing(1, is(Step::HealthCheck), Fate::Permanent))
        .unwrap();

    let mut expected = upgrade_steps(true);
    expected.extend([
        (Path::RollBack, Step::Stop),
        (Path::RollBack, Step::LoadSnapshot),
        (Path::RollBack, Step::Start),
        (Path::RollBack, Step::Verify),
    ]);
    assert_eq!(h.steps(&id(0)), expected);
    let snapshot = h.rollout.child(&id(0)).unwrap().rollout_snapshot().cloned();
    let load = h
        .issued
        .iter()
        .find(|action| is(Step::LoadSnapshot)(action))
        .unwrap();
    assert_eq!(
        load.kind,
        ActionKind::LoadSnapshot {
            snapshot: snapshot.unwrap()
        }
    );
    assert_eq!(
        h.issued.last().unwrap().kind,
        ActionKind::ReadStatus {
            expected_module: Some(PREVIOUS)
        }
    );
    assert!(matches!(
        h.verdict(&id(0)),
        Verdict::RolledBack(RollbackCause::Failure(Failure {
            step: Step::HealthCheck,
            ..
        }))
    ));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module, child.state),
        (RunStatus::Running, Some(PREVIOUS), state_before)
    );
}

#[test]
fn wrong_module_read_back_rolls_the_child_back() {
    let mut h = Harness::new(plan(1, policy()));
    h.dispatch().unwrap();
    while h.in_flight[0].kind.step() != Step::Verify {
        h.answer(0, Fate::Ok).unwrap();
        h.dispatch().unwrap();
    }
    let foreign = ModuleHash([7; 32]);
    h.answer_raw(
        0,
        Outcome::Ok(Reply::Status(Observation {
            status: RunStatus::Running,
            module_hash: Some(foreign),
            snapshots: None,
            funds: None,
        })),
    )
    .unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let Verdict::RolledBack(RollbackCause::Failure(failure)) = h.verdict(&id(0)) else {
        panic!("expected a rollback")
    };
    assert_eq!(
        failure.kind,
        FailureKind::ModuleMismatch {
            expected: Some(RELEASE),
            found: Some(foreign)
        }
    );
}

#[test]
fn leave_stopped_policy_parks_a_child_that_failed_after_its_install() {
    let mut policy = policy();
    policy.verification.health_method = Some("health".into());
    policy.on_failure = OnFailure::LeaveStopped;
    let mut h = Harness::new(plan(1, policy));
    h.run(ROUNDS, failing(1, is(Step::HealthCheck), Fate::Permanent))
        .unwrap();

    assert_eq!(h.steps(&id(0)).last(), Some(&(Path::Park, Step::Stop)));
    assert!(matches!(h.verdict(&id(0)), Verdict::LeftStopped(_)));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module),
        (RunStatus::Stopped, Some(RELEASE))
    );
}

#[test]
fn install_with_unknown_outcome_that_happened_is_not_repeated() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(
        ROUNDS,
        failing(1, is(Step::Install), Fate::Unknown { applied: true }),
    )
    .unwrap();

    let steps = h.steps(&id(0));
    assert_eq!(
        steps[3..6],
        [
            (Path::Upgrade, Step::Install),
            (Path::Upgrade, Step::Reconcile),
            (Path::Upgrade, Step::Start)
        ]
    );
    assert_eq!(h.world.child(&id(0)).installs, 1);
    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
}

#[test]
fn install_with_unknown_outcome_that_did_not_happen_is_retried() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(
        ROUNDS,
        failing(1, is(Step::Install), Fate::Unknown { applied: false }),
    )
    .unwrap();

    let steps = h.steps(&id(0));
    assert_eq!(
        steps[3..6],
        [
            (Path::Upgrade, Step::Install),
            (Path::Upgrade, Step::Reconcile),
            (Path::Upgrade, Step::Install)
        ]
    );
    assert_eq!(h.world.child(&id(0)).installs, 1);
    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
}

#[test]
fn stop_with_unknown_outcome_on_a_stopped_child_goes_on() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(
        ROUNDS,
        failing(1, is(Step::Stop), Fate::Unknown { applied: true }),
    )
    .unwrap();

    assert_eq!(
        h.steps(&id(0))[1..4],
        [
            (Path::Upgrade, Step::Stop),
            (Path::Upgrade, Step::Reconcile),
            (Path::Upgrade, Step::TakeSnapshot)
        ]
    );
}

#[test]
fn stuck_stop_starts_the_child_again_and_retries_the_stop() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(ROUNDS, failing(1, is(Step::Stop), Fate::StopHangs))
        .unwrap();

    assert_eq!(
        h.steps(&id(0))[1..5],
        [
            (Path::Upgrade, Step::Stop),
            (Path::Upgrade, Step::Reconcile),
            (Path::Restart, Step::Start),
            (Path::Upgrade, Step::Stop)
        ]
    );
    let events = h.rollout.drain_events();
    assert!(events
        .iter()
        .any(|event| event.kind == EventKind::StopStuck { child: id(0) }));
    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
}

#[test]
fn stuck_stop_without_attempts_left_fails_the_child_running() {
    let mut policy = policy();
    policy.retry.max_attempts = 1;
    let mut h = Harness::new(plan(1, policy));
    h.run(ROUNDS, failing(1, is(Step::Stop), Fate::StopHangs))
        .unwrap();

    assert!(matches!(
        h.verdict(&id(0)),
        Verdict::Failed(Failure {
            kind: FailureKind::StopStuck,
            ..
        })
    ));
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Running);
}

/// `start_canister` refused for good, as the IC refuses it once the deployer is no longer a
/// controller of the child (interface spec, "IC method `start_canister`": controllers only).
fn start_refusal() -> Outcome {
    Outcome::Rejected {
        code: reject_code::CANISTER_ERROR,
        message: "Only the controllers of the canister can start it".into(),
    }
}

/// Dispatches, moving the clock to the next due time while nothing is in flight, and returns
/// the one action then in flight.
fn next_action(h: &mut Harness) -> Action {
    loop {
        let due = h.dispatch().unwrap();
        match h.in_flight.as_slice() {
            [action] => return action.clone(),
            [] => h.now = due.expect("the rollout waits for an action"),
            more => panic!("one child, {} actions in flight", more.len()),
        }
    }
}

/// Answers the cycles check, stop and snapshot, then the install with a trap: the child is
/// stopped on its previous module and must be started again. Returns the install's failure.
fn fail_the_install(h: &mut Harness) -> Failure {
    for _ in [Step::CheckCycles, Step::Stop, Step::TakeSnapshot] {
        next_action(h);
        h.answer(0, Fate::Ok).unwrap();
    }
    assert!(is(Step::Install)(&next_action(h)));
    h.answer(0, Fate::Permanent).unwrap();
    Failure {
        step: Step::Install,
        attempts: 1,
        kind: FailureKind::Rejected {
            code: reject_code::CANISTER_ERROR,
            message: "injected permanent failure".into(),
        },
    }
}

/// Refuses `times` starts of the child, each the next action, and returns when each was issued.
fn refuse_starts(h: &mut Harness, times: usize) -> Vec<Nanos> {
    (0..times)
        .map(|_| {
            let start = next_action(h);
            assert_eq!(
                (start.path, start.kind.clone()),
                (Path::Restart, ActionKind::Start)
            );
            h.answer_raw(0, start_refusal()).unwrap();
            h.now
        })
        .collect()
}

#[test]
fn start_refused_after_a_failed_install_is_retried_with_backoff_and_the_child_runs() {
    let mut h = Harness::new(plan(1, policy()));
    let install_failure = fail_the_install(&mut h);
    let refused_at = refuse_starts(&mut h, 2);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let starts: Vec<(u32, Nanos)> = h
        .rollout
        .child(&id(0))
        .unwrap()
        .history()
        .iter()
        .filter(|record| record.step == Step::Start)
        .map(|record| (record.attempt, record.issued_at))
        .collect();
    let first = refused_at[0];
    assert_eq!(starts, vec![(1, first), (2, first + 10), (3, first + 30)]);
    assert_eq!(h.verdict(&id(0)), Verdict::Failed(install_failure));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module),
        (RunStatus::Running, Some(PREVIOUS))
    );
}

#[test]
fn start_refused_on_every_attempt_leaves_the_child_stopped_for_an_operator_saying_why() {
    let mut h = Harness::new(plan(1, policy()));
    let install_failure = fail_the_install(&mut h);
    refuse_starts(&mut h, 3);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let problem = Failure {
        step: Step::Start,
        attempts: 3,
        kind: FailureKind::StartRefused {
            code: reject_code::CANISTER_ERROR,
            message: "Only the controllers of the canister can start it".into(),
        },
    };
    assert_eq!(
        h.verdict(&id(0)),
        Verdict::NeedsAttention {
            problem,
            original: Some(install_failure)
        }
    );
    assert_eq!(
        h.steps(&id(0)).len(),
        4 + 3,
        "no step after the third refusal"
    );
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Stopped);
}

#[test]
fn stuck_stop_then_refused_starts_keep_the_stuck_stop_as_the_original_cause() {
    let mut h = Harness::new(plan(1, policy()));
    assert!(is(Step::CheckCycles)(&next_action(&mut h)));
    h.answer(0, Fate::Ok).unwrap();
    next_action(&mut h);
    h.answer(0, Fate::StopHangs).unwrap();
    assert!(is(Step::Reconcile)(&next_action(&mut h)));
    h.answer(0, Fate::Ok).unwrap(); // shows the child stopping
    refuse_starts(&mut h, 3);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let Verdict::NeedsAttention { problem, original } = h.verdict(&id(0)) else {
        panic!("expected a child needing attention")
    };
    assert_eq!(
        original,
        Some(Failure {
            step: Step::Stop,
            attempts: 1,
            kind: FailureKind::StopStuck
        })
    );
    assert_eq!(
        (problem.step, problem.attempts),
        (Step::Start, 3),
        "{problem:?}"
    );
    assert!(matches!(problem.kind, FailureKind::StartRefused { .. }));
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Stopping);
}

#[test]
fn refused_release_start_fails_the_upgrade_at_once_and_the_rollbacks_start_is_retried() {
    let mut h = Harness::new(plan(1, policy()));
    for _ in [
        Step::CheckCycles,
        Step::Stop,
        Step::TakeSnapshot,
        Step::Install,
    ] {
        next_action(&mut h);
        h.answer(0, Fate::Ok).unwrap();
    }
    assert_eq!(next_action(&mut h).path, Path::Upgrade);
    h.answer_raw(0, start_refusal()).unwrap(); // the release's start
    for _ in [Step::Stop, Step::LoadSnapshot] {
        next_action(&mut h);
        h.answer(0, Fate::Ok).unwrap();
    }
    let start = next_action(&mut h);
    assert_eq!(
        (start.path, start.kind),
        (Path::RollBack, ActionKind::Start)
    );
    h.answer_raw(0, start_refusal()).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let mut expected = upgrade_steps(false);
    expected.truncate(5);
    expected.extend([
        (Path::RollBack, Step::Stop),
        (Path::RollBack, Step::LoadSnapshot),
        (Path::RollBack, Step::Start),
        (Path::RollBack, Step::Start),
        (Path::RollBack, Step::Verify),
    ]);
    assert_eq!(h.steps(&id(0)), expected);
    let Verdict::RolledBack(RollbackCause::Failure(failure)) = h.verdict(&id(0)) else {
        panic!("expected a rollback")
    };
    assert_eq!((failure.step, failure.attempts), (Step::Start, 1));
    assert!(matches!(failure.kind, FailureKind::Rejected { .. }));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module),
        (RunStatus::Running, Some(PREVIOUS))
    );
}

#[test]
fn snapshot_at_the_limit_replaces_the_oldest_snapshot_the_deployer_made() {
    let mut plan = plan(1, policy());
    plan.children[0].snapshots = (0..10).map(|n| snapshot(n, n == 3 || n == 6)).collect();
    let mut h = Harness::new(plan);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let take = h
        .issued
        .iter()
        .find(|action| is(Step::TakeSnapshot)(action))
        .unwrap();
    assert_eq!(
        take.kind,
        ActionKind::TakeSnapshot {
            replace: Some(snapshot(3, true).id)
        }
    );
    let world_ids: Vec<SnapshotId> = h
        .world
        .child(&id(0))
        .snapshots
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let engine_ids: Vec<SnapshotId> = h
        .rollout
        .child(&id(0))
        .unwrap()
        .snapshots()
        .iter()
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(world_ids, engine_ids);
    assert_eq!(world_ids.len(), 10);
    assert!(!world_ids.contains(&snapshot(3, true).id));
}

#[test]
fn child_full_of_snapshots_the_deployer_did_not_make_fails_untouched() {
    let mut plan = plan(1, policy());
    plan.children[0].snapshots = (0..10).map(|n| snapshot(n, false)).collect();
    let mut h = Harness::new(plan);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert!(h.steps(&id(0)).is_empty());
    assert!(matches!(
        h.verdict(&id(0)),
        Verdict::Failed(Failure {
            kind: FailureKind::SnapshotLimit,
            ..
        })
    ));
}

#[test]
fn snapshot_with_unknown_outcome_is_identified_from_the_listing() {
    for applied in [true, false] {
        let mut h = Harness::new(plan(1, policy()));
        h.run(
            ROUNDS,
            failing(1, is(Step::TakeSnapshot), Fate::Unknown { applied }),
        )
        .unwrap();

        let reconcile = h
            .issued
            .iter()
            .find(|action| is(Step::Reconcile)(action))
            .unwrap();
        assert_eq!(
            reconcile.kind,
            ActionKind::Reconcile {
                list_snapshots: true
            }
        );
        let taken = &h.world.child(&id(0)).taken;
        assert_eq!(taken.len(), 1, "applied: {applied}");
        assert_eq!(
            h.rollout.child(&id(0)).unwrap().rollout_snapshot(),
            taken.first()
        );
        assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
    }
}

#[test]
fn unobservable_child_is_started_and_left_for_a_human() {
    let mut h = Harness::new(plan(1, policy()));
    h.dispatch().unwrap();
    h.answer(0, Fate::Ok).unwrap(); // stop
    h.dispatch().unwrap();
    h.answer(0, Fate::Ok).unwrap(); // snapshot
    h.dispatch().unwrap();
    h.answer(0, Fate::Unknown { applied: false }).unwrap(); // install
    h.dispatch().unwrap();
    let denied = Outcome::Rejected {
        code: reject_code::CANISTER_REJECT,
        message: "only controllers may read the status".into(),
    };
    h.answer_raw(0, denied).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(h.steps(&id(0)).last(), Some(&(Path::Restart, Step::Start)));
    let Verdict::NeedsAttention { problem, .. } = h.verdict(&id(0)) else {
        panic!("expected a child needing attention")
    };
    assert_eq!(problem.step, Step::Reconcile);
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Running);
}

#[test]
fn deployer_upgrade_mid_rollout_reconciles_and_installs_each_child_once() {
    let mut policy = policy();
    policy.max_concurrency = 4;
    let mut h = Harness::new(plan(4, policy));
    h.dispatch().unwrap();
    for round in 0..2 {
        for _ in 0..h.in_flight.len() {
            h.answer(0, Fate::Ok).unwrap();
        }
        h.dispatch().unwrap();
        assert!(!h.in_flight.is_empty(), "round {round}");
    }
    // All four children have an install in flight; half of them reach the child.
    h.upgrade_deployer(|n| n % 2 == 0).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(h.rollout.summary().counts.upgraded, 4);
    for n in 0..4 {
        assert_eq!(h.world.child(&id(n)).installs, 1);
        assert!(h.steps(&id(n)).contains(&(Path::Upgrade, Step::Reconcile)));
    }
}

#[test]
fn rollout_round_trips_through_cbor() {
    let mut h = Harness::new(plan(3, policy()));
    h.dispatch().unwrap();
    h.answer(0, Fate::StopHangs).unwrap();
    h.dispatch().unwrap();

    let mut bytes = Vec::new();
    ciborium::into_writer(&h.rollout, &mut bytes).unwrap();
    let decoded: Rollout = ciborium::from_reader(bytes.as_slice()).unwrap();
    assert_eq!(decoded, h.rollout);
}

#[test]
fn child_id_longer_than_a_principal_is_refused_also_when_decoded() {
    assert_eq!(ChildId::new(vec![0; 30]), Err(ChildIdTooLong { len: 30 }));
    let mut bytes = Vec::new();
    ciborium::into_writer(&serde_bytes::ByteBuf::from(vec![0u8; 30]), &mut bytes).unwrap();
    assert!(ciborium::from_reader::<ChildId, _>(bytes.as_slice()).is_err());
}

#[test]
fn refused_outcomes_leave_the_action_in_flight() {
    let mut h = Harness::new(plan(1, policy()));
    h.dispatch_past_cycles_checks().unwrap();
    let stop = h.in_flight[0].id;
    let before = h.rollout.clone();

    assert_eq!(
        h.rollout.on_outcome(ActionId(99), Outcome::Unknown, START),
        Err(OutcomeError::NotInFlight(ActionId(99)))
    );
    let snapshot_reply = Outcome::Ok(Reply::Snapshot(SnapshotId(vec![1])));
    assert_eq!(
        h.rollout.on_outcome(stop, snapshot_reply, START),
        Err(OutcomeError::UnexpectedReply {
            action: stop,
            step: Step::Stop
        })
    );
    assert_eq!(h.rollout, before);
    h.rollout
        .on_outcome(stop, Outcome::Ok(Reply::Done), START)
        .unwrap();
    assert_eq!(
        h.rollout.on_outcome(stop, Outcome::Ok(Reply::Done), START),
        Err(OutcomeError::NotInFlight(stop))
    );
}

/// Turns a valid plan into one the engine must refuse.
type BreakPlan = fn(&mut Plan);

#[test]
fn plans_the_engine_cannot_honour_are_refused() {
    let cases: [(BreakPlan, PlanError); 9] = [
        (|plan| plan.children.clear(), PlanError::NoChildren),
        (
            |plan| plan.children.push(spec(0)),
            PlanError::DuplicateChild(id(0)),
        ),
        (
            |plan| plan.policy.max_concurrency = 0,
            PlanError::ZeroConcurrency,
        ),
        (
            |plan| plan.policy.retry.max_attempts = 0,
            PlanError::ZeroMaxAttempts,
        ),
        (
            |plan| plan.policy.retry.base_backoff_nanos = 41,
            PlanError::BackoffBaseAboveMax,
        ),
        (
            |plan| plan.policy.waves.then = vec![WaveSize::Percent(0)],
            PlanError::WavePercentOutOfRange(0),
        ),
        (
            |plan| plan.policy.failure_budget = FailureBudget::Percent(101),
            PlanError::BudgetPercentOutOfRange(101),
        ),
        (
            |plan| plan.policy.snapshot_before_install = false,
            PlanError::RollBackWithoutSnapshot,
        ),
        (
            |plan| plan.policy.verification.health_method = Some(String::new()),
            PlanError::EmptyHealthMethod,
        ),
    ];
    for (break_plan, expected) in cases {
        let mut plan = plan(2, policy());
        break_plan(&mut plan);
        assert_eq!(Rollout::new(plan, START).err(), Some(expected));
    }
}

#[test]
fn reject_codes_are_classified_per_interface_spec_reject_codes_section() {
    use reject_code::*;
    let classes: Vec<RejectClass> = [
        SYS_FATAL,
        SYS_TRANSIENT,
        DESTINATION_INVALID,
        CANISTER_REJECT,
        CANISTER_ERROR,
        SYS_UNKNOWN,
        7,
    ]
    .map(classify)
    .to_vec();
    use RejectClass::*;
    assert_eq!(
        classes,
        vec![Permanent, Transient, Permanent, Permanent, Permanent, Unknown, Unknown]
    );
}

#[test]
fn history_records_each_attempt_with_its_times_and_result() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(ROUNDS, failing(1, is(Step::Install), Fate::Transient))
        .unwrap();

    let history = h.rollout.child(&id(0)).unwrap().history();
    let installs: Vec<&StepRecord> = history.iter().filter(|r| r.step == Step::Install).collect();
    assert_eq!(installs.len(), 2);
    assert_eq!((installs[0].attempt, installs[1].attempt), (1, 2));
    assert!(matches!(
        installs[0].result,
        Some(CallResult::Rejected {
            code: reject_code::SYS_TRANSIENT,
            ..
        })
    ));
    assert_eq!(installs[1].result, Some(CallResult::Replied));
    assert!(history.iter().all(|r| r.finished_at >= Some(r.issued_at)));
}

#[test]
fn a_subnet_holds_no_more_children_stopped_than_the_policy_allows() {
    let mut policy = policy();
    policy.max_concurrency = 6;
    policy.max_stopped_per_subnet = Some(2);
    let mut plan = plan(6, policy);
    for (n, child) in plan.children.iter_mut().enumerate() {
        child.subnet = SubnetIndex(u32::from(n >= 4));
    }
    let mut h = Harness::new(plan);

    h.dispatch_past_cycles_checks().unwrap();
    let stopped: Vec<u32> = h
        .in_flight
        .iter()
        .map(|action| action.child.as_bytes()[3].into())
        .collect();
    assert_eq!(stopped, [0, 1, 4, 5], "two stops per subnet, the rest wait");
    assert!(h.in_flight.iter().all(is(Step::Stop)));
    // The first child of subnet 0 runs again only at its start: until then, no third stop.
    while h.steps(&id(0)).last() != Some(&(Path::Upgrade, Step::Start)) {
        let position = h.position(&id(0));
        h.answer(position, Fate::Ok).unwrap();
        h.dispatch().unwrap();
        assert!(
            !h.steps(&id(2)).contains(&(Path::Upgrade, Step::Stop)),
            "child 2 waits for a stopped child to run"
        );
    }
    let position = h.position(&id(0));
    h.answer(position, Fate::Ok).unwrap();
    h.dispatch().unwrap();
    assert_eq!(
        h.steps(&id(2)),
        [
            (Path::Upgrade, Step::CheckCycles),
            (Path::Upgrade, Step::Stop)
        ]
    );
    assert!(!h.steps(&id(3)).contains(&(Path::Upgrade, Step::Stop)));

    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    for n in 0..6 {
        assert_eq!(h.verdict(&id(n)), Verdict::Upgraded);
    }
}

#[test]
fn a_subnet_has_at_most_its_limit_of_snapshots_in_flight_and_its_installs_do_not_wait_for_them() {
    let limit = SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET;
    let on_subnet_0 = limit + 4;
    let mut policy = policy();
    policy.max_concurrency = on_subnet_0 + 2;
    let mut plan = plan(on_subnet_0 + 2, policy);
    // Two children on subnet 1, whose snapshots do not wait for subnet 0's.
    for child in plan.children.iter_mut().skip(on_subnet_0 as usize) {
        child.subnet = SubnetIndex(1);
    }
    let mut h = Harness::new(plan);
    let snapshots_on = |h: &Harness, subnet: u32| {
        h.in_flight
            .iter()
            .filter(|action| is(Step::TakeSnapshot)(action))
            .filter(|action| {
                (u32::from(action.child.as_bytes()[3]) >= on_subnet_0) == (subnet == 1)
            })
            .count() as u32
    };
    h.dispatch_past_cycles_checks().unwrap();
    while let Some(position) = h.in_flight.iter().position(is(Step::Stop)) {
        h.answer(position, Fate::Ok).unwrap();
        h.dispatch().unwrap();
    }
    assert_eq!(snapshots_on(&h, 0), limit, "the rest of subnet 0 waits");
    assert_eq!(
        snapshots_on(&h, 1),
        2,
        "subnet 1 does not wait for subnet 0"
    );

    // A snapshot taken: its child installs at once, and a waiting child takes the place.
    let position = h.in_flight.iter().position(is(Step::TakeSnapshot)).unwrap();
    let child = h.in_flight[position].child.clone();
    h.answer(position, Fate::Ok).unwrap();
    h.dispatch().unwrap();
    assert_eq!(
        h.steps(&child).last(),
        Some(&(Path::Upgrade, Step::Install))
    );
    assert_eq!(snapshots_on(&h, 0), limit);

    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    for n in 0..on_subnet_0 + 2 {
        assert_eq!(h.verdict(&id(n)), Verdict::Upgraded);
    }
}

#[test]
fn a_child_left_stopped_waits_for_its_rollback_while_its_subnet_holds_the_limit_stopped() {
    let mut policy = policy();
    policy.max_concurrency = 2;
    policy.max_stopped_per_subnet = Some(1);
    policy.on_failure = OnFailure::LeaveStopped;
    policy.retry.max_attempts = 1;
    let mut h = Harness::new(plan(2, policy));
    h.dispatch_past_cycles_checks().unwrap();
    // Child 0 takes subnet 0's stopped place; a pause for cycles during its install sends
    // child 1 back to the queue, so after the resume child 1 is still checking its cycles when
    // child 0 fails its verification and parks (stopped) first.
    let answered = |h: &mut Harness, step: Step, fate: Fate| {
        while h.in_flight[h.position(&id(0))].kind.step() != step {
            let position = h.position(&id(0));
            h.answer(position, Fate::Ok).unwrap();
            h.dispatch().unwrap();
        }
        let position = h.position(&id(0));
        h.answer(position, fate).unwrap();
    };
    answered(&mut h, Step::Install, Fate::Ok);
    h.rollout.pause_for_cycles(1, 2, h.now).unwrap();
    h.dispatch().unwrap();
    answered(&mut h, Step::Verify, Fate::Transient);
    h.command(Command::Resume).unwrap();
    h.dispatch().unwrap();
    for child in [id(1), id(0)] {
        let position = h.position(&child);
        h.answer(position, Fate::Ok).unwrap();
        h.dispatch().unwrap();
    }
    assert!(matches!(h.verdict(&id(0)), Verdict::LeftStopped(_)));
    assert_eq!(h.in_flight[h.position(&id(1))].kind.step(), Step::Stop);

    h.command(Command::RollBackAll).unwrap();
    h.dispatch().unwrap();
    // Child 1 stops, is cancelled and started again; only then may child 0, which begins its
    // rollback stopped, take subnet 0's one stopped place.
    while h.rollout.child(&id(1)).unwrap().state() != ChildState::Finished(Verdict::Cancelled) {
        assert!(!h
            .steps(&id(0))
            .contains(&(Path::RollBack, Step::LoadSnapshot)));
        let position = h.position(&id(1));
        h.answer(position, Fate::Ok).unwrap();
        h.dispatch().unwrap();
    }
    assert_eq!(
        h.steps(&id(0)).last(),
        Some(&(Path::RollBack, Step::LoadSnapshot))
    );
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert!(matches!(h.verdict(&id(0)), Verdict::RolledBack(_)));
}

#[test]
fn a_zero_stopped_per_subnet_limit_is_refused() {
    let mut policy = policy();
    policy.max_stopped_per_subnet = Some(0);
    assert_eq!(
        Rollout::new(plan(1, policy), START),
        Err(PlanError::ZeroStoppedPerSubnet)
    );
}

#[test]
fn snapshots_kept_per_child_are_one_to_the_ics_maximum() {
    for keep in [0, 11] {
        let mut policy = policy();
        policy.keep_snapshots = Some(keep);
        assert_eq!(
            Rollout::new(plan(1, policy), START),
            Err(PlanError::KeepSnapshotsOutOfRange(keep))
        );
    }
}

#[test]
fn reject_messages_are_kept_whole_up_to_the_limit_and_cut_at_a_character_after() {
    let fits = "a".repeat(MAX_REJECT_MESSAGE_BYTES);
    assert_eq!(bounded_reject_message(&fits), fits);
    // A two-byte character straddles the limit: the cut falls before it.
    let straddling = format!(
        "{}é{}",
        "a".repeat(MAX_REJECT_MESSAGE_BYTES - 1),
        "b".repeat(10)
    );
    let kept = bounded_reject_message(&straddling);
    assert!(kept.starts_with(&"a".repeat(MAX_REJECT_MESSAGE_BYTES - 1)));
    assert!(!kept.contains('é'));
    assert!(kept.ends_with(&format!(
        "[cut: the reject message had {} bytes]",
        straddling.len()
    )));
}

#[test]
fn a_child_that_cannot_pay_for_its_snapshot_and_install_is_left_running_untouched() {
    let mut h = Harness::new(plan(2, policy()));
    let funds = h.world.child(&id(0)).funds;
    let required = cycles_for_upgrade(&funds, true);
    // Child 0 is one cycle short; child 1 holds exactly enough.
    h.world.children.get_mut(&id(0)).unwrap().funds.cycles = required - 1;
    h.world.children.get_mut(&id(1)).unwrap().funds.cycles = required;
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(
        h.verdict(&id(0)),
        Verdict::Failed(Failure {
            step: Step::CheckCycles,
            attempts: 1,
            kind: FailureKind::InsufficientCycles {
                balance: required - 1,
                required
            }
        })
    );
    assert_eq!(h.steps(&id(0)), [(Path::Upgrade, Step::CheckCycles)]);
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module, child.snapshots.len()),
        (RunStatus::Running, Some(PREVIOUS), 0)
    );
    assert_eq!(h.verdict(&id(1)), Verdict::Upgraded);
    assert_eq!(h.rollout.summary().waves[0].failures, 1);
}

#[test]
fn without_snapshots_an_upgrade_needs_the_freezing_limit_once() {
    let mut policy = policy();
    policy.snapshot_before_install = false;
    policy.on_failure = OnFailure::LeaveStopped;
    let mut h = Harness::new(plan(1, policy));
    let funds = h.world.child(&id(0)).funds;
    assert!(cycles_for_upgrade(&funds, false) < cycles_for_upgrade(&funds, true));
    h.world.children.get_mut(&id(0)).unwrap().funds.cycles = cycles_for_upgrade(&funds, false);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
}

/// `stop_canister` refused for good, as the IC refuses it to a deployer that is no longer a
/// controller (interface spec, "IC method `stop_canister`": controllers only): the stop did
/// nothing, the child runs, and the verdict says so rather than "stays stopped".
#[test]
fn an_upgrade_stop_refused_for_good_fails_the_child_still_running_without_a_start() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(ROUNDS, failing(1, is(Step::Stop), Fate::Permanent))
        .unwrap();

    assert_eq!(
        h.steps(&id(0)),
        [
            (Path::Upgrade, Step::CheckCycles),
            (Path::Upgrade, Step::Stop)
        ],
        "no read and no start after the refusal"
    );
    let Verdict::Failed(failure) = h.verdict(&id(0)) else {
        panic!("expected a failed child, got {:?}", h.verdict(&id(0)))
    };
    assert_eq!((failure.step, failure.attempts), (Step::Stop, 1));
    assert!(matches!(
        failure.kind,
        FailureKind::Rejected { code: 5, .. }
    ));
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Running);
}

#[test]
fn the_summary_counts_failures_by_the_kind_that_came_first() {
    let mut policy = policy();
    policy.verification.health_method = Some("health".into());
    let mut h = Harness::new(plan(3, policy));
    let mut install = failing(1, is(Step::Install), Fate::Permanent);
    // Transient on every attempt the retry policy allows: retries exhausted.
    let mut health = failing(usize::MAX, is(Step::HealthCheck), Fate::Transient);
    h.run(ROUNDS, |action| match install(action) {
        Fate::Ok => health(action),
        fate => fate,
    })
    .unwrap();

    let summary = h.rollout.summary();
    let kinds: Vec<(&str, u32)> = summary
        .failures_by_kind
        .iter()
        .flatten()
        .map(|count| (count.kind.as_str(), count.children))
        .collect();
    // One install rejected; the other children's health checks never answered.
    assert_eq!(kinds, [("Rejected", 1), ("RetriesExhausted", 2)]);
    assert_eq!(summary.counts.failed + summary.counts.rolled_back, 3);
}

#[test]
fn a_child_id_is_stored_as_cbor_bytes_and_shown_as_a_candid_principal() {
    let bytes = vec![0, 0, 0, 0, 0, 0x10, 0, 7, 1, 1];
    let child = ChildId::new(bytes.clone()).unwrap();
    // The stored form release 0.1 wrote, when a child id was a byte string.
    let (mut stored, mut as_bytes) = (Vec::new(), Vec::new());
    ciborium::into_writer(&child, &mut stored).unwrap();
    ciborium::into_writer(&serde_bytes::ByteBuf::from(bytes.clone()), &mut as_bytes).unwrap();
    assert_eq!(stored, as_bytes);
    let decoded: ChildId = ciborium::from_reader(stored.as_slice()).unwrap();
    assert_eq!(decoded, child);
    // The interface's form is a principal, and decodes back.
    let principal = candid::Principal::from_slice(&bytes);
    let candid_bytes = candid::encode_one(&child).unwrap();
    assert_eq!(candid_bytes, candid::encode_one(principal).unwrap());
    assert_eq!(candid::decode_one::<ChildId>(&candid_bytes).unwrap(), child);
}

fn backup_plan(children: u32, stop_children: bool) -> Plan {
    let mut plan = plan(children, policy());
    plan.operation = Operation::Backup(BackupRun { stop_children });
    plan
}

#[test]
fn backup_run_snapshots_a_running_child_and_installs_nothing() {
    let mut h = Harness::new(backup_plan(2, false));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(
        h.steps(&id(0)),
        [Step::CheckCycles, Step::TakeSnapshot, Step::Verify].map(|step| (Path::Upgrade, step))
    );
    for n in 0..2 {
        assert_eq!(h.verdict(&id(n)), Verdict::BackedUp);
        let child = h.world.child(&id(n));
        assert_eq!(
            (child.status, child.module, child.installs, child.state),
            (RunStatus::Running, Some(PREVIOUS), 0, 1000 + u64::from(n)),
            "never stopped, nothing installed"
        );
        let taken = h.rollout.child(&id(n)).unwrap().rollout_snapshot().cloned();
        assert_eq!(taken.as_ref(), child.taken.first());
        assert!(child
            .snapshots
            .iter()
            .any(|held| Some(&held.id) == taken.as_ref()));
    }
    let verify = h
        .issued
        .iter()
        .find(|action| action.kind.step() == Step::Verify);
    assert_eq!(
        verify.map(|action| &action.kind),
        Some(&ActionKind::ReadStatus {
            expected_module: Some(PREVIOUS)
        }),
        "a backed-up child must still run its own module"
    );
    assert_eq!(h.rollout.summary().counts.backed_up, Some(2));
    assert_eq!(h.rollout.summary().counts.upgraded, 0);
}

#[test]
fn backup_run_that_stops_children_starts_each_again_after_its_snapshot() {
    let mut h = Harness::new(backup_plan(1, true));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(
        h.steps(&id(0)),
        [
            Step::CheckCycles,
            Step::Stop,
            Step::TakeSnapshot,
            Step::Start,
            Step::Verify
        ]
        .map(|step| (Path::Upgrade, step))
    );
    assert_eq!(h.verdict(&id(0)), Verdict::BackedUp);
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Running);
}

#[test]
fn backup_run_whose_snapshot_is_refused_starts_the_child_again_and_fails_it() {
    let mut h = Harness::new(backup_plan(1, true));
    h.run(ROUNDS, failing(1, is(Step::TakeSnapshot), Fate::Permanent))
        .unwrap();

    assert!(matches!(
        h.verdict(&id(0)),
        Verdict::Failed(Failure {
            step: Step::TakeSnapshot,
            ..
        })
    ));
    let child = h.world.child(&id(0));
    assert_eq!((child.status, child.installs), (RunStatus::Running, 0));
}

#[test]
fn backup_run_keeps_the_newest_snapshots_the_deployer_made() {
    let mut plan = backup_plan(1, false);
    plan.policy.keep_snapshots = Some(2);
    plan.children[0].snapshots = vec![snapshot(1, true), snapshot(2, false), snapshot(3, true)];
    let mut h = Harness::new(plan);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(h.verdict(&id(0)), Verdict::BackedUp);
    let held: Vec<(bool, SnapshotId)> = h
        .world
        .child(&id(0))
        .snapshots
        .iter()
        .map(|held| (held.by_deployer, held.id.clone()))
        .collect();
    assert_eq!(
        held.len(),
        3,
        "the oldest of the deployer's two was replaced"
    );
    assert!(!held.iter().any(|(_, id)| *id == snapshot(1, true).id));
    assert!(
        held.contains(&(false, snapshot(2, false).id)),
        "another's is kept"
    );
}

#[test]
fn backup_run_has_nothing_to_roll_back() {
    let mut h = Harness::new(backup_plan(1, false));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(
        h.command(Command::RollBackAll),
        Err(ControlError::NothingInstalled)
    );
}

fn restore_plan(snapshot: &ExistingSnapshot) -> Plan {
    let mut plan = plan(1, policy());
    plan.policy.snapshot_before_install = false;
    plan.policy.on_failure = OnFailure::LeaveStopped;
    plan.children[0].snapshots = vec![snapshot.clone()];
    plan.operation = Operation::Restore(RestoreRun {
        snapshot: snapshot.id.clone(),
    });
    plan
}

#[test]
fn restore_loads_the_chosen_snapshot_and_verifies_the_child_runs_it() {
    let chosen = snapshot(7, false);
    let mut h = Harness::new(restore_plan(&chosen));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(
        h.steps(&id(0)),
        [Step::Stop, Step::LoadSnapshot, Step::Start, Step::Verify]
            .map(|step| (Path::RollBack, step))
    );
    assert!(h.issued.iter().any(|action| action.kind
        == ActionKind::LoadSnapshot {
            snapshot: chosen.id.clone()
        }));
    assert_eq!(
        h.verdict(&id(0)),
        Verdict::RolledBack(RollbackCause::Restore)
    );
    let child = h.world.child(&id(0));
    // The world's snapshots made before the rollout hold state 0.
    assert_eq!(
        (child.status, child.state, child.installs),
        (RunStatus::Running, 0, 0)
    );
    let restored = h.rollout.child(&id(0)).unwrap().restored_module();
    assert_eq!(restored, Some(PREVIOUS), "the module the snapshot held");
}

#[test]
fn restore_to_a_snapshot_the_child_lacks_starts_it_again_and_needs_attention() {
    let mut plan = restore_plan(&snapshot(7, false));
    plan.operation = Operation::Restore(RestoreRun {
        snapshot: snapshot(8, false).id,
    });
    let mut h = Harness::new(plan);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert!(matches!(
        h.verdict(&id(0)),
        Verdict::NeedsAttention {
            problem: Failure {
                step: Step::LoadSnapshot,
                ..
            },
            ..
        }
    ));
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.state),
        (RunStatus::Running, 1000),
        "started again, its state untouched"
    );
}

#[test]
fn restore_plans_name_one_child_and_roll_nothing_back() {
    let mut plan = restore_plan(&snapshot(7, false));
    plan.children.push(spec(1));
    assert_eq!(
        Rollout::new(plan, START).unwrap_err(),
        PlanError::RestoreOfSeveralChildren(2)
    );
    let mut h = Harness::new(restore_plan(&snapshot(7, false)));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(
        h.command(Command::RollBackAll),
        Err(ControlError::NothingInstalled)
    );
}

#[test]
fn retention_lowered_deletes_the_deployers_oldest_snapshots_and_no_other() {
    let mut plan = plan(1, policy());
    plan.policy.keep_snapshots = Some(1);
    plan.children[0].snapshots = vec![
        snapshot(1, true),
        snapshot(2, false),
        snapshot(3, true),
        snapshot(4, true),
    ];
    let mut h = Harness::new(plan);
    // The first deletion fails transiently and is retried.
    h.run(
        ROUNDS,
        failing(1, is(Step::DeleteSnapshot), Fate::Transient),
    )
    .unwrap();

    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
    let child = h.world.child(&id(0));
    let held: Vec<(SnapshotId, bool)> = child
        .snapshots
        .iter()
        .map(|held| (held.id.clone(), held.by_deployer))
        .collect();
    let taken = child.taken[0].clone();
    assert_eq!(held, vec![(snapshot(2, false).id, false), (taken, true)]);
    let steps = h.steps(&id(0));
    let deletions = steps
        .iter()
        .filter(|(_, step)| *step == Step::DeleteSnapshot)
        .count();
    assert_eq!(deletions, 3, "two deletions, one of them retried");
    let install = steps.iter().position(|(_, step)| *step == Step::Install);
    let last_deletion = steps
        .iter()
        .rposition(|(_, step)| *step == Step::DeleteSnapshot);
    assert!(
        last_deletion < install,
        "deleted before the install: {steps:?}"
    );
}

#[test]
fn a_deletion_refused_for_good_leaves_the_snapshot_and_the_upgrade_goes_on() {
    let mut plan = plan(1, policy());
    plan.policy.keep_snapshots = Some(1);
    plan.children[0].snapshots = vec![snapshot(1, true), snapshot(3, true)];
    let mut h = Harness::new(plan);
    h.run(
        ROUNDS,
        failing(1, is(Step::DeleteSnapshot), Fate::Permanent),
    )
    .unwrap();

    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
    let engine = h.rollout.child(&id(0)).unwrap();
    let own: Vec<&ExistingSnapshot> = engine
        .snapshots()
        .iter()
        .filter(|held| held.made_by_deployer)
        .collect();
    assert_eq!(
        own.len(),
        1,
        "the refused one is no longer counted: {own:?}"
    );
    assert_eq!(h.world.child(&id(0)).snapshots.len(), 2);
}

#[test]
fn children_taken_apart_are_freed_a_slice_at_a_time() {
    let mut rollout = Rollout::new(plan(5, policy()), START).unwrap();
    let mut apart = rollout.take_children_apart();
    assert!(rollout.children().is_empty());
    assert!(apart.free_some(2), "3 left");
    assert!(apart.free_some(2), "1 left");
    assert!(!apart.free_some(2), "none left");
    assert!(!apart.free_some(2));
}
