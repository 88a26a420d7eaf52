//! The rollout driver: the canister side of rollouts, compiled for the Wasm target (and this
//! crate's unit tests) like [`crate::entry_points`], whose methods start and steer it. It runs
//! [`crate::rollouts::Rollouts`] against the IC; `effects` is its one seam to the management
//! canister.
//!
//! Drives rollouts: the engine issues the actions now due, the journal is written, and one task
//! per action makes its call. Each outcome is journaled as it arrives, in the callback, and the
//! rollout is driven again right there, so the next step of a child costs no extra message.
//! Each rollout also has at most one pending timer, for the engine's next due time (a backoff,
//! a bake) and for starting, resuming and recovering.
//!
//! A stopping deployer chains no new calls from callbacks: it hands over to the timer, which
//! does not run until the deployer is started again, so its call contexts close and it can stop
//! (and be upgraded) in the middle of a rollout.
//!
//! Chunked releases: before the first chunked install on a subnet, the release's chunks are
//! uploaded into that subnet's store, each chunk once (those `stored_chunks` lists are
//! skipped), as many stores at once as [`MAX_UPLOADS_IN_FLIGHT`] allows. Installs issued while
//! the upload runs wait for it, parked on the heap. The heap knows which stores are ready;
//! after an upgrade it is empty, and the first install per store reads `stored_chunks` again.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use candid::Principal;
use ic_cdk::api::{
    canister_liquid_cycle_balance, canister_status, cost_call, subnet_self, time,
    CanisterStatusCode,
};
// The driver's tasks are migratory, not protected: ic-cdk-executor 2.0 lists each
// protected task under the method that spawned it, and never takes a finished task off that
// list; tasks spawned in a callback belong to the method that made the call, so a rollout
// driven from its callbacks kept one method alive for its whole length, its list grew by
// every action, and the callback that closed it walked the list: 97 M instructions in the last
// verification of a 100,000-child rollout (bench `on_demand_fleet_100000_children`). A
// migratory task is on no list; a trapped callback's cleanup still cancels the task that
// awaited the call.
use ic_cdk::futures::spawn_migratory;
use ic_cdk_timers::TimerId;

use crate::engine::{
    reject_code, Action, ActionId, ActionKind, CallCosts, ModuleHash, Outcome, SubnetIndex,
};
use crate::entry_points::{mutate_state, read_state};
use crate::hash::Sha256Hash;
use crate::rollouts::{Funds, SubnetStore, MAX_UPLOADS_IN_FLIGHT, WATCHDOG_INTERVAL_NANOS};
use crate::uploads::MAX_CHUNKS;
use effects::{CallError, Install};

pub mod effects;

/// A store and the release whose chunks it holds (or is receiving).
type StoreKey = (Principal, ModuleHash);

enum StoreState {
    /// The store holds these chunks of the release, in order: what its installs name, kept
    /// here so that an install does not decode the release record again.
    Ready(Rc<[Sha256Hash]>),
    /// The upload runs; these installs wait for it.
    Uploading(Vec<(u64, Action)>),
}

thread_local! {
    /// Per rollout: the time its pending timer fires, and the timer.
    static TIMERS: RefCell<BTreeMap<u64, (u64, TimerId)>> = const { RefCell::new(BTreeMap::new()) };
    static STORES: RefCell<BTreeMap<StoreKey, StoreState>> = const { RefCell::new(BTreeMap::new()) };
    /// The rollouts `fill_stores_ahead` filled the stores of since the deployer started.
    static FILLED_AHEAD: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
    /// Stores waiting for their upload, oldest first.
    static UPLOAD_QUEUE: RefCell<VecDeque<StoreKey>> = const { RefCell::new(VecDeque::new()) };
    /// Places of the management canister's queue left to uploads: an upload takes one per
    /// chunk of its release while it runs, so uploads never hold more than
    /// `MAX_UPLOADS_IN_FLIGHT` of them (a release has at most that many chunks); rollouts keep
    /// the rest.
    static UPLOAD_PLACES: Cell<u32> = const { Cell::new(MAX_UPLOADS_IN_FLIGHT) };
    /// When a rollout was last driven, for dashboards: a driver that stopped running shows.
    static LAST_DRIVEN_AT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Outcomes to journal when their rollout is next driven: those of actions whose task was
    /// dropped in a trapped callback's cleanup (see [`AnswerWatch`]), where nothing may be
    /// spawned and the journal is not written.
    static INTERRUPTED: RefCell<Vec<(u64, ActionId, Outcome)>> = const { RefCell::new(Vec::new()) };
}

/// Armed while a task awaits the answer to an action. When a callback traps, the IC rolls back
/// what it did and runs the call's cleanup, in which ic-cdk drops the task that awaited the call
/// (IC interface specification, "Callback invocation"); dropped armed, the watch has the action
/// settled as unknown at the rollout's next drive: it may or may not have happened, and the
/// engine reads the child, as after `SYS_UNKNOWN`. Without it the action stayed in flight, its
/// child never finished, and the rollout waited for an operator's `reconcile_rollout`.
struct AnswerWatch {
    rollout_id: u64,
    armed: Option<ActionId>,
}

impl AnswerWatch {
    fn arm(rollout_id: u64, action: ActionId) -> Self {
        Self {
            rollout_id,
            armed: Some(action),
        }
    }

    fn answered(mut self) {
        self.armed = None;
    }
}

impl Drop for AnswerWatch {
    fn drop(&mut self) {
        if let Some(action) = self.armed.take() {
            settle_later(self.rollout_id, action, Outcome::Unknown);
        }
    }
}

/// Has the action settled as `outcome` when its rollout is next driven, which is at once.
fn settle_later(rollout_id: u64, action: ActionId, outcome: Outcome) {
    INTERRUPTED.with_borrow_mut(|interrupted| interrupted.push((rollout_id, action, outcome)));
    drive_no_later_than(rollout_id, time());
}

/// Armed while an upload runs; dropped armed, one of its callbacks trapped and the cleanup
/// dropped its task (see [`AnswerWatch`]). Then the places it held are given back, its store is
/// no longer taken as receiving (the next install there reads `stored_chunks` again), and the
/// installs that waited for it are settled as transient rejects, to be retried.
struct UploadWatch {
    key: StoreKey,
    places: u32,
    armed: bool,
}

impl Drop for UploadWatch {
    fn drop(&mut self) {
        UPLOAD_PLACES.set(UPLOAD_PLACES.get() + self.places);
        if !self.armed {
            return;
        }
        // Its store is `Uploading` until the upload ends, in the message that disarms it.
        let waiting = match STORES.with_borrow_mut(|stores| stores.remove(&self.key)) {
            Some(StoreState::Uploading(waiting)) => waiting,
            _ => Vec::new(),
        };
        let interrupted = Outcome::Rejected {
            code: reject_code::SYS_TRANSIENT,
            message: format!(
                "uploading the release into chunk store {} was interrupted (a callback of the \
                 deployer trapped); the install is retried",
                self.key.0
            ),
        };
        for (rollout_id, action) in waiting {
            settle_later(rollout_id, action.id, interrupted.clone());
        }
    }
}

/// When a rollout was last driven since the deployer started (its last upgrade).
pub fn last_driven_at() -> Option<u64> {
    LAST_DRIVEN_AT.get()
}

/// Makes sure the rollout is driven at `deadline` or earlier.
///
/// A pending timer whose time has passed is not trusted: its body may have trapped, which
/// rolled back its removal from `TIMERS` while the timer itself was spent, and a rollout whose
/// entry stays would never be driven again. It is replaced (driving twice is harmless: a
/// dispatch with nothing due issues nothing).
pub fn drive_no_later_than(rollout_id: u64, deadline: u64) {
    let pending = TIMERS.with_borrow(|timers| timers.get(&rollout_id).copied());
    if let Some((scheduled, timer)) = pending {
        if scheduled <= deadline && scheduled >= time() {
            return;
        }
        ic_cdk_timers::clear_timer(timer);
    }
    let delay = Duration::from_nanos(deadline.saturating_sub(time()));
    let timer = ic_cdk_timers::set_timer(delay, async move {
        TIMERS.with_borrow_mut(|timers| timers.remove(&rollout_id));
        drive(rollout_id);
    });
    TIMERS.with_borrow_mut(|timers| timers.insert(rollout_id, (deadline, timer)));
}

/// Arms the watchdog, from `init` and `post_upgrade` (an upgrade clears every timer). A timer
/// body that traps (stable memory that cannot grow, an instruction limit) keeps its rollout's
/// `TIMERS` entry, since the trap rolled back its removal, while the timer itself is spent:
/// nothing would drive the rollout again. The watchdog drives such a rollout. Its cost is one
/// small message per interval, reading only the heap's timer table.
pub fn start_watchdog() {
    let interval = Duration::from_nanos(WATCHDOG_INTERVAL_NANOS);
    ic_cdk_timers::set_timer_interval(interval, || async { drive_overdue(time()) });
}

/// Drives every rollout whose timer is overdue by more than the watchdog's interval.
fn drive_overdue(now: u64) {
    let grace = WATCHDOG_INTERVAL_NANOS;
    let overdue: Vec<u64> = TIMERS.with_borrow(|timers| {
        timers
            .iter()
            .filter(|(_, (scheduled, _))| scheduled.saturating_add(grace) < now)
            .map(|(&rollout_id, _)| rollout_id)
            .collect()
    });
    for rollout_id in overdue {
        drive_no_later_than(rollout_id, now);
    }
}

/// An operator's reconciliation of a rollout: every action it has in flight is settled as
/// unknown (the engine reads each such child before going on, and a late answer is dropped),
/// and the rollout is driven at once. For an action whose callback trapped, which would
/// otherwise stay in flight until the deployer's next upgrade.
pub fn reconcile(rollout_id: u64) -> Result<(), crate::error::Error> {
    let now = time();
    // Installs parked behind a store's upload are in flight for the engine but not yet called:
    // once settled as unknown they must never be called.
    STORES.with_borrow_mut(|stores| {
        for store in stores.values_mut() {
            if let StoreState::Uploading(waiting) = store {
                waiting.retain(|(waiting_rollout, _)| *waiting_rollout != rollout_id);
            }
        }
    });
    mutate_state(|state| state.rollouts.reconcile(rollout_id, &mut state.fleet, now))?;
    drive_no_later_than(rollout_id, now);
    Ok(())
}

/// After the deployer's upgrade: settles what was in flight and drives every unfinished
/// rollout again.
pub fn recover() {
    let now = time();
    let active = mutate_state(|state| state.rollouts.recover(&mut state.fleet, now));
    for rollout_id in active {
        drive_no_later_than(rollout_id, now);
    }
}

fn drive(rollout_id: u64) {
    settle_interrupted(rollout_id);
    let now = time();
    LAST_DRIVEN_AT.set(Some(now));
    let funds = funds();
    let Some((actions, next_due)) = mutate_state(|state| {
        state
            .rollouts
            .dispatch(rollout_id, &mut state.fleet, now, &funds)
    }) else {
        return;
    };
    if !actions.is_empty() {
        fill_stores_ahead(rollout_id);
    }
    for action in actions {
        start(rollout_id, action);
    }
    if let Some(due) = next_due {
        drive_no_later_than(rollout_id, due);
    }
}

/// Journals the outcomes of the rollout's actions whose task a trapped callback's cleanup
/// dropped, and starts the uploads that waited for the places such a task held.
fn settle_interrupted(rollout_id: u64) {
    // Every callback drives its rollout: the common case, nothing interrupted, allocates nothing.
    if INTERRUPTED.with_borrow(Vec::is_empty) {
        return;
    }
    let mine: Vec<_> = INTERRUPTED.with_borrow_mut(|interrupted| {
        interrupted
            .extract_if(.., |(of, _, _)| *of == rollout_id)
            .collect()
    });
    let settled = !mine.is_empty();
    for (_, action, outcome) in mine {
        journal_outcome(rollout_id, action, outcome);
    }
    if settled {
        start_uploads();
    }
}

/// The deployer's spendable cycles and the IC's price of a call (`ic0.cost_call`, which
/// includes what a call holds back for its reply).
fn funds() -> Funds {
    let per_call = cost_call(0, 0);
    Funds {
        liquid_balance: canister_liquid_cycle_balance(),
        costs: CallCosts {
            per_call,
            per_payload_byte: cost_call(0, 1).saturating_sub(per_call),
            reserved_per_call: 0,
        },
    }
}

/// Begins the upload of the rollout's chunked release into the stores of its children's
/// subnets, once per rollout and deployer run, when it first issues actions, unless a store
/// has it or is receiving it already: the first install there then finds it ready instead of
/// waiting for it. The first install's own check of its store covers an upload that fails.
fn fill_stores_ahead(rollout_id: u64) {
    if !FILLED_AHEAD.with_borrow_mut(|filled| filled.insert(rollout_id)) {
        return;
    }
    let Some((release, subnets)) = read_state(|state| state.rollouts.stores_to_fill(rollout_id))
    else {
        return;
    };
    for store in subnets.into_iter().filter_map(store_of) {
        let key = (store, release);
        let begun = STORES.with_borrow_mut(|stores| {
            if stores.contains_key(&key) {
                return false;
            }
            stores.insert(key, StoreState::Uploading(Vec::new()));
            true
        });
        if begun {
            enqueue_upload(key);
        }
    }
}

/// Starts the call of one action (or parks a chunked install behind its store's upload).
fn start(rollout_id: u64, action: Action) {
    match &action.kind {
        ActionKind::InstallCode { module_hash, .. } => {
            let module = read_state(|state| state.release_store.module_chunk(&module_hash.0, 0));
            match module {
                Ok(module) => {
                    spawn_migratory(perform(rollout_id, action, Some(Install::Inline(module))))
                }
                Err(error) => settle(
                    rollout_id,
                    action.id,
                    Outcome::Rejected {
                        code: reject_code::SYS_FATAL,
                        message: error.to_string(),
                    },
                ),
            }
        }
        ActionKind::InstallChunked {
            module_hash,
            subnet,
            ..
        } => {
            let key = match store_of(*subnet) {
                Some(store) => (store, *module_hash),
                None => {
                    let message = "no chunk store is registered for the child's subnet".into();
                    return settle(
                        rollout_id,
                        action.id,
                        Outcome::Rejected {
                            code: reject_code::SYS_TRANSIENT,
                            message,
                        },
                    );
                }
            };
            let ready = STORES.with_borrow_mut(|stores| match stores.get_mut(&key) {
                Some(StoreState::Ready(chunk_hashes)) => Some(chunk_hashes.clone()),
                Some(StoreState::Uploading(waiting)) => {
                    waiting.push((rollout_id, action.clone()));
                    None
                }
                None => {
                    stores.insert(
                        key,
                        StoreState::Uploading(vec![(rollout_id, action.clone())]),
                    );
                    enqueue_upload(key);
                    None
                }
            });
            if let Some(chunk_hashes) = ready {
                let install = chunked(key.0, &chunk_hashes);
                spawn_migratory(perform(rollout_id, action, Some(install)));
            }
        }
        _ => spawn_migratory(perform(rollout_id, action, None)),
    }
}

/// Makes the call and journals its outcome. The rollout then goes on at once, in the
/// callback, unless the deployer is stopping: a stopping deployer makes no new calls (it waits
/// for its call contexts to close), and the timer that takes over does not run until it is
/// started again.
async fn perform(rollout_id: u64, action: Action, install: Option<Install>) {
    let store = match (&action.kind, &install) {
        (ActionKind::InstallChunked { module_hash, .. }, Some(Install::Chunked { store, .. })) => {
            Some((*store, *module_hash))
        }
        _ => None,
    };
    let watch = AnswerWatch::arm(rollout_id, action.id);
    let mut outcome = effects::perform(&action, install).await;
    watch.answered();
    if let Some(key) = store.filter(|_| effects::store_lost_chunks(&outcome)) {
        outcome = store_emptied(key, outcome);
    }
    journal_outcome(rollout_id, action.id, outcome);
    if canister_status() == CanisterStatusCode::Running {
        drive(rollout_id);
    } else {
        drive_no_later_than(rollout_id, time());
    }
}

/// A chunked install failed because the store no longer holds the release's chunks (another
/// controller cleared it): the child was not touched. The store is no longer taken as ready,
/// so the next install reads `stored_chunks` and uploads what is missing, and the install is
/// retried as after a transient reject.
fn store_emptied(key: StoreKey, outcome: Outcome) -> Outcome {
    STORES.with_borrow_mut(|stores| {
        if matches!(stores.get(&key), Some(StoreState::Ready(_))) {
            stores.remove(&key);
        }
    });
    match outcome {
        Outcome::Rejected { message, .. } => Outcome::Rejected {
            code: reject_code::SYS_TRANSIENT,
            message,
        },
        other => other,
    }
}

/// Journals an outcome and asks for the rollout to be driven again.
fn settle(rollout_id: u64, action: ActionId, outcome: Outcome) {
    journal_outcome(rollout_id, action, outcome);
    drive_no_later_than(rollout_id, time());
}

fn journal_outcome(rollout_id: u64, action: ActionId, outcome: Outcome) {
    let now = time();
    mutate_state(|state| {
        state
            .rollouts
            .record_outcome(rollout_id, action, outcome, &mut state.fleet, now)
    });
}

/// Queues the upload of a release into a store.
fn enqueue_upload(key: StoreKey) {
    UPLOAD_QUEUE.with_borrow_mut(|queue| queue.push_back(key));
    start_uploads();
}

/// Starts queued uploads, oldest first, while the places they take are free.
fn start_uploads() {
    while let Some(key) = UPLOAD_QUEUE.with_borrow(|queue| queue.front().copied()) {
        let places = chunk_hashes(key.1).len() as u32;
        if places > UPLOAD_PLACES.get() {
            return;
        }
        UPLOAD_QUEUE.with_borrow_mut(|queue| queue.pop_front());
        UPLOAD_PLACES.set(UPLOAD_PLACES.get() - places);
        spawn_migratory(async move {
            let mut watch = UploadWatch {
                key,
                places,
                armed: true,
            };
            upload_release(key).await;
            watch.armed = false;
            drop(watch);
            start_uploads();
        });
    }
}

/// Uploads the release's chunks that the store lacks, then starts the installs that waited.
async fn upload_release(key: StoreKey) {
    let (store, release) = key;
    let chunk_hashes: Rc<[Sha256Hash]> = chunk_hashes(release).into();
    let result = upload_missing_chunks(store, release, &chunk_hashes).await;
    let waiting = STORES.with_borrow_mut(|stores| {
        let waiting = match stores.remove(&key) {
            Some(StoreState::Uploading(waiting)) => waiting,
            _ => Vec::new(),
        };
        if result.is_ok() {
            stores.insert(key, StoreState::Ready(chunk_hashes.clone()));
        }
        waiting
    });
    for (rollout_id, action) in waiting {
        match &result {
            Ok(()) => spawn_migratory(perform(
                rollout_id,
                action,
                Some(chunked(store, &chunk_hashes)),
            )),
            Err(CallError { code, message }) => settle(
                rollout_id,
                action.id,
                Outcome::Rejected {
                    code: *code,
                    message: format!("uploading the release into chunk store {store}: {message}"),
                },
            ),
        }
    }
}

/// A chunk store holds at most 100 chunks (IC interface specification, "IC method
/// upload_chunk"). A store without room for the release is cleared first, unless a chunk it
/// holds may still serve another rollout: then the installs wait and retry.
async fn upload_missing_chunks(
    store: Principal,
    release: ModuleHash,
    hashes: &[Sha256Hash],
) -> Result<(), CallError> {
    let mut stored = effects::stored_chunks(store).await?;
    let is_missing = |hash: &Sha256Hash, stored: &[Vec<u8>]| {
        !stored.iter().any(|held| held.as_slice() == hash.as_slice())
    };
    let missing = hashes
        .iter()
        .filter(|hash| is_missing(hash, &stored))
        .count();
    if stored.len() + missing > MAX_CHUNKS as usize {
        let in_use = read_state(|state| state.rollouts.chunked_releases_in_use());
        if in_use.iter().any(|other| *other != release) {
            return Err(CallError {
                code: reject_code::SYS_TRANSIENT,
                message: format!(
                    "chunk store {store} is full and holds chunks of another release being \
                     rolled out; it is cleared once that rollout ends"
                ),
            });
        }
        effects::clear_chunk_store(store).await?;
        STORES.with_borrow_mut(|stores| {
            stores.retain(|(held_by, held), _| *held_by != store || *held == release)
        });
        stored.clear();
    }
    let missing: Vec<u32> = (0u32..)
        .zip(hashes)
        .filter(|(_, hash)| is_missing(hash, &stored))
        .map(|(index, _)| index)
        .collect();
    // Each chunk is read when its call is made, and freed once sent: the heap holds a chunk or
    // two at a time, not every chunk of every upload in flight.
    let uploads = missing.into_iter().map(|index| async move {
        let chunk = read_state(|state| state.release_store.module_chunk(&release.0, index))
            .expect("a release in use is never deleted");
        effects::upload_chunk(store, chunk).await
    });
    effects::join_calls(uploads).await.into_iter().collect()
}

fn chunked(store: Principal, chunk_hashes: &[Sha256Hash]) -> Install {
    Install::Chunked {
        store,
        chunk_hashes: chunk_hashes.to_vec(),
    }
}

fn chunk_hashes(release: ModuleHash) -> Vec<Sha256Hash> {
    read_state(|state| state.release_store.module_by_sha256(&release.0))
        .expect("a release in use is never deleted")
        .chunk_sha256
}

/// The canister whose chunk store serves children on `subnet`.
fn store_of(subnet: SubnetIndex) -> Option<Principal> {
    read_state(|state| {
        let subnet = state.fleet.subnet(subnet)?;
        match state.rollouts.store_for(subnet, subnet_self())? {
            SubnetStore::Deployer => Some(ic_cdk::api::canister_self()),
            SubnetStore::Canister(store) => Some(store),
        }
    })
}
