//! Operators steer a rollout mid-wave on the real deployer Wasm: pause (no new child starts,
//! children in flight finish), resume, abort (no new child starts, every child is left
//! running), a whole-rollout rollback to the deployer's snapshots, and the typed refusals.

mod rollout_support;
mod support;

use deployer::fleet::Selector;
use deployer::rollout::{PauseReason, RolloutPhase, Step, WaveSize};
use deployer::rollouts::{ChildHistory, ChildHistoryArg, EventPage, ListEventsArg, RolloutInfo};
use deployer::{Error, ErrorKind};
use ic_sim::{artifacts, CanisterRunStatus};
use rollout_support::*;
use support::operator;

fn control(fleet: &mut Fleet, method: &str, rollout_id: u64) -> Result<RolloutInfo, Error> {
    fleet.call(operator(), method, (rollout_id,))
}

/// A fleet of `count` children on one subnet, adopted, with child_v2 released.
fn fleet_of(count: usize) -> (Fleet, Vec<candid::Principal>, deployer::Release) {
    let mut fleet = Fleet::new(1);
    let children = fleet.create_children(0, count);
    fleet.adopt_all(std::slice::from_ref(&children));
    let release = fleet.release(&artifacts::wasm("child_v2"), "2");
    (fleet, children, release)
}

#[test]
fn a_paused_rollout_starts_no_child_until_resumed() {
    let (mut fleet, children, release) = fleet_of(8);
    let started = fleet
        .start(&release, Selector::All, policy(2, vec![], 2))
        .unwrap();
    let id = started.rollout_id;
    // Mid-wave: the canary is done, the second wave has children in flight.
    fleet.run_until(id, 500, |info| {
        info.summary.counts.upgraded >= 3 && info.summary.counts.active > 0
    });
    let paused = control(&mut fleet, "pause_rollout", id).unwrap();
    assert_eq!(
        paused.summary.phase,
        RolloutPhase::Paused(deployer::rollout::PauseReason::Operator)
    );

    fleet.sim.run_until_idle(500);
    let held = fleet.rollout(id);
    assert_eq!(held.summary.counts.active, 0, "children in flight finished");
    assert_eq!(held.summary.in_flight, 0);
    let upgraded = held.summary.counts.upgraded;
    assert!(upgraded < 8, "no new child started while paused");
    let running_v2 = children
        .iter()
        .filter(|&&c| fleet.version(c) == "v2")
        .count();
    assert_eq!(running_v2 as u32, upgraded);
    for &child in &children {
        assert_eq!(
            fleet.sim.canister(child).unwrap().status,
            CanisterRunStatus::Running
        );
    }

    let resumed = control(&mut fleet, "resume_rollout", id).unwrap();
    assert_eq!(resumed.summary.phase, RolloutPhase::Running);
    let done = fleet.run_to_end(id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 8);
}

#[test]
fn an_abort_mid_wave_leaves_every_child_running() {
    let (mut fleet, children, release) = fleet_of(8);
    let started = fleet
        .start(&release, Selector::All, policy(2, vec![], 3))
        .unwrap();
    let id = started.rollout_id;
    // Abort while a child is stopped: between its stop and its start.
    fleet.run_until(id, 500, |info| {
        info.summary.counts.upgraded >= 2 && info.summary.counts.active > 0
    });
    let aborted = control(&mut fleet, "abort_rollout", id).unwrap();
    assert_eq!(aborted.summary.phase, RolloutPhase::Aborted);

    let done = fleet.run_to_end(id, 1_000);
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
            fleet.sim.canister(child).unwrap().status,
            CanisterRunStatus::Running,
            "{child} runs"
        );
    }
    assert_eq!(
        control(&mut fleet, "resume_rollout", id)
            .unwrap_err()
            .kind(),
        &ErrorKind::RolloutCommandRefused {
            rollout_id: id,
            command: deployer::rollout::Command::Resume,
            phase: RolloutPhase::Aborted,
        }
    );
}

#[test]
fn a_completed_rollout_is_rolled_back_to_the_snapshots_it_took() {
    let (mut fleet, children, release) = fleet_of(3);
    let id = fleet
        .start(&release, Selector::All, policy(1, vec![], 3))
        .unwrap()
        .rollout_id;
    fleet.run_to_end(id, 500);
    let counters: Vec<u64> = children.iter().map(|&c| fleet.counter(c)).collect();

    let rolling = control(&mut fleet, "rollback_rollout", id).unwrap();
    assert_eq!(rolling.summary.phase, RolloutPhase::RollingBack);
    let done = fleet.run_to_end(id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::RolledBack);
    assert_eq!(done.summary.counts.rolled_back, 3);
    for (&child, counter) in children.iter().zip(counters) {
        assert_eq!(fleet.version(child), "v1");
        assert_eq!(fleet.counter(child), counter);
        assert_eq!(
            fleet.sim.canister(child).unwrap().status,
            CanisterRunStatus::Running
        );
    }
    let history: Result<ChildHistory, Error> = fleet.query(
        "child_history",
        (ChildHistoryArg {
            rollout_id: id,
            canister_id: children[0],
            from: None,
            limit: None,
        },),
    );
    let steps: Vec<Step> = history
        .unwrap()
        .steps
        .iter()
        .map(|record| record.step)
        .collect();
    assert!(steps.contains(&Step::LoadSnapshot), "{steps:?}");
    let events: EventPage = fleet.query(
        "list_events",
        (ListEventsArg {
            rollout_id: Some(id),
            from: None,
            limit: None,
        },),
    );
    assert!(events
        .events
        .iter()
        .any(|event| matches!(event.kind, deployer::rollout::EventKind::RolledBack)));
}

#[test]
fn a_release_in_use_by_an_active_rollout_cannot_be_deleted() {
    let (mut fleet, _, release) = fleet_of(2);
    let id = fleet
        .start(
            &release,
            Selector::All,
            policy(1, vec![WaveSize::Count(1)], 1),
        )
        .unwrap()
        .rollout_id;
    let refused: Result<(), Error> = fleet.call(
        operator(),
        "delete_release",
        (release.summary.sha256.clone(),),
    );
    assert_eq!(
        refused.unwrap_err().kind(),
        &ErrorKind::ReleaseInUse {
            sha256: release.summary.sha256.clone(),
            references: vec![deployer::ReleaseReference::Rollout { rollout_id: id }],
        }
    );
    fleet.run_to_end(id, 500);
    let deleted: Result<(), Error> = fleet.call(
        operator(),
        "delete_release",
        (release.summary.sha256.clone(),),
    );
    assert_eq!(deleted, Ok(()), "a finished rollout no longer holds it");
}

/// A deployer that cannot pay for the next calls (each holds back cycles for its reply) pauses
/// the rollout before touching a child, says how many cycles it has and needs, and after a
/// top-up and `resume_rollout` upgrades every child.
#[test]
fn a_deployer_short_of_cycles_pauses_before_any_call_and_resumes_after_a_top_up() {
    let (mut fleet, children, release) = fleet_of(3);
    // Enough to take the operator's call, not to pay for a management call besides.
    fleet.sim.set_cycles(fleet.deployer, 200_000_000_000);
    let calls_before: Vec<usize> = children
        .iter()
        .map(|&child| fleet.management_calls(child).len())
        .collect();
    let id = fleet
        .start(&release, Selector::All, policy(1, vec![], 3))
        .unwrap()
        .rollout_id;
    let paused = fleet.run_until(id, 50, |info| {
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
    fleet.sim.add_cycles(fleet.deployer, 10_000_000_000_000);
    control(&mut fleet, "resume_rollout", id).unwrap();
    let done = fleet.run_to_end(id, 500);
    assert_eq!(done.summary.counts.upgraded, 3);
    for &child in &children {
        assert_eq!(fleet.version(child), "v2");
    }
}
