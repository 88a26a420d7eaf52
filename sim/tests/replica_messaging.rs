//! Conformance tests: inter-canister calls (IC interface specification, "Canister interface":
//! `ic0.call_new` .. `ic0.call_perform`, `ic0.call_with_best_effort_response`, "Reject codes";
//! resource limits page for payload and queue limits).

mod replica_support;

use ic_sim::{RejectCode, Sim, SimConfig};
use replica_support::*;

const CANISTER_ERROR: u32 = RejectCode::CanisterError as u32;

// Reply callbacks receive the callee's reply.
#[test]
fn call_reply_reaches_the_caller() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let answer = forward(
        &mut sim,
        caller,
        &Call::new(callee, "reply_arg", b"ping".to_vec()),
    );
    assert_eq!(
        answer,
        Forwarded::Reply {
            refund: 0,
            data: b"ping".to_vec()
        }
    );
}

// `msg_caller` of an inter-canister call is the calling canister.
#[test]
fn callee_sees_the_calling_canister() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let data = forward(&mut sim, caller, &Call::new(callee, "caller", Vec::new())).reply_data();
    assert_eq!(data, caller.as_slice());
}

// "Reject codes": a call to a canister that does not exist is DESTINATION_INVALID.
#[test]
fn call_to_unknown_canister_is_destination_invalid() {
    let mut sim = new_sim();
    let caller = forwarder(&mut sim, 0);
    let mut bytes = caller.as_slice().to_vec();
    bytes[7] = 200;
    let unknown = candid::Principal::from_slice(&bytes);
    match forward(
        &mut sim,
        caller,
        &Call::new(unknown, "anything", Vec::new()),
    ) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, RejectCode::DestinationInvalid as u32);
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

// "Reject codes": a trap in the callee is CANISTER_ERROR for the caller, with the trap message.
#[test]
fn callee_trap_is_canister_error_for_the_caller() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    match forward(
        &mut sim,
        caller,
        &Call::new(callee, "trap", b"kaput".to_vec()),
    ) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, CANISTER_ERROR);
            assert!(message.contains("kaput"), "{message}");
            assert!(message.contains(&callee.to_text()), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

// "Reject codes": `msg_reject` reaches the caller as CANISTER_REJECT with the exact message.
#[test]
fn msg_reject_is_canister_reject_for_the_caller() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let answer = forward(
        &mut sim,
        caller,
        &Call::new(callee, "reject", b"nope".to_vec()),
    );
    assert_eq!(
        answer,
        Forwarded::Reject {
            code: RejectCode::CanisterReject as u32,
            refund: 0,
            message: "nope".to_string()
        }
    );
}

// A callee that neither replies nor calls: the caller gets CANISTER_ERROR "did not reply".
#[test]
fn callee_without_reply_is_canister_error() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    match forward(&mut sim, caller, &Call::new(callee, "noreply", Vec::new())) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, CANISTER_ERROR);
            assert!(message.contains("did not reply"), "{message}");
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

// A call to a method the callee lacks is rejected with the replica's message.
#[test]
fn call_to_unknown_method_is_canister_error() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    match forward(&mut sim, caller, &Call::new(callee, "missing", Vec::new())) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, CANISTER_ERROR);
            assert!(
                message.contains("has no update method 'missing'"),
                "{message}"
            );
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

/// Rounds from submitting a forwarded call until its ingress completes.
fn rounds_for_forward(sim: &mut Sim, caller: candid::Principal, callee: candid::Principal) -> u64 {
    let id = sim
        .submit_update(
            user(),
            caller,
            "forward",
            Call::new(callee, "reply_arg", Vec::new()).encode(),
        )
        .unwrap();
    let start = sim.round();
    sim.await_ingress(id, 100).unwrap();
    sim.round() - start
}

// Message latency: a call across subnets takes `cross_subnet_latency_rounds` each way, one on the
// same subnet `same_subnet_latency_rounds` each way.
#[test]
fn cross_subnet_calls_take_more_rounds_than_same_subnet_calls() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        same_subnet_latency_rounds: 1,
        cross_subnet_latency_rounds: 3,
        ..SimConfig::default()
    });
    let caller = forwarder(&mut sim, 0);
    let near = install_on(&mut sim, 0, &echo_wasm(), Vec::new());
    let far = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    assert_eq!(sim.subnet_of(far), Some(1));
    // Ingress round + request + response.
    assert_eq!(rounds_for_forward(&mut sim, caller, near), 1 + 1 + 1);
    assert_eq!(rounds_for_forward(&mut sim, caller, far), 1 + 3 + 3);
}

// Resource limits: 500 messages in the queue between one pair of canisters; `call_perform`
// returns 2 when it is full.
#[test]
fn queue_capacity_is_500_per_callee() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let other_callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let reply = sim
        .update_call(user(), caller, "burst", burst_arg(callee, "reply_arg", 501))
        .unwrap();
    assert_eq!(reply[..4], 500u32.to_le_bytes(), "accepted calls");
    assert_eq!(
        reply[4..],
        2u32.to_le_bytes(),
        "call_perform result of the 501st"
    );
    // The queue towards another callee is separate.
    let reply = sim
        .update_call(
            user(),
            caller,
            "burst",
            burst_arg(other_callee, "reply_arg", 1),
        )
        .unwrap();
    assert_eq!(reply, [1, 0, 0, 0, 0, 0, 0, 0]);
    // Once the responses are back the slots are free again.
    sim.run_until_idle(50);
    let reply = sim
        .update_call(user(), caller, "burst", burst_arg(callee, "reply_arg", 500))
        .unwrap();
    assert_eq!(reply[..4], 500u32.to_le_bytes());
}

// Resource limits: same-subnet requests may carry 10 MiB, method name included; one byte more
// traps the calling message at `ic0.call_data_append` (IC0504, the replica's `RequestInPrep`).
#[test]
fn same_subnet_request_of_10_mib_is_delivered_and_one_byte_more_traps_the_caller() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let limit = 10 * 1024 * 1024;
    let mut call = Call::new(callee, "arg_size", Vec::new());
    call.zero_payload = (limit - "arg_size".len()) as u32;
    let data = forward(&mut sim, caller, &call).reply_data();
    assert_eq!(data, call.zero_payload.to_le_bytes());
    call.zero_payload += 1;
    let reject = sim
        .update_call(user(), caller, "forward", call.encode())
        .expect_err("the caller traps");
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert_eq!(reject.error_code.as_deref(), Some("IC0504"));
    assert!(
        reject.message.contains(&format!(
            "Canister violated contract: Request to {callee}:arg_size has a payload size of {}, which exceeds the allowed limit of {limit}.",
            limit + 1
        )),
        "{}",
        reject.message
    );
}

// Resource limits: cross-subnet requests carry at most 2 MiB; `call_perform` refuses more.
#[test]
fn cross_subnet_request_over_2_mib_is_refused() {
    let mut sim = two_subnets();
    let callee = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "arg_size", Vec::new());
    call.zero_payload = 2 * 1024 * 1024;
    assert_eq!(
        forward(&mut sim, caller, &call).reply_data(),
        (2u32 * 1024 * 1024).to_le_bytes()
    );
    call.zero_payload = 2 * 1024 * 1024 + 1;
    assert_eq!(
        forward(&mut sim, caller, &call),
        Forwarded::PerformFailed(2)
    );
}

// Resource limits: replies carry at most 2 MiB; a larger one reaches the caller as CANISTER_ERROR.
#[test]
fn oversized_reply_is_canister_error_for_the_caller() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let limit = 2u32 * 1024 * 1024;
    let at_limit = sim
        .update_call(user(), callee, "big_reply", limit.to_le_bytes().to_vec())
        .unwrap();
    assert_eq!(at_limit.len(), limit as usize);
    let over = sim
        .update_call(
            user(),
            callee,
            "big_reply",
            (limit + 1).to_le_bytes().to_vec(),
        )
        .unwrap_err();
    assert_eq!(over.code, RejectCode::CanisterError);
    match forward(
        &mut sim,
        caller,
        &Call::new(callee, "big_reply", (limit + 1).to_le_bytes().to_vec()),
    ) {
        Forwarded::Reject { code, message, .. } => {
            assert_eq!(code, CANISTER_ERROR);
            assert!(
                message.contains("cannot be larger than 2097152"),
                "{message}"
            );
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

// `ic0.call_cycles_add128` / `msg_cycles_accept128` / `msg_cycles_refunded128`: the callee keeps
// what it accepts, the rest comes back with the response.
#[test]
fn attached_cycles_are_accepted_or_refunded() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let callee_before = sim.canister(callee).unwrap();
    let caller_before = sim.canister(caller).unwrap();
    let mut call = Call::new(callee, "accept", 300_000u64.to_le_bytes().to_vec());
    call.cycles = 1_000_000;
    let answer = forward(&mut sim, caller, &call);
    let Forwarded::Reply { refund, data } = answer else {
        panic!("expected a reply, got {answer:?}");
    };
    assert_eq!(refund, 700_000);
    assert_eq!(u128::from_le_bytes(data.try_into().unwrap()), 300_000);
    // Besides the accepted cycles, each side loses exactly what it paid (executions, storage and,
    // for the caller, the ingress and the call fee).
    let callee_after = sim.canister(callee).unwrap();
    let caller_after = sim.canister(caller).unwrap();
    assert_eq!(
        callee_after.cycles,
        callee_before.cycles + 300_000 - (callee_after.cycles_burned - callee_before.cycles_burned)
    );
    // The base fee is burned; cost_call's response reservation is settled with the response.
    let fee = ic_sim::exec::call_base_fee("accept".len() as u64, 8);
    let caller_paid = caller_after.cycles_burned - caller_before.cycles_burned;
    assert!(caller_paid >= fee);
    assert_eq!(
        caller_after.cycles,
        caller_before.cycles - 300_000 - caller_paid
    );
}

// Cycles attached to a call that is rejected come back in full.
#[test]
fn attached_cycles_come_back_with_a_reject() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "trap", b"no".to_vec());
    call.cycles = 5_000;
    match forward(&mut sim, caller, &call) {
        Forwarded::Reject { refund, .. } => assert_eq!(refund, 5_000),
        other => panic!("expected a reject, got {other:?}"),
    }
}

// `ic0.call_with_best_effort_response`: the caller gets SYS_UNKNOWN once the deadline passes; the
// late real response is dropped.
#[test]
fn bounded_wait_call_times_out_with_sys_unknown() {
    let mut sim = Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: 20,
        ..SimConfig::default()
    });
    let callee = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "reply_arg", b"late".to_vec());
    call.timeout_seconds = 5;
    let id = sim
        .submit_update(user(), caller, "forward", call.encode())
        .unwrap();
    let start = sim.time_nanos();
    let answer = Forwarded::parse(&sim.await_ingress(id, 100).unwrap());
    match answer {
        Forwarded::Reject { code, .. } => assert_eq!(code, RejectCode::SysUnknown as u32),
        other => panic!("expected SYS_UNKNOWN, got {other:?}"),
    }
    // One round for the ingress, then the 5 s deadline (1 s rounds).
    assert!(sim.time_nanos() - start <= 7_000_000_000);
    // The real response still travels back and is dropped without running a callback.
    let executions_before = callback_executions(&sim, caller);
    sim.run_until_idle(100);
    assert_eq!(callback_executions(&sim, caller), executions_before);
    assert_eq!(sim.canister(caller).unwrap().open_call_contexts, 0);
}

fn callback_executions(sim: &Sim, canister: candid::Principal) -> usize {
    sim.trace()
        .iter()
        .filter(|e| {
            matches!(&e.kind, ic_sim::TraceKind::Execution { canister: c, entry, .. }
                if *c == canister && entry.starts_with("response:"))
        })
        .count()
}

// `ic0.msg_deadline`: call time + timeout for bounded-wait calls, 0 for unbounded-wait calls.
#[test]
fn msg_deadline_is_call_time_plus_timeout() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let unbounded = forward(&mut sim, caller, &Call::new(callee, "deadline", Vec::new()));
    assert_eq!(unbounded.reply_data(), 0u64.to_le_bytes());

    let mut call = Call::new(callee, "deadline", Vec::new());
    call.timeout_seconds = 100;
    let id = sim
        .submit_update(user(), caller, "forward", call.encode())
        .unwrap();
    // The forwarder runs (and makes the call) in the next round.
    let call_time = sim.time_nanos() + sim.config().round_duration_nanos;
    let data = Forwarded::parse(&sim.await_ingress(id, 10).unwrap()).reply_data();
    assert_eq!(
        u64::from_le_bytes(data.try_into().unwrap()),
        call_time + 100_000_000_000
    );
}

// `ic0.call_with_best_effort_response`: timeouts above 300 s are capped.
#[test]
fn bounded_wait_timeout_is_capped_at_300_seconds() {
    let mut sim = new_sim();
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "deadline", Vec::new());
    call.timeout_seconds = 10_000;
    let id = sim
        .submit_update(user(), caller, "forward", call.encode())
        .unwrap();
    let call_time = sim.time_nanos() + sim.config().round_duration_nanos;
    let data = Forwarded::parse(&sim.await_ingress(id, 10).unwrap()).reply_data();
    assert_eq!(
        u64::from_le_bytes(data.try_into().unwrap()),
        call_time + 300_000_000_000
    );
}
