//! Operators steer a rollout mid-wave on the real deployer Wasm: pause (no new child starts,
//! children in flight finish), resume, abort (no new child starts, every child is left
//! running), a whole-rollout rollback to the deployer's snapshots, and the typed refusals.

mod rollout_support;
mod support;

use deployer::Selector;
use deployer::{ChildHistory, ChildHistoryArg, EventPage, ListEventsArg};
use deployer::{Error, ErrorKind};
use deployer::{PauseReason, RolloutPhase, Step, WaveSize};
use ic_sim::{artifacts, CanisterRunStatus};
use rollout_support::*;
use support::operator;

/// A fleet of `count` children on one subnet, adopted, with child_v2 released.
fn fleet_of(count: usize) -> (Fleet, Vec<candid::Principal>, deployer::Release) {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, count);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    (fleet, children, release)
}

#[test]
fn a_paused_rollout_starts_no_child_until_resumed() {
    let (mut fleet, children, release) = fleet_of(8);
    let started = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(2, vec![], 2))
        .answer()
        .unwrap();
    let id = started.rollout_id;
    // Mid-wave: the canary is done, the second wave has children in flight.
    fleet.run_until(operator(), id, 500, |info| {
        info.summary.counts.upgraded >= 3 && info.summary.counts.active > 0
    });
    let paused = fleet.pause_rollout(operator(), id).answer().unwrap();
    assert_eq!(
        paused.summary.phase,
        RolloutPhase::Paused(deployer::PauseReason::Operator)
    );

    fleet.env.run_until_idle(500);
    let held = fleet.get_rollout_ok(operator(), id);
    assert_eq!(held.summary.counts.active, 0, "children in flight finished");
    assert_eq!(held.summary.in_flight, 0);
    let upgraded = held.summary.counts.upgraded;
    assert!(upgraded < 8, "no new child started while paused");
    let running_v2 = children
        .iter()
        .filter(|&&c| version_of(&mut fleet, c) == "v2")
        .count();
    assert_eq!(running_v2 as u32, upgraded);
    for &child in &children {
        assert_eq!(
            fleet.env.canister(child).unwrap().status,
            CanisterRunStatus::Running
        );
    }

    let resumed = fleet.resume_rollout(operator(), id).answer().unwrap();
    assert_eq!(resumed.summary.phase, RolloutPhase::Running);
    let done = fleet.run_to_end(operator(), id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 8);
}

#[test]
fn an_abort_mid_wave_leaves_every_child_running() {
    let (mut fleet, children, release) = fleet_of(8);
    let started = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(2, vec![], 3))
        .answer()
        .unwrap();
    let id = started.rollout_id;
    // Abort while a child is stopped: between its stop and its start.
    fleet.run_until(operator(), id, 500, |info| {
        info.summary.counts.upgraded >= 2 && info.summary.counts.active > 0
    });
    let aborted = fleet.abort_rollout(operator(), id).answer().unwrap();
    assert_eq!(aborted.summary.phase, RolloutPhase::Aborted);

    let done = fleet.run_to_end(operator(), id, 1_000);
    assert_eq!(done.summary.phase, RolloutPhase::Aborted);
    let counts = done.summary.counts;
    assert_eq!(
        counts.upgraded + counts.cancelled + counts.not_started,
        8,
        "{counts:?}"
    );
    assert!(counts.not_started > 0, "queued children never started");
    for &child in &children {
        assert_eq!(
            fleet.env.canister(child).unwrap().status,
            CanisterRunStatus::Running,
            "{child} runs"
        );
    }
    assert_eq!(
        fleet
            .resume_rollout(operator(), id)
            .answer()
            .unwrap_err()
            .kind(),
        &ErrorKind::RolloutCommandRefused {
            rollout_id: id,
            command: deployer::Command::Resume,
            phase: RolloutPhase::Aborted,
        }
    );
}

#[test]
fn a_completed_rollout_is_rolled_back_to_the_snapshots_it_took() {
    let (mut fleet, children, release) = fleet_of(3);
    let id = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 3))
        .answer()
        .unwrap()
        .rollout_id;
    fleet.run_to_end(operator(), id, 500);
    let counters = counters_of(&mut fleet, &children);

    let rolling = fleet.rollback_rollout(operator(), id).answer().unwrap();
    assert_eq!(rolling.summary.phase, RolloutPhase::RollingBack);
    let done = fleet.run_to_end(operator(), id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::RolledBack);
    assert_eq!(done.summary.counts.rolled_back, 3);
    for (&child, counter) in children.iter().zip(counters) {
        assert_eq!(version_of(&mut fleet, child), "v1");
        assert_eq!(counter_of(&mut fleet, child), counter);
        assert_eq!(
            fleet.env.canister(child).unwrap().status,
            CanisterRunStatus::Running
        );
    }
    let history: Result<ChildHistory, Error> = fleet
        .child_history(
            operator(),
            ChildHistoryArg {
                rollout_id: id,
                canister_id: children[0],
                from: None,
                limit: None,
            },
        )
        .answer();
    let steps: Vec<Step> = history
        .unwrap()
        .steps
        .iter()
        .map(|record| record.step)
        .collect();
    assert!(steps.contains(&Step::LoadSnapshot), "{steps:?}");
    let events: EventPage = fleet.list_events_ok(
        operator(),
        ListEventsArg {
            rollout_id: Some(id),
            from: None,
            limit: None,
        },
    );
    assert!(events
        .events
        .iter()
        .any(|event| matches!(event.kind, deployer::EventKind::RolledBack)));
}

#[test]
fn a_release_in_use_by_an_active_rollout_cannot_be_deleted() {
    let (mut fleet, _, release) = fleet_of(2);
    let id = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::All,
            policy(1, vec![WaveSize::Count(1)], 1),
        )
        .answer()
        .unwrap()
        .rollout_id;
    let refused: Result<(), Error> = fleet
        .delete_release(operator(), release.summary.sha256.clone())
        .answer();
    assert_eq!(
        refused.unwrap_err().kind(),
        &ErrorKind::ReleaseInUse {
            sha256: release.summary.sha256.clone(),
            references: vec![deployer::ReleaseReference::Rollout { rollout_id: id }],
        }
    );
    fleet.run_to_end(operator(), id, 500);
    let deleted: Result<(), Error> = fleet
        .delete_release(operator(), release.summary.sha256.clone())
        .answer();
    assert_eq!(deleted, Ok(()), "a finished rollout no longer holds it");
}

/// A deployer that cannot pay for the next calls (each holds back cycles for its reply) pauses
/// the rollout before touching a child, says how many cycles it has and needs, and after a
/// top-up and `resume_rollout` upgrades every child.
#[test]
fn a_deployer_short_of_cycles_pauses_before_any_call_and_resumes_after_a_top_up() {
    let (mut fleet, children, release) = fleet_of(3);
    // Enough to take the operator's call, not to pay for a management call besides.
    fleet.env.set_cycles(fleet.canister, 200_000_000_000);
    let calls_before: Vec<usize> = children
        .iter()
        .map(|&child| fleet.management_calls(child).len())
        .collect();
    let id = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 3))
        .answer()
        .unwrap()
        .rollout_id;
    let paused = fleet.run_until(operator(), id, 50, |info| {
        matches!(info.summary.phase, RolloutPhase::Paused(_))
    });
    let RolloutPhase::Paused(PauseReason::InsufficientCycles { balance, required }) =
        paused.summary.phase
    else {
        panic!("expected a pause for cycles: {:?}", paused.summary.phase);
    };
    assert!(balance < required, "{balance} < {required}");
    for (&child, before) in children.iter().zip(calls_before) {
        let calls = fleet.management_calls(child);
        assert_eq!(calls.len(), before, "no call reached {child}: {calls:?}");
    }
    fleet.env.add_cycles(fleet.canister, 10_000_000_000_000);
    fleet.resume_rollout(operator(), id).answer().unwrap();
    let done = fleet.run_to_end(operator(), id, 500);
    assert_eq!(done.summary.counts.upgraded, 3);
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
    }
}

/// A deployer that runs short after it stopped a child pauses the rollout and, out of what it
/// keeps back for itself, starts the child again at once rather than leave it stopped until a
/// top-up: the child serves its previous module, waits in the queue, and begins anew after the
/// resume.
#[test]
fn a_rollout_paused_for_cycles_starts_the_child_it_had_stopped_again() {
    let (mut fleet, children, release) = fleet_of(1);
    let child = children[0];
    let id = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 1))
        .answer()
        .unwrap()
        .rollout_id;
    let mut rounds = 0;
    while fleet.env.canister(child).unwrap().status != CanisterRunStatus::Stopped {
        rounds += 1;
        assert!(rounds < 100, "the child was never stopped");
        fleet.env.tick();
    }
    // Before the stop's reply (which refunds most of the ~42 B cycles its call held back):
    // after it, enough for a small call, not for an install on top of the 100 B kept back.
    let freezing_limit = fleet.env.canister(fleet.canister).unwrap().freezing_limit;
    fleet
        .env
        .set_cycles(fleet.canister, freezing_limit + 80_000_000_000);
    let paused = fleet.run_until(operator(), id, 100, |info| {
        info.summary.in_flight == 0 && info.summary.counts.queued == 1
    });
    assert!(
        matches!(
            paused.summary.phase,
            RolloutPhase::Paused(PauseReason::InsufficientCycles { .. })
        ),
        "{:?}",
        paused.summary.phase
    );
    assert_eq!(
        fleet.env.canister(child).unwrap().status,
        CanisterRunStatus::Running
    );
    assert_eq!(version_of(&mut fleet, child), "v1");
    let calls = fleet.management_calls(child);
    assert_eq!(
        calls.last(),
        Some(&("start_canister".to_string(), true)),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|(method, _)| method == INSTALL_METHOD));

    fleet.env.add_cycles(fleet.canister, 10_000_000_000_000);
    fleet.resume_rollout(operator(), id).answer().unwrap();
    let done = fleet.run_to_end(operator(), id, 500);
    assert_eq!(done.summary.counts.upgraded, 1);
    assert_eq!(version_of(&mut fleet, child), "v2");
}
