//! The demo network's canisters: the deployer, and fixtures it can manage (children it
//! controls) or that tests call (the probe).

use candid::Principal;
use ic_sim::{artifacts, InstallMode, Sim};
use std::collections::BTreeMap;

/// Who controls what is installed.
#[derive(Clone, Debug)]
pub struct Controllers {
    /// Installs the deployer, so it is its admin unless `admins` says otherwise.
    pub installer: Principal,
    /// Further controllers of every canister (e.g. the anonymous principal for `icp` without
    /// an identity, or the user's identity).
    pub others: Vec<Principal>,
    /// The deployer's initial admins (`InitArg::admins`); None: the installer.
    pub admins: Option<Vec<Principal>>,
}

/// Ids of what [`install_deployer_and_fixtures`] installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub deployer: Principal,
    /// By name: `child_1`, `child_2` (child_v1, controlled by the deployer too) and `probe`.
    pub fixtures: BTreeMap<String, Principal>,
}

/// Installs the deployer and the fixtures on subnet 0 from `artifacts/`.
pub fn install_deployer_and_fixtures(sim: &mut Sim, controllers: &Controllers) -> Installed {
    let mut all = vec![controllers.installer];
    all.extend(controllers.others.iter().copied());
    let deployer = sim.create_canister(0, all.clone());
    // A local network is its developer's own: the dashboard shows the fleet's events (a
    // deployer on the IC keeps them private unless its controllers say otherwise).
    let init = deployer::InitArg {
        admins: controllers.admins.clone(),
        dashboard: Some(deployer::dashboard::DashboardSettings {
            public_events: true,
        }),
        ..Default::default()
    };
    install(
        sim,
        controllers.installer,
        deployer,
        "deployer",
        candid::encode_one(init).expect("InitArg encodes"),
    );
    let mut fixtures = BTreeMap::new();
    for (name, artifact, managed) in [
        ("child_1", "child_v1", true),
        ("child_2", "child_v1", true),
        ("probe", "probe", false),
    ] {
        let mut owners = all.clone();
        if managed {
            owners.push(deployer);
        }
        let canister = sim.create_canister(0, owners);
        install(
            sim,
            controllers.installer,
            canister,
            artifact,
            candid::encode_args(()).expect("no arguments encode"),
        );
        fixtures.insert(name.to_string(), canister);
    }
    Installed { deployer, fixtures }
}

fn install(sim: &mut Sim, installer: Principal, canister: Principal, artifact: &str, arg: Vec<u8>) {
    sim.install_code(
        installer,
        canister,
        &artifacts::wasm(artifact),
        arg,
        InstallMode::Install,
    )
    .unwrap_or_else(|reject| panic!("installing {artifact}: {reject}"));
}
