//! A canister's instance: running entry points, rolling back on traps, install, upgrade and
//! snapshots.
//!
//! Spec: IC interface specification, "Canister interface (System API)", "Entry points" (trap
//! semantics, upgrades as one transaction, callbacks and cleanup) and "Canister upgrades".
//!
//! State: between executions a canister is data only: its heap and stable memory as
//! [`PagedMemory`] (4 KiB pages, zero pages not stored, pages shared copy-on-write with its
//! snapshots) and its mutable globals. An execution runs on a wasmtime instance of the shared
//! compiled module with that state loaded, as the IC instantiates a canister for each message;
//! afterwards the heap pages that changed are written back. The instances of the few canisters
//! that ran most recently stay instantiated in a small per-thread cache ([`LIVE_CACHE_CAPACITY`]),
//! in step with their canister's state, so that a busy canister does not pay for instantiation
//! and loading on each message; an idle canister holds no wasmtime instance.
//!
//! Rollback: stable memory opens an undo journal before an execution whose changes may have to be
//! undone, so a message costs only the stable pages it wrote. The heap needs no checkpoint: its
//! committed pages are the canister's state, and on a trap (or after any query) the instance is
//! put back in step with them (or dropped when its heap grew, which Wasm cannot undo).

use super::imports::Mode;
use super::module::{engine, global_export, MEMORY_EXPORT, START_EXPORT, TABLE_EXPORT};
use super::pages::{PagedMemory, PAGE_SIZE};
use super::stable::StableMemory;
use super::system_api::{instruction_limit_message, ExecState, HostState, HostTrap};
use super::written::WriteWatch;
use super::{
    CallResponse, Callback, CanisterInstance, CompiledModule, ExecEnv, ExecKind, ExecOutcome,
    InstanceSnapshot, SystemEntry, UpgradeOptions,
};
use crate::types::limits::WASM_PAGE_SIZE;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::{ExternType, Global, Instance, Ref, Store, Table, Trap, Val, ValType};

/// The wasmtime side of an instance.
pub(super) struct Live {
    store: Store<HostState>,
    instance: Instance,
    table: Option<Table>,
    /// Every mutable global (exported by the rewrite), in index order.
    globals: Vec<Global>,
    /// A wasm64 module: closures take an `i64` environment.
    wasm64: bool,
    /// The pages of the heap written since the instance was last in step with its canister.
    watch: Option<WriteWatch>,
}

/// Heaps from this size on have their written pages watched (`written`) rather than compared
/// page by page after each execution. Debug builds watch every heap, and check the watch against a
/// full comparison.
const WATCHED_HEAP_BYTES: usize = if cfg!(debug_assertions) { 1 } else { 1 << 20 };

/// What to call.
enum Entry<'a> {
    Export(&'a str),
    /// A closure registered with `call_new`/`call_on_cleanup`: table index and its argument.
    Closure {
        fun: u64,
        env: u64,
    },
}

/// The result of running one entry point.
struct Run {
    trap: Option<String>,
    instructions: u64,
    state: ExecState,
}

/// Instances kept instantiated per thread: the canisters that ran most recently.
pub(super) const LIVE_CACHE_CAPACITY: usize = 8;

thread_local! {
    /// Instances in step with the state of the canister instance whose key they carry, most
    /// recently used last.
    static LIVE_CACHE: RefCell<VecDeque<(u64, Live)>> = const { RefCell::new(VecDeque::new()) };
}

/// Keys of cache entries: a canister instance takes a fresh one each time it puts an instance
/// in the cache, so an entry left behind on another thread never matches again.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// Takes the cached instance for `key`, if there is one.
fn take_cached(key: u64) -> Option<Live> {
    LIVE_CACHE
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            let position = cache.iter().position(|(k, _)| *k == key)?;
            cache.remove(position).map(|(_, live)| live)
        })
        .ok()
        .flatten()
}

/// Caches `live` under a fresh key and returns the key; the least recently used entry goes.
fn cache(live: Live) -> u64 {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let evicted = LIVE_CACHE.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.push_back((key, live));
        if cache.len() > LIVE_CACHE_CAPACITY {
            cache.pop_front()
        } else {
            None
        }
    });
    // Dropped outside the borrow.
    drop(evicted);
    key
}

/// Drops the cached instance for `key`, if there is one.
fn uncache(key: u64) {
    drop(take_cached(key));
}

fn global_to_bits(value: Val) -> u64 {
    match value {
        Val::I32(v) => v as u32 as u64,
        Val::I64(v) => v as u64,
        Val::F32(bits) => bits as u64,
        Val::F64(bits) => bits,
        // Validation refuses modules with mutable globals of other types.
        other => unreachable!("mutable global of unsupported type {other:?}"),
    }
}

fn global_from_bits(ty: &ValType, bits: u64) -> Val {
    match ty {
        ValType::I32 => Val::I32(bits as u32 as i32),
        ValType::I64 => Val::I64(bits as i64),
        ValType::F32 => Val::F32(bits as u32),
        ValType::F64 => Val::F64(bits),
        other => unreachable!("mutable global of unsupported type {other}"),
    }
}

/// The IC's message for a trap that wasmtime reports.
fn trap_message(error: wasmtime::Error, instruction_limit: u64) -> String {
    if let Some(HostTrap(message)) = error.downcast_ref::<HostTrap>() {
        return message.clone();
    }
    let Some(trap) = error.downcast_ref::<Trap>() else {
        return format!("Canister trapped: {error:#}");
    };
    let code = match trap {
        Trap::OutOfFuel => return instruction_limit_message(instruction_limit),
        Trap::UnreachableCodeReached => "unreachable",
        Trap::MemoryOutOfBounds => "heap out of bounds",
        Trap::StackOverflow => "stack overflow",
        Trap::IntegerDivisionByZero => "integer division by 0",
        Trap::IntegerOverflow => "integer overflow",
        Trap::TableOutOfBounds => "table out of bounds",
        Trap::IndirectCallToNull => "uninitialized element",
        Trap::BadSignature => "indirect call type mismatch",
        Trap::BadConversionToInteger => "invalid conversion to integer",
        other => return format!("Canister trapped: {other}"),
    };
    format!("Canister trapped: {code}")
}

impl Live {
    /// A fresh instance of `module` around `state` (which keeps the stable memory). The start
    /// function is not run. On failure the state is handed back.
    fn instantiate(
        module: &CompiledModule,
        state: HostState,
    ) -> Result<Live, (String, Box<HostState>)> {
        let mut store = Store::new(engine(), state);
        // Initializing the memory from the module's data segments may take fuel; nothing of it
        // is counted (each entry point starts from its own budget).
        store.set_fuel(u64::MAX).expect("fuel is enabled");
        store.data_mut().max_heap = if module.inner.facts.wasm64 {
            crate::types::limits::MAX_WASM64_HEAP_BYTES
        } else {
            crate::types::limits::MAX_WASM32_HEAP_BYTES
        };
        store.limiter(|state| state as &mut dyn wasmtime::ResourceLimiter);
        let instance = match module.inner.instance_pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(error) => {
                return Err((
                    format!("Canister trapped during instantiation: {error:#}"),
                    Box::new(store.into_data()),
                ))
            }
        };
        let memory = instance.get_memory(&mut store, MEMORY_EXPORT);
        store.data_mut().memory = memory;
        let table = instance.get_table(&mut store, TABLE_EXPORT);
        let globals = module
            .inner
            .facts
            .mutable_globals
            .iter()
            .map(|&index| {
                instance
                    .get_global(&mut store, &global_export(index))
                    .expect("the rewrite exports every mutable global")
            })
            .collect();
        Ok(Live {
            store,
            instance,
            table,
            globals,
            wasm64: module.inner.facts.wasm64,
            watch: None,
        })
    }

    /// The heap's address and length.
    fn heap_range(&self) -> (usize, usize) {
        let heap = self.heap();
        (heap.as_ptr() as usize, heap.len())
    }

    /// Starts watching the heap's writes, if it is large enough and not watched yet. The
    /// instance must be in step with its canister.
    fn watch_heap(&mut self) {
        let (start, len) = self.heap_range();
        if self.watch.is_none() && len >= WATCHED_HEAP_BYTES {
            self.watch = WriteWatch::new(start as *const u8, len);
        }
    }

    /// The heap pages written since the watch last looked (pages the heap grew by count as
    /// written), or `None` when that is not known (no watch, or it failed): then any page may
    /// have been written.
    fn written_pages(&mut self) -> Option<Vec<u64>> {
        let (start, len) = self.heap_range();
        let watch = self.watch.as_mut()?;
        let written = if watch.start() == start && watch.len() <= len {
            watch.take_written()
        } else {
            None
        };
        let Some(mut written) = written else {
            self.watch = None;
            return None;
        };
        if len > watch.len() {
            let page = PAGE_SIZE as u64;
            written.extend(watch.len() as u64 / page..len as u64 / page);
            if watch.extend(len).is_none() {
                self.watch = None;
            }
        }
        Some(written)
    }

    fn heap(&self) -> &[u8] {
        match self.store.data().memory {
            Some(memory) => memory.data(&self.store),
            None => &[],
        }
    }

    fn global_values(&mut self) -> Vec<u64> {
        let globals = self.globals.clone();
        globals
            .iter()
            .map(|g| global_to_bits(g.get(&mut self.store)))
            .collect()
    }

    fn set_globals(&mut self, values: &[u64]) {
        for (global, &bits) in self.globals.clone().iter().zip(values) {
            let ty = global.ty(&self.store).content().clone();
            global
                .set(&mut self.store, global_from_bits(&ty, bits))
                .expect("a mutable global of the recorded type");
        }
    }

    /// Grows the memory to at least `len` bytes and returns it (`None`: the module has none and
    /// `len` is 0).
    fn grow_to(&mut self, len: usize) -> Result<Option<wasmtime::Memory>, String> {
        let Some(memory) = self.store.data().memory else {
            return if len == 0 {
                Ok(None)
            } else {
                Err("the module has no memory to load a heap into".into())
            };
        };
        let current = memory.data_size(&self.store);
        if len > current {
            let pages = (len - current).div_ceil(WASM_PAGE_SIZE as usize) as u64;
            memory
                .grow(&mut self.store, pages)
                .map_err(|e| format!("cannot grow the Wasm memory to {len} bytes: {e:#}"))?;
        }
        Ok(Some(memory))
    }

    /// Grows the memory to hold `heap` and copies it in.
    fn load_bytes(&mut self, heap: &[u8]) -> Result<(), String> {
        if let Some(memory) = self.grow_to(heap.len())? {
            memory.data_mut(&mut self.store)[..heap.len()].copy_from_slice(heap);
        }
        Ok(())
    }

    /// Grows the memory to hold `heap` and makes its start equal to it.
    fn load_pages(&mut self, heap: &PagedMemory) -> Result<(), String> {
        let len = heap.len() as usize;
        if let Some(memory) = self.grow_to(len)? {
            heap.copy_into(&mut memory.data_mut(&mut self.store)[..len]);
        }
        Ok(())
    }

    /// Calls table entry `index` with `env`: `(env : I) -> ()`, `I` being `i64` in a wasm64
    /// module.
    fn call_closure(
        &mut self,
        index: u64,
        env: u64,
    ) -> Result<Result<(), wasmtime::Error>, String> {
        let function = match self
            .table
            .and_then(|table| table.get(&mut self.store, index))
        {
            None => return Err("Canister trapped: table out of bounds".into()),
            Some(Ref::Func(Some(function))) => function,
            Some(_) => return Err("Canister trapped: uninitialized element".into()),
        };
        let mismatch = |_| "Canister trapped: indirect call type mismatch".to_string();
        if self.wasm64 {
            let function = function.typed::<i64, ()>(&self.store).map_err(mismatch)?;
            Ok(function.call(&mut self.store, env as i64))
        } else {
            let function = function.typed::<i32, ()>(&self.store).map_err(mismatch)?;
            Ok(function.call(&mut self.store, env as u32 as i32))
        }
    }

    /// Runs one entry point with at most `budget` instructions on `stable`.
    fn run(
        &mut self,
        entry: Entry<'_>,
        mut state: ExecState,
        budget: u64,
        stable: &mut StableMemory,
    ) -> Run {
        state.fuel_at_start = budget;
        let limit = state.instruction_limit;
        let heap_limited = matches!(state.mode, Mode::Start | Mode::Init | Mode::Update);
        let heap_limit = (heap_limited && state.env.wasm_memory_limit > 0)
            .then_some(state.env.wasm_memory_limit);
        let host = self.store.data_mut();
        host.exec = Some(state);
        host.heap_limit = heap_limit;
        std::mem::swap(&mut host.stable, stable);
        self.store.set_fuel(budget).expect("fuel is enabled");
        let result = match entry {
            Entry::Export(name) => match self
                .instance
                .get_typed_func::<(), ()>(&mut self.store, name)
            {
                Ok(function) => function
                    .call(&mut self.store, ())
                    .map_err(|e| trap_message(e, limit)),
                Err(_) => Err(format!("Canister has no entry point '{name}'")),
            },
            Entry::Closure { fun, env } => self
                .call_closure(fun, env)
                .and_then(|result| result.map_err(|e| trap_message(e, limit))),
        };
        let instructions = budget - self.store.get_fuel().expect("fuel is enabled");
        let host = self.store.data_mut();
        host.heap_limit = None;
        std::mem::swap(&mut host.stable, stable);
        Run {
            trap: result.err(),
            instructions,
            state: host.exec.take().expect("the state set above"),
        }
    }
}

/// Combines the entry points of one install, upgrade or response execution into an outcome.
struct Steps {
    outcome: ExecOutcome,
    limit: u64,
}

impl Steps {
    fn new(limit: u64) -> Steps {
        Steps {
            outcome: ExecOutcome::default(),
            limit,
        }
    }

    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.outcome.instructions)
    }

    /// A state for the next step, seeing the balance the earlier steps left.
    fn state(&self, mode: Mode, env: &ExecEnv) -> ExecState {
        let mut state = ExecState::new(mode, env);
        state.balance = state.balance.saturating_sub(self.outcome.cycles_burned);
        state
    }

    /// Adds a step; returns false (and records the trap) when it trapped.
    fn absorb(&mut self, run: Run) -> bool {
        let state = run.state;
        self.outcome.instructions += run.instructions;
        self.outcome.debug_prints.extend(state.debug_prints);
        if let Some(trap) = run.trap {
            self.outcome.trap = Some(trap);
            return false;
        }
        self.outcome.cycles_accepted += state.cycles_accepted;
        self.outcome.cycles_burned += state.cycles_burned;
        if state.global_timer_set {
            self.outcome.global_timer = Some(state.global_timer);
        }
        if state.certified_data.is_some() {
            self.outcome.certified_data = state.certified_data;
        }
        self.outcome.message_accepted |= state.message_accepted;
        if state.response.is_some() {
            self.outcome.response = state.response;
        }
        self.outcome.calls.extend(state.calls);
        true
    }

    /// The outcome of a failed sequence: no effects, only instructions and debug prints.
    fn failed(self) -> ExecOutcome {
        ExecOutcome {
            trap: self.outcome.trap,
            instructions: self.outcome.instructions,
            debug_prints: self.outcome.debug_prints,
            ..ExecOutcome::default()
        }
    }
}

/// Runs `(start)` (if any) and then `entry` (if exported) on a fresh instance, as install and
/// upgrade do. The global timer reads as inactive: install_code deactivates it.
fn initialize(
    live: &mut Live,
    module: &CompiledModule,
    stable: &mut StableMemory,
    entry: &str,
    env: &ExecEnv,
    steps: &mut Steps,
) -> bool {
    let mut env = env.clone();
    env.global_timer = 0;
    if module.inner.facts.has_start {
        let run = live.run(
            Entry::Export(START_EXPORT),
            steps.state(Mode::Start, &env),
            steps.remaining(),
            stable,
        );
        if !steps.absorb(run) {
            return false;
        }
    }
    if module.exports_function(entry) {
        let run = live.run(
            Entry::Export(entry),
            steps.state(Mode::Init, &env),
            steps.remaining(),
            stable,
        );
        return steps.absorb(run);
    }
    true
}

impl CompiledModule {
    /// The module exports a function named `name`.
    fn exports_function(&self, name: &str) -> bool {
        matches!(
            self.inner.instance_pre.module().get_export(name),
            Some(ExternType::Func(_))
        )
    }
}

impl Drop for CanisterInstance {
    fn drop(&mut self) {
        uncache(self.live_key);
    }
}

impl CanisterInstance {
    /// A canister instance holding `live`'s heap and globals (and `stable`), with `live` cached.
    fn from_live(module: &CompiledModule, mut live: Live, stable: StableMemory) -> Self {
        let heap = PagedMemory::from_bytes(live.heap());
        let globals = live.global_values();
        live.watch_heap();
        CanisterInstance {
            module: module.clone(),
            heap,
            globals,
            stable,
            live_key: cache(live),
        }
    }

    /// An instance in step with this canister's state: the cached one, or a fresh instance of the
    /// module with the heap and globals loaded.
    fn take_live(&mut self) -> Live {
        if let Some(live) = take_cached(self.live_key) {
            return live;
        }
        let mut live = Live::instantiate(&self.module, HostState::default())
            .map_err(|(message, _)| message)
            .expect("a module that was instantiated before instantiates again");
        live.load_pages(&self.heap)
            .expect("a heap that fit before fits again");
        live.set_globals(&self.globals);
        live.watch_heap();
        live
    }

    /// Takes the changes of a kept execution from `live` (heap pages, globals) and caches it.
    fn commit_live(&mut self, mut live: Live) {
        match live.written_pages() {
            Some(written) => {
                self.heap.sync_pages(live.heap(), &written);
            }
            None => {
                self.heap.sync_from(live.heap());
            }
        }
        debug_assert!(
            self.heap.first_difference(live.heap()).is_none(),
            "the heap's pages are in step with the instance after an execution"
        );
        self.globals = live.global_values();
        live.watch_heap();
        self.live_key = cache(live);
    }

    /// Undoes the changes an execution made in `live` by putting it back in step with the
    /// canister's state and caches it; an instance whose heap grew is dropped instead.
    fn discard_live(&mut self, mut live: Live) {
        if live.heap().len() as u64 != self.heap.len() {
            return;
        }
        let written = live.written_pages();
        if let Some(memory) = live.store.data().memory {
            let heap = memory.data_mut(&mut live.store);
            match &written {
                Some(written) => self.heap.copy_pages_into(heap, written),
                None => self.heap.copy_into(heap),
            }
        }
        // The restored pages were written: protect them again.
        if written.is_some() && live.written_pages().is_none() {
            return;
        }
        debug_assert!(
            self.heap.first_difference(live.heap()).is_none(),
            "the instance is back in step with the heap's pages"
        );
        live.set_globals(&self.globals);
        live.watch_heap();
        self.live_key = cache(live);
    }

    /// The instance, if `(start)` and `canister_init` did not trap, and the outcome.
    pub(super) fn install_impl(
        module: &CompiledModule,
        env: &ExecEnv,
    ) -> (Option<CanisterInstance>, ExecOutcome) {
        let mut steps = Steps::new(env.instruction_limit);
        let mut live = match Live::instantiate(module, HostState::default()) {
            Ok(live) => live,
            Err((message, _)) => {
                steps.outcome.trap = Some(message);
                return (None, steps.failed());
            }
        };
        let mut stable = StableMemory::default();
        // Not for a rollback (a failed install leaves nothing): the pages written are interned
        // when it commits.
        stable.begin();
        if !initialize(
            &mut live,
            module,
            &mut stable,
            "canister_init",
            env,
            &mut steps,
        ) {
            return (None, steps.failed());
        }
        stable.commit();
        let instance = CanisterInstance::from_live(module, live, stable);
        (Some(instance), steps.outcome)
    }

    pub(super) fn upgrade_impl(
        &mut self,
        module: &CompiledModule,
        env: &ExecEnv,
        options: UpgradeOptions,
    ) -> ExecOutcome {
        let mut steps = Steps::new(env.instruction_limit);
        self.stable.begin();
        let runs_pre_upgrade =
            !options.skip_pre_upgrade && self.module.exports_entry(SystemEntry::PreUpgrade);
        // The old instance after `canister_pre_upgrade`, when that ran.
        let mut old = None;
        if runs_pre_upgrade {
            let mut live = self.take_live();
            // `env.canister_version` is the upgrade's new version, which `canister_post_upgrade`
            // sees; `canister_pre_upgrade` runs in the old one (spec, "Code upgrade": Env1).
            let pre_env = ExecEnv {
                canister_version: env.canister_version.saturating_sub(1),
                ..env.clone()
            };
            let run = live.run(
                Entry::Export("canister_pre_upgrade"),
                steps.state(Mode::PreUpgrade, &pre_env),
                steps.remaining(),
                &mut self.stable,
            );
            // The upgrade deactivates the global timer after pre_upgrade, so a value it sets is
            // not kept.
            let succeeded = steps.absorb(run);
            steps.outcome.global_timer = None;
            if !succeeded {
                self.stable.rollback();
                self.discard_live(live);
                return steps.failed();
            }
            old = Some(live);
        }

        let fail = |this: &mut Self, old: Option<Live>, steps: Steps| {
            this.stable.rollback();
            if let Some(live) = old {
                this.discard_live(live);
            }
            steps.failed()
        };
        let mut upgraded = match Live::instantiate(module, HostState::default()) {
            Ok(live) => live,
            Err((message, _)) => {
                steps.outcome.trap = Some(message);
                return fail(self, old, steps);
            }
        };
        let kept_heap = match (&old, options.keep_wasm_memory) {
            (_, false) => Ok(()),
            (Some(old), true) => upgraded.load_bytes(old.heap()),
            (None, true) => upgraded.load_pages(&self.heap),
        };
        let succeeded = match kept_heap {
            Ok(()) => initialize(
                &mut upgraded,
                module,
                &mut self.stable,
                "canister_post_upgrade",
                env,
                &mut steps,
            ),
            Err(message) => {
                steps.outcome.trap = Some(format!(
                    "Canister trapped: cannot keep the Wasm memory: {message}"
                ));
                false
            }
        };
        if !succeeded {
            return fail(self, old, steps);
        }
        self.stable.commit();
        drop(old);
        uncache(self.live_key);
        self.module = module.clone();
        // Pages the new heap has in common with the old one stay shared with its snapshots.
        self.commit_live(upgraded);
        steps.outcome
    }

    /// Runs one entry point as a transaction: kept only if it did not trap and `persist` is set.
    fn transaction(
        &mut self,
        entry: Entry<'_>,
        state: ExecState,
        persist: bool,
        steps: &mut Steps,
    ) -> bool {
        let mut live = self.take_live();
        self.stable.begin();
        let run = live.run(entry, state, steps.remaining(), &mut self.stable);
        let succeeded = steps.absorb(run);
        if succeeded && persist {
            self.stable.commit();
            self.commit_live(live);
        } else {
            self.stable.rollback();
            self.discard_live(live);
        }
        succeeded
    }

    pub(super) fn execute_impl(&mut self, kind: &ExecKind, env: &ExecEnv) -> ExecOutcome {
        let mut steps = Steps::new(env.instruction_limit);
        let (mode, export, persist) = match kind {
            ExecKind::Update { method } => {
                (Mode::Update, format!("canister_update {method}"), true)
            }
            ExecKind::Query { method, replicated } => {
                let mode = if *replicated {
                    Mode::ReplicatedQuery
                } else {
                    Mode::NonReplicatedQuery
                };
                (mode, format!("canister_query {method}"), false)
            }
            // Kept: the replica runs a composite query on a copy of the instance, whose callbacks
            // see the state it left; nothing reaches the canister itself.
            ExecKind::CompositeQuery { method } => (
                Mode::CompositeQuery,
                format!("canister_composite_query {method}"),
                true,
            ),
            ExecKind::InspectMessage { .. } => (
                Mode::InspectMessage,
                "canister_inspect_message".into(),
                false,
            ),
            ExecKind::GlobalTimer => (Mode::SystemTask, "canister_global_timer".into(), true),
            ExecKind::Heartbeat => (Mode::SystemTask, "canister_heartbeat".into(), true),
            ExecKind::Response {
                callback,
                response,
                injected_trap,
            } => return self.respond(callback, response, env, false, injected_trap.as_deref()),
            ExecKind::CompositeResponse { callback, response } => {
                return self.respond(callback, response, env, true, None)
            }
        };
        if !self.module.exports_function(&export) {
            match kind {
                // Without canister_inspect_message every message is accepted.
                ExecKind::InspectMessage { .. } => steps.outcome.message_accepted = true,
                ExecKind::GlobalTimer | ExecKind::Heartbeat => {}
                _ => {
                    let (kind, method) = export
                        .strip_prefix("canister_")
                        .and_then(|rest| rest.split_once(' '))
                        .expect("a method export is `canister_<kind> <name>`");
                    let kind = kind.replace('_', " ");
                    steps.outcome.trap = Some(format!("Canister has no {kind} method '{method}'"));
                }
            }
            return steps.outcome;
        }
        let mut state = ExecState::new(mode, env);
        if let ExecKind::InspectMessage { method } = kind {
            state.method_name = method.clone();
        }
        if self.transaction(Entry::Export(&export), state, persist, &mut steps) {
            steps.outcome
        } else {
            steps.failed()
        }
    }

    /// A response to an outgoing call: the reply or reject closure; if it traps (or
    /// `injected_trap` says it does, before running any code), the cleanup closure (whose changes
    /// persist), reporting the closure's trap.
    fn respond(
        &mut self,
        callback: &Callback,
        response: &CallResponse,
        env: &ExecEnv,
        composite: bool,
        injected_trap: Option<&str>,
    ) -> ExecOutcome {
        let mut steps = Steps::new(env.instruction_limit);
        let (reply_mode, reject_mode, cleanup_mode) = if composite {
            (
                Mode::CompositeReplyCallback,
                Mode::CompositeRejectCallback,
                Mode::CompositeCleanup,
            )
        } else {
            (Mode::ReplyCallback, Mode::RejectCallback, Mode::Cleanup)
        };
        let (mode, fun, closure_env, reject_code) = match response {
            CallResponse::Reply(_) => (reply_mode, callback.reply_fun, callback.reply_env, 0),
            CallResponse::Reject { code, .. } => (
                reject_mode,
                callback.reject_fun,
                callback.reject_env,
                *code as u32,
            ),
        };
        let with_response = |mut state: ExecState| {
            state.reject_code = reject_code;
            match response {
                CallResponse::Reply(payload) => state.arg = payload.clone(),
                CallResponse::Reject { message, .. } => state.reject_message = message.clone(),
            }
            state
        };
        let state = with_response(ExecState::new(mode, env));
        let closure = Entry::Closure {
            fun,
            env: closure_env,
        };
        match injected_trap {
            Some(trap) => steps.outcome.trap = Some(trap.to_string()),
            None => {
                if self.transaction(closure, state, true, &mut steps) {
                    return steps.outcome;
                }
            }
        }
        let mut outcome = steps.failed();
        if let Some((fun, cleanup_env)) = callback.cleanup {
            // The cleanup closure gets a budget of its own.
            let mut cleanup = Steps::new(env.instruction_limit);
            let mut state = with_response(ExecState::new(cleanup_mode, env));
            state.arg.clear();
            let succeeded = self.transaction(
                Entry::Closure {
                    fun,
                    env: cleanup_env,
                },
                state,
                true,
                &mut cleanup,
            );
            let cleanup = if succeeded {
                cleanup.outcome
            } else {
                cleanup.failed()
            };
            outcome.cleanup = Some(cleanup.trap);
            outcome.instructions += cleanup.instructions;
            outcome.debug_prints.extend(cleanup.debug_prints);
            outcome.cycles_burned = cleanup.cycles_burned;
            outcome.global_timer = cleanup.global_timer;
            outcome.certified_data = cleanup.certified_data;
        }
        outcome
    }

    pub(super) fn wasm_memory_size_impl(&self) -> u64 {
        self.heap.len()
    }

    pub(super) fn stable_memory_size_impl(&self) -> u64 {
        self.stable.size_bytes()
    }

    pub(super) fn snapshot_impl(&self) -> InstanceSnapshot {
        InstanceSnapshot {
            module: self.module.clone(),
            wasm_memory: self.heap.clone(),
            globals: self.globals.clone(),
            stable_memory: self.stable.committed().clone(),
        }
    }

    pub(super) fn from_snapshot_impl(
        snapshot: &InstanceSnapshot,
    ) -> Result<CanisterInstance, String> {
        let module = &snapshot.module;
        let expected_globals = module.inner.facts.mutable_globals.len();
        if snapshot.globals.len() != expected_globals {
            return Err(format!(
                "the snapshot has {} globals but the module has {expected_globals} mutable globals",
                snapshot.globals.len()
            ));
        }
        if !snapshot.wasm_memory.len().is_multiple_of(WASM_PAGE_SIZE) {
            return Err(format!(
                "the snapshot's Wasm memory size {} is not a multiple of the Wasm page size",
                snapshot.wasm_memory.len()
            ));
        }
        let stable = StableMemory::from_paged(snapshot.stable_memory.clone())?;
        let mut live =
            Live::instantiate(module, HostState::default()).map_err(|(message, _)| message)?;
        if live.heap().len() as u64 > snapshot.wasm_memory.len() {
            return Err(format!(
                "the snapshot's Wasm memory ({} bytes) is smaller than the module's initial memory ({} bytes)",
                snapshot.wasm_memory.len(),
                live.heap().len()
            ));
        }
        live.load_pages(&snapshot.wasm_memory)?;
        live.set_globals(&snapshot.globals);
        live.watch_heap();
        Ok(CanisterInstance {
            module: module.clone(),
            heap: snapshot.wasm_memory.clone(),
            globals: snapshot.globals.clone(),
            stable,
            live_key: cache(live),
        })
    }

    /// The pages this instance holds: heap and stable memory.
    pub(super) fn memories_impl(&self) -> [&PagedMemory; 2] {
        [&self.heap, self.stable.committed()]
    }
}
