//! The named scenarios. Each builds its own simulator from a fixed seed and measures one thing
//! as deltas of [`Stats`] around the measured step, so set-up work never counts.

use crate::report::Report;
use candid::{CandidType, Principal};
use ic_sim::{artifacts, InstallMode, Sim, SimConfig, Stats};
use std::collections::BTreeMap;

type Figures = BTreeMap<String, u64>;

/// A named measurement; each builds its own simulator.
type Scenario = (&'static str, fn() -> Figures);

const SCENARIOS: &[Scenario] = &[
    ("empty_update_call", empty_update_call),
    ("deployer_self_upgrade_empty", deployer_self_upgrade_empty),
];

pub fn run_all() -> Report {
    Report {
        scenarios: SCENARIOS
            .iter()
            .map(|(name, scenario)| (name.to_string(), scenario()))
            .collect(),
    }
}

fn controller() -> Principal {
    Principal::from_slice(&[0xbe, 0x7c, 0x4e])
}

/// The figures every scenario reports: what the measured step cost.
fn delta(before: &Stats, after: &Stats) -> Figures {
    BTreeMap::from([
        (
            "instructions".to_string(),
            after.instructions - before.instructions,
        ),
        ("messages".to_string(), after.messages - before.messages),
        ("rounds".to_string(), after.rounds - before.rounds),
        (
            "bytes_moved".to_string(),
            after.bytes_moved - before.bytes_moved,
        ),
    ])
}

fn installed(sim: &mut Sim, name: &str, arg: Vec<u8>) -> Principal {
    let canister = sim.create_canister(0, vec![controller()]);
    sim.install_code(
        controller(),
        canister,
        &artifacts::wasm(name),
        arg,
        InstallMode::Install,
    )
    .unwrap_or_else(|e| panic!("install {name}: {e}"));
    canister
}

/// An update call that does nothing but reply: the floor every deployer call stands on.
fn empty_update_call() -> Figures {
    let mut sim = Sim::new(SimConfig::default());
    let probe = installed(&mut sim, "probe", candid::encode_args(()).unwrap());
    let before = sim.stats();
    let arg = candid::encode_one(serde_bytes::ByteBuf::new()).unwrap();
    sim.update_call(controller(), probe, "echo", arg)
        .expect("echo");
    delta(&before, &sim.stats())
}

#[derive(CandidType)]
struct DeployerInitArgs {
    admins: Option<Vec<Principal>>,
}

/// The deployer upgrading itself with nothing stored: the baseline that later entries (with 1 GiB
/// of releases) must match within 5 percent.
fn deployer_self_upgrade_empty() -> Figures {
    let mut sim = Sim::new(SimConfig::default());
    let init = candid::encode_one(DeployerInitArgs { admins: None }).unwrap();
    let deployer = installed(&mut sim, "deployer", init);
    let before = sim.stats();
    let upgrade = InstallMode::Upgrade {
        skip_pre_upgrade: false,
        keep_wasm_memory: false,
    };
    sim.install_code(
        controller(),
        deployer,
        &artifacts::wasm("deployer"),
        candid::encode_args(()).unwrap(),
        upgrade,
    )
    .expect("deployer upgrade");
    delta(&before, &sim.stats())
}
