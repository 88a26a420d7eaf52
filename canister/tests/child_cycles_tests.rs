//! Rollouts and cycles on the real deployer Wasm: a child that could not pay for its snapshot
//! and install is left running, untouched; a child the deployer no longer controls fails still
//! running, with no start the deployer could not make.
//! IC interface specification: "Cycles" (the freezing threshold), "IC method `canister_status`"
//! and "IC method `stop_canister`" (controllers only), "IC method `install_code`" (the install's
//! execution is prepaid).

mod failure_support;
mod rollout_support;
mod support;

use candid::Principal;
use deployer::{Failure, FailureBudget, FailureKind, OnFailure, Step, Verdict};
use failure_support::*;
use ic_sim::CanisterRunStatus;
use rollout_support::{set_controllers, Fleet};
use support::{admin, operator};

fn rolled_back_on_failure() -> deployer::PolicyArg {
    failure_policy(OnFailure::RollBack, FailureBudget::Percent(100), 2)
}

/// The management methods the deployer called on `child` after its first `skip` calls (the
/// adoption reads the child's status too).
fn methods_called(fleet: &Fleet, child: Principal, skip: usize) -> Vec<String> {
    fleet
        .management_calls(child)
        .into_iter()
        .skip(skip)
        .map(|(method, _)| method)
        .collect()
}

#[test]
fn a_child_too_poor_for_its_snapshot_and_install_is_left_running_untouched() {
    let mut scenario = Scenario::new(2, "child_v2");
    let poor = scenario.before[0].child;
    let view = scenario.fleet.env.canister(poor).unwrap();
    // Well above its freezing limit today; short of the limit a snapshot doubles plus the
    // install's prepaid execution.
    let balance = view.freezing_limit + 100_000_000_000;
    scenario.fleet.env.set_cycles(poor, balance);
    let adoption = scenario.fleet.management_calls(poor).len();
    let id = scenario.start_all(rolled_back_on_failure());
    let done = scenario.fleet.run_to_end(operator(), id, 500);

    assert_eq!(done.summary.counts.failed, 1, "{:?}", done.summary.counts);
    assert_eq!(done.summary.counts.upgraded, 1);
    let Verdict::Failed(Failure {
        step: Step::CheckCycles,
        attempts: 1,
        kind:
            FailureKind::InsufficientCycles {
                balance: seen,
                required,
            },
    }) = scenario.verdict(id, 0)
    else {
        panic!(
            "expected a failed cycles check: {:?}",
            scenario.verdict(id, 0)
        );
    };
    assert!(seen <= balance && seen < required, "{seen} < {required}");
    assert_eq!(
        methods_called(&scenario.fleet, poor, adoption),
        ["canister_status"]
    );
    let view = scenario.fleet.env.canister(poor).unwrap();
    assert_eq!(view.status, CanisterRunStatus::Running);
    assert_eq!(view.snapshots, 0, "no snapshot raises its freezing limit");
    assert!(view.cycles > view.freezing_limit, "not frozen");
    // It still serves: the check reads its counter and version through update calls.
    scenario.assert_restored(0);
    scenario.assert_upgraded(1);
}

#[test]
fn a_child_the_deployer_no_longer_controls_fails_running_without_a_start() {
    let mut scenario = Scenario::new(2, "child_v2");
    let lost = scenario.before[0].child;
    // The admin takes the deployer off the child's controllers.
    set_controllers(&mut scenario.fleet, lost, vec![admin()]);
    let adoption = scenario.fleet.management_calls(lost).len();
    let id = scenario.start_all(rolled_back_on_failure());
    scenario.fleet.run_to_end(operator(), id, 500);

    let Verdict::Failed(failure) = scenario.verdict(id, 0) else {
        panic!(
            "expected a failed child, not one said to stay stopped: {:?}",
            scenario.verdict(id, 0)
        );
    };
    assert_eq!(failure.step, Step::CheckCycles);
    assert!(
        matches!(failure.kind, FailureKind::Rejected { code: 5, .. }),
        "{failure:?}"
    );
    assert_eq!(
        methods_called(&scenario.fleet, lost, adoption),
        ["canister_status"]
    );
    scenario.assert_restored(0);
    scenario.assert_upgraded(1);
}
