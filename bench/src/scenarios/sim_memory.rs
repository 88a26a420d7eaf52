//! The simulator's own memory per canister, as it counts it (`Sim::host_memory`: the pages,
//! chunks and module binaries it holds, each counted once however many canisters and snapshots
//! share it): 1,000 idle children, then the same fleet after a rollout that snapshots every child
//! before installing. Deterministic, unlike the process's resident memory; the wall time per
//! canister is printed, not stored.

use super::rollouts::{fleet, roll_out};
use super::{upload, Figures};
use deployer::PolicyArg;
use deployer_client::staged_policy as policy;
use ic_sim::{artifacts, HostMemory, Sim};

const SUBNETS: usize = 3;
const CHILDREN: u64 = 1_000;

/// Per canister: bytes held, page references held (what it would hold, times 4 KiB, without
/// sharing), and the bytes only snapshots hold.
fn per_canister(sim: &Sim, prefix: &str) -> Figures {
    let memory: HostMemory = sim.host_memory();
    let canisters = memory.canisters.max(1);
    Figures::from([
        (
            format!("{prefix}sim_bytes_per_canister"),
            memory.total_bytes() / canisters,
        ),
        (
            format!("{prefix}sim_page_references_per_canister"),
            memory.page_references / canisters,
        ),
        (
            format!("{prefix}sim_snapshot_only_bytes_per_canister"),
            memory.snapshot_only_bytes / canisters,
        ),
    ])
}

/// 1,000 children of child_v1 on three subnets, idle; then upgraded to child_v2 with a snapshot
/// of each taken before its install (canary 10, then 100 at a time).
pub fn thousand_children() -> Figures {
    let started = std::time::Instant::now();
    let mut deployer = fleet(SUBNETS, CHILDREN as usize);
    let mut figures = per_canister(&deployer.env, "idle_");
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    let snapshots = PolicyArg {
        snapshot_before_install: Some(true),
        ..policy(10, vec![], 100)
    };
    let rollout = roll_out(&mut deployer, &release, snapshots);
    assert_eq!(
        rollout["children_upgraded"], CHILDREN,
        "every child upgraded"
    );
    let snapshots_taken: u64 = deployer
        .env
        .canister_ids()
        .iter()
        .filter_map(|id| deployer.env.canister(*id))
        .map(|view| view.snapshots as u64)
        .sum();
    assert!(
        snapshots_taken >= CHILDREN,
        "every child has its snapshot: {snapshots_taken}"
    );
    figures.extend(per_canister(&deployer.env, ""));
    figures.insert(
        "canisters".to_string(),
        deployer.env.host_memory().canisters,
    );
    println!(
        "sim_memory: {} us wall per canister (fleet built and rolled out)",
        started.elapsed().as_micros() / u128::from(CHILDREN)
    );
    figures
}
