//! The rollout as a whole: waves, the concurrency limit, operator control and the counts
//! dashboards read. Which step a child takes is [`super::child`]'s business.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Bound;

use candid::CandidType;
use serde::{Deserialize, Serialize};

use super::action::{Action, ActionId, ActionKind, Outcome, OutcomeError};
use super::child::{Child, ChildState, Control, Ctx, FailureKind, Poll, Transition};
use super::plan::{ChildId, Nanos, Operation, Plan, PlanError, Policy, SubnetIndex, TargetRelease};
use super::status::{
    Event, EventKind, FailureKindCount, PauseReason, RolloutPhase, Summary, WaveSummary,
};
use super::tally::{ChildCounts, Tally};

mod builder;

pub use builder::RolloutBuilder;

/// What the driver must do now, and when to ask again if nothing completes before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// Actions now in flight: persist the rollout, then make one call per action.
    pub actions: Vec<Action>,
    /// Actions that were ready but not issued because the call's `max_new` was reached. Their
    /// children keep their state and are served first, longest-waiting first, by the next
    /// call with room. They are not reflected in `next_due`: when this is not 0, call
    /// `next_actions` again as soon as there is room (for instance after the next outcome).
    pub held_back: u32,
    /// The earliest time a backoff or a bake ends; `None` when only outcomes can move the
    /// rollout on.
    pub next_due: Option<Nanos>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Serialize, Deserialize)]
pub enum Command {
    Pause,
    Resume,
    Abort,
    RollBackAll,
}

/// Why a control command was refused; the rollout is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    NotAllowed {
        command: Command,
        phase: RolloutPhase,
    },
    /// The policy took no snapshots, so there is nothing to roll back to.
    NoSnapshots,
    /// A backup run or a restore installs nothing, so there is nothing to roll back.
    NothingInstalled,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAllowed { command, phase } => {
                write!(
                    f,
                    "{command:?} is not allowed while the rollout is {phase:?}"
                )
            }
            Self::NoSnapshots => write!(
                f,
                "the rollout took no snapshots (snapshot_before_install is off): \
                 there is nothing to roll back to"
            ),
            Self::NothingInstalled => write!(
                f,
                "a backup run or a restore installs nothing: there is nothing to roll back"
            ),
        }
    }
}

impl std::error::Error for ControlError {}

/// Each child's position, by id.
fn index_of(children: &[Child]) -> BTreeMap<ChildId, u32> {
    (0u32..)
        .zip(children)
        .map(|(index, child)| (child.id().clone(), index))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Wave {
    /// The wave's children are `order[start..end]`.
    start: u32,
    end: u32,
    tolerated_failures: u32,
    failures: u32,
    started_at: Option<Nanos>,
    finished_at: Option<Nanos>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    child: u32,
    action: Action,
}

/// A fleet rollout: a pure state machine fed with time and outcomes. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Named `release` in the stored form, as before backup runs existed.
    #[serde(rename = "release")]
    operation: Operation,
    policy: Policy,
    phase: RolloutPhase,
    children: Vec<Child>,
    index: BTreeMap<ChildId, u32>,
    /// Children needing the upgrade, in wave order.
    order: Vec<u32>,
    waves: Vec<Wave>,
    current_wave: u32,
    /// Position in `order` of the next child to start.
    cursor: u32,
    /// Children between their first step and their final state.
    active: BTreeSet<u32>,
    rollback_queue: VecDeque<u32>,
    /// Children of the current wave sent back to its queue by a pause for cycles (see
    /// [`Rollout::pause_for_cycles`]), served before the wave's next ones. Defaulted so that
    /// rollouts persisted before it existed still load.
    #[serde(default)]
    requeued: VecDeque<u32>,
    in_flight: BTreeMap<ActionId, InFlight>,
    /// Active children whose ready action the last dispatch held back for its limit,
    /// longest-waiting first: the next dispatch serves them before any other child.
    /// Defaulted so that rollouts persisted before dispatch limits existed still load.
    #[serde(default)]
    held_back: Vec<u32>,
    next_action_id: u64,
    started_at: Nanos,
    finished_at: Option<Nanos>,
    events: Vec<Event>,
    /// Children changed since [`Rollout::take_changed`] last took them: what a checkpoint
    /// rewrites. Not state: never stored, and ignored when comparing rollouts.
    #[serde(skip)]
    changed: ChangedChildren,
    /// The children counted for the summary (see `tally`). Not stored; ignored by equality.
    #[serde(skip)]
    tally: Tally,
    /// Children a dispatch polls (see [`MaybeDue`]). Not stored; ignored by equality.
    #[serde(skip)]
    maybe_due: MaybeDue,
    /// Snapshot work per subnet (see [`SnapshotWork`]). Not stored; ignored by equality.
    #[serde(skip)]
    snapshot_work: SnapshotWork,
}

/// What [`Rollout::take_children_apart`] took out, to put back as it was.
pub struct ChildrenApart {
    children: Vec<Child>,
    index: BTreeMap<ChildId, u32>,
    order: Vec<u32>,
}

impl ChildrenApart {
    /// Frees up to `max` children and their index entries; returns whether any are left. A
    /// rollout's children are freed over several messages once they are stored: freeing 10,000
    /// at once, with the writing of the lists below, cost 26 M instructions (their histories
    /// are many small allocations).
    pub fn free_some(&mut self, max: usize) -> bool {
        self.children
            .truncate(self.children.len().saturating_sub(max));
        for _ in 0..max {
            if self.index.pop_last().is_none() {
                break;
            }
        }
        !(self.children.is_empty() && self.index.is_empty())
    }
}

/// The active children a dispatch must poll: every one but those found busy (a call in flight,
/// or between stages) by an earlier dispatch and not changed since, which stay busy. A dispatch
/// then costs what changed since the last, not the rollout's concurrency: polling every active
/// child cost 0.72 M instructions per child at a concurrency of 400 (0.22 M at 100). `None`
/// (a rollout just created, decoded or given its children back) polls every active child.
#[derive(Clone, Debug, Default)]
struct MaybeDue(Option<BTreeSet<u32>>);

impl PartialEq for MaybeDue {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for MaybeDue {}

/// Per subnet, the takes and loads of snapshots in flight and the active children whose due
/// action is one, held while their subnet has [`SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET`] in
/// flight. Held children are out of [`MaybeDue`]: a dispatch puts back as many as their subnet
/// has places free, first in dispatch order, so it does not pass over every held child each
/// time. `None` (a rollout just created, decoded or given its children back, when every active
/// child is polled) is counted again from the in-flight actions. Not stored; ignored by
/// equality.
#[derive(Clone, Debug, Default)]
struct SnapshotWork(Option<Vec<SubnetSnapshotWork>>);

#[derive(Clone, Debug, Default)]
struct SubnetSnapshotWork {
    in_flight: u32,
    held: BTreeSet<u32>,
}

impl SnapshotWork {
    fn of_in_flight<'a>(actions: impl Iterator<Item = (SubnetIndex, &'a ActionKind)>) -> Self {
        let mut work = Self(Some(Vec::new()));
        for (subnet, kind) in actions {
            if kind.step().is_snapshot_work() {
                work.subnet(subnet).in_flight += 1;
            }
        }
        work
    }

    /// The subnet's entry, in a vector indexed by subnet (the registry numbers subnets from 0
    /// as it meets them): a map cost 10 K instructions per child of the 1,000-child bench, the
    /// vector 3 K.
    fn subnet(&mut self, subnet: SubnetIndex) -> &mut SubnetSnapshotWork {
        let subnets = self.0.get_or_insert_with(Vec::new);
        let at = subnet.0 as usize;
        if subnets.len() <= at {
            subnets.resize_with(at + 1, SubnetSnapshotWork::default);
        }
        &mut subnets[at]
    }

    fn is_full(&self, subnet: SubnetIndex) -> bool {
        self.0
            .as_ref()
            .and_then(|subnets| subnets.get(subnet.0 as usize))
            .is_some_and(|work| work.in_flight >= SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET)
    }

    /// The child at `index` was issued an action of `kind` (by a dispatch, which counted the
    /// in-flight actions first).
    fn issued(&mut self, subnet: SubnetIndex, index: u32, kind: &ActionKind) {
        let work = self.subnet(subnet);
        if kind.step().is_snapshot_work() {
            work.in_flight += 1;
        }
        if !work.held.is_empty() {
            work.held.remove(&index);
        }
    }

    fn hold(&mut self, subnet: SubnetIndex, index: u32) {
        self.subnet(subnet).held.insert(index);
    }

    fn ended(&mut self, subnet: SubnetIndex, kind: &ActionKind) {
        if !kind.step().is_snapshot_work() {
            return;
        }
        if let Some(work) = self
            .0
            .as_mut()
            .and_then(|subnets| subnets.get_mut(subnet.0 as usize))
        {
            work.in_flight = work.in_flight.saturating_sub(1);
        }
    }

    /// Puts held children back into `maybe_due`, as many per subnet as it has places free,
    /// those a dispatch serves first.
    fn wake(&mut self, maybe_due: &mut BTreeSet<u32>) {
        let Some(subnets) = &mut self.0 else {
            return;
        };
        for work in subnets.iter_mut().filter(|work| !work.held.is_empty()) {
            let free = SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET.saturating_sub(work.in_flight);
            for _ in 0..free {
                let woken = if SERVES_LAST_INDEX_FIRST {
                    work.held.pop_last()
                } else {
                    work.held.pop_first()
                };
                let Some(index) = woken else { break };
                maybe_due.insert(index);
            }
        }
    }
}

impl PartialEq for SnapshotWork {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SnapshotWork {}

/// Positions of children changed since a checkpoint took them (see [`Rollout::take_changed`]).
/// Bookkeeping for storage, not the rollout's state: two rollouts in the same state are equal
/// whatever either has stored of itself.
#[derive(Clone, Debug, Default)]
struct ChangedChildren(BTreeSet<u32>);

impl PartialEq for ChangedChildren {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ChangedChildren {}

/// Whether this build serves the children with the highest positions first (the alternate
/// engine, whose decisions differ for the cross-version upgrade tests), or the lowest.
const SERVES_LAST_INDEX_FIRST: bool = cfg!(feature = "alternate-dispatch-order");

/// Appends `candidates` not `waiting` to `order`, in the order this build serves them (generic:
/// a boxed iterator was an allocation per dispatch).
fn extend_in_dispatch_order(
    order: &mut Vec<u32>,
    candidates: impl DoubleEndedIterator<Item = u32>,
    waiting: &BTreeSet<u32>,
) {
    let others = candidates.filter(|index| waiting.is_empty() || !waiting.contains(index));
    if SERVES_LAST_INDEX_FIRST {
        order.extend(others.rev());
    } else {
        order.extend(others);
    }
}

/// Takes and loads of snapshots a rollout keeps in flight on one subnet. A subnet runs few
/// snapshots a round and its management queue is first in, first out: with a snapshot in
/// flight for each active child of a subnet (33 at concurrency 100 on three subnets), every
/// install, start and status read of the subnet queued behind them, its children moved in
/// lockstep and stayed stopped for the whole queue. Measured on the 1,000-child bench: 452
/// rounds without a limit, 586 with 4 (too few to cover a round trip to another subnet), 422
/// with 8, 427 with 16.
pub const SNAPSHOT_WORK_IN_FLIGHT_PER_SUBNET: u32 = 8;

impl Rollout {
    /// A rollout of the plan's children, in their order (see [`RolloutBuilder`]).
    pub fn new(plan: Plan, now: Nanos) -> Result<Self, PlanError> {
        let Plan {
            operation,
            children,
            policy,
        } = plan;
        let targets = children
            .iter()
            .filter(|spec| operation.applies_to(spec.module_hash))
            .count() as u32;
        let mut builder = RolloutBuilder::new(operation, policy, targets)?;
        for spec in children {
            builder.push(spec)?;
        }
        builder.finish(now)
    }

    /// Starts due waves and children and returns the actions that can be issued at `now`, at
    /// most `max_new` of them (`u32::MAX`: no limit). The returned actions are in flight from
    /// now on: the driver persists the rollout before making their calls, and feeds each
    /// outcome back through [`Rollout::on_outcome`]. Children whose action did not fit keep
    /// their state and are counted in [`Dispatch::held_back`].
    pub fn next_actions(&mut self, now: Nanos, max_new: u32) -> Dispatch {
        loop {
            self.settle(now);
            let progress = self.queue_positions();
            self.start_due_wave(now);
            self.admit(now);
            if progress == self.queue_positions() {
                break;
            }
        }
        let mut actions = Vec::new();
        let mut held_back = Vec::new();
        let mut next_due = self.next_wave_at();
        let mut stopped = self.held_stopped_per_subnet();
        if self.snapshot_work.0.is_none() {
            let in_flight = self.in_flight.values().map(|entry| {
                let subnet = self.children[entry.child as usize].subnet();
                (subnet, &entry.action.kind)
            });
            self.snapshot_work = SnapshotWork::of_in_flight(in_flight);
        }
        if let Some(maybe_due) = &mut self.maybe_due.0 {
            self.snapshot_work.wake(maybe_due);
        }
        let mut busy = Vec::new();
        let mut held_for_snapshots = Vec::new();
        for index in self.dispatch_order() {
            let child = &self.children[index as usize];
            let stops = child.next_stops_it();
            if let Some((limit, stopped)) = stopped.as_ref().filter(|_| stops) {
                // Its subnet holds as many children stopped as allowed: the stop waits for
                // one of them to run again, whose outcome dispatches again.
                if stopped
                    .get(&child.subnet())
                    .is_some_and(|count| count >= limit)
                {
                    continue;
                }
            }
            let poll = match child.waiting(now) {
                Some(Poll::Busy) => {
                    busy.push(index);
                    continue;
                }
                Some(waiting) => waiting,
                // Due, but its subnet has as many snapshots in flight as it may: it waits,
                // outside `max_new` and `held_back`, until one of their outcomes wakes it.
                None if child.next_is_snapshot_work()
                    && self.snapshot_work.is_full(child.subnet()) =>
                {
                    held_for_snapshots.push(index);
                    continue;
                }
                // Due, but no room: polling would issue the action.
                None if actions.len() >= max_new as usize => {
                    held_back.push(index);
                    continue;
                }
                None => {
                    let (mut ctx, child) = self.child_parts(index, now);
                    child.poll(&mut ctx)
                }
            };
            match poll {
                Poll::Emit {
                    kind,
                    path,
                    attempt,
                } => {
                    let action = Action {
                        id: ActionId(self.next_action_id),
                        child: self.children[index as usize].id().clone(),
                        path,
                        attempt,
                        kind,
                    };
                    self.next_action_id += 1;
                    self.snapshot_work.issued(
                        self.children[index as usize].subnet(),
                        index,
                        &action.kind,
                    );
                    if let Some((_, stopped)) = stopped.as_mut().filter(|_| stops) {
                        *stopped
                            .entry(self.children[index as usize].subnet())
                            .or_default() += 1;
                    }
                    self.in_flight.insert(
                        action.id,
                        InFlight {
                            child: index,
                            action: action.clone(),
                        },
                    );
                    actions.push(action);
                    // Busy until its outcome, which notes it changed: the next dispatch
                    // need not find it busy.
                    if let Some(maybe_due) = &mut self.maybe_due.0 {
                        maybe_due.remove(&index);
                    }
                }
                Poll::Wait(at) => next_due = Some(next_due.map_or(at, |due| due.min(at))),
                Poll::Busy => {}
            }
        }
        let active = &self.active;
        let maybe_due = self.maybe_due.0.get_or_insert_with(|| active.clone());
        for index in busy {
            maybe_due.remove(&index);
        }
        for index in held_for_snapshots {
            maybe_due.remove(&index);
            self.snapshot_work
                .hold(self.children[index as usize].subnet(), index);
        }
        let held_back_count = held_back.len() as u32;
        self.held_back = held_back;
        Dispatch {
            actions,
            held_back: held_back_count,
            next_due,
        }
    }

    /// Where the queues stand: admitting a child or starting a wave moves one of them.
    fn queue_positions(&self) -> (u32, u32, usize, usize) {
        let queues = (self.rollback_queue.len(), self.requeued.len());
        (self.current_wave, self.cursor, queues.0, queues.1)
    }

    /// With a `max_stopped_per_subnet` limit: the limit, and the active children per subnet
    /// that the deployer holds stopped. Without one, nothing is counted.
    fn held_stopped_per_subnet(&self) -> Option<(u32, BTreeMap<SubnetIndex, u32>)> {
        let limit = self.policy.max_stopped_per_subnet?;
        let mut stopped = BTreeMap::new();
        for &index in &self.active {
            let child = &self.children[index as usize];
            if child.is_held_stopped() {
                *stopped.entry(child.subnet()).or_default() += 1;
            }
        }
        Some((limit, stopped))
    }

    /// The active children in the order a dispatch serves them: those held back last time
    /// (longest-waiting first), then the others in selection order; without those known to
    /// be busy, which a dispatch would pass over.
    fn dispatch_order(&mut self) -> Vec<u32> {
        let mut order = Vec::new();
        order.extend(
            self.held_back
                .iter()
                .copied()
                .filter(|index| self.active.contains(index)),
        );
        // Runs once per outcome: without children held back (the usual case), no set is built.
        let waiting: BTreeSet<u32> = order.iter().copied().collect();
        let active = &self.active;
        match &mut self.maybe_due.0 {
            Some(maybe_due) => {
                maybe_due.retain(|index| active.contains(index));
                extend_in_dispatch_order(&mut order, maybe_due.iter().copied(), &waiting);
            }
            None => extend_in_dispatch_order(&mut order, active.iter().copied(), &waiting),
        }
        order
    }

    /// Feeds back how an in-flight action ended. A refused outcome leaves the rollout as it
    /// was.
    pub fn on_outcome(
        &mut self,
        action: ActionId,
        outcome: Outcome,
        now: Nanos,
    ) -> Result<(), OutcomeError> {
        let entry = self
            .in_flight
            .remove(&action)
            .ok_or(OutcomeError::NotInFlight(action))?;
        let control = self.control();
        let (mut ctx, child) = self.child_parts(entry.child, now);
        let mut transition = match child.apply_outcome(&entry.action, outcome, &mut ctx) {
            Ok(transition) => transition,
            Err(error) => {
                self.in_flight.insert(action, entry);
                return Err(error);
            }
        };
        if let Some(control) = control {
            transition |= child.apply_control(control, &mut ctx);
        }
        let subnet = self.children[entry.child as usize].subnet();
        self.snapshot_work.ended(subnet, &entry.action.kind);
        self.account(entry.child, transition, now);
        self.settle(now);
        Ok(())
    }

    /// After the deployer's own upgrade the calls in flight are lost: each in-flight action
    /// gets an unknown outcome, so its child is read before anything else. Returns their ids.
    pub fn mark_in_flight_unknown(&mut self, now: Nanos) -> Vec<ActionId> {
        let lost: Vec<ActionId> = self.in_flight.keys().copied().collect();
        for &action in &lost {
            self.on_outcome(action, Outcome::Unknown, now)
                .expect("an in-flight action accepts an unknown outcome");
        }
        lost
    }

    /// No new child starts; children already started finish their pipeline.
    pub fn pause(&mut self, now: Nanos) -> Result<(), ControlError> {
        self.pause_for(PauseReason::Operator, now)
    }

    /// The driver's pause when the deployer's cycle `balance` cannot pay the `required`
    /// cycles of the next steps (see [`super::cycles_needed`]), with
    /// [`PauseReason::InsufficientCycles`]. Refused (as a `Pause`) unless running, so a
    /// rollout already paused keeps its first reason. No child waits stopped for the top-up:
    /// children not yet installed are started again (if they may be stopped) and go back to
    /// their wave's queue, to begin anew after the resume; installed ones finish. From then on
    /// the rollout only issues small calls (starts, reads, stops, snapshot loads), never an
    /// install. The operator tops the deployer up and resumes it.
    pub fn pause_for_cycles(
        &mut self,
        balance: u128,
        required: u128,
        now: Nanos,
    ) -> Result<(), ControlError> {
        self.pause_for(PauseReason::InsufficientCycles { balance, required }, now)?;
        self.apply_control_to_idle(Control::Requeue, now);
        self.settle(now);
        Ok(())
    }

    /// Paused for cycles: it issues no install until resumed.
    pub fn is_paused_for_cycles(&self) -> bool {
        matches!(
            self.phase,
            RolloutPhase::Paused(PauseReason::InsufficientCycles { .. })
        )
    }

    pub fn resume(&mut self, now: Nanos) -> Result<(), ControlError> {
        self.require(Command::Resume, |phase| {
            matches!(phase, RolloutPhase::Paused(_))
        })?;
        self.phase = RolloutPhase::Running;
        self.emit(now, EventKind::Resumed);
        self.settle(now);
        Ok(())
    }

    /// No new child starts. Started children not yet installed are brought back to running
    /// (started again if they may be stopped) and end `Cancelled`; installed ones finish
    /// their upgrade (or its rollback). Children still waiting for a rollback of the whole
    /// rollout keep their state.
    pub fn abort(&mut self, now: Nanos) -> Result<(), ControlError> {
        self.require(Command::Abort, |phase| {
            matches!(
                phase,
                RolloutPhase::Running | RolloutPhase::Paused(_) | RolloutPhase::RollingBack
            )
        })?;
        self.phase = RolloutPhase::Aborted;
        self.emit(now, EventKind::Aborted);
        self.never_start_queued(now);
        for index in std::mem::take(&mut self.rollback_queue) {
            self.child_mut(index).withdraw_rollback();
        }
        self.apply_control_to_idle(Control::Abort, now);
        self.settle(now);
        Ok(())
    }

    /// Every child this rollout upgraded goes back to its pre-install snapshot: stop, load,
    /// start, verify the previous module. Children not yet installed are cancelled as by an
    /// abort; queued children never start.
    pub fn rollback_all(&mut self, now: Nanos) -> Result<(), ControlError> {
        self.require(Command::RollBackAll, |phase| {
            matches!(
                phase,
                RolloutPhase::Running
                    | RolloutPhase::Paused(_)
                    | RolloutPhase::Aborted
                    | RolloutPhase::Completed
            )
        })?;
        if self.operation.release().is_none() {
            return Err(ControlError::NothingInstalled);
        }
        if !self.policy.snapshot_before_install {
            return Err(ControlError::NoSnapshots);
        }
        self.never_start_queued(now);
        for index in 0..self.children.len() as u32 {
            if self.child_mut(index).request_rollback() {
                self.rollback_queue.push_back(index);
            }
        }
        self.phase = RolloutPhase::RollingBack;
        self.finished_at = None;
        let children = self.rollback_queue.len() as u32;
        self.emit(now, EventKind::RollbackRequested { children });
        self.apply_control_to_idle(Control::RollBackAll, now);
        self.settle(now);
        Ok(())
    }

    /// When the rollout reached a final state; `None` while it may still act.
    pub fn finished_at(&self) -> Option<Nanos> {
        self.finished_at
    }

    pub fn phase(&self) -> &RolloutPhase {
        &self.phase
    }

    pub fn operation(&self) -> &Operation {
        &self.operation
    }

    /// The release an upgrade installs; `None` for a backup run.
    pub fn release(&self) -> Option<&TargetRelease> {
        self.operation.release()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every selected child, in selection order (page with `skip`/`take`).
    pub fn children(&self) -> &[Child] {
        &self.children
    }

    /// The children in id order with their positions, from the first after `after` (or the
    /// first): what storing a finished rollout's children a slice at a time walks.
    pub fn children_by_id_after<'a>(
        &'a self,
        after: Option<&'a ChildId>,
    ) -> impl Iterator<Item = (u32, &'a Child)> + 'a {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.index
            .range::<ChildId, _>((start, Bound::Unbounded))
            .map(|(_, &position)| (position, &self.children[position as usize]))
    }

    /// Puts back the children [`Rollout::take_children`] took, in their order.
    pub fn put_back_children(&mut self, children: Vec<Child>) {
        self.index = index_of(&children);
        self.children = children;
        self.tally.reset();
        self.maybe_due = MaybeDue::default();
        self.snapshot_work = SnapshotWork::default();
    }

    /// Takes out the children and what is made of them (their index and the wave order),
    /// leaving what a checkpoint stores apart from its children, so that it costs the same for
    /// 100 children as for 100,000. [`Rollout::undo_children_apart`] puts them back.
    pub fn take_children_apart(&mut self) -> ChildrenApart {
        ChildrenApart {
            children: std::mem::take(&mut self.children),
            index: std::mem::take(&mut self.index),
            order: std::mem::take(&mut self.order),
        }
    }

    pub fn undo_children_apart(&mut self, apart: ChildrenApart) {
        self.children = apart.children;
        self.index = apart.index;
        self.order = apart.order;
    }

    /// Puts back children a checkpoint stored apart ([`Rollout::with_children_apart`]), in
    /// their order, with their index and the wave order made from them: the children given a
    /// wave when the rollout was created, in their order (waves are consecutive stretches of
    /// it).
    pub fn put_back_children_and_order(&mut self, children: Vec<Child>) {
        self.order = (0u32..)
            .zip(&children)
            .filter(|(_, child)| child.wave().is_some())
            .map(|(index, _)| index)
            .collect();
        self.put_back_children(children);
    }

    /// The positions of the children changed since the last call (or since the rollout was
    /// created or loaded): the ones a checkpoint that keeps the others must rewrite.
    pub fn take_changed(&mut self) -> BTreeSet<u32> {
        std::mem::take(&mut self.changed.0)
    }

    pub fn child(&self, id: &ChildId) -> Option<&Child> {
        self.index
            .get(id)
            .map(|&index| &self.children[index as usize])
    }

    /// The actions issued and not yet answered.
    pub fn in_flight(&self) -> impl ExactSizeIterator<Item = &Action> {
        self.in_flight.values().map(|entry| &entry.action)
    }

    /// In a final phase (or paused) with no child left to settle.
    pub fn is_settled(&self) -> bool {
        let final_phase = match self.phase {
            RolloutPhase::Running | RolloutPhase::RollingBack => false,
            RolloutPhase::Aborted => self.finished_at.is_some(),
            RolloutPhase::Paused(_) | RolloutPhase::Completed | RolloutPhase::RolledBack => true,
        };
        final_phase && self.active.is_empty() && self.in_flight.is_empty()
    }

    /// Events since the last drain, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn summary(&self) -> Summary {
        let ChildCounts {
            counts,
            waves: wave_counts,
            by_kind,
        } = self.tally.counts(&self.children, self.waves.len());
        Summary {
            phase: self.phase.clone(),
            current_wave: (!self.waves.is_empty()).then_some(self.current_wave),
            waves: self
                .waves
                .iter()
                .zip(wave_counts)
                .map(|(wave, counts)| WaveSummary {
                    size: wave.end - wave.start,
                    counts,
                    failures: wave.failures,
                    tolerated_failures: wave.tolerated_failures,
                    started_at: wave.started_at,
                    finished_at: wave.finished_at,
                })
                .collect(),
            counts,
            in_flight: self.in_flight.len() as u32,
            started_at: self.started_at,
            finished_at: self.finished_at,
            next_wave_at: self.next_wave_at(),
            failures_by_kind: Some(
                FailureKind::NAMES
                    .iter()
                    .zip(by_kind)
                    .filter(|(_, children)| *children > 0)
                    .map(|(kind, children)| FailureKindCount {
                        kind: kind.to_string(),
                        children,
                    })
                    .collect(),
            ),
        }
    }

    /// The engine's context and the child at `index`, borrowed apart; the child counts as
    /// changed.
    fn child_parts(&mut self, index: u32, now: Nanos) -> (Ctx<'_>, &mut Child) {
        self.note_change(index);
        let ctx = Ctx {
            policy: &self.policy,
            operation: &self.operation,
            now,
            next_action: ActionId(self.next_action_id),
            events: &mut self.events,
        };
        (ctx, &mut self.children[index as usize])
    }

    /// The child at `index`, which counts as changed.
    fn child_mut(&mut self, index: u32) -> &mut Child {
        self.note_change(index);
        &mut self.children[index as usize]
    }

    /// Every change of a child passes here: the checkpoint rewrites it, the summary counts it
    /// again and a dispatch polls it.
    fn note_change(&mut self, index: u32) {
        self.changed.0.insert(index);
        if let Some(maybe_due) = &mut self.maybe_due.0 {
            maybe_due.insert(index);
        }
        self.tally.changing(index, &self.children[index as usize]);
    }

    /// Counts the children changed since the last call into the summary's counts (every
    /// child the first time): a summary then costs what changed since, not the fleet.
    pub fn settle_summary(&mut self) {
        self.tally.settle(&self.children, self.waves.len());
    }

    fn emit(&mut self, at: Nanos, kind: EventKind) {
        self.events.push(Event { at, kind });
    }

    fn require(
        &self,
        command: Command,
        allowed: impl Fn(&RolloutPhase) -> bool,
    ) -> Result<(), ControlError> {
        if allowed(&self.phase) {
            Ok(())
        } else {
            Err(ControlError::NotAllowed {
                command,
                phase: self.phase.clone(),
            })
        }
    }

    fn control(&self) -> Option<Control> {
        match self.phase {
            RolloutPhase::Aborted => Some(Control::Abort),
            RolloutPhase::RollingBack => Some(Control::RollBackAll),
            RolloutPhase::Paused(PauseReason::InsufficientCycles { .. }) => Some(Control::Requeue),
            _ => None,
        }
    }

    fn pause_for(&mut self, reason: PauseReason, now: Nanos) -> Result<(), ControlError> {
        self.require(Command::Pause, |phase| *phase == RolloutPhase::Running)?;
        self.set_paused(reason, now);
        Ok(())
    }

    fn set_paused(&mut self, reason: PauseReason, now: Nanos) {
        self.phase = RolloutPhase::Paused(reason.clone());
        self.emit(now, EventKind::Paused { reason });
    }

    /// Children still queued never begin; requeued ones end `Cancelled` (they had begun).
    fn never_start_queued(&mut self, now: Nanos) {
        for position in self.cursor as usize..self.order.len() {
            let index = self.order[position];
            self.child_mut(index).never_start();
        }
        self.cursor = self.order.len() as u32;
        for index in std::mem::take(&mut self.requeued) {
            let transition = self.child_mut(index).cancel_requeued();
            self.account(index, transition, now);
        }
    }

    fn apply_control_to_idle(&mut self, control: Control, now: Nanos) {
        for index in self.active.iter().copied().collect::<Vec<_>>() {
            let (mut ctx, child) = self.child_parts(index, now);
            let transition = child.apply_control(control, &mut ctx);
            self.account(index, transition, now);
        }
    }

    /// Books a child's transition: its wave's failure budget, and its slot once final.
    fn account(&mut self, index: u32, transition: Transition, now: Nanos) {
        let child = &self.children[index as usize];
        if transition.failed {
            if let Some(wave_index) = child.wave() {
                let wave = &mut self.waves[wave_index as usize];
                wave.failures += 1;
                if self.phase == RolloutPhase::Running && wave.failures > wave.tolerated_failures {
                    let reason = PauseReason::FailureBudgetExceeded {
                        wave: wave_index,
                        failures: wave.failures,
                        tolerated: wave.tolerated_failures,
                    };
                    self.set_paused(reason, now);
                }
            }
        }
        if transition.requeued {
            self.active.remove(&index);
            self.requeued.push_back(index);
        }
        if transition.finished {
            self.active.remove(&index);
            let child = &self.children[index as usize];
            if let ChildState::Finished(verdict) = child.state() {
                let child = child.id().clone();
                self.emit(now, EventKind::ChildFinished { child, verdict });
            }
        }
    }

    /// Starts the first wave, or the next one once the current one finished and baked.
    fn start_due_wave(&mut self, now: Nanos) {
        if self.phase != RolloutPhase::Running {
            return;
        }
        let Some(current) = self.waves.get(self.current_wave as usize) else {
            return;
        };
        if current.started_at.is_some() {
            match self.next_wave_at() {
                Some(at) if at <= now => self.current_wave += 1,
                _ => return,
            }
        }
        let wave = self.current_wave;
        self.waves[wave as usize].started_at = Some(now);
        self.emit(now, EventKind::WaveStarted { wave });
    }

    /// When the wave after the current one may start, once the current one finished.
    fn next_wave_at(&self) -> Option<Nanos> {
        let current = self.waves.get(self.current_wave as usize)?;
        let finished_at = current.finished_at?;
        let has_next = (self.current_wave as usize) + 1 < self.waves.len();
        (self.phase == RolloutPhase::Running && has_next)
            .then(|| finished_at.saturating_add(self.policy.bake_nanos))
    }

    /// Fills free slots: with the current wave's children while running, with children
    /// awaiting their rollback while rolling back.
    fn admit(&mut self, now: Nanos) {
        let limit = self.policy.max_concurrency as usize;
        match self.phase {
            RolloutPhase::Running => {
                while self.phase == RolloutPhase::Running && self.active.len() < limit {
                    let Some(wave) = self.waves.get(self.current_wave as usize) else {
                        return;
                    };
                    let index = if let Some(index) = self.requeued.pop_front() {
                        index
                    } else if wave.started_at.is_none() || self.cursor >= wave.end {
                        return;
                    } else {
                        self.cursor += 1;
                        self.order[self.cursor as usize - 1]
                    };
                    self.active.insert(index);
                    let (mut ctx, child) = self.child_parts(index, now);
                    let transition = child.begin(&mut ctx);
                    self.account(index, transition, now);
                }
            }
            RolloutPhase::RollingBack => {
                let mut stopped = self.held_stopped_per_subnet();
                while self.active.len() < limit {
                    let Some(&index) = self.rollback_queue.front() else {
                        return;
                    };
                    let child = &self.children[index as usize];
                    if let Some((limit, stopped)) =
                        stopped.as_mut().filter(|_| child.may_be_stopped())
                    {
                        // A child left stopped begins its rollback stopped, so it counts
                        // against its subnet's limit at once. The queue waits behind it
                        // (admission stays O(1)) until a child of that subnet runs again.
                        let count = stopped.entry(child.subnet()).or_default();
                        if *count >= *limit {
                            return;
                        }
                        *count += 1;
                    }
                    self.rollback_queue.pop_front();
                    self.active.insert(index);
                    let (mut ctx, child) = self.child_parts(index, now);
                    child.begin_rollback(&mut ctx);
                }
            }
            _ => {}
        }
    }

    /// Records what follows from the children's states: a finished wave, a completed
    /// rollout, a settled abort or rollback.
    fn settle(&mut self, now: Nanos) {
        match self.phase {
            RolloutPhase::Running | RolloutPhase::Paused(_) => {
                let Some(wave) = self.waves.get_mut(self.current_wave as usize) else {
                    if self.phase == RolloutPhase::Running {
                        self.complete(now);
                    }
                    return;
                };
                let done =
                    self.cursor >= wave.end && self.active.is_empty() && self.requeued.is_empty();
                if wave.started_at.is_some() && wave.finished_at.is_none() && done {
                    wave.finished_at = Some(now);
                    let wave = self.current_wave;
                    self.emit(now, EventKind::WaveFinished { wave });
                }
                let last_finished = self.waves.last().is_some_and(|w| w.finished_at.is_some());
                if self.phase == RolloutPhase::Running && last_finished {
                    self.complete(now);
                }
            }
            RolloutPhase::Aborted => {
                if self.active.is_empty() && self.finished_at.is_none() {
                    self.finished_at = Some(now);
                    self.emit(now, EventKind::AbortSettled);
                }
            }
            RolloutPhase::RollingBack => {
                if self.active.is_empty() && self.rollback_queue.is_empty() {
                    self.phase = RolloutPhase::RolledBack;
                    self.finished_at = Some(now);
                    self.emit(now, EventKind::RolledBack);
                }
            }
            RolloutPhase::Completed | RolloutPhase::RolledBack => {}
        }
    }

    fn complete(&mut self, now: Nanos) {
        self.phase = RolloutPhase::Completed;
        self.finished_at = Some(now);
        self.emit(now, EventKind::Completed);
    }
}
