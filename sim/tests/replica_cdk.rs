//! The replica model with real ic-cdk canisters (the `probe` fixture from `artifacts/`): ic-cdk's
//! call futures, ic-cdk-timers on the global timer (IC interface specification, "Global timer"),
//! and self-calls while stopping (`stop_canister`).

mod replica_support;

use candid::{CandidType, Principal};
use ic_sim::{CanisterRunStatus, RejectCode, Sim};
use replica_support::*;
use serde::Deserialize;
use serde_bytes::ByteBuf;

#[derive(CandidType)]
struct ForwardRequest {
    callee: Principal,
    method: String,
    arg: ByteBuf,
    cycles: u128,
    timeout_seconds: Option<u32>,
}

#[derive(CandidType, Deserialize, Debug)]
struct CallError {
    code: u32,
    message: String,
}

fn probe(sim: &mut Sim, subnet: usize) -> Principal {
    install_on(sim, subnet, &ic_sim::artifacts::wasm("probe"), Vec::new())
}

fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
    sim: &mut Sim,
    canister: Principal,
    method: &str,
    arg: A,
) -> R {
    let reply = sim
        .update_call(user(), canister, method, candid::encode_one(arg).unwrap())
        .unwrap_or_else(|reject| panic!("{method}: {reject}"));
    decode(&reply)
}

fn timer_fired(sim: &mut Sim, canister: Principal) -> u64 {
    decode(
        &sim.query_call(
            user(),
            canister,
            "timer_fired",
            candid::encode_args(()).unwrap(),
        )
        .unwrap(),
    )
}

// ic-cdk-timers schedules through `ic0.global_timer_set` (absolute time) and runs its tasks from
// `canister_global_timer` via self-calls.
#[test]
fn ic_cdk_timers_fire_at_their_time() {
    let mut sim = new_sim();
    let canister = probe(&mut sim, 0);
    let set_at = sim.time_nanos();
    let () = call(&mut sim, canister, "set_timer", 5u64);
    while sim.time_nanos() < set_at + 5_000_000_000 {
        assert_eq!(timer_fired(&mut sim, canister), 0);
        sim.tick();
    }
    sim.run_until_idle(20);
    assert_eq!(timer_fired(&mut sim, canister), 1);
}

// ic-cdk bounded- and unbounded-wait calls across subnets, answered by another ic-cdk canister.
#[test]
fn ic_cdk_calls_across_subnets() {
    let mut sim = two_subnets();
    let caller = probe(&mut sim, 0);
    let callee = probe(&mut sim, 1);
    for timeout_seconds in [None, Some(60)] {
        let request = ForwardRequest {
            callee,
            method: "echo".to_string(),
            arg: ByteBuf::from(candid::encode_one(ByteBuf::from(b"hi".to_vec())).unwrap()),
            cycles: 0,
            timeout_seconds,
        };
        let result: Result<ByteBuf, CallError> = call(&mut sim, caller, "forward", request);
        let reply: ByteBuf = decode(&result.unwrap());
        assert_eq!(reply.as_ref(), b"hi");
    }
    let random: ByteBuf = call(&mut sim, caller, "raw_rand", ());
    assert_eq!(random.len(), 32);
}

// A canister calling itself cannot keep itself from stopping: its self-call is rejected once it is
// stopping, the call context closes and the canister stops.
#[test]
fn self_calls_are_rejected_while_stopping() {
    let mut sim = new_sim();
    let canister = probe(&mut sim, 0);
    let spin = sim
        .submit_update(user(), canister, "spin", candid::encode_args(()).unwrap())
        .unwrap();
    for _ in 0..5 {
        sim.tick();
    }
    assert_eq!(sim.canister(canister).unwrap().open_call_contexts, 1);
    management_ingress(&mut sim, user(), "stop_canister", &id_record(canister)).unwrap();
    assert_eq!(
        sim.canister(canister).unwrap().status,
        CanisterRunStatus::Stopped
    );
    let err = sim.await_ingress(spin, 0).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("spin_step failed"), "{err}");
}
