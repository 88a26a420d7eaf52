//! The deployer's `/metrics` and `/status` on the real Wasm, during and after a rollout with a
//! failure: every sample read by a Prometheus text parser and held against what the Candid
//! queries say; served to anyone as a query, refused as a paid update.

mod failure_support;
mod rollout_support;
mod support;

use deployer::dashboard::DashboardSettings;
use deployer::{RolloutPhase, UpgradeArg};
use failure_support::*;
use ic_sim::scenario::IcEnv;
use rollout_support::{assert_metrics_agree, hex};
use support::{admin, operator, stranger, Answer};

const ROUNDS: u64 = 2_000;

#[test]
fn metrics_follow_a_rollout_with_a_failure_as_the_candid_queries_do() {
    let mut scenario = Scenario::new(4, "child_v2");
    let before = assert_metrics_agree(&mut scenario.fleet);
    let v1 = hex(&scenario.before[0].module_hash);
    assert_eq!(
        before.value(
            "deployer_children_by_module",
            &[("module", &v1), ("release", "")]
        ),
        4.0
    );
    // The canary's install fails and the budget tolerates none: the rollout pauses.
    let id = start_with_failing_canary(&mut scenario);
    // In flight: the canary's pipeline runs.
    scenario.fleet.run_until(operator(), id, ROUNDS, |info| {
        info.summary.counts.active > 0
    });
    let running = assert_metrics_agree(&mut scenario.fleet);
    assert_eq!(
        running.value("deployer_rollouts_active", &[("phase", "running")]),
        1.0
    );
    assert_eq!(running.value("deployer_children_in_rollouts", &[]), 4.0);
    let paused = scenario.fleet.run_until(operator(), id, ROUNDS, |info| {
        info.summary.counts.active == 0 && matches!(info.summary.phase, RolloutPhase::Paused(_))
    });
    let samples = assert_metrics_agree(&mut scenario.fleet);
    assert_eq!(
        samples.value("deployer_rollouts_active", &[("phase", "paused")]),
        1.0
    );
    let failed = [("rollout", "0"), ("state", "failed")];
    assert_eq!(samples.value("deployer_rollout_children", &failed), 1.0);
    assert_eq!(paused.summary.counts.failed, 1);
    // The canary's install was rejected with CanisterError.
    let rejected = [("kind", "Rejected"), ("rollout", "0")];
    assert_eq!(samples.value("deployer_rollout_failures", &rejected), 1.0);

    scenario.fleet.resume_rollout_ok(operator(), id);
    let done = scenario.fleet.run_to_end(operator(), id, ROUNDS);
    assert_eq!(done.summary.phase, RolloutPhase::Completed);
    let after = assert_metrics_agree(&mut scenario.fleet);
    let v2 = hex(&scenario.release_hash());
    let v2_labels = [("module", v2.as_str()), ("release", "child@2")];
    assert_eq!(after.value("deployer_children_by_module", &v2_labels), 3.0);
    assert_eq!(
        after.value(
            "deployer_children_by_module",
            &[("module", &v1), ("release", "")]
        ),
        1.0
    );
    assert_eq!(after.named("deployer_rollout_children").count(), 0);
    assert_eq!(after.value("deployer_children_in_rollouts", &[]), 0.0);
    assert_eq!(after.value("deployer_rollouts_started_total", &[]), 1.0);
}

#[test]
fn pages_are_served_to_anyone_as_queries_and_never_as_paid_updates() {
    let mut scenario = Scenario::new(1, "child_v2");
    let fleet = &mut scenario.fleet;
    let status = fleet.http_get_ok(stranger(), "/status");
    assert_eq!(status.status_code().as_u16(), 200);
    let json: serde_json::Value = serde_json::from_slice(status.body()).unwrap();
    assert_eq!(json["children"], 1);
    assert_eq!(json["releases"], 1);
    // The deployer certifies nothing else: gateways are told to skip verification, securely.
    let expression = status
        .headers()
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("ic-certificateexpression"));
    assert!(expression.is_some_and(|(_, value)| value.contains("no_certification")));
    let not_found = fleet.http_get_ok(stranger(), "/journal");
    assert_eq!(not_found.status_code().as_u16(), 404);

    // As an update, even an admin's: refused before it runs (inspect_message).
    let arg =
        candid::encode_one(deployer::dashboard::HttpRequest::get("/metrics").build()).unwrap();
    for sender in [stranger(), admin()] {
        let reject = fleet
            .env
            .update_raw(sender, fleet.canister, "http_request", arg.clone())
            .unwrap_err();
        assert!(
            reject.message.contains("served as a query only"),
            "{reject}"
        );
    }
}

#[test]
fn open_uploads_are_listed_for_operators() {
    let mut fleet = rollout_support::fleet(1);
    let module = ic_sim::artifacts::wasm("child_v2");
    let opened = fleet.upload_open_ok(
        operator(),
        deployer_client::open_arg(&module, Some(support::MIB), "child", "3"),
    );
    let listed = fleet.list_uploads_ok(operator());
    assert_eq!(listed, vec![opened.clone()]);
    assert_eq!(listed[0].missing_chunks.len(), opened.chunk_count as usize);
    let refused = fleet.list_uploads(stranger()).answer().unwrap_err();
    assert!(matches!(
        *refused.kind(),
        deployer::ErrorKind::NotAuthorized { .. }
    ));
    fleet.upload_abort_ok(operator(), opened.upload_id);
    assert_eq!(fleet.list_uploads_ok(operator()), vec![]);
}

#[test]
fn a_chunk_store_is_listed_and_unregistered_only_once_no_rollout_installs_through_it() {
    let mut fleet = rollout_support::fleet(2);
    let children = rollout_support::create_children(&mut fleet, 1, 2);
    fleet.adopt_all(admin(), &[vec![], children]);
    let store = fleet.register_store(admin(), 1);
    let subnet = fleet.env.subnet_id(1);
    let listed = fleet.list_chunk_stores_ok(operator());
    let registered = deployer::ChunkStore {
        subnet,
        canister_id: store,
    };
    assert_eq!(listed, vec![registered.clone()]);

    let release = rollout_support::release(&mut fleet, &ic_sim::artifacts::wasm("child_v2"), "2");
    let id = fleet
        .start_rollout_of(
            operator(),
            &release,
            deployer::Selector::All,
            rollout_support::policy(1, vec![], 2),
        )
        .answer()
        .unwrap()
        .rollout_id;
    let refused = fleet.unregister_chunk_store(admin(), subnet).answer();
    assert_eq!(
        *refused.unwrap_err().kind(),
        deployer::ErrorKind::StoreInUse {
            subnet,
            rollout_id: id
        }
    );
    let done = fleet.run_to_end(operator(), id, ROUNDS);
    assert_eq!(done.summary.counts.upgraded, 2);
    assert_eq!(fleet.unregister_chunk_store_ok(admin(), subnet), registered);
    assert_eq!(fleet.list_chunk_stores_ok(operator()), vec![]);
    let again = fleet.unregister_chunk_store(admin(), subnet).answer();
    assert_eq!(
        *again.unwrap_err().kind(),
        deployer::ErrorKind::NoChunkStore { subnet }
    );
    // Operators cannot unregister: it is an admin's setting (refused before it runs).
    let operator_refused = fleet.unregister_chunk_store(operator(), subnet);
    let reject = operator_refused.unwrap_err().reject();
    assert!(
        reject.message.contains("requires the Admin role"),
        "{reject}"
    );
}

#[test]
fn events_are_served_once_the_controllers_make_them_public() {
    let mut scenario = Scenario::new(1, "child_v2");
    let fleet = &mut scenario.fleet;
    let private = fleet.http_get_ok(stranger(), "/events");
    assert_eq!(private.status_code().as_u16(), 403);
    assert!(String::from_utf8_lossy(private.body()).contains("public_events = true"));
    let public = UpgradeArg {
        dashboard: Some(DashboardSettings {
            public_events: true,
        }),
        ..UpgradeArg::default()
    };
    fleet.upgrade_stopped(admin(), Some(public)).unwrap();
    let events = fleet.http_get_ok(stranger(), "/events");
    assert_eq!(events.status_code().as_u16(), 200);
    // An upgrade that does not mention the dashboard keeps it as it was.
    support::upgrade(fleet);
    let events = fleet.http_get_ok(stranger(), "/events");
    assert_eq!(events.status_code().as_u16(), 200);
}
