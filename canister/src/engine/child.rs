//! One child's pipeline: which step comes next, what an outcome means for it, and where a
//! failure leads. The engine decides *when* a child moves; this module decides *where*.

use candid::CandidType;
use serde::{Deserialize, Serialize};

use super::action::{ActionId, ActionKind, Path, RejectClass, RunStatus, Step};
use super::plan::{
    ChildId, ChildSpec, ExistingSnapshot, ModuleHash, Nanos, Operation, Policy, SnapshotId,
    SubnetIndex, MAX_SNAPSHOTS_PER_CANISTER,
};
use super::status::{Event, EventKind, StepRecord};

mod pipeline;

#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum SkipReason {
    AlreadyOnRelease,
}

/// Why a child is rolled back.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum RollbackCause {
    /// Its upgrade failed after the install (policy `RollBack`).
    Failure(Failure),
    /// An operator rolled back the whole rollout.
    Requested,
    /// An operator restored the child to a snapshot of their choice (`restore_child`).
    Restore,
}

/// A step that failed for good.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub struct Failure {
    pub step: Step,
    /// Attempts made of the step.
    pub attempts: u32,
    pub kind: FailureKind,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum FailureKind {
    /// Rejected with a permanent code.
    Rejected {
        code: u32,
        message: String,
    },
    /// Every attempt failed transiently (or with an unknown outcome); the last reject.
    RetriesExhausted {
        code: u32,
        message: String,
    },
    /// The stop timed out with the child still stopping (it waits on an open call).
    StopStuck,
    /// A start meant to run the child again (after a failed install, a stuck stop, or on a
    /// rollback) was refused with a permanent code on every attempt the retry policy allows;
    /// the last refusal. The child stays as the starts found it, stopped (or still stopping
    /// after a stuck stop), until an operator starts it.
    StartRefused {
        code: u32,
        message: String,
    },
    ModuleMismatch {
        expected: Option<ModuleHash>,
        found: Option<ModuleHash>,
    },
    NotRunning {
        status: RunStatus,
    },
    /// The child runs a module that is neither its previous one nor the release.
    ConcurrentChange {
        found: Option<ModuleHash>,
    },
    /// Someone else started or stopped the child while its outcome was being reconciled.
    StatusChanged {
        status: RunStatus,
    },
    /// The child holds the maximum of snapshots and none of them is the deployer's to replace.
    SnapshotLimit,
    /// The snapshot listing could not tell whether the deployer's snapshot was taken.
    UnidentifiedSnapshot,
    /// The child's balance could not pay for its snapshot and install without freezing it
    /// (see `cycles_for_upgrade`): it was left running, untouched. Top it up and roll out again.
    InsufficientCycles {
        balance: u128,
        required: u128,
    },
}

impl FailureKind {
    /// Every kind's name, in declaration order.
    pub const NAMES: [&'static str; 11] = [
        "Rejected",
        "RetriesExhausted",
        "StopStuck",
        "StartRefused",
        "ModuleMismatch",
        "NotRunning",
        "ConcurrentChange",
        "StatusChanged",
        "SnapshotLimit",
        "UnidentifiedSnapshot",
        "InsufficientCycles",
    ];

    /// The variant's Candid name, as dashboards label failures.
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    pub(super) fn index(&self) -> usize {
        match self {
            Self::Rejected { .. } => 0,
            Self::RetriesExhausted { .. } => 1,
            Self::StopStuck { .. } => 2,
            Self::StartRefused { .. } => 3,
            Self::ModuleMismatch { .. } => 4,
            Self::NotRunning { .. } => 5,
            Self::ConcurrentChange { .. } => 6,
            Self::StatusChanged { .. } => 7,
            Self::SnapshotLimit { .. } => 8,
            Self::UnidentifiedSnapshot { .. } => 9,
            Self::InsufficientCycles { .. } => 10,
        }
    }
}

/// A child's final state.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum Verdict {
    /// Runs the release, verified.
    Upgraded,
    /// A backup run took its snapshot (the `SnapshotTaken` event names it); it runs its
    /// module, verified.
    BackedUp,
    Skipped(SkipReason),
    /// Not upgraded; runs its previous module (started again if it had been stopped).
    Failed(Failure),
    /// Restored from its pre-install snapshot; runs its previous module, verified.
    RolledBack(RollbackCause),
    /// Stopped on purpose (policy `LeaveStopped`) so a human can look at it.
    LeftStopped(Failure),
    /// A recovery step failed: `problem` says which. The engine started the child again where
    /// it could (`problem` is `StartRefused` where it could not); `original` is what went
    /// wrong first and led to the recovery.
    NeedsAttention {
        problem: Failure,
        original: Option<Failure>,
    },
    /// An abort (or rollback of the whole rollout) came before its install; runs its previous
    /// module.
    Cancelled,
    /// The rollout ended before this child's turn; never touched.
    NotStarted,
}

impl Verdict {
    /// The failure that went wrong first on the way to this verdict, if any.
    pub(super) fn first_failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed(failure) | Self::LeftStopped(failure) => Some(failure),
            Self::RolledBack(RollbackCause::Failure(failure)) => Some(failure),
            Self::NeedsAttention { problem, original } => original.as_ref().or(Some(problem)),
            _ => None,
        }
    }
}

/// A child's state as dashboards show it.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum ChildState {
    Queued,
    AwaitingRollback(RollbackCause),
    Active { path: Path, step: Step },
    Finished(Verdict),
}

/// What the engine last learnt about whether the child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RunHint {
    Running,
    Stopped,
    /// A stop or start was issued and its outcome is not known, or the child was stopping.
    Unsure,
}

/// Where a path ends or resumes after the child was started again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum AfterRestart {
    Finish(Verdict),
    /// The rollout paused for cycles before the install: back to the wave's queue.
    Requeue,
    /// The stop got stuck; once running again, stop again on `resume` after a backoff.
    RetryStop {
        resume: Box<Goal>,
        attempt: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Goal {
    Upgrade,
    RollBack {
        cause: RollbackCause,
        snapshot: SnapshotId,
    },
    Restart(AfterRestart),
    Park(Failure),
}

impl Goal {
    fn path(&self) -> Path {
        match self {
            Self::Upgrade => Path::Upgrade,
            Self::RollBack { .. } => Path::RollBack,
            Self::Restart(_) => Path::Restart,
            Self::Park(_) => Path::Park,
        }
    }
}

/// A failed call, kept while the child is read to learn what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CallFailure {
    class: RejectClass,
    code: u32,
    message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Reconciling {
    attempt: u32,
    cause: CallFailure,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Work {
    goal: Goal,
    /// The pipeline step; a reconcile settles this step's outcome.
    step: Step,
    attempt: u32,
    /// Permanent refusals of this step so far: only a start that runs the child again is
    /// tried again after one. Defaulted so that rollouts persisted before it existed load.
    #[serde(default)]
    refusals: u32,
    reconciling: Option<Reconciling>,
    in_flight: Option<ActionId>,
    not_before: Nanos,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    Queued,
    AwaitingRollback {
        cause: RollbackCause,
        snapshot: SnapshotId,
    },
    Working(Work),
    Finished(Verdict),
}

/// What the rollout holds in force over its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Control {
    Abort,
    RollBackAll,
    /// Paused for cycles: children not yet installed go back to running and to the queue, so
    /// none waits stopped for a top-up; installed ones finish.
    Requeue,
}

pub(super) struct Ctx<'a> {
    pub policy: &'a Policy,
    pub operation: &'a Operation,
    pub now: Nanos,
    /// The id the next emitted action takes.
    pub next_action: ActionId,
    pub events: &'a mut Vec<Event>,
}

impl Ctx<'_> {
    /// Whether a child's pipeline takes a snapshot: always in a backup run.
    fn takes_snapshot(&self) -> bool {
        matches!(self.operation, Operation::Backup(_)) || self.policy.snapshot_before_install
    }

    fn emit(&mut self, kind: EventKind) {
        self.events.push(Event { at: self.now, kind });
    }
}

/// What changed for the engine's bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Transition {
    pub finished: bool,
    /// The child went back to its wave's queue (see [`Control::Requeue`]).
    pub requeued: bool,
    /// The child's upgrade failed just now (counted once per child against the budget).
    pub failed: bool,
}

impl std::ops::BitOrAssign for Transition {
    fn bitor_assign(&mut self, other: Self) {
        self.finished |= other.finished;
        self.requeued |= other.requeued;
        self.failed |= other.failed;
    }
}

pub(super) enum Poll {
    /// The child's next action, now in flight under the context's `next_action` id.
    Emit {
        kind: ActionKind,
        path: Path,
        attempt: u32,
    },
    /// Nothing until this time (a backoff).
    Wait(Nanos),
    /// An action is in flight, or the child is not active.
    Busy,
}

/// One selected child: what the deployer knew at the start, where it stands, and its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    id: ChildId,
    subnet: SubnetIndex,
    previous_module: Option<ModuleHash>,
    wave: Option<u32>,
    /// Every snapshot the child holds as far as the engine knows, oldest first.
    snapshots: Vec<ExistingSnapshot>,
    stage: Stage,
    /// The snapshot taken before this rollout's install.
    rollout_snapshot: Option<SnapshotId>,
    /// The release's install is confirmed (by its reply or by reading the module hash).
    installed: bool,
    /// The module a restore's verification found: what the loaded snapshot holds. Stored only
    /// when set, so rollouts stored before restores existed load, and store, as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restored_module: Option<ModuleHash>,
    run_hint: RunHint,
    failure_counted: bool,
    history: Vec<StepRecord>,
}

impl Child {
    pub(super) fn new(spec: ChildSpec, operation: &Operation) -> Self {
        let stage = if operation.applies_to(spec.module_hash) {
            Stage::Queued
        } else {
            Stage::Finished(Verdict::Skipped(SkipReason::AlreadyOnRelease))
        };
        Self {
            id: spec.id,
            subnet: spec.subnet,
            previous_module: spec.module_hash,
            wave: None,
            snapshots: spec.snapshots,
            stage,
            rollout_snapshot: None,
            installed: false,
            restored_module: None,
            run_hint: RunHint::Running,
            failure_counted: false,
            history: Vec::new(),
        }
    }

    pub fn id(&self) -> &ChildId {
        &self.id
    }

    pub fn subnet(&self) -> SubnetIndex {
        self.subnet
    }

    /// The module the child ran when the rollout was planned.
    pub fn previous_module(&self) -> Option<ModuleHash> {
        self.previous_module
    }

    /// `None` for skipped children.
    pub fn wave(&self) -> Option<u32> {
        self.wave
    }

    /// The snapshots the child holds as far as the engine knows, oldest first.
    pub fn snapshots(&self) -> &[ExistingSnapshot] {
        &self.snapshots
    }

    /// The snapshot taken before this rollout's install.
    pub fn rollout_snapshot(&self) -> Option<&SnapshotId> {
        self.rollout_snapshot.as_ref()
    }

    /// Whether the release's install is confirmed (by its reply or by the module hash read).
    pub fn installed(&self) -> bool {
        self.installed
    }

    /// The module a restore found the child running once it loaded the snapshot.
    pub fn restored_module(&self) -> Option<ModuleHash> {
        self.restored_module
    }

    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    pub fn state(&self) -> ChildState {
        match &self.stage {
            Stage::Queued => ChildState::Queued,
            Stage::AwaitingRollback { cause, .. } => ChildState::AwaitingRollback(cause.clone()),
            Stage::Working(work) => ChildState::Active {
                path: work.goal.path(),
                step: if work.reconciling.is_some() {
                    Step::Reconcile
                } else {
                    work.step
                },
            },
            Stage::Finished(verdict) => ChildState::Finished(verdict.clone()),
        }
    }

    pub(super) fn set_wave(&mut self, wave: u32) {
        self.wave = Some(wave);
    }

    pub(super) fn is_queued(&self) -> bool {
        matches!(self.stage, Stage::Queued)
    }

    /// The queued child starts its upgrade, or fails at once, untouched, when the policy
    /// demands a snapshot and the child is full of snapshots the deployer did not make.
    pub(super) fn begin(&mut self, ctx: &mut Ctx) -> Transition {
        if ctx.takes_snapshot() && replacement(&self.snapshots, ctx.policy.keep_snapshots).is_err()
        {
            let failure = Failure {
                step: Step::TakeSnapshot,
                attempts: 0,
                kind: FailureKind::SnapshotLimit,
            };
            let mut transition = self.count_failure(&failure, ctx);
            transition |= self.finish(Verdict::Failed(failure));
            return transition;
        }
        ctx.emit(EventKind::ChildStarted {
            child: self.id.clone(),
            wave: self.wave.unwrap_or_default(),
        });
        if let Operation::Restore(run) = ctx.operation {
            return self.roll_back(RollbackCause::Restore, run.snapshot.clone(), ctx);
        }
        self.work_on(Goal::Upgrade, Step::CheckCycles, ctx.now);
        Transition::default()
    }

    /// A requeued child that will not begin again (an abort or a rollback of the whole
    /// rollout came first): it runs its previous module.
    pub(super) fn cancel_requeued(&mut self) -> Transition {
        self.finish(Verdict::Cancelled)
    }

    /// Marks an upgraded child (or one left stopped after its install) for the rollback of
    /// the whole rollout. Returns whether it now awaits its rollback.
    pub(super) fn request_rollback(&mut self) -> bool {
        let Some(snapshot) = self.rollout_snapshot.clone() else {
            return false;
        };
        let cause = match &self.stage {
            Stage::Finished(Verdict::Upgraded) => RollbackCause::Requested,
            Stage::Finished(Verdict::LeftStopped(failure)) if self.installed => {
                RollbackCause::Failure(failure.clone())
            }
            _ => return false,
        };
        self.stage = Stage::AwaitingRollback { cause, snapshot };
        true
    }

    /// An abort during the rollback of the whole rollout: a child still waiting for its
    /// rollback keeps the final state it had.
    pub(super) fn withdraw_rollback(&mut self) {
        if let Stage::AwaitingRollback { cause, .. } = &self.stage {
            self.stage = Stage::Finished(match cause {
                RollbackCause::Requested => Verdict::Upgraded,
                RollbackCause::Restore => unreachable!("a restore never awaits a rollback"),
                RollbackCause::Failure(failure) => Verdict::LeftStopped(failure.clone()),
            });
        }
    }

    pub(super) fn never_start(&mut self) -> Transition {
        self.finish(Verdict::NotStarted)
    }

    pub(super) fn begin_rollback(&mut self, ctx: &mut Ctx) {
        if let Stage::AwaitingRollback { cause, snapshot } = &self.stage {
            let (cause, snapshot) = (cause.clone(), snapshot.clone());
            self.roll_back(cause, snapshot, ctx);
        }
    }

    /// Applies the rollout's control at a decision point: the child is idle and no outcome
    /// is being reconciled. A child not yet installed is cancelled (started again if it may
    /// be stopped); an installed one finishes its upgrade under an abort and is rolled back
    /// under a rollback of the whole rollout. Recovery paths always run to their end.
    pub(super) fn apply_control(&mut self, control: Control, ctx: &mut Ctx) -> Transition {
        let Stage::Working(work) = &self.stage else {
            return Transition::default();
        };
        if work.in_flight.is_some() || work.reconciling.is_some() {
            return Transition::default();
        }
        let snapshot = self.rollout_snapshot.clone();
        match (&work.goal, control, snapshot) {
            (Goal::Upgrade, Control::Requeue, _) if !self.installed => self.requeue(ctx),
            (Goal::Upgrade, _, _) if !self.installed => self.bring_back(Verdict::Cancelled, ctx),
            (Goal::Upgrade, Control::RollBackAll, Some(snapshot)) => {
                self.roll_back(RollbackCause::Requested, snapshot, ctx)
            }
            (Goal::Park(failure), Control::RollBackAll, Some(snapshot)) if self.installed => {
                let cause = RollbackCause::Failure(failure.clone());
                self.roll_back(cause, snapshot, ctx)
            }
            _ => Transition::default(),
        }
    }

    fn work(&mut self) -> &mut Work {
        match &mut self.stage {
            Stage::Working(work) => work,
            _ => unreachable!("only an active child has work"),
        }
    }

    fn work_on(&mut self, goal: Goal, step: Step, not_before: Nanos) {
        self.stage = Stage::Working(Work {
            goal,
            step,
            attempt: 1,
            refusals: 0,
            reconciling: None,
            in_flight: None,
            not_before,
        });
    }

    /// Switches to a recovery path.
    fn enter(&mut self, goal: Goal, step: Step, ctx: &mut Ctx) -> Transition {
        ctx.emit(EventKind::PathChanged {
            child: self.id.clone(),
            path: goal.path(),
        });
        self.work_on(goal, step, ctx.now);
        Transition::default()
    }

    fn finish(&mut self, verdict: Verdict) -> Transition {
        self.stage = Stage::Finished(verdict);
        Transition {
            finished: true,
            ..Transition::default()
        }
    }

    /// Back to the wave's queue once the child runs: at once if it is known to run, after a
    /// start otherwise.
    fn requeue(&mut self, ctx: &mut Ctx) -> Transition {
        if self.run_hint != RunHint::Running {
            return self.enter(Goal::Restart(AfterRestart::Requeue), Step::Start, ctx);
        }
        self.stage = Stage::Queued;
        ctx.emit(EventKind::ChildRequeued {
            child: self.id.clone(),
        });
        Transition {
            requeued: true,
            ..Transition::default()
        }
    }

    /// The snapshot a new take replaces: this rollout's own, when an earlier attempt took one
    /// (a requeued child begins anew), else the oldest the deployer made when the child is full.
    fn snapshot_to_replace(&self, keep: Option<u8>) -> Option<SnapshotId> {
        self.rollout_snapshot
            .clone()
            .or_else(|| replacement(&self.snapshots, keep).ok().flatten())
    }

    /// The oldest of the deployer's snapshots beyond `keep`, never this rollout's own.
    fn excess_snapshot(&self, keep: Option<u8>) -> Option<SnapshotId> {
        let keep = usize::from(keep?);
        let own = || self.snapshots.iter().filter(|held| held.made_by_deployer);
        if own().count() <= keep {
            return None;
        }
        own()
            .map(|held| &held.id)
            .find(|id| Some(*id) != self.rollout_snapshot.as_ref())
            .cloned()
    }

    fn count_failure(&mut self, failure: &Failure, ctx: &mut Ctx) -> Transition {
        ctx.emit(EventKind::ChildFailed {
            child: self.id.clone(),
            failure: failure.clone(),
        });
        let first = !self.failure_counted;
        self.failure_counted = true;
        Transition {
            failed: first,
            ..Transition::default()
        }
    }

    /// Not known to run: once active, it counts against `max_stopped_per_subnet`.
    pub(super) fn may_be_stopped(&self) -> bool {
        self.run_hint != RunHint::Running
    }

    /// Active and not known to run: the deployer stopped it (or sent the stop) and has not
    /// seen it running since. Counts against `max_stopped_per_subnet`.
    pub(super) fn is_held_stopped(&self) -> bool {
        matches!(self.stage, Stage::Working(_)) && self.may_be_stopped()
    }

    /// The step of its next action, due now or after a backoff: none while a call is in flight
    /// or an unknown outcome is being settled.
    fn next_step(&self) -> Option<Step> {
        let Stage::Working(work) = &self.stage else {
            return None;
        };
        (work.in_flight.is_none() && work.reconciling.is_none()).then_some(work.step)
    }

    /// Its next action, due now or after a backoff, takes or loads a snapshot.
    pub(super) fn next_is_snapshot_work(&self) -> bool {
        self.next_step().is_some_and(Step::is_snapshot_work)
    }

    /// Its next action, due now or after a backoff, is the stop that takes it out of service.
    pub(super) fn next_stops_it(&self) -> bool {
        self.next_step() == Some(Step::Stop) && self.run_hint == RunHint::Running
    }

    /// Ends with `verdict` once the child runs: at once if it is known to run, after a start
    /// otherwise.
    fn bring_back(&mut self, verdict: Verdict, ctx: &mut Ctx) -> Transition {
        if self.run_hint == RunHint::Running {
            return self.finish(verdict);
        }
        self.enter(
            Goal::Restart(AfterRestart::Finish(verdict)),
            Step::Start,
            ctx,
        )
    }

    fn roll_back(
        &mut self,
        cause: RollbackCause,
        snapshot: SnapshotId,
        ctx: &mut Ctx,
    ) -> Transition {
        let first = if self.run_hint == RunHint::Stopped {
            Step::LoadSnapshot
        } else {
            Step::Stop
        };
        self.enter(Goal::RollBack { cause, snapshot }, first, ctx)
    }

    fn park(&mut self, failure: Failure, ctx: &mut Ctx) -> Transition {
        if self.run_hint == RunHint::Stopped {
            return self.finish(Verdict::LeftStopped(failure));
        }
        self.enter(Goal::Park(failure), Step::Stop, ctx)
    }
}

/// The snapshot the next one replaces: the oldest the deployer made, once it made `keep` of
/// them (the policy's retention) or the child is full. `Err` when the child is full of
/// snapshots the deployer did not make.
fn replacement(
    snapshots: &[ExistingSnapshot],
    keep: Option<u8>,
) -> Result<Option<SnapshotId>, SnapshotLimitReached> {
    let mut own = snapshots
        .iter()
        .filter(|snapshot| snapshot.made_by_deployer);
    let kept_enough = keep.is_some_and(|keep| own.clone().count() >= usize::from(keep));
    if !kept_enough && snapshots.len() < MAX_SNAPSHOTS_PER_CANISTER {
        return Ok(None);
    }
    own.next()
        .map(|snapshot| Some(snapshot.id.clone()))
        .ok_or(SnapshotLimitReached)
}

/// The child holds the maximum of snapshots, none of them the deployer's.
#[derive(Debug)]
struct SnapshotLimitReached;
