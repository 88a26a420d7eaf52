//! The `ic0` functions: results, traps, and availability per execution mode.
//! Spec: IC interface specification, "Canister interface (System API)": "Overview of imports"
//! (modes), "Method arguments", "Responding", "Cycles", "Stable memory", "Certified data",
//! "Global timer", "Performance counter", "Inspect message", "Debugging aids".

mod exec_support;
use exec_support::*;
use ic_sim::exec::{CanisterInstance, ExecEnv, ExecKind, ExecOutcome};

fn inspect(instance: &mut CanisterInstance, method: &str) -> ExecOutcome {
    instance.execute(
        &ExecKind::InspectMessage {
            method: method.into(),
        },
        &env(),
    )
}

#[test]
fn responding_msg_reply_twice_traps() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update twice") (call $msg_reply) (call $msg_reply))"#,
    ));
    let outcome = update(&mut canister, "twice", b"");
    assert!(trap(&outcome).contains("already replied"), "{outcome:?}");
    assert_eq!(
        outcome.response, None,
        "a trapped execution has no response"
    );
}

#[test]
fn overview_of_imports_msg_reply_in_init_traps_with_the_mode_message() {
    let module = module(&canister(
        r#"(func (export "canister_init") (call $msg_reply))"#,
    ));
    let outcome = CanisterInstance::install(&module, &env())
        .err()
        .expect("install traps");
    assert_eq!(
        trap(&outcome),
        r#"Canister violated contract: "ic0_msg_reply" cannot be executed in init mode"#
    );
}

#[test]
fn overview_of_imports_reply_is_unavailable_in_system_tasks() {
    let mut canister = install(&canister(
        r#"(func (export "canister_global_timer") (call $msg_reply))"#,
    ));
    let outcome = canister.execute(&ExecKind::GlobalTimer, &env());
    assert!(
        trap(&outcome).contains("cannot be executed in system task mode"),
        "{outcome:?}"
    );
}

#[test]
fn responding_msg_reject_gives_the_message() {
    let mut canister = install(&canister(
        r#"(data (i32.const 100) "no thanks")
        (func (export "canister_update no") (call $msg_reject (i32.const 100) (i32.const 9)))"#,
    ));
    let outcome = update(&mut canister, "no", b"");
    assert_eq!(
        outcome.response,
        Some(ic_sim::exec::ExecResponse::Reject("no thanks".into()))
    );
}

#[test]
fn method_arguments_copy_out_of_range_traps() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update overread")
            (call $arg_copy (i32.const 0) (i32.const 0) (i32.add (call $arg_size) (i32.const 1))))
        (func (export "canister_update outside_memory")
            (call $arg_copy (i32.const 65535) (i32.const 0) (call $arg_size)))"#,
    ));
    let outcome = update(&mut canister, "overread", b"abc");
    assert!(trap(&outcome).contains("msg_arg_data_copy"), "{outcome:?}");
    let outcome = update(&mut canister, "outside_memory", b"abc");
    assert!(trap(&outcome).contains("msg_arg_data_copy"), "{outcome:?}");
}

#[test]
fn inspect_message_method_name_is_only_available_in_inspect() {
    let mut canister = install(&canister(
        r#"(data (i32.const 100) "allowed")
        (func (export "canister_inspect_message")
          (call $method_name_copy (i32.const 200) (i32.const 0) (call $method_name_size))
          ;; accept when the name has 7 bytes and starts like "allowed"
          (if (i32.and (i32.eq (call $method_name_size) (i32.const 7))
                       (i64.eq (i64.load (i32.const 200)) (i64.load (i32.const 100))))
            (then (call $accept_message))))
        (func (export "canister_update name") (drop (call $method_name_size)))"#,
    ));
    assert!(inspect(&mut canister, "allowed").message_accepted);
    let refused = inspect(&mut canister, "other");
    assert_eq!(refused.trap, None);
    assert!(!refused.message_accepted);
    let outcome = update(&mut canister, "name", b"");
    assert!(
        trap(&outcome).contains("\"ic0_msg_method_name_size\" cannot be executed in update mode")
    );
}

#[test]
fn inspect_message_accept_message_twice_traps() {
    let mut canister = install(&canister(
        r#"(func (export "canister_inspect_message") (call $accept_message) (call $accept_message))"#,
    ));
    let outcome = inspect(&mut canister, "m");
    assert!(trap(&outcome).contains("accept_message"), "{outcome:?}");
    assert!(!outcome.message_accepted);
}

#[test]
fn inspect_message_without_the_export_accepts() {
    let mut canister = install(&canister(""));
    assert!(inspect(&mut canister, "m").message_accepted);
}

#[test]
fn certified_data_set_accepts_32_bytes_and_traps_above() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update set32") (call $certified_data_set (i32.const 0) (i32.const 32)))
        (func (export "canister_update set33") (call $certified_data_set (i32.const 0) (i32.const 33)))"#,
    ));
    assert_eq!(
        update(&mut canister, "set32", b"").certified_data,
        Some(vec![0; 32])
    );
    let outcome = update(&mut canister, "set33", b"");
    assert!(trap(&outcome).contains("certified_data_set"), "{outcome:?}");
    assert_eq!(outcome.certified_data, None);
}

#[test]
fn debugging_aids_debug_print_is_captured_even_when_the_execution_traps() {
    let mut canister = install(&canister(
        r#"(data (i32.const 100) "hello, log")
        (func (export "canister_update log")
          (call $debug_print (i32.const 100) (i32.const 10))
          (call $trap (i32.const 100) (i32.const 5)))"#,
    ));
    let outcome = update(&mut canister, "log", b"");
    assert_eq!(outcome.debug_prints, vec!["hello, log".to_string()]);
    assert_eq!(
        trap(&outcome),
        "Canister called `ic0.trap` with message: 'hello'"
    );
}

#[test]
fn global_timer_set_returns_the_previous_value() {
    let mut twice = install(&canister(
        r#"(func (export "canister_update arm")
          (drop (call $global_timer_set (i64.const 111)))
          (call $reply_i64 (call $global_timer_set (i64.const 222))))"#,
    ));
    let env = ExecEnv {
        global_timer: 42,
        ..env()
    };
    let outcome = update_with(&mut twice, "arm", &env);
    assert_eq!(i64_of(&reply(&outcome)), 111);
    assert_eq!(outcome.global_timer, Some(222));
    let mut other = install(&canister(
        r#"(func (export "canister_update arm") (call $reply_i64 (call $global_timer_set (i64.const 5))))"#,
    ));
    assert_eq!(i64_of(&reply(&update_with(&mut other, "arm", &env))), 42);
}

#[test]
fn performance_counter_counts_this_execution_and_the_call_context() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update count") (local $i i32) (local $first i64)
          (local.set $first (call $performance_counter (i32.const 0)))
          (loop $spin (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $spin (i32.lt_u (local.get $i) (i32.const 1000))))
          (i64.store (i32.const 0) (local.get $first))
          (i64.store (i32.const 8) (call $performance_counter (i32.const 0)))
          (i64.store (i32.const 16) (call $performance_counter (i32.const 1)))
          (call $reply_bytes (i32.const 0) (i32.const 24)))"#,
    ));
    let env = ExecEnv {
        call_context_instructions: 1_000_000,
        ..env()
    };
    let outcome = update_with(&mut canister, "count", &env);
    let counters = words(&reply(&outcome));
    assert!(counters[0] > 0);
    assert!(counters[1] > counters[0] + 1000, "{counters:?}");
    assert!(counters[2] >= 1_000_000 + counters[1], "{counters:?}");
    assert!(outcome.instructions as i64 > counters[1]);
}

#[test]
fn instruction_limit_exceeded_traps_with_the_replica_message() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update spin") (loop $l (br $l)))"#,
    ));
    let env = ExecEnv {
        instruction_limit: 1_000_000,
        ..env()
    };
    let outcome = update_with(&mut canister, "spin", &env);
    assert_eq!(
        trap(&outcome),
        "Canister exceeded the limit of 1000000 instructions for single message execution."
    );
    assert_eq!(outcome.instructions, 1_000_000);
}

#[test]
fn system_api_calls_cost_instructions_per_byte() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update copy") (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size)))"#,
    ));
    let small = update(&mut canister, "copy", &[1; 10]).instructions;
    let large = update(&mut canister, "copy", &[1; 10_010]).instructions;
    assert_eq!(large - small, 10_000);
}

#[test]
fn cycles_accept_is_bounded_by_what_is_available_and_written_little_endian() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update take")
          (call $cycles_accept (i64.const 0) (i64.const 3000) (i32.const 0))
          (call $cycles_available (i32.const 16))
          (call $cycles_accept (i64.const 1) (i64.const 0) (i32.const 32))
          (call $cycle_balance (i32.const 48))
          (call $reply_bytes (i32.const 0) (i32.const 64)))"#,
    ));
    let env = ExecEnv {
        cycles_available: 5000,
        cycle_balance: 1 << 70,
        ..env()
    };
    let outcome = update_with(&mut canister, "take", &env);
    let bytes = reply(&outcome);
    let u128_at = |i: usize| u128::from_le_bytes(bytes[i..i + 16].try_into().unwrap());
    assert_eq!(u128_at(0), 3000);
    assert_eq!(u128_at(16), 2000);
    assert_eq!(
        u128_at(32),
        2000,
        "a request above what is left accepts the rest"
    );
    assert_eq!(u128_at(48), (1 << 70) + 5000);
    assert_eq!(outcome.cycles_accepted, 5000);
}

#[test]
fn cycles_burn_is_bounded_by_the_liquid_balance() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update burn")
          (call $cycles_burn (i64.const 0) (i64.const 1000000) (i32.const 0))
          (call $reply_bytes (i32.const 0) (i32.const 16)))"#,
    ));
    let env = ExecEnv {
        cycle_balance: 700,
        freezing_limit: 200,
        ..env()
    };
    let outcome = update_with(&mut canister, "burn", &env);
    assert_eq!(
        u128::from_le_bytes(reply(&outcome).try_into().unwrap()),
        500
    );
    assert_eq!(outcome.cycles_burned, 500);
}

#[test]
fn in_replicated_execution_is_zero_only_in_non_replicated_queries() {
    let mut canister = install(&canister(
        r#"(func $answer (call $reply_i64 (i64.extend_i32_u (call $in_replicated_execution))))
        (export "canister_query q" (func $answer)) (export "canister_update u" (func $answer))"#,
    ));
    assert_eq!(i64_of(&reply(&query(&mut canister, "q", b""))), 0);
    let replicated = canister.execute(
        &ExecKind::Query {
            method: "q".into(),
            replicated: true,
        },
        &env(),
    );
    assert_eq!(i64_of(&reply(&replicated)), 1);
    assert_eq!(i64_of(&reply(&update(&mut canister, "u", b""))), 1);
}

#[test]
fn canister_and_caller_identity_status_time_and_controllers() {
    let mut canister = install(&canister_with_imports(
        r#"(import "ic0" "msg_caller_size" (func $caller_size (result i32)))
        (import "ic0" "msg_caller_copy" (func $caller_copy (param i32 i32 i32)))
        (import "ic0" "canister_self_size" (func $self_size (result i32)))
        (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
        (import "ic0" "canister_status" (func $status (result i32)))
        (import "ic0" "canister_version" (func $version (result i64)))
        (import "ic0" "time" (func $time (result i64)))
        (import "ic0" "is_controller" (func $is_controller (param i32 i32) (result i32)))"#,
        r#"(func (export "canister_update who")
          (i64.store (i32.const 0) (i64.extend_i32_u (call $status)))
          (i64.store (i32.const 8) (call $version))
          (i64.store (i32.const 16) (call $time))
          (call $caller_copy (i32.const 100) (i32.const 0) (call $caller_size))
          (i64.store (i32.const 24) (i64.extend_i32_u (call $is_controller (i32.const 100) (call $caller_size))))
          (call $self_copy (i32.const 100) (i32.const 0) (call $self_size))
          (i64.store (i32.const 32) (i64.extend_i32_u (call $is_controller (i32.const 100) (call $self_size))))
          (i64.store (i32.const 40) (i64.extend_i32_u (call $self_size)))
          (call $reply_bytes (i32.const 0) (i32.const 48)))"#,
    ));
    let env = ExecEnv {
        status: 2,
        canister_version: 7,
        time_nanos: 123,
        ..env()
    };
    let values = words(&reply(&update_with(&mut canister, "who", &env)));
    assert_eq!(
        values,
        [2, 7, 123, 1, 0, env.canister_id.as_slice().len() as i64]
    );
}

#[test]
fn environment_variables_are_listed_sorted_by_name_and_read_by_name() {
    let mut canister = install(&canister_with_imports(
        r#"(import "ic0" "env_var_count" (func $count (result i32)))
        (import "ic0" "env_var_name_size" (func $name_size (param i32) (result i32)))
        (import "ic0" "env_var_name_copy" (func $name_copy (param i32 i32 i32 i32)))
        (import "ic0" "env_var_value_size" (func $value_size (param i32 i32) (result i32)))
        (import "ic0" "env_var_value_copy" (func $value_copy (param i32 i32 i32 i32 i32)))"#,
        r#"(data (i32.const 100) "B")
        (func (export "canister_update vars")
          ;; reply: count, then name of var 0, then value of "B"
          (i32.store8 (i32.const 0) (i32.add (i32.const 48) (call $count)))
          (call $name_copy (i32.const 0) (i32.const 1) (i32.const 0) (call $name_size (i32.const 0)))
          (call $value_copy (i32.const 100) (i32.const 1) (i32.const 2) (i32.const 0)
                (call $value_size (i32.const 100) (i32.const 1)))
          (call $reply_bytes (i32.const 0) (i32.add (i32.const 2) (call $value_size (i32.const 100) (i32.const 1)))))
        (func (export "canister_update missing") (drop (call $name_size (i32.const 5))))"#,
    ));
    let env = ExecEnv {
        env_vars: vec![("B".into(), "bee".into()), ("A".into(), "ay".into())],
        ..env()
    };
    assert_eq!(reply(&update_with(&mut canister, "vars", &env)), b"2Abee");
    assert!(trap(&update_with(&mut canister, "missing", &env)).contains("env_var_name_size"));
}

#[test]
fn wasm_memory_limit_applies_to_updates_but_not_to_queries() {
    let mut canister = install(&canister(
        r#"(func $grow (call $reply_i64 (i64.extend_i32_s (memory.grow (i32.const 4)))))
        (export "canister_update grow" (func $grow)) (export "canister_query grow_query" (func $grow))"#,
    ));
    let limited = ExecEnv {
        wasm_memory_limit: 3 * 65536,
        ..env()
    };
    let outcome = update_with(&mut canister, "grow", &limited);
    assert!(
        trap(&outcome).contains("Wasm memory limit of 196608 bytes"),
        "{outcome:?}"
    );
    assert_eq!(canister.wasm_memory_size(), 65536);
    let outcome = canister.execute(
        &ExecKind::Query {
            method: "grow_query".into(),
            replicated: true,
        },
        &limited,
    );
    assert_eq!(
        i64_of(&reply(&outcome)),
        1,
        "memory.grow returns the old size in pages"
    );
}

#[test]
fn stable_memory_grow_returns_old_size_and_minus_one_past_the_limit() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update grow")
          (i64.store (i32.const 0) (call $stable_grow (i64.const 3)))
          (i64.store (i32.const 8) (call $stable_grow (i64.const 2)))
          (i64.store (i32.const 16) (call $stable_grow (i64.const 100000000000)))
          (i64.store (i32.const 24) (call $stable_size))
          (call $reply_bytes (i32.const 0) (i32.const 32)))"#,
    ));
    assert_eq!(
        words(&reply(&update(&mut canister, "grow", b""))),
        [0, 3, -1, 5]
    );
    assert_eq!(canister.stable_memory_size(), 5 * 65536);
}

#[test]
fn stable_memory_access_past_the_size_traps() {
    let mut canister = install(&canister(
        r#"(func (export "canister_update read_past")
          (drop (call $stable_grow (i64.const 1)))
          (call $stable_read (i64.const 0) (i64.const 65530) (i64.const 7)))
        (func (export "canister_update write_empty")
          (call $stable_write (i64.const 0) (i64.const 0) (i64.const 1)))"#,
    ));
    assert_eq!(
        trap(&update(&mut canister, "read_past", b"")),
        "Canister trapped: stable memory out of bounds"
    );
    assert_eq!(
        trap(&update(&mut canister, "write_empty", b"")),
        "Canister trapped: stable memory out of bounds"
    );
}

#[test]
fn stable_memory_legacy_32_bit_api_works() {
    let mut canister = install(&canister_with_imports(
        r#"(import "ic0" "stable_size" (func $size32 (result i32)))
        (import "ic0" "stable_grow" (func $grow32 (param i32) (result i32)))
        (import "ic0" "stable_write" (func $write32 (param i32 i32 i32)))
        (import "ic0" "stable_read" (func $read32 (param i32 i32 i32)))"#,
        r#"(data (i32.const 100) "legacy")
        (func (export "canister_update legacy")
          (i64.store (i32.const 0) (i64.extend_i32_s (call $grow32 (i32.const 2))))
          (i64.store (i32.const 8) (i64.extend_i32_s (call $grow32 (i32.const 70000))))
          (i64.store (i32.const 16) (i64.extend_i32_s (call $size32)))
          (call $write32 (i32.const 70000) (i32.const 100) (i32.const 6))
          (call $read32 (i32.const 24) (i32.const 70000) (i32.const 6))
          (call $reply_bytes (i32.const 0) (i32.const 30)))"#,
    ));
    let bytes = reply(&update(&mut canister, "legacy", b""));
    assert_eq!(words(&bytes[..24]), [0, -1, 2]);
    assert_eq!(&bytes[24..], b"legacy");
}

#[test]
fn costs_follow_the_fee_formulas_and_report_invalid_keys() {
    let mut canister = install(&canister_with_imports(
        r#"(import "ic0" "cost_call" (func $cost_call (param i64 i64 i32)))
        (import "ic0" "cost_create_canister" (func $cost_create (param i32)))
        (import "ic0" "cost_sign_with_ecdsa" (func $cost_ecdsa (param i32 i32 i32 i32) (result i32)))"#,
        r#"(data (i32.const 100) "key_1")
        (func (export "canister_query costs")
          (call $cost_call (i64.const 3) (i64.const 10) (i32.const 0))
          (call $cost_create (i32.const 16))
          (i64.store (i32.const 32) (i64.extend_i32_u (call $cost_ecdsa (i32.const 100) (i32.const 5) (i32.const 0) (i32.const 48))))
          (i64.store (i32.const 40) (i64.extend_i32_u (call $cost_ecdsa (i32.const 100) (i32.const 5) (i32.const 9) (i32.const 64))))
          (i64.store (i32.const 64) (i64.extend_i32_u (call $cost_ecdsa (i32.const 100) (i32.const 4) (i32.const 0) (i32.const 80))))
          (call $reply_bytes (i32.const 0) (i32.const 72)))"#,
    ));
    let bytes = reply(&query(&mut canister, "costs", b""));
    let u128_at = |i: usize| u128::from_le_bytes(bytes[i..i + 16].try_into().unwrap());
    assert_eq!(u128_at(0), ic_sim::exec::cost_call(3, 10));
    // Spec "Cycle cost calculation": cost_call includes the reservation for the largest
    // response (2 MiB transmitted, callback at 40 B instructions), not only the base fee.
    assert_eq!(
        u128_at(0),
        260_000 + 13_000 + 2_097_152_000 + 40_005_000_000
    );
    assert_eq!(u128_at(16), ic_sim::exec::CREATE_CANISTER_FEE);
    assert_eq!(
        words(&bytes[32..48]),
        [0, 1],
        "0 = priced, 1 = unknown curve"
    );
    assert!(u128_at(48) > 0);
    assert_eq!(i64_of(&bytes[64..72]), 2, "2 = unknown key name");
}

#[test]
fn data_certificate_is_present_only_in_non_replicated_queries() {
    let mut canister = install(&canister_with_imports(
        r#"(import "ic0" "data_certificate_present" (func $present (result i32)))
        (import "ic0" "data_certificate_size" (func $certificate_size (result i32)))
        (import "ic0" "data_certificate_copy" (func $certificate_copy (param i32 i32 i32)))"#,
        r#"(func $read
          (if (call $present)
            (then (call $certificate_copy (i32.const 0) (i32.const 0) (call $certificate_size))
                  (call $reply_bytes (i32.const 0) (call $certificate_size)))
            (else (call $msg_reply))))
        (export "canister_query read" (func $read)) (export "canister_update read_update" (func $read))
        (func (export "canister_update size") (drop (call $certificate_size)))"#,
    ));
    let certified = ExecEnv {
        data_certificate: Some(b"certificate".to_vec()),
        ..env()
    };
    let non_replicated = ExecKind::Query {
        method: "read".into(),
        replicated: false,
    };
    assert_eq!(
        reply(&canister.execute(&non_replicated, &certified)),
        b"certificate"
    );
    let replicated = ExecKind::Query {
        method: "read".into(),
        replicated: true,
    };
    assert_eq!(reply(&canister.execute(&replicated, &certified)), b"");
    assert_eq!(
        reply(&update_with(&mut canister, "read_update", &certified)),
        b""
    );
    let outcome = update_with(&mut canister, "size", &certified);
    assert!(
        trap(&outcome).contains("cannot be executed in update mode"),
        "{outcome:?}"
    );
}

#[test]
fn cycles_legacy_64_bit_api_works_and_traps_above_64_bits() {
    let mut canister = install(&canister_with_imports(
        r#"(import "ic0" "msg_cycles_available" (func $available64 (result i64)))
        (import "ic0" "msg_cycles_accept" (func $accept64 (param i64) (result i64)))
        (import "ic0" "canister_cycle_balance" (func $balance64 (result i64)))"#,
        r#"(func (export "canister_update legacy")
          (i64.store (i32.const 0) (call $available64))
          (i64.store (i32.const 8) (call $accept64 (i64.const 40)))
          (i64.store (i32.const 16) (call $balance64))
          (call $reply_bytes (i32.const 0) (i32.const 24)))"#,
    ));
    let env = ExecEnv {
        cycles_available: 100,
        cycle_balance: 1000,
        ..env()
    };
    assert_eq!(
        words(&reply(&update_with(&mut canister, "legacy", &env))),
        [100, 40, 1040]
    );
    let rich = ExecEnv {
        cycle_balance: 1 << 64,
        ..env
    };
    let outcome = update_with(&mut canister, "legacy", &rich);
    assert!(
        trap(&outcome).contains("canister_cycle_balance"),
        "{outcome:?}"
    );
}
