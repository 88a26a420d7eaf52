//! Conformance tests: the cycles an inter-canister call reserves for its response (IC interface
//! specification, "Cycle cost calculation" `ic0.cost_call` and "Inter-canister method calls"
//! `ic0.call_perform`; figures from dfinity/ic `CyclesAccountManager` for a 13-node subnet:
//! `xnet_call_performed_fee` 260_000, `xnet_call_bytes_transmitted_fee` 1_000 per byte,
//! `prepayment_for_response_transmission` 1_000 x 2 MiB, `prepayment_for_response_execution`
//! 5_000_000 + 40 B instructions).
//!
//! `call_perform` withdraws `cost_call` = base fee + reservation and refuses the call when that is
//! more than the liquid balance; when the response (reply, reject or the `SYS_UNKNOWN` of an
//! expired bounded-wait call) is processed, the reservation comes back and the caller pays the
//! response's actual bytes and its callback's actual execution.

mod replica_support;

use ic_sim::exec::MAX_CYCLES_PER_RESPONSE;
use ic_sim::exec::{call_base_fee, cost_call, response_transmission_fee, CallResponse};
use ic_sim::{CycleCosts, IngressStatus, Principal, RejectCode, Sim, SimConfig};
use replica_support::*;

const UPDATE_BASE_FEE: u128 = 5_000_000;
const UPDATE_INSTRUCTION_LIMIT: u128 = 40_000_000_000;
/// The reply size the callee is asked for: big enough that its transmission fee (100 M cycles)
/// cannot hide in rounding, far below the 2 MiB the reservation covers.
const REPLY_BYTES: u32 = 100_000;

/// Two subnets, the callee `latency_rounds` away; no storage fee, so every balance change is a
/// call, ingress or execution charge.
fn sim_across_subnets(latency_rounds: u64) -> Sim {
    Sim::new(SimConfig {
        subnets: 2,
        cross_subnet_latency_rounds: latency_rounds,
        cycle_costs: CycleCosts {
            storage_fee_per_gib_second: 0,
            ..CycleCosts::default()
        },
        ..SimConfig::default()
    })
}

fn ingress_fee(method: &str, arg_len: usize) -> u128 {
    1_200_000 + 2_000 * (method.len() + arg_len) as u128
}

fn execution_fee(instructions: u64) -> u128 {
    UPDATE_BASE_FEE + u128::from(instructions)
}

/// Cycles taken from `canister` since `before` that were not burned, i.e. held in reservations.
fn held_since(sim: &Sim, canister: Principal, before: &ic_sim::CanisterView) -> u128 {
    let now = sim.canister(canister).unwrap();
    (before.cycles - now.cycles) - (now.cycles_burned - before.cycles_burned)
}

fn big_reply_call(callee: Principal) -> Call {
    Call::new(callee, "big_reply", REPLY_BYTES.to_le_bytes().to_vec())
}

/// A forwarder on subnet 0 that has made `big_reply_call` (bounded-wait when `timeout_seconds`
/// is not 0) to an echo canister on subnet 1 (`latency_rounds` away) and not yet heard back; `before` is the forwarder before it all.
struct BigReplyCall {
    sim: Sim,
    caller: Principal,
    call: Call,
    before: ic_sim::CanisterView,
    id: ic_sim::MessageId,
}

fn big_reply_call_sent(latency_rounds: u64, timeout_seconds: u32) -> BigReplyCall {
    let mut sim = sim_across_subnets(latency_rounds);
    let callee = install_on(&mut sim, 1, &echo_wasm(), Vec::new());
    let caller = forwarder(&mut sim, 0);
    let mut call = big_reply_call(callee);
    call.timeout_seconds = timeout_seconds;
    let before = sim.canister(caller).unwrap();
    let id = sim
        .submit_update(user(), caller, "forward", call.encode())
        .unwrap();
    sim.tick();
    sim.tick();
    BigReplyCall {
        sim,
        caller,
        call,
        before,
        id,
    }
}

// Spec "Cycle cost calculation": `ic0.cost_call` is the base fee (260_000 + 1_000 per byte of
// method name and argument) plus the reservation for the largest response: 2 MiB transmitted
// (2_097_152_000) and its callback executed at the 40 B instruction limit (40_005_000_000).
#[test]
fn cost_call_is_the_base_fee_plus_the_response_reservation() {
    assert_eq!(MAX_CYCLES_PER_RESPONSE, 42_102_152_000);
    assert_eq!(call_base_fee(9, 4), 260_000 + 13_000);
    assert_eq!(cost_call(9, 4), 260_000 + 13_000 + 42_102_152_000);
}

// `ic0.call_perform`: while the call is outstanding the caller's balance is down by the base fee
// plus the reservation; only the base fee is burned, the reservation is held.
#[test]
fn call_perform_withdraws_the_base_fee_and_the_reservation() {
    let BigReplyCall {
        sim,
        caller,
        call,
        before,
        id,
    } = big_reply_call_sent(20, 0);
    assert!(
        matches!(sim.ingress_status(id), IngressStatus::Processing),
        "the call is still in flight"
    );
    let forward_instructions = sim.last_instructions(caller);
    assert!(forward_instructions > 0, "`forward` has run");

    let mid = sim.canister(caller).unwrap();
    let base_fee = call_base_fee(call.method.len() as u64, call.payload.len() as u64);
    let burned = ingress_fee("forward", call.encode().len())
        + execution_fee(forward_instructions)
        + base_fee;
    assert_eq!(mid.cycles_burned - before.cycles_burned, burned);
    assert_eq!(held_since(&sim, caller, &before), MAX_CYCLES_PER_RESPONSE);
    assert_eq!(
        before.cycles - mid.cycles,
        burned + MAX_CYCLES_PER_RESPONSE,
        "base fee + reservation withdrawn at call_perform"
    );
}

// `ic0.cost_call`: "partially refunded if the real response and callback are smaller". After the
// reply, nothing is held any more and the call cost the base fee, the reply's actual bytes and
// the callback's actual execution.
#[test]
fn after_the_reply_the_call_costs_base_fee_actual_bytes_and_callback_execution() {
    let BigReplyCall {
        mut sim,
        caller,
        call,
        before,
        id,
    } = big_reply_call_sent(5, 0);
    let forward_instructions = sim.last_instructions(caller);
    let answer = Forwarded::parse(&sim.await_ingress(id, 100).unwrap());
    let callback_instructions = sim.last_instructions(caller);
    let Forwarded::Reply { data, .. } = answer else {
        panic!("expected a reply, got {answer:?}");
    };
    assert_eq!(data.len(), REPLY_BYTES as usize);

    assert_eq!(held_since(&sim, caller, &before), 0, "reservation settled");
    let after = sim.canister(caller).unwrap();
    let reply = CallResponse::Reply(data);
    assert_eq!(
        response_transmission_fee(&reply),
        1_000 * u128::from(REPLY_BYTES)
    );
    let expected = ingress_fee("forward", call.encode().len())
        + execution_fee(forward_instructions)
        + call_base_fee(call.method.len() as u64, call.payload.len() as u64)
        + response_transmission_fee(&reply)
        + execution_fee(callback_instructions);
    assert_eq!(before.cycles - after.cycles, expected);
}

// `ic0.call_perform` returns 2 when the caller cannot pay `cost_call` above its freezing limit:
// a liquid balance of about 20 B cycles covers the base fee many times over but not the 42.1 B
// reservation. The attached cycles stay; once the liquid balance covers the reservation, the same
// call goes through.
#[test]
fn call_perform_refuses_a_call_whose_reservation_the_liquid_balance_cannot_cover() {
    let mut sim = Sim::new(SimConfig::default());
    let callee = echo(&mut sim);
    let caller = forwarder(&mut sim, 0);
    let mut call = Call::new(callee, "reply_arg", b"x".to_vec());
    call.cycles = 1_000;
    let cost = cost_call(call.method.len() as u64, call.payload.len() as u64);

    // A freezing threshold that leaves ~20 B liquid during `forward` (the balance minus the
    // execution's prepaid instruction limit minus the freezing limit).
    let view = sim.canister(caller).unwrap();
    let target_liquid = 20_000_000_000u128;
    let spare = view.cycles - (UPDATE_BASE_FEE + UPDATE_INSTRUCTION_LIMIT) - target_liquid;
    let threshold = u64::try_from(spare * 86_400 / view.idle_cycles_burned_per_day).unwrap();
    set_freezing_threshold(&mut sim, caller, threshold);
    let view = sim.canister(caller).unwrap();
    let liquid = view.cycles - (UPDATE_BASE_FEE + UPDATE_INSTRUCTION_LIMIT) - view.freezing_limit;
    assert!(
        (10_000_000_000..cost).contains(&liquid),
        "liquid {liquid} covers the base fee, not cost_call {cost}"
    );

    let before = sim.canister(caller).unwrap();
    assert_eq!(
        forward(&mut sim, caller, &call),
        Forwarded::PerformFailed(2)
    );
    assert_eq!(
        held_since(&sim, caller, &before),
        0,
        "nothing reserved, attached cycles kept"
    );

    sim.add_cycles(caller, 30_000_000_000);
    assert_eq!(
        forward(&mut sim, caller, &call),
        Forwarded::Reply {
            refund: 1_000,
            data: b"x".to_vec()
        }
    );
}

// Spec `ic0.call_with_best_effort_response`: the system answers an expired bounded-wait call
// with `SYS_UNKNOWN`; processing that reject refunds the reservation like any response, and the
// late real reply (dropped) refunds nothing twice.
#[test]
fn the_reservation_is_refunded_when_a_bounded_wait_call_times_out() {
    let BigReplyCall {
        mut sim,
        caller,
        call,
        before,
        id,
    } = big_reply_call_sent(400, 10);
    let forward_instructions = sim.last_instructions(caller);
    assert_eq!(
        held_since(&sim, caller, &before),
        MAX_CYCLES_PER_RESPONSE,
        "reserved while waiting"
    );

    let answer = Forwarded::parse(&sim.await_ingress(id, 100).unwrap());
    let callback_instructions = sim.last_instructions(caller);
    let Forwarded::Reject { code, message, .. } = answer else {
        panic!("expected SYS_UNKNOWN, got {answer:?}");
    };
    assert_eq!(code, RejectCode::SysUnknown as u32);
    assert_eq!(held_since(&sim, caller, &before), 0, "reservation refunded");
    let timeout = CallResponse::Reject {
        code: RejectCode::SysUnknown,
        message,
    };
    let expected = ingress_fee("forward", call.encode().len())
        + execution_fee(forward_instructions)
        + call_base_fee(call.method.len() as u64, call.payload.len() as u64)
        + response_transmission_fee(&timeout)
        + execution_fee(callback_instructions);
    let after = sim.canister(caller).unwrap();
    assert_eq!(before.cycles - after.cycles, expected);

    sim.run_until_idle(1_000);
    assert_eq!(
        sim.canister(caller).unwrap().cycles,
        after.cycles,
        "the late reply neither refunds nor charges again"
    );
}
