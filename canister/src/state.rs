//! The deployer's state and how it comes to life: fresh install or upgrade.
//!
//! `State` is generic over the stable memory so that tests run it on a `VectorMemory` while the
//! canister runs it on the real one. The installer arrives as an argument, like every caller.

use std::fmt;

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::{Memory, StableCell};

use crate::access::{self, Method};
use crate::backup::BackupSessions;
use crate::cbor::Cbor;
use crate::dashboard::DashboardSettings;
use crate::error::Error;
use crate::fleet::{Fleet, FleetMemories};
use crate::governance::{GovernanceSettings, GovernanceUpdate};
use crate::memory::{LayoutError, Memories, StoredMemory};
use crate::proxy::ProxyAudit;
use crate::release_store::{ReleaseStore, StorageStats};
use crate::releases::{Blessing, ReleaseSelector, SetReleaseBlessingArg};
use crate::roles::{Role, Roles};
use crate::rollouts::{GenerationMemories, RolloutMemories, Rollouts};

/// The install argument.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct InitArg {
    /// The initial admins. `None` makes the installer the only admin.
    pub admins: Option<Vec<Principal>>,
    /// The SNS governance canister or Orbit station: made an admin, and the only caller that
    /// changes anything when `governance_only`.
    pub governance: Option<Principal>,
    pub governance_only: Option<bool>,
    /// Rollouts only of releases an admin (or governance) blessed; `None`: any release.
    pub require_blessed_releases: Option<bool>,
    /// What the HTTP views show anyone; `None`: aggregates only.
    pub dashboard: Option<DashboardSettings>,
}

/// The upgrade argument, passed as `opt UpgradeArg`; upgrading with no argument keeps working.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradeArg {
    /// Principals granted Admin by the upgrade: how the deployer's controllers recover it when
    /// every admin key is lost, without shipping new code.
    pub add_admins: Option<Vec<Principal>>,
    /// Sets the governance principal (made an admin); `None` keeps it.
    pub governance: Option<Principal>,
    /// Turns governance-only mode on or off; `None` keeps it.
    pub governance_only: Option<bool>,
    /// Turns the requirement of blessed releases for rollouts on or off; `None` keeps it.
    pub require_blessed_releases: Option<bool>,
    /// Replaces what the HTTP views show anyone; `None` keeps it.
    pub dashboard: Option<DashboardSettings>,
}

/// Why the deployer refuses to be upgraded now, if it does: never while calls it made may still
/// be answered, because the IC would deliver those answers to the new module's callbacks
/// (interface specification, "IC method `install_code`": a canister that cannot make sense of
/// its old callbacks must be stopped first). A stopped deployer has none (stopping waits for
/// every call context to close); a running one is let through only when it counts none.
pub fn upgrade_refusal(stopped: bool, calls_outstanding: u64) -> Option<String> {
    (!stopped && calls_outstanding > 0).then(|| {
        format!(
            "deployer upgrade refused: {calls_outstanding} of its calls are still outstanding, \
             and their answers would reach the new module's callbacks. Stop the deployer first \
             (`dfx canister stop` or `icp canister stop`): stopping lets the calls finish and \
             pauses nothing that matters, rollouts go on from their journal once it is started \
             again after the upgrade"
        )
    })
}

/// Why a fresh install was refused. The canister traps with the message, which the installer
/// sees as the install error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `admins = opt vec {}`: the deployer would start without an admin.
    NoAdmins,
    /// An initial admin could not be granted the role.
    Admin(Error),
    /// The governance settings asked for cannot hold.
    Governance(String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAdmins => write!(
                f,
                "the init argument lists no admins: list at least one principal in `admins`, \
                 or leave it null to make the installer the only admin"
            ),
            Self::Admin(error) => write!(f, "cannot make an initial admin: {error}"),
            Self::Governance(reason) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for InitError {}

/// Why an upgrade was refused in `post_upgrade`: the IC then keeps the previous module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeError {
    /// Stable memory holds a layout this build cannot read.
    Layout(LayoutError),
    /// A principal of `add_admins` could not be granted the role.
    Admin(Error),
    /// The governance settings asked for cannot hold.
    Governance(String),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Layout(error) => write!(f, "{error}"),
            Self::Admin(error) => write!(f, "cannot make an admin of `add_admins`: {error}"),
            Self::Governance(reason) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for UpgradeError {}

pub struct State<M: Memory + Clone> {
    memories: Memories<M>,
    governance: StableCell<Cbor<GovernanceSettings>, StoredMemory<M>>,
    dashboard: StableCell<Cbor<DashboardSettings>, StoredMemory<M>>,
    pub roles: Roles<StoredMemory<M>>,
    pub release_store: ReleaseStore<StoredMemory<M>>,
    pub fleet: Fleet<StoredMemory<M>>,
    pub rollouts: Rollouts<StoredMemory<M>>,
    pub proxy_audit: ProxyAudit<StoredMemory<M>>,
    backup: BackupSessions,
}

impl<M: Memory + Clone> State<M> {
    /// Fresh install on empty stable memory, by `installer`.
    pub fn init(memory: M, arg: InitArg, installer: Principal) -> Result<Self, InitError> {
        let admins = arg.admins.unwrap_or_else(|| vec![installer]);
        if admins.is_empty() {
            return Err(InitError::NoAdmins);
        }
        let mut state = Self::with_memories(Memories::format(memory));
        let governance = state
            .govern(GovernanceUpdate {
                governance: arg.governance,
                governance_only: arg.governance_only,
                require_blessed_releases: arg.require_blessed_releases,
            })
            .map_err(InitError::Governance)?;
        state.set_dashboard(arg.dashboard);
        for admin in admins.into_iter().chain(governance) {
            state
                .roles
                .grant(admin, Role::Admin)
                .map_err(InitError::Admin)?;
        }
        Ok(state)
    }

    /// Upgrade: reopens the state the previous installation left in stable memory. Reads only
    /// the structures' headers, so its cost does not depend on how much is stored.
    /// Refuses a journal that this build's engine would replay differently.
    pub fn post_upgrade(memory: M, arg: UpgradeArg) -> Result<Self, UpgradeError> {
        let mut state = Self::with_memories(Memories::open(memory).map_err(UpgradeError::Layout)?);
        state
            .memories
            .journal_writer()
            .check(state.rollouts.journal_lines())
            .map_err(UpgradeError::Layout)?;
        state.memories.record_this_build();
        let governance = state
            .govern(GovernanceUpdate {
                governance: arg.governance,
                governance_only: arg.governance_only,
                require_blessed_releases: arg.require_blessed_releases,
            })
            .map_err(UpgradeError::Governance)?;
        state.set_dashboard(arg.dashboard);
        for admin in arg
            .add_admins
            .unwrap_or_default()
            .into_iter()
            .chain(governance)
        {
            state
                .roles
                .grant(admin, Role::Admin)
                .map_err(UpgradeError::Admin)?;
        }
        Ok(state)
    }

    /// Who governs the deployer, see [`GovernanceSettings`].
    pub fn governance(&self) -> GovernanceSettings {
        self.governance.get().0.clone()
    }

    /// What the HTTP views show anyone, see [`DashboardSettings`].
    pub fn dashboard(&self) -> DashboardSettings {
        self.dashboard.get().0.clone()
    }

    fn set_dashboard(&mut self, settings: Option<DashboardSettings>) {
        if let Some(settings) = settings {
            self.dashboard.set(Cbor(settings));
        }
    }

    /// Refuses `caller` the `method` unless its role allows it and, in governance-only mode,
    /// it is governance.
    pub fn authorize(&self, caller: Principal, method: Method) -> Result<(), Error> {
        // The roles themselves are being written then: any caller may only make the commit an
        // admin began go on.
        if let Some(writing) = self.restore_being_written() {
            return match method {
                Method::CommitRestore => Ok(()),
                _ => Err(writing),
            };
        }
        self.governance().check(caller, method)?;
        access::authorize(&self.roles, caller, method)
    }

    /// Blesses a release for rollouts by `caller` at `now`, or withdraws its blessing.
    pub fn set_release_blessing(
        &mut self,
        arg: &SetReleaseBlessingArg,
        caller: Principal,
        now: u64,
    ) -> Result<(), Error> {
        let blessing = arg.blessed.then_some(Blessing {
            blessed_at: now,
            blessed_by: caller,
        });
        self.release_store.set_blessing(&arg.sha256, blessing)
    }

    /// Refuses a rollout of `release` unless it is blessed, when the deployer requires it.
    pub fn check_blessing(&self, release: &ReleaseSelector) -> Result<(), Error> {
        if self.governance().require_blessed_releases {
            self.release_store.require_blessing(release)?;
        }
        Ok(())
    }

    /// Records the governance settings an install or upgrade asked for; returns the governance
    /// principal newly set, to be made an admin.
    pub(crate) fn govern(&mut self, update: GovernanceUpdate) -> Result<Option<Principal>, String> {
        let governance = update.governance;
        let updated = self.governance().updated(update)?;
        self.governance.set(Cbor(updated));
        Ok(governance)
    }

    fn with_memories(memories: Memories<M>) -> Self {
        Self {
            governance: StableCell::init(
                memories.governance(),
                Cbor(GovernanceSettings::default()),
            ),
            dashboard: StableCell::init(memories.dashboard(), Cbor(DashboardSettings::default())),
            roles: Roles::init(memories.roles()),
            proxy_audit: ProxyAudit::init(memories.proxy_audit()),
            release_store: ReleaseStore::open(&memories),
            fleet: Fleet::init(FleetMemories {
                children: memories.fleet_children(),
                index: memories.fleet_index(),
                subnets: memories.fleet_subnets(),
                composition: memories.fleet_counts(),
            }),
            rollouts: Rollouts::init(RolloutMemories {
                rollouts: memories.rollouts(),
                active: memories.active_rollouts(),
                overviews: memories.rollout_overviews(),
                journal_index: memories.journal(),
                journal_data: memories.journal_data(),
                events: GenerationMemories {
                    index: memories.events(),
                    data: memories.events_data(),
                    base: memories.events_base(),
                },
                events_second: GenerationMemories {
                    index: memories.events_second(),
                    data: memories.events_second_data(),
                    base: memories.events_second_base(),
                },
                stores: memories.store_canisters(),
                finished_records: memories.finished_rollouts(),
                finished_children: memories.finished_children(),
                checkpoint_children: memories.checkpoint_children(),
            }),
            memories,
            backup: BackupSessions::default(),
        }
    }

    /// Gives back the memories, every structure over them closed.
    fn into_memories(self) -> Memories<M> {
        self.memories
    }

    pub fn storage_stats(&self, now: u64) -> StorageStats {
        StorageStats {
            stable_memory_bytes: self.memories.claimed_bytes(),
            ..self.release_store.storage_stats(now)
        }
    }
}

mod export_restore;

#[cfg(test)]
mod tests;
