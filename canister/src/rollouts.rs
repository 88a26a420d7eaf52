//! Rollouts as the deployer keeps them: the journal of every rollout's engine state, the event
//! log, the chunk store canister of each subnet, and the Candid shapes dashboards read.
//!
//! Plain Rust over stable memory, like the engine it stores: the driver (`entry_points::driver`)
//! makes the calls and passes their outcomes and the time in.
//!
//! # The journal
//!
//! A rollout is a checkpoint and a write-ahead journal. The checkpoint is one CBOR
//! [`RolloutRecord`] under the rollout id (memory 6): the engine state, whose children carry
//! their step histories, who started it, and `next_entry`, the first journal line it does not
//! include. The journal (memories 7 and 17) is one append-only log shared by every rollout: a
//! small CBOR [`JournalLine`] per change, naming its rollout, appended by [`Rollouts::dispatch`]
//! after the engine issued a batch of actions and *before* their calls are made, and by
//! [`Rollouts::record_outcome`] when each outcome arrives. The engine is deterministic, so the
//! checkpoint with its later lines replayed is the rollout. A step costs one append, not a
//! rewrite of the rollout.
//!
//! The journal is folded when it holds [`CHECKPOINT_EVERY`] lines, or four per child of the
//! rollouts in progress if more: every rollout with unfolded lines writes its checkpoint, and
//! the log starts again empty. Folding costs one write per rollout in progress (linear in their
//! children) and no deletion per line, and the threshold grows with the children, so its cost
//! per step stays flat as rollouts grow. A rollout also writes its checkpoint whenever it
//! becomes active or inactive, and the ids of the active ones are kept apart (memory 19), so
//! that the deployer's upgrade reads only those.
//!
//! While the deployer runs, the rollouts it touched stay on the heap (rebuilt from stable
//! memory on demand); every active rollout is among them, which is what lets folding reach
//! every unfolded line. After its own upgrade, [`Rollouts::recover`] journals that every action
//! in flight is unknown, so the engine reads each such child before going on. Every engine
//! event is appended to the event log (memories 8 and 18), whose index is its sequence number,
//! with its rollout id.
//!
//! # Claims and observations
//!
//! A rollout claims its children in the fleet registry when it starts and frees them when it
//! reaches a final state; a rollback of a finished rollout claims them again. What the engine
//! learns about a child reaches the fleet registry through its events: snapshots taken and replaced,
//! the module a finished child runs.

use std::collections::BTreeMap;

use candid::{Deserialize, Principal};
use ic_stable_structures::{Log, Memory, StableBTreeMap};
use serde::Serialize;
use serde_bytes::ByteBuf;

mod api;

pub use api::{
    AdoptChildrenArg, ChildHistory, ChildHistoryArg, EventPage, ListEventsArg, ListRolloutsArg,
    PolicyArg, RolloutEvent, RolloutInfo, RolloutPage, StartRolloutArg,
};

use crate::cbor::{Cbor, CborBytes};
use crate::engine::{
    Action, ActionId, CallCosts, Command, ControlError, Delivery, Event, EventKind, ModuleHash,
    Nanos, Outcome, Plan, Rollout, StepRecord, Summary, TargetRelease, Verdict,
    INLINE_MODULE_ESTIMATE_BYTES,
};
use crate::error::{Error, ErrorKind};
use crate::fleet::{self, Fleet};
use crate::hash::Sha256Hash;
use crate::release_store::ReleaseStore;
use crate::releases::{Release, ReleaseReference, ReleaseReferences};

/// The largest module installed with a single `install_code`: a larger one (or one of several
/// chunks) goes through a chunk store, so that no message approaches the 2 MiB limit.
pub const MAX_INLINE_MODULE_BYTES: u64 = 1_900 * 1024;
/// Journal lines the log holds before it is folded into the checkpoints of the rollouts in
/// progress and starts again: at least this many, and four per child of those rollouts, so
/// that a fold's cost (linear in the children) spreads over as many steps and the cost per
/// child stays flat as rollouts grow.
pub const CHECKPOINT_EVERY: u64 = 64;
const CHECKPOINT_ENTRIES_PER_CHILD: u64 = 4;
/// The IC queues at most 500 messages from one canister to another (the management canister
/// included) before refusing calls. Rollouts keep this many calls in flight at most, leaving
/// [`MAX_UPLOADS_IN_FLIGHT`] for chunk uploads.
pub const MAX_ROLLOUT_CALLS_IN_FLIGHT: u32 = 400;
/// When a rollout's actions were all held back for other rollouts' calls, it asks again after
/// this long.
pub const HELD_BACK_RETRY_NANOS: Nanos = 1_000_000_000;
/// Chunk uploads into stores in flight at once, all stores together; at least a release's
/// chunks, so that any release can be uploaded.
pub const MAX_UPLOADS_IN_FLIGHT: u32 = crate::uploads::MAX_CHUNKS;
/// Cycles the deployer keeps beyond its freezing threshold for its own operation (operator
/// calls, its upgrade) when deciding what a rollout can spend.
pub const CYCLES_KEPT_BACK: u128 = 100_000_000_000;

/// What the deployer can spend on a dispatch: its liquid cycle balance (above the freezing
/// threshold) and the price of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funds {
    pub liquid_balance: u128,
    pub costs: CallCosts,
}

impl Funds {
    /// The most one action can cost: an inline install at the largest message size.
    fn per_action(&self) -> u128 {
        let payload = u128::from(INLINE_MODULE_ESTIMATE_BYTES);
        self.costs
            .per_call
            .saturating_add(self.costs.reserved_per_call)
            .saturating_add(self.costs.per_payload_byte.saturating_mul(payload))
    }

    /// The liquid balance that pays for `actions` and keeps [`CYCLES_KEPT_BACK`].
    fn balance_needed(&self, actions: u32) -> u128 {
        self.per_action()
            .saturating_mul(u128::from(actions))
            .saturating_add(CYCLES_KEPT_BACK)
    }

    /// How many actions the balance pays for, at the most one can cost.
    fn affordable_actions(&self) -> u32 {
        let spendable = self.liquid_balance.saturating_sub(CYCLES_KEPT_BACK);
        let actions = spendable / self.per_action().max(1);
        u32::try_from(actions).unwrap_or(u32::MAX)
    }
}

/// Default and most rollouts per `list_rollouts` page.
pub const MAX_ROLLOUT_PAGE: u32 = 20;
/// Default and most steps per `child_history` page.
pub const MAX_HISTORY_PAGE: u32 = 500;
/// Default and most events per `list_events` page.
pub const MAX_EVENT_PAGE: u32 = 500;
/// Most log entries one `list_events` page reads while filtering by rollout.
pub const EVENT_SCAN_BUDGET: u64 = 20_000;

/// One rollout as stored. The serde names are stored: renaming a field is a schema change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RolloutRecord {
    pub created_by: Principal,
    pub created_at: Nanos,
    /// The children the rollout claimed, in selection order.
    pub children: Vec<Principal>,
    /// Whether the claims are held: from the start (or a rollback) to a final phase.
    pub claimed: bool,
    /// The first journal line (log index) not applied to `engine`; lines of other rollouts
    /// are skipped.
    pub next_entry: u64,
    /// The engine state as of the checkpoint.
    pub engine: Rollout,
}

impl RolloutRecord {
    fn is_active(&self) -> bool {
        self.engine.finished_at().is_none()
    }
}

/// An event of the log, as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    pub rollout_id: u64,
    pub event: Event,
}

/// Where a subnet's children get chunked modules from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubnetStore {
    /// The deployer shares the subnet and is the store itself.
    Deployer,
    Canister(Principal),
}

/// A line of the journal: one change to one rollout. The serde names are stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct JournalLine {
    pub rollout_id: u64,
    pub entry: JournalEntry,
}

/// One change to a rollout's engine, in the order it was applied. The engine is
/// deterministic, so replaying the entries after a checkpoint on that checkpoint reproduces it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum JournalEntry {
    /// `next_actions(at, max_new)`: the actions it issued are in flight from then on.
    Dispatched {
        at: Nanos,
        #[serde(default = "unlimited", skip_serializing_if = "is_unlimited")]
        max_new: u32,
    },
    Outcome {
        action: ActionId,
        outcome: Outcome,
        at: Nanos,
    },
    Command {
        command: Command,
        at: Nanos,
    },
    /// `mark_in_flight_unknown(at)` after the deployer's upgrade.
    LostInFlight {
        at: Nanos,
    },
    /// `pause_for_cycles(balance, required, at)`: the deployer could not pay for the next steps.
    PausedForCycles {
        balance: u128,
        required: u128,
        at: Nanos,
    },
}

fn unlimited() -> u32 {
    u32::MAX
}

fn is_unlimited(max_new: &u32) -> bool {
    *max_new == u32::MAX
}

impl JournalEntry {
    fn apply(&self, engine: &mut Rollout) {
        match self {
            Self::Dispatched { at, max_new } => {
                engine.next_actions(*at, *max_new);
            }
            Self::Outcome {
                action,
                outcome,
                at,
            } => engine
                .on_outcome(*action, outcome.clone(), *at)
                .expect("a journaled outcome was accepted when it was recorded"),
            Self::Command { command, at } => {
                let applied = match command {
                    Command::Pause => engine.pause(*at),
                    Command::Resume => engine.resume(*at),
                    Command::Abort => engine.abort(*at),
                    Command::RollBackAll => engine.rollback_all(*at),
                };
                applied.expect("a journaled command was accepted when it was recorded");
            }
            Self::LostInFlight { at } => {
                engine.mark_in_flight_unknown(*at);
            }
            Self::PausedForCycles {
                balance,
                required,
                at,
            } => engine
                .pause_for_cycles(*balance, *required, *at)
                .expect("a journaled pause was accepted when it was recorded"),
        }
    }
}

/// A rollout as the heap holds it while the deployer runs: the record with the journal
/// lines after its checkpoint applied.
struct Live {
    record: RolloutRecord,
    /// Its journal lines not folded into the stored checkpoint.
    unfolded: u64,
    /// The stored checkpoint's `next_entry`: a fold must move it to the new log's start even
    /// when the rollout wrote nothing since.
    stored_next_entry: u64,
    /// Whether the stored checkpoint shows the rollout active; `None` before the first one.
    stored_active: Option<bool>,
}

type StableLog<T, M> = Log<Cbor<T>, M, M>;

/// Rollouts, their journal, the event log and the chunk store canisters.
pub struct Rollouts<M: Memory> {
    rollouts: StableBTreeMap<u64, CborBytes<RolloutRecord>, M>,
    /// The ids of the rollouts whose stored checkpoint is active.
    active: StableBTreeMap<u64, (), M>,
    /// `None` only while folding swaps in a fresh log.
    journal: Option<StableLog<JournalLine, M>>,
    events: StableLog<LoggedEvent, M>,
    stores: StableBTreeMap<Principal, Principal, M>,
    /// Rollouts touched since the deployer started, so that a step costs its own journal entry,
    /// not a decode and an encode of the whole rollout. Rebuilt from stable memory on demand.
    live: BTreeMap<u64, Live>,
}

impl<M: Memory> Rollouts<M> {
    pub fn init(memories: RolloutMemories<M>) -> Self {
        let RolloutMemories {
            rollouts,
            active,
            journal_index,
            journal_data,
            events_index,
            events_data,
            stores,
        } = memories;
        Self {
            rollouts: StableBTreeMap::init(rollouts),
            active: StableBTreeMap::init(active),
            journal: Some(Log::init(journal_index, journal_data)),
            events: Log::init(events_index, events_data),
            stores: StableBTreeMap::init(stores),
            live: BTreeMap::new(),
        }
    }

    fn journal(&self) -> &StableLog<JournalLine, M> {
        self.journal
            .as_ref()
            .expect("the journal is only absent while folding")
    }

    /// Records `store` as the chunk store for children on `subnet`; replaces an earlier one.
    pub fn register_store(&mut self, subnet: Principal, store: Principal) {
        self.stores.insert(subnet, store);
    }

    /// The store serving `subnet`, the deployer's own subnet being `own_subnet`.
    pub fn store_for(&self, subnet: Principal, own_subnet: Principal) -> Option<SubnetStore> {
        if subnet == own_subnet {
            return Some(SubnetStore::Deployer);
        }
        self.stores.get(&subnet).map(SubnetStore::Canister)
    }

    /// Plans a rollout of the selected children, claims them and stores it. Nothing is stored
    /// when it is refused. Returns its id.
    pub fn start(
        &mut self,
        fleet: &mut Fleet<M>,
        release_store: &ReleaseStore<M>,
        arg: StartRolloutArg,
        own_subnet: Principal,
        caller: Principal,
        now: Nanos,
    ) -> Result<u64, Error> {
        let release = release_store.get_release(&arg.release)?;
        let selected: Vec<_> = fleet.select(&arg.selector).map_err(fleet_error)?.collect();
        let selected = match arg.selector {
            // The operator's order is the rollout's order.
            fleet::Selector::Explicit(_) => selected,
            _ => interleave_subnets(selected, |(_, record)| record.subnet),
        };
        let without_store = selected
            .iter()
            .map(|(_, record)| {
                fleet
                    .subnet(record.subnet)
                    .expect("a child's subnet is numbered")
            })
            .find(|&subnet| self.store_for(subnet, own_subnet).is_none());
        let delivery = delivery_of(&release, without_store.is_none());
        if let (Delivery::ChunkStore, Some(subnet)) = (delivery, without_store) {
            return Err(ErrorKind::NoChunkStore { subnet }.into());
        }
        let plan = Plan {
            release: TargetRelease {
                module_hash: module_hash_of(&release),
                delivery,
            },
            children: selected
                .iter()
                .map(|(canister_id, record)| {
                    record.spec(fleet::child_id(canister_id), record.snapshots.clone())
                })
                .collect(),
            policy: arg.policy.unwrap_or_default().into_policy(),
        };
        let engine = Rollout::new(plan, now).map_err(|error| ErrorKind::InvalidRolloutPlan {
            reason: error.to_string(),
        })?;
        let rollout_id = self.rollouts.keys().next_back().map_or(0, |id| id + 1);
        let children: Vec<Principal> = selected.into_iter().map(|(id, _)| id).collect();
        fleet.claim(&children, rollout_id).map_err(fleet_error)?;
        let record = RolloutRecord {
            created_by: caller,
            created_at: now,
            children,
            claimed: true,
            next_entry: 0,
            engine,
        };
        self.live.insert(
            rollout_id,
            Live {
                record,
                unfolded: 0,
                stored_next_entry: 0,
                stored_active: None,
            },
        );
        self.commit(rollout_id, None, fleet);
        Ok(rollout_id)
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
        // A late timer or callback of a finished rollout: nothing can be due, nothing to
        // journal, and no reason to decode its checkpoint.
        if !self.live.contains_key(&rollout_id) && !self.active.contains_key(&rollout_id) {
            return None;
        }
        let in_flight = self.calls_in_flight();
        let live = self.live_mut(rollout_id, fleet).ok()?;
        if !live.record.is_active() {
            self.live.remove(&rollout_id);
            return None;
        }
        let engine = &mut live.record.engine;
        let queue_room = MAX_ROLLOUT_CALLS_IN_FLIGHT.saturating_sub(in_flight);
        let affordable = funds.affordable_actions();
        let max_new = queue_room.min(affordable);
        let own_in_flight = engine.in_flight().len();
        let dispatch = engine.next_actions(now, max_new);
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
            .map(|live| live.record.engine.release())
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
    /// rollouts that still have work, to drive again.
    pub fn recover(&mut self, fleet: &mut Fleet<M>, now: Nanos) -> Vec<u64> {
        let active: Vec<u64> = self.active.keys().collect();
        for &rollout_id in &active {
            let live = self.live_mut(rollout_id, fleet).expect("listed above");
            live.record.engine.mark_in_flight_unknown(now);
            self.commit(
                rollout_id,
                Some(JournalEntry::LostInFlight { at: now }),
                fleet,
            );
        }
        active
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
            // Refused on a finished rollout: nothing keeps it on the heap.
            self.live.remove(&rollout_id);
        }
        let summary = applied?;
        self.commit(
            rollout_id,
            Some(JournalEntry::Command { command, at: now }),
            fleet,
        );
        Ok(summary)
    }

    pub fn info(&self, rollout_id: u64) -> Result<RolloutInfo, Error> {
        self.with_current(rollout_id, |record| info(rollout_id, record))
    }

    pub fn list(&self, arg: &ListRolloutsArg) -> RolloutPage {
        let limit = arg
            .limit
            .unwrap_or(MAX_ROLLOUT_PAGE)
            .clamp(1, MAX_ROLLOUT_PAGE) as usize;
        let end = arg.before.unwrap_or(u64::MAX);
        let ids: Vec<u64> = self
            .rollouts
            .range(..end)
            .rev()
            .take(limit + 1)
            .map(|entry| *entry.key())
            .collect();
        let mut rollouts: Vec<RolloutInfo> = ids
            .into_iter()
            .map(|id| self.info(id).expect("listed above"))
            .collect();
        let next_before = (rollouts.len() > limit).then(|| {
            rollouts.truncate(limit);
            rollouts.last().expect("a full page").rollout_id
        });
        RolloutPage {
            rollouts,
            next_before,
        }
    }

    pub fn child_history(&self, arg: &ChildHistoryArg) -> Result<ChildHistory, Error> {
        self.with_current(arg.rollout_id, |record| {
            let child = record
                .engine
                .child(&fleet::child_id(&arg.canister_id))
                .ok_or(ErrorKind::NotInRollout {
                    rollout_id: arg.rollout_id,
                    canister_id: arg.canister_id,
                })?;
            let limit = arg
                .limit
                .unwrap_or(MAX_HISTORY_PAGE)
                .clamp(1, MAX_HISTORY_PAGE) as usize;
            let from = arg.from.unwrap_or(0) as usize;
            let history = child.history();
            let steps: Vec<StepRecord> = history.iter().skip(from).take(limit).cloned().collect();
            let end = from + steps.len();
            Ok(ChildHistory {
                canister_id: arg.canister_id,
                wave: child.wave(),
                state: child.state(),
                snapshot: child
                    .rollout_snapshot()
                    .map(|snapshot| ByteBuf::from(snapshot.0.clone())),
                steps,
                next: (end < history.len()).then_some(end as u32),
            })
        })?
    }

    pub fn events(&self, arg: &ListEventsArg) -> EventPage {
        let limit = arg.limit.unwrap_or(MAX_EVENT_PAGE).clamp(1, MAX_EVENT_PAGE) as usize;
        let mut events = Vec::new();
        let from = arg.from.unwrap_or(0);
        for (scanned, sequence) in (0u64..).zip(from..self.events.len()) {
            if events.len() == limit || scanned == EVENT_SCAN_BUDGET {
                return EventPage {
                    events,
                    next: Some(sequence),
                };
            }
            let Cbor(logged) = self.events.get(sequence).expect("below the log's length");
            if arg.rollout_id.is_none_or(|id| id == logged.rollout_id) {
                events.push(RolloutEvent {
                    sequence,
                    rollout_id: logged.rollout_id,
                    at: logged.event.at,
                    kind: logged.event.kind,
                });
            }
        }
        EventPage { events, next: None }
    }

    /// The release a rollout installs (it never changes, so the checkpoint tells).
    pub fn release_of(&self, rollout_id: u64) -> Option<TargetRelease> {
        match self.live.get(&rollout_id) {
            Some(live) => Some(live.record.engine.release().clone()),
            None => self
                .rollouts
                .get(&rollout_id)
                .map(|stored| stored.decode().engine.release().clone()),
        }
    }

    /// Runs `f` on the rollout as it stands: the heap's copy, or its checkpoint with the
    /// journal replayed.
    fn with_current<R>(
        &self,
        rollout_id: u64,
        f: impl FnOnce(&RolloutRecord) -> R,
    ) -> Result<R, Error> {
        match self.live.get(&rollout_id) {
            Some(live) => Ok(f(&live.record)),
            None => self.load(rollout_id).map(|live| f(&live.record)),
        }
    }

    /// The rollout on the heap, loaded from stable memory if it is not there yet. Loading an
    /// active rollout (after an upgrade) restores its claims, which live on the heap.
    fn live_mut(&mut self, rollout_id: u64, fleet: &mut Fleet<M>) -> Result<&mut Live, Error> {
        if !self.live.contains_key(&rollout_id) {
            let live = self.load(rollout_id)?;
            if live.record.claimed {
                fleet.restore_claim(&live.record.children, rollout_id);
            }
            self.live.insert(rollout_id, live);
        }
        Ok(self.live.get_mut(&rollout_id).expect("inserted above"))
    }

    /// The checkpoint with every later journal line of the rollout applied. Their events were
    /// logged when the lines were first applied, so they are dropped here.
    fn load(&self, rollout_id: u64) -> Result<Live, Error> {
        let mut record = self
            .rollouts
            .get(&rollout_id)
            .ok_or(ErrorKind::RolloutNotFound { rollout_id })?
            .decode();
        let stored_active = Some(record.is_active());
        let stored_next_entry = record.next_entry;
        let journal = self.journal();
        let mut unfolded = 0;
        for index in record.next_entry..journal.len() {
            let Cbor(line) = journal.get(index).expect("below the log's length");
            if line.rollout_id == rollout_id {
                line.entry.apply(&mut record.engine);
                unfolded += 1;
            }
        }
        record.engine.drain_events();
        Ok(Live {
            record,
            unfolded,
            stored_next_entry,
            stored_active,
        })
    }

    /// Appends `entry` to the journal, logs the engine's new events, tells the fleet registry what
    /// they show, frees the claims of a rollout that reached a final phase, writes its
    /// checkpoint when it became active or inactive, and folds the journal when it grew long.
    fn commit(&mut self, rollout_id: u64, entry: Option<JournalEntry>, fleet: &mut Fleet<M>) {
        let journal = self.journal.as_ref().expect("not folding");
        let live = self.live.get_mut(&rollout_id).expect("the rollout is live");
        if let Some(entry) = entry {
            append(journal, JournalLine { rollout_id, entry });
            live.unfolded += 1;
        }
        let record = &mut live.record;
        let release = record.engine.release().module_hash;
        for event in record.engine.drain_events() {
            observe(fleet, &record.engine, release, &event);
            append(&self.events, LoggedEvent { rollout_id, event });
        }
        let active = record.is_active();
        if record.claimed && !active {
            fleet.release_claim(&record.children, rollout_id);
            record.claimed = false;
        }
        if live.stored_active != Some(active) {
            record.next_entry = journal.len();
            self.rollouts.insert(rollout_id, CborBytes::encode(record));
            if active {
                self.active.insert(rollout_id, ());
            } else {
                self.active.remove(&rollout_id);
            }
            live.stored_active = Some(active);
            live.stored_next_entry = record.next_entry;
            live.unfolded = 0;
        }
        if !active {
            // Final and checkpointed: the heap copy is no longer needed.
            self.live.remove(&rollout_id);
        }
        self.fold_if_long();
    }

    /// Folds a long journal: every live rollout whose checkpoint does not start at the new log's
    /// start (it has unfolded lines, or its checkpoint points into the old log) writes its
    /// checkpoint, and the log starts again empty. Every active rollout is live, so no line is
    /// lost.
    fn fold_if_long(&mut self) {
        let children: u64 = self
            .live
            .values()
            .map(|live| live.record.children.len() as u64)
            .sum();
        let journal = self.journal.take().expect("not folding");
        if journal.len() < CHECKPOINT_EVERY.max(CHECKPOINT_ENTRIES_PER_CHILD * children) {
            self.journal = Some(journal);
            return;
        }
        // Inactive rollouts write no lines (a command that would activate one checkpoints it).
        let stale = |live: &&mut Live| {
            live.record.is_active() && (live.unfolded > 0 || live.stored_next_entry != 0)
        };
        for (&rollout_id, live) in self.live.iter_mut().filter(|(_, live)| stale(live)) {
            live.record.next_entry = 0;
            live.stored_next_entry = 0;
            live.unfolded = 0;
            self.rollouts
                .insert(rollout_id, CborBytes::encode(&live.record));
        }
        let (index, data) = journal.into_memories();
        self.journal = Some(Log::new(index, data));
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
    let applied = match command {
        Command::Pause => record.engine.pause(now),
        Command::Resume => record.engine.resume(now),
        Command::Abort => record.engine.abort(now),
        Command::RollBackAll => record.engine.rollback_all(now),
    };
    if let Err(error) = applied {
        if claim {
            fleet.release_claim(&record.children, rollout_id);
        }
        return Err(control_error(rollout_id, command, error));
    }
    record.claimed |= claim;
    Ok(record.engine.summary())
}

/// The stable memories of [`Rollouts`], see [`crate::memory`].
pub struct RolloutMemories<M: Memory> {
    pub rollouts: M,
    pub active: M,
    pub journal_index: M,
    pub journal_data: M,
    pub events_index: M,
    pub events_data: M,
    pub stores: M,
}

fn append<T: Serialize + serde::de::DeserializeOwned, M: Memory>(log: &StableLog<T, M>, item: T) {
    log.append(&Cbor(item))
        .expect("stable memory grows while the subnet has room");
}

/// Active rollouts reference the release they install.
impl<M: Memory> ReleaseReferences for Rollouts<M> {
    fn references(&self, sha256: &Sha256Hash) -> Vec<ReleaseReference> {
        self.active
            .keys()
            .filter(|rollout_id| {
                self.release_of(*rollout_id)
                    .is_some_and(|release| release.module_hash.0 == *sha256)
            })
            .map(|rollout_id| ReleaseReference::Rollout { rollout_id })
            .collect()
    }
}

/// Records in the fleet registry what a finished child shows: one write per child and rollout (its
/// snapshots taken and replaced along the way included), not one per event. The registry
/// refuses only children it does not hold, and a claimed child cannot leave it, so a refusal
/// is ignored.
fn observe<M: Memory>(fleet: &mut Fleet<M>, engine: &Rollout, release: ModuleHash, event: &Event) {
    let EventKind::ChildFinished { child, verdict } = &event.kind else {
        return;
    };
    let Some(state) = engine.child(child) else {
        return;
    };
    let module = match verdict {
        Verdict::Upgraded => Some(Some(release)),
        Verdict::RolledBack(_) => Some(state.previous_module()),
        _ => None,
    };
    let snapshots = state
        .snapshots()
        .iter()
        .filter(|snapshot| snapshot.made_by_deployer)
        .map(|snapshot| snapshot.id.clone())
        .collect();
    let canister_id = fleet::canister_id(child);
    let _ = fleet.record_child_end(&canister_id, module, snapshots, event.at);
}

fn info(rollout_id: u64, record: &RolloutRecord) -> RolloutInfo {
    RolloutInfo {
        rollout_id,
        release_sha256: ByteBuf::from(record.engine.release().module_hash.0.to_vec()),
        created_by: record.created_by,
        created_at: record.created_at,
        policy: record.engine.policy().clone(),
        summary: record.engine.summary(),
    }
}

/// Takes the children one subnet after another (round robin), keeping each subnet's order, so
/// that every wave, and every batch the concurrency admits, spreads over the subnets: each
/// subnet runs its own management messages (snapshots, installs) in parallel with the others.
fn interleave_subnets<T, K: Ord + Copy>(items: Vec<T>, subnet: impl Fn(&T) -> K) -> Vec<T> {
    let mut queues: BTreeMap<K, std::collections::VecDeque<T>> = BTreeMap::new();
    for item in items {
        queues.entry(subnet(&item)).or_default().push_back(item);
    }
    let mut interleaved = Vec::new();
    while !queues.is_empty() {
        queues.retain(|_, queue| {
            interleaved.extend(queue.pop_front());
            !queue.is_empty()
        });
    }
    interleaved
}

/// Through the chunk stores whenever every child's subnet has one: the module then crosses
/// once per subnet, and each install carries only chunk hashes (an inline install copies the
/// whole module into every message, which costs the deployer instructions and the subnets
/// bandwidth per child). Without stores, small single-chunk modules travel inline; larger ones
/// need the stores.
pub fn delivery_of(release: &Release, stores_everywhere: bool) -> Delivery {
    let fits_inline =
        release.summary.chunk_count == 1 && release.summary.size <= MAX_INLINE_MODULE_BYTES;
    if fits_inline && !stores_everywhere {
        Delivery::InstallCode
    } else {
        Delivery::ChunkStore
    }
}

fn module_hash_of(release: &Release) -> ModuleHash {
    ModuleHash(
        release
            .summary
            .sha256
            .as_slice()
            .try_into()
            .expect("a release hash is 32 bytes"),
    )
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
        ControlError::NoSnapshots => ErrorKind::NothingToRollBack { rollout_id },
    }
    .into()
}

#[cfg(test)]
mod tests;
