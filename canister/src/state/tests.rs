use ic_stable_structures::VectorMemory;

use super::*;
use crate::error::ErrorKind;
use crate::roles::RoleAssignment;

fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

fn admins(state: &State<VectorMemory>) -> Vec<RoleAssignment> {
    state.roles.list()
}

#[test]
fn without_listed_admins_the_installer_is_the_only_admin() {
    let state = State::init(VectorMemory::default(), InitArg::default(), principal(1)).unwrap();
    assert_eq!(
        admins(&state),
        vec![RoleAssignment {
            principal: principal(1),
            roles: vec![Role::Admin],
        }]
    );
}

#[test]
fn listed_admins_replace_the_installer() {
    let arg = InitArg {
        admins: Some(vec![principal(2), principal(3)]),
    };
    let state = State::init(VectorMemory::default(), arg, principal(1)).unwrap();
    assert_eq!(state.roles.roles_of(principal(1)), vec![]);
    assert_eq!(state.roles.roles_of(principal(2)), vec![Role::Admin]);
    assert_eq!(state.roles.roles_of(principal(3)), vec![Role::Admin]);
}

#[test]
fn an_empty_admin_list_is_refused() {
    let arg = InitArg {
        admins: Some(vec![]),
    };
    let error = State::init(VectorMemory::default(), arg, principal(1)).err();
    assert_eq!(error, Some(InitError::NoAdmins));
}

#[test]
fn an_anonymous_installer_cannot_become_admin() {
    let error = State::init(
        VectorMemory::default(),
        InitArg::default(),
        Principal::anonymous(),
    )
    .err()
    .expect("refused");
    let InitError::Admin(error) = error else {
        panic!("expected InitError::Admin, got {error:?}");
    };
    assert_eq!(error.kind(), &ErrorKind::AnonymousPrincipal);
}

#[test]
fn upgrade_keeps_the_roles() {
    let memory = VectorMemory::default();
    let mut state = State::init(memory.clone(), InitArg::default(), principal(1)).unwrap();
    state.roles.grant(principal(2), Role::Operator).unwrap();
    let before = admins(&state);
    drop(state);

    let upgraded = State::post_upgrade(memory).unwrap();
    assert_eq!(admins(&upgraded), before);
}

#[test]
fn upgrade_of_a_canister_without_deployer_state_is_refused() {
    assert_eq!(
        State::post_upgrade(VectorMemory::default()).err(),
        Some(LayoutError::Empty)
    );
}
