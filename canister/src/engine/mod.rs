//! The rollout engine: a plain state machine, driven by time and outcomes, that decides which
//! management step each child takes next. It performs no IC calls and touches no stable
//! memory, so any sequence of outcomes can be fed to it in a test. [`crate::rollouts`] stores
//! and journals it; the driver (`crate::rollout_driver`) makes its calls.
//!
//! | file                            | what it holds                                                   |
//! |---------------------------------|-----------------------------------------------------------------|
//! | `rollout.rs`                    | [`Rollout`], the whole rollout: waves, concurrency, control     |
//! | `child.rs`, `child/pipeline.rs` | [`Child`], one child's path: its steps and where they lead      |
//! | `plan.rs`                       | [`Plan`], [`Policy`], [`Operation`]: what it is asked to do     |
//! | `action.rs`                     | [`Action`], [`Outcome`]: the calls it asks for, their results   |
//! | `status.rs`                     | phases, [`Summary`], step histories, [`Event`]s                 |
//! | `budget.rs`                     | [`cycles_needed`]: what the calls of a dispatch cost            |
//! | `tests.rs`, `control_tests.rs`  | scenario tests, on `world.rs`'s model of the children           |
//! | `proptests.rs`                  | property tests, on the same model                               |
//!
//! # The driver's contract
//!
//! 1. [`Rollout::new`] from a validated [`Plan`] (children already on the release are
//!    `Skipped(AlreadyOnRelease)` and never touched).
//! 2. [`Rollout::next_actions`]`(now, max_new)` returns the actions now in flight, at most
//!    `max_new` of them (room left in the output queue to the management canister, which
//!    holds 500 messages), and the earliest time something else becomes due (arm the timer
//!    for it). Actions that did not fit are counted in [`Dispatch::held_back`]: call again
//!    once there is room; their children go first then. The limit is an input like `now`: a
//!    journal replaying this call must pass the same one. Persist the rollout (it is serde,
//!    store it as CBOR) *before* making the calls, in the same message, so a journal never
//!    lacks an action whose call was made.
//!    [`cycles_needed`] estimates what the calls cost; when the balance cannot pay for the
//!    next steps, [`Rollout::pause_for_cycles`] stops new children from starting (issued
//!    actions stay in flight: make their calls, or feed back the reject of each that fails).
//! 3. Map each [`Action`] to its call ([`ActionKind`] documents call and reply) and feed the
//!    result back with [`Rollout::on_outcome`]; persist again; call `next_actions` again.
//! 4. After the deployer's own upgrade: load the rollout, call
//!    [`Rollout::mark_in_flight_unknown`] (their callbacks are gone), re-arm the timer, call
//!    `next_actions`. Every step whose outcome is unknown is settled by reading the child.
//! 5. Drain [`Rollout::drain_events`] into the deployer's log; serve [`Rollout::summary`] and
//!    each [`Child::history`] to dashboards.
//!
//! # Scheduling rules
//!
//! - At most one action in flight per child.
//! - At most `max_concurrency` children *active* (between their first step and their final
//!   state, backoffs included).
//! - With `max_stopped_per_subnet`: at most that many active children of one subnet that the
//!   engine does not know to run (from the stop it issues to the start it sees succeed); the
//!   stop that would take one more out of service waits, outside `max_new` and `held_back`,
//!   until one of them runs again (its outcome is what triggers the next dispatch). A child
//!   left stopped begins the rollback of the whole rollout stopped, so its admission waits
//!   the same way (the rollback queue waits behind it).
//! - At most [`SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET`] takes and loads of snapshots in flight per
//!   subnet: a child whose such step is due waits, outside `max_new` and `held_back`, until one
//!   of them ends (its outcome is what triggers the next dispatch). A subnet runs few snapshots
//!   a round and its management queue is first in, first out: more would hold every install,
//!   start and status read of the subnet behind them.
//! - Waves in order: a wave starts once the previous one has no active or queued child left
//!   and `bake_nanos` have passed since it finished. Waves never overlap.
//! - No child starts while the rollout is paused, aborted, completed, or over the failure
//!   budget (exceeding it pauses the rollout with [`PauseReason::FailureBudgetExceeded`]).
//!   Children already started always run their pipeline to a final state.
//!
//! # Rollout phases
//!
//! | Phase        | Event                                        | Next phase   |
//! |--------------|----------------------------------------------|--------------|
//! | Running      | `pause`                                      | Paused(Operator) |
//! | Running      | `pause_for_cycles` (the balance cannot pay; children not yet installed are started again if stopped and requeued) | Paused(InsufficientCycles) |
//! | Running      | a wave's failures exceed its budget          | Paused(FailureBudgetExceeded) |
//! | Running      | the last wave finished                       | Completed    |
//! | Paused       | `resume`                                     | Running      |
//! | Running, Paused, RollingBack | `abort`                      | Aborted (final once no child is active) |
//! | Running, Paused, Aborted, Completed | `rollback_all`        | RollingBack  |
//! | RollingBack  | no child active or awaiting rollback         | RolledBack   |
//!
//! # Child paths
//!
//! A child is `Queued`, `Active { path, step }`, `AwaitingRollback` or `Finished(Verdict)`.
//! An active child follows one [`Path`]:
//!
//! | Path     | Steps                                                        | Ends in |
//! |----------|--------------------------------------------------------------|---------|
//! | Upgrade  | CheckCycles → Stop → TakeSnapshot (policy) → Install → Start → Verify(release) → HealthCheck (if named) | Upgraded |
//! | Upgrade, in a backup run | CheckCycles → Stop (if `stop_children`) → TakeSnapshot → Start (if stopped) → Verify(previous) → HealthCheck (if named) | BackedUp |
//! | RollBack | Stop (unless known stopped) → LoadSnapshot → Start → Verify(previous) | RolledBack |
//! | RollBack, in a restore | Stop (unless known stopped) → LoadSnapshot(chosen) → Start → Verify(some module, running) | RolledBack(Restore) |
//! | Restart  | Start                                                        | Failed, Cancelled, NeedsAttention, back to Stop (stuck-stop retry), or back to the wave's queue (paused for cycles) |
//! | Park     | Stop (unless known stopped)                                  | LeftStopped |
//!
//! # Step outcomes
//!
//! Rejects are classified by code ([`classify`]): 2 transient; 1, 3, 4, 5 permanent;
//! 6 (`SYS_UNKNOWN`), [`Outcome::Unknown`] and undefined codes unknown. "Retry" waits
//! `base * 2^(attempt-1)` (at most `max_backoff`) and gives up after `max_attempts`, except a
//! Start, which is retried without limit while it fails transiently (giving up would leave the
//! child stopped); a Start that brings the child back (Restart, RollBack) is also retried after
//! permanent refusals, up to `max_attempts` of them. Reconcile reads (`canister_status`, plus
//! `list_canister_snapshots` for a snapshot step) are retried the same way, without limit.
//!
//! | Step          | Ok                              | Transient       | Permanent | Unknown   |
//! |---------------|---------------------------------|-----------------|-----------|-----------|
//! | CheckCycles   | the balance pays for snapshot and install ([`cycles_for_upgrade`]): Stop; else fail `InsufficientCycles` (never stopped) | retry | fail | retry |
//! | Stop          | next step                       | Reconcile       | Upgrade: fail, the child runs; other paths: Reconcile | Reconcile |
//! | TakeSnapshot  | record id (owned by deployer); next | retry       | fail      | Reconcile |
//! | Install       | installed; Start                | retry           | fail      | Reconcile |
//! | Start         | next step / end of path         | retry (no cap)  | Upgrade: fail; Restart, RollBack: retry up to `max_attempts` refusals, then fail `StartRefused` | retry (no cap) |
//! | Verify        | hash and `running` as expected → next, else fail | retry | fail | retry |
//! | HealthCheck   | Upgraded                        | retry           | fail      | retry     |
//! | LoadSnapshot  | Start                           | retry           | fail      | retry (loading is idempotent) |
//! | DeleteSnapshot (after TakeSnapshot, while the deployer holds more than `keep_snapshots`) | the next deletion, or the step after TakeSnapshot | Reconcile | Reconcile | Reconcile |
//!
//! | Reconcile of  | Child shows                                   | Decision |
//! |---------------|-----------------------------------------------|----------|
//! | Stop          | stopped                                       | stop done: next step |
//! | Stop          | running                                       | retry the stop (transient/unknown) or fail (permanent) |
//! | Stop          | stopping (stop timed out)                     | Restart, then retry the stop after a backoff; out of attempts: fail `StopStuck` |
//! | TakeSnapshot  | exactly one new snapshot (and the replaced one gone) | taken: record it, next |
//! | TakeSnapshot  | no new snapshot (replaced one still there)    | not taken: retry |
//! | TakeSnapshot  | anything else                                 | fail `UnidentifiedSnapshot` |
//! | DeleteSnapshot | the snapshot gone                            | deleted: next deletion or step |
//! | DeleteSnapshot | still there                                  | retry (transient, attempts left); else left to the child (no longer the deployer's), next |
//! | Install       | module hash = release                         | installed: Start |
//! | Install       | module hash = previous, stopped               | not installed: retry |
//! | Install       | another hash / not stopped                    | fail `ConcurrentChange` / `StatusChanged` |
//! | any           | the read is rejected permanently              | Restart → NeedsAttention (cannot observe) |
//!
//! | A step fails on path | Condition                                  | Then |
//! |----------------------|--------------------------------------------|------|
//! | Upgrade              | installed, policy RollBack                 | RollBack → RolledBack(Failure) |
//! | Upgrade              | installed, policy LeaveStopped             | Park → LeftStopped |
//! | Upgrade              | not installed, LeaveStopped, known stopped | LeftStopped |
//! | Upgrade              | not installed, otherwise                   | Restart (unless known running) → Failed |
//! | RollBack, Park, Restart | a Start refused `max_attempts` times    | NeedsAttention (`StartRefused`: the child stays stopped until an operator starts it) |
//! | RollBack, Park       | any other failure                          | Restart (unless known running) → NeedsAttention |
//!
//! A pause for cycles reaches an active child at its next decision point too: one not yet
//! installed is started again if it may be stopped and goes back to its wave's queue (its next
//! snapshot replaces the one its first attempt took); an abort ends a requeued child
//! `Cancelled`.
//!
//! Control reaches an active child at its next decision point (no action in flight, no
//! outcome being reconciled): under an abort or a rollback of the whole rollout, a child not
//! yet installed takes Restart (if it may be stopped) and ends `Cancelled`; an installed child
//! finishes its upgrade under an abort and switches to RollBack under `rollback_all`.
//! Recovery paths are never cut short. Children that had not started end `NotStarted`.
//!
//! Snapshots: the engine tracks every snapshot a child holds (from [`ChildSpec::snapshots`]
//! and its own takes). At [`MAX_SNAPSHOTS_PER_CANISTER`] it replaces the oldest one the
//! deployer made, never another; a child full of others' snapshots fails before it is
//! touched (`SnapshotLimit`). Failures of the upgrade count against the wave's budget once
//! per child.

/// Names the engine's decisions: two builds with the same revision turn the same journal into
/// the same rollouts. The journal records inputs (times, outcomes, commands) and is replayed
/// through the engine after an upgrade, so a build whose engine decides differently must not
/// replay another revision's lines: it refuses the upgrade until the deployer was prepared
/// (`prepare_upgrade`, which folds the journal into checkpoints). `revision_tests` pins a
/// fingerprint of each revision's decisions and fails when they change without a new revision.
///
/// The `alternate-dispatch-order` feature builds an engine that serves active children in the
/// reverse order: a second build that decides differently, for the cross-version tests.
pub const ENGINE_REVISION: u32 = if cfg!(feature = "alternate-dispatch-order") {
    1_000_004
} else {
    4
};

mod action;
mod budget;
mod child;
mod plan;
mod rollout;
mod status;
mod tally;

pub use action::{
    bounded_reject_message, classify, reject_code, Action, ActionId, ActionKind, ChildFunds,
    Observation, Outcome, OutcomeError, Path, RejectClass, Reply, RunStatus, Step,
    MAX_REJECT_MESSAGE_BYTES,
};
pub use budget::{
    cycles_for_upgrade, cycles_needed, CallCosts, INLINE_MODULE_ESTIMATE_BYTES,
    INSTALL_PREPAYMENT_CYCLES, NON_INSTALL_ESTIMATE_BYTES,
};
pub use child::{Child, ChildState, Failure, FailureKind, RollbackCause, SkipReason, Verdict};
pub use plan::{
    BackupRun, ChildId, ChildIdTooLong, ChildSpec, Delivery, ExistingSnapshot, FailureBudget,
    GateOverride, InstallOptions, ModuleHash, Nanos, OnFailure, Operation, Plan, PlanError, Policy,
    RestoreRun, RetryPolicy, SnapshotId, SubnetIndex, TargetRelease, UpgradeGate, Verification,
    WasmMemoryPersistence, WavePlan, WaveSize, MAX_CHILD_ID_BYTES, MAX_SNAPSHOTS_PER_CANISTER,
};
pub use rollout::{
    ChildrenApart, Command, ControlError, Dispatch, Rollout, RolloutBuilder,
    SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET,
};
pub use status::{
    CallResult, Event, EventKind, FailureKindCount, PauseReason, RolloutPhase, StateCounts,
    StepRecord, Summary, WaveSummary,
};

#[cfg(test)]
mod control_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod revision_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod world;
