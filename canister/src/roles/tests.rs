use ic_stable_structures::VectorMemory;

use super::*;

fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

/// A table whose only admin is `principal(1)`.
fn roles_with_one_admin() -> Roles<VectorMemory> {
    let mut roles = Roles::init(VectorMemory::default());
    roles.grant(principal(1), Role::Admin).unwrap();
    roles
}

#[test]
fn admin_grants_operator_but_operator_does_not_grant_admin() {
    assert!(Role::Admin.grants(Role::Admin));
    assert!(Role::Admin.grants(Role::Operator));
    assert!(Role::Operator.grants(Role::Operator));
    assert!(!Role::Operator.grants(Role::Admin));
}

#[test]
fn viewer_reads_and_nothing_more_and_operators_and_admins_are_viewers() {
    assert!(Role::Viewer.grants(Role::Viewer));
    assert!(!Role::Viewer.grants(Role::Operator));
    assert!(!Role::Viewer.grants(Role::Admin));
    assert!(Role::Operator.grants(Role::Viewer));
    assert!(Role::Admin.grants(Role::Viewer));
}

#[test]
fn granted_roles_are_listed_per_principal_in_role_order() {
    let mut roles = roles_with_one_admin();
    roles.grant(principal(2), Role::Operator).unwrap();
    roles.grant(principal(2), Role::Admin).unwrap();

    assert_eq!(
        roles.roles_of(principal(2)),
        vec![Role::Admin, Role::Operator]
    );
    assert_eq!(roles.roles_of(principal(3)), vec![]);
    assert_eq!(
        roles.list(),
        vec![
            RoleAssignment {
                principal: principal(1),
                roles: vec![Role::Admin],
            },
            RoleAssignment {
                principal: principal(2),
                roles: vec![Role::Admin, Role::Operator],
            },
        ]
    );
}

#[test]
fn granting_a_held_role_changes_nothing() {
    let mut roles = roles_with_one_admin();
    let before = roles.list();
    roles.grant(principal(1), Role::Admin).unwrap();
    assert_eq!(roles.list(), before);
}

#[test]
fn anonymous_principal_cannot_be_granted_a_role() {
    let mut roles = roles_with_one_admin();
    let error = roles
        .grant(Principal::anonymous(), Role::Operator)
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::AnonymousPrincipal);
    assert_eq!(roles.roles_of(Principal::anonymous()), vec![]);
}

#[test]
fn authorize_accepts_a_granting_role_and_names_the_missing_one() {
    let mut roles = roles_with_one_admin();
    roles.grant(principal(2), Role::Operator).unwrap();

    assert_eq!(roles.authorize(principal(1), Role::Operator), Ok(()));
    assert_eq!(roles.authorize(principal(2), Role::Operator), Ok(()));
    assert_eq!(
        roles
            .authorize(principal(2), Role::Admin)
            .unwrap_err()
            .kind(),
        &ErrorKind::NotAuthorized {
            caller: principal(2),
            required: Role::Admin,
        }
    );
    assert_eq!(
        roles
            .authorize(principal(3), Role::Operator)
            .unwrap_err()
            .kind(),
        &ErrorKind::NotAuthorized {
            caller: principal(3),
            required: Role::Operator,
        }
    );
}

#[test]
fn the_last_admin_cannot_be_revoked() {
    let mut roles = roles_with_one_admin();
    let error = roles.revoke(principal(1), Role::Admin).unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::LastAdmin {
            admin: principal(1)
        }
    );
    assert_eq!(roles.roles_of(principal(1)), vec![Role::Admin]);
}

#[test]
fn an_admin_can_be_revoked_once_another_exists() {
    let mut roles = roles_with_one_admin();
    roles.grant(principal(2), Role::Admin).unwrap();

    roles.revoke(principal(1), Role::Admin).unwrap();

    assert_eq!(roles.roles_of(principal(1)), vec![]);
    assert_eq!(
        roles.revoke(principal(2), Role::Admin).unwrap_err().kind(),
        &ErrorKind::LastAdmin {
            admin: principal(2)
        }
    );
}

#[test]
fn revoking_keeps_other_roles_and_drops_principals_left_with_none() {
    let mut roles = roles_with_one_admin();
    roles.grant(principal(1), Role::Operator).unwrap();
    roles.grant(principal(2), Role::Operator).unwrap();

    roles.revoke(principal(1), Role::Operator).unwrap();
    roles.revoke(principal(2), Role::Operator).unwrap();

    assert_eq!(
        roles.list(),
        vec![RoleAssignment {
            principal: principal(1),
            roles: vec![Role::Admin],
        }]
    );
}

#[test]
fn revoking_a_role_not_held_changes_nothing() {
    let mut roles = roles_with_one_admin();
    let before = roles.list();
    roles.revoke(principal(1), Role::Operator).unwrap();
    roles.revoke(principal(2), Role::Admin).unwrap();
    assert_eq!(roles.list(), before);
}

#[test]
fn roles_persist_in_their_memory() {
    let memory = VectorMemory::default();
    Roles::init(memory.clone())
        .grant(principal(4), Role::Operator)
        .unwrap();
    assert_eq!(
        Roles::init(memory).roles_of(principal(4)),
        vec![Role::Operator]
    );
}
