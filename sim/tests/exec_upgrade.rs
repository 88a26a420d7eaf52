//! Install and upgrade.
//! Spec: IC interface specification, "Canister interface (System API)", "Canister upgrades" and
//! "Entry points" (upgrade = pre_upgrade + fresh instance + (start) + post_upgrade as one
//! transaction; stable memory kept; heap discarded unless kept); management canister
//! `install_code` (`skip_pre_upgrade`, `wasm_memory_persistence`).

mod exec_support;
use exec_support::*;
use ic_sim::exec::{CanisterInstance, CompiledModule, ExecEnv, UpgradeOptions};

const PRE_UPGRADE_WRITES: &str = r#"
    (global.set $g (i64.const 8))
    (i64.store (i32.const 2000) (i64.const 43))
    (i64.store (i32.const 0) (i64.const 1234))
    (call $stable_write (i64.const 16) (i64.const 0) (i64.const 8))"#;

/// Version `n` of a canister: `set` sets the global to 7, the heap at 2000 to 42 and stable memory
/// at 8 to 99; `state` replies [global, heap at 2000, stable at 8, stable at 16, version, length of
/// the post_upgrade argument, global timer previous value seen by post_upgrade].
fn version(n: i64, pre_upgrade: &str, post_upgrade: &str) -> CompiledModule {
    module(&canister(&format!(
        r#"
  (global $g (mut i64) (i64.const 0))
  (global $post_arg (mut i64) (i64.const -1))
  (global $timer_seen (mut i64) (i64.const -1))
  (func $spin (param $n i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func (export "canister_update set")
    (global.set $g (i64.const 7))
    (i64.store (i32.const 2000) (i64.const 42))
    (if (i64.eqz (call $stable_size)) (then (drop (call $stable_grow (i64.const 1)))))
    (i64.store (i32.const 0) (i64.const 99))
    (call $stable_write (i64.const 8) (i64.const 0) (i64.const 8))
    (call $msg_reply))
  (func (export "canister_query state")
    (i64.store (i32.const 0) (global.get $g))
    (i64.store (i32.const 8) (i64.load (i32.const 2000)))
    (call $stable_read (i64.const 16) (i64.const 8) (i64.const 16))
    (i64.store (i32.const 32) (i64.const {n}))
    (i64.store (i32.const 40) (global.get $post_arg))
    (i64.store (i32.const 48) (global.get $timer_seen))
    (call $reply_bytes (i32.const 0) (i32.const 56)))
  (func (export "canister_pre_upgrade") {pre_upgrade})
  (func (export "canister_post_upgrade")
    (global.set $post_arg (i64.extend_i32_u (call $arg_size)))
    (global.set $timer_seen (call $global_timer_set (i64.const 5)))
    {post_upgrade})
"#
    )))
}

/// Version 1 after `set`.
fn installed_v1(pre_upgrade: &str) -> CanisterInstance {
    let (mut canister, _) =
        CanisterInstance::install(&version(1, pre_upgrade, ""), &env()).expect("installs");
    reply(&update(&mut canister, "set", b""));
    canister
}

fn state(canister: &mut CanisterInstance) -> Vec<i64> {
    words(&reply(&query(canister, "state", b"")))
}

const V1_STATE: [i64; 7] = [7, 42, 99, 0, 1, -1, -1];

fn upgrade_env() -> ExecEnv {
    ExecEnv {
        arg: b"xyz".to_vec(),
        global_timer: 77,
        ..env()
    }
}

#[test]
fn canister_upgrades_keep_stable_memory_and_discard_heap_and_globals() {
    let mut canister = installed_v1(PRE_UPGRADE_WRITES);
    assert_eq!(state(&mut canister), V1_STATE);
    let v2 = version(2, "", "");
    let outcome = canister.upgrade(&v2, &upgrade_env(), UpgradeOptions::default());
    assert_eq!(outcome.trap, None);
    assert_eq!(
        outcome.global_timer,
        Some(5),
        "post_upgrade's timer is reported"
    );
    assert_eq!(canister.module().module_hash(), v2.module_hash());
    // Fresh globals and heap, stable memory kept (including pre_upgrade's write), the argument
    // reaches post_upgrade, which sees the timer deactivated.
    assert_eq!(state(&mut canister), [0, 0, 99, 1234, 2, 3, 0]);
}

#[test]
fn canister_upgrades_keep_wasm_memory_when_asked() {
    let mut canister = installed_v1(PRE_UPGRADE_WRITES);
    let options = UpgradeOptions {
        keep_wasm_memory: true,
        ..UpgradeOptions::default()
    };
    let outcome = canister.upgrade(&version(2, "", ""), &upgrade_env(), options);
    assert_eq!(outcome.trap, None);
    assert_eq!(state(&mut canister), [0, 43, 99, 1234, 2, 3, 0]);
}

#[test]
fn canister_upgrades_are_atomic_when_post_upgrade_traps() {
    let mut canister = installed_v1(PRE_UPGRADE_WRITES);
    let v1_hash = canister.module().module_hash();
    let heap_size = canister.wasm_memory_size();
    let broken = version(2, "", "(drop (memory.grow (i32.const 10))) (unreachable)");
    let outcome = canister.upgrade(&broken, &upgrade_env(), UpgradeOptions::default());
    assert_eq!(trap(&outcome), "Canister trapped: unreachable");
    assert_eq!(outcome.global_timer, None);
    assert!(outcome.instructions > 0);
    assert_eq!(canister.module().module_hash(), v1_hash);
    assert_eq!(canister.wasm_memory_size(), heap_size);
    // Heap and global as before pre_upgrade, and its stable memory write undone.
    assert_eq!(state(&mut canister), V1_STATE);
    reply(&update(&mut canister, "set", b""));
}

#[test]
fn canister_upgrades_are_atomic_when_pre_upgrade_traps_and_skip_pre_upgrade_skips_it() {
    let mut canister = installed_v1(&format!("{PRE_UPGRADE_WRITES} (unreachable)"));
    let outcome = canister.upgrade(
        &version(2, "", ""),
        &upgrade_env(),
        UpgradeOptions::default(),
    );
    assert_eq!(trap(&outcome), "Canister trapped: unreachable");
    assert_eq!(state(&mut canister), V1_STATE);
    let skip = UpgradeOptions {
        skip_pre_upgrade: true,
        ..UpgradeOptions::default()
    };
    let outcome = canister.upgrade(&version(2, "", ""), &upgrade_env(), skip);
    assert_eq!(outcome.trap, None);
    assert_eq!(state(&mut canister), [0, 0, 99, 0, 2, 3, 0]);
}

#[test]
fn canister_upgrades_instruction_limit_covers_pre_and_post_upgrade_together() {
    let spinning = |canister: &mut CanisterInstance, limit: u64| {
        let env = ExecEnv {
            instruction_limit: limit,
            ..upgrade_env()
        };
        canister.upgrade(
            &version(2, "", "(call $spin (i32.const 100000))"),
            &env,
            UpgradeOptions::default(),
        )
    };
    let mut canister = installed_v1("(call $spin (i32.const 100000))");
    let outcome = spinning(&mut canister, 2_000_000);
    assert_eq!(outcome.trap, None);
    let used = outcome.instructions;
    assert!(used > 2 * 500_000, "{used}");
    // Either step alone fits in 80% of what both used.
    let limit = used * 8 / 10;
    let mut canister = installed_v1("(call $spin (i32.const 100000))");
    let outcome = spinning(&mut canister, limit);
    assert_eq!(
        trap(&outcome),
        format!(
            "Canister exceeded the limit of {limit} instructions for single message execution."
        )
    );
    assert_eq!(outcome.instructions, limit);
    assert_eq!(state(&mut canister), V1_STATE);
}

#[test]
fn install_trap_in_init_reports_the_trap_and_instructions() {
    let module = module(&canister(
        r#"(data (i32.const 100) "init failed")
        (func (export "canister_init") (call $trap (i32.const 100) (i32.const 11)))"#,
    ));
    let outcome = CanisterInstance::install(&module, &env())
        .err()
        .expect("install traps");
    assert_eq!(
        trap(&outcome),
        "Canister called `ic0.trap` with message: 'init failed'"
    );
    assert!(outcome.instructions > 0);
}

#[test]
fn install_instruction_limit_bounds_canister_init() {
    let module = module(&canister(
        r#"(func (export "canister_init") (loop $l (br $l)))"#,
    ));
    let env = ExecEnv {
        instruction_limit: 10_000,
        ..env()
    };
    let outcome = CanisterInstance::install(&module, &env)
        .err()
        .expect("runs out of instructions");
    assert_eq!(outcome.instructions, 10_000);
}

#[test]
fn start_function_runs_once_at_install_and_not_again_when_a_rollback_rebuilds_the_instance() {
    let mut canister = install(&canister(
        r#"(global $starts (mut i64) (i64.const 0))
        (func $start
          (global.set $starts (i64.add (global.get $starts) (i64.const 1)))
          (drop (call $stable_grow (i64.const 1))))
        (start $start)
        (func (export "canister_query starts") (call $reply_i64 (global.get $starts)))
        (func (export "canister_update grow_then_trap") (drop (memory.grow (i32.const 1))) (unreachable))"#,
    ));
    assert_eq!(i64_of(&reply(&query(&mut canister, "starts", b""))), 1);
    assert_eq!(
        canister.stable_memory_size(),
        65536,
        "(start) may use stable memory"
    );
    trap(&update(&mut canister, "grow_then_trap", b""));
    assert_eq!(i64_of(&reply(&query(&mut canister, "starts", b""))), 1);
}

#[test]
fn start_function_may_not_reply() {
    let module = module(&canister(
        r#"(func $start (call $msg_reply)) (start $start)"#,
    ));
    let outcome = CanisterInstance::install(&module, &env())
        .err()
        .expect("install traps");
    assert!(
        trap(&outcome).contains("cannot be executed in start mode"),
        "{outcome:?}"
    );
}
