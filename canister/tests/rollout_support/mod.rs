//! Shared by the rollout scenario tests: the real deployer Wasm and a fleet of real child
//! canisters on the simulator, reached through the typed client with the simulator itself
//! (`fleet.env`) in hand, so that tests can read its trace and its counters as well as the
//! deployer's replies.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;

use candid::Principal;
use deployer::dashboard::states;
use deployer::{ListChildrenArg, ListRolloutsArg, Release};
use deployer_client::dashboard::Samples;
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

/// Makes `controllers` the only controllers of `canister_id`, as its admin.
pub fn set_controllers(fleet: &mut Fleet, canister_id: Principal, controllers: Vec<Principal>) {
    let settings = ic_management_canister_types::UpdateSettingsArgs {
        canister_id,
        settings: ic_management_canister_types::CanisterSettings {
            controllers: Some(controllers),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    fleet
        .env
        .update_call(
            admin(),
            Principal::management_canister(),
            "update_settings",
            candid::encode_one(settings).unwrap(),
        )
        .expect("the admin sets the canister's controllers");
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Every figure of `/metrics` equals what the Candid queries say at the same moment.
pub fn assert_metrics_agree(fleet: &mut Fleet) -> Samples {
    let samples = fleet.metrics_ok(stranger());
    let stats = fleet.storage_stats_ok(stranger());
    for (name, value) in [
        ("deployer_releases", stats.releases),
        ("deployer_release_bytes", stats.release_bytes),
        ("deployer_stable_memory_bytes", stats.stable_memory_bytes),
        ("deployer_open_uploads", stats.open_uploads),
    ] {
        assert_eq!(samples.value(name, &[]), value as f64, "{name}");
    }

    let children = fleet
        .list_children_ok(admin(), ListChildrenArg::default())
        .children;
    assert_eq!(
        samples.value("deployer_children", &[]),
        children.len() as f64
    );
    let held = children.iter().filter(|child| child.rollout_id.is_some());
    assert_eq!(
        samples.value("deployer_children_in_rollouts", &[]),
        held.count() as f64
    );
    let mut by_subnet: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_module: BTreeMap<String, f64> = BTreeMap::new();
    for child in &children {
        *by_subnet.entry(child.subnet.to_text()).or_default() += 1.0;
        let module = child.module_hash.as_ref().map(|hash| hex(hash));
        *by_module.entry(module.unwrap_or_default()).or_default() += 1.0;
    }
    let served = |name| -> BTreeMap<String, f64> {
        samples
            .named(name)
            .map(|(labels, value)| (labels[0].1.clone(), value))
            .collect()
    };
    assert_eq!(served("deployer_children_by_subnet"), by_subnet);
    assert_eq!(served("deployer_children_by_module"), by_module);
    // `fleet_summary` reads the same counts.
    let summary = fleet.fleet_summary_ok(admin());
    assert_eq!(summary.children, children.len() as u64);
    assert_eq!(
        summary.in_rollouts as f64,
        samples.value("deployer_children_in_rollouts", &[])
    );
    let summarized: BTreeMap<String, f64> = summary
        .by_module
        .iter()
        .map(|module| {
            let hash = module.module_hash.as_ref().map(|hash| hex(hash));
            (hash.unwrap_or_default(), module.children as f64)
        })
        .collect();
    assert_eq!(summarized, by_module);
    let summarized: BTreeMap<String, f64> = summary
        .by_subnet
        .iter()
        .map(|subnet| (subnet.subnet.to_text(), subnet.children as f64))
        .collect();
    assert_eq!(summarized, by_subnet);

    let rollouts = fleet
        .list_rollouts_ok(admin(), ListRolloutsArg::default())
        .rollouts;
    assert_eq!(
        samples.value("deployer_rollouts_started_total", &[]),
        rollouts.len() as f64
    );
    let active: Vec<_> = rollouts
        .iter()
        .filter(|rollout| rollout.summary.finished_at.is_none())
        .collect();
    let served_active: f64 = samples
        .named("deployer_rollouts_active")
        .map(|(_, count)| count)
        .sum();
    assert_eq!(served_active, active.len() as f64);
    for rollout in active {
        let id = rollout.rollout_id.to_string();
        for (state, count) in states(&rollout.summary.counts) {
            let labels = [("rollout", id.as_str()), ("state", state)];
            let served = samples.value("deployer_rollout_children", &labels);
            assert_eq!(served, f64::from(count), "{state}");
        }
        assert_eq!(
            samples.value("deployer_rollout_calls_in_flight", &[("rollout", &id)]),
            f64::from(rollout.summary.in_flight)
        );
        let by_kind: BTreeMap<String, f64> = rollout
            .summary
            .failures_by_kind
            .iter()
            .flatten()
            .map(|failure| (failure.kind.clone(), f64::from(failure.children)))
            .collect();
        let served_by_kind: BTreeMap<String, f64> = samples
            .named("deployer_rollout_failures")
            .filter(|(labels, _)| labels.contains(&("rollout".to_string(), id.clone())))
            .filter_map(|(labels, count)| {
                let kind = labels.iter().find(|(name, _)| name == "kind")?;
                Some((kind.1.clone(), count))
            })
            .collect();
        assert_eq!(served_by_kind, by_kind, "failures of rollout {id}");
    }
    assert!(samples.value("deployer_cycle_balance", &[]) > 0.0);
    samples
}
