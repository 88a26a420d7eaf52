//! Scenario tests of the rollout as a whole: waves, concurrency, the failure budget,
//! pause, abort, rollback of the whole rollout, and what dashboards read.

use super::world::{id, is, plan, policy, upgraded_state, Fate, Harness};
use super::world::{PREVIOUS, RELEASE, ROUNDS, START};
use super::*;

#[test]
fn rollout_of_children_all_on_the_release_completes_at_once() {
    let mut plan = plan(2, policy());
    for child in &mut plan.children {
        child.module_hash = Some(RELEASE);
    }
    let mut rollout = Rollout::new(plan, START).unwrap();

    assert_eq!(*rollout.phase(), RolloutPhase::Completed);
    assert_eq!(rollout.summary().current_wave, None);
    assert!(rollout.next_actions(START, u32::MAX).actions.is_empty());
}

#[test]
fn waves_run_canary_then_percent_then_the_rest_each_after_the_bake_time() {
    let mut policy = policy();
    policy.waves = WavePlan {
        canary: 1,
        then: vec![WaveSize::Percent(30)],
    };
    policy.bake_nanos = 1_000;
    let mut h = Harness::new(plan(10, policy));

    let first = h.rollout.next_actions(START, u32::MAX);
    assert_eq!(first.actions.len(), 1, "only the canary starts");
    h.in_flight.extend(first.actions.clone());
    h.issued.extend(first.actions);
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let summary = h.rollout.summary();
    let sizes: Vec<u32> = summary.waves.iter().map(|wave| wave.size).collect();
    assert_eq!(sizes, vec![1, 3, 6]);
    for pair in summary.waves.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        assert_eq!(next.started_at, Some(previous.finished_at.unwrap() + 1_000));
    }
    for child in h.rollout.children() {
        let wave = &summary.waves[child.wave().unwrap() as usize];
        let first_step = child.history()[0].issued_at;
        assert!(first_step >= wave.started_at.unwrap());
    }
    assert_eq!(summary.counts.upgraded, 10);
}

#[test]
fn next_due_names_the_end_of_the_bake_time() {
    let mut policy = policy();
    policy.waves = WavePlan {
        canary: 1,
        then: vec![],
    };
    policy.bake_nanos = 500;
    let mut h = Harness::new(plan(2, policy));
    h.dispatch().unwrap();
    while !h.in_flight.is_empty() {
        h.answer(0, Fate::Ok).unwrap();
        h.dispatch().unwrap();
    }
    let canary_done = h.rollout.summary().waves[0].finished_at.unwrap();

    let dispatch = h.rollout.next_actions(h.now, u32::MAX);
    assert!(dispatch.actions.is_empty());
    assert_eq!(dispatch.next_due, Some(canary_done + 500));
    assert_eq!(
        h.rollout.next_actions(canary_done + 500, u32::MAX).actions[0].kind,
        ActionKind::CheckCycles
    );
}

#[test]
fn no_more_children_are_active_than_the_concurrency_limit() {
    let mut policy = policy();
    policy.max_concurrency = 2;
    let mut h = Harness::new(plan(5, policy));

    assert_eq!(h.rollout.next_actions(START, u32::MAX).actions.len(), 2);
    assert_eq!(h.rollout.summary().counts.active, 2);
}

#[test]
fn failure_budget_pauses_the_rollout_and_says_why() {
    let mut policy = policy();
    policy.max_concurrency = 1;
    policy.failure_budget = FailureBudget::Count(1);
    let mut h = Harness::new(plan(4, policy));
    h.run(ROUNDS, |action| match is(Step::Install)(action) {
        true => Fate::Permanent,
        false => Fate::Ok,
    })
    .unwrap();

    let paused = RolloutPhase::Paused(PauseReason::FailureBudgetExceeded {
        wave: 0,
        failures: 2,
        tolerated: 1,
    });
    assert_eq!(*h.rollout.phase(), paused);
    let summary = h.rollout.summary();
    assert_eq!((summary.counts.failed, summary.counts.queued), (2, 2));
    assert!(h.rollout.is_settled());

    h.command(Command::Resume).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(*h.rollout.phase(), RolloutPhase::Completed);
    assert_eq!(h.rollout.summary().counts.upgraded, 2);
}

#[test]
fn pause_starts_no_new_child_but_lets_started_ones_finish() {
    let mut policy = policy();
    policy.max_concurrency = 1;
    let mut h = Harness::new(plan(3, policy));
    h.dispatch().unwrap();
    h.command(Command::Pause).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
    assert!(h.steps(&id(1)).is_empty() && h.steps(&id(2)).is_empty());
    assert_eq!(
        *h.rollout.phase(),
        RolloutPhase::Paused(PauseReason::Operator)
    );

    h.command(Command::Resume).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(h.rollout.summary().counts.upgraded, 3);
}

#[test]
fn abort_brings_started_children_back_to_running_and_starts_no_more() {
    let mut policy = policy();
    policy.max_concurrency = 2;
    let mut h = Harness::new(plan(3, policy));
    h.dispatch_past_cycles_checks().unwrap();
    h.answer(h.position(&id(0)), Fate::Ok).unwrap(); // child 0 stopped, idle
    h.command(Command::Abort).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    for n in 0..2 {
        assert_eq!(h.verdict(&id(n)), Verdict::Cancelled);
        let child = h.world.child(&id(n));
        assert_eq!(
            (child.status, child.module),
            (RunStatus::Running, Some(PREVIOUS))
        );
    }
    assert_eq!(
        h.steps(&id(0)),
        vec![
            (Path::Upgrade, Step::CheckCycles),
            (Path::Upgrade, Step::Stop),
            (Path::Restart, Step::Start)
        ]
    );
    assert_eq!(h.verdict(&id(2)), Verdict::NotStarted);
    assert!(h.steps(&id(2)).is_empty());
    assert_eq!(*h.rollout.phase(), RolloutPhase::Aborted);
    assert!(h.rollout.summary().finished_at.is_some());
}

#[test]
fn abort_lets_an_installed_child_finish_its_upgrade() {
    let mut h = Harness::new(plan(1, policy()));
    h.dispatch().unwrap();
    while h.in_flight[0].kind.step() != Step::Install {
        h.answer(0, Fate::Ok).unwrap();
        h.dispatch().unwrap();
    }
    h.command(Command::Abort).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(h.verdict(&id(0)), Verdict::Upgraded);
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Running);
}

#[test]
fn rollback_all_restores_every_upgraded_child_from_its_snapshot() {
    let mut h = Harness::new(plan(3, policy()));
    let states: Vec<u64> = (0..3).map(|n| h.world.child(&id(n)).state).collect();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(h.rollout.summary().counts.upgraded, 3);
    assert_eq!(h.world.child(&id(0)).state, upgraded_state(states[0]));

    h.command(Command::RollBackAll).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    assert_eq!(*h.rollout.phase(), RolloutPhase::RolledBack);
    for n in 0..3 {
        assert_eq!(
            h.verdict(&id(n)),
            Verdict::RolledBack(RollbackCause::Requested)
        );
        let child = h.world.child(&id(n));
        assert_eq!(
            (child.status, child.module, child.state),
            (RunStatus::Running, Some(PREVIOUS), states[n as usize])
        );
        assert_eq!(
            h.steps(&id(n))[6..],
            [
                (Path::RollBack, Step::Stop),
                (Path::RollBack, Step::LoadSnapshot),
                (Path::RollBack, Step::Start),
                (Path::RollBack, Step::Verify)
            ]
        );
    }
}

#[test]
fn rollback_all_without_snapshots_is_refused() {
    let mut policy = policy();
    policy.snapshot_before_install = false;
    policy.on_failure = OnFailure::LeaveStopped;
    let mut h = Harness::new(plan(1, policy));

    assert_eq!(
        h.command(Command::RollBackAll),
        Err(ControlError::NoSnapshots)
    );
    assert_eq!(*h.rollout.phase(), RolloutPhase::Running);
}

#[test]
fn control_commands_are_refused_in_phases_they_do_not_apply_to() {
    let mut h = Harness::new(plan(1, policy()));
    assert_eq!(
        h.command(Command::Resume),
        Err(ControlError::NotAllowed {
            command: Command::Resume,
            phase: RolloutPhase::Running
        })
    );
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    for command in [Command::Pause, Command::Abort] {
        assert_eq!(
            h.command(command),
            Err(ControlError::NotAllowed {
                command,
                phase: RolloutPhase::Completed
            })
        );
    }
}

#[test]
fn failure_budget_percent_rounds_down_and_wave_percent_rounds_up() {
    assert_eq!(FailureBudget::Percent(10).tolerated(19), 1);
    assert_eq!(FailureBudget::Percent(10).tolerated(20), 2);
    let mut policy = policy();
    policy.waves = WavePlan {
        canary: 2,
        then: vec![
            WaveSize::Percent(25),
            WaveSize::Count(0),
            WaveSize::Count(100),
        ],
    };
    assert_eq!(policy.waves.sizes(9), vec![2, 3, 4]);
}

#[test]
fn summary_counts_children_per_state_and_per_wave() {
    let mut policy = policy();
    policy.waves = WavePlan {
        canary: 2,
        then: vec![],
    };
    let mut plan = plan(5, policy);
    plan.children[4].module_hash = Some(RELEASE);
    let mut h = Harness::new(plan);
    h.dispatch().unwrap();

    let summary = h.rollout.summary();
    assert_eq!(summary.current_wave, Some(0));
    assert_eq!(summary.in_flight, 2);
    assert_eq!(
        (
            summary.counts.active,
            summary.counts.queued,
            summary.counts.skipped
        ),
        (2, 2, 1)
    );
    assert_eq!(summary.waves[0].counts.active, 2);
    assert_eq!(summary.waves[1].counts.queued, 2);
    assert_eq!(summary.started_at, START);
}

#[test]
fn events_tell_the_story_once() {
    let mut h = Harness::new(plan(1, policy()));
    h.run(ROUNDS, |_| Fate::Ok).unwrap();

    let kinds: Vec<EventKind> = h
        .rollout
        .drain_events()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds.first(),
        Some(&EventKind::Created {
            children: 1,
            skipped: 0,
            waves: 1
        })
    );
    assert!(kinds.contains(&EventKind::ChildStarted {
        child: id(0),
        wave: 0
    }));
    assert!(kinds.contains(&EventKind::ChildFinished {
        child: id(0),
        verdict: Verdict::Upgraded
    }));
    assert_eq!(kinds.last(), Some(&EventKind::Completed));
    assert!(h.rollout.drain_events().is_empty());
}

#[test]
fn a_dispatch_limit_holds_back_exactly_the_ready_actions_it_does_not_issue() {
    let mut policy = policy();
    policy.max_concurrency = 5;
    let mut rollout = Rollout::new(plan(6, policy), START).unwrap();

    let first = rollout.next_actions(START, 2);
    assert_eq!((first.actions.len(), first.held_back), (2, 3));
    let held: Vec<ChildState> = (2..5)
        .map(|n| rollout.child(&id(n)).unwrap().state())
        .collect();
    assert!(held.iter().all(|state| *state
        == ChildState::Active {
            path: Path::Upgrade,
            step: Step::CheckCycles
        }));
    assert!((2..5).all(|n| rollout.child(&id(n)).unwrap().history().is_empty()));
    assert_eq!(rollout.summary().in_flight, 2);

    // Nothing issued, nothing lost: the two in flight are busy, not held back.
    let none = rollout.next_actions(START, 0);
    assert_eq!((none.actions.len(), none.held_back), (0, 3));

    let rest = rollout.next_actions(START, u32::MAX);
    let children: Vec<ChildId> = rest.actions.iter().map(|a| a.child.clone()).collect();
    assert_eq!(children, vec![id(2), id(3), id(4)]);
    assert_eq!(rest.held_back, 0);
    assert!(rest
        .actions
        .iter()
        .all(|a| a.kind == ActionKind::CheckCycles));
}

#[test]
fn held_back_children_go_first_in_the_order_they_waited() {
    let mut policy = policy();
    policy.max_concurrency = 3;
    let mut h = Harness::new(plan(3, policy));
    h.max_new = 1;
    h.dispatch().unwrap();
    assert_eq!(h.in_flight[0].child, id(0));

    // Child 0 is ready again at once, but children 1 and 2 have waited longer.
    let mut served = Vec::new();
    for _ in 0..3 {
        h.answer(0, Fate::Ok).unwrap();
        h.dispatch().unwrap();
        served.push(h.in_flight[0].child.clone());
    }
    assert_eq!(served, vec![id(1), id(2), id(0)]);

    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(h.rollout.summary().counts.upgraded, 3);
}

#[test]
fn pause_for_cycles_says_what_was_missing_restarts_the_stopped_child_and_resume_begins_it_anew() {
    let mut policy = policy();
    policy.max_concurrency = 1;
    let mut h = Harness::new(plan(2, policy));
    h.dispatch_past_cycles_checks().unwrap();
    h.answer(0, Fate::Ok).unwrap(); // child 0 stopped
    h.dispatch().unwrap();
    h.answer(0, Fate::Ok).unwrap(); // and snapshotted: its install is next
    let first_snapshot = h.world.child(&id(0)).taken[0].clone();
    h.rollout.drain_events();
    let balance = u128::from(u64::MAX) + 1;
    let required = balance * 3;

    h.rollout
        .pause_for_cycles(balance, required, h.now)
        .unwrap();
    let paused = RolloutPhase::Paused(PauseReason::InsufficientCycles { balance, required });
    assert_eq!(*h.rollout.phase(), paused);
    assert_eq!(
        h.rollout.drain_events()[0],
        Event {
            at: h.now,
            kind: EventKind::Paused {
                reason: PauseReason::InsufficientCycles { balance, required }
            }
        }
    );
    // The reason survives the deployer's upgrade (CBOR) even above 64 bits.
    h.upgrade_deployer(|_| true).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    // No child waits stopped for the top-up: child 0 was started again, back in the queue.
    assert_eq!(h.world.child(&id(0)).status, RunStatus::Running);
    assert_eq!(h.world.child(&id(0)).installs, 0);
    assert_eq!(h.rollout.child(&id(0)).unwrap().state(), ChildState::Queued);
    assert_eq!(h.steps(&id(0)).last(), Some(&(Path::Restart, Step::Start)));
    assert!(h
        .rollout
        .drain_events()
        .iter()
        .any(|event| event.kind == EventKind::ChildRequeued { child: id(0) }));
    assert!(h.steps(&id(1)).is_empty());
    assert_eq!(*h.rollout.phase(), paused);
    assert_eq!(h.rollout.summary().counts.queued, 2);

    h.command(Command::Resume).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(*h.rollout.phase(), RolloutPhase::Completed);
    assert_eq!(h.rollout.summary().counts.upgraded, 2);
    // Begun anew, child 0 replaced the snapshot of its first attempt rather than keep two.
    let retakes: Vec<&ActionKind> = h
        .issued
        .iter()
        .filter(|action| action.child == id(0) && is(Step::TakeSnapshot)(action))
        .map(|action| &action.kind)
        .collect();
    assert_eq!(
        retakes[1],
        &ActionKind::TakeSnapshot {
            replace: Some(first_snapshot)
        }
    );
    assert_eq!(h.world.child(&id(0)).snapshots.len(), 1);
}

#[test]
fn a_requeued_child_is_cancelled_by_an_abort_and_runs_its_previous_module() {
    let mut policy = policy();
    policy.max_concurrency = 1;
    let mut h = Harness::new(plan(2, policy));
    h.dispatch_past_cycles_checks().unwrap();
    h.answer(0, Fate::Ok).unwrap(); // child 0 stopped
    h.rollout.pause_for_cycles(1, 2, h.now).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(h.rollout.child(&id(0)).unwrap().state(), ChildState::Queued);

    h.command(Command::Abort).unwrap();
    h.run(ROUNDS, |_| Fate::Ok).unwrap();
    assert_eq!(h.verdict(&id(0)), Verdict::Cancelled);
    assert_eq!(h.verdict(&id(1)), Verdict::NotStarted);
    let child = h.world.child(&id(0));
    assert_eq!(
        (child.status, child.module),
        (RunStatus::Running, Some(PREVIOUS))
    );
    assert!(h.rollout.summary().finished_at.is_some());
}

#[test]
fn pause_for_cycles_keeps_the_first_reason_of_a_paused_rollout() {
    let mut h = Harness::new(plan(1, policy()));
    h.command(Command::Pause).unwrap();

    assert_eq!(
        h.rollout.pause_for_cycles(1, 2, h.now),
        Err(ControlError::NotAllowed {
            command: Command::Pause,
            phase: RolloutPhase::Paused(PauseReason::Operator)
        })
    );
    assert_eq!(
        *h.rollout.phase(),
        RolloutPhase::Paused(PauseReason::Operator)
    );
}

/// `PauseReason` reaches clients as Candid `nat` fields (the did file test checks the type):
/// balances above 64 bits must survive.
#[test]
fn insufficient_cycles_round_trips_through_candid_as_nat() {
    let reason = PauseReason::InsufficientCycles {
        balance: u128::MAX,
        required: 7,
    };
    let bytes = candid::encode_one(&reason).unwrap();
    assert_eq!(candid::decode_one::<PauseReason>(&bytes).unwrap(), reason);
}
