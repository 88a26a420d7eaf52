//! The replica model: subnets, rounds, time, queues, the management canister, the trace.
//!
//! Public API: [`Sim`]. The parts:
//! - `ids`: canister and subnet ids, routing by id range;
//! - `state`: a canister's replicated state (data only; its field groups name their owners),
//!   call contexts, messages, chunk store, snapshots, outstanding calls, history;
//! - `rounds`: one round's order of work within the scheduling model's instruction budgets, and
//!   the model's lower bound on rounds;
//! - `execution`: running one message in its call context and applying the outcome;
//! - `messaging`: messages in flight, latency, payload limits, induction, answers, call contexts;
//! - `ingress`: the ingress filter, `canister_inspect_message`, queries;
//! - `management`: the management canister's dispatch table, chunk store and snapshots;
//! - `faults`: injected and seeded random faults, hooks run at a chosen round;
//! - `timers`: global timer, heartbeat, bounded-wait deadlines;
//! - `cycles`: fees, storage charges, the freezing threshold, and every change to a balance;
//! - `trace`: trace events and stats; `errors`: every reject with its code and text.
//!
//! Imports among the parts form a DAG: `errors`, `ids`, `state` and `trace` import no other part;
//! `cycles` and `timers` import `errors` and `state`; `execution` adds `trace`, `management` adds
//! `trace` and `ids`; `messaging`, `ingress`, `rounds` and `faults` import `management` and what
//! it stands on. Every part adds `impl Sim` blocks, so every part imports [`Sim`] from here, and
//! this file names the types its fields hold.

pub mod certificate;
pub use management::management_method_names;
mod cycles;
pub mod errors;
mod execution;
mod faults;
mod ids;
mod ingress;
mod management;
mod messaging;
mod rounds;
mod state;
mod timers;
mod trace;

pub use cycles::{CycleCosts, ResourceUse};
pub use faults::{Fault, FaultCount, FaultEvent, FaultId, FaultSource, RandomFaults};
pub use rounds::{RoundsLowerBound, SchedulingConfig, Workload};

use crate::types::{CanisterRunStatus, Principal, Reject};
use ic_management_canister_types::{
    CanisterInstallMode, CanisterSettings, ChangeOrigin, FromUserRecord, InstallCodeArgs,
    UpgradeFlags, WasmMemoryPersistence,
};
use management::ManagementCall;
use messaging::InFlight;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use state::{CanisterState, OutstandingCall};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Configuration of a simulated IC.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds `raw_rand` and every other pseudo-random choice; same seed + same inputs = same trace.
    pub seed: u64,
    /// Number of application subnets (each with its own canister id range). At least 1.
    pub subnets: usize,
    /// Wall time that one round (block) advances the clock.
    pub round_duration_nanos: u64,
    /// Start time, nanoseconds since the epoch.
    pub start_time_nanos: u64,
    /// Rounds a request takes to reach a canister on the same subnet (>= 1) and on another subnet.
    pub same_subnet_latency_rounds: u64,
    pub cross_subnet_latency_rounds: u64,
    /// How long `stop_canister` waits for a canister to reach `stopped` before it answers with an
    /// error (leaving the canister `stopping`).
    pub stop_timeout_nanos: u64,
    /// Cycles given to canisters created through the test API.
    pub default_cycles: u128,
    /// Strict mode: `take_canister_snapshot` and `load_canister_snapshot` refuse a canister that
    /// is not stopped. The IC interface specification only advises stopping first (off by default).
    pub snapshots_require_stopped: bool,
    /// Charge canisters for executions, ingress and storage and freeze them below their freezing
    /// limit (on by default). Off: only call fees and attached cycles move, nothing freezes.
    pub charge_cycles: bool,
    /// How often canisters pay for their storage and allocations: the replica charges them in
    /// the first round at least this long after the last charge (its cycles account manager's
    /// `duration_between_allocation_charges`, 10 s), for the whole time since.
    pub allocation_charge_interval_nanos: u64,
    /// Cycle prices (default: a 13-node application subnet).
    pub cycle_costs: CycleCosts,
    /// Per-round instruction budgets (see [`SchedulingConfig`]).
    pub scheduling: SchedulingConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            subnets: 1,
            round_duration_nanos: 1_000_000_000,
            start_time_nanos: 1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
            same_subnet_latency_rounds: 1,
            cross_subnet_latency_rounds: 3,
            stop_timeout_nanos: 300_000_000_000,
            default_cycles: 100_000_000_000_000,
            snapshots_require_stopped: false,
            charge_cycles: true,
            allocation_charge_interval_nanos: 10_000_000_000,
            cycle_costs: CycleCosts::default(),
            scheduling: SchedulingConfig::default(),
        }
    }
}

/// Identifies an ingress message submitted with [`Sim::submit_update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub u64);

/// State of an ingress message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngressStatus {
    /// Accepted, not yet answered.
    Processing,
    Completed(Result<Vec<u8>, Reject>),
}

/// What a test sees of a canister (the management canister's `canister_status` plus simulator facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterView {
    pub canister_id: Principal,
    pub subnet: usize,
    pub status: CanisterRunStatus,
    pub module_hash: Option<[u8; 32]>,
    pub controllers: Vec<Principal>,
    pub cycles: u128,
    pub wasm_memory_size: u64,
    pub stable_memory_size: u64,
    pub version: u64,
    pub open_call_contexts: usize,
    pub global_timer: u64,
    pub snapshots: usize,
    pub stored_chunks: usize,
    /// Cycles the canister has paid so far (executions, ingress, calls, storage).
    pub cycles_burned: u128,
    /// Balance below which the canister is frozen (0 when charging is off).
    pub freezing_limit: u128,
    /// `canister_status`'s `idle_cycles_burned_per_day`.
    pub idle_cycles_burned_per_day: u128,
}

/// Totals measured by the simulator, for benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub rounds: u64,
    /// Messages executed (ingress, requests, responses, timers, management calls).
    pub messages: u64,
    /// Instructions executed by canister code, summed over all canisters.
    pub instructions: u64,
    /// Payload bytes of every request and reply that crossed a queue or came in as ingress.
    pub bytes_moved: u64,
    /// The same, only between subnets.
    pub cross_subnet_bytes: u64,
    /// Cycles paid by all canisters (executions, ingress, call fees, storage).
    pub cycles_burned: u128,
}

/// Host memory the simulator holds for canister state, as it counts it itself (deterministic, not
/// the process's resident memory): the pages, chunks and module binaries actually stored, each
/// counted once however many canisters and snapshots share it. Not counted: compiled code, the
/// few wasmtime instances kept for the canisters that ran last, queues, the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMemory {
    pub canisters: u64,
    /// 4 KiB pages of heaps and stable memories (canisters' and snapshots'), in bytes.
    pub memory_bytes: u64,
    /// The part of `memory_bytes` only snapshots hold (pages their canister no longer has).
    pub snapshot_only_bytes: u64,
    /// References to pages held by canisters and snapshots: what each would hold without
    /// interning and sharing is this times 4 KiB.
    pub page_references: u64,
    /// Chunks in chunk stores (canisters' and snapshots').
    pub chunk_bytes: u64,
    /// Buffers of snapshots uploaded with `upload_canister_snapshot_data`.
    pub uploaded_snapshot_bytes: u64,
    /// Module binaries of installed canisters and snapshots.
    pub module_bytes: u64,
}

impl HostMemory {
    pub fn total_bytes(&self) -> u64 {
        self.memory_bytes + self.chunk_bytes + self.uploaded_snapshot_bytes + self.module_bytes
    }
}

/// One line of the execution trace. Serializable so two runs can be compared byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub round: u64,
    pub time_nanos: u64,
    pub kind: TraceKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceKind {
    Ingress {
        id: MessageId,
        sender: Principal,
        canister: Principal,
        method: String,
        bytes: usize,
    },
    IngressDone {
        id: MessageId,
        ok: bool,
    },
    Request {
        from: Principal,
        to: Principal,
        method: String,
        bytes: usize,
    },
    Response {
        from: Principal,
        to: Principal,
        ok: bool,
        bytes: usize,
    },
    /// A management canister method executed for `caller` on `target` (`None` for create/raw_rand).
    Management {
        caller: Principal,
        method: String,
        target: Option<Principal>,
        ok: bool,
    },
    Execution {
        canister: Principal,
        /// What ran: `update:<method>`, `query:<method>`, `global_timer`, ..., and for a
        /// callback `response:<method>`, the method of the call it answers.
        entry: String,
        instructions: u64,
        trapped: bool,
    },
    Timer {
        canister: Principal,
    },
    DebugPrint {
        canister: Principal,
        text: String,
    },
    /// An injected fault took effect.
    Fault {
        source: FaultSource,
        event: FaultEvent,
    },
    /// A hook scheduled with [`Sim::at_round`] for `round` ran.
    Hook {
        round: u64,
    },
}

/// The simulated IC. Deterministic: every map is ordered, every random choice comes from `seed`.
///
/// Owners, as on `state::CanisterState`: the module that writes a field group.
pub struct Sim {
    config: SimConfig,
    // Time: `rounds` (`Sim::advance_time` too).
    round: u64,
    time_nanos: u64,
    // `cycles`: when canisters last paid for their storage and allocations.
    last_allocation_charge_nanos: u64,
    // Subnets: `management` (members, id ranges); their management queues are filled by
    // `messaging` and run by `rounds`, which also holds long installs' answers.
    subnets: Vec<SubnetState>,
    // Canisters: `management` adds and removes them; the owners of their parts are named on
    // `CanisterState`.
    canisters: BTreeMap<Principal, CanisterState>,
    /// Every id ever given out: deleted canisters' ids are never reused.
    used_canister_ids: BTreeSet<Principal>,
    // Messages and calls: `messaging` (`timers` answers calls whose deadline passed).
    /// Messages keyed by (delivery round, send order).
    in_flight: BTreeMap<(u64, u64), InFlight>,
    next_seq: u64,
    /// Outstanding inter-canister calls by call id.
    calls: BTreeMap<u64, OutstandingCall>,
    /// (deadline, call id) of bounded-wait calls.
    call_deadlines: BTreeSet<(u64, u64)>,
    next_call_id: u64,
    next_context_id: u64,
    // Ingress: `ingress` accepts messages, `messaging` records their answers.
    ingress: BTreeMap<MessageId, IngressStatus>,
    next_message_id: u64,
    // `management`: `raw_rand` values drawn so far.
    random_draws: u64,
    root_key: Vec<u8>,
    // `trace`.
    recorder: trace::Recorder,
    // `faults`.
    faults: faults::Faults,
    /// Makes the certificates non-replicated queries read (`certificate`); `None`: the
    /// simulator's own unsigned one.
    data_certifier: Option<certificate::DataCertifier>,
    /// What `http_request` answers (`management::standins`); `None`: 200 with an empty body.
    http_outcall_responder: Option<management::HttpOutcallResponder>,
}

struct SubnetState {
    id: Principal,
    /// Offset within the subnet's id range of the next canister id to try.
    next_canister_offset: u64,
    members: BTreeSet<Principal>,
    /// The members and the management canister: `ExecEnv::same_subnet`, changed with the
    /// members and shared with every execution on the subnet.
    same_subnet_callees: Arc<BTreeSet<Principal>>,
    management_queue: VecDeque<ManagementCall>,
    /// A long (multi-slice) `install_code` runs on this subnet up to and including this round;
    /// no other install starts meanwhile.
    long_install_until_round: u64,
    /// Answers of long installs, sent at the end of the round they finish in.
    held_answers: Vec<rounds::HeldAnswer>,
    /// What a round visits instead of every member (`rounds`), so that a round costs its work,
    /// not the subnet's size: members that may have an input message, a timer or a heartbeat
    /// (every member that has one is here: added when one may appear, removed by the round that
    /// finds none)...
    may_have_work: BTreeSet<Principal>,
    /// ...members that began stopping (removed once they are no longer stopping)...
    stopping: BTreeSet<Principal>,
    /// ...and members with install instructions to pay off.
    install_debtors: BTreeSet<Principal>,
}

impl SubnetState {
    fn new(index: usize) -> SubnetState {
        SubnetState {
            id: ids::subnet_id(index),
            next_canister_offset: 0,
            members: BTreeSet::new(),
            same_subnet_callees: Arc::new(BTreeSet::from([Principal::management_canister()])),
            management_queue: VecDeque::new(),
            long_install_until_round: 0,
            held_answers: Vec::new(),
            may_have_work: BTreeSet::new(),
            stopping: BTreeSet::new(),
            install_debtors: BTreeSet::new(),
        }
    }

    fn add_member(&mut self, canister: Principal) {
        self.members.insert(canister);
        Arc::make_mut(&mut self.same_subnet_callees).insert(canister);
    }

    fn remove_member(&mut self, canister: &Principal) {
        self.members.remove(canister);
        self.may_have_work.remove(canister);
        self.stopping.remove(canister);
        self.install_debtors.remove(canister);
        if *canister != Principal::management_canister() {
            Arc::make_mut(&mut self.same_subnet_callees).remove(canister);
        }
    }
}

/// DER prefix of a BLS12-381 G2 public key, as in the IC's root key.
const ROOT_KEY_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// The simulated IC's root key: the IC's DER framing around 96 deterministic bytes (nothing is
/// signed with it; canisters only read it).
fn root_key() -> Vec<u8> {
    let mut key = ROOT_KEY_DER_PREFIX.to_vec();
    let mut block = Sha256::digest(b"ic-sim root key").to_vec();
    while key.len() < ROOT_KEY_DER_PREFIX.len() + 96 {
        key.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    key.truncate(ROOT_KEY_DER_PREFIX.len() + 96);
    key
}

/// Rounds `update_call` and `install_code` wait at most (the default stop timeout is 300 rounds).
const GENEROUS_ROUNDS: u64 = 100_000;

/// Mode for [`Sim::install_code`] (the management canister's `canister_install_mode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade {
        skip_pre_upgrade: bool,
        keep_wasm_memory: bool,
    },
}

impl InstallMode {
    /// The management canister's `install_code` argument for this mode, Candid-encoded.
    pub fn install_code_payload(&self, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Vec<u8> {
        let mode = match *self {
            InstallMode::Install => CanisterInstallMode::Install,
            InstallMode::Reinstall => CanisterInstallMode::Reinstall,
            InstallMode::Upgrade {
                skip_pre_upgrade,
                keep_wasm_memory,
            } => CanisterInstallMode::Upgrade(Some(UpgradeFlags {
                skip_pre_upgrade: Some(skip_pre_upgrade),
                wasm_memory_persistence: Some(if keep_wasm_memory {
                    WasmMemoryPersistence::Keep
                } else {
                    WasmMemoryPersistence::Replace
                }),
            })),
        };
        let args = InstallCodeArgs {
            mode,
            canister_id: canister,
            wasm_module: wasm.to_vec(),
            arg,
            sender_canister_version: None,
        };
        candid::encode_one(&args).expect("install_code arguments encode")
    }
}

impl Sim {
    pub fn new(config: SimConfig) -> Sim {
        assert!(
            config.subnets >= 1,
            "a simulated IC needs at least one subnet"
        );
        let subnets = (0..config.subnets).map(SubnetState::new).collect();
        Sim {
            round: 0,
            time_nanos: config.start_time_nanos,
            last_allocation_charge_nanos: config.start_time_nanos,
            config,
            subnets,
            canisters: BTreeMap::new(),
            used_canister_ids: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            next_seq: 0,
            calls: BTreeMap::new(),
            call_deadlines: BTreeSet::new(),
            next_call_id: 0,
            next_context_id: 0,
            ingress: BTreeMap::new(),
            next_message_id: 0,
            random_draws: 0,
            root_key: root_key(),
            recorder: trace::Recorder::default(),
            faults: faults::Faults::default(),
            data_certifier: None,
            http_outcall_responder: None,
        }
    }
    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    /// Principal of subnet `index` (0-based).
    pub fn subnet_id(&self, index: usize) -> Principal {
        self.subnets[index].id
    }
    /// Which subnet hosts `canister` (None for unknown ids).
    pub fn subnet_of(&self, canister: Principal) -> Option<usize> {
        self.canisters.get(&canister).map(|c| c.subnet)
    }
    /// The canisters that may have an input message, a timer or a heartbeat: every canister that
    /// has one is among them (`SubnetState::may_have_work`).
    pub(crate) fn may_have_work(&self) -> impl Iterator<Item = &CanisterState> {
        self.subnets
            .iter()
            .flat_map(|subnet| subnet.may_have_work.iter())
            .filter_map(|id| self.canisters.get(id))
    }

    /// Every existing canister, by id.
    pub fn canister_ids(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }
    /// The subnet whose canister id range contains `id`, whether or not such a canister exists
    /// (the routing table's answer; None outside every subnet's range).
    pub fn subnet_of_id(&self, id: Principal) -> Option<usize> {
        self.route(&id)
    }
    /// The closed range of canister ids subnet `index` owns (the routing table's entry).
    pub fn canister_id_range(&self, index: usize) -> (Principal, Principal) {
        assert!(index < self.subnets.len(), "no subnet {index}");
        let first = index as u64 * ids::CANISTER_IDS_PER_SUBNET;
        (
            ids::canister_id(first),
            ids::canister_id(first + ids::CANISTER_IDS_PER_SUBNET - 1),
        )
    }
    /// The `icp:public <name>` / `icp:private <name>` custom sections of the installed module
    /// by name, each as (is public, content); None for an unknown or empty canister.
    pub fn canister_metadata(
        &self,
        canister: Principal,
    ) -> Option<&BTreeMap<String, (bool, Vec<u8>)>> {
        let instance = self.canisters.get(&canister)?.instance.as_ref()?;
        Some(instance.module().metadata())
    }
    /// The DER-encoded root key canisters read with `ic0.root_key_copy`.
    pub fn root_key(&self) -> &[u8] {
        &self.root_key
    }
    /// Has `certifier` make the certificates that non-replicated queries read with
    /// `ic0.data_certificate_copy` (a network serving the simulator signs them with its keys).
    pub fn set_data_certifier(&mut self, certifier: certificate::DataCertifier) {
        self.data_certifier = Some(certifier);
    }
    /// Has `responder` answer the management canister's `http_request` (the simulator reaches no
    /// network; the canister's transform still runs on the answer).
    pub fn set_http_outcall_responder(&mut self, responder: management::HttpOutcallResponder) {
        self.http_outcall_responder = Some(responder);
    }
    /// Replaces the root key canisters read: a network serving the simulator certifies with a
    /// key of its own, and canisters must see that one.
    pub fn set_root_key(&mut self, der: Vec<u8>) {
        self.root_key = der;
    }

    // ---- Test-side conveniences that stand for provisional/ingress management calls. ----

    /// Creates an empty canister on `subnet` with `controllers` and the default cycles
    /// (`provisional_create_canister_with_cycles`). Panics on more than 10 controllers.
    pub fn create_canister(&mut self, subnet: usize, controllers: Vec<Principal>) -> Principal {
        assert!(subnet < self.subnets.len(), "no subnet {subnet}");
        let creator = controllers
            .first()
            .copied()
            .unwrap_or(Principal::anonymous());
        let settings = CanisterSettings {
            controllers: Some(controllers),
            ..CanisterSettings::default()
        };
        let origin = ChangeOrigin::FromUser(FromUserRecord { user_id: creator });
        let cycles = self.config.default_cycles;
        self.new_canister(subnet, None, settings, creator, cycles, origin)
            .unwrap_or_else(|reject| panic!("create_canister: {reject}"))
    }
    /// Adds cycles to a canister (`provisional_top_up_canister`).
    pub fn add_cycles(&mut self, canister: Principal, cycles: u128) {
        let state = self
            .canisters
            .get_mut(&canister)
            .unwrap_or_else(|| panic!("add_cycles: no canister {canister}"));
        state.credit_cycles(cycles);
    }
    /// Test control with no IC counterpart: sets a canister's balance, standing in for a
    /// canister that spent its cycles.
    pub fn set_cycles(&mut self, canister: Principal, cycles: u128) {
        self.canisters
            .get_mut(&canister)
            .unwrap_or_else(|| panic!("set_cycles: no canister {canister}"))
            .set_cycle_balance(cycles);
    }
    /// `install_code` sent as ingress by `sender`, run to completion.
    pub fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject> {
        let payload = mode.install_code_payload(canister, wasm, arg);
        self.update_call(
            sender,
            Principal::management_canister(),
            "install_code",
            payload,
        )
        .map(|_| ())
    }

    // ---- Ingress. ----

    /// Submits an update call as ingress (to a canister, or to the management canister with the
    /// effective canister id taken from the argument). Runs `canister_inspect_message` and the
    /// ingress checks at once: a refusal comes back as `Err` and nothing is enqueued.
    pub fn submit_update(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<MessageId, Reject> {
        self.accept_ingress(sender, canister, method, arg)
    }
    /// Panics for an id `submit_update` never returned.
    pub fn ingress_status(&self, id: MessageId) -> IngressStatus {
        self.ingress
            .get(&id)
            .cloned()
            .unwrap_or_else(|| panic!("unknown ingress message {id:?}"))
    }
    /// Ticks until the message completes (at most `max_rounds`, else panics).
    pub fn await_ingress(&mut self, id: MessageId, max_rounds: u64) -> Result<Vec<u8>, Reject> {
        for _ in 0..=max_rounds {
            if let IngressStatus::Completed(result) = self.ingress_status(id) {
                return result;
            }
            self.tick();
        }
        panic!("ingress message {id:?} did not complete within {max_rounds} rounds")
    }
    /// `submit_update` + `await_ingress` with a generous round bound.
    pub fn update_call(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        let id = self.submit_update(sender, canister, method, arg)?;
        self.await_ingress(id, GENEROUS_ROUNDS)
    }
    /// A non-replicated query: executes at once, its state changes are discarded.
    /// `canister_status` may be queried on the management canister.
    pub fn query_call(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.execute_query(sender, canister, method, arg)
    }

    // ---- Time and rounds. ----

    /// Executes one round on every subnet: delivers due messages, runs due timers, advances time.
    /// Hooks scheduled for the round ([`Sim::at_round`]) run first.
    pub fn tick(&mut self) {
        self.run_due_hooks();
        self.execute_round();
    }
    /// Moves the clock forward without executing anything (timers fire on the next tick).
    pub fn advance_time(&mut self, nanos: u64) {
        self.time_nanos += nanos;
    }
    /// True when no message is queued or in flight and no timer, call deadline or hook is due
    /// within the next round (heartbeats do not count).
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
            && self
                .subnets
                .iter()
                .all(|s| s.management_queue.is_empty() && s.held_answers.is_empty())
            && self.may_have_work().all(|c| c.input.is_empty())
            && !self.time_event_due_next_round()
            && !self.hook_due_next_round()
    }
    /// Ticks until [`Sim::is_idle`]; returns the rounds used. Panics after `max_rounds`.
    pub fn run_until_idle(&mut self, max_rounds: u64) -> u64 {
        let mut rounds = 0;
        while !self.is_idle() {
            assert!(
                rounds < max_rounds,
                "the simulation is not idle after {max_rounds} rounds"
            );
            self.tick();
            rounds += 1;
        }
        rounds
    }
    pub fn time_nanos(&self) -> u64 {
        self.time_nanos
    }
    pub fn round(&self) -> u64 {
        self.round
    }

    // ---- Observation. ----

    pub fn canister(&self, canister: Principal) -> Option<CanisterView> {
        let state = self.canisters.get(&canister)?;
        let (wasm_memory_size, stable_memory_size) = state
            .instance
            .as_ref()
            .map_or((0, 0), |i| (i.wasm_memory_size(), i.stable_memory_size()));
        Some(CanisterView {
            canister_id: canister,
            subnet: state.subnet,
            status: state.status,
            module_hash: state.instance.as_ref().map(|i| i.module().module_hash()),
            controllers: state.settings.controllers.clone(),
            cycles: state.cycles,
            wasm_memory_size,
            stable_memory_size,
            version: state.version,
            open_call_contexts: state.contexts.len(),
            global_timer: state.global_timer,
            snapshots: state.snapshots.len(),
            stored_chunks: state.chunk_store.len(),
            cycles_burned: state.cycles_burned,
            freezing_limit: self.freezing_limit_of(state),
            idle_cycles_burned_per_day: self.idle_cycles_burned_per_day_of(state),
        })
    }
    pub fn stats(&self) -> Stats {
        self.recorder.stats.clone()
    }
    pub fn trace(&self) -> &[TraceEvent] {
        &self.recorder.trace
    }
    /// Instructions of the most recent execution of `canister` (any entry point).
    pub fn last_instructions(&self, canister: Principal) -> u64 {
        self.canisters
            .get(&canister)
            .map_or(0, |c| c.last_instructions)
    }
    /// Debug prints of `canister`, oldest first.
    pub fn logs(&self, canister: Principal) -> Vec<String> {
        self.canisters
            .get(&canister)
            .map_or_else(Vec::new, |c| c.logs.clone())
    }
}
