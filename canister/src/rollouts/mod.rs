//! Rollouts as the deployer keeps them, behind one facade, [`Rollouts`]: it plans a rollout
//! from the release store and the fleet registry, stores it, issues its actions as far as the
//! management canister's queue and the cycle balance admit, journals every change, and answers
//! dashboards.
//!
//! Plain Rust over stable memory, like the engine it stores (`crate::engine`): the driver
//! (`crate::rollout_driver`) makes the calls and passes their outcomes and the time in.
//!
//! | module      | job                                                                     |
//! |-------------|-------------------------------------------------------------------------|
//! | `mod.rs`    | [`Rollouts`]: start, dispatch, record an outcome, recover, control      |
//! | `journal`   | checkpoints, write-ahead journal, event log (memories 6, 7, 8, 17-19)   |
//! | `finished`  | finished rollouts, their children stored apart (memories 27, 28)       |
//! | `checkpoint_children` | the checkpoints' children, in runs (memory 29)                |
//! | `admission` | what a dispatch may issue: room in the management queue, [`Funds`]      |
//! | `planning`  | a rollout's plan, read and made a slice of children per message; previews |
//! | `gates`     | the upgrade gates planning checks: known modules, higher versions        |
//! | `stores`    | the IC chunk store serving each subnet, [`SubnetStore`] (memory 16)     |
//! | `queries`   | what dashboards read: rollout info and pages, child histories, events   |
//! | `api`       | the Candid shapes of the rollout endpoints                              |
//!
//! # Claims and observations
//!
//! A rollout claims its children in the fleet registry as its start reads them (see
//! `planning`) and frees them when it reaches a final state, or when its start is refused; a
//! rollback of a finished rollout claims them again. What the engine learns about a child
//! reaches the fleet registry through its events (`journal`): snapshots taken and replaced,
//! the module a finished child runs.

use std::collections::{BTreeMap, BTreeSet};

use candid::Principal;
use ic_stable_structures::{Log, Memory, StableBTreeMap};

mod admission;
mod api;
mod checkpoint_children;
mod event_log;
mod finished;
mod gates;
mod journal;
mod planning;
mod queries;
mod stores;

pub use admission::{
    Funds, CYCLES_KEPT_BACK, HELD_BACK_RETRY_NANOS, MAX_ROLLOUT_CALLS_IN_FLIGHT,
    MAX_UPLOADS_IN_FLIGHT, WATCHDOG_INTERVAL_NANOS,
};
pub use api::{
    AdoptChildrenArg, ChildHistory, ChildHistoryArg, ChunkStore, EventPage, ListEventsArg,
    ListRolloutsArg, PolicyArg, PrepareUpgradeArg, RestoreChildArg, RolloutEvent, RolloutInfo,
    RolloutOperation, RolloutPage, RolloutPhaseFilter, StartBackupRunArg, StartRolloutArg,
    UpgradeReadiness,
};

pub use journal::{
    JournalEntry, JournalLine, LoggedEvent, RolloutOverview, RolloutRecord, CHECKPOINT_EVERY,
    RETAINED_FINISHED_CHECKPOINTS,
};
pub use planning::{
    delivery_of, Preparation, StartArg, StartPlan, MAX_INLINE_MODULE_BYTES, PLAN_SLICE,
    PREPARED_KEPT, PREVIEW_AT_ONCE,
};
use planning::{plan_restore, PreparedPreviews};
pub use queries::{
    EVENT_SCAN_BUDGET, MAX_EVENT_PAGE, MAX_HISTORY_PAGE, MAX_ROLLOUT_PAGE, ROLLOUT_SCAN_BUDGET,
};
pub use stores::SubnetStore;

use crate::cbor::CborBytes;
use crate::engine::{
    Action, ActionId, ChildrenApart, Command, ControlError, Delivery, ModuleHash, Nanos, Outcome,
    Rollout, Summary,
};
use crate::error::{Error, ErrorKind};
use crate::fleet::{self, Fleet};
use crate::release_store::ReleaseStore;
use checkpoint_children::CheckpointChildren;
use event_log::EventLog;
pub use event_log::GenerationMemories;
use finished::FinishedRollouts;
use journal::{InstallArgDigest, Live, StableLog};

/// Rollouts, their journal, the event log and the chunk store canisters.
pub struct Rollouts<M: Memory> {
    rollouts: StableBTreeMap<u64, CborBytes<RolloutRecord>, M>,
    /// The ids of the rollouts stored as active: in progress, or finished and still storing
    /// their children apart. Every one is on the heap (`live`) while the deployer runs.
    active: StableBTreeMap<u64, (), M>,
    /// Each rollout's overview, written with its checkpoint.
    overviews: StableBTreeMap<u64, CborBytes<RolloutOverview>, M>,
    /// `None` only while folding swaps in a fresh log.
    journal: Option<StableLog<JournalLine, M>>,
    events: EventLog<M>,
    /// Journal lines that fold the journal, [`CHECKPOINT_EVERY`] (fewer in tests).
    fold_every: u64,
    stores: StableBTreeMap<Principal, Principal, M>,
    /// Finished rollouts, their children stored apart (`finished`).
    finished: FinishedRollouts<M>,
    /// The checkpoints' children, in runs (`checkpoint_children`).
    checkpoint_children: CheckpointChildren<M>,
    /// Whether children of pruned finished rollouts, or of checkpoints removed, may remain: set
    /// when one is pruned or removed, and at start (an upgrade may come between two slices).
    children_to_prune: bool,
    /// Children of rollouts stored apart, freed a slice per message (heap only).
    freeing: Vec<ChildrenApart>,
    /// Rollouts touched since the deployer started, so that a step costs its own journal entry,
    /// not a decode and an encode of the whole rollout. Rebuilt from stable memory on demand.
    live: BTreeMap<u64, Live>,
    /// Rollouts being planned (see [`StartPlan`]), their ids reserved: their runs are not
    /// pruned. On the heap only: an upgrade ends the start that planned them.
    planning: BTreeSet<u64>,
    /// Previews planned a slice per message by `prepare_rollout`, for previews and validators.
    prepared: PreparedPreviews,
    /// Set by [`Rollouts::prepare_upgrade`]: no rollout issues a step, and the journal is
    /// folded once no call is in flight. On the heap only: the upgrade it prepares ends it.
    holding: bool,
}

impl<M: Memory> Rollouts<M> {
    pub fn init(memories: RolloutMemories<M>) -> Self {
        let RolloutMemories {
            rollouts,
            active,
            overviews,
            journal_index,
            journal_data,
            events,
            events_second,
            stores,
            finished_records,
            finished_children,
            checkpoint_children,
        } = memories;
        Self {
            rollouts: StableBTreeMap::init(rollouts),
            active: StableBTreeMap::init(active),
            overviews: StableBTreeMap::init(overviews),
            journal: Some(Log::init(journal_index, journal_data)),
            events: EventLog::init(events, events_second),
            fold_every: CHECKPOINT_EVERY,
            stores: StableBTreeMap::init(stores),
            finished: FinishedRollouts::init(finished_records, finished_children),
            checkpoint_children: CheckpointChildren::init(checkpoint_children),
            children_to_prune: true,
            freeing: Vec::new(),
            live: BTreeMap::new(),
            planning: BTreeSet::new(),
            prepared: PreparedPreviews::default(),
            holding: false,
        }
    }

    /// Prepares the deployer for an upgrade to any build (`hold`), or takes that back. Holding,
    /// no rollout issues a new step; the calls in flight come back and are journaled, and once
    /// none is left the journal is folded into the checkpoints: a build whose engine decides
    /// differently then has no line to replay. Returns the rollouts to drive again when the
    /// hold is lifted, and where the preparation stands.
    pub fn prepare_upgrade(&mut self, hold: bool) -> (Vec<u64>, UpgradeReadiness) {
        let released = self.holding && !hold;
        self.holding = hold;
        if hold && self.calls_in_flight() == 0 {
            self.fold();
        }
        let to_drive = if released {
            self.active.keys().collect()
        } else {
            Vec::new()
        };
        (to_drive, self.upgrade_readiness())
    }

    pub fn upgrade_readiness(&self) -> UpgradeReadiness {
        let actions_in_flight = self.calls_in_flight();
        let journal_lines = self.journal_lines();
        UpgradeReadiness {
            holding: self.holding,
            actions_in_flight,
            journal_lines,
            // A start being planned ends its call before the deployer can be upgraded.
            ready: self.holding
                && actions_in_flight == 0
                && journal_lines == 0
                && self.planning.is_empty(),
        }
    }

    /// Lines in the journal: changes not yet folded into the rollouts' checkpoints.
    pub fn journal_lines(&self) -> u64 {
        self.journal().len()
    }

    /// Plans a rollout (or a backup run) of the selected children, claims them and stores it,
    /// all at once (the deployer's start spreads the same steps over messages:
    /// [`Self::begin_start`], [`Self::start_some`], [`Self::create_started`]). Nothing is kept
    /// when it is refused. Returns its id.
    pub fn start(
        &mut self,
        fleet: &mut Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: impl Into<StartArg>,
        own_subnet: Principal,
        caller: Principal,
        now: Nanos,
    ) -> Result<u64, Error> {
        let mut plan = self.begin_start(fleet, release_store, arg)?;
        while !self.start_some(&mut plan, fleet, release_store, own_subnet)? {}
        self.create_started(plan, fleet, caller, now)
    }

    /// A backup run, planned all at once as [`Self::start`] plans a rollout.
    pub fn start_backup(
        &mut self,
        fleet: &mut Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartBackupRunArg,
        caller: Principal,
        now: Nanos,
    ) -> Result<u64, Error> {
        // A backup run installs nothing, so no subnet's chunk store is asked for.
        let no_subnet = Principal::anonymous();
        self.start(fleet, release_store, arg, no_subnet, caller, now)
    }

    /// Stores the rollout a plan made (its children claimed and their runs stored as it was
    /// made), or refuses it (abandoned). Returns its id.
    pub fn create_started(
        &mut self,
        plan: StartPlan,
        fleet: &mut Fleet<M>,
        caller: Principal,
        now: Nanos,
    ) -> Result<u64, Error> {
        let (rollout_id, planned) = self.end_start(plan, fleet, now)?;
        self.insert_created(
            rollout_id,
            planned.engine,
            planned.children,
            true,
            (caller, now),
            fleet,
        );
        Ok(rollout_id)
    }

    /// Plans a restore of one child, claims it and stores it, as [`Self::start`] does a
    /// rollout. Returns its id.
    pub fn start_restore(
        &mut self,
        fleet: &mut Fleet<M>,
        arg: RestoreChildArg,
        caller: Principal,
        now: Nanos,
    ) -> Result<u64, Error> {
        let (plan, children) = plan_restore(fleet, arg)?;
        let engine = Rollout::new(plan, now).map_err(|error| ErrorKind::InvalidRolloutPlan {
            reason: error.to_string(),
        })?;
        let rollout_id = self.next_rollout_id();
        // Every child was selected from the registry in this message.
        fleet
            .claim_selected(&children, rollout_id)
            .map_err(fleet_error)?;
        self.insert_created(rollout_id, engine, children, false, (caller, now), fleet);
        Ok(rollout_id)
    }

    /// Keeps a rollout just created, its children claimed, and writes its first checkpoint
    /// (with every run, unless `runs_stored` as it was planned).
    fn insert_created(
        &mut self,
        rollout_id: u64,
        engine: Rollout,
        children: Vec<Principal>,
        runs_stored: bool,
        (caller, now): (Principal, Nanos),
        fleet: &mut Fleet<M>,
    ) {
        let record = RolloutRecord {
            created_by: caller,
            created_at: now,
            children,
            claimed: true,
            next_entry: 0,
            engine,
            children_apart: false,
        };
        self.live.insert(
            rollout_id,
            Live {
                install_arg: InstallArgDigest::of(&record),
                record,
                unfolded: 0,
                stored_next_entry: 0,
                stored_active: None,
                stored_apart_through: None,
                children_apart_stored: runs_stored,
            },
        );
        self.commit(rollout_id, None, fleet);
    }

    /// Issues the actions now due, as many as the management canister's queue has room for and
    /// `funds` can pay, journals them before their calls are made, and returns them with the
    /// time to call again. Actions held back for the queue go out as calls return. A rollout
    /// that cannot pay for its next step, with none of its calls left to return cycles, is
    /// paused for cycles: it never fails half-way for want of them.
    pub fn dispatch(
        &mut self,
        rollout_id: u64,
        fleet: &mut Fleet<M>,
        now: Nanos,
        funds: &Funds,
    ) -> Option<(Vec<Action>, Option<Nanos>)> {
        // Held for an upgrade, nothing starts: lifting the hold drives every active rollout
        // again.
        if self.holding {
            return None;
        }
        if !self.live.contains_key(&rollout_id) && !self.active.contains_key(&rollout_id) {
            // A late timer or callback of a finished rollout: nothing can be due, nothing to
            // journal, and no reason to decode its checkpoint. What stored rollouts left behind
            // (a removed checkpoint's runs, a pruned rollout's children) goes a slice per call:
            // the driver of a rollout that finished calls again until none is left.
            return self.prune_children_slice().then(|| (Vec::new(), Some(now)));
        }
        let in_flight = self.calls_in_flight();
        let live = self.live_mut(rollout_id, fleet).ok()?;
        if live.is_storing_apart() {
            // Finished: its next slice of children goes apart, and the next in a later message.
            self.commit(rollout_id, None, fleet);
            let more = self.live.contains_key(&rollout_id) || self.leftovers();
            return Some((Vec::new(), more.then_some(now)));
        }
        if !live.record.is_active() {
            self.live.remove(&rollout_id);
            return None;
        }
        let engine = &mut live.record.engine;
        let queue_room = MAX_ROLLOUT_CALLS_IN_FLIGHT.saturating_sub(in_flight);
        // Paused for cycles, a rollout issues no install: its calls are priced as small ones.
        let affordable = funds.affordable_actions(!engine.is_paused_for_cycles());
        let max_new = queue_room.min(affordable);
        let own_in_flight = engine.in_flight().len();
        let mut dispatch = engine.next_actions(now, max_new);
        let starved = dispatch.held_back > 0 && affordable < queue_room;
        let mut entries = vec![JournalEntry::Dispatched { at: now, max_new }];
        if starved && own_in_flight + dispatch.actions.len() == 0 {
            let required = funds.balance_needed(dispatch.held_back);
            let balance = funds.liquid_balance;
            if engine.pause_for_cycles(balance, required, now).is_ok() {
                entries.push(JournalEntry::PausedForCycles {
                    balance,
                    required,
                    at: now,
                });
                // The pause sends children it had stopped back to running: their starts go
                // out now, at the price of small calls.
                let max_new = queue_room.min(funds.affordable_actions(false));
                dispatch = engine.next_actions(now, max_new);
                entries.push(JournalEntry::Dispatched { at: now, max_new });
            }
        }
        // Held back for other rollouts' calls, with no call of its own to bring it back: ask
        // again shortly. Held back for cycles, it is paused: the operator's resume drives it.
        let idle = own_in_flight + dispatch.actions.len() == 0 && dispatch.held_back > 0;
        let retry = (idle && !starved).then_some(now + HELD_BACK_RETRY_NANOS);
        let next_due = [dispatch.next_due, retry].into_iter().flatten().min();
        for entry in entries {
            self.commit(rollout_id, Some(entry), fleet);
        }
        Some((dispatch.actions, next_due))
    }

    /// The releases that active rollouts install through chunk stores: chunks a store must keep.
    pub fn chunked_releases_in_use(&self) -> Vec<ModuleHash> {
        self.live
            .values()
            .filter(|live| live.record.is_active())
            .filter_map(|live| live.record.engine.release())
            .filter(|release| release.delivery == Delivery::ChunkStore)
            .map(|release| release.module_hash)
            .collect()
    }

    /// Calls of every live rollout awaiting their outcome (every active rollout is live).
    fn calls_in_flight(&self) -> u32 {
        self.live
            .values()
            .map(|live| live.record.engine.in_flight().len() as u32)
            .sum()
    }

    /// Feeds back an outcome and journals it. An outcome the engine does not expect (its action
    /// was already settled as unknown after an upgrade) is dropped.
    pub fn record_outcome(
        &mut self,
        rollout_id: u64,
        action: ActionId,
        outcome: Outcome,
        fleet: &mut Fleet<M>,
        now: Nanos,
    ) {
        let Ok(live) = self.live_mut(rollout_id, fleet) else {
            return;
        };
        if live
            .record
            .engine
            .on_outcome(action, outcome.clone(), now)
            .is_ok()
        {
            let entry = JournalEntry::Outcome {
                action,
                outcome,
                at: now,
            };
            self.commit(rollout_id, Some(entry), fleet);
        }
    }

    /// After the deployer's upgrade: the calls in flight lost their callbacks. Returns the
    /// rollouts that still have work (finished ones among them still storing their children
    /// apart), to drive again.
    pub fn recover(&mut self, fleet: &mut Fleet<M>, now: Nanos) -> Vec<u64> {
        let active: Vec<u64> = self.active.keys().collect();
        for &rollout_id in &active {
            let live = self.live_mut(rollout_id, fleet).expect("listed above");
            let entry = live.record.is_active().then(|| {
                live.record.engine.mark_in_flight_unknown(now);
                JournalEntry::LostInFlight { at: now }
            });
            self.commit(rollout_id, entry, fleet);
        }
        active
    }

    /// After a restore: settles what was in flight as unknown, as after an upgrade, and pauses
    /// every active rollout. The restored deployer controls no child until an operator makes it
    /// a controller of the fleet; resuming then goes on where the export left off.
    pub fn recover_paused(&mut self, fleet: &mut Fleet<M>, now: Nanos) {
        for rollout_id in self.recover(fleet, now) {
            if self.check_control(rollout_id, Command::Pause, now).is_ok() {
                self.control(rollout_id, Command::Pause, fleet, now)
                    .expect("checked just above");
            }
        }
    }

    /// The finished rollouts still storing their children apart: what a restored deployer drives
    /// at once (it needs no child for that), its other rollouts paused.
    pub fn storing_apart(&self) -> Vec<u64> {
        self.live
            .iter()
            .filter(|(_, live)| live.is_storing_apart())
            .map(|(&rollout_id, _)| rollout_id)
            .collect()
    }

    /// Settles every action of the rollout in flight as unknown: the engine reads each such child
    /// before going on, and an answer that still arrives is dropped. Refused on a finished
    /// rollout.
    pub fn reconcile(
        &mut self,
        rollout_id: u64,
        fleet: &mut Fleet<M>,
        now: Nanos,
    ) -> Result<(), Error> {
        let live = self.live_mut(rollout_id, fleet)?;
        if !live.record.is_active() {
            let phase = live.record.engine.phase().clone();
            self.forget_if_stored(rollout_id);
            return Err(ErrorKind::RolloutFinished { rollout_id, phase }.into());
        }
        live.record.engine.mark_in_flight_unknown(now);
        self.commit(
            rollout_id,
            Some(JournalEntry::LostInFlight { at: now }),
            fleet,
        );
        Ok(())
    }

    /// Applies an operator's command.
    pub fn control(
        &mut self,
        rollout_id: u64,
        command: Command,
        fleet: &mut Fleet<M>,
        now: Nanos,
    ) -> Result<Summary, Error> {
        let live = self.live_mut(rollout_id, fleet)?;
        let applied = apply_command(&mut live.record, rollout_id, command, fleet, now);
        if applied.is_err() && !live.record.is_active() {
            self.forget_if_stored(rollout_id);
        }
        let summary = applied?;
        self.commit(
            rollout_id,
            Some(JournalEntry::Command { command, at: now }),
            fleet,
        );
        Ok(summary)
    }
}

impl<M: Memory> Rollouts<M> {
    /// Drops a finished rollout from the heap once it is stored apart: nothing keeps it there
    /// (one still storing its children apart stays, see [`Live::is_storing_apart`]).
    fn forget_if_stored(&mut self, rollout_id: u64) {
        if self
            .live
            .get(&rollout_id)
            .is_some_and(|live| !live.is_storing_apart())
        {
            self.live.remove(&rollout_id);
        }
    }

    /// Whether `command` would apply to the rollout now, changing nothing: a proposal's
    /// validation. (A rollback of a finished rollout is still refused at execution when another
    /// rollout has claimed one of its children since.)
    pub fn check_control(
        &self,
        rollout_id: u64,
        command: Command,
        now: Nanos,
    ) -> Result<RolloutInfo, Error> {
        let applied = self.with_current(rollout_id, |record| {
            apply(&mut record.engine.clone(), command, now)
        })?;
        applied.map_err(|error| control_error(rollout_id, command, error))?;
        self.info(rollout_id)
    }
}

/// Applies an operator's command to the rollout, claiming its children again for a rollback of
/// a finished one; on a refusal the rollout and the claims are as they were.
fn apply_command<M: Memory>(
    record: &mut RolloutRecord,
    rollout_id: u64,
    command: Command,
    fleet: &mut Fleet<M>,
    now: Nanos,
) -> Result<Summary, Error> {
    let claim = command == Command::RollBackAll && !record.claimed;
    if claim {
        fleet
            .claim(&record.children, rollout_id)
            .map_err(fleet_error)?;
    }
    if let Err(error) = apply(&mut record.engine, command, now) {
        if claim {
            fleet.release_claim(&record.children, rollout_id);
        }
        return Err(control_error(rollout_id, command, error));
    }
    record.claimed |= claim;
    Ok(record.engine.summary())
}

fn apply(engine: &mut Rollout, command: Command, now: Nanos) -> Result<(), ControlError> {
    match command {
        Command::Pause => engine.pause(now),
        Command::Resume => engine.resume(now),
        Command::Abort => engine.abort(now),
        Command::RollBackAll => engine.rollback_all(now),
    }
}

/// The stable memories of [`Rollouts`], see [`crate::memory`].
pub struct RolloutMemories<M: Memory> {
    pub rollouts: M,
    pub active: M,
    pub overviews: M,
    pub journal_index: M,
    pub journal_data: M,
    /// The event log's two generations.
    pub events: GenerationMemories<M>,
    pub events_second: GenerationMemories<M>,
    pub stores: M,
    pub finished_records: M,
    pub finished_children: M,
    pub checkpoint_children: M,
}

fn fleet_error(error: fleet::FleetError) -> Error {
    ErrorKind::Fleet(error).into()
}

fn control_error(rollout_id: u64, command: Command, error: ControlError) -> Error {
    match error {
        ControlError::NotAllowed { phase, .. } => ErrorKind::RolloutCommandRefused {
            rollout_id,
            command,
            phase,
        },
        ControlError::NoSnapshots | ControlError::NothingInstalled => {
            ErrorKind::NothingToRollBack { rollout_id }
        }
    }
    .into()
}

#[cfg(test)]
mod tests;
