//! Outgoing calls and their responses.
//! Spec: IC interface specification, "Canister interface (System API)", "Inter-canister method
//! calls" (`call_new` ... `call_perform`, bounded-wait calls, cleanup) and "Entry points"
//! (callbacks and their traps).

mod exec_support;
use exec_support::*;
use ic_sim::exec::{CallResponse, CanisterInstance, ExecEnv, ExecKind, ExecOutcome};
use ic_sim::types::{Principal, RejectCode};

const OTHER_CANISTER: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 7, 1, 1];

/// `call` makes a call to the canister whose id is the argument, with method "m", payload
/// "payload", 1000 cycles, reply/reject closure 0 (env 7 / 8) and cleanup closure 1 (env 9), and
/// replies with `call_perform`'s result. Closure 0 records its env and `msg_reject_code` in
/// globals and the reply payload (or reject message) at 3000, then traps if the payload is
/// "trap". Closure 1 records its env. `state` replies with the three globals and 8 bytes at 3000.
const CALLER: &str = r#"
  (global $closure_env (mut i64) (i64.const 0))
  (global $closure_code (mut i64) (i64.const -1))
  (global $cleanup_env (mut i64) (i64.const 0))
  (data (i32.const 100) "m")
  (data (i32.const 110) "payload")
  (data (i32.const 120) "trap")
  (elem (i32.const 0) $closure $cleanup)
  (func $start_call
    (call $arg_copy (i32.const 200) (i32.const 0) (call $arg_size))
    (call $call_new (i32.const 200) (call $arg_size) (i32.const 100) (i32.const 1)
                    (i32.const 0) (i32.const 7) (i32.const 0) (i32.const 8)))
  (func (export "canister_update call")
    (call $start_call)
    (call $call_on_cleanup (i32.const 1) (i32.const 9))
    (call $call_data_append (i32.const 110) (i32.const 7))
    (call $call_cycles_add (i64.const 0) (i64.const 1000))
    (call $reply_i64 (i64.extend_i32_u (call $call_perform))))
  (func $closure (param $env i32)
    (global.set $closure_env (i64.extend_i32_u (local.get $env)))
    (global.set $closure_code (i64.extend_i32_u (call $reject_code)))
    (if (i32.eqz (call $reject_code))
      (then (call $arg_copy (i32.const 3000) (i32.const 0) (call $arg_size)))
      (else (call $reject_msg_copy (i32.const 3000) (i32.const 0) (call $reject_msg_size))))
    (if (i32.eq (i32.load (i32.const 3000)) (i32.load (i32.const 120)))
      (then (call $trap (i32.const 120) (i32.const 4)))))
  (func $cleanup (param $env i32)
    (global.set $cleanup_env (i64.extend_i32_u (local.get $env))))
  (func (export "canister_query state")
    (i64.store (i32.const 0) (global.get $closure_env))
    (i64.store (i32.const 8) (global.get $closure_code))
    (i64.store (i32.const 16) (global.get $cleanup_env))
    (i64.store (i32.const 24) (i64.load (i32.const 3000)))
    (call $reply_bytes (i32.const 0) (i32.const 32)))
"#;

fn call(canister: &mut CanisterInstance, callee: &[u8], env: &ExecEnv) -> (i64, ExecOutcome) {
    let env = ExecEnv {
        arg: callee.to_vec(),
        ..env.clone()
    };
    let outcome = update_with(canister, "call", &env);
    (i64_of(&reply(&outcome)), outcome)
}

fn state(canister: &mut CanisterInstance) -> Vec<i64> {
    words(&reply(&query(canister, "state", b"")))
}

fn respond(
    canister: &mut CanisterInstance,
    outcome: &ExecOutcome,
    response: CallResponse,
) -> ExecOutcome {
    let kind = ExecKind::Response {
        callback: outcome.calls[0].callback.clone(),
        response,
        injected_trap: None,
    };
    canister.execute(&kind, &env())
}

#[test]
fn call_perform_records_the_call() {
    let mut canister = install(&canister(CALLER));
    let (result, outcome) = call(&mut canister, &OTHER_CANISTER, &env());
    assert_eq!(result, 0);
    let made = &outcome.calls[0];
    assert_eq!(made.callee, Principal::from_slice(&OTHER_CANISTER));
    assert_eq!(
        (made.method.as_str(), made.payload.as_slice(), made.cycles),
        ("m", &b"payload"[..], 1000)
    );
    assert_eq!((made.callback.reply_fun, made.callback.reply_env), (0, 7));
    assert_eq!((made.callback.reject_fun, made.callback.reject_env), (0, 8));
    assert_eq!(made.callback.cleanup, Some((1, 9)));
    assert_eq!(made.timeout_seconds, None);
}

#[test]
fn call_perform_returns_2_when_the_callee_has_no_free_slot() {
    let mut canister = install(&canister(CALLER));
    let callee = Principal::from_slice(&OTHER_CANISTER);
    let full = ExecEnv {
        free_slots: [(callee, 0)].into_iter().collect(),
        ..env()
    };
    let (result, outcome) = call(&mut canister, &OTHER_CANISTER, &full);
    assert_eq!(result, 2);
    assert!(outcome.calls.is_empty());
    // Another callee still has the default number of free slots.
    let (result, _) = call(&mut canister, &[9; 10], &full);
    assert_eq!(result, 0);
}

#[test]
fn call_perform_counts_the_slots_used_by_this_execution() {
    let mut canister = install(&canister(&format!(
        r#"{CALLER}
        (func (export "canister_update call_twice")
          (call $start_call) (drop (call $call_perform))
          (call $start_call) (call $reply_i64 (i64.extend_i32_u (call $call_perform))))"#
    )));
    let env = ExecEnv {
        arg: OTHER_CANISTER.to_vec(),
        default_free_slots: 1,
        ..env()
    };
    let outcome = update_with(&mut canister, "call_twice", &env);
    assert_eq!(i64_of(&reply(&outcome)), 2);
    assert_eq!(outcome.calls.len(), 1);
}

#[test]
fn call_perform_payload_bound_is_2_mib_across_subnets_and_10_mib_within() {
    let mut canister = install(&canister(&format!(
        r#"{CALLER}
        (func (export "canister_update big")
          (drop (memory.grow (i32.const 64)))
          (call $start_call)
          (call $call_data_append (i32.const 0) (i32.const 3145728))
          (call $reply_i64 (i64.extend_i32_u (call $call_perform))))"#
    )));
    let big = |canister: &mut CanisterInstance, callee: &[u8], env: &ExecEnv| {
        let env = ExecEnv {
            arg: callee.to_vec(),
            ..env.clone()
        };
        i64_of(&reply(&update_with(canister, "big", &env)))
    };
    assert_eq!(big(&mut canister, &OTHER_CANISTER, &env()), 2);
    let same_subnet = ExecEnv {
        same_subnet: std::sync::Arc::new([Principal::from_slice(&OTHER_CANISTER)].into()),
        ..env()
    };
    assert_eq!(big(&mut canister, &OTHER_CANISTER, &same_subnet), 0);
    assert_eq!(
        big(&mut canister, &[], &env()),
        0,
        "aaaaa-aa counts as the same subnet"
    );
}

#[test]
fn call_with_best_effort_response_is_capped_at_300_seconds_and_only_once_inside_a_call() {
    let mut canister = install(&canister(&format!(
        r#"{CALLER}
        (func (export "canister_update bounded")
          (call $start_call) (call $call_best_effort (i32.const 1000))
          (call $reply_i64 (i64.extend_i32_u (call $call_perform))))
        (func (export "canister_update outside") (call $call_best_effort (i32.const 10)))
        (func (export "canister_update after_perform")
          (call $start_call) (drop (call $call_perform)) (call $call_best_effort (i32.const 10)))
        (func (export "canister_update twice")
          (call $start_call) (call $call_best_effort (i32.const 10)) (call $call_best_effort (i32.const 10)))"#
    )));
    let env = ExecEnv {
        arg: OTHER_CANISTER.to_vec(),
        ..env()
    };
    let outcome = update_with(&mut canister, "bounded", &env);
    assert_eq!(outcome.calls[0].timeout_seconds, Some(300));
    for method in ["outside", "after_perform", "twice"] {
        let outcome = update_with(&mut canister, method, &env);
        assert!(
            trap(&outcome).contains("call_with_best_effort_response"),
            "{method}: {outcome:?}"
        );
        assert!(outcome.calls.is_empty(), "a trap discards the calls");
    }
}

#[test]
fn a_second_call_new_discards_the_call_under_construction() {
    let mut canister = install(&canister(&format!(
        r#"{CALLER}
        (func (export "canister_update restart")
          (call $start_call) (call $call_data_append (i32.const 110) (i32.const 7))
          (call $start_call) (call $reply_i64 (i64.extend_i32_u (call $call_perform))))"#
    )));
    let env = ExecEnv {
        arg: OTHER_CANISTER.to_vec(),
        ..env()
    };
    let outcome = update_with(&mut canister, "restart", &env);
    assert_eq!(outcome.calls.len(), 1);
    assert!(outcome.calls[0].payload.is_empty());
}

#[test]
fn reply_callback_sees_the_payload_and_reject_code_zero() {
    let mut canister = install(&canister(CALLER));
    let (_, outcome) = call(&mut canister, &OTHER_CANISTER, &env());
    let response = respond(
        &mut canister,
        &outcome,
        CallResponse::Reply(b"answer!!".to_vec()),
    );
    assert_eq!(response.trap, None);
    assert_eq!(response.cleanup, None);
    assert_eq!(state(&mut canister), [7, 0, 0, i64_of(b"answer!!")]);
}

#[test]
fn reject_callback_sees_the_code_and_message() {
    let mut canister = install(&canister(CALLER));
    let (_, outcome) = call(&mut canister, &OTHER_CANISTER, &env());
    let reject = CallResponse::Reject {
        code: RejectCode::CanisterError,
        message: "rejected".into(),
    };
    let response = respond(&mut canister, &outcome, reject);
    assert_eq!(response.trap, None);
    assert_eq!(state(&mut canister), [8, 5, 0, i64_of(b"rejected")]);
}

#[test]
fn cleanup_runs_iff_the_callback_traps_and_its_changes_persist() {
    let mut canister = install(&canister(CALLER));
    let (_, outcome) = call(&mut canister, &OTHER_CANISTER, &env());
    let response = respond(
        &mut canister,
        &outcome,
        CallResponse::Reply(b"trap".to_vec()),
    );
    assert_eq!(
        trap(&response),
        "Canister called `ic0.trap` with message: 'trap'"
    );
    assert_eq!(response.cleanup, Some(None));
    // The closure's changes are rolled back (globals and heap); the cleanup's persist.
    assert_eq!(state(&mut canister), [0, -1, 9, 0]);
}

#[test]
fn a_callback_may_reply_only_when_the_call_context_is_not_answered() {
    let mut canister = install(&canister(
        r#"(elem (i32.const 0) $answer)
        (func $answer (param i32) (call $msg_reply))"#,
    ));
    let callback = ic_sim::exec::Callback {
        reply_fun: 0,
        reply_env: 0,
        reject_fun: 0,
        reject_env: 0,
        cleanup: None,
    };
    let kind = ExecKind::Response {
        callback,
        response: CallResponse::Reply(vec![]),
        injected_trap: None,
    };
    let outcome = canister.execute(&kind, &env());
    assert_eq!(reply(&outcome), b"");
    let answered = ExecEnv {
        already_replied: true,
        ..env()
    };
    let outcome = canister.execute(&kind, &answered);
    assert!(trap(&outcome).contains("already replied"), "{outcome:?}");
    assert_eq!(outcome.cleanup, None, "no cleanup closure was registered");
}

#[test]
fn a_callback_index_is_checked_only_when_it_runs() {
    let mut canister = install(&canister(CALLER));
    let callback = ic_sim::exec::Callback {
        reply_fun: u32::MAX as u64,
        reply_env: 0,
        reject_fun: u32::MAX as u64,
        reject_env: 0,
        cleanup: Some((1, 4)),
    };
    let kind = ExecKind::Response {
        callback,
        response: CallResponse::Reply(vec![]),
        injected_trap: None,
    };
    let outcome = canister.execute(&kind, &env());
    assert_eq!(trap(&outcome), "Canister trapped: table out of bounds");
    assert_eq!(outcome.cleanup, Some(None));
    assert_eq!(state(&mut canister)[2], 4);
}
