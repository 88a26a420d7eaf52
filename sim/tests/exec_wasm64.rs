//! wasm64 modules at the exec layer.
//! Spec: IC interface specification, "Canister interface (System API)", "WebAssembly module
//! requirements" and "Overview of imports": `I ∈ {i32, i64}` is `i64` for a module whose memory
//! is 64-bit; the functions listed "only available if `I = i32`" do not exist for it; resource
//! limits: the Wasm heap of a wasm64 canister is at most 6 GiB.

mod exec_support;
use exec_support::*;

/// A wasm64 canister: `echo` replies with its argument through the 64-bit System API, `grow`
/// replies with what `memory.grow` of the i64 argument (in pages) returned, and `on_reply` is a
/// closure taking an `i64` environment.
const WASM64: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i64)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i64 i64 i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i64 i64)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_caller_size" (func $caller_size (result i64)))
  (import "ic0" "canister_cycle_balance128" (func $balance128 (param i64)))
  (import "ic0" "debug_print" (func $print (param i64 i64)))
  (memory i64 2)
  (data (i64.const 0x100) "wasm64 here")
  (func (export "canister_update echo")
    (call $print (i64.const 0x100) (i64.const 11))
    (call $arg_copy (i64.const 0x1000) (i64.const 0) (call $arg_size))
    (call $append (i64.const 0x1000) (call $arg_size))
    (call $reply))
  (func (export "canister_update grow")
    (call $arg_copy (i64.const 0x1000) (i64.const 0) (i64.const 8))
    (i64.store (i64.const 0x2000) (memory.grow (i64.load (i64.const 0x1000))))
    (call $append (i64.const 0x2000) (i64.const 8))
    (call $reply))
  (func (export "canister_update balance")
    (call $balance128 (i64.const 0x2000))
    (call $append (i64.const 0x2000) (i64.const 16))
    (call $reply))
)"#;

#[test]
fn a_wasm64_module_uses_the_64_bit_system_api() {
    let mut canister = install(WASM64);
    let outcome = update(&mut canister, "echo", b"hello, wasm64");
    assert_eq!(reply(&outcome), b"hello, wasm64");
    assert_eq!(outcome.debug_prints, vec!["wasm64 here".to_string()]);
    let env = ic_sim::exec::ExecEnv {
        cycle_balance: 5 << 70,
        ..env()
    };
    let outcome = update_with(&mut canister, "balance", &env);
    assert_eq!(
        u128::from_le_bytes(reply(&outcome).try_into().unwrap()),
        5 << 70
    );
}

#[test]
fn a_wasm64_module_imports_with_i32_addresses_is_refused() {
    let error = compile(
        r#"(module
  (import "ic0" "msg_arg_data_size" (func (result i32)))
  (memory i64 1))"#,
    )
    .err()
    .expect("i32 size in a wasm64 module");
    assert!(
        error.contains("'ic0.msg_arg_data_size' with the wrong signature () -> (i32)")
            && error.contains("the runtime exports it as () -> (i64)"),
        "{error}"
    );
    // And the other way round: a wasm32 module must use i32.
    let error = compile(
        r#"(module
  (import "ic0" "msg_arg_data_size" (func (result i64)))
  (memory 1))"#,
    )
    .err()
    .expect("i64 size in a wasm32 module");
    assert!(error.contains("exports it as () -> (i32)"), "{error}");
    // Functions with fixed types stay fixed: msg_reject_code is () -> i32 in wasm64 too.
    compile(
        r#"(module
  (import "ic0" "msg_reject_code" (func (result i32)))
  (import "ic0" "stable64_size" (func (result i64)))
  (memory i64 1))"#,
    )
    .expect("fixed-type imports in a wasm64 module");
}

#[test]
fn legacy_wasm32_only_imports_are_refused_in_a_wasm64_module() {
    for (name, ty) in [
        ("stable_size", "(result i32)"),
        ("msg_cycles_available", "(result i64)"),
        ("canister_cycle_balance", "(result i64)"),
        ("call_cycles_add", "(param i64)"),
    ] {
        let wat = format!(r#"(module (import "ic0" "{name}" (func {ty})) (memory i64 1))"#);
        let error = compile(&wat)
            .err()
            .expect("a legacy import in a wasm64 module");
        assert!(
            error.contains(&format!("imports function '{name}' from 'ic0'")),
            "{name}: {error}"
        );
        // The same import is fine in a wasm32 module.
        let wat = format!(r#"(module (import "ic0" "{name}" (func {ty})) (memory 1))"#);
        compile(&wat).unwrap_or_else(|e| panic!("{name} in wasm32: {e}"));
    }
}

#[test]
fn a_wasm64_heap_cannot_grow_past_6_gib() {
    let mut canister = install(WASM64);
    let pages_6_gib: i64 = 6 * 1024 * 1024 * 1024 / 65536;
    // The memory has 2 pages: growing to one page past 6 GiB fails with -1, as memory.grow does
    // on the IC at the limit.
    let outcome = update(&mut canister, "grow", &(pages_6_gib - 1).to_le_bytes());
    assert_eq!(i64_of(&reply(&outcome)), -1);
    // A small growth succeeds and returns the old size in pages.
    let outcome = update(&mut canister, "grow", &3i64.to_le_bytes());
    assert_eq!(i64_of(&reply(&outcome)), 2);
}

/// "Inter-canister method calls" in a wasm64 module: `call_new` takes `i64` closures and
/// environments, and the reply closure is called with its `i64` environment (above 2^32 here).
#[test]
fn a_wasm64_module_calls_out_and_its_closure_gets_an_i64_environment() {
    let mut canister = install(
        r#"(module
  (import "ic0" "call_new" (func $call_new (param i64 i64 i64 i64 i64 i64 i64 i64)))
  (import "ic0" "call_perform" (func $perform (result i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i64)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i64 i64 i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i64 i64)))
  (import "ic0" "msg_reply" (func $reply))
  (memory i64 1)
  (table 1 funcref)
  (elem (i32.const 0) $on_reply)
  (data (i64.const 0) "\00\00\00\00\00\00\00\07\01\01")
  (data (i64.const 16) "m")
  (func $on_reply (param $env i64)
    (i64.store (i64.const 100) (local.get $env))
    (call $arg_copy (i64.const 108) (i64.const 0) (call $arg_size))
    (call $append (i64.const 100) (i64.add (i64.const 8) (call $arg_size)))
    (call $reply))
  (func (export "canister_update call")
    (call $call_new (i64.const 0) (i64.const 10) (i64.const 16) (i64.const 1)
                    (i64.const 0) (i64.const 0x1_0000_0005) (i64.const 0) (i64.const 0x1_0000_0005))
    (drop (call $perform))))"#,
    );
    let outcome = update(&mut canister, "call", b"");
    assert_eq!(outcome.trap, None);
    assert_eq!(outcome.calls.len(), 1);
    let call = &outcome.calls[0];
    assert_eq!(call.method, "m");
    assert_eq!(call.callback.reply_env, 0x1_0000_0005);
    let response = canister.execute(
        &ic_sim::exec::ExecKind::Response {
            callback: call.callback.clone(),
            response: ic_sim::exec::CallResponse::Reply(b"pong".to_vec()),
            injected_trap: None,
        },
        &env(),
    );
    let bytes = reply(&response);
    assert_eq!(i64_of(&bytes[..8]), 0x1_0000_0005);
    assert_eq!(&bytes[8..], b"pong");
}
