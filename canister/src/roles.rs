//! Who may do what: principals and the roles they hold.
//!
//! A principal holds a set of roles. `Admin` grants everything `Operator` grants, and
//! `Operator` everything `Viewer` grants, so an admin never needs a second grant to operate or
//! to read. `Viewer` is the read-only role of dashboards and auditors: the fleet, the rollouts
//! (install arguments included), child histories and events are read by role holders only,
//! while the release catalogue and the deployer's version stay public. The deployer always keeps at least one admin: without
//! one, nobody could grant roles again and the canister would be stuck with its controllers'
//! reinstall as the only way out.

use std::collections::BTreeSet;
use std::fmt;

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Serialize;

use crate::backup::SectionVisitor;
use crate::cbor::Cbor;
use crate::error::{Error, ErrorKind};

/// A permission level.
///
/// The serde names are stored (CBOR strings in the roles map): renaming a variant is a schema
/// change. `memory::tests` pins the bytes.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Role {
    /// Manages roles, and later releases and governance settings.
    Admin,
    /// Runs day-to-day operations such as rollouts.
    Operator,
    /// Reads what the deployer knows of the fleet and its rollouts; changes nothing.
    Viewer,
}

impl Role {
    /// Whether holding `self` is enough for an action that requires `required`.
    pub fn grants(self, required: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => required != Role::Admin,
            Role::Viewer => required == Role::Viewer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One principal and the roles it holds explicitly, as listed by `list_roles`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RoleAssignment {
    pub principal: Principal,
    pub roles: Vec<Role>,
}

/// The stored roles of one principal; never empty (a principal with no role has no entry).
pub(crate) type RoleSet = BTreeSet<Role>;

/// The roles table: principal bytes to the CBOR-encoded set of roles it holds.
pub struct Roles<M: Memory> {
    by_principal: StableBTreeMap<Principal, Cbor<RoleSet>, M>,
}

impl<M: Memory> Roles<M> {
    /// Opens the table stored in `memory`, creating it if the memory is empty.
    pub fn init(memory: M) -> Self {
        Self {
            by_principal: StableBTreeMap::init(memory),
        }
    }

    /// See [`crate::backup`].
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map("roles", &mut self.by_principal);
    }

    /// The roles `principal` holds explicitly, in `Role` order.
    pub fn roles_of(&self, principal: Principal) -> Vec<Role> {
        self.by_principal
            .get(&principal)
            .map(|Cbor(roles)| roles.into_iter().collect())
            .unwrap_or_default()
    }

    /// Every principal that holds a role, in principal-byte order.
    pub fn list(&self) -> Vec<RoleAssignment> {
        self.by_principal
            .iter()
            .map(|entry| RoleAssignment {
                principal: *entry.key(),
                roles: entry.value().0.into_iter().collect(),
            })
            .collect()
    }

    /// Succeeds if `caller` holds a role that grants `required`.
    pub fn authorize(&self, caller: Principal, required: Role) -> Result<(), Error> {
        let granted = self
            .roles_of(caller)
            .into_iter()
            .any(|held| held.grants(required));
        if granted {
            Ok(())
        } else {
            Err(ErrorKind::NotAuthorized { caller, required }.into())
        }
    }

    /// Gives `role` to `principal`. Granting a role already held changes nothing, so a retried
    /// request (or a re-executed proposal) succeeds.
    pub fn grant(&mut self, principal: Principal, role: Role) -> Result<(), Error> {
        if principal == Principal::anonymous() {
            return Err(ErrorKind::AnonymousPrincipal.into());
        }
        let mut roles = self.stored_roles(principal);
        if roles.insert(role) {
            self.by_principal.insert(principal, Cbor(roles));
        }
        Ok(())
    }

    /// Takes `role` from `principal`. Revoking a role not held changes nothing, for the same
    /// reason as in [`Roles::grant`]. Refuses to remove the last admin.
    pub fn revoke(&mut self, principal: Principal, role: Role) -> Result<(), Error> {
        let mut roles = self.stored_roles(principal);
        if !roles.contains(&role) {
            return Ok(());
        }
        if role == Role::Admin && self.admin_count() == 1 {
            return Err(ErrorKind::LastAdmin { admin: principal }.into());
        }
        roles.remove(&role);
        if roles.is_empty() {
            self.by_principal.remove(&principal);
        } else {
            self.by_principal.insert(principal, Cbor(roles));
        }
        Ok(())
    }

    fn stored_roles(&self, principal: Principal) -> RoleSet {
        self.by_principal
            .get(&principal)
            .map(|Cbor(roles)| roles)
            .unwrap_or_default()
    }

    /// Scans the table: it holds a handful of principals, and a stored counter would be one more
    /// thing to keep consistent.
    fn admin_count(&self) -> usize {
        self.by_principal
            .values()
            .filter(|Cbor(roles)| roles.contains(&Role::Admin))
            .count()
    }
}

#[cfg(test)]
mod tests;
