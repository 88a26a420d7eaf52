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
//! their step histories, who started it, and `next_entry`, the first journal entry it does not
//! include. The journal (memory 7) holds one small CBOR [`JournalEntry`] per change under
//! `(rollout id, sequence)`: written by [`Rollouts::dispatch`] after the engine issued a batch
//! of actions and *before* their calls are made, and by [`Rollouts::record_outcome`] when each
//! outcome arrives. The engine is deterministic, so the checkpoint with its later entries
//! replayed is the rollout. Every [`CHECKPOINT_EVERY`] entries (or four per child, if more), and whenever the rollout becomes
//! active or inactive, the whole state is written again and the folded entries are removed:
//! a step costs one small entry, not a rewrite of the rollout.
//!
//! While the deployer runs, the rollouts it touched stay on the heap (rebuilt from stable
//! memory on demand). After its own upgrade, [`Rollouts::recover`] journals that every action
//! in flight is unknown, so the engine reads each such child before going on. Every engine
//! event is appended to the log (memory 8) under the next sequence number, with its rollout id.
//!
//! # Claims and observations
//!
//! A rollout claims its children in the fleet registry when it starts and frees them when it
//! reaches a final state; a rollback of a finished rollout claims them again. What the engine
//! learns about a child reaches the registry through its events: snapshots taken and replaced,
//! the module a finished child runs.

use std::collections::BTreeMap;

use candid::{Deserialize, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Serialize;
use serde_bytes::ByteBuf;

mod api;

pub use api::{
    AdoptChildrenArg, ChildHistory, ChildHistoryArg, EventPage, ListEventsArg, ListRolloutsArg,
    PolicyArg, RolloutEvent, RolloutInfo, RolloutPage, StartRolloutArg,
};

use crate::cbor::Cbor;
use crate::chunk_store::Sha256Hash;
use crate::error::{Error, ErrorKind};
use crate::fleet::{self, Fleet};
use crate::registry::Registry;
use crate::releases::{Release, ReleaseReference, ReleaseReferences};
use crate::rollout::{
    Action, ActionId, Command, ControlError, Delivery, Event, EventKind, ModuleHash, Nanos,
    Outcome, Plan, Release as EngineRelease, Rollout, StepRecord, Summary, Verdict,
};

/// The largest module installed with a single `install_code`: a larger one (or one of several
/// chunks) goes through a chunk store, so that no message approaches the 2 MiB limit.
pub const MAX_INLINE_MODULE_BYTES: u64 = 1_900 * 1024;
/// Journal entries a rollout accumulates before its engine state is written whole again (a
/// checkpoint) and the entries it folds in are removed: at least this many, and four per
/// child, so that a checkpoint's cost (linear in the children) spreads over as many steps and
/// the cost per child stays flat as rollouts grow.
pub const CHECKPOINT_EVERY: u64 = 64;
const CHECKPOINT_ENTRIES_PER_CHILD: u64 = 4;
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
    /// The first journal entry not applied to `engine`.
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
pub enum ChunkStore {
    /// The deployer shares the subnet and is the store itself.
    Deployer,
    Canister(Principal),
}

/// One change to a rollout's engine, in the order it was applied. The engine is
/// deterministic, so replaying the entries after a checkpoint on that checkpoint reproduces it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum JournalEntry {
    /// `next_actions(at)`: the actions it issued are in flight from then on.
    Dispatched {
        at: Nanos,
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
}

impl JournalEntry {
    fn apply(&self, engine: &mut Rollout) {
        match self {
            Self::Dispatched { at } => {
                engine.next_actions(*at);
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
        }
    }
}

/// A rollout as the heap holds it while the deployer runs: the record with the journal
/// entries after its checkpoint applied, and where the journal continues.
struct Live {
    record: RolloutRecord,
    next_seq: u64,
    /// Whether the stored checkpoint shows the rollout active; `None` before the first one.
    stored_active: Option<bool>,
}

/// Rollouts, their journals, the event log and the chunk store canisters.
pub struct Rollouts<M: Memory> {
    rollouts: StableBTreeMap<u64, Cbor<RolloutRecord>, M>,
    journal: StableBTreeMap<(u64, u64), Cbor<JournalEntry>, M>,
    events: StableBTreeMap<u64, Cbor<LoggedEvent>, M>,
    stores: StableBTreeMap<Principal, Principal, M>,
    /// Rollouts touched since the deployer started, so that a step costs its own journal entry,
    /// not a decode and an encode of the whole rollout. Rebuilt from stable memory on demand.
    live: BTreeMap<u64, Live>,
}

impl<M: Memory> Rollouts<M> {
    pub fn init(rollouts: M, journal: M, events: M, stores: M) -> Self {
        Self {
            rollouts: StableBTreeMap::init(rollouts),
            journal: StableBTreeMap::init(journal),
            events: StableBTreeMap::init(events),
            stores: StableBTreeMap::init(stores),
            live: BTreeMap::new(),
        }
    }

    /// Records `store` as the chunk store for children on `subnet`; replaces an earlier one.
    pub fn register_store(&mut self, subnet: Principal, store: Principal) {
        self.stores.insert(subnet, store);
    }

    /// The store serving `subnet`, the deployer's own subnet being `own_subnet`.
    pub fn store_for(&self, subnet: Principal, own_subnet: Principal) -> Option<ChunkStore> {
        if subnet == own_subnet {
            return Some(ChunkStore::Deployer);
        }
        self.stores.get(&subnet).map(ChunkStore::Canister)
    }

    /// Plans a rollout of the selected children, claims them and stores it. Nothing is stored
    /// when it is refused. Returns its id.
    pub fn start(
        &mut self,
        fleet: &mut Fleet<M>,
        registry: &Registry<M>,
        arg: StartRolloutArg,
        own_subnet: Principal,
        caller: Principal,
        now: Nanos,
    ) -> Result<u64, Error> {
        let release = registry.get_release(&arg.release)?;
        let selected: Vec<_> = fleet.select(&arg.selector).map_err(fleet_error)?.collect();
        let delivery = delivery_of(&release);
        if delivery == Delivery::ChunkStore {
            for (_, record) in &selected {
                let subnet = fleet
                    .subnet(record.subnet)
                    .expect("a child's subnet is numbered");
                if self.store_for(subnet, own_subnet).is_none() {
                    return Err(ErrorKind::NoChunkStore { subnet }.into());
                }
            }
        }
        let plan = Plan {
            release: EngineRelease {
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
        let rollout_id = self.rollouts.last_key_value().map_or(0, |(id, _)| id + 1);
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
                next_seq: 0,
                stored_active: None,
            },
        );
        self.commit(rollout_id, None, fleet);
        Ok(rollout_id)
    }

    /// Issues the actions now due, journals them before their calls are made, and returns them
    /// with the time to call again.
    pub fn dispatch(
        &mut self,
        rollout_id: u64,
        fleet: &mut Fleet<M>,
        now: Nanos,
    ) -> Option<(Vec<Action>, Option<Nanos>)> {
        let live = self.live_mut(rollout_id).ok()?;
        if !live.record.is_active() {
            // A late timer of a finished rollout: nothing can be due, nothing to journal.
            self.live.remove(&rollout_id);
            return None;
        }
        let dispatch = live.record.engine.next_actions(now);
        self.commit(
            rollout_id,
            Some(JournalEntry::Dispatched { at: now }),
            fleet,
        );
        Some((dispatch.actions, dispatch.next_due))
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
        let Ok(live) = self.live_mut(rollout_id) else {
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
        // A checkpoint is written whenever a rollout becomes active or inactive, so the stored
        // records tell which are active.
        let active: Vec<u64> = self
            .rollouts
            .iter()
            .filter(|entry| entry.value().0.is_active())
            .map(|entry| *entry.key())
            .collect();
        for &rollout_id in &active {
            let live = self.live_mut(rollout_id).expect("listed above");
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
        let live = self.live_mut(rollout_id)?;
        let record = &mut live.record;
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
        let summary = record.engine.summary();
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
        for (scanned, entry) in (0u64..).zip(self.events.range(arg.from.unwrap_or(0)..)) {
            let sequence = *entry.key();
            if events.len() == limit || scanned == EVENT_SCAN_BUDGET {
                return EventPage {
                    events,
                    next: Some(sequence),
                };
            }
            let Cbor(logged) = entry.value();
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
    pub fn release_of(&self, rollout_id: u64) -> Option<EngineRelease> {
        self.rollouts
            .get(&rollout_id)
            .map(|Cbor(record)| record.engine.release().clone())
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

    fn live_mut(&mut self, rollout_id: u64) -> Result<&mut Live, Error> {
        if !self.live.contains_key(&rollout_id) {
            let live = self.load(rollout_id)?;
            self.live.insert(rollout_id, live);
        }
        Ok(self.live.get_mut(&rollout_id).expect("inserted above"))
    }

    /// The checkpoint with every later journal entry applied. Their events were logged when
    /// the entries were first applied, so they are dropped here.
    fn load(&self, rollout_id: u64) -> Result<Live, Error> {
        let Cbor(mut record) = self
            .rollouts
            .get(&rollout_id)
            .ok_or(ErrorKind::RolloutNotFound { rollout_id })?;
        let stored_active = Some(record.is_active());
        let mut next_seq = record.next_entry;
        for entry in self
            .journal
            .range((rollout_id, record.next_entry)..=(rollout_id, u64::MAX))
        {
            entry.value().0.apply(&mut record.engine);
            next_seq = entry.key().1 + 1;
        }
        record.engine.drain_events();
        Ok(Live {
            record,
            next_seq,
            stored_active,
        })
    }

    /// Appends `entry` to the rollout's journal, logs the engine's new events, tells the
    /// registry what they show, frees the claims of a rollout that reached a final phase, and
    /// writes a checkpoint when the journal grew long or the rollout became active or inactive.
    fn commit(&mut self, rollout_id: u64, entry: Option<JournalEntry>, fleet: &mut Fleet<M>) {
        let live = self.live.get_mut(&rollout_id).expect("the rollout is live");
        if let Some(entry) = entry {
            self.journal
                .insert((rollout_id, live.next_seq), Cbor(entry));
            live.next_seq += 1;
        }
        let record = &mut live.record;
        let release = record.engine.release().module_hash;
        for event in record.engine.drain_events() {
            observe(fleet, &record.engine, release, &event);
            let sequence = self.events.last_key_value().map_or(0, |(seq, _)| seq + 1);
            self.events
                .insert(sequence, Cbor(LoggedEvent { rollout_id, event }));
        }
        let active = record.is_active();
        if record.claimed && !active {
            fleet.release_claim(&record.children, rollout_id);
            record.claimed = false;
        }
        let journaled = live.next_seq - record.next_entry;
        let checkpoint_every =
            CHECKPOINT_EVERY.max(CHECKPOINT_ENTRIES_PER_CHILD * record.children.len() as u64);
        if journaled >= checkpoint_every || live.stored_active != Some(active) {
            record.next_entry = live.next_seq;
            self.rollouts.insert(rollout_id, Cbor(record.clone()));
            let folded: Vec<(u64, u64)> = self
                .journal
                .range((rollout_id, 0)..(rollout_id, record.next_entry))
                .map(|entry| *entry.key())
                .collect();
            for key in folded {
                self.journal.remove(&key);
            }
            live.stored_active = Some(active);
        }
        if !active {
            // Final and checkpointed: the heap copy is no longer needed.
            self.live.remove(&rollout_id);
        }
    }
}

/// Active rollouts reference the release they install. A checkpoint is written whenever a
/// rollout becomes active or inactive, so the stored records tell.
impl<M: Memory> ReleaseReferences for Rollouts<M> {
    fn references(&self, sha256: &Sha256Hash) -> Vec<ReleaseReference> {
        self.rollouts
            .iter()
            .filter(|entry| {
                let Cbor(record) = entry.value();
                record.is_active() && record.engine.release().module_hash.0 == *sha256
            })
            .map(|entry| ReleaseReference::Rollout {
                rollout_id: *entry.key(),
            })
            .collect()
    }
}

/// Records in the registry what an event shows about a child. The registry refuses only
/// children it does not hold, and a claimed child cannot leave it, so a refusal is ignored.
fn observe<M: Memory>(fleet: &mut Fleet<M>, engine: &Rollout, release: ModuleHash, event: &Event) {
    match &event.kind {
        EventKind::SnapshotTaken {
            child,
            snapshot,
            replaced,
        } => {
            let canister_id = fleet::canister_id(child);
            if let Some(replaced) = replaced {
                let _ = fleet.forget_snapshot(&canister_id, replaced);
            }
            let _ = fleet.record_snapshot(&canister_id, snapshot.clone());
        }
        EventKind::ChildFinished { child, verdict } => {
            let module = match verdict {
                Verdict::Upgraded => Some(release),
                Verdict::RolledBack(_) => engine.child(child).and_then(|c| c.previous_module()),
                _ => return,
            };
            let _ = fleet.record_module(&fleet::canister_id(child), module, event.at);
        }
        _ => {}
    }
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

/// Small single-chunk modules travel inline; everything else through a chunk store.
pub fn delivery_of(release: &Release) -> Delivery {
    if release.summary.chunk_count == 1 && release.summary.size <= MAX_INLINE_MODULE_BYTES {
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
