//! A trap discards every change of the execution; a query's changes are always discarded.
//! Spec: IC interface specification, "Canister interface (System API)", "Entry points" ("If the
//! execution of an entry point traps ... the changes to the canister state are discarded") and
//! "Query methods" (state changes of queries are discarded).

mod exec_support;
use exec_support::*;
use ic_sim::exec::{CanisterInstance, ExecKind};

/// `bump` increments a non-exported mutable global, writes it to the heap at 1000 and to stable
/// memory at 0 (growing stable memory to one page); `bump_then_trap` does the same and traps;
/// `grow_then_trap` also grows the heap first; `state` replies [global, heap, stable, stable size].
const COUNTER: &str = r#"
  (global $counter (mut i64) (i64.const 0))
  (func $bump
    (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
    (i64.store (i32.const 1000) (global.get $counter))
    (if (i64.eqz (call $stable_size)) (then (drop (call $stable_grow (i64.const 1)))))
    (call $stable_write (i64.const 0) (i64.const 1000) (i64.const 8)))
  (func (export "canister_update bump") (call $bump) (call $msg_reply))
  (func (export "canister_update bump_then_trap") (call $bump) (unreachable))
  (func (export "canister_update grow_then_trap")
    (drop (memory.grow (i32.const 100)))
    (drop (call $stable_grow (i64.const 100)))
    (call $bump) (unreachable))
  (func $state
    (i64.store (i32.const 0) (global.get $counter))
    (i64.store (i32.const 8) (i64.load (i32.const 1000)))
    (if (i64.eqz (call $stable_size))
      (then (i64.store (i32.const 16) (i64.const -1)))
      (else (call $stable_read (i64.const 16) (i64.const 0) (i64.const 8))))
    (i64.store (i32.const 24) (call $stable_size))
    (call $reply_bytes (i32.const 0) (i32.const 32)))
  (export "canister_query state" (func $state))
  (func (export "canister_query bump_query") (call $bump) (call $state))
"#;

fn state(canister: &mut CanisterInstance) -> Vec<i64> {
    words(&reply(&query(canister, "state", b"")))
}

#[test]
fn entry_points_trap_rolls_back_heap_globals_and_stable_memory() {
    let mut canister = install(&canister(COUNTER));
    reply(&update(&mut canister, "bump", b""));
    assert_eq!(state(&mut canister), [1, 1, 1, 1]);
    let outcome = update(&mut canister, "bump_then_trap", b"");
    assert_eq!(trap(&outcome), "Canister trapped: unreachable");
    assert!(
        outcome.instructions > 0,
        "instructions are reported for traps"
    );
    assert_eq!(state(&mut canister), [1, 1, 1, 1]);
    reply(&update(&mut canister, "bump", b""));
    assert_eq!(state(&mut canister), [2, 2, 2, 1]);
}

#[test]
fn entry_points_trap_after_growing_memories_restores_their_sizes() {
    let mut canister = install(&canister(COUNTER));
    reply(&update(&mut canister, "bump", b""));
    let heap_size = canister.wasm_memory_size();
    trap(&update(&mut canister, "grow_then_trap", b""));
    assert_eq!(canister.wasm_memory_size(), heap_size);
    assert_eq!(canister.stable_memory_size(), 65536);
    assert_eq!(state(&mut canister), [1, 1, 1, 1]);
    // The instance keeps working after being rebuilt.
    reply(&update(&mut canister, "bump", b""));
    assert_eq!(state(&mut canister), [2, 2, 2, 1]);
}

#[test]
fn query_methods_changes_are_discarded() {
    let mut canister = install(&canister(COUNTER));
    reply(&update(&mut canister, "bump", b""));
    assert_eq!(
        words(&reply(&query(&mut canister, "bump_query", b""))),
        [2, 2, 2, 1]
    );
    assert_eq!(state(&mut canister), [1, 1, 1, 1]);
    let replicated = canister.execute(
        &ExecKind::Query {
            method: "bump_query".into(),
            replicated: true,
        },
        &env(),
    );
    assert_eq!(words(&reply(&replicated)), [2, 2, 2, 1]);
    assert_eq!(state(&mut canister), [1, 1, 1, 1]);
}

#[test]
fn snapshot_and_load_restore_heap_globals_and_stable_memory() {
    let mut canister = install(&canister(COUNTER));
    reply(&update(&mut canister, "bump", b""));
    let snapshot = canister.snapshot();
    assert_eq!(snapshot.stable_memory.len(), 65536);
    assert_eq!(snapshot.wasm_memory.len(), canister.wasm_memory_size());
    reply(&update(&mut canister, "bump", b""));
    reply(&update(&mut canister, "bump", b""));
    let mut loaded = CanisterInstance::from_snapshot(&snapshot).expect("the snapshot loads");
    assert_eq!(state(&mut loaded), [1, 1, 1, 1]);
    reply(&update(&mut loaded, "bump", b""));
    assert_eq!(state(&mut loaded), [2, 2, 2, 1]);
    assert_eq!(state(&mut canister), [3, 3, 3, 1]);
}

#[test]
fn entry_points_stack_overflow_and_heap_out_of_bounds_are_traps_that_roll_back() {
    let mut canister = install(&canister(&format!(
        r#"{COUNTER}
        (func $recurse (call $bump) (call $recurse))
        (func (export "canister_update recurse") (call $recurse))
        (func (export "canister_update out_of_bounds") (call $bump) (drop (i64.load (i32.const 65535))))"#
    )));
    assert_eq!(
        trap(&update(&mut canister, "recurse", b"")),
        "Canister trapped: stack overflow"
    );
    assert_eq!(
        trap(&update(&mut canister, "out_of_bounds", b"")),
        "Canister trapped: heap out of bounds"
    );
    assert_eq!(state(&mut canister), [0, 0, -1, 0]);
}
