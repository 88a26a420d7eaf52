//! Conformance tests: bounded-wait calls (IC interface specification,
//! `ic0.call_with_best_effort_response`): the system answers at the latest after the timeout,
//! capped at `MAX_CALL_TIMEOUT` = 300 s, with `SYS_UNKNOWN`; an expired request is not executed;
//! unbounded-wait calls wait as long as it takes. (The late response being dropped, the cap seen
//! in `msg_deadline` and `msg_deadline` at the callee are pinned in `replica_messaging.rs`.)

mod replica_support;

use ic_sim::{RejectCode, Sim, SimConfig};
use replica_support::*;

const SECOND: u64 = 1_000_000_000;

/// A callee on subnet 1 that a call from subnet 0 reaches after 400 one-second rounds.
fn very_slow_network() -> Sim {
    Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 400,
        ..SimConfig::default()
    })
}

// A timeout of 10 000 s is capped: SYS_UNKNOWN comes 300 s after the call.
#[test]
fn sys_unknown_comes_at_the_capped_300_s_deadline() {
    let mut sim = very_slow_network();
    let callee = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "reply_arg", b"too late".to_vec());
    call.timeout_seconds = 10_000;
    let id = sim
        .submit_update(user(), caller, "forward", call.encode())
        .unwrap();
    let call_time = sim.time_nanos() + sim.config().round_duration_nanos;
    let answer = Forwarded::parse(&sim.await_ingress(id, 1000).unwrap());
    match answer {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, RejectCode::SysUnknown as u32);
            assert_eq!(message, "Call deadline has expired.");
        }
        other => panic!("expected SYS_UNKNOWN, got {other:?}"),
    }
    let waited = sim.time_nanos() - call_time;
    assert!((300 * SECOND..=302 * SECOND).contains(&waited), "{waited}");
}

// An unbounded-wait call has no deadline: it gets its reply after 800 s.
#[test]
fn unbounded_wait_call_waits_past_300_s() {
    let mut sim = very_slow_network();
    let callee = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let call = Call::new(callee, "reply_arg", b"worth the wait".to_vec());
    let id = sim
        .submit_update(user(), caller, "forward", call.encode())
        .unwrap();
    let start = sim.time_nanos();
    let answer = Forwarded::parse(&sim.await_ingress(id, 1000).unwrap());
    assert_eq!(answer.reply_data(), b"worth the wait");
    assert!(sim.time_nanos() - start >= 800 * SECOND);
}

// A request still in flight at its deadline is shed: the callee never executes it.
#[test]
fn expired_request_is_not_executed() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 20,
        ..SimConfig::default()
    });
    let callee = install_on(&mut sim, 1, &echo_wasm(), b"before".to_vec());
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "write", b"never written".to_vec());
    call.timeout_seconds = 5;
    let answer = forward(&mut sim, caller, &call);
    assert!(
        matches!(answer, Forwarded::Reject { code, .. } if code == RejectCode::SysUnknown as u32),
        "{answer:?}"
    );
    sim.run_until_idle(100);
    assert_eq!(
        sim.query_call(user(), callee, "read", Vec::new()).unwrap(),
        b"before"
    );
}
