//! The engine's side of the seam to the management canister: the actions it asks the driver
//! to perform and the outcomes the driver feeds back.

use candid::CandidType;
use serde::{Deserialize, Serialize};

use super::plan::{ChildId, InstallOptions, ModuleHash, SnapshotId, SubnetIndex};

/// Reject codes (interface spec, HTTPS interface, "Reject codes").
pub mod reject_code {
    pub const SYS_FATAL: u32 = 1;
    pub const SYS_TRANSIENT: u32 = 2;
    pub const DESTINATION_INVALID: u32 = 3;
    pub const CANISTER_REJECT: u32 = 4;
    pub const CANISTER_ERROR: u32 = 5;
    pub const SYS_UNKNOWN: u32 = 6;
}

/// Identifies one issued action; outcomes are matched to actions by it. Never reused within
/// a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActionId(pub u64);

/// The steps of the per-child pipelines; also the key of a child's step history.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, CandidType, Serialize, Deserialize,
)]
pub enum Step {
    /// Reads the child's cycles before it is touched: one that could not pay for its snapshot
    /// and install is left running rather than stopped and frozen.
    CheckCycles,
    Stop,
    TakeSnapshot,
    Install,
    Start,
    Verify,
    HealthCheck,
    LoadSnapshot,
    /// Deletes the oldest of the deployer's snapshots of the child beyond the policy's
    /// `keep_snapshots`, once the new one is taken.
    DeleteSnapshot,
    /// Reads the child's status (and snapshots) to settle a step whose outcome is unknown.
    Reconcile,
}

impl Step {
    /// Takes or loads a snapshot: the work a subnet runs few of a round, so a rollout keeps
    /// at most [`super::SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET`] of it in flight per subnet.
    pub fn is_snapshot_work(self) -> bool {
        matches!(self, Self::TakeSnapshot | Self::LoadSnapshot)
    }
}

/// Why a child is being worked on; a journal line reads "`path`: `step`".
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum Path {
    /// Stop, snapshot, install, start, verify, health check.
    Upgrade,
    /// Stop (if it may run), load the pre-install snapshot, start, verify the previous hash.
    RollBack,
    /// Start the child again: it was stopped (or left stopping) and must not stay so.
    Restart,
    /// Stop the child and leave it stopped for a human (policy `LeaveStopped`).
    Park,
}

/// One management canister call (or child call) the driver must make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub id: ActionId,
    pub child: ChildId,
    pub path: Path,
    /// 1 for the first try of this step on this path.
    pub attempt: u32,
    pub kind: ActionKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    /// `canister_status`, before the child's upgrade begins; the engine compares its cycles
    /// with what the upgrade needs. Reply: [`Reply::Status`] with `funds`.
    CheckCycles,
    /// `stop_canister`. Reply: [`Reply::Done`].
    Stop,
    /// `take_canister_snapshot`, with `replace_snapshot` set when the child is at the limit;
    /// the replaced snapshot is always one the deployer made. Reply: [`Reply::Snapshot`].
    TakeSnapshot { replace: Option<SnapshotId> },
    /// `install_code` in upgrade mode. Reply: [`Reply::Done`].
    InstallCode {
        module_hash: ModuleHash,
        options: InstallOptions,
    },
    /// `install_chunked_code` in upgrade mode, from the chunk store serving `subnet`.
    /// Reply: [`Reply::Done`].
    InstallChunked {
        module_hash: ModuleHash,
        subnet: SubnetIndex,
        options: InstallOptions,
    },
    /// `start_canister`. Reply: [`Reply::Done`].
    Start,
    /// `canister_status`; the engine compares the result with `expected_module`.
    /// Reply: [`Reply::Status`] (snapshots not needed).
    ReadStatus { expected_module: Option<ModuleHash> },
    /// Calls `method` on the child with an empty Candid argument. Reply: [`Reply::Done`].
    HealthCheck { method: String },
    /// `load_canister_snapshot`. Reply: [`Reply::Done`].
    LoadSnapshot { snapshot: SnapshotId },
    /// `delete_canister_snapshot`. Reply: [`Reply::Done`].
    DeleteSnapshot { snapshot: SnapshotId },
    /// `canister_status`, plus `list_canister_snapshots` when `list_snapshots`.
    /// Reply: [`Reply::Status`] with `snapshots` filled exactly when asked.
    Reconcile { list_snapshots: bool },
}

impl ActionKind {
    pub fn step(&self) -> Step {
        match self {
            Self::CheckCycles => Step::CheckCycles,
            Self::Stop => Step::Stop,
            Self::TakeSnapshot { .. } => Step::TakeSnapshot,
            Self::InstallCode { .. } | Self::InstallChunked { .. } => Step::Install,
            Self::Start => Step::Start,
            Self::ReadStatus { .. } => Step::Verify,
            Self::HealthCheck { .. } => Step::HealthCheck,
            Self::LoadSnapshot { .. } => Step::LoadSnapshot,
            Self::DeleteSnapshot { .. } => Step::DeleteSnapshot,
            Self::Reconcile { .. } => Step::Reconcile,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    Stopping,
    Stopped,
}

/// What `canister_status` (and `list_canister_snapshots`) showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub status: RunStatus,
    pub module_hash: Option<ModuleHash>,
    /// Ids of every snapshot the child holds, when the action asked for them.
    pub snapshots: Option<Vec<SnapshotId>>,
    /// The child's cycles, for [`ActionKind::CheckCycles`] (the driver always reads them).
    /// Defaulted: outcomes journaled before it existed have none.
    #[serde(default)]
    pub funds: Option<ChildFunds>,
}

/// What `canister_status` says about a child's cycles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildFunds {
    pub cycles: u128,
    pub idle_cycles_burned_per_day: u128,
    pub freezing_threshold_seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Snapshot(SnapshotId),
    Status(Observation),
}

/// How an action ended, as the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Ok(Reply),
    Rejected {
        code: u32,
        message: String,
    },
    /// The outcome was lost: the deployer was upgraded while the call was in flight.
    /// Handled exactly like a `SYS_UNKNOWN` reject.
    Unknown,
}

/// The longest reject message a rollout keeps, in bytes. A child (or the IC on its behalf) may
/// reject with up to 2 MiB of text, and the message is written to the journal, the step record,
/// the event log and the verdict: kept whole, one child could fill the deployer's replies and
/// stable memory.
pub const MAX_REJECT_MESSAGE_BYTES: usize = 1024;

/// `message` as a rollout keeps it: whole when it fits [`MAX_REJECT_MESSAGE_BYTES`], else cut at
/// a character boundary and followed by the size it had.
pub fn bounded_reject_message(message: &str) -> String {
    if message.len() <= MAX_REJECT_MESSAGE_BYTES {
        return message.to_string();
    }
    format!(
        "{}… [cut: the reject message had {} bytes]",
        crate::text::prefix(message, MAX_REJECT_MESSAGE_BYTES),
        message.len()
    )
}

/// What a reject says about retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectClass {
    /// The call did not take effect and may succeed later.
    Transient,
    /// The call did not take effect and will not succeed as it is.
    Permanent,
    /// The call may or may not have taken effect: only reading the child tells.
    Unknown,
}

/// Classifies a reject code (interface spec, "Reject codes"). Codes the spec does not define
/// are treated as unknown: the child is read rather than a guess made.
pub fn classify(code: u32) -> RejectClass {
    match code {
        reject_code::SYS_TRANSIENT => RejectClass::Transient,
        reject_code::SYS_FATAL
        | reject_code::DESTINATION_INVALID
        | reject_code::CANISTER_REJECT
        | reject_code::CANISTER_ERROR => RejectClass::Permanent,
        _ => RejectClass::Unknown,
    }
}

/// Why `on_outcome` refused an outcome; the rollout is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutcomeError {
    /// No action with this id is in flight: answered already, or never issued.
    NotInFlight(ActionId),
    /// The reply does not fit the action (for example a snapshot id for a stop).
    UnexpectedReply { action: ActionId, step: Step },
}

impl std::fmt::Display for OutcomeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInFlight(id) => {
                write!(f, "action {} is not in flight: its outcome was already fed back or it was never issued", id.0)
            }
            Self::UnexpectedReply { action, step } => write!(
                f,
                "the reply to action {} does not fit a {step:?} step: see ActionKind for the reply each step expects",
                action.0
            ),
        }
    }
}

impl std::error::Error for OutcomeError {}
