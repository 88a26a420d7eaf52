//! The deployer upgraded at every step boundary of a small rollout: the rollout completes and
//! every child is upgraded exactly once. An upgrade while a call is in flight is refused (its
//! response would reach the new module's callbacks); stopped first, the deployer lets the call
//! finish, hands the rollout to its timer, is upgraded and started, and the rollout goes on from
//! its journal with nothing lost.
//! IC interface specification: "IC method `install_code`" (upgrade: "canisters that cannot make
//! sense of old callbacks must be stopped first"), "IC method `stop_canister`" (stopping waits
//! for every open call context), "Canister upgrades" (the global timer is deactivated by
//! `install_code`, so timers are re-armed in `post_upgrade`).

mod rollout_support;
mod support;

use candid::Principal;
use deployer::Error;
use deployer::Selector;
use deployer::{CallResult, RolloutPhase, WaveSize};
use deployer::{ChildHistory, ChildHistoryArg};
use ic_sim::{artifacts, TraceKind};
use rollout_support::*;

/// Where in a management call the deployer is upgraded.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// The request is on its way: the call is in flight, not executed.
    Sent,
    /// The management canister executed it: its response is on its way.
    Executed,
}

/// Ticks until the deployer's first `method` call reached `moment`, tries to upgrade the deployer
/// (refused), upgrades it stopped, and checks the rollout still upgrades both children exactly
/// once.
fn upgrade_at(method: &str, moment: Moment) {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 2);
    let counters = counters_of(&mut fleet, &children);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &artifacts::wasm("child_v2"), "2");
    let from = fleet.env.trace().len();
    let started = fleet
        .start_rollout_of(
            operator(),
            &release,
            Selector::All,
            policy(1, vec![WaveSize::Count(1)], 1),
        )
        .answer()
        .expect("start");
    let deployer = fleet.canister;
    let reached = |kind: &TraceKind| match (moment, kind) {
        (
            Moment::Sent,
            TraceKind::Request {
                from,
                to,
                method: called,
                ..
            },
        ) => *from == deployer && *to == Principal::management_canister() && called == method,
        (
            Moment::Executed,
            TraceKind::Management {
                caller,
                method: called,
                ..
            },
        ) => *caller == deployer && called == method,
        _ => false,
    };
    let mut rounds = 0;
    while !fleet.env.trace()[from..]
        .iter()
        .any(|event| reached(&event.kind))
    {
        assert!(
            rounds < 500,
            "the deployer never reached {method} ({moment:?})"
        );
        fleet.env.tick();
        rounds += 1;
    }

    let refused = fleet
        .upgrade(admin(), None)
        .expect_err("an upgrade with a call outstanding is refused");
    assert!(
        refused
            .message
            .contains("calls are still outstanding, and their answers would reach"),
        "{refused}"
    );
    upgrade(&mut fleet);
    let done = fleet.run_to_end(operator(), started.rollout_id, 1_000);

    assert_eq!(
        done.summary.phase,
        RolloutPhase::Completed,
        "{method} {moment:?}"
    );
    assert_eq!(done.summary.counts.upgraded, 2, "{method} {moment:?}");
    let lost: usize = children
        .iter()
        .map(|&child| {
            let history: Result<ChildHistory, Error> = fleet
                .child_history(
                    operator(),
                    ChildHistoryArg {
                        rollout_id: started.rollout_id,
                        canister_id: child,
                        from: None,
                        limit: None,
                    },
                )
                .answer();
            history
                .unwrap()
                .steps
                .iter()
                .filter(|step| step.result == Some(CallResult::Unknown))
                .count()
        })
        .sum();
    assert_eq!(
        lost, 0,
        "the stop let the call in flight finish: no outcome is unknown ({method} {moment:?})"
    );
    let trapped: Vec<String> = fleet
        .env
        .trace()
        .iter()
        .filter_map(|event| match &event.kind {
            TraceKind::Execution {
                canister,
                trapped: true,
                entry,
                ..
            } if *canister == deployer => Some(entry.clone()),
            _ => None,
        })
        .collect();
    // The refused upgrade traps in `pre_upgrade` (the IC keeps the running module: the
    // simulator traces the upgrade as one execution); no
    // response ever reaches a new module's callbacks.
    assert!(
        trapped.iter().all(|entry| entry == "upgrade"),
        "{trapped:?}"
    );
    for (child, counter) in children.iter().zip(counters) {
        assert_eq!(version_of(&mut fleet, *child), "v2");
        assert_eq!(counter_of(&mut fleet, *child), counter);
        let installs = fleet
            .management_calls(*child)
            .iter()
            .filter(|(called, ok)| called == INSTALL_METHOD && *ok)
            .count();
        assert_eq!(
            installs, 1,
            "{child} installed exactly once ({method} {moment:?})"
        );
        let status = fleet.env.canister(*child).unwrap().status;
        assert_eq!(status, ic_sim::CanisterRunStatus::Running);
    }
    // Finished, the rollout is stored with its children apart: another upgrade keeps every
    // child's history as it was.
    let histories = |fleet: &mut Fleet| -> Vec<ChildHistory> {
        children
            .iter()
            .map(|&child| {
                let arg = ChildHistoryArg {
                    rollout_id: started.rollout_id,
                    canister_id: child,
                    from: None,
                    limit: None,
                };
                fleet.child_history_ok(operator(), arg)
            })
            .collect()
    };
    let finished = histories(&mut fleet);
    upgrade(&mut fleet);
    assert_eq!(histories(&mut fleet), finished, "{method} {moment:?}");
}

#[test]
fn upgraded_while_a_stop_is_sent() {
    upgrade_at("stop_canister", Moment::Sent);
}

#[test]
fn upgraded_after_a_stop_executed() {
    upgrade_at("stop_canister", Moment::Executed);
}

#[test]
fn upgraded_while_a_snapshot_is_sent() {
    upgrade_at("take_canister_snapshot", Moment::Sent);
}

#[test]
fn upgraded_after_a_snapshot_was_taken() {
    upgrade_at("take_canister_snapshot", Moment::Executed);
}

#[test]
fn upgraded_while_an_install_is_sent() {
    upgrade_at(INSTALL_METHOD, Moment::Sent);
}

#[test]
fn upgraded_after_an_install_executed() {
    upgrade_at(INSTALL_METHOD, Moment::Executed);
}

#[test]
fn upgraded_while_a_start_is_sent() {
    upgrade_at("start_canister", Moment::Sent);
}

#[test]
fn upgraded_after_a_start_executed() {
    upgrade_at("start_canister", Moment::Executed);
}

#[test]
fn upgraded_while_a_verification_read_is_sent() {
    upgrade_at("canister_status", Moment::Sent);
}

#[test]
fn upgraded_after_a_verification_read_executed() {
    upgrade_at("canister_status", Moment::Executed);
}

/// The IC's way to upgrade a canister with calls in flight: stop it first. The deployer stops
/// mid-rollout (its calls finish, it makes no new ones while stopping), is upgraded, started,
/// and finishes the rollout with every child upgraded exactly once.
#[test]
fn stopped_upgraded_and_started_mid_rollout_the_deployer_finishes_it() {
    use ic_sim::scenario::IcEnvExt;
    #[derive(candid::CandidType)]
    struct CanisterIdRecord {
        canister_id: Principal,
    }
    let (mut fleet, children, release, id) = v2_rollout(4, 2);
    fleet.run_until(operator(), id, 500, |info| {
        info.summary.counts.upgraded >= 1 && info.summary.in_flight > 0
    });
    let deployer = CanisterIdRecord {
        canister_id: fleet.canister,
    };
    let stopped: Result<(), _> = fleet.env.update(
        support::admin(),
        Principal::management_canister(),
        "stop_canister",
        (&deployer,),
    );
    stopped.expect("the deployer stops mid-rollout");
    let view = fleet.env.canister(fleet.canister).unwrap();
    assert_eq!(view.status, ic_sim::CanisterRunStatus::Stopped);
    assert_eq!(view.open_call_contexts, 0, "its calls finished");
    // A child between its stop and its start stays stopped until the deployer runs again.
    let upgraded_before = children
        .iter()
        .filter(|&&child| {
            let hash = fleet.env.canister(child).unwrap().module_hash;
            hash.map(|h| h.to_vec()) == Some(release.summary.sha256.to_vec())
        })
        .count();
    assert!(upgraded_before < 4, "stopped mid-rollout");

    upgrade(&mut fleet);
    let started: Result<(), _> = fleet.env.update(
        support::admin(),
        Principal::management_canister(),
        "start_canister",
        (&deployer,),
    );
    started.expect("start the deployer");
    let done = fleet.run_to_end(operator(), id, 1_000);

    assert_eq!(done.summary.counts.upgraded, 4);
    for &child in &children {
        assert_eq!(version_of(&mut fleet, child), "v2");
        let status = fleet.env.canister(child).unwrap().status;
        assert_eq!(status, ic_sim::CanisterRunStatus::Running);
        let installs = fleet
            .management_calls(child)
            .iter()
            .filter(|(called, ok)| called == INSTALL_METHOD && *ok)
            .count();
        assert_eq!(installs, 1, "{child} installed exactly once");
    }
}

/// Claims live on the heap and are restored from the stored rollouts by `post_upgrade`: after
/// the deployer's upgrade mid-rollout its children still show the rollout that holds them,
/// cannot be released from the fleet nor taken by another rollout, and are free once it ends.
#[test]
fn a_rollout_keeps_its_children_claimed_across_the_deployer_upgrade() {
    use deployer::ErrorKind;
    use deployer::{ChildInfo, FleetError};
    let (mut fleet, children, release, id) = v2_rollout(3, 1);
    fleet.run_until(operator(), id, 500, |info| {
        info.summary.counts.upgraded >= 1
    });

    upgrade(&mut fleet);

    for &child in &children {
        let info: Result<ChildInfo, Error> = fleet.get_child(operator(), child).answer();
        assert_eq!(info.unwrap().rollout_id, Some(id), "{child} is still held");
    }
    let released: Result<ChildInfo, Error> =
        fleet.release_child(support::admin(), children[2]).answer();
    assert_eq!(
        released.map_err(|error| error.kind().clone()),
        Err(ErrorKind::Fleet(FleetError::Claimed {
            canister_id: children[2],
            rollout_id: id,
        }))
    );
    let second = fleet
        .start_rollout_of(operator(), &release, Selector::All, policy(1, vec![], 1))
        .answer();
    assert!(
        matches!(
            second.map_err(|error| error.kind().clone()),
            Err(ErrorKind::Fleet(FleetError::ClaimConflict { total: 3, .. }))
        ),
        "another rollout cannot take them"
    );

    let done = fleet.run_to_end(operator(), id, 1_000);
    assert_eq!(done.summary.counts.upgraded, 3);
    let released: Result<ChildInfo, Error> =
        fleet.release_child(support::admin(), children[2]).answer();
    assert_eq!(
        released.unwrap().rollout_id,
        None,
        "free once the rollout ended"
    );
}

/// Controllers who lost every admin key recover the deployer without new code: the upgrade
/// argument grants Admin, and the roles held before stay.
#[test]
fn controllers_add_an_admin_through_the_upgrade_argument() {
    use deployer::{Role, UpgradeArg};
    let mut fleet = fleet(1);
    let rescuer = Principal::from_slice(&[0x42; 29]);
    assert_eq!(fleet.my_roles_ok(rescuer), Vec::<Role>::new());
    let arg = UpgradeArg {
        add_admins: Some(vec![rescuer]),
        ..Default::default()
    };
    fleet
        .upgrade_stopped(admin(), Some(arg))
        .expect("upgrade with add_admins");
    assert_eq!(fleet.my_roles_ok(rescuer), vec![Role::Admin]);
    assert_eq!(fleet.my_roles_ok(admin()), vec![Role::Admin]);
    fleet.add_role_ok(rescuer, stranger(), Role::Operator);
    assert_eq!(fleet.my_roles_ok(stranger()), vec![Role::Operator]);
}

/// A rollout of more children than one message stores apart (128) ends, and the deployer is
/// upgraded at once, before the timer messages that store the rest of them: after it the slices
/// start again from the first, every child's history reads, the children are free, and the
/// next rollout takes them.
#[test]
fn upgraded_while_a_finished_rollout_stores_its_children_apart() {
    let (mut fleet, children, _, id) = v2_rollout(300, 100);
    let done = fleet.run_to_end(operator(), id, 2_000);
    assert_eq!(done.summary.counts.upgraded, 300);

    let upgraded_from = fleet.env.trace().len();
    upgrade(&mut fleet);
    fleet.env.run_until_idle(100);
    // The upgraded deployer stored children apart (a slice is about 10 M instructions).
    let slices = fleet
        .replicated_executions(upgraded_from)
        .filter(|&(_, instructions)| instructions > 5_000_000)
        .count();
    assert!(slices >= 2, "{slices} slices after the upgrade");

    for &child in [children[0], children[150], children[299]].iter() {
        let arg = ChildHistoryArg {
            rollout_id: id,
            canister_id: child,
            from: None,
            limit: None,
        };
        let history: ChildHistory = fleet.child_history_ok(operator(), arg);
        assert!(!history.steps.is_empty(), "{child}");
    }
    let v3 = release(&mut fleet, &artifacts::wasm("child_v3"), "3");
    let next = fleet
        .start_rollout_of(operator(), &v3, Selector::All, policy(1, vec![], 100))
        .answer()
        .expect("the children are free");
    let done = fleet.run_to_end(operator(), next.rollout_id, 2_000);
    assert_eq!(done.summary.counts.upgraded, 300);
    let first = fleet.get_rollout_ok(operator(), id);
    assert_eq!(first.summary.counts.upgraded, 300);
    assert_eq!(first.summary.phase, RolloutPhase::Completed);
}
