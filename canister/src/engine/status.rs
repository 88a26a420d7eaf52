//! What dashboards read: the rollout's phase and summary, each child's step history, and the
//! event stream the driver drains into its log.

use candid::CandidType;
use serde::{Deserialize, Serialize};

use super::action::{Path, Step};
use super::child::{Failure, Verdict};
use super::plan::{ChildId, Nanos, SnapshotId};

/// Where the rollout as a whole stands.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum RolloutPhase {
    /// Waves advance and new children start.
    Running,
    /// No new child starts; children already started finish their pipeline.
    Paused(PauseReason),
    /// No new child starts; started children are brought to a running state. Final once
    /// [`Summary::finished_at`] is set.
    Aborted,
    /// Every child this rollout upgraded is being restored from its snapshot.
    RollingBack,
    /// Every wave finished. Final.
    Completed,
    /// The rollback of the whole rollout finished. Final.
    RolledBack,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum PauseReason {
    Operator,
    /// More children of `wave` failed than its failure budget tolerates.
    FailureBudgetExceeded {
        wave: u32,
        failures: u32,
        tolerated: u32,
    },
    /// The deployer's cycle balance cannot pay for the next steps: `required` cycles were
    /// needed, `balance` were there. The operator tops the deployer up (`deposit_cycles`),
    /// then calls `resume_rollout`.
    InsufficientCycles {
        balance: u128,
        required: u128,
    },
}

/// How a call ended, as a history line shows it.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum CallResult {
    Replied,
    Rejected { code: u32, message: String },
    Unknown,
}

/// One action of a child: what, why, which try, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    pub path: Path,
    pub attempt: u32,
    pub issued_at: Nanos,
    pub finished_at: Option<Nanos>,
    /// `None` while the action is in flight.
    pub result: Option<CallResult>,
}

/// Children per state; [`Summary`] gives one for the rollout and one per wave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct StateCounts {
    pub queued: u32,
    pub active: u32,
    pub awaiting_rollback: u32,
    pub upgraded: u32,
    pub skipped: u32,
    pub failed: u32,
    pub rolled_back: u32,
    pub left_stopped: u32,
    pub needs_attention: u32,
    pub cancelled: u32,
    pub not_started: u32,
    /// Children a backup run snapshotted; `None` for none. Optional because release 0.1 did not
    /// count them: a client reading its replies (and the overviews it stored) finds no field.
    #[serde(default)]
    pub backed_up: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct WaveSummary {
    pub size: u32,
    pub counts: StateCounts,
    pub failures: u32,
    pub tolerated_failures: u32,
    pub started_at: Option<Nanos>,
    pub finished_at: Option<Nanos>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct Summary {
    pub phase: RolloutPhase,
    /// Index into `waves`; `None` when every child was skipped.
    pub current_wave: Option<u32>,
    pub waves: Vec<WaveSummary>,
    /// Every selected child, skipped ones included.
    pub counts: StateCounts,
    pub in_flight: u32,
    pub started_at: Nanos,
    /// When the rollout reached a final state (an abort once its last child settled).
    pub finished_at: Option<Nanos>,
    /// When the next wave may start, while the finished wave bakes.
    pub next_wave_at: Option<Nanos>,
    /// Children whose upgrade went wrong, by the kind of what went wrong first; kinds with
    /// none are left out. Optional because release 0.1 did not count them: its summaries
    /// (replies, and the overviews it stored until they change) have none.
    #[serde(default)]
    pub failures_by_kind: Option<Vec<FailureKindCount>>,
}

/// How many children of a rollout met one kind of failure first.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct FailureKindCount {
    /// The `FailureKind` variant's name.
    pub kind: String,
    pub children: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct Event {
    pub at: Nanos,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum EventKind {
    Created {
        children: u32,
        skipped: u32,
        waves: u32,
    },
    WaveStarted {
        wave: u32,
    },
    WaveFinished {
        wave: u32,
    },
    /// The child's upgrade began.
    ChildStarted {
        child: ChildId,
        wave: u32,
    },
    /// A snapshot the deployer now owns; `replaced` no longer exists.
    SnapshotTaken {
        child: ChildId,
        snapshot: SnapshotId,
        replaced: Option<SnapshotId>,
    },
    /// The deployer deleted its snapshot: the child held more of them than the policy keeps.
    /// Also when the deletion was refused for good: `deleted` is then false, and the child
    /// keeps a snapshot the deployer no longer counts as its own.
    SnapshotDeleted {
        child: ChildId,
        snapshot: SnapshotId,
        deleted: bool,
    },
    RetryScheduled {
        child: ChildId,
        step: Step,
        attempt: u32,
        at: Nanos,
    },
    /// The step's outcome is unknown; the child is read before anything else happens.
    Reconciling {
        child: ChildId,
        step: Step,
    },
    /// The child's stop timed out and it was left stopping; it is started again.
    StopStuck {
        child: ChildId,
    },
    /// The child's upgrade failed for good; what happens next follows the policy.
    ChildFailed {
        child: ChildId,
        failure: Failure,
    },
    /// The child entered a recovery path (a rollback, a restart, or a stop to park it).
    PathChanged {
        child: ChildId,
        path: Path,
    },
    ChildFinished {
        child: ChildId,
        verdict: Verdict,
    },
    /// The rollout paused for cycles before the child's install: it runs again and waits in
    /// the queue of its wave, to begin its upgrade anew after the resume.
    ChildRequeued {
        child: ChildId,
    },
    Paused {
        reason: PauseReason,
    },
    Resumed,
    Aborted,
    RollbackRequested {
        children: u32,
    },
    Completed,
    RolledBack,
    /// An abort's last started child settled.
    AbortSettled,
}
