//! Fault injection: an execution that traps ([`Fault::TrapExecution`]). IC interface
//! specification, "Message execution" and "Callback invocation": a trapped execution changes
//! nothing and its call context is rejected with `CANISTER_ERROR` when nothing else will answer
//! it; when a reply or reject callback traps, the call's cleanup closure runs, and its changes
//! persist.

mod replica_support;

use candid::Principal;
use ic_sim::{Fault, FaultCount, FaultEvent, FaultSource, RandomFaults, RejectCode, Sim};
use replica_support::*;

/// `call` counts itself and calls the management canister's `raw_rand`; the response closure
/// counts the response and replies; the cleanup closure counts cleanups. `counts` replies the
/// three counters (calls, responses, cleanups), little-endian u64 each.
const CALLER: &str = r#"(module
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_on_cleanup" (func $call_on_cleanup (param i32 i32)))
  (import "ic0" "call_data_append" (func $call_data_append (param i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $on_response $cleanup)
  ;; The management canister's id is empty; "raw_rand" at 0x10, its Candid argument at 0x20.
  (data (i32.const 0x10) "raw_rand")
  (data (i32.const 0x20) "DIDL\00\00")
  (func $count (param $at i32)
    (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (i64.const 1))))
  (func $on_response (param $env i32)
    (call $count (i32.const 0x108))
    (call $reply))
  (func $cleanup (param $env i32)
    (call $count (i32.const 0x110)))
  (func (export "canister_update call")
    (call $count (i32.const 0x100))
    (call $call_new (i32.const 0) (i32.const 0) (i32.const 0x10) (i32.const 8)
                    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $call_on_cleanup (i32.const 1) (i32.const 0))
    (call $call_data_append (i32.const 0x20) (i32.const 6))
    (drop (call $call_perform)))
  (func (export "canister_query counts")
    (call $reply_append (i32.const 0x100) (i32.const 24))
    (call $reply))
)"#;

fn caller(sim: &mut Sim) -> Principal {
    install_on(sim, 0, &wat::parse_str(CALLER).expect("WAT"), Vec::new())
}

/// Calls made, responses handled, cleanups run.
fn counts(sim: &mut Sim, canister: Principal) -> [u64; 3] {
    let bytes = sim
        .query_call(user(), canister, "counts", Vec::new())
        .expect("counts");
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    [word(0), word(1), word(2)]
}

fn trap(canister: Principal, entry: &str) -> Fault {
    Fault::TrapExecution {
        canister,
        entry: entry.to_string(),
        count: FaultCount::Times(1),
    }
}

/// The entries whose executions an injected fault trapped, with where the fault came from.
fn trapped(sim: &Sim) -> Vec<(String, FaultSource)> {
    faults(sim)
        .into_iter()
        .filter_map(|(source, event)| match event {
            FaultEvent::ExecutionTrapped { entry, .. } => Some((entry, source)),
            _ => None,
        })
        .collect()
}

fn trapped_entries(sim: &Sim) -> Vec<String> {
    trapped(sim).into_iter().map(|(entry, _)| entry).collect()
}

/// `call`, which traps at `entry`: the caller gets `CANISTER_ERROR` naming it.
fn call_trapped_at(sim: &mut Sim, canister: Principal, entry: &str, why: &str) {
    let reject = sim
        .update_call(user(), canister, "call", Vec::new())
        .expect_err(why);
    assert_eq!(reject.code, RejectCode::CanisterError);
    assert!(
        reject.message.contains(&format!("{entry} trapped")),
        "{reject:?}"
    );
}

#[test]
fn a_trapped_update_keeps_nothing_and_is_rejected_with_canister_error() {
    let mut sim = new_sim();
    let canister = caller(&mut sim);
    sim.inject(trap(canister, "update:call"));

    call_trapped_at(&mut sim, canister, "update:call", "trapped");
    assert_eq!(counts(&mut sim, canister), [0, 0, 0], "nothing was kept");
    assert_eq!(trapped_entries(&sim), ["update:call"]);

    sim.update_call(user(), canister, "call", Vec::new())
        .expect("the fault applied once");
    assert_eq!(counts(&mut sim, canister), [1, 1, 0]);
}

#[test]
fn a_trapped_response_runs_the_cleanup_whose_changes_persist() {
    let mut sim = new_sim();
    let canister = caller(&mut sim);
    sim.inject(trap(canister, "response:raw_rand"));

    call_trapped_at(
        &mut sim,
        canister,
        "response:raw_rand",
        "the callback trapped and nothing else answers the call",
    );
    // The call was made (its update kept), the response closure's count rolled back, the
    // cleanup's count kept.
    assert_eq!(counts(&mut sim, canister), [1, 0, 1]);
    assert_eq!(trapped_entries(&sim), ["response:raw_rand"]);

    sim.update_call(user(), canister, "call", Vec::new())
        .expect("the fault applied once");
    assert_eq!(
        counts(&mut sim, canister),
        [2, 1, 1],
        "no cleanup without a trap"
    );
}

#[test]
fn random_response_traps_hit_the_listed_methods_and_run_the_cleanup() {
    let mut sim = new_sim();
    let canister = caller(&mut sim);
    sim.set_random_faults(RandomFaults {
        trap_response: 1.0,
        trap_methods: vec!["canister_status".to_string()],
        ..RandomFaults::default()
    });
    sim.update_call(user(), canister, "call", Vec::new())
        .expect("only the responses of the listed methods trap");
    assert_eq!(counts(&mut sim, canister), [1, 1, 0]);
    sim.set_random_faults(RandomFaults {
        trap_response: 1.0,
        ..RandomFaults::default()
    });

    for cleanups in 1..=2 {
        let reject = sim
            .update_call(user(), canister, "call", Vec::new())
            .expect_err("every response traps");
        assert_eq!(reject.code, RejectCode::CanisterError);
        assert_eq!(counts(&mut sim, canister), [cleanups + 1, 1, cleanups]);
    }
    assert_eq!(
        trapped(&sim),
        vec![("response:raw_rand".to_string(), FaultSource::Random); 2]
    );
}
