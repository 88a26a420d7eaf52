//! The replica model: subnets, rounds, time, queues, the management canister, the trace.
//!
//! Public API (the contract other crates code against; the implementation fills in the bodies):

use crate::types::{CanisterRunStatus, Principal, Reject};
use serde::{Deserialize, Serialize};

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
    Ingress { id: MessageId, sender: Principal, canister: Principal, method: String, bytes: usize },
    IngressDone { id: MessageId, ok: bool },
    Request { from: Principal, to: Principal, method: String, bytes: usize },
    Response { from: Principal, to: Principal, ok: bool, bytes: usize },
    /// A management canister method executed for `caller` on `target` (`None` for create/raw_rand).
    Management { caller: Principal, method: String, target: Option<Principal>, ok: bool },
    Execution { canister: Principal, entry: String, instructions: u64, trapped: bool },
    Timer { canister: Principal },
    DebugPrint { canister: Principal, text: String },
}

/// The simulated IC. Deterministic: every map is ordered, every random choice comes from `seed`.
pub struct Sim {
    // Filled in by the implementation.
}

/// Mode for [`Sim::install_code`] (the management canister's `canister_install_mode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade { skip_pre_upgrade: bool, keep_wasm_memory: bool },
}

impl Sim {
    pub fn new(config: SimConfig) -> Sim {
        let _ = config;
        todo!()
    }
    pub fn config(&self) -> &SimConfig {
        todo!()
    }
    /// Principal of subnet `index` (0-based).
    pub fn subnet_id(&self, index: usize) -> Principal {
        let _ = index;
        todo!()
    }
    /// Which subnet hosts `canister` (None for unknown ids).
    pub fn subnet_of(&self, canister: Principal) -> Option<usize> {
        let _ = canister;
        todo!()
    }

    // ---- Test-side conveniences that stand for provisional/ingress management calls. ----

    /// Creates an empty canister on `subnet` with `controllers` and the default cycles
    /// (`provisional_create_canister_with_cycles`).
    pub fn create_canister(&mut self, subnet: usize, controllers: Vec<Principal>) -> Principal {
        let _ = (subnet, controllers);
        todo!()
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
        let _ = (sender, canister, wasm, arg, mode);
        todo!()
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
        let _ = (sender, canister, method, arg);
        todo!()
    }
    pub fn ingress_status(&self, id: MessageId) -> IngressStatus {
        let _ = id;
        todo!()
    }
    /// Ticks until the message completes (at most `max_rounds`, else panics).
    pub fn await_ingress(&mut self, id: MessageId, max_rounds: u64) -> Result<Vec<u8>, Reject> {
        let _ = (id, max_rounds);
        todo!()
    }
    /// `submit_update` + `await_ingress` with a generous round bound.
    pub fn update_call(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        let _ = (sender, canister, method, arg);
        todo!()
    }
    /// A non-replicated query: executes at once, its state changes are discarded.
    pub fn query_call(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        let _ = (sender, canister, method, arg);
        todo!()
    }

    // ---- Time and rounds. ----

    /// Executes one round on every subnet: delivers due messages, runs due timers, advances time.
    pub fn tick(&mut self) {
        todo!()
    }
    /// Moves the clock forward without executing anything (timers fire on the next tick).
    pub fn advance_time(&mut self, nanos: u64) {
        let _ = nanos;
        todo!()
    }
    /// Ticks until no message is queued or in flight and no timer is due within the next round;
    /// returns the rounds used. Panics after `max_rounds`.
    pub fn run_until_idle(&mut self, max_rounds: u64) -> u64 {
        let _ = max_rounds;
        todo!()
    }
    pub fn time_nanos(&self) -> u64 {
        todo!()
    }
    pub fn round(&self) -> u64 {
        todo!()
    }

    // ---- Observation. ----

    pub fn canister(&self, canister: Principal) -> Option<CanisterView> {
        let _ = canister;
        todo!()
    }
    pub fn stats(&self) -> Stats {
        todo!()
    }
    pub fn trace(&self) -> &[TraceEvent] {
        todo!()
    }
    /// Instructions of the most recent execution of `canister` (any entry point).
    pub fn last_instructions(&self, canister: Principal) -> u64 {
        let _ = canister;
        todo!()
    }
    /// Debug prints of `canister`, oldest first.
    pub fn logs(&self, canister: Principal) -> Vec<String> {
        let _ = canister;
        todo!()
    }
}
