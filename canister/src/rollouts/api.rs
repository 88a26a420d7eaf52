//! The Candid shapes of the rollout endpoints: what `start_rollout` takes and what dashboards
//! read.

use candid::{CandidType, Deserialize, Principal};
use serde_bytes::ByteBuf;

use crate::engine::{
    ChildState, EventKind, FailureBudget, GateOverride, InstallOptions, OnFailure, Policy,
    RetryPolicy, RolloutPhase, StepRecord, Summary, Verification, WavePlan,
};
use crate::fleet::{Label, Selector};
use crate::releases::ReleaseSelector;

/// How `start_rollout` sees the policy: every field may be left out for its default
/// ([`Policy::default`]).
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyArg {
    pub waves: Option<WavePlan>,
    pub max_concurrency: Option<u32>,
    /// Left out: no limit per subnet.
    pub max_stopped_per_subnet: Option<u32>,
    pub bake_nanos: Option<u64>,
    pub snapshot_before_install: Option<bool>,
    /// Snapshots the deployer keeps per child (1 to 10); left out: replaced only at the IC's
    /// maximum.
    pub keep_snapshots: Option<u8>,
    pub install: Option<InstallOptions>,
    pub verification: Option<Verification>,
    pub retry: Option<RetryPolicy>,
    pub on_failure: Option<OnFailure>,
    pub failure_budget: Option<FailureBudget>,
    /// Upgrade gates not to check, each with a reason (kept with the rollout).
    pub gate_overrides: Option<Vec<GateOverride>>,
}

/// What a policy may ask for. Durations are bounded so that `now + wait` never nears
/// `u64::MAX` and no rollout waits for months; retries are bounded and spaced so that a child
/// that keeps failing transiently cannot keep the deployer paying in a tight loop; the texts
/// and lists a rollout keeps (and shows in every `RolloutInfo`) are bounded so that its reads
/// stay small.
pub const MAX_BAKE_NANOS: u64 = 30 * DAY_NANOS;
pub const MAX_BACKOFF_NANOS: u64 = DAY_NANOS;
pub const MIN_BACKOFF_NANOS: u64 = 100_000_000;
pub const MAX_ATTEMPTS: u32 = 100;
pub const MAX_WAVES: usize = 100;
pub const MAX_HEALTH_METHOD_BYTES: usize = 256;
pub const MAX_INSTALL_ARG_BYTES: usize = 64 * 1024;
pub const MAX_GATE_REASON_BYTES: usize = 512;
const DAY_NANOS: u64 = 24 * 3600 * 1_000_000_000;

impl PolicyArg {
    /// The policy, with defaults for what was left out; `Err` says which bound a field breaks.
    pub fn into_policy(self) -> Result<Policy, String> {
        let policy = self.with_defaults();
        let retry = &policy.retry;
        if policy.bake_nanos > MAX_BAKE_NANOS {
            return Err(format!(
                "bake_nanos is {}: bake at most {MAX_BAKE_NANOS} ns (30 days)",
                policy.bake_nanos
            ));
        }
        if retry.max_attempts > MAX_ATTEMPTS {
            return Err(format!(
                "retry.max_attempts is {}: allow at most {MAX_ATTEMPTS}",
                retry.max_attempts
            ));
        }
        if retry.max_attempts > 1 && retry.base_backoff_nanos < MIN_BACKOFF_NANOS {
            return Err(format!(
                "retry.base_backoff_nanos is {}: retries wait at least {MIN_BACKOFF_NANOS} ns \
                 (100 ms)",
                retry.base_backoff_nanos
            ));
        }
        if retry.max_backoff_nanos > MAX_BACKOFF_NANOS {
            return Err(format!(
                "retry.max_backoff_nanos is {}: wait at most {MAX_BACKOFF_NANOS} ns (1 day)",
                retry.max_backoff_nanos
            ));
        }
        if policy.waves.then.len() > MAX_WAVES {
            return Err(format!(
                "{} waves after the canary: plan at most {MAX_WAVES}",
                policy.waves.then.len()
            ));
        }
        let health_method = policy.verification.health_method.as_deref().unwrap_or("");
        if health_method.len() > MAX_HEALTH_METHOD_BYTES {
            return Err(format!(
                "the health method name has {} bytes: at most {MAX_HEALTH_METHOD_BYTES}",
                health_method.len()
            ));
        }
        if policy.install.arg.len() > MAX_INSTALL_ARG_BYTES {
            return Err(format!(
                "the install argument has {} bytes: at most {MAX_INSTALL_ARG_BYTES}",
                policy.install.arg.len()
            ));
        }
        let overrides = policy.gate_overrides.as_deref().unwrap_or_default();
        for (index, gate_override) in overrides.iter().enumerate() {
            let gate = gate_override.gate;
            let reason = gate_override.reason.trim();
            if reason.is_empty() || reason.len() > MAX_GATE_REASON_BYTES {
                return Err(format!(
                    "the override of the {gate:?} gate needs a reason of 1 to \
                     {MAX_GATE_REASON_BYTES} bytes: say why the rollout may skip it"
                ));
            }
            if overrides[..index]
                .iter()
                .any(|earlier| earlier.gate == gate)
            {
                return Err(format!(
                    "the {gate:?} gate is overridden twice: give it once"
                ));
            }
        }
        Ok(policy)
    }

    fn with_defaults(self) -> Policy {
        let default = Policy::default();
        Policy {
            waves: self.waves.unwrap_or(default.waves),
            max_concurrency: self.max_concurrency.unwrap_or(default.max_concurrency),
            max_stopped_per_subnet: self.max_stopped_per_subnet,
            bake_nanos: self.bake_nanos.unwrap_or(default.bake_nanos),
            snapshot_before_install: self
                .snapshot_before_install
                .unwrap_or(default.snapshot_before_install),
            keep_snapshots: self.keep_snapshots,
            install: self.install.unwrap_or(default.install),
            verification: self.verification.unwrap_or(default.verification),
            retry: self.retry.unwrap_or(default.retry),
            on_failure: self.on_failure.unwrap_or(default.on_failure),
            failure_budget: self.failure_budget.unwrap_or(default.failure_budget),
            gate_overrides: self
                .gate_overrides
                .filter(|overrides| !overrides.is_empty()),
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AdoptChildrenArg {
    pub canister_ids: Vec<Principal>,
    /// The subnet the canisters run on; null for the deployer's own subnet.
    pub subnet: Option<Principal>,
    /// Labels every adopted canister starts with.
    pub labels: Vec<Label>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StartRolloutArg {
    pub release: ReleaseSelector,
    pub selector: Selector,
    /// Null for the default policy.
    pub policy: Option<PolicyArg>,
    /// When given, the rollout starts only if its plan still has this hash
    /// (`preview_rollout` tells it): what was reviewed or voted on is what runs.
    pub plan_sha256: Option<ByteBuf>,
}

/// A backup run: a snapshot of each selected child with the rollout engine's waves,
/// concurrency, retries and failure budget, and no install.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StartBackupRunArg {
    pub selector: Selector,
    /// Null for the default policy. Its `keep_snapshots` is the retention; `install` must be
    /// left at its default (nothing is installed); `snapshot_before_install` is taken as true.
    pub policy: Option<PolicyArg>,
    /// Stops each child for its snapshot and starts it again (a snapshot of a stopped canister
    /// holds no call half-processed); otherwise the running child is snapshotted as it serves.
    pub stop_children: bool,
}

/// A rollout as dashboards see it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RolloutInfo {
    pub rollout_id: u64,
    /// Empty unless the rollout is an upgrade.
    pub release_sha256: ByteBuf,
    /// `None` for an upgrade.
    pub operation: Option<RolloutOperation>,
    pub created_by: Principal,
    pub created_at: u64,
    /// `install.arg` is left empty: the argument (it may carry configuration or a secret) is
    /// shown by its hash and size (`None` only from release 0.1, which had neither).
    pub policy: Policy,
    pub install_arg_sha256: Option<ByteBuf>,
    pub install_arg_size: Option<u64>,
    pub summary: Summary,
}

/// A restore of one child to a snapshot of the operator's choice, journaled as a rollout: stop,
/// load the snapshot, start, verify it runs.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestoreChildArg {
    pub canister_id: Principal,
    /// As `list_canister_snapshots` (or `child_snapshots`) names it.
    pub snapshot_id: ByteBuf,
}

/// What a rollout that is no upgrade does.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RolloutOperation {
    /// A backup run (`start_backup_run`): a snapshot of each child, no install.
    Backup { stop_children: bool },
    /// A restore (`restore_child`): the snapshot loaded into the rollout's one child.
    RestoreChild { snapshot_id: ByteBuf },
}

#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRolloutsArg {
    /// Only rollouts with a smaller id: the `next_before` of the previous page.
    pub before: Option<u64>,
    pub limit: Option<u32>,
    pub phase: Option<RolloutPhaseFilter>,
    /// Only rollouts of this release (module SHA-256).
    pub release: Option<ByteBuf>,
}

/// Which rollouts a listing keeps, by phase.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutPhaseFilter {
    /// Not finished, whatever the phase.
    Active,
    Finished,
    Running,
    Paused,
    RollingBack,
    /// Aborting or aborted.
    Aborted,
    Completed,
    RolledBack,
}

impl RolloutPhaseFilter {
    pub fn matches(self, summary: &Summary) -> bool {
        let finished = summary.finished_at.is_some();
        match self {
            RolloutPhaseFilter::Active => !finished,
            RolloutPhaseFilter::Finished => finished,
            RolloutPhaseFilter::Running => summary.phase == RolloutPhase::Running,
            RolloutPhaseFilter::Paused => matches!(summary.phase, RolloutPhase::Paused(_)),
            RolloutPhaseFilter::RollingBack => summary.phase == RolloutPhase::RollingBack,
            RolloutPhaseFilter::Aborted => summary.phase == RolloutPhase::Aborted,
            RolloutPhaseFilter::Completed => summary.phase == RolloutPhase::Completed,
            RolloutPhaseFilter::RolledBack => summary.phase == RolloutPhase::RolledBack,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RolloutPage {
    /// Newest first.
    pub rollouts: Vec<RolloutInfo>,
    /// Null once every rollout was considered; a page reads at most
    /// [`super::ROLLOUT_SCAN_BUDGET`] rollouts, so a filtered page may be short and go on.
    pub next_before: Option<u64>,
    /// The rollouts that match, from this page's start to the oldest; `None` when counting
    /// them would read more than [`super::ROLLOUT_SCAN_BUDGET`] rollouts.
    pub total: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildHistoryArg {
    pub rollout_id: u64,
    pub canister_id: Principal,
    /// The first step to return, counted from the child's first step.
    pub from: Option<u32>,
    pub limit: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChildHistory {
    pub canister_id: Principal,
    /// `None` for a child that never needed the upgrade.
    pub wave: Option<u32>,
    pub state: ChildState,
    /// The deployer's snapshot taken before this rollout's install.
    pub snapshot: Option<ByteBuf>,
    pub steps: Vec<StepRecord>,
    /// Pass as `from` for the next page; null on the last page.
    pub next: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListEventsArg {
    /// Only this rollout's events.
    pub rollout_id: Option<u64>,
    /// The first sequence number the page may hold: the `next` of the previous page.
    pub from: Option<u64>,
    pub limit: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RolloutEvent {
    pub sequence: u64,
    pub rollout_id: u64,
    pub at: u64,
    pub kind: EventKind,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<RolloutEvent>,
    /// Pass as `from` for the next page; null once the log was read to its end.
    pub next: Option<u64>,
}

/// A subnet's registered chunk store.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkStore {
    pub subnet: Principal,
    pub canister_id: Principal,
}

/// The argument of `prepare_upgrade`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PrepareUpgradeArg {
    /// `true`: hold every rollout (no new step) and fold the journal once no call is in flight;
    /// `false`: lift the hold, rollouts go on.
    pub hold: bool,
}

/// Where the preparation of the deployer's upgrade stands.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UpgradeReadiness {
    pub holding: bool,
    /// Steps whose calls have not come back yet.
    pub actions_in_flight: u32,
    /// Journal lines not folded into the rollouts' checkpoints: a build whose engine decides
    /// differently refuses to replay them.
    pub journal_lines: u64,
    /// Holding, nothing in flight and the journal empty: stop the deployer and upgrade it to
    /// any build that reads this schema.
    pub ready: bool,
}
