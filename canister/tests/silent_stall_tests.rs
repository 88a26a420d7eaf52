//! No silent stalls: a rollout whose timer body trapped is driven again by the deployer's
//! watchdog, and an operator can settle a rollout's steps in flight on demand
//! (`reconcile_rollout`), after which it finishes with every child upgraded once.
//! IC interface specification: "Global timer" (a timer fires once; ic-cdk-timers runs each
//! timer body as its own self-call, whose trap rolls back only that body).

mod rollout_support;
mod support;

use deployer::{ErrorKind, RolloutPhase, Selector};
use ic_sim::{artifacts, Fault, FaultCount, FaultEvent, TraceKind};
use rollout_support::*;
use support::Answer;

/// ic-cdk-timers' executor entry: every timer body runs in it.
const TIMER_BODY: &str = "update:<ic-cdk internal> timer_executor";

/// The first timer body of the rollout traps, as one that ran out of instructions or stable
/// memory would: the trap rolls back its bookkeeping while the timer is spent. The watchdog
/// finds the overdue rollout and drives it; nothing else touches it.
#[test]
fn a_rollout_whose_timer_body_trapped_is_driven_again() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 3);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    let deployer = fleet.canister;
    fleet.env.inject(Fault::TrapExecution {
        canister: deployer,
        entry: TIMER_BODY.to_string(),
        count: FaultCount::Times(1),
    });

    let id = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 3))
        .answer()
        .expect("start")
        .rollout_id;
    let done = fleet.run_to_end(operator(), id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 3);
    let trapped = fleet.env.trace().iter().any(|event| {
        matches!(&event.kind, TraceKind::Fault { event: FaultEvent::ExecutionTrapped { canister, entry }, .. }
            if *canister == deployer && entry == TIMER_BODY)
    });
    assert!(trapped, "the timer body trapped");
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
        assert_eq!(successful_installs(&fleet, child), 1);
    }
}

/// `reconcile_rollout` in the middle of a rollout: the steps in flight are settled by reading
/// their children, their late answers are dropped, and the rollout finishes with every child
/// installed once. On a finished rollout it is a typed refusal.
#[test]
fn reconcile_rollout_settles_the_steps_in_flight() {
    let (mut fleet, children, _, id) = v2_rollout(4, 2);
    fleet.run_until(operator(), id, 500, |info| info.summary.in_flight > 0);

    let refusal = fleet
        .reconcile_rollout(support::stranger(), id)
        .expect_err("refused")
        .reject()
        .message;
    assert!(refusal.contains("requires the Operator role"), "{refusal}");
    fleet.reconcile_rollout_ok(operator(), id);
    let done = fleet.run_to_end(operator(), id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 4);
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
        assert_eq!(successful_installs(&fleet, child), 1);
    }
    let finished = fleet.reconcile_rollout(operator(), id).answer();
    assert_eq!(
        finished.map_err(|error| error.kind().clone()),
        Err(ErrorKind::RolloutFinished {
            rollout_id: id,
            phase: RolloutPhase::Completed
        })
    );
}
