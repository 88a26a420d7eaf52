//! The replicated state of one canister (`CanisterState`) and the data it is made of: call
//! contexts, inducted messages, chunk store, snapshots, history; and the calls canisters have
//! outstanding. Data and read-only views: the modules that own each part (named on
//! `CanisterState`) change it.

use crate::exec::{self, CallResponse, CanisterInstance, InstanceSnapshot};
use crate::types::{limits, CanisterRunStatus, Principal};
use crate::MessageId;
use candid::Nat;
use ic_management_canister_types::{
    Change, ChangeDetails, ChangeOrigin, DefiniteCanisterSettings, LogVisibility,
    SnapshotVisibility, StatusVisibility,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A Candid `Nat` (a setting, an amount of cycles) as a `u64`, saturating.
pub(crate) fn nat_to_u64(n: &Nat) -> u64 {
    u64::try_from(&n.0).unwrap_or(u64::MAX)
}

/// A Candid `Nat` as a `u128`, saturating.
pub(crate) fn nat_to_u128(n: &Nat) -> u128 {
    u128::try_from(&n.0).unwrap_or(u128::MAX)
}

/// A message in flight or in an input queue.
#[derive(Clone, Debug)]
pub(crate) enum Message {
    Ingress {
        id: MessageId,
        sender: Principal,
        receiver: Principal,
        method: String,
        payload: Vec<u8>,
    },
    Request {
        caller: Principal,
        callee: Principal,
        method: String,
        payload: Vec<u8>,
        cycles: u128,
        call_id: u64,
        deadline_nanos: u64,
    },
    Response {
        originator: Principal,
        respondent: Principal,
        call_id: u64,
        response: CallResponse,
        refund: u128,
    },
}

impl Message {
    /// Sender and receiver.
    pub(crate) fn route(&self) -> (Principal, Principal) {
        match self {
            Message::Ingress {
                sender, receiver, ..
            } => (*sender, *receiver),
            Message::Request { caller, callee, .. } => (*caller, *callee),
            Message::Response {
                originator,
                respondent,
                ..
            } => (*respondent, *originator),
        }
    }
}

/// Who is waiting for the answer to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CallOrigin {
    /// An ingress message from a user.
    Ingress { id: MessageId, sender: Principal },
    /// A request from canister `caller`, answered through its outstanding call `call_id`.
    Canister { caller: Principal, call_id: u64 },
    /// A global timer or heartbeat: nobody waits for an answer.
    System,
}

impl CallOrigin {
    /// `msg_caller` for executions in a context with this origin.
    pub(crate) fn caller(&self) -> Principal {
        match self {
            CallOrigin::Ingress { sender, .. } => *sender,
            CallOrigin::Canister { caller, .. } => *caller,
            CallOrigin::System => Principal::management_canister(),
        }
    }
}

/// A call context (IC interface specification, "Call contexts"): open until it is answered and
/// every call made from it has been answered.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    pub origin: CallOrigin,
    pub responded: bool,
    /// Set by `uninstall_code`: the context was rejected and its callbacks must not run.
    pub deleted: bool,
    /// Calls made from this context whose callbacks have not run yet.
    pub outstanding_calls: usize,
    /// Cycles attached by the caller and not yet accepted; refunded with the answer.
    pub cycles_available: u128,
    /// `msg_deadline` of the request (0 for unbounded-wait calls and ingress).
    pub deadline_nanos: u64,
    pub instructions: u64,
}

impl CallContext {
    pub(crate) fn new(origin: CallOrigin, cycles_available: u128, deadline_nanos: u64) -> Self {
        CallContext {
            origin,
            responded: false,
            deleted: false,
            outstanding_calls: 0,
            cycles_available,
            deadline_nanos,
            instructions: 0,
        }
    }
}

/// A call a canister made and whose response has not been executed yet.
#[derive(Clone, Debug)]
pub(crate) struct OutstandingCall {
    pub originator: Principal,
    pub context: u64,
    pub callee: Principal,
    pub method: String,
    /// The canister the call is about: the callee, or a management call's effective canister id.
    pub target: Option<Principal>,
    /// Made with `call_with_best_effort_response` (only such calls may end in `SYS_UNKNOWN`).
    pub bounded_wait: bool,
    pub callback: exec::Callback,
    /// Withdrawn at `call_perform` for the largest possible response; returned when the
    /// response is processed, which then pays its actual transmission and execution.
    pub reserved_for_response: u128,
    /// A response (real or the deadline's `SYS_UNKNOWN`) is already on its way into the
    /// originator's input queue; any later one is dropped.
    pub answered: bool,
}

/// A `stop_canister` call waiting for the canister to reach `stopped`.
#[derive(Clone, Debug)]
pub(crate) struct PendingStop {
    pub origin: CallOrigin,
    pub caller: Principal,
    pub cycles: u128,
    /// When the call is answered with an error if the canister is still stopping.
    pub timeout_at_nanos: u64,
}

/// A canister's chunk store: chunks of at most 1 MiB by their SHA-256, at most
/// `CHUNK_STORE_CAPACITY` of them. Cloning (a snapshot's copy) shares the chunks.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChunkStore {
    chunks: BTreeMap<[u8; 32], Arc<[u8]>>,
}

impl ChunkStore {
    /// Stores `chunk` and returns its hash. A chunk that is already stored is not stored again and
    /// needs no space, so re-uploading it succeeds even when the store is full (replica
    /// `WasmChunkStore`).
    pub(crate) fn insert(&mut self, chunk: Vec<u8>) -> Result<[u8; 32], String> {
        let hash: [u8; 32] = Sha256::digest(&chunk).into();
        if self.chunks.contains_key(&hash) {
            return Ok(hash);
        }
        if chunk.len() > limits::MAX_CHUNK_SIZE {
            return Err(format!(
                "Wasm chunk size {} exceeds the maximum chunk size of {}",
                chunk.len(),
                limits::MAX_CHUNK_SIZE
            ));
        }
        if self.chunks.len() >= limits::CHUNK_STORE_CAPACITY {
            return Err(format!(
                "Wasm chunk store has already reached maximum capacity of {} bytes or the maximum number of entries, {}",
                limits::CHUNK_STORE_CAPACITY * limits::MAX_CHUNK_SIZE,
                limits::CHUNK_STORE_CAPACITY
            ));
        }
        self.chunks.insert(hash, chunk.into());
        Ok(hash)
    }

    pub(crate) fn get(&self, hash: &[u8]) -> Option<&[u8]> {
        let hash: [u8; 32] = hash.try_into().ok()?;
        self.chunks.get(&hash).map(|chunk| &chunk[..])
    }

    /// Each stored chunk's address and length, to count chunks shared with snapshots once.
    pub(crate) fn held(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.chunks
            .values()
            .map(|chunk| (chunk.as_ptr() as usize, chunk.len()))
    }

    /// The hashes of the stored chunks, in hash order.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.chunks.keys()
    }

    pub(crate) fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Memory the store is charged for: every chunk counts as a full 1 MiB.
    pub(crate) fn billed_size(&self) -> u64 {
        (self.chunks.len() * limits::MAX_CHUNK_SIZE) as u64
    }
}

/// What a snapshot holds: Wasm module, heap, globals, stable memory, certified data and chunk
/// store; taken from the canister, or uploaded (`upload_canister_snapshot_metadata/_data`).
pub(crate) struct CanisterSnapshot {
    pub content: SnapshotContent,
    pub certified_data: Vec<u8>,
    pub chunk_store: ChunkStore,
    pub taken_at_nanos: u64,
    /// The canister's version when the snapshot was taken (for the `load_snapshot` history entry).
    pub canister_version: u64,
}

pub(crate) enum SnapshotContent {
    Taken(InstanceSnapshot),
    /// Written by uploads at offsets; each buffer reads as zeros up to its declared size.
    Uploaded(UploadedSnapshot),
}

pub(crate) struct UploadedSnapshot {
    pub module: Vec<u8>,
    pub module_size: u64,
    pub wasm_memory: Vec<u8>,
    pub wasm_memory_size: u64,
    pub stable_memory: Vec<u8>,
    pub stable_memory_size: u64,
    pub globals: Vec<ic_management_canister_types::SnapshotMetadataGlobal>,
    pub global_timer: Option<ic_management_canister_types::CanisterTimer>,
}

impl CanisterSnapshot {
    /// Bytes the snapshot adds to its canister's memory (`memory_metrics.snapshots_size`).
    pub(crate) fn total_size(&self) -> u64 {
        let content = match &self.content {
            SnapshotContent::Taken(instance) => instance.total_size(),
            SnapshotContent::Uploaded(u) => {
                u.module_size + u.wasm_memory_size + u.stable_memory_size
            }
        };
        content + self.chunk_store.billed_size() + self.certified_data.len() as u64
    }
}

/// Canister history (management canister `canister_info`): the system keeps at least the 20
/// most recent changes; the total count never decreases.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    recent: VecDeque<Change>,
    total: u64,
}

/// Changes kept per canister (IC interface specification: "at least 20").
const HISTORY_KEPT: usize = 20;

impl History {
    pub(crate) fn push(
        &mut self,
        timestamp_nanos: u64,
        canister_version: u64,
        origin: ChangeOrigin,
        details: ChangeDetails,
    ) {
        if self.recent.len() == HISTORY_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(Change {
            timestamp_nanos,
            canister_version,
            origin,
            details: Some(details),
        });
        self.total += 1;
    }
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
    /// The `n` most recent changes, oldest first.
    pub(crate) fn most_recent(&self, n: usize) -> Vec<Change> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).cloned().collect()
    }
}

/// Settings of a new canister (management canister `create_canister` defaults).
pub(crate) fn default_settings(controllers: Vec<Principal>) -> DefiniteCanisterSettings {
    DefiniteCanisterSettings {
        controllers,
        compute_allocation: Nat::from(0u8),
        memory_allocation: Nat::from(0u8),
        freezing_threshold: Nat::from(2_592_000u64),
        reserved_cycles_limit: Nat::from(5_000_000_000_000u64),
        minimum_incoming_canister_call_cycles: Nat::from(0u8),
        log_visibility: LogVisibility::Controllers,
        log_memory_limit: Nat::from(4096u64),
        snapshot_visibility: SnapshotVisibility::Controllers,
        status_visibility: StatusVisibility::Controllers,
        wasm_memory_limit: Nat::from(0u8),
        wasm_memory_threshold: Nat::from(0u8),
        environment_variables: Vec::new(),
    }
}

/// The replicated state of one canister. Every field group has one owner, the module that writes
/// it; other modules read it, and change it only through the owner's functions.
pub(crate) struct CanisterState {
    // Identity: set by `management` when it creates the canister, never changed.
    pub id: Principal,
    pub subnet: usize,

    // Lifecycle and code: `management` owns these (create, install, uninstall, start, stop,
    // settings, chunk store, snapshots). Executions run `instance` in place, and `execution`
    // bumps `version` after an execution that changes state.
    pub status: CanisterRunStatus,
    /// `None` while the canister is empty.
    pub instance: Option<CanisterInstance>,
    pub settings: DefiniteCanisterSettings,
    pub version: u64,
    pub history: History,
    /// `stop_canister` calls waiting for the canister to reach `stopped`.
    pub pending_stops: Vec<PendingStop>,
    pub chunk_store: ChunkStore,
    /// Snapshots by their per-canister index.
    pub snapshots: BTreeMap<u64, CanisterSnapshot>,
    pub next_snapshot_index: u64,

    // What executions leave behind: `execution` writes them from an execution's outcome;
    // `management` resets them when the code changes, `timers` deactivates the timer as it fires.
    pub global_timer: u64,
    pub certified_data: Vec<u8>,

    // Queues and call contexts: `messaging` owns them (induction fills `input`, the round takes
    // from its front through `Sim::pop_input`; contexts are opened, answered and closed there).
    /// Inducted messages (requests, ingress, responses), FIFO.
    pub input: VecDeque<Message>,
    pub contexts: BTreeMap<u64, CallContext>,
    /// Outstanding calls per callee: the queue between this canister and the callee holds at most
    /// `QUEUE_CAPACITY` of them.
    pub outstanding_by_callee: BTreeMap<Principal, usize>,

    // Cycles: `cycles` owns them. Other modules move the balance only through
    // `credit_cycles`, `debit_cycles`, `set_cycle_balance` and `Sim::burn_cycles`.
    pub cycles: u128,
    /// Cycles this canister paid for executions, ingress, calls and storage.
    pub cycles_burned: u128,
    /// Storage is paid up to this time.
    pub storage_paid_until_nanos: u64,
    /// Fraction of a cycle of storage owed, in units of 1 / (GiB x 1e9) cycles.
    pub storage_charge_remainder: u128,

    // Scheduling: `rounds` owns these.
    /// A long (multi-slice) execution occupies the canister up to and including this round.
    pub busy_until_round: u64,
    /// Install instructions not yet paid off by the install rate limit; `install_code` is
    /// refused while positive.
    pub install_debit: u64,

    // Observation: `trace` owns these (`Sim::record_execution`).
    pub logs: Vec<String>,
    pub last_instructions: u64,
}

impl CanisterState {
    /// A new, empty, running canister; its storage is paid up to `now_nanos`.
    pub(crate) fn new(
        id: Principal,
        subnet: usize,
        settings: DefiniteCanisterSettings,
        cycles: u128,
        now_nanos: u64,
    ) -> Self {
        CanisterState {
            id,
            subnet,
            status: CanisterRunStatus::Running,
            instance: None,
            settings,
            version: 0,
            history: History::default(),
            pending_stops: Vec::new(),
            chunk_store: ChunkStore::default(),
            snapshots: BTreeMap::new(),
            next_snapshot_index: 0,
            global_timer: 0,
            certified_data: Vec::new(),
            input: VecDeque::new(),
            contexts: BTreeMap::new(),
            outstanding_by_callee: BTreeMap::new(),
            cycles,
            cycles_burned: 0,
            storage_paid_until_nanos: now_nanos,
            storage_charge_remainder: 0,
            busy_until_round: 0,
            install_debit: 0,
            logs: Vec::new(),
            last_instructions: 0,
        }
    }

    pub(crate) fn is_controller(&self, principal: &Principal) -> bool {
        self.settings.controllers.contains(principal)
    }

    /// Free slots towards each callee that has outstanding calls (`ExecEnv.free_slots`).
    pub(crate) fn free_slots(&self) -> BTreeMap<Principal, usize> {
        self.outstanding_by_callee
            .iter()
            .map(|(callee, n)| (*callee, limits::QUEUE_CAPACITY.saturating_sub(*n)))
            .collect()
    }

    pub(crate) fn environment_variables(&self) -> Vec<(String, String)> {
        self.settings
            .environment_variables
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect()
    }

    /// Wasm heap + stable memory + module bytes + chunk store + snapshots (the memory the
    /// canister is charged for).
    pub(crate) fn memory_size(&self) -> u64 {
        let code_and_memory = self.instance.as_ref().map_or(0, |i| {
            i.wasm_memory_size() + i.stable_memory_size() + i.module().wasm_binary_size() as u64
        });
        code_and_memory + self.chunk_store.billed_size() + self.snapshots_size()
    }

    pub(crate) fn snapshots_size(&self) -> u64 {
        self.snapshots
            .values()
            .map(CanisterSnapshot::total_size)
            .sum()
    }

    /// Timer and heartbeat only run on a running canister with code.
    pub(crate) fn runs_system_tasks(&self) -> bool {
        self.status == CanisterRunStatus::Running && self.instance.is_some()
    }
}
