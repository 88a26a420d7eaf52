//! Shared by the rollout scenario tests: the real deployer Wasm and a fleet of real child
//! canisters on the simulator, reached through the typed client with the simulator itself
//! (`fleet.env`) in hand, so that tests can read its trace and its counters as well as the
//! deployer's replies.
#![allow(dead_code, unused_imports)]

use candid::Principal;
use deployer::Release;
use deployer_client::fleet::{child_counter, child_version};
pub use deployer_client::staged_policy as policy;
use ic_sim::{Sim, SimConfig};

use crate::support::install_on;
pub use crate::support::{admin, operator, stranger, upgrade, Answer, MIB};

/// The management method the deployer installs children with: every child's subnet has a
/// chunk store in these fleets (the deployer serves its own subnet), so releases go through
/// the stores, one upload per subnet, and each install carries only chunk hashes.
pub const INSTALL_METHOD: &str = "install_chunked_code";

/// The deployer on the simulator, with the simulator at hand.
pub type Fleet = deployer_client::Deployer<Sim>;

/// The deployer on subnet 0 of a simulated IC with `subnets` subnets.
pub fn fleet(subnets: usize) -> Fleet {
    fleet_with(SimConfig {
        subnets,
        ..SimConfig::default()
    })
}

pub fn fleet_with(config: SimConfig) -> Fleet {
    install_on(Sim::new(config))
}

/// `count` children on `subnet` running `child_v1`, controlled by the admin and the deployer,
/// each incremented `index % 7 + 1` times so their counters differ.
pub fn create_children(fleet: &mut Fleet, subnet: usize, count: usize) -> Vec<Principal> {
    let mut per_subnet = vec![0; subnet + 1];
    per_subnet[subnet] = count;
    let children = fleet
        .create_children(admin(), &per_subnet)
        .swap_remove(subnet);
    fleet.set_counters(admin(), &children);
    children
}

pub fn counter_of(fleet: &mut Fleet, child: Principal) -> u64 {
    child_counter(&mut fleet.env, admin(), child)
}

pub fn counters_of(fleet: &mut Fleet, children: &[Principal]) -> Vec<u64> {
    children
        .iter()
        .map(|&child| counter_of(fleet, child))
        .collect()
}

pub fn version_of(fleet: &mut Fleet, child: Principal) -> String {
    child_version(&mut fleet.env, admin(), child)
}

/// Uploads `module` as release `child` `version` in 1 MiB chunks.
pub fn release(fleet: &mut Fleet, module: &[u8], version: &str) -> Release {
    fleet.upload_ok(operator(), module, MIB, "child", version)
}

/// A fleet of `count` children on one subnet, adopted, and the operator's rollout of `child_v2`
/// to all of them, one wave (after a canary of one) `concurrency` at a time: the children, the
/// release and the rollout's id.
pub fn v2_rollout(count: usize, concurrency: u32) -> (Fleet, Vec<Principal>, Release, u64) {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, count);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let release = release(&mut fleet, &ic_sim::artifacts::wasm("child_v2"), "2");
    let id = fleet
        .start_rollout_of(
            operator(),
            &release,
            deployer::Selector::All,
            policy(1, vec![], concurrency),
        )
        .answer()
        .expect("start")
        .rollout_id;
    (fleet, children, release, id)
}

/// Installs of `child` the management canister executed (refused ones not counted).
pub fn successful_installs(fleet: &Fleet, child: Principal) -> usize {
    fleet
        .management_calls(child)
        .iter()
        .filter(|(method, ok)| method == INSTALL_METHOD && *ok)
        .count()
}
