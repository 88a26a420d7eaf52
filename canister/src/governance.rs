//! Rollouts by proposal: what a DAO votes on and then executes, through SNS generic functions
//! or an Orbit station's external calls. Each action is a pair of methods taking the same
//! Candid argument, the proposal's payload: `X_validate(arg)` renders it for voters
//! (`variant { Ok : text; Err : text }`), `X(arg)` executes it and rejects on any failure
//! (SNS ignores what an executed method answers, so an `Err` reply would show as executed).
//!
//! A rollout proposal pins its plan by hash ([`plan_sha256`]): the children in rollout order,
//! the module each runs, the release and the policy with its install argument. Voters see the
//! hash in the render; when the proposal executes, days later, the deployer plans again and
//! refuses (`PlanChanged`) unless it gets the same hash: a child adopted, released or upgraded
//! meanwhile, a release deleted, changes what was voted on.
//!
//! Renders are short Markdown that reads as plain text, at most [`MAX_RENDER_BYTES`]: the
//! release by name, version, module hash, size and chunks; the install argument by hash and
//! size; the targets counted by the module they run now; the waves and the policy; the plan's
//! hash. Never the module itself.
//!
//! Plain Rust: the entry points pass the state's plan and summaries in.

use std::collections::BTreeMap;
use std::fmt::Write;

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use ic_stable_structures::Memory;

use crate::access::Method;
use crate::engine::{
    ChildId, Command, FailureBudget, ModuleHash, OnFailure, Operation, Plan, Policy,
};
use crate::error::{Error, ErrorKind};
use crate::fleet::{FleetError, Label, Selector, MAX_ADOPTED_PER_CALL};
use crate::hash::{hex, Sha256Hash};
use crate::releases::{Blessing, ReleaseSelector, SetReleaseBlessingArg};
use crate::roles::Role;
use crate::rollouts::{
    AdoptChildrenArg, RestoreChildArg, RolloutInfo, StartBackupRunArg, StartRolloutArg,
};
use crate::state::State;
use crate::uploads::UploadSettingsUpdate;

/// Who governs the deployer: the SNS governance canister or the Orbit station that executes its
/// proposals (an admin), and whether the deployer is governance-only: then every method that
/// changes anything refuses every other caller, admins included (reads stay open). Set by the
/// controllers at install or upgrade. Stored as CBOR (memory 23); the serde names are stored.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct GovernanceSettings {
    pub governance: Option<Principal>,
    #[serde(default)]
    pub governance_only: bool,
    /// Rollouts only of blessed releases (see [`crate::releases::Blessing`]).
    #[serde(default)]
    pub require_blessed_releases: bool,
}

/// What an install or upgrade asks to change in the [`GovernanceSettings`]; `None` keeps a
/// setting as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GovernanceUpdate {
    pub governance: Option<Principal>,
    pub governance_only: Option<bool>,
    pub require_blessed_releases: Option<bool>,
}

impl GovernanceSettings {
    /// Refuses `caller` a method that changes state while the deployer is governance-only and
    /// the caller is not governance; reads (queries, exports) pass.
    pub fn check(&self, caller: Principal, method: Method) -> Result<(), ErrorKind> {
        match self.governance {
            Some(governance)
                if self.governance_only && method.changes_state() && caller != governance =>
            {
                Err(ErrorKind::GovernanceOnly { governance })
            }
            _ => Ok(()),
        }
    }

    /// The settings after an install or upgrade asked for `update`; governance-only needs a
    /// governance principal.
    pub fn updated(&self, update: GovernanceUpdate) -> Result<GovernanceSettings, String> {
        let updated = GovernanceSettings {
            governance: update.governance.or(self.governance),
            governance_only: update.governance_only.unwrap_or(self.governance_only),
            require_blessed_releases: update
                .require_blessed_releases
                .unwrap_or(self.require_blessed_releases),
        };
        if updated.governance_only && updated.governance.is_none() {
            return Err(
                "governance_only needs a governance principal: set `governance` to the \
                        SNS governance canister or the Orbit station"
                    .to_string(),
            );
        }
        Ok(updated)
    }
}

/// The most bytes a render takes: proposals live in governance's heap and its listings.
pub const MAX_RENDER_BYTES: usize = 4 * 1024;
/// The most module lines ("n children from ...") a render lists; the rest are summed.
const MAX_FROM_LINES: usize = 12;
/// The most modules a preview lists its targets by; the rest are counted together. A fleet
/// whose children each ran a module of their own would otherwise list one entry a child: about
/// 80 bytes each, past a reply's 2 MiB near 25,000 children, and a release name looked up for
/// each.
pub const MAX_FROM_MODULES: usize = 100;

/// The payload of a rollout proposal: the rollout, and the hash of the plan voters saw
/// (`preview_rollout` or the validator's render tells it).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RolloutProposal {
    pub rollout: StartRolloutArg,
    pub plan_sha256: ByteBuf,
}

/// The payload of a proposal to pause, resume, abort or roll back a rollout.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlProposal {
    pub rollout_id: u64,
    pub command: Command,
}

/// What a rollout would do if started now, and the hash that pins it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RolloutPreview {
    pub release_name: String,
    pub release_version: String,
    pub module_sha256: ByteBuf,
    pub module_size: u64,
    pub chunk_count: u32,
    pub install_arg_sha256: ByteBuf,
    pub install_arg_size: u64,
    /// Children the rollout would upgrade.
    pub targets: u32,
    /// Selected children already on the release.
    pub skipped: u32,
    /// The targets by the module they run now, most first: at most [`MAX_FROM_MODULES`].
    pub from: Vec<FromModule>,
    /// The targets that run the modules left out of `from`, if any.
    pub from_others: Option<OtherModules>,
    /// Children per wave, the canary first.
    pub wave_sizes: Vec<u32>,
    /// The policy, its install argument left out (shown by hash and size above).
    pub policy: Policy,
    pub plan_sha256: ByteBuf,
    /// Whether, since when and by whom the release is blessed for rollouts.
    pub release_blessing: Option<Blessing>,
    /// When `prepare_rollout` planned it; `None`: planned by the call that answers it.
    pub prepared_at: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FromModule {
    /// Null: no module installed.
    pub module_sha256: Option<ByteBuf>,
    /// `name@version` when the module is a release.
    pub release: Option<String>,
    pub children: u32,
}

/// Targets counted together: the modules they run, and how many they are.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OtherModules {
    pub modules: u32,
    pub children: u32,
}

/// A plan's hash, made as its children come (a plan of 100,000 children is made over several
/// messages): SHA-256 of the CBOR of a map of its release (the module hash, as bytes, or null),
/// its policy (install argument included) and its children in order, each an array of its id
/// and the module it runs. CBOR is made of its parts, so the parts are hashed as they come:
/// the bytes are those `ciborium` gives the whole (tested), and pinned hashes stay valid.
pub struct PlanHasher {
    hasher: Sha256,
    children_left: u32,
}

impl PlanHasher {
    /// Begins the hash of a plan of `children` children.
    pub fn new(operation: &Operation, policy: &Policy, children: u32) -> Self {
        let mut hasher = Sha256::new();
        // A map of three entries, in the order of the fields they were first declared in.
        hasher.update([0xa3]);
        hasher.update(cbor(&"release"));
        hasher.update(cbor(
            &operation.release().map(|release| &release.module_hash),
        ));
        hasher.update(cbor(&"policy"));
        hasher.update(cbor(policy));
        hasher.update(cbor(&"children"));
        hasher.update(cbor_array_header(children));
        Self {
            hasher,
            children_left: children,
        }
    }

    /// The next child in rollout order.
    ///
    /// # Panics
    /// On more children than [`Self::new`] was told.
    pub fn push(&mut self, child: &ChildId, module_hash: &Option<ModuleHash>) {
        self.children_left = self
            .children_left
            .checked_sub(1)
            .expect("no more children than announced");
        self.hasher.update(cbor(&(child, module_hash)));
    }

    /// # Panics
    /// On fewer children than [`Self::new`] was told.
    pub fn finish(self) -> Sha256Hash {
        assert_eq!(self.children_left, 0, "as many children as announced");
        self.hasher.finalize().into()
    }
}

fn cbor(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("a plan's parts are CBOR");
    bytes
}

/// The head of a definite CBOR array of `len` items (RFC 8949, section 3: major type 4, the
/// length in the shortest form).
fn cbor_array_header(len: u32) -> Vec<u8> {
    const ARRAY: u8 = 4 << 5;
    match len {
        0..=23 => vec![ARRAY | len as u8],
        24..=0xff => vec![ARRAY | 24, len as u8],
        0x100..=0xffff => [&[ARRAY | 25][..], &(len as u16).to_be_bytes()].concat(),
        _ => [&[ARRAY | 26][..], &len.to_be_bytes()].concat(),
    }
}

/// The plan's hash (see [`PlanHasher`]).
pub fn plan_sha256(plan: &Plan) -> Sha256Hash {
    let mut hasher = PlanHasher::new(&plan.operation, &plan.policy, plan.children.len() as u32);
    for child in &plan.children {
        hasher.push(&child.id, &child.module_hash);
    }
    hasher.finish()
}

/// Targets by the module they run now (`counts`: how many run each), most first (a tie by
/// module), at most [`MAX_FROM_MODULES`], and the others counted together; `release_name`
/// names the modules listed that are releases.
pub fn targets_by_module(
    counts: BTreeMap<Option<ModuleHash>, u32>,
    release_name: impl Fn(&ModuleHash) -> Option<String>,
) -> (Vec<FromModule>, Option<OtherModules>) {
    let mut counts: Vec<(Option<ModuleHash>, u32)> = counts.into_iter().collect();
    let most_first = |a: &(Option<ModuleHash>, u32), b: &(Option<ModuleHash>, u32)| {
        b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
    };
    let others = (counts.len() > MAX_FROM_MODULES).then(|| {
        // Only the listed ones sorted: a selection, then a sort of 100.
        counts.select_nth_unstable_by(MAX_FROM_MODULES, most_first);
        let rest = counts.split_off(MAX_FROM_MODULES);
        OtherModules {
            modules: rest.len() as u32,
            children: rest.iter().map(|(_, children)| children).sum(),
        }
    });
    counts.sort_unstable_by(most_first);
    let from = counts
        .into_iter()
        .map(|(module, children)| FromModule {
            module_sha256: module.map(|module| ByteBuf::from(module.0.to_vec())),
            release: module.as_ref().and_then(&release_name),
            children,
        })
        .collect();
    (from, others)
}

/// The validator's render of a rollout proposal.
pub fn render_rollout(preview: &RolloutPreview) -> String {
    let mut text = String::new();
    let policy = &preview.policy;
    let _ = writeln!(
        text,
        "## Roll out {} {} to {} children\n",
        preview.release_name, preview.release_version, preview.targets
    );
    let _ = writeln!(
        text,
        "- Release: {} {}, module SHA-256 {}, {} bytes in {} chunk(s)",
        preview.release_name,
        preview.release_version,
        hex(&preview.module_sha256),
        preview.module_size,
        preview.chunk_count
    );
    if let Some(blessing) = &preview.release_blessing {
        let _ = writeln!(text, "- Blessed for rollouts {blessing}");
    }
    let _ = writeln!(
        text,
        "- Install argument: SHA-256 {}, {} bytes",
        hex(&preview.install_arg_sha256),
        preview.install_arg_size
    );
    let _ = writeln!(
        text,
        "- Targets: {} children ({} selected children already run the release)",
        preview.targets, preview.skipped
    );
    for from in preview.from.iter().take(MAX_FROM_LINES) {
        let module = match (&from.release, &from.module_sha256) {
            (Some(release), Some(hash)) => format!("{release} ({})", hex(hash)),
            (None, Some(hash)) => format!("module {}", hex(hash)),
            _ => "no module".to_string(),
        };
        let _ = writeln!(text, "  - {} from {module}", from.children);
    }
    let listed_beyond = preview.from.iter().skip(MAX_FROM_LINES);
    let counted = preview.from_others.iter();
    let (modules, rest) = listed_beyond
        .map(|from| (1, from.children))
        .chain(counted.map(|others| (others.modules, others.children)))
        .fold((0, 0), |(modules, rest), (more, children)| {
            (modules + more, rest + children)
        });
    if modules > 0 {
        let _ = writeln!(text, "  - {rest} from {modules} other modules");
    }
    let _ = writeln!(text, "- Waves: {}", waves_text(&preview.wave_sizes));
    let stopped = policy
        .max_stopped_per_subnet
        .map_or("no limit".to_string(), |max| max.to_string());
    let _ = writeln!(
        text,
        "- Concurrency {}, children stopped per subnet: {stopped}, bake {} s between waves, \
         snapshot before install: {}",
        policy.max_concurrency,
        policy.bake_nanos / 1_000_000_000,
        match (policy.snapshot_before_install, policy.keep_snapshots) {
            (false, _) => "no".to_string(),
            (true, None) => "yes".to_string(),
            (true, Some(keep)) => format!("yes, the newest {keep} of the deployer's kept"),
        }
    );
    let _ = writeln!(
        text,
        "- On failure: {}; failure budget per wave: {}; up to {} attempts per step",
        match policy.on_failure {
            OnFailure::RollBack => "roll the child back from its snapshot",
            OnFailure::LeaveStopped => "leave the child stopped",
        },
        match policy.failure_budget {
            FailureBudget::Count(count) => format!("{count} children"),
            FailureBudget::Percent(percent) => format!("{percent}%"),
        },
        policy.retry.max_attempts
    );
    match policy.gate_overrides.as_deref().unwrap_or_default() {
        [] => text.push_str(
            "- Upgrade gates: all checked (known modules, higher versions, Candid compatibility)\n",
        ),
        overrides => {
            for skipped in overrides {
                let _ = writeln!(
                    text,
                    "- Upgrade gate {:?} NOT checked, because: {}",
                    skipped.gate, skipped.reason
                );
            }
        }
    }
    let _ = writeln!(
        text,
        "\nPlan SHA-256: {}\n\nExecution refuses unless the fleet and the release still give \
         this plan.",
        hex(&preview.plan_sha256)
    );
    if let Some(prepared_at) = preview.prepared_at {
        // The validator answered from a kept plan: say how old what voters read is.
        let _ = writeln!(text, "The plan was prepared at {prepared_at} ns.");
    }
    cut(text)
}

/// The payload of a proposal for any other action a DAO votes on: one pair of methods,
/// `apply_by_proposal(_validate)`, registered once, serves them all.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum GovernedAction {
    DeleteRelease {
        sha256: ByteBuf,
    },
    AddRole {
        principal: Principal,
        role: Role,
    },
    RemoveRole {
        principal: Principal,
        role: Role,
    },
    ReleaseChild {
        canister_id: Principal,
    },
    SetLabels {
        canister_id: Principal,
        labels: Vec<Label>,
    },
    UnregisterChunkStore {
        subnet: Principal,
    },
    SetUploadSettings(UploadSettingsUpdate),
    /// Carried out by the entry point, which reads each canister's status first.
    AdoptChildren(AdoptChildrenArg),
    /// Carried out by the entry point, which reads the canister's status first.
    RegisterChunkStore {
        subnet: Principal,
        canister_id: Principal,
    },
    SetReleaseBlessing(SetReleaseBlessingArg),
    /// A backup run, as `start_backup_run` starts it.
    StartBackupRun(StartBackupRunArg),
    /// A child restored to a snapshot, as `restore_child` starts it.
    RestoreChild(RestoreChildArg),
}

impl GovernedAction {
    /// The method whose role (and governance-only check) the action needs.
    pub fn method(&self) -> Method {
        match self {
            GovernedAction::DeleteRelease { .. } => Method::DeleteRelease,
            GovernedAction::AddRole { .. } => Method::AddRole,
            GovernedAction::RemoveRole { .. } => Method::RemoveRole,
            GovernedAction::ReleaseChild { .. } => Method::ReleaseChild,
            GovernedAction::SetLabels { .. } => Method::SetLabels,
            GovernedAction::UnregisterChunkStore { .. } => Method::UnregisterChunkStore,
            GovernedAction::SetUploadSettings(_) => Method::SetUploadSettings,
            GovernedAction::AdoptChildren(_) => Method::AdoptChildren,
            GovernedAction::RegisterChunkStore { .. } => Method::RegisterChunkStore,
            GovernedAction::SetReleaseBlessing(_) => Method::SetReleaseBlessing,
            GovernedAction::StartBackupRun(_) => Method::StartBackupRun,
            GovernedAction::RestoreChild(_) => Method::RestoreChild,
        }
    }

    /// Carries the action out on the state, as its own method does. The actions that read a
    /// canister's status first (adoptions, chunk stores) are carried out by the entry point:
    /// here they are only checked as far as the state tells, which is what the validator
    /// refuses before the vote. `caller` and `now` are who carries it out, and when.
    pub fn apply<M: Memory + Clone>(
        &self,
        state: &mut State<M>,
        caller: Principal,
        now: u64,
    ) -> Result<(), Error> {
        let fleet_error = |error| Error::from(ErrorKind::Fleet(error));
        match self {
            GovernedAction::DeleteRelease { sha256 } => {
                state.release_store.delete_release(sha256, &state.rollouts)
            }
            GovernedAction::AddRole { principal, role } => state.roles.grant(*principal, *role),
            GovernedAction::RemoveRole { principal, role } => state.roles.revoke(*principal, *role),
            GovernedAction::ReleaseChild { canister_id } => state
                .fleet
                .release(canister_id)
                .map(drop)
                .map_err(fleet_error),
            GovernedAction::SetLabels {
                canister_id,
                labels,
            } => state
                .fleet
                .set_labels(canister_id, labels)
                .map_err(fleet_error),
            GovernedAction::UnregisterChunkStore { subnet } => {
                Ok(state.rollouts.unregister_store(*subnet).map(drop)?)
            }
            GovernedAction::SetUploadSettings(update) => {
                state.release_store.update_upload_settings(update).map(drop)
            }
            GovernedAction::SetReleaseBlessing(arg) => state.set_release_blessing(arg, caller, now),
            GovernedAction::StartBackupRun(arg) => {
                let State {
                    release_store,
                    fleet,
                    rollouts,
                    ..
                } = state;
                rollouts
                    .start_backup(fleet, release_store, arg.clone(), caller, now)
                    .map(drop)
            }
            GovernedAction::RestoreChild(arg) => state
                .rollouts
                .start_restore(&mut state.fleet, arg.clone(), caller, now)
                .map(drop),
            GovernedAction::AdoptChildren(arg) => {
                if arg.canister_ids.len() > MAX_ADOPTED_PER_CALL {
                    return Err(fleet_error(FleetError::TooManyToAdopt {
                        count: arg.canister_ids.len() as u64,
                        max: MAX_ADOPTED_PER_CALL as u64,
                    }));
                }
                for &canister_id in &arg.canister_ids {
                    if let Ok(child) = state.fleet.info(&canister_id) {
                        return Err(fleet_error(FleetError::AlreadyAdopted {
                            canister_id,
                            adopted_at: child.adopted_at,
                            adopted_by: child.adopted_by,
                        }));
                    }
                }
                Ok(())
            }
            GovernedAction::RegisterChunkStore { canister_id, .. } => {
                match state.fleet.info(canister_id) {
                    Ok(child) => Err(fleet_error(FleetError::AlreadyAdopted {
                        canister_id: *canister_id,
                        adopted_at: child.adopted_at,
                        adopted_by: child.adopted_by,
                    })),
                    Err(_) => Ok(()),
                }
            }
        }
    }

    /// The validator's render, from the state before the action.
    pub fn render<M: Memory + Clone>(&self, state: &State<M>) -> String {
        let text = match self {
            GovernedAction::DeleteRelease { sha256 } => {
                let selector = ReleaseSelector::Sha256(sha256.clone());
                let named = match state.release_store.get_release(&selector) {
                    Ok(release) => format!(
                        "{} {}, {} bytes",
                        release.summary.name, release.summary.version, release.summary.size
                    ),
                    Err(_) => "not a release".to_string(),
                };
                format!(
                    "## Delete release {named}\n\n- Module SHA-256 {}\n- Its chunks are freed \
                     unless another release shares them\n",
                    hex(sha256)
                )
            }
            GovernedAction::SetReleaseBlessing(arg) => render_blessing(state, arg),
            GovernedAction::StartBackupRun(arg) => {
                let children = match &arg.selector {
                    Selector::All => "every child".to_string(),
                    Selector::Labels(labels) => {
                        let labels: Vec<String> = labels
                            .iter()
                            .map(|label| format!("{}={}", label.key, label.value))
                            .collect();
                        format!("the children labelled {}", labels.join(", "))
                    }
                    Selector::Explicit(ids) => format!("{} named children", ids.len()),
                };
                let stop = match arg.stop_children {
                    true => "each stopped for its snapshot and started again",
                    false => "each snapshotted as it runs",
                };
                format!(
                    "## Back up {children}

- A snapshot of each, {stop}; nothing installed
"
                )
            }
            GovernedAction::RestoreChild(arg) => format!(
                "## Restore child {} to snapshot {}

- The child is stopped, the snapshot \
                 loaded (its module and memory replace the child's), the child started\n",
                arg.canister_id,
                hex(&arg.snapshot_id)
            ),
            GovernedAction::AddRole { principal, role } => {
                format!("## Grant the {role} role to {principal}\n")
            }
            GovernedAction::RemoveRole { principal, role } => {
                format!("## Revoke the {role} role from {principal}\n")
            }
            GovernedAction::ReleaseChild { canister_id } => format!(
                "## Stop managing child {canister_id}\n\n- The deployer forgets it (it stays \
                 a controller: remove it with the child's other controllers)\n"
            ),
            GovernedAction::SetLabels {
                canister_id,
                labels,
            } => {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|label| format!("{}={}", label.key, label.value))
                    .collect();
                format!("## Label child {canister_id}\n\n- {}\n", labels.join(", "))
            }
            GovernedAction::UnregisterChunkStore { subnet } => {
                format!("## Unregister the chunk store of subnet {subnet}\n")
            }
            GovernedAction::AdoptChildren(arg) => {
                let subnet = arg
                    .subnet
                    .map_or("the deployer's own".to_string(), |subnet| subnet.to_text());
                let mut text = format!(
                    "## Adopt {} children\n\n- Subnet: {subnet}\n",
                    arg.canister_ids.len()
                );
                if !arg.labels.is_empty() {
                    let labels: Vec<String> = arg
                        .labels
                        .iter()
                        .map(|label| format!("{}={}", label.key, label.value))
                        .collect();
                    let _ = writeln!(text, "- Labels: {}", labels.join(", "));
                }
                text.push_str(
                    "- Each must be controlled by the deployer; execution fails, adopting \
                     none, if any is refused\n\n",
                );
                for canister_id in &arg.canister_ids {
                    let _ = writeln!(text, "- {canister_id}");
                }
                text
            }
            GovernedAction::RegisterChunkStore {
                subnet,
                canister_id,
            } => format!(
                "## Register {canister_id} as the chunk store of subnet {subnet}\n\n- It \
                 must be empty and controlled by the deployer; chunked installs on that subnet \
                 go through it\n"
            ),
            GovernedAction::SetUploadSettings(update) => {
                let now = state.release_store.upload_settings();
                format!(
                    "## Change the upload settings\n\n- Upload time to live: {} s -> {}\n- Open \
                     uploads: {} -> {}\n- Staged bytes: {} -> {}\n- Releases: {} -> {}\n",
                    now.upload_ttl_seconds,
                    changed(update.upload_ttl_seconds),
                    now.max_open_uploads,
                    changed(update.max_open_uploads),
                    now.max_staged_bytes,
                    changed(update.max_staged_bytes),
                    now.max_releases,
                    changed(update.max_releases),
                )
            }
        };
        cut(text)
    }
}

/// What blessing (or withdrawing the blessing of) a release means for the rollouts to come.
fn render_blessing<M: Memory + Clone>(state: &State<M>, arg: &SetReleaseBlessingArg) -> String {
    let selector = ReleaseSelector::Sha256(arg.sha256.clone());
    let Ok(release) = state.release_store.get_release(&selector) else {
        return format!(
            "## Bless a release that does not exist\n\n- Module SHA-256 {}\n",
            hex(&arg.sha256)
        );
    };
    let summary = &release.summary;
    let required = if state.governance().require_blessed_releases {
        "required: rollouts of releases that are not blessed are refused"
    } else {
        "not required now (require_blessed_releases is off)"
    };
    let (title, effect) = if arg.blessed {
        (
            "Bless",
            "Rollouts of it may then be started (by proposal when the deployer is \
             governance-only), each still checked by the upgrade gates",
        )
    } else {
        (
            "Withdraw the blessing of",
            "Rollouts of it are then refused; rollouts already started go on",
        )
    };
    let now = match release.blessing {
        Some(blessing) => format!("blessed {blessing}"),
        None => "not blessed".to_string(),
    };
    format!(
        "## {title} release {} {} for rollouts\n\n- Module SHA-256 {}\n- {} bytes in {} \
         chunks; Candid service: {}\n- Now: {now}\n- Blessing: {required}\n- {effect}\n",
        summary.name,
        summary.version,
        hex(&summary.sha256),
        summary.size,
        summary.chunk_count,
        if summary.has_candid_service {
            "yes, checked against the children's by the Candid gate"
        } else {
            "none"
        },
    )
}

fn changed(value: Option<impl std::fmt::Display>) -> String {
    value.map_or("unchanged".to_string(), |value| value.to_string())
}

/// The validator's render of a proposal to control a rollout, as it stands now.
pub fn render_control(proposal: &ControlProposal, rollout: &RolloutInfo) -> String {
    let action = match proposal.command {
        Command::Pause => "Pause",
        Command::Resume => "Resume",
        Command::Abort => "Abort",
        Command::RollBackAll => "Roll back every child upgraded by",
    };
    let counts = &rollout.summary.counts;
    cut(format!(
        "## {action} rollout {}\n\n- Release: module SHA-256 {}\n- Now: {:?}; {} upgraded, {} \
         failed, {} rolled back, {} in flight, {} not started\n",
        proposal.rollout_id,
        hex(&rollout.release_sha256),
        rollout.summary.phase,
        counts.upgraded,
        counts.failed,
        counts.rolled_back,
        counts.active,
        counts.queued + counts.not_started,
    ))
}

fn waves_text(sizes: &[u32]) -> String {
    let mut parts = sizes.iter().enumerate().map(|(index, size)| match index {
        0 => format!("canary of {size}"),
        _ => size.to_string(),
    });
    let first = parts.next().unwrap_or_else(|| "none".to_string());
    let rest: Vec<String> = parts.collect();
    if rest.is_empty() {
        first
    } else {
        format!("{first}, then {}", rest.join(", "))
    }
}

/// Keeps a render within [`MAX_RENDER_BYTES`], on a character boundary.
fn cut(text: String) -> String {
    crate::text::cut_with_ellipsis(text, MAX_RENDER_BYTES)
}

#[cfg(test)]
mod tests;
