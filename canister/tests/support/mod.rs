//! Shared by the deployer's scenario tests: the test identities, and the deployer installed from
//! its real Wasm and called through its typed client (`deployer_client`) on an [`IcEnv`] (the
//! simulator, or PocketIC when `POCKET_IC_BIN` is set).
//!
//! Each test binary uses part of this module.
#![allow(dead_code, unused_imports)]

use candid::Principal;
use deployer::{InitArg, Role};
pub use deployer_client::modules::{gzip, sha256, wasm_module, wasm_with_candid};
pub use deployer_client::{chunk_arg, open_arg, Answer, CallError, MIB};
use ic_sim::scenario::{from_env, IcEnv};
use ic_sim::SimConfig;

pub const HOUR_NANOS: u64 = 3600 * 1_000_000_000;

pub fn admin() -> Principal {
    Principal::from_slice(&[0xad; 29])
}

pub fn operator() -> Principal {
    Principal::from_slice(&[0x0e; 29])
}

pub fn stranger() -> Principal {
    Principal::from_slice(&[0x57; 29])
}

/// The deployer on an IC: `admin()` is its admin and controller, `operator()` an operator.
pub type Deployer = deployer_client::Deployer<Box<dyn IcEnv>>;

/// The deployer on the scenario backend `from_env` picks.
pub fn install() -> Deployer {
    install_on(from_env(SimConfig::default()))
}

pub fn install_on<E: IcEnv>(env: E) -> deployer_client::Deployer<E> {
    let mut deployer = deployer_client::Deployer::install(env, admin(), admin_init());
    deployer.add_role_ok(admin(), operator(), Role::Operator);
    deployer
}

/// Replaces the deployer by a newly installed one on the same IC (which keeps its compiled
/// modules, so this is cheap).
pub fn reinstall<E: IcEnv>(deployer: &mut deployer_client::Deployer<E>) {
    deployer.reinstall_fresh(admin(), admin_init());
    deployer.add_role_ok(admin(), operator(), Role::Operator);
}

fn admin_init() -> InitArg {
    InitArg {
        admins: Some(vec![admin()]),
        ..Default::default()
    }
}

/// Upgrades the deployer to its own Wasm (what a new release of it does to its state): stopped,
/// upgraded, started, as the deployer requires while it may have calls outstanding.
pub fn upgrade<E: IcEnv>(deployer: &mut deployer_client::Deployer<E>) {
    deployer
        .upgrade_stopped(admin(), None)
        .expect("upgrade the deployer");
}
