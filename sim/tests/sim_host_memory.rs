//! What the simulator holds for canisters (`Sim::host_memory`): memories as 4 KiB pages, zero
//! pages not stored, equal pages shared between canisters, and snapshots sharing their canister's
//! pages until one of them writes. None of it is visible to canisters: snapshots still restore
//! exactly what was taken (IC interface specification, "IC method take_canister_snapshot", "IC
//! method load_canister_snapshot").

mod replica_support;

use candid::Principal;
use ic_management_canister_types::{LoadCanisterSnapshotArgs, Snapshot, TakeCanisterSnapshotArgs};
use ic_sim::exec::PAGE_SIZE;
use ic_sim::{artifacts, Sim};
use replica_support::*;

fn no_arg() -> Vec<u8> {
    candid::encode_args(()).unwrap()
}

fn child(sim: &mut Sim) -> Principal {
    install_on(sim, 0, &artifacts::wasm("child_v1"), no_arg())
}

fn increment(sim: &mut Sim, canister: Principal) -> u64 {
    decode(
        &sim.update_call(user(), canister, "increment", no_arg())
            .unwrap(),
    )
}

fn take(sim: &mut Sim, canister: Principal) -> Snapshot {
    let args = TakeCanisterSnapshotArgs {
        canister_id: canister,
        replace_snapshot: None,
        uninstall_code: None,
        sender_canister_version: None,
    };
    decode(&management_ingress(sim, user(), "take_canister_snapshot", &args).unwrap())
}

#[test]
fn idle_canisters_of_one_module_share_their_pages() {
    let mut sim = new_sim();
    child(&mut sim);
    let one = sim.host_memory();
    assert!(one.page_references > 0, "{one:?}");
    assert!(one.memory_bytes <= one.page_references * PAGE_SIZE as u64);
    for _ in 1..20 {
        child(&mut sim);
    }
    let twenty = sim.host_memory();
    assert_eq!(twenty.canisters, 20);
    assert_eq!(twenty.page_references, 20 * one.page_references);
    assert_eq!(
        twenty.memory_bytes, one.memory_bytes,
        "twenty children in the same state hold the pages of one"
    );
    assert_eq!(
        twenty.module_bytes, one.module_bytes,
        "the module counts once"
    );
}

#[test]
fn a_snapshot_shares_the_canisters_pages_until_either_writes() {
    let mut sim = new_sim();
    let canister = child(&mut sim);
    assert_eq!(increment(&mut sim, canister), 1);
    let before = sim.host_memory();
    let snapshot = take(&mut sim, canister);
    let taken = sim.host_memory();
    assert_eq!(taken.memory_bytes, before.memory_bytes, "{taken:?}");
    assert_eq!(taken.snapshot_only_bytes, 0);
    assert_eq!(taken.page_references, 2 * before.page_references);
    assert!(
        snapshot.total_size > 1_000_000,
        "the snapshot's size is what it holds, not what it costs the simulator: {}",
        snapshot.total_size
    );

    assert_eq!(increment(&mut sim, canister), 2);
    let written = sim.host_memory();
    let copied = written.snapshot_only_bytes / PAGE_SIZE as u64;
    assert!(
        (1..=8).contains(&copied),
        "an increment copies a few pages, not the memories: {written:?}"
    );

    let load = LoadCanisterSnapshotArgs {
        canister_id: canister,
        snapshot_id: snapshot.id,
        sender_canister_version: None,
    };
    management_ingress(&mut sim, user(), "load_canister_snapshot", &load).unwrap();
    let counter: u64 = decode(
        &sim.query_call(user(), canister, "counter", no_arg())
            .unwrap(),
    );
    assert_eq!(counter, 1, "the snapshot kept the state it was taken in");
    assert_eq!(increment(&mut sim, canister), 2);
}
