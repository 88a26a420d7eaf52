//! Helpers shared by the `exec_*` conformance tests: compiling WAT and running entry points.
#![allow(dead_code)]

use ic_sim::exec::{
    CanisterInstance, CompiledModule, ExecEnv, ExecKind, ExecOutcome, ExecResponse,
};

pub fn compile(wat: &str) -> Result<CompiledModule, String> {
    CompiledModule::compile(&wat::parse_str(wat).expect("valid WAT"))
}

pub fn module(wat: &str) -> CompiledModule {
    compile(wat).expect("the module compiles")
}

pub fn env() -> ExecEnv {
    ExecEnv::default()
}

pub fn install(wat: &str) -> CanisterInstance {
    let (instance, outcome) =
        CanisterInstance::install(&module(wat), &env()).expect("install succeeds");
    assert_eq!(outcome.trap, None);
    instance
}

pub fn update_with(instance: &mut CanisterInstance, method: &str, env: &ExecEnv) -> ExecOutcome {
    instance.execute(
        &ExecKind::Update {
            method: method.into(),
        },
        env,
    )
}

pub fn update(instance: &mut CanisterInstance, method: &str, arg: &[u8]) -> ExecOutcome {
    let env = ExecEnv {
        arg: arg.to_vec(),
        ..env()
    };
    update_with(instance, method, &env)
}

pub fn query(instance: &mut CanisterInstance, method: &str, arg: &[u8]) -> ExecOutcome {
    let env = ExecEnv {
        arg: arg.to_vec(),
        ..env()
    };
    instance.execute(
        &ExecKind::Query {
            method: method.into(),
            replicated: false,
        },
        &env,
    )
}

/// The reply of a successful execution.
pub fn reply(outcome: &ExecOutcome) -> Vec<u8> {
    assert_eq!(outcome.trap, None, "unexpected trap");
    match &outcome.response {
        Some(ExecResponse::Reply(data)) => data.clone(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The trap message of a trapped execution.
pub fn trap(outcome: &ExecOutcome) -> String {
    outcome.trap.clone().expect("the execution traps")
}

/// A canister skeleton: the `ic0` imports the tests use, one page of memory, a two-entry
/// funcref table, and helpers `$reply_bytes (ptr, len)` and `$reply_i64 (value)` (replies with
/// 8 little-endian bytes); `body` is spliced in at module level.
pub fn canister(body: &str) -> String {
    canister_with_imports("", body)
}

/// `canister` with more imports (Wasm text needs imports before definitions).
pub fn canister_with_imports(imports: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $msg_reply))
  (import "ic0" "msg_reject" (func $msg_reject (param i32 i32)))
  (import "ic0" "msg_reject_code" (func $reject_code (result i32)))
  (import "ic0" "msg_reject_msg_size" (func $reject_msg_size (result i32)))
  (import "ic0" "msg_reject_msg_copy" (func $reject_msg_copy (param i32 i32 i32)))
  (import "ic0" "msg_method_name_size" (func $method_name_size (result i32)))
  (import "ic0" "msg_method_name_copy" (func $method_name_copy (param i32 i32 i32)))
  (import "ic0" "accept_message" (func $accept_message))
  (import "ic0" "msg_cycles_available128" (func $cycles_available (param i32)))
  (import "ic0" "msg_cycles_accept128" (func $cycles_accept (param i64 i64 i32)))
  (import "ic0" "cycles_burn128" (func $cycles_burn (param i64 i64 i32)))
  (import "ic0" "canister_cycle_balance128" (func $cycle_balance (param i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_on_cleanup" (func $call_on_cleanup (param i32 i32)))
  (import "ic0" "call_data_append" (func $call_data_append (param i32 i32)))
  (import "ic0" "call_with_best_effort_response" (func $call_best_effort (param i32)))
  (import "ic0" "call_cycles_add128" (func $call_cycles_add (param i64 i64)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "stable64_size" (func $stable_size (result i64)))
  (import "ic0" "stable64_grow" (func $stable_grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $stable_write (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $stable_read (param i64 i64 i64)))
  (import "ic0" "certified_data_set" (func $certified_data_set (param i32 i32)))
  (import "ic0" "global_timer_set" (func $global_timer_set (param i64) (result i64)))
  (import "ic0" "performance_counter" (func $performance_counter (param i32) (result i64)))
  (import "ic0" "in_replicated_execution" (func $in_replicated_execution (result i32)))
  (import "ic0" "debug_print" (func $debug_print (param i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  {imports}
  (memory (export "memory") 1)
  (table 2 funcref)
  (func $reply_bytes (param $ptr i32) (param $len i32)
    (call $append (local.get $ptr) (local.get $len))
    (call $msg_reply))
  (func $reply_i64 (param $value i64)
    (i64.store (i32.const 60000) (local.get $value))
    (call $reply_bytes (i32.const 60000) (i32.const 8)))
  {body}
)"#
    )
}

/// Little-endian i64 words of a reply.
pub fn words(bytes: &[u8]) -> Vec<i64> {
    bytes.chunks(8).map(i64_of).collect()
}

pub fn i64_of(bytes: &[u8]) -> i64 {
    i64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}
