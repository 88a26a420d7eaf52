//! The basic path the replica relies on: compile, install with `canister_init`, an update and a
//! query that read their argument and reply, with counted instructions.
//! Spec: IC interface specification, "Canister interface (System API)", "Entry points".

mod exec_support;
use exec_support::*;
use ic_sim::exec::CompiledModule;
use std::io::Write;

const ECHO: &str = r#"
  (global $installed (mut i32) (i32.const 0))
  (func (export "canister_init") (global.set $installed (i32.const 1)))
  (func $echo
    (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
    (call $reply_bytes (i32.const 0) (call $arg_size)))
  (export "canister_update echo" (func $echo))
  (export "canister_query echo_query" (func $echo))
  (func (export "canister_query installed")
    (call $reply_i64 (i64.extend_i32_u (global.get $installed))))
"#;

#[test]
fn install_runs_init_and_methods_reply_with_their_argument() {
    let mut canister = install(&canister(ECHO));
    assert_eq!(i64_of(&reply(&query(&mut canister, "installed", b""))), 1);
    let outcome = update(&mut canister, "echo", b"hello");
    assert_eq!(reply(&outcome), b"hello");
    assert!(outcome.instructions > 0);
    assert_eq!(reply(&query(&mut canister, "echo_query", b"q")), b"q");
}

#[test]
fn gzip_module_is_accepted_and_hashed_as_given() {
    let wasm = wat::parse_str(canister(ECHO)).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&wasm).unwrap();
    let gz = encoder.finish().unwrap();
    let module = CompiledModule::compile(&gz).expect("gzip module compiles");
    use sha2::Digest;
    let expected: [u8; 32] = sha2::Sha256::digest(&gz).into();
    assert_eq!(module.module_hash(), expected);
    assert_eq!(module.wasm_binary_size(), gz.len());
    assert!(
        module.has_update("echo")
            && module.has_query("echo_query")
            && !module.has_update("echo_query")
    );
}

#[test]
fn a_missing_method_traps_and_missing_system_tasks_do_nothing() {
    let mut canister = install(&canister(ECHO));
    assert_eq!(
        trap(&update(&mut canister, "nope", b"")),
        "Canister has no update method 'nope'"
    );
    assert_eq!(
        trap(&query(&mut canister, "echo", b"")),
        "Canister has no query method 'echo'"
    );
    let outcome = canister.execute(&ic_sim::exec::ExecKind::Heartbeat, &env());
    assert_eq!((outcome.trap, outcome.instructions), (None, 0));
}
