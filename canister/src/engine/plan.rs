//! What a rollout is asked to do: the release, the selected children with what the deployer
//! knows of them, and the policy. [`Policy::validate`] refuses policies the engine cannot honour, so
//! the engine itself never meets a contradictory policy.

use std::fmt;

use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};

/// Nanoseconds since the Unix epoch, as `ic0.time` reports them.
pub type Nanos = u64;

/// The longest principal is 29 bytes (interface spec, "Principals").
pub const MAX_CHILD_ID_BYTES: usize = 29;

/// Snapshots one canister may hold (`MAX_SNAPSHOTS` in the interface spec constants; 10 since
/// spec 0.35.0). Taking one more needs `replace_snapshot`.
pub const MAX_SNAPSHOTS_PER_CANISTER: usize = 10;

/// SHA-256 of a Wasm module, as `canister_status` reports it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, CandidType, Serialize, Deserialize)]
pub struct ModuleHash(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleHash({self})")
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// A child canister's principal bytes, at most [`MAX_CHILD_ID_BYTES`] long.
///
/// Its serde form is [`Principal`]'s: bytes in CBOR (the stored encoding, unchanged since
/// release 0.1, when this was a byte string), a `principal` in Candid.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Principal", into = "Principal")]
pub struct ChildId(Vec<u8>);

impl ChildId {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ChildIdTooLong> {
        let bytes = bytes.into();
        if bytes.len() > MAX_CHILD_ID_BYTES {
            return Err(ChildIdTooLong { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl CandidType for ChildId {
    fn _ty() -> candid::types::Type {
        Principal::ty()
    }

    fn idl_serialize<S: candid::types::Serializer>(&self, serializer: S) -> Result<(), S::Error> {
        serializer.serialize_principal(&self.0)
    }
}

impl TryFrom<Principal> for ChildId {
    type Error = ChildIdTooLong;

    fn try_from(principal: Principal) -> Result<Self, Self::Error> {
        Self::new(principal.as_slice())
    }
}

impl From<ChildId> for Principal {
    fn from(id: ChildId) -> Self {
        // A `ChildId` is never longer than a principal, so this cannot panic.
        Principal::from_slice(&id.0)
    }
}

/// Bytes longer than any principal were given as a child id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildIdTooLong {
    pub len: usize,
}

impl fmt::Display for ChildIdTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a child id of {} bytes is longer than a principal ({MAX_CHILD_ID_BYTES} bytes)",
            self.len
        )
    }
}

impl std::error::Error for ChildIdTooLong {}

/// A snapshot id as the management canister returns it (opaque bytes).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, CandidType, Serialize, Deserialize,
)]
pub struct SnapshotId(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// Which subnet a child lives on, as the fleet registry numbers them. A chunked install
/// needs a chunk store on the child's own subnet, so the install action names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubnetIndex(pub u32);

/// How the release's module reaches a child: small modules travel in one `install_code`
/// message, larger ones through a chunk store on the child's subnet (`install_chunked_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    InstallCode,
    ChunkStore,
}

/// The release a rollout installs, as the engine needs it: the module's hash and how it travels.
/// Not the release catalog's [`crate::releases::Release`], which is its Candid description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRelease {
    pub module_hash: ModuleHash,
    pub delivery: Delivery,
}

/// What a rollout does to each selected child.
///
/// Untagged, so that an upgrade's stored form is its [`TargetRelease`] alone, as release 0.1
/// stored a rollout's `release`; a backup run's is a map with its own field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Operation {
    /// Installs the release: the upgrade path of the engine's module docs.
    Upgrade(TargetRelease),
    /// Takes a snapshot of each child and installs nothing.
    Backup(BackupRun),
    /// Loads a snapshot into the plan's one child: the rollback path, to a snapshot an
    /// operator chose.
    Restore(RestoreRun),
}

impl Operation {
    /// The release an upgrade installs; `None` for a backup run.
    pub fn release(&self) -> Option<&TargetRelease> {
        match self {
            Self::Upgrade(release) => Some(release),
            Self::Backup(_) | Self::Restore(_) => None,
        }
    }

    /// Whether a child running `module_hash` needs this operation: every child but one already
    /// on the release an upgrade installs.
    pub fn applies_to(&self, module_hash: Option<ModuleHash>) -> bool {
        self.release()
            .is_none_or(|release| module_hash != Some(release.module_hash))
    }
}

/// A backup run's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    /// Stops each child for its snapshot (then starts it again), so the snapshot holds no
    /// message half-processed across an await; otherwise the snapshot is taken of the running
    /// child, which keeps serving.
    pub stop_children: bool,
}

/// What a restore loads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRun {
    /// A snapshot of the child (or of another canister on its subnet, as `load_canister_snapshot`
    /// allows); the IC refuses one it does not hold.
    pub snapshot: SnapshotId,
}

/// A snapshot a child holds when the rollout is planned, oldest first in [`ChildSpec::snapshots`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingSnapshot {
    pub id: SnapshotId,
    /// Only snapshots the deployer made may be replaced when the child is at the limit.
    pub made_by_deployer: bool,
}

/// A selected child and what the deployer knows of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSpec {
    pub id: ChildId,
    /// `None` when no module is installed.
    pub module_hash: Option<ModuleHash>,
    pub subnet: SubnetIndex,
    /// Every snapshot the child holds, oldest first (from `list_canister_snapshots`).
    pub snapshots: Vec<ExistingSnapshot>,
}

/// How many children a wave holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum WaveSize {
    Count(u32),
    /// Percent (1..=100) of the children that need the upgrade, rounded up.
    Percent(u8),
}

/// A canary wave first, then the listed waves; whatever children remain form a last wave.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct WavePlan {
    pub canary: u32,
    pub then: Vec<WaveSize>,
}

impl WavePlan {
    /// Splits `eligible` children (those not already on the release) into wave sizes: the
    /// canary, the listed waves, then the rest. Empty waves are dropped.
    pub fn sizes(&self, eligible: u32) -> Vec<u32> {
        let mut remaining = eligible;
        let mut sizes = Vec::new();
        let requested =
            std::iter::once(self.canary).chain(self.then.iter().map(|size| match *size {
                WaveSize::Count(count) => count,
                WaveSize::Percent(percent) => {
                    (u64::from(eligible) * u64::from(percent)).div_ceil(100) as u32
                }
            }));
        for size in requested {
            let size = size.min(remaining);
            remaining -= size;
            sizes.push(size);
        }
        sizes.push(remaining);
        sizes.retain(|&size| size > 0);
        sizes
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum WasmMemoryPersistence {
    Keep,
    Replace,
}

/// The `upgrade` mode options of `install_code` / `install_chunked_code`, and its argument.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct InstallOptions {
    pub skip_pre_upgrade: bool,
    pub wasm_memory_persistence: Option<WasmMemoryPersistence>,
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
}

/// After the install the module hash read back must equal the expected one and the child
/// must run; a health method, when named, must then answer without a reject.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct Verification {
    pub health_method: Option<String>,
}

/// Retries of transiently failed steps: attempt `n + 1` waits `base * 2^(n-1)`, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts per step, the first included (at least 1).
    pub max_attempts: u32,
    pub base_backoff_nanos: Nanos,
    pub max_backoff_nanos: Nanos,
}

impl RetryPolicy {
    /// The wait after the `failed_attempt`-th attempt failed.
    pub fn backoff(&self, failed_attempt: u32) -> Nanos {
        let doublings = failed_attempt.saturating_sub(1).min(63);
        self.base_backoff_nanos
            .saturating_mul(1u64 << doublings)
            .min(self.max_backoff_nanos)
    }
}

/// What happens to a child whose upgrade failed for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum OnFailure {
    /// Load the snapshot taken before the install, start the child, verify the previous hash.
    RollBack,
    /// Leave the child stopped so a human can look at it.
    LeaveStopped,
}

/// How many failed children a wave tolerates; one more pauses the rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum FailureBudget {
    Count(u32),
    /// Percent (0..=100) of the wave's children, rounded down.
    Percent(u8),
}

impl FailureBudget {
    pub fn tolerated(&self, wave_size: u32) -> u32 {
        match *self {
            Self::Count(count) => count,
            Self::Percent(percent) => (u64::from(wave_size) * u64::from(percent) / 100) as u32,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct Policy {
    pub waves: WavePlan,
    /// Children between their first step and their final state at any one time.
    pub max_concurrency: u32,
    /// Children of one subnet the deployer holds stopped at any one time: from the stop it
    /// sends to the start that runs them again. A child's stop waits while its subnet is at
    /// the limit. A child left stopped for a human (`LeaveStopped`) has finished and no longer
    /// counts. `None`: only `max_concurrency` bounds them. It bounds how much of each subnet's
    /// share of the fleet is out of service at once, at the cost of throughput (each stopped
    /// child needs four round trips before it runs again). Stored only when set, so rollouts
    /// stored before it existed load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stopped_per_subnet: Option<u32>,
    /// Wait between the end of one wave and the start of the next.
    pub bake_nanos: Nanos,
    pub snapshot_before_install: bool,
    /// Retention: the newest snapshots the deployer keeps of each child. Once it made this many,
    /// the snapshot before the install replaces the oldest of them, and older ones beyond it
    /// are deleted (never one another controller took). `None`: a snapshot is replaced only when the child holds the IC's
    /// maximum. Stored only when set, so rollouts stored before it existed load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_snapshots: Option<u8>,
    pub install: InstallOptions,
    pub verification: Verification,
    pub retry: RetryPolicy,
    pub on_failure: OnFailure,
    pub failure_budget: FailureBudget,
    /// Upgrade gates this rollout does not check, each with the reason given: kept with the
    /// rollout and shown to voters. The engine never reads them (planning checks the gates).
    /// Stored only when set, so rollouts stored before they existed load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_overrides: Option<Vec<GateOverride>>,
}

/// A check every selected child passes at planning, before any child is touched, unless the
/// policy overrides it with a reason.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, CandidType, Serialize, Deserialize,
)]
pub enum UpgradeGate {
    /// The child runs one of the deployer's releases: what it runs is known, and can be rolled
    /// out again.
    KnownModule,
    /// The release has the name of the release the child runs and a higher version.
    HigherVersion,
    /// The release's Candid service is a subtype of the one the child's release carries: the
    /// child's clients can still call every method and decode every reply.
    CandidCompatible,
}

/// A gate a rollout does not check, and why.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct GateOverride {
    pub gate: UpgradeGate,
    pub reason: String,
}

impl Default for Policy {
    /// One canary, then a quarter at a time; snapshots on; the first failure pauses.
    fn default() -> Self {
        const SECOND: Nanos = 1_000_000_000;
        Self {
            waves: WavePlan {
                canary: 1,
                then: vec![WaveSize::Percent(25)],
            },
            max_concurrency: 10,
            max_stopped_per_subnet: None,
            bake_nanos: 60 * SECOND,
            snapshot_before_install: true,
            keep_snapshots: None,
            install: InstallOptions::default(),
            verification: Verification::default(),
            retry: RetryPolicy {
                max_attempts: 5,
                base_backoff_nanos: SECOND,
                max_backoff_nanos: 60 * SECOND,
            },
            on_failure: OnFailure::RollBack,
            failure_budget: FailureBudget::Count(0),
            gate_overrides: None,
        }
    }
}

/// Everything a rollout is created from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Named `release` in the stored and hashed form, as before backup runs existed.
    #[serde(rename = "release")]
    pub operation: Operation,
    pub children: Vec<ChildSpec>,
    pub policy: Policy,
}

/// Why a plan was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    NoChildren,
    DuplicateChild(ChildId),
    ZeroConcurrency,
    ZeroStoppedPerSubnet,
    ZeroMaxAttempts,
    /// The base backoff is longer than the maximum.
    BackoffBaseAboveMax,
    /// A wave percentage outside 1..=100.
    WavePercentOutOfRange(u8),
    /// A failure budget percentage above 100.
    BudgetPercentOutOfRange(u8),
    /// Rolling back loads the snapshot taken before the install, so it needs snapshots on.
    RollBackWithoutSnapshot,
    EmptyHealthMethod,
    /// Snapshots kept per child outside 1..=the IC's maximum.
    KeepSnapshotsOutOfRange(u8),
    /// A restore loads a snapshot of one child.
    RestoreOfSeveralChildren(usize),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoChildren => write!(f, "the selection holds no children: select at least one"),
            Self::DuplicateChild(id) => {
                write!(
                    f,
                    "child {:02x?} is selected twice: select each child once",
                    id.as_bytes()
                )
            }
            Self::ZeroConcurrency => write!(f, "max_concurrency is 0: allow at least 1 child"),
            Self::ZeroStoppedPerSubnet => write!(
                f,
                "max_stopped_per_subnet is 0: allow at least 1 stopped child, or leave it out"
            ),
            Self::ZeroMaxAttempts => write!(f, "retry.max_attempts is 0: allow at least 1 attempt"),
            Self::BackoffBaseAboveMax => {
                write!(
                    f,
                    "retry.base_backoff_nanos exceeds retry.max_backoff_nanos"
                )
            }
            Self::WavePercentOutOfRange(percent) => {
                write!(f, "a wave of {percent} percent: use 1 to 100")
            }
            Self::BudgetPercentOutOfRange(percent) => {
                write!(f, "a failure budget of {percent} percent: use 0 to 100")
            }
            Self::RollBackWithoutSnapshot => write!(
                f,
                "on_failure is RollBack but snapshot_before_install is off: a rollback loads \
                 the snapshot taken before the install, so turn snapshots on or choose LeaveStopped"
            ),
            Self::EmptyHealthMethod => write!(f, "the health method name is empty"),
            Self::KeepSnapshotsOutOfRange(keep) => write!(
                f,
                "keep_snapshots is {keep}: keep 1 to {MAX_SNAPSHOTS_PER_CANISTER} snapshots per \
                 child (the IC's maximum), or leave it out"
            ),
            Self::RestoreOfSeveralChildren(children) => write!(
                f,
                "a restore loads a snapshot into one child, and {children} are selected: \
                 restore each child on its own"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

impl Policy {
    /// Refuses a policy the engine cannot honour.
    pub fn validate(&self) -> Result<(), PlanError> {
        let policy = self;
        if policy.max_concurrency == 0 {
            return Err(PlanError::ZeroConcurrency);
        }
        if policy.max_stopped_per_subnet == Some(0) {
            return Err(PlanError::ZeroStoppedPerSubnet);
        }
        if policy.retry.max_attempts == 0 {
            return Err(PlanError::ZeroMaxAttempts);
        }
        if policy.retry.base_backoff_nanos > policy.retry.max_backoff_nanos {
            return Err(PlanError::BackoffBaseAboveMax);
        }
        for size in &policy.waves.then {
            if let WaveSize::Percent(percent) = *size {
                if !(1..=100).contains(&percent) {
                    return Err(PlanError::WavePercentOutOfRange(percent));
                }
            }
        }
        if let FailureBudget::Percent(percent) = policy.failure_budget {
            if percent > 100 {
                return Err(PlanError::BudgetPercentOutOfRange(percent));
            }
        }
        if policy.on_failure == OnFailure::RollBack && !policy.snapshot_before_install {
            return Err(PlanError::RollBackWithoutSnapshot);
        }
        if policy.verification.health_method.as_deref() == Some("") {
            return Err(PlanError::EmptyHealthMethod);
        }
        if let Some(keep) = policy.keep_snapshots {
            if keep == 0 || usize::from(keep) > MAX_SNAPSHOTS_PER_CANISTER {
                return Err(PlanError::KeepSnapshotsOutOfRange(keep));
            }
        }
        Ok(())
    }
}
