//! The steps themselves: the action a child's current step takes, what each outcome means
//! for it, how an unknown outcome is settled by reading the child, and where a failure leads.
//! The tables in the engine module docs describe exactly this code.

use super::super::action::{
    classify, reject_code, Action, ActionKind, Observation, Outcome, OutcomeError, RejectClass,
    Reply, RunStatus, Step,
};
use super::super::budget::cycles_for_upgrade;
use super::super::plan::{
    Delivery, ExistingSnapshot, ModuleHash, Nanos, OnFailure, Operation, SnapshotId, SubnetIndex,
};
use super::super::status::{CallResult, EventKind, StepRecord};
use super::{
    AfterRestart, CallFailure, Child, Ctx, Failure, FailureKind, Goal, Poll, Reconciling,
    RollbackCause, RunHint, Stage, Transition, Verdict, Work,
};

impl Child {
    /// The next action of an active child, unless one is in flight or a backoff runs.
    pub(in crate::engine) fn poll(&mut self, ctx: &mut Ctx) -> Poll {
        if let Some(waiting) = self.waiting(ctx.now) {
            return waiting;
        }
        let Stage::Working(work) = &self.stage else {
            unreachable!("a child that is not working waits");
        };
        let replace = match work.step {
            Step::TakeSnapshot => self.snapshot_to_replace(ctx.policy.keep_snapshots),
            Step::DeleteSnapshot => self.excess_snapshot(ctx.policy.keep_snapshots),
            _ => None,
        };
        let Stage::Working(work) = &mut self.stage else {
            unreachable!("the child was working a moment ago");
        };
        let (kind, attempt) = match &work.reconciling {
            Some(reconciling) => (
                ActionKind::Reconcile {
                    list_snapshots: matches!(work.step, Step::TakeSnapshot | Step::DeleteSnapshot),
                },
                reconciling.attempt,
            ),
            None => {
                let kind = match (work.step, &work.goal) {
                    (Step::CheckCycles, _) => ActionKind::CheckCycles,
                    (Step::Stop, _) => {
                        self.run_hint = RunHint::Unsure;
                        ActionKind::Stop
                    }
                    (Step::TakeSnapshot, _) => ActionKind::TakeSnapshot {
                        // `begin` refused children without a replaceable snapshot; should the
                        // IC still find the child full, its reject fails the step.
                        replace,
                    },
                    (Step::Install, _) => install_action(ctx, self.subnet),
                    (Step::Start, _) => {
                        self.run_hint = RunHint::Unsure;
                        ActionKind::Start
                    }
                    (Step::Verify, goal) => ActionKind::ReadStatus {
                        expected_module: expected_module(goal, self.previous_module, ctx),
                    },
                    (Step::HealthCheck, _) => ActionKind::HealthCheck {
                        method: ctx
                            .policy
                            .verification
                            .health_method
                            .clone()
                            .expect("the health check step is only scheduled with a method"),
                    },
                    (Step::DeleteSnapshot, _) => ActionKind::DeleteSnapshot {
                        snapshot: replace.expect("a deletion is only scheduled for an excess"),
                    },
                    (Step::LoadSnapshot, Goal::RollBack { snapshot, .. }) => {
                        ActionKind::LoadSnapshot {
                            snapshot: snapshot.clone(),
                        }
                    }
                    (step, goal) => unreachable!("no {step:?} step on the {:?} path", goal.path()),
                };
                (kind, work.attempt)
            }
        };
        work.in_flight = Some(ctx.next_action);
        self.history.push(StepRecord {
            step: kind.step(),
            path: work.goal.path(),
            attempt,
            issued_at: ctx.now,
            finished_at: None,
            result: None,
        });
        Poll::Emit {
            kind,
            path: work.goal.path(),
            attempt,
        }
    }

    /// What [`Child::poll`] answers without issuing anything, or `None` when the child's next
    /// action is due: dispatch asks this of every active child, and polls only those due.
    pub(in crate::engine) fn waiting(&self, now: Nanos) -> Option<Poll> {
        let Stage::Working(work) = &self.stage else {
            return Some(Poll::Busy);
        };
        if work.in_flight.is_some() {
            return Some(Poll::Busy);
        }
        (work.not_before > now).then_some(Poll::Wait(work.not_before))
    }

    /// Feeds back the outcome of this child's in-flight `action`. Refuses, unchanged, a reply
    /// that does not fit the action.
    pub(in crate::engine) fn apply_outcome(
        &mut self,
        action: &Action,
        outcome: Outcome,
        ctx: &mut Ctx,
    ) -> Result<Transition, OutcomeError> {
        check_reply_fits(action, &outcome)?;
        let Stage::Working(work) = &mut self.stage else {
            return Err(OutcomeError::NotInFlight(action.id));
        };
        work.in_flight = None;
        let reconciling = work.reconciling.take();
        let step = work.step;
        if let Some(record) = self.history.last_mut() {
            record.finished_at = Some(ctx.now);
            record.result = Some(match &outcome {
                Outcome::Ok(_) => CallResult::Replied,
                Outcome::Rejected { code, message } => CallResult::Rejected {
                    code: *code,
                    message: message.clone(),
                },
                Outcome::Unknown => CallResult::Unknown,
            });
        }
        let failure = match outcome {
            Outcome::Ok(reply) => {
                return Ok(match (reply, reconciling) {
                    (Reply::Status(observation), Some(reconciling)) => {
                        self.reconciled(observation, reconciling.cause, ctx)
                    }
                    (Reply::Status(observation), None) if step == Step::CheckCycles => {
                        self.cycles_checked(observation, ctx)
                    }
                    (Reply::Status(observation), None) => self.verified(observation, ctx),
                    (Reply::Snapshot(id), _) => {
                        let replaced = self.snapshot_to_replace(ctx.policy.keep_snapshots);
                        self.record_snapshot(id, replaced, ctx);
                        self.advance(ctx)
                    }
                    (Reply::Done, _) if step == Step::DeleteSnapshot => {
                        let ActionKind::DeleteSnapshot { snapshot } = &action.kind else {
                            unreachable!("the deletion's own action")
                        };
                        self.snapshot_deleted(snapshot.clone(), true, ctx);
                        self.advance(ctx)
                    }
                    (Reply::Done, _) => {
                        match step {
                            Step::Install => self.installed = true,
                            Step::Start => self.run_hint = RunHint::Running,
                            Step::Stop => self.run_hint = RunHint::Stopped,
                            _ => {}
                        }
                        self.advance(ctx)
                    }
                });
            }
            Outcome::Rejected { code, message } => CallFailure {
                class: classify(code),
                code,
                message,
            },
            Outcome::Unknown => CallFailure {
                class: RejectClass::Unknown,
                code: reject_code::SYS_UNKNOWN,
                message: "outcome lost: the deployer was upgraded during the call".into(),
            },
        };
        Ok(match reconciling {
            Some(reconciling) => self.reconcile_failed(reconciling, failure, ctx),
            None => self.step_failed(failure, ctx),
        })
    }

    fn record_snapshot(&mut self, id: SnapshotId, replaced: Option<SnapshotId>, ctx: &mut Ctx) {
        if let Some(replaced) = &replaced {
            self.snapshots.retain(|snapshot| &snapshot.id != replaced);
        }
        self.snapshots.push(ExistingSnapshot {
            id: id.clone(),
            made_by_deployer: true,
        });
        self.rollout_snapshot = Some(id.clone());
        ctx.emit(EventKind::SnapshotTaken {
            child: self.id.clone(),
            snapshot: id,
            replaced,
        });
    }

    /// The deployer no longer holds `snapshot`: deleted, or (`deleted` false) not deleted for
    /// good and left to the child's other controllers.
    fn snapshot_deleted(&mut self, snapshot: SnapshotId, deleted: bool, ctx: &mut Ctx) {
        if deleted {
            self.snapshots.retain(|held| held.id != snapshot);
        } else if let Some(held) = self.snapshots.iter_mut().find(|held| held.id == snapshot) {
            held.made_by_deployer = false;
        }
        ctx.emit(EventKind::SnapshotDeleted {
            child: self.id.clone(),
            snapshot,
            deleted,
        });
    }

    /// The step succeeded: on to the next step of the path, or to its end. Once the snapshot is
    /// taken, the deployer's snapshots beyond the policy's `keep_snapshots` are deleted first,
    /// oldest first.
    fn advance(&mut self, ctx: &mut Ctx) -> Transition {
        let work = self.work();
        let after_snapshot = matches!(work.step, Step::TakeSnapshot | Step::DeleteSnapshot);
        if after_snapshot && self.excess_snapshot(ctx.policy.keep_snapshots).is_some() {
            let work = self.work();
            work.step = Step::DeleteSnapshot;
            work.attempt = 1;
            work.refusals = 0;
            work.not_before = ctx.now;
            return Transition::default();
        }
        let snapshots = ctx.takes_snapshot();
        let health_check = ctx.policy.verification.health_method.is_some();
        let stopped = self.run_hint != RunHint::Running;
        let work = self.work();
        // The deletions done, the path goes on as after the snapshot.
        let step = match work.step {
            Step::DeleteSnapshot => Step::TakeSnapshot,
            step => step,
        };
        let next = match (ctx.operation, &work.goal, step) {
            (Operation::Backup(run), Goal::Upgrade, Step::CheckCycles) if !run.stop_children => {
                Some(Step::TakeSnapshot)
            }
            (Operation::Backup(_), Goal::Upgrade, Step::TakeSnapshot) if stopped => {
                Some(Step::Start)
            }
            (Operation::Backup(_), Goal::Upgrade, Step::TakeSnapshot | Step::Start) => {
                Some(Step::Verify)
            }
            (_, goal, step) => next_step(goal, step, snapshots, health_check),
        };
        if let Some(step) = next {
            work.step = step;
            work.attempt = 1;
            work.refusals = 0;
            work.not_before = ctx.now;
            return Transition::default();
        }
        let goal = std::mem::replace(&mut work.goal, Goal::Upgrade);
        match goal {
            Goal::Upgrade if ctx.operation.release().is_none() => self.finish(Verdict::BackedUp),
            Goal::Upgrade => self.finish(Verdict::Upgraded),
            Goal::RollBack { cause, .. } => self.finish(Verdict::RolledBack(cause)),
            Goal::Park(failure) => self.finish(Verdict::LeftStopped(failure)),
            Goal::Restart(AfterRestart::Finish(verdict)) => self.finish(verdict),
            Goal::Restart(AfterRestart::Requeue) => self.requeue(ctx),
            Goal::Restart(AfterRestart::RetryStop { resume, attempt }) => {
                let at = ctx.now + ctx.policy.retry.backoff(attempt - 1);
                self.stage = Stage::Working(Work {
                    goal: *resume,
                    step: Step::Stop,
                    attempt,
                    refusals: 0,
                    reconciling: None,
                    in_flight: None,
                    not_before: at,
                });
                ctx.emit(EventKind::RetryScheduled {
                    child: self.id.clone(),
                    step: Step::Stop,
                    attempt,
                    at,
                });
                Transition::default()
            }
        }
    }

    /// The status read before the upgrade begins: a child that could not pay for its
    /// snapshot and install is left as it is, running.
    fn cycles_checked(&mut self, observation: Observation, ctx: &mut Ctx) -> Transition {
        let Some(funds) = observation.funds else {
            unreachable!("check_reply_fits admits a cycles check's status only with funds")
        };
        let required = cycles_for_upgrade(&funds, ctx.takes_snapshot());
        if funds.cycles < required {
            let balance = funds.cycles;
            return self.fail(FailureKind::InsufficientCycles { balance, required }, ctx);
        }
        self.advance(ctx)
    }

    /// A status read for verification: the expected module must run (after a restore, whatever
    /// module the snapshot held).
    fn verified(&mut self, observation: Observation, ctx: &mut Ctx) -> Transition {
        self.run_hint = hint_from(observation.status);
        let previous = self.previous_module;
        let restore = matches!(
            self.work().goal,
            Goal::RollBack {
                cause: RollbackCause::Restore,
                ..
            }
        );
        let expected = expected_module(&self.work().goal, previous, ctx);
        if restore && observation.module_hash.is_some() {
            self.restored_module = observation.module_hash;
        } else if observation.module_hash != expected {
            let found = observation.module_hash;
            return self.fail(FailureKind::ModuleMismatch { expected, found }, ctx);
        }
        if observation.status != RunStatus::Running {
            let status = observation.status;
            return self.fail(FailureKind::NotRunning { status }, ctx);
        }
        self.advance(ctx)
    }

    /// A pipeline step was rejected or its outcome is unknown.
    fn step_failed(&mut self, failure: CallFailure, ctx: &mut Ctx) -> Transition {
        let step = self.work().step;
        // A stop's reject does not say whether the child is left stopping (a timed-out stop
        // does that), and a snapshot or install with an unknown outcome may have happened: the
        // child is read before anything else. Except the upgrade's stop refused for good (the
        // deployer is no controller, someone's start cancelled it): it was sent to a running
        // child and did nothing, so the child still runs.
        let upgrade_stop_refused = step == Step::Stop
            && matches!(self.work().goal, Goal::Upgrade)
            && failure.class == RejectClass::Permanent;
        if upgrade_stop_refused {
            self.run_hint = RunHint::Running;
        }
        let reconcile = match step {
            Step::Stop => !upgrade_stop_refused,
            Step::TakeSnapshot | Step::Install => failure.class == RejectClass::Unknown,
            // Whether a failed deletion happened only the listing tells (a retry of one that
            // did is refused, the snapshot being gone).
            Step::DeleteSnapshot => true,
            _ => false,
        };
        if reconcile {
            ctx.emit(EventKind::Reconciling {
                child: self.id.clone(),
                step,
            });
            let work = self.work();
            work.reconciling = Some(Reconciling {
                attempt: 1,
                cause: failure,
            });
            work.not_before = ctx.now;
            return Transition::default();
        }
        self.step_did_not_happen(failure, ctx)
    }

    /// A deletion that the listing shows did not happen. Retention is no reason to fail an
    /// upgrade: refused for good, or failing on every attempt, the snapshot is left to the
    /// child and the path goes on.
    fn deletion_failed(
        &mut self,
        snapshot: SnapshotId,
        failure: CallFailure,
        ctx: &mut Ctx,
    ) -> Transition {
        let attempts_left = self.work().attempt < ctx.policy.retry.max_attempts;
        if failure.class != RejectClass::Permanent && attempts_left {
            return self.retry(failure, ctx);
        }
        self.snapshot_deleted(snapshot, false, ctx);
        self.advance(ctx)
    }

    /// The step did not take effect: a permanent reject fails it (a start that runs the child
    /// again only once refused too often), anything else is retried.
    fn step_did_not_happen(&mut self, failure: CallFailure, ctx: &mut Ctx) -> Transition {
        match failure.class {
            RejectClass::Permanent if self.restarts_the_child() => self.start_refused(failure, ctx),
            RejectClass::Permanent => {
                let CallFailure { code, message, .. } = failure;
                self.fail(FailureKind::Rejected { code, message }, ctx)
            }
            RejectClass::Transient | RejectClass::Unknown => self.retry(failure, ctx),
        }
    }

    /// Whether the current step is a start that brings the child back after a failure: giving
    /// it up leaves the child stopped, an outage the policy did not ask for. (The upgrade's own
    /// start failing is a failed upgrade, handled as the policy says.)
    fn restarts_the_child(&mut self) -> bool {
        let work = self.work();
        work.step == Step::Start && matches!(work.goal, Goal::Restart(_) | Goal::RollBack { .. })
    }

    /// A start that brings the child back was refused with a permanent code. The cause (say,
    /// the deployer removed from the controllers) may be fixed meanwhile, so it is tried again
    /// with backoff until it has been refused `max_attempts` times; then the child is left for
    /// an operator to start, and the verdict says so.
    fn start_refused(&mut self, failure: CallFailure, ctx: &mut Ctx) -> Transition {
        let max_attempts = ctx.policy.retry.max_attempts;
        let work = self.work();
        work.refusals += 1;
        if work.refusals >= max_attempts {
            let CallFailure { code, message, .. } = failure;
            return self.fail(FailureKind::StartRefused { code, message }, ctx);
        }
        self.retry(failure, ctx)
    }

    /// Tries the step again after a backoff. Starts are never given up on while they fail
    /// transiently: giving up would leave the child stopped.
    fn retry(&mut self, failure: CallFailure, ctx: &mut Ctx) -> Transition {
        let retry = ctx.policy.retry;
        let work = self.work();
        if work.step != Step::Start && work.attempt >= retry.max_attempts {
            let CallFailure { code, message, .. } = failure;
            return self.fail(FailureKind::RetriesExhausted { code, message }, ctx);
        }
        let at = ctx.now + retry.backoff(work.attempt);
        work.attempt += 1;
        work.not_before = at;
        let (step, attempt) = (work.step, work.attempt);
        ctx.emit(EventKind::RetryScheduled {
            child: self.id.clone(),
            step,
            attempt,
            at,
        });
        Transition::default()
    }

    /// The read that settles an outcome failed. Transient and unknown failures are read again
    /// (reading is harmless); a permanent one means the child cannot be observed, so it is
    /// started (it may be stopped) and left for a human.
    fn reconcile_failed(
        &mut self,
        mut reconciling: Reconciling,
        failure: CallFailure,
        ctx: &mut Ctx,
    ) -> Transition {
        if failure.class != RejectClass::Permanent {
            let work = self.work();
            work.not_before = ctx.now + ctx.policy.retry.backoff(reconciling.attempt);
            reconciling.attempt += 1;
            work.reconciling = Some(reconciling);
            return Transition::default();
        }
        let problem = Failure {
            step: Step::Reconcile,
            attempts: reconciling.attempt,
            kind: FailureKind::Rejected {
                code: failure.code,
                message: failure.message,
            },
        };
        let original = self.recovery_cause();
        let mut transition = self.count_failure(&problem, ctx);
        self.run_hint = RunHint::Unsure;
        transition |= self.bring_back(Verdict::NeedsAttention { problem, original }, ctx);
        transition
    }

    /// Decides a step whose outcome was unknown (or, for a stop, whose reject was ambiguous)
    /// from what the child shows.
    fn reconciled(
        &mut self,
        observation: Observation,
        cause: CallFailure,
        ctx: &mut Ctx,
    ) -> Transition {
        self.run_hint = hint_from(observation.status);
        match self.work().step {
            Step::Stop => match observation.status {
                RunStatus::Stopped => self.advance(ctx),
                RunStatus::Running => self.step_did_not_happen(cause, ctx),
                RunStatus::Stopping => self.stop_stuck(cause, ctx),
            },
            Step::TakeSnapshot => {
                let replace = self.snapshot_to_replace(ctx.policy.keep_snapshots);
                let listing = observation.snapshots.unwrap_or_default();
                match read_listing(&self.snapshots, replace.as_ref(), &listing) {
                    SnapshotReading::Taken(id) => {
                        self.record_snapshot(id, replace, ctx);
                        self.advance(ctx)
                    }
                    SnapshotReading::NotTaken => self.step_did_not_happen(cause, ctx),
                    SnapshotReading::Unclear => self.fail(FailureKind::UnidentifiedSnapshot, ctx),
                }
            }
            Step::DeleteSnapshot => {
                let snapshot = self
                    .excess_snapshot(ctx.policy.keep_snapshots)
                    .expect("the deletion's target is still the excess");
                let listing = observation.snapshots.unwrap_or_default();
                if listing.contains(&snapshot) {
                    self.deletion_failed(snapshot, cause, ctx)
                } else {
                    self.snapshot_deleted(snapshot, true, ctx);
                    self.advance(ctx)
                }
            }
            Step::Install => {
                let found = observation.module_hash;
                let release = ctx.operation.release().expect("only an upgrade installs");
                if found == Some(release.module_hash) {
                    self.installed = true;
                    self.advance(ctx)
                } else if found != self.previous_module {
                    self.fail(FailureKind::ConcurrentChange { found }, ctx)
                } else if observation.status != RunStatus::Stopped {
                    let status = observation.status;
                    self.fail(FailureKind::StatusChanged { status }, ctx)
                } else {
                    self.step_did_not_happen(cause, ctx)
                }
            }
            step => unreachable!("{step:?} is never reconciled"),
        }
    }

    /// The stop timed out and the child is still stopping, refusing every call: start it
    /// again, then retry the stop if the policy allows another attempt.
    fn stop_stuck(&mut self, cause: CallFailure, ctx: &mut Ctx) -> Transition {
        ctx.emit(EventKind::StopStuck {
            child: self.id.clone(),
        });
        let max_attempts = ctx.policy.retry.max_attempts;
        let work = self.work();
        if cause.class == RejectClass::Permanent || work.attempt >= max_attempts {
            return self.fail(FailureKind::StopStuck, ctx);
        }
        let attempt = work.attempt + 1;
        let resume = Box::new(std::mem::replace(&mut work.goal, Goal::Upgrade));
        self.enter(
            Goal::Restart(AfterRestart::RetryStop { resume, attempt }),
            Step::Start,
            ctx,
        )
    }

    /// What went wrong first and sent the child down its current recovery path.
    fn recovery_cause(&mut self) -> Option<Failure> {
        fn of_goal(goal: &Goal) -> Option<Failure> {
            match goal {
                Goal::RollBack {
                    cause: RollbackCause::Failure(failure),
                    ..
                }
                | Goal::Park(failure) => Some(failure.clone()),
                Goal::Restart(AfterRestart::Finish(verdict)) => verdict.first_failure().cloned(),
                // The restart follows the stuck stop (the attempt before the one to resume
                // with), unless the path it interrupted was itself a recovery.
                Goal::Restart(AfterRestart::RetryStop { resume, attempt }) => {
                    of_goal(resume).or(Some(Failure {
                        step: Step::Stop,
                        attempts: attempt - 1,
                        kind: FailureKind::StopStuck,
                    }))
                }
                _ => None,
            }
        }
        of_goal(&self.work().goal)
    }

    /// The current step failed for good. An upgrade falls back as the policy says; a failed
    /// recovery leaves the child for a human, started again if it may be stopped.
    fn fail(&mut self, kind: FailureKind, ctx: &mut Ctx) -> Transition {
        let work = self.work();
        let failure = Failure {
            step: work.step,
            attempts: work.attempt,
            kind,
        };
        let is_upgrade = matches!(work.goal, Goal::Upgrade);
        let mut transition = self.count_failure(&failure, ctx);
        transition |= match (is_upgrade, self.installed) {
            (false, _) => {
                // A start that failed for good (refused too often) is not tried once more.
                let start_failed = failure.step == Step::Start;
                let verdict = Verdict::NeedsAttention {
                    problem: failure,
                    original: self.recovery_cause(),
                };
                if start_failed {
                    self.finish(verdict)
                } else {
                    self.bring_back(verdict, ctx)
                }
            }
            (true, true) => match (ctx.policy.on_failure, self.rollout_snapshot.clone()) {
                (OnFailure::RollBack, Some(snapshot)) => {
                    self.roll_back(RollbackCause::Failure(failure), snapshot, ctx)
                }
                _ => self.park(failure, ctx),
            },
            (true, false) => {
                if ctx.policy.on_failure == OnFailure::LeaveStopped
                    && self.run_hint == RunHint::Stopped
                {
                    self.finish(Verdict::LeftStopped(failure))
                } else {
                    self.bring_back(Verdict::Failed(failure), ctx)
                }
            }
        };
        transition
    }
}

enum SnapshotReading {
    Taken(SnapshotId),
    NotTaken,
    /// Snapshots appeared or vanished that the deployer's one call cannot explain.
    Unclear,
}

/// Whether a snapshot call with an unknown outcome took effect, from the listing read after
/// it. `replace` is deleted by the IC only once the new snapshot exists.
fn read_listing(
    known: &[ExistingSnapshot],
    replace: Option<&SnapshotId>,
    listing: &[SnapshotId],
) -> SnapshotReading {
    let mut new = listing
        .iter()
        .filter(|id| !known.iter().any(|snapshot| &snapshot.id == *id));
    let replaced_gone = replace.is_some_and(|id| !listing.contains(id));
    match (new.next(), new.next()) {
        (Some(taken), None) if replace.is_none() || replaced_gone => {
            SnapshotReading::Taken(taken.clone())
        }
        (None, None) if !replaced_gone => SnapshotReading::NotTaken,
        _ => SnapshotReading::Unclear,
    }
}

/// The upgrade's next step after `step`, or `None` at the end of the path.
fn next_step(goal: &Goal, step: Step, snapshots: bool, health_check: bool) -> Option<Step> {
    match (goal, step) {
        (Goal::Upgrade, Step::CheckCycles) => Some(Step::Stop),
        (Goal::Upgrade, Step::Stop) if snapshots => Some(Step::TakeSnapshot),
        (Goal::Upgrade, Step::Stop | Step::TakeSnapshot) => Some(Step::Install),
        (Goal::Upgrade, Step::Install) => Some(Step::Start),
        (Goal::Upgrade, Step::Start) => Some(Step::Verify),
        (Goal::Upgrade, Step::Verify) if health_check => Some(Step::HealthCheck),
        (Goal::RollBack { .. }, Step::Stop) => Some(Step::LoadSnapshot),
        (Goal::RollBack { .. }, Step::LoadSnapshot) => Some(Step::Start),
        (Goal::RollBack { .. }, Step::Start) => Some(Step::Verify),
        _ => None,
    }
}

/// What a verification reads: the release after an upgrade's install, the previous module
/// after a rollback or a backup run's snapshot.
fn expected_module(goal: &Goal, previous: Option<ModuleHash>, ctx: &Ctx) -> Option<ModuleHash> {
    match (goal, ctx.operation.release()) {
        (Goal::Upgrade, Some(release)) => Some(release.module_hash),
        _ => previous,
    }
}

fn hint_from(status: RunStatus) -> RunHint {
    match status {
        RunStatus::Running => RunHint::Running,
        RunStatus::Stopped => RunHint::Stopped,
        RunStatus::Stopping => RunHint::Unsure,
    }
}

fn install_action(ctx: &Ctx, subnet: SubnetIndex) -> ActionKind {
    let release = ctx.operation.release().expect("only an upgrade installs");
    let module_hash = release.module_hash;
    let options = ctx.policy.install.clone();
    match release.delivery {
        Delivery::InstallCode => ActionKind::InstallCode {
            module_hash,
            options,
        },
        Delivery::ChunkStore => ActionKind::InstallChunked {
            module_hash,
            subnet,
            options,
        },
    }
}

fn check_reply_fits(action: &Action, outcome: &Outcome) -> Result<(), OutcomeError> {
    let Outcome::Ok(reply) = outcome else {
        return Ok(());
    };
    let fits = match (&action.kind, reply) {
        (ActionKind::TakeSnapshot { .. }, Reply::Snapshot(_)) => true,
        (ActionKind::ReadStatus { .. }, Reply::Status(_)) => true,
        (ActionKind::CheckCycles, Reply::Status(observation)) => observation.funds.is_some(),
        (ActionKind::Reconcile { list_snapshots }, Reply::Status(observation)) => {
            !list_snapshots || observation.snapshots.is_some()
        }
        (
            ActionKind::Stop
            | ActionKind::InstallCode { .. }
            | ActionKind::InstallChunked { .. }
            | ActionKind::Start
            | ActionKind::HealthCheck { .. }
            | ActionKind::LoadSnapshot { .. }
            | ActionKind::DeleteSnapshot { .. },
            Reply::Done,
        ) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(OutcomeError::UnexpectedReply {
            action: action.id,
            step: action.kind.step(),
        })
    }
}
