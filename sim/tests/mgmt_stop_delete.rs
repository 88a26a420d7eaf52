//! Conformance tests: stopping, starting and deleting canisters (IC interface specification, "The
//! IC management canister": `stop_canister`, `start_canister`, `delete_canister`).

mod replica_support;

use candid::Principal;
use ic_sim::{CanisterRunStatus, MessageId, RejectCode, Sim, SimConfig};
use replica_support::*;

const SECOND: u64 = 1_000_000_000;

/// Two subnets, slow cross-subnet messaging and a short stop timeout: a forwarder on subnet 0
/// with a call to subnet 1 in flight keeps a call context open for about 40 rounds.
fn slow_network() -> Sim {
    Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 20,
        stop_timeout_nanos: 10 * SECOND,
        ..SimConfig::default()
    })
}

/// Installs a forwarder on subnet 0 and an echo on subnet 1 and starts a forwarded call.
fn forwarder_with_open_call(sim: &mut Sim) -> (Principal, MessageId) {
    let far = install_on(sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(sim, 0);
    let open = sim
        .submit_update(
            user(),
            caller,
            "forward",
            Call::new(far, "reply_arg", b"slow".to_vec()).encode(),
        )
        .unwrap();
    sim.tick();
    assert_eq!(sim.canister(caller).unwrap().open_call_contexts, 1);
    (caller, open)
}

fn status(sim: &Sim, canister: Principal) -> CanisterRunStatus {
    sim.canister(canister).unwrap().status
}

fn submit_management(sim: &mut Sim, method: &str, canister: Principal) -> MessageId {
    sim.submit_update(
        user(),
        management(),
        method,
        candid::encode_one(id_record(canister)).unwrap(),
    )
    .unwrap()
}

// `stop_canister`: the canister is stopping at once and rejects new calls, but still processes
// responses; the stop call fails after the timeout and leaves it stopping; it becomes stopped once
// its last call context closes.
#[test]
fn stop_with_open_call_context_times_out_and_stays_stopping() {
    let mut sim = slow_network();
    let (caller, open) = forwarder_with_open_call(&mut sim);
    let stop = submit_management(&mut sim, "stop_canister", caller);
    sim.tick();
    assert_eq!(status(&sim, caller), CanisterRunStatus::Stopping);

    let refused = sim
        .submit_update(user(), caller, "forward", Vec::new())
        .unwrap_err();
    assert_eq!(refused.code, RejectCode::CanisterError);
    assert_eq!(refused.error_code.as_deref(), Some("IC0509"));
    assert!(refused.message.contains("is not running"), "{refused}");

    let err = sim.await_ingress(stop, 30).unwrap_err();
    assert_eq!(err.code, RejectCode::SysTransient);
    assert_eq!(err.error_code.as_deref(), Some("IC0206"));
    assert_eq!(status(&sim, caller), CanisterRunStatus::Stopping);

    // The response still reaches the stopping canister; then nothing is open and it stops.
    let answer = Forwarded::parse(&sim.await_ingress(open, 100).unwrap());
    assert_eq!(answer.reply_data(), b"slow");
    sim.tick();
    assert_eq!(status(&sim, caller), CanisterRunStatus::Stopped);
}

// `start_canister` on a stopping canister: running again, pending stop calls are rejected.
#[test]
fn start_rejects_pending_stop_calls() {
    let mut sim = slow_network();
    let (caller, open) = forwarder_with_open_call(&mut sim);
    let stop = submit_management(&mut sim, "stop_canister", caller);
    sim.tick();
    assert_eq!(status(&sim, caller), CanisterRunStatus::Stopping);
    management_ingress(&mut sim, user(), "start_canister", &id_record(caller)).unwrap();
    assert_eq!(status(&sim, caller), CanisterRunStatus::Running);
    let err = sim.await_ingress(stop, 5).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0511"));
    assert!(err.message.contains("stop request was cancelled"), "{err}");
    assert!(sim.await_ingress(open, 100).is_ok());
}

// `stop_canister` without open call contexts: stopped within the round; a stopped canister rejects
// inter-canister calls and ingress; stopping it again succeeds at once.
#[test]
fn stopped_canister_rejects_calls() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let stop = submit_management(&mut sim, "stop_canister", callee);
    sim.tick();
    assert!(sim.await_ingress(stop, 0).is_ok());
    assert_eq!(status(&sim, callee), CanisterRunStatus::Stopped);

    match forward(
        &mut sim,
        caller,
        &Call::new(callee, "reply_arg", Vec::new()),
    ) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, RejectCode::CanisterError as u32);
            assert!(message.contains("is stopped"), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
    let err = sim
        .submit_update(user(), callee, "reply_arg", Vec::new())
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0508"));
    let err = sim
        .query_call(user(), callee, "query_arg", Vec::new())
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0508"));

    management_ingress(&mut sim, user(), "stop_canister", &id_record(callee)).unwrap();
    management_ingress(&mut sim, user(), "start_canister", &id_record(callee)).unwrap();
    assert_eq!(
        forward(
            &mut sim,
            caller,
            &Call::new(callee, "reply_arg", b"back".to_vec())
        )
        .reply_data(),
        b"back"
    );
}

// `delete_canister`: only a stopped canister can be deleted; its id is gone and never reused.
#[test]
fn delete_requires_a_stopped_canister() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let err =
        management_ingress(&mut sim, user(), "delete_canister", &id_record(canister)).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0510"));
    assert!(sim.canister(canister).is_some());

    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    management_ingress(&mut sim, user(), "delete_canister", &id_record(canister)).unwrap();
    assert!(sim.canister(canister).is_none());
    assert_eq!(sim.subnet_of(canister), None);

    match forward(
        &mut sim,
        caller,
        &Call::new(canister, "reply_arg", Vec::new()),
    ) {
        Forwarded::Reject { code, .. } => assert_eq!(code, RejectCode::DestinationInvalid as u32),
        other => panic!("expected a reject, got {other:?}"),
    }
    let err = sim
        .submit_update(user(), canister, "reply_arg", Vec::new())
        .unwrap_err();
    assert_eq!(err.error_code.as_deref(), Some("IC0301"));
    let newer = sim.create_canister(0, vec![user()]);
    assert_ne!(newer, canister);
}
