//! Execution of one message on one canister: the seam between the replica model (rounds, queues,
//! management canister, in `crate::replica`) and wasmtime.
//!
//! Everything here is about a single canister: compiling and validating a module, running one entry
//! point with the System API (`ic0`) under the rules of its execution mode, counting instructions,
//! and rolling back heap, globals and stable memory when an execution traps. It knows nothing about
//! other canisters, rounds or time beyond what `ExecEnv` hands in.
//!
//! Spec: IC interface specification, "Canister interface (System API)": module requirements,
//! entry points, the import table with its per-mode availability, and trap semantics.
//!
//! Parts: [`module`] compiles and validates (and caches per process), [`imports`] is the `ic0`
//! table with signatures and modes, [`system_api`] the host functions, [`pages`] paged memory (how
//! heaps, stable memories and snapshots are held: 4 KiB pages, shared), [`stable`] stable memory
//! with its undo journal, [`written`] the heap pages an execution wrote, [`instance`] running entry
//! points (a wasmtime instance per execution, a few cached), rollback, install, upgrade and
//! snapshots.
//!
//! Instruction cost model: Wasm code is metered with wasmtime fuel, one instruction per executed
//! Wasm operator as wasmtime counts them (deterministic). Every `ic0` call costs
//! [`SYSTEM_API_CALL_INSTRUCTIONS`] plus one instruction per byte it moves between the heap and the
//! system (arguments read, blobs copied out, stable memory read or written). An execution that
//! reaches `ExecEnv::instruction_limit` traps with "Canister exceeded the limit of N instructions
//! for single message execution."; install counts `(start)` + `canister_init` against the limit,
//! upgrade `canister_pre_upgrade` + `(start)` + `canister_post_upgrade`. A cleanup closure gets a
//! budget of its own.
//!
//! Cycles as an execution sees them: the balance starts at `ExecEnv::cycle_balance`, rises with
//! accepted cycles and falls with burned cycles, cycles attached to calls, and [`cost_call`] of
//! every call that `call_perform` accepted (the base fee plus the response reservation
//! [`MAX_CYCLES_PER_RESPONSE`]). The replica applies the same: it withdraws
//! `cost_call(method.len(), payload.len()) + cycles` for every call in `ExecOutcome::calls`,
//! burns the base fee, and settles the reservation when the response arrives.

mod imports;
mod instance;
mod module;
mod module_disk_cache;
mod pages;
mod stable;
mod system_api;
mod written;

pub use pages::{PagedMemory, PAGE_SIZE};
pub use system_api::{
    call_base_fee, cost_call, cost_http_request, cost_threshold_key, response_transmission_fee,
    CREATE_CANISTER_FEE, MAX_CYCLES_PER_RESPONSE, SYSTEM_API_CALL_INSTRUCTIONS,
};

use crate::types::{limits, Principal, RejectCode};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A validated, compiled module. Cheap to clone; compiled once per distinct module hash.
#[derive(Clone)]
pub struct CompiledModule {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    module_hash: [u8; 32],
    wasm_binary_size: usize,
    /// The bytes as given (a snapshot's `wasm_module`).
    wasm_binary: Vec<u8>,
    instance_pre: wasmtime::InstancePre<system_api::HostState>,
    facts: module::ModuleFacts,
}

impl CompiledModule {
    /// Validates and compiles `wasm` (raw `\0asm` or gzip). Errors carry the IC's message, e.g. an
    /// import outside `ic0`'s list, an invalid `canister_` export, more than one memory.
    ///
    /// Compiled once per process per distinct bytes: later calls with the same bytes return the
    /// cached module (or the cached error).
    pub fn compile(wasm: &[u8]) -> Result<CompiledModule, String> {
        module::compile_cached(wasm)
    }
    /// SHA-256 of the bytes as given to `compile` (the IC's `module_hash`).
    pub fn module_hash(&self) -> [u8; 32] {
        self.inner.module_hash
    }
    /// Size of the bytes as given to `compile`.
    pub fn wasm_binary_size(&self) -> usize {
        self.inner.wasm_binary_size
    }
    /// The bytes as given to `compile`.
    pub fn wasm_binary(&self) -> &[u8] {
        &self.inner.wasm_binary
    }
    /// The types of the module's mutable globals, in index order (the globals of a snapshot).
    pub fn mutable_global_types(&self) -> &[GlobalType] {
        &self.inner.facts.mutable_global_types
    }
    pub fn has_update(&self, name: &str) -> bool {
        self.inner.facts.updates.contains(name)
    }
    pub fn has_query(&self, name: &str) -> bool {
        self.inner.facts.queries.contains(name)
    }
    pub fn has_composite_query(&self, name: &str) -> bool {
        self.inner.facts.composite_queries.contains(name)
    }
    pub fn exports_entry(&self, entry: SystemEntry) -> bool {
        self.inner.facts.entries.contains(&entry)
    }
    /// `icp:public <name>` and `icp:private <name>` custom sections: name -> (is_public, bytes).
    pub fn metadata(&self) -> &BTreeMap<String, (bool, Vec<u8>)> {
        &self.inner.facts.metadata
    }
}

/// The value type of a mutable global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalType {
    I32,
    I64,
    F32,
    F64,
}

/// System entry points other than methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemEntry {
    Init,
    PreUpgrade,
    PostUpgrade,
    InspectMessage,
    Heartbeat,
    GlobalTimer,
    OnLowWasmMemory,
}

/// What to run. Each kind fixes the execution mode and so which `ic0` functions may be called
/// (calling one outside its modes traps, as on the IC).
#[derive(Clone, Debug)]
pub enum ExecKind {
    Update {
        method: String,
    },
    /// Replicated or not, a query's state changes are always discarded.
    Query {
        method: String,
        replicated: bool,
    },
    CompositeQuery {
        method: String,
    },
    InspectMessage {
        method: String,
    },
    /// A response to an outgoing call: runs the reply or reject closure; if that traps, runs the
    /// cleanup closure (whose changes persist) and reports the original trap.
    Response {
        callback: Callback,
        response: CallResponse,
        /// Set by fault injection: the closure traps with this message before running any of
        /// its code, and the cleanup closure runs as after any trap.
        injected_trap: Option<String>,
    },
    /// A response to a call a composite query made: as `Response`, in the composite callback
    /// modes (`CRy`, `CRt`, `CC`: non-replicated, no cycles, no certified data or timer).
    CompositeResponse {
        callback: Callback,
        response: CallResponse,
    },
    GlobalTimer,
    Heartbeat,
}

/// The closures an outgoing call registered with `call_new` / `call_on_cleanup`. Table indices are
/// not checked until a closure actually runs (ic-cdk's one-way calls pass `usize::MAX`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    pub reply_fun: u64,
    pub reply_env: u64,
    pub reject_fun: u64,
    pub reject_env: u64,
    pub cleanup: Option<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResponse {
    Reply(Vec<u8>),
    Reject { code: RejectCode, message: String },
}

/// What the replica hands to one execution. All of it is read-only for the execution; changes come
/// back in `ExecOutcome`.
#[derive(Clone, Debug)]
pub struct ExecEnv {
    pub canister_id: Principal,
    pub subnet_id: Principal,
    /// `msg_caller`: the sender of the message, the installer during install/upgrade, the management
    /// canister during system tasks.
    pub caller: Principal,
    pub arg: Vec<u8>,
    pub time_nanos: u64,
    pub canister_version: u64,
    /// 1 running, 2 stopping, 3 stopped (`ic0.canister_status`).
    pub status: u32,
    pub controllers: Vec<Principal>,
    pub cycle_balance: u128,
    /// Cycles below which the canister would freeze; `call_perform` returns 2 and
    /// `call_cycles_add128` traps rather than going below it.
    pub freezing_limit: u128,
    /// Cycles attached to the message (`msg_cycles_available128`).
    pub cycles_available: u128,
    /// Cycles refunded with a response (`msg_cycles_refunded128`).
    pub cycles_refunded: u128,
    /// True when the call context was already answered (`msg_reply`/`msg_reject` then trap).
    pub already_replied: bool,
    /// `msg_deadline`: 0 for ingress, unbounded-wait calls and queries.
    pub deadline_nanos: u64,
    /// Current value of the global timer (0 = inactive).
    pub global_timer: u64,
    pub certified_data: Vec<u8>,
    /// Present only for non-replicated queries (`data_certificate_*`).
    pub data_certificate: Option<Vec<u8>>,
    pub root_key: Vec<u8>,
    pub env_vars: Vec<(String, String)>,
    pub instruction_limit: u64,
    /// Instructions already used by earlier executions of this call context
    /// (`performance_counter(1)` adds them).
    pub call_context_instructions: u64,
    /// Free slots in this canister's output queue to each callee; an absent callee has
    /// `default_free_slots`. `call_perform` returns 2 when a callee's slots are used up.
    pub free_slots: BTreeMap<Principal, usize>,
    pub default_free_slots: usize,
    /// Largest request payload `call_perform` accepts per callee subnet rule; the replica decides
    /// (2 MiB cross-subnet, 10 MiB same subnet) and passes the larger bound plus a set of
    /// same-subnet callees (shared: the replica hands every execution on a subnet the same set).
    pub same_subnet: Arc<BTreeSet<Principal>>,
    /// `wasm_memory_limit` setting (0 = none): growing the heap past it fails for updates, init and
    /// post_upgrade, as the spec says.
    pub wasm_memory_limit: u64,
}

impl ExecEnv {
    /// An environment for tests and a starting point for the replica: a running canister with 100T
    /// cycles, the update instruction limit, full output queues available, time 2026-01-01.
    pub fn new(canister_id: Principal, subnet_id: Principal, caller: Principal) -> ExecEnv {
        ExecEnv {
            canister_id,
            subnet_id,
            caller,
            arg: Vec::new(),
            time_nanos: 1_767_225_600_000_000_000,
            canister_version: 0,
            status: 1,
            controllers: vec![caller],
            cycle_balance: 100_000_000_000_000,
            freezing_limit: 0,
            cycles_available: 0,
            cycles_refunded: 0,
            already_replied: false,
            deadline_nanos: 0,
            global_timer: 0,
            certified_data: Vec::new(),
            data_certificate: None,
            root_key: Vec::new(),
            env_vars: Vec::new(),
            instruction_limit: limits::MAX_INSTRUCTIONS_PER_UPDATE,
            call_context_instructions: 0,
            free_slots: BTreeMap::new(),
            default_free_slots: limits::QUEUE_CAPACITY,
            same_subnet: Arc::default(),
            wasm_memory_limit: 0,
        }
    }
}

/// `ExecEnv::new` for canister `rwlgt-iiaaa-aaaaa-aaaaa-cai` called by the anonymous principal.
impl Default for ExecEnv {
    fn default() -> Self {
        ExecEnv::new(
            Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
            Principal::from_slice(&[0x5a; 29]),
            Principal::anonymous(),
        )
    }
}

/// A call made with `call_perform` that returned 0. Only reported when the execution did not trap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingCall {
    pub callee: Principal,
    pub method: String,
    pub payload: Vec<u8>,
    pub cycles: u128,
    pub callback: Callback,
    /// `Some(seconds)` (already capped at 300) for bounded-wait calls.
    pub timeout_seconds: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecResponse {
    Reply(Vec<u8>),
    /// Always `CANISTER_REJECT` for the caller.
    Reject(String),
}

#[derive(Clone, Debug, Default)]
pub struct ExecOutcome {
    /// `Err(message)` when the execution trapped (including running out of instructions or
    /// memory); all other fields then describe a rolled-back execution: no response, no calls,
    /// no state changes, only `instructions` and `debug_prints` are meaningful.
    pub trap: Option<String>,
    pub response: Option<ExecResponse>,
    pub calls: Vec<OutgoingCall>,
    /// Cycles accepted from `cycles_available`.
    pub cycles_accepted: u128,
    /// Cycles burned with `cycles_burn128`.
    pub cycles_burned: u128,
    /// `Some(t)` when `global_timer_set` was called (last value wins; 0 deactivates).
    pub global_timer: Option<u64>,
    pub certified_data: Option<Vec<u8>>,
    pub instructions: u64,
    pub debug_prints: Vec<String>,
    /// `accept_message` was called (inspect_message only).
    pub message_accepted: bool,
    /// For a `Response` whose closure trapped: the cleanup closure ran (and its trap, if any).
    pub cleanup: Option<Option<String>>,
}

/// An installed canister's execution state: its module, heap, mutable globals and stable memory,
/// as of its last kept execution. Between executions this is data only (paged memories); a
/// wasmtime instance exists while it runs, and stays cached for the canisters that ran last.
pub struct CanisterInstance {
    module: CompiledModule,
    heap: PagedMemory,
    globals: Vec<u64>,
    stable: stable::StableMemory,
    /// The key of its cached wasmtime instance, if that is still cached.
    live_key: u64,
}

/// Options of an upgrade (`canister_install_mode`'s `upgrade` record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpgradeOptions {
    pub skip_pre_upgrade: bool,
    pub keep_wasm_memory: bool,
}

impl CanisterInstance {
    /// Instantiates `module` with empty stable memory, runs `(start)` and `canister_init(arg)`.
    /// On a trap nothing exists: the error carries the trap message and the instructions used.
    // The outcome is large either way; boxing it would only change the seam.
    #[allow(clippy::result_large_err)]
    pub fn install(
        module: &CompiledModule,
        env: &ExecEnv,
    ) -> Result<(CanisterInstance, ExecOutcome), ExecOutcome> {
        match Self::install_impl(module, env) {
            (Some(instance), outcome) => Ok((instance, outcome)),
            (None, outcome) => Err(outcome),
        }
    }

    /// Upgrade, atomically: `canister_pre_upgrade` (unless skipped) on this instance, then a fresh
    /// instance of `module` with the same stable memory, `(start)`, `canister_post_upgrade(arg)`.
    /// When anything traps `self` is left exactly as it was. `env.instruction_limit` bounds the sum.
    ///
    /// A global timer set by `canister_pre_upgrade` is not reported (the upgrade deactivates the
    /// timer); one set by `canister_post_upgrade` is. `canister_post_upgrade` sees the timer as
    /// inactive.
    pub fn upgrade(
        &mut self,
        module: &CompiledModule,
        env: &ExecEnv,
        options: UpgradeOptions,
    ) -> ExecOutcome {
        self.upgrade_impl(module, env, options)
    }

    /// Runs one message. A trap rolls back heap, globals and stable memory; a query's changes are
    /// always rolled back.
    ///
    /// A method, `canister_global_timer` or `canister_heartbeat` that the module does not export:
    /// nothing runs; for a method the outcome traps with "Canister has no ... method". Without
    /// `canister_inspect_message` the message counts as accepted. For a `Response` whose closure
    /// trapped and whose cleanup ran (`cleanup == Some(_)`), `cycles_burned`, `global_timer` and
    /// `certified_data` are the cleanup's effects, which persist.
    pub fn execute(&mut self, kind: &ExecKind, env: &ExecEnv) -> ExecOutcome {
        self.execute_impl(kind, env)
    }

    pub fn module(&self) -> &CompiledModule {
        &self.module
    }
    /// Wasm memory (heap) size in bytes.
    pub fn wasm_memory_size(&self) -> u64 {
        self.wasm_memory_size_impl()
    }
    /// Stable memory size in bytes.
    pub fn stable_memory_size(&self) -> u64 {
        self.stable_memory_size_impl()
    }
    /// The canister's memory state, for snapshots: its pages shared, not copied.
    pub fn snapshot(&self) -> InstanceSnapshot {
        self.snapshot_impl()
    }
    /// Rebuilds an instance from a snapshot (loading a canister snapshot). `(start)` does not run.
    pub fn from_snapshot(snapshot: &InstanceSnapshot) -> Result<CanisterInstance, String> {
        Self::from_snapshot_impl(snapshot)
    }
    /// Its heap and stable memory (the pages the simulator holds for it).
    pub fn memories(&self) -> [&PagedMemory; 2] {
        self.memories_impl()
    }
}

/// Heap, globals and stable memory of an instance, plus its module. Cloning shares the pages.
#[derive(Clone)]
pub struct InstanceSnapshot {
    pub module: CompiledModule,
    pub wasm_memory: PagedMemory,
    pub globals: Vec<u64>,
    pub stable_memory: PagedMemory,
}

impl InstanceSnapshot {
    pub fn total_size(&self) -> u64 {
        self.wasm_memory.len() + self.stable_memory.len() + self.module.wasm_binary_size() as u64
    }
}
