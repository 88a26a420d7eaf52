//! The canister surface: each method takes the caller from the IC, authorizes it against the
//! role it needs, and hands the work to the plain modules.

use std::cell::RefCell;

use candid::Principal;
use ic_cdk::api::msg_caller;
use ic_cdk::{init, post_upgrade, query, trap, update};
use ic_stable_structures::DefaultMemoryImpl;

use crate::error::Error;
use crate::roles::{Role, RoleAssignment};
use crate::state::{InitArg, State, UpgradeArg};
use crate::version::VersionInfo;

thread_local! {
    /// Set by `init` or `post_upgrade`, which the IC runs before any other method.
    static STATE: RefCell<Option<State<DefaultMemoryImpl>>> = const { RefCell::new(None) };
}

fn read_state<R>(f: impl FnOnce(&State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with_borrow(|state| f(state.as_ref().expect("state is set by init/post_upgrade")))
}

fn mutate_state<R>(f: impl FnOnce(&mut State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with_borrow_mut(|state| f(state.as_mut().expect("state is set by init/post_upgrade")))
}

#[init]
fn init(arg: InitArg) {
    match State::init(DefaultMemoryImpl::default(), arg, msg_caller()) {
        Ok(state) => STATE.set(Some(state)),
        Err(error) => trap(format!("deployer init refused: {error}")),
    }
}

/// There is deliberately no `pre_upgrade`: all state is already in stable structures. The
/// argument is declared so that Candid checks its shape; it carries nothing yet.
#[post_upgrade]
fn post_upgrade(_arg: Option<UpgradeArg>) {
    match State::post_upgrade(DefaultMemoryImpl::default()) {
        Ok(state) => STATE.set(Some(state)),
        Err(error) => trap(format!("deployer upgrade refused: {error}")),
    }
}

#[update]
fn add_role(principal: Principal, role: Role) -> Result<(), Error> {
    let caller = msg_caller();
    mutate_state(|state| {
        state.roles.authorize(caller, Role::Admin)?;
        state.roles.grant(principal, role)
    })
}

#[update]
fn remove_role(principal: Principal, role: Role) -> Result<(), Error> {
    let caller = msg_caller();
    mutate_state(|state| {
        state.roles.authorize(caller, Role::Admin)?;
        state.roles.revoke(principal, role)
    })
}

/// Public: who holds which role is part of the deployer's governance, not a secret.
#[query]
fn list_roles() -> Vec<RoleAssignment> {
    read_state(|state| state.roles.list())
}

#[query]
fn my_roles() -> Vec<Role> {
    let caller = msg_caller();
    read_state(|state| state.roles.roles_of(caller))
}

#[query]
fn version() -> VersionInfo {
    VersionInfo::of_this_build()
}

// Generates `__export_service()`, the Candid service of the methods above, for the interface
// test. Not `ic_cdk::export_candid!`: that also exports `get_candid_pointer` from the Wasm, and
// the packaged Wasm carries `candid/deployer.did` as metadata instead.
#[cfg(test)]
candid::export_service!();

#[cfg(test)]
mod candid_interface_tests;
