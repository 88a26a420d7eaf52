//! No silent stalls: a rollout whose timer body trapped is driven again by the deployer's
//! watchdog; a step whose callback trapped is settled by reading its child, as an unknown
//! outcome; and an operator can settle a rollout's steps in flight on demand
//! (`reconcile_rollout`), after which it finishes with every child upgraded once.
//! IC interface specification: "Global timer" (a timer fires once; ic-cdk-timers runs each
//! timer body as its own self-call, whose trap rolls back only that body) and "Callback
//! invocation" (a trapped callback's changes are rolled back, and the call's cleanup closure
//! runs).

mod rollout_support;
mod support;

use candid::Principal;
use deployer::{
    ErrorKind, EventKind, ListEventsArg, PolicyArg, Release, RolloutPhase, Selector, Step,
};
use ic_sim::{artifacts, Fault, FaultCount, FaultEvent, RejectCode, TraceKind};
use rollout_support::*;
use support::Answer;

/// ic-cdk-timers' executor entry: every timer body runs in it.
const TIMER_BODY: &str = "update:<ic-cdk internal> timer_executor";

/// The first timer body of the rollout traps, as one that ran out of instructions or stable
/// memory would: the trap rolls back its bookkeeping while the timer is spent. The watchdog
/// finds the overdue rollout and drives it; nothing else touches it.
#[test]
fn a_rollout_whose_timer_body_trapped_is_driven_again() {
    let (mut fleet, children, release) = three_children("child_v2", "2");
    trap_once(&mut fleet, TIMER_BODY);

    roll_out_completed(&mut fleet, &release, policy(1, vec![], 3), 3);

    assert!(trapped(&fleet, TIMER_BODY), "the timer body trapped");
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
        assert_eq!(successful_installs(&fleet, child), 1);
    }
}

/// The callback of one child's install traps (as one that ran out of instructions would): the
/// IC rolls back all it did and runs the call's cleanup, where ic-cdk drops the task that
/// awaited the install. The answer is lost, so the deployer reads the child, finds the release
/// installed, and goes on; nobody reconciles the rollout, and no call is left counted as
/// outstanding (the deployer can be upgraded right after).
#[test]
fn a_step_whose_callback_trapped_is_settled_by_reading_its_child() {
    let (mut fleet, children, _, id) = v2_rollout(4, 2);
    let entry = format!("response:{INSTALL_METHOD}");
    trap_once(&mut fleet, &entry);

    let done = fleet.run_to_end(operator(), id, 1_000);

    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, 4);
    assert!(trapped(&fleet, &entry), "an install's callback trapped");
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
        assert_eq!(successful_installs(&fleet, child), 1);
    }
    let page = fleet.list_events_ok(
        operator(),
        ListEventsArg {
            rollout_id: Some(id),
            from: None,
            limit: None,
        },
    );
    let reconciled = page.events.iter().filter(|event| {
        matches!(
            event.kind,
            EventKind::Reconciling {
                step: Step::Install,
                ..
            }
        )
    });
    assert_eq!(reconciled.count(), 1, "{:?}", page.events);
    fleet
        .upgrade(admin(), None)
        .expect("no call is counted as outstanding");
}

/// A chunk upload's callback traps, with the release's other chunks still being uploaded: the
/// cleanup drops the upload's task. The install that waited for it is retried (after a
/// transient reject), the store filled again, and every child installed once. The chunk calls
/// still out when the task was dropped stay counted, never too few: a running deployer refuses
/// its upgrade, a stopped one (whose calls have all been answered) takes it.
#[test]
fn the_installs_of_an_upload_whose_callback_trapped_are_retried() {
    let (mut fleet, children, large) = three_children("child_large", "large");
    assert!(
        large.summary.chunk_count > 1,
        "several chunks in flight at once"
    );
    let entry = "response:upload_chunk";
    trap_once(&mut fleet, entry);
    let policy = PolicyArg {
        gate_overrides: deployer_client::fixture_gates(),
        ..policy(1, vec![], 2)
    };

    roll_out_completed(&mut fleet, &large, policy, 3);

    assert!(trapped(&fleet, entry), "a chunk upload's callback trapped");
    let module_hash: [u8; 32] = large.summary.sha256.as_slice().try_into().unwrap();
    for &child in &children {
        let child_state = fleet.env.canister(child).expect("child");
        assert_eq!(child_state.module_hash, Some(module_hash));
        assert_eq!(successful_installs(&fleet, child), 1);
    }
    upgraded_only_stopped(&mut fleet);
}

/// A start reads and claims its children in one message and plans them in the next, the
/// deployer calling itself between the two. That call's callback traps: the IC answers the
/// start's caller with `CANISTER_ERROR` and runs the cleanup, where ic-cdk drops the start, whose
/// claims are then freed (`AbandonedUnlessStarted`). No child stays held by a rollout that never
/// began: the same rollout started again claims them and completes.
#[test]
fn a_start_whose_callback_trapped_leaves_no_child_claimed() {
    let (mut fleet, children, release) = three_children("child_v2", "2");
    let entry = "response:version";
    trap_once(&mut fleet, entry);

    let reject = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 3))
        .expect_err("the start's callback trapped")
        .reject();

    assert_eq!(reject.code, RejectCode::CanisterError, "{reject:?}");
    assert!(
        trapped(&fleet, entry),
        "the start's self-call answer trapped"
    );
    let summary = fleet.fleet_summary_ok(operator());
    assert_eq!(summary.in_rollouts, 0, "{summary:?}");
    assert_eq!(summary.children, children.len() as u64);
    roll_out_completed(&mut fleet, &release, policy(1, vec![], 3), 3);
}

/// An adoption reads the canisters' statuses at once; one answer's callback traps. The caller
/// gets `CANISTER_ERROR` and nothing is adopted; the other reads, still out when the cleanup
/// dropped them, stay counted (a running deployer refuses its upgrade, a stopped one takes
/// it); adopting again succeeds.
#[test]
fn an_adoption_whose_callback_trapped_adopts_nothing_and_counts_its_other_reads() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 3);
    trap_once(&mut fleet, "response:canister_status");
    let adopt = deployer::AdoptChildrenArg {
        canister_ids: children.clone(),
        subnet: None,
        labels: Vec::new(),
    };

    let reject = fleet
        .adopt_children(admin(), adopt.clone())
        .expect_err("a status read's callback trapped")
        .reject();

    assert_eq!(reject.code, RejectCode::CanisterError, "{reject:?}");
    assert_eq!(fleet.fleet_summary_ok(admin()).children, 0);
    upgraded_only_stopped(&mut fleet);
    for adopted in fleet.adopt_children_ok(admin(), adopt) {
        adopted.expect("adopted");
    }
}

/// Three children on one subnet, adopted, and the fixture `module` released as `version`.
fn three_children(module: &str, version: &str) -> (Fleet, Vec<Principal>, Release) {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 3);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm(module), version);
    (fleet, children, release)
}

/// Has the deployer's next execution of `entry` trap before running any of its code.
fn trap_once(fleet: &mut Fleet, entry: &str) {
    let canister = fleet.canister;
    fleet.env.inject(Fault::TrapExecution {
        canister,
        entry: entry.to_string(),
        count: FaultCount::Times(1),
    });
}

/// Rolls `release` out to every child and runs the rollout to its end: completed, with
/// `upgraded` children upgraded.
fn roll_out_completed(fleet: &mut Fleet, release: &Release, policy: PolicyArg, upgraded: u32) {
    let id = fleet
        .start_rollout_of(operator(), release, Selector::All, policy)
        .answer()
        .expect("start")
        .rollout_id;
    let done = fleet.run_to_end(operator(), id, 1_000);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    assert_eq!(done.summary.counts.upgraded, upgraded);
}

/// Calls are counted as outstanding: the running deployer refuses its upgrade, the stopped one
/// (whose calls have all been answered) takes it.
fn upgraded_only_stopped(fleet: &mut Fleet) {
    let refusal = fleet
        .upgrade(admin(), None)
        .expect_err("calls counted as outstanding");
    assert!(refusal.message.contains("still outstanding"), "{refusal:?}");
    fleet
        .upgrade_stopped(admin(), None)
        .expect("a stopped deployer is upgraded");
}

/// Whether an execution of the deployer's `entry` trapped by injection.
fn trapped(fleet: &Fleet, entry: &str) -> bool {
    fleet.env.trace().iter().any(|event| {
        matches!(&event.kind, TraceKind::Fault { event: FaultEvent::ExecutionTrapped { canister, entry: e }, .. }
            if *canister == fleet.canister && e == entry)
    })
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
