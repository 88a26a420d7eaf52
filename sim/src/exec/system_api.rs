//! The `ic0` host functions and the per-execution state they read and change.
//!
//! Spec: IC interface specification, "Canister interface (System API)": one section per function
//! group (message data, cycles, calls, stable memory, certified data, timers, performance counter,
//! costs, environment variables, debugging). Mode restrictions come from [`super::imports`].
//!
//! Instruction cost model (documented in `exec/mod.rs` too): Wasm code is metered with wasmtime
//! fuel (one unit per executed Wasm operator, as wasmtime counts them). Every `ic0` call costs
//! [`SYSTEM_API_CALL_INSTRUCTIONS`] plus one instruction per byte it moves between the heap and
//! the system (arguments read, blobs copied out, stable memory read or written).

use super::imports::{ic0_import, Ic0Import, Mode};
use super::stable::StableMemory;
use super::{CallResponse, ExecEnv, ExecResponse, OutgoingCall};
use crate::exec::Callback;
use crate::types::{limits, Principal};
use std::fmt;
use std::sync::OnceLock;
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

/// Fixed instruction cost of any `ic0` call, on top of one instruction per byte copied.
pub const SYSTEM_API_CALL_INSTRUCTIONS: u64 = 100;

const MAX_PRINCIPAL_BYTES: usize = 29;
/// The sum of the lengths of the method names a module may export, which bounds the method name
/// of a call.
const MAX_CALLED_METHOD_NAME_BYTES: u64 = 20_000;
const SUBNET_NODE_COUNT: i32 = 13;

/// Fee of every inter-canister call (dfinity/ic `xnet_call_fee`, 13-node subnet).
const XNET_CALL_FEE: u128 = 260_000;
/// Fee per byte of a request or response (dfinity/ic `xnet_byte_transmission_fee`, 13 nodes).
const XNET_BYTE_TRANSMISSION_FEE: u128 = 1_000;
/// Base fee of a replicated execution (dfinity/ic `update_message_execution_fee`, 13 nodes).
const EXECUTION_BASE_FEE: u128 = 5_000_000;

/// What a call pays when `call_perform` accepts it: the call fee plus the request bytes (method
/// name and argument; dfinity/ic `xnet_call_performed_fee` + `xnet_call_bytes_transmitted_fee`).
pub fn call_base_fee(method_name_len: u64, payload_len: u64) -> u128 {
    XNET_CALL_FEE + XNET_BYTE_TRANSMISSION_FEE * (method_name_len as u128 + payload_len as u128)
}

/// Cycles reserved at `call_perform` for the largest possible response: transmitting a 2 MiB
/// response (dfinity/ic `prepayment_for_response_transmission`) plus executing its callback at
/// the instruction limit at 1 cycle per instruction (`prepayment_for_response_execution`).
/// 2_097_152_000 + 40_005_000_000 = 42_102_152_000 cycles (13-node subnet).
pub const MAX_CYCLES_PER_RESPONSE: u128 = XNET_BYTE_TRANSMISSION_FEE
    * limits::MAX_RESPONSE_PAYLOAD as u128
    + EXECUTION_BASE_FEE
    + limits::MAX_INSTRUCTIONS_PER_UPDATE as u128;

/// What transmitting `response` costs its caller, charged out of the reservation when the
/// response arrives (dfinity/ic `refund_for_response_transmission`). A reject counts its message
/// plus one byte for the code, as the IC's `RejectContext::size_bytes` does.
pub fn response_transmission_fee(response: &CallResponse) -> u128 {
    let bytes = match response {
        CallResponse::Reply(payload) => payload.len(),
        CallResponse::Reject { message, .. } => 1 + message.len(),
    };
    XNET_BYTE_TRANSMISSION_FEE * bytes as u128
}

/// `ic0.cost_call` (IC interface specification, "Cycle cost calculation"): what a canister must
/// hold above its freezing limit for `call_perform` to accept a call, i.e. the base fee plus the
/// reservation [`MAX_CYCLES_PER_RESPONSE`]. `call_perform` withdraws exactly this; the unused
/// part of the reservation returns when the response is processed.
pub fn cost_call(method_name_len: u64, payload_len: u64) -> u128 {
    call_base_fee(method_name_len, payload_len) + MAX_CYCLES_PER_RESPONSE
}

/// `ic0.cost_create_canister`.
pub const CREATE_CANISTER_FEE: u128 = 500_000_000_000;

/// `ic0.cost_http_request` (13 nodes): base plus per request byte plus per reserved response byte.
pub fn cost_http_request(request_size: u64, max_response_bytes: u64) -> u128 {
    let nodes = SUBNET_NODE_COUNT as u128;
    (3_000_000 + 60_000 * nodes) * nodes
        + 400 * nodes * request_size as u128
        + 800 * nodes * max_response_bytes as u128
}

/// An error that ends the execution with the IC's message (as opposed to a wasmtime trap, whose
/// message is translated).
#[derive(Debug)]
pub(super) struct HostTrap(pub String);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostTrap {}

fn trap(message: String) -> wasmtime::Error {
    wasmtime::Error::new(HostTrap(message))
}

/// A use of the System API that the spec forbids.
fn violation(message: String) -> wasmtime::Error {
    trap(format!("Canister violated contract: {message}"))
}

pub(super) fn instruction_limit_message(limit: u64) -> String {
    format!("Canister exceeded the limit of {limit} instructions for single message execution.")
}

/// Store data of an instance.
#[derive(Default)]
pub(super) struct HostState {
    pub stable: StableMemory,
    /// The instance's memory (through the rewrite's export), if it has one.
    pub memory: Option<wasmtime::Memory>,
    /// Present while an entry point runs.
    pub exec: Option<ExecState>,
    /// `wasm_memory_limit` in force for the running entry point.
    pub heap_limit: Option<u64>,
    /// The largest heap the module may have: 4 GiB for wasm32, 6 GiB for wasm64 (0: not set).
    /// `memory.grow` past it returns -1, as on the IC.
    pub max_heap: u64,
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.max_heap > 0 && desired as u64 > self.max_heap {
            return Ok(false);
        }
        match self.heap_limit {
            Some(limit) if desired as u64 > limit => Err(trap(format!(
                "Canister exceeded its current Wasm memory limit of {limit} bytes. The peak Wasm memory usage was {desired} bytes."
            ))),
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// What one entry point sees and does.
pub(super) struct ExecState {
    pub mode: Mode,
    pub env: ExecEnv,
    /// `msg_arg_data`: the message argument, or the reply payload in a reply callback.
    pub arg: Vec<u8>,
    /// `msg_reject_code` (0 for a reply) and `msg_reject_msg`.
    pub reject_code: u32,
    pub reject_message: String,
    /// `msg_method_name` (inspect_message).
    pub method_name: String,
    pub replied: bool,
    pub reply_data: Vec<u8>,
    pub response: Option<ExecResponse>,
    /// The call between `call_new` and `call_perform`.
    pub call_under_construction: Option<OutgoingCall>,
    pub calls: Vec<OutgoingCall>,
    /// Cycles still available to accept.
    pub cycles_available: u128,
    pub cycles_accepted: u128,
    pub cycles_burned: u128,
    /// The balance as this execution sees it: after accepting, burning, attaching to calls and
    /// paying call fees.
    pub balance: u128,
    pub global_timer: u64,
    pub global_timer_set: bool,
    pub certified_data: Option<Vec<u8>>,
    pub debug_prints: Vec<String>,
    pub message_accepted: bool,
    /// Limit named in the out-of-instructions message.
    pub instruction_limit: u64,
    /// Fuel the store had when this entry point started (`performance_counter(0)`).
    pub fuel_at_start: u64,
    pub env_vars: Vec<(String, String)>,
}

impl ExecState {
    pub(super) fn new(mode: Mode, env: &ExecEnv) -> ExecState {
        let mut env = env.clone();
        let arg = std::mem::take(&mut env.arg);
        let mut env_vars = env.env_vars.clone();
        env_vars.sort();
        ExecState {
            mode,
            arg,
            reject_code: 0,
            reject_message: String::new(),
            method_name: String::new(),
            replied: env.already_replied,
            reply_data: Vec::new(),
            response: None,
            call_under_construction: None,
            calls: Vec::new(),
            cycles_available: env.cycles_available,
            cycles_accepted: 0,
            cycles_burned: 0,
            balance: env.cycle_balance,
            global_timer: env.global_timer,
            global_timer_set: false,
            certified_data: None,
            debug_prints: Vec::new(),
            message_accepted: false,
            instruction_limit: env.instruction_limit,
            fuel_at_start: 0,
            env_vars,
            env,
        }
    }

    fn liquid_balance(&self) -> u128 {
        self.balance.saturating_sub(self.env.freezing_limit)
    }

    fn response_limit(&self) -> usize {
        if self.mode.is_replicated() {
            limits::MAX_RESPONSE_PAYLOAD
        } else {
            limits::MAX_QUERY_RESPONSE_PAYLOAD
        }
    }

    fn is_same_subnet(&self, callee: &Principal) -> bool {
        *callee == Principal::management_canister()
            || *callee == self.env.canister_id
            || *callee == self.env.subnet_id
            || self.env.same_subnet.contains(callee)
    }
}

type Ctx<'a, 'b> = &'a mut Caller<'b, HostState>;

fn exec<'a>(c: &'a mut Caller<'_, HostState>) -> &'a mut ExecState {
    c.data_mut()
        .exec
        .as_mut()
        .expect("an ic0 function runs inside an execution")
}

fn charge(c: Ctx, instructions: u64) -> wasmtime::Result<()> {
    let fuel = c.get_fuel()?;
    if fuel < instructions {
        c.set_fuel(0)?;
        return Err(trap(instruction_limit_message(exec(c).instruction_limit)));
    }
    c.set_fuel(fuel - instructions)
}

/// Mode check and the fixed cost of a call.
fn enter(c: Ctx, import: &Ic0Import) -> wasmtime::Result<()> {
    let mode = exec(c).mode;
    if !import.modes.contains(mode) {
        return Err(violation(format!(
            "\"ic0_{}\" cannot be executed in {mode} mode",
            import.name
        )));
    }
    charge(c, SYSTEM_API_CALL_INSTRUCTIONS)
}

fn heap_range(
    api: &str,
    start: u64,
    size: u64,
    heap_len: usize,
) -> wasmtime::Result<std::ops::Range<usize>> {
    match start.checked_add(size) {
        Some(end) if end <= heap_len as u64 => Ok(start as usize..end as usize),
        _ => Err(violation(format!(
            "ic0.{api}: heap range [{start}, {start} + {size}) is outside the Wasm memory of {heap_len} bytes"
        ))),
    }
}

fn memory(c: Ctx) -> Option<Memory> {
    c.data().memory
}

/// Reads `size` bytes at `src` of the heap.
fn read_heap(c: Ctx, api: &str, src: u64, size: u64) -> wasmtime::Result<Vec<u8>> {
    charge(c, size)?;
    let heap: &[u8] = match memory(c) {
        Some(memory) => memory.data(&*c),
        None => &[],
    };
    let range = heap_range(api, src, size, heap.len())?;
    Ok(heap[range].to_vec())
}

fn write_heap(c: Ctx, api: &str, dst: u64, bytes: &[u8]) -> wasmtime::Result<()> {
    charge(c, bytes.len() as u64)?;
    let heap: &mut [u8] = match memory(c) {
        Some(memory) => memory.data_mut(&mut *c),
        None => &mut [],
    };
    let range = heap_range(api, dst, bytes.len() as u64, heap.len())?;
    heap[range].copy_from_slice(bytes);
    Ok(())
}

fn write_u128<I: Addr>(c: Ctx, api: &str, dst: I, value: u128) -> wasmtime::Result<()> {
    write_heap(c, api, dst.u(), &value.to_le_bytes())
}

/// The `*_copy(dst, offset, size)` pattern: copies `blob[offset..offset + size]` to the heap at
/// `dst`, trapping when either range is out of bounds.
fn copy_out<I: Addr>(
    c: Ctx,
    api: &str,
    dst: I,
    offset: I,
    size: I,
    blob: impl for<'s> Fn(&'s ExecState) -> &'s [u8],
) -> wasmtime::Result<()> {
    let (dst, offset, size) = (dst.u(), offset.u(), size.u());
    charge(c, size)?;
    let Some(memory) = memory(c) else {
        return Err(violation(format!("ic0.{api}: the module has no memory")));
    };
    let (heap, state) = memory.data_and_store_mut(&mut *c);
    let blob = blob(state.exec.as_ref().expect("inside an execution"));
    let source = match offset.checked_add(size) {
        Some(end) if end <= blob.len() as u64 => &blob[offset as usize..end as usize],
        _ => {
            return Err(violation(format!(
                "ic0.{api}: offset {offset} + size {size} exceeds the {} bytes available",
                blob.len()
            )))
        }
    };
    let target = heap_range(api, dst, size, heap.len())?;
    heap[target].copy_from_slice(source);
    Ok(())
}

fn u128_of(high: i64, low: i64) -> u128 {
    ((high as u64 as u128) << 64) | low as u64 as u128
}

fn read_principal<I: Addr>(c: Ctx, api: &str, src: I, size: I) -> wasmtime::Result<Principal> {
    let bytes = read_heap(c, api, src.u(), size.u())?;
    if bytes.len() > MAX_PRINCIPAL_BYTES {
        return Err(violation(format!(
            "ic0.{api}: {} bytes is not a valid principal (at most {MAX_PRINCIPAL_BYTES})",
            bytes.len()
        )));
    }
    Ok(Principal::from_slice(&bytes))
}

fn read_text<I: Addr>(c: Ctx, api: &str, src: I, size: I) -> wasmtime::Result<String> {
    let bytes = read_heap(c, api, src.u(), size.u())?;
    String::from_utf8(bytes)
        .map_err(|_| violation(format!("ic0.{api}: the text is not valid UTF-8")))
}

fn ensure_can_reply(c: Ctx, api: &str) -> wasmtime::Result<()> {
    if exec(c).replied {
        return Err(violation(format!("ic0.{api}: the call is already replied")));
    }
    Ok(())
}

fn call_under_construction<'a>(
    c: &'a mut Caller<'_, HostState>,
    api: &str,
) -> wasmtime::Result<&'a mut OutgoingCall> {
    exec(c).call_under_construction.as_mut().ok_or_else(|| {
        violation(format!(
            "ic0.{api} can only be called between ic0.call_new and ic0.call_perform"
        ))
    })
}

fn add_call_cycles(c: Ctx, api: &str, amount: u128) -> wasmtime::Result<()> {
    call_under_construction(c, api)?;
    let state = exec(c);
    let liquid = state.liquid_balance();
    if amount > liquid {
        return Err(violation(format!(
            "ic0.{api}: cannot attach {amount} cycles, the canister's liquid balance is {liquid}"
        )));
    }
    state.balance -= amount;
    let call = state
        .call_under_construction
        .as_mut()
        .expect("checked above");
    call.cycles = call.cycles.saturating_add(amount);
    Ok(())
}

fn accept_cycles(c: Ctx, max: u128) -> u128 {
    let state = exec(c);
    let amount = max.min(state.cycles_available);
    state.cycles_available -= amount;
    state.cycles_accepted += amount;
    state.balance += amount;
    amount
}

fn fits_u64(api: &str, value: u128) -> wasmtime::Result<i64> {
    u64::try_from(value).map(|v| v as i64).map_err(|_| {
        violation(format!(
            "ic0.{api}: the amount {value} does not fit in 64 bits; use the 128-bit API"
        ))
    })
}

const MAX_STABLE_PAGES: u64 = limits::MAX_STABLE_MEMORY_BYTES / limits::WASM_PAGE_SIZE;
/// The 32-bit stable memory API addresses at most 4 GiB.
const MAX_STABLE32_PAGES: u64 = (1 << 32) / limits::WASM_PAGE_SIZE;

fn stable_write(c: Ctx, api: &str, offset: u64, src: u64, size: u64) -> wasmtime::Result<()> {
    charge(c, size)?;
    let Some(memory) = memory(c) else {
        return Err(violation(format!("ic0.{api}: the module has no memory")));
    };
    let (heap, state) = memory.data_and_store_mut(&mut *c);
    let range = heap_range(api, src, size, heap.len())?;
    state
        .stable
        .write(offset, &heap[range])
        .map_err(|_| trap("Canister trapped: stable memory out of bounds".into()))
}

fn stable_read(c: Ctx, api: &str, dst: u64, offset: u64, size: u64) -> wasmtime::Result<()> {
    charge(c, size)?;
    let Some(memory) = memory(c) else {
        return Err(violation(format!("ic0.{api}: the module has no memory")));
    };
    let (heap, state) = memory.data_and_store_mut(&mut *c);
    let range = heap_range(api, dst, size, heap.len())?;
    state
        .stable
        .read(offset, &mut heap[range])
        .map_err(|_| trap("Canister trapped: stable memory out of bounds".into()))
}

fn stable32_pages(c: Ctx, api: &str) -> wasmtime::Result<u64> {
    let pages = c.data().stable.size_pages();
    if pages > MAX_STABLE32_PAGES {
        return Err(violation(format!(
            "ic0.{api}: stable memory is larger than 4 GiB; use the stable64 API"
        )));
    }
    Ok(pages)
}

/// Threshold key costs (13-node prices for test keys, 34-node fiduciary prices for `key_1`), the
/// fee of `sign_with_ecdsa`, `sign_with_schnorr` and `vetkd_derive_key`: the cost, or 1 for an
/// unknown curve/algorithm (index of `curves`), 2 for an unknown key name.
pub fn cost_threshold_key(
    key_name: &str,
    curve_or_algorithm: i32,
    curves: i32,
) -> Result<u128, i32> {
    if !(0..curves).contains(&curve_or_algorithm) {
        return Err(1);
    }
    match key_name {
        "key_1" => Ok(26_153_846_153),
        "test_key_1" | "dfx_test_key" => Ok(10_000_000_000),
        _ => Err(2),
    }
}

fn cost_key<I: Addr>(
    c: Ctx,
    api: &str,
    src: I,
    size: I,
    curve: i32,
    dst: I,
    curves: i32,
) -> wasmtime::Result<i32> {
    let key_name = read_text(c, api, src, size)?;
    match cost_threshold_key(&key_name, curve, curves) {
        Ok(cost) => {
            write_u128(c, api, dst, cost)?;
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

fn env_var_index<I: Addr>(c: Ctx, api: &str, index: I) -> wasmtime::Result<usize> {
    let count = exec(c).env_vars.len();
    let index = index.u();
    if index >= count as u64 {
        return Err(violation(format!(
            "ic0.{api}: index {index} is out of bounds ({count} environment variables)"
        )));
    }
    Ok(index as usize)
}

fn env_var_value<I: Addr>(c: Ctx, api: &str, name_src: I, name_size: I) -> wasmtime::Result<usize> {
    let name = read_text(c, api, name_src, name_size)?;
    exec(c)
        .env_vars
        .iter()
        .position(|(n, _)| *n == name)
        .ok_or_else(|| {
            violation(format!(
                "ic0.{api}: environment variable '{name}' does not exist"
            ))
        })
}

/// Registers `ic0.<name>`: the closure body runs after the mode check and the fixed charge.
macro_rules! ic0 {
    ($linker:ident, $name:literal, |$c:ident $(, $arg:ident : $ty:ty)*| $(-> $ret:ty)? $body:block) => {{
        let import = ic0_import($name);
        $linker
            .func_wrap(
                "ic0",
                $name,
                move |mut caller: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<ic0!(@ret $($ret)?)> {
                    let $c = &mut caller;
                    enter($c, import)?;
                    $body
                },
            )
            .expect("each ic0 function is defined once");
    }};
    (@ret) => { () };
    (@ret $ret:ty) => { $ret };
}

/// The spec's `I ∈ {i32, i64}` of the System API: addresses and sizes are `i32` in a wasm32
/// module and `i64` in a wasm64 module. Host functions are written once over `I`.
pub(super) trait Addr: wasmtime::WasmTy + Copy + Send + Sync + 'static {
    const WASM64: bool;
    /// The value as an unsigned address or size.
    fn u(self) -> u64;
    /// A size or count as `I` (sizes of blobs the system holds always fit).
    fn of(value: u64) -> Self;
}

impl Addr for i32 {
    const WASM64: bool = false;
    fn u(self) -> u64 {
        self as u32 as u64
    }
    fn of(value: u64) -> Self {
        value as u32 as i32
    }
}

impl Addr for i64 {
    const WASM64: bool = true;
    fn u(self) -> u64 {
        self as u64
    }
    fn of(value: u64) -> Self {
        value as i64
    }
}

fn new_linker<I: Addr>() -> Linker<HostState> {
    let mut l = Linker::new(super::module::engine());
    define_message_functions::<I>(&mut l);
    define_cycles_functions::<I>(&mut l);
    define_call_functions::<I>(&mut l);
    define_stable_functions::<I>(&mut l);
    define_other_functions::<I>(&mut l);
    l
}

/// The linker with every `ic0` function for modules of one memory width (wasm32 or wasm64);
/// shared by all modules of the process.
pub(super) fn linker(wasm64: bool) -> &'static Linker<HostState> {
    static LINKER32: OnceLock<Linker<HostState>> = OnceLock::new();
    static LINKER64: OnceLock<Linker<HostState>> = OnceLock::new();
    if wasm64 {
        LINKER64.get_or_init(new_linker::<i64>)
    } else {
        LINKER32.get_or_init(new_linker::<i32>)
    }
}

fn define_message_functions<I: Addr>(l: &mut Linker<HostState>) {
    ic0!(l, "msg_arg_data_size", |c| -> I {
        Ok(I::of(exec(c).arg.len() as u64))
    });
    ic0!(l, "msg_arg_data_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "msg_arg_data_copy", dst, off, size, |s| &s.arg)
    });
    ic0!(l, "msg_caller_size", |c| -> I {
        Ok(I::of(exec(c).env.caller.as_slice().len() as u64))
    });
    ic0!(l, "msg_caller_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "msg_caller_copy", dst, off, size, |s| {
            s.env.caller.as_slice()
        })
    });
    // The simulator attaches no caller information (no identity delegations).
    ic0!(l, "msg_caller_info_data_size", |c| -> I { Ok(I::of(0)) });
    ic0!(
        l,
        "msg_caller_info_data_copy",
        |c, dst: I, off: I, size: I| {
            copy_out(c, "msg_caller_info_data_copy", dst, off, size, |_| &[])
        }
    );
    ic0!(l, "msg_caller_info_signer_size", |c| -> I { Ok(I::of(0)) });
    ic0!(
        l,
        "msg_caller_info_signer_copy",
        |c, dst: I, off: I, size: I| {
            copy_out(c, "msg_caller_info_signer_copy", dst, off, size, |_| &[])
        }
    );
    ic0!(l, "msg_reject_code", |c| -> i32 {
        Ok(exec(c).reject_code as i32)
    });
    ic0!(l, "msg_reject_msg_size", |c| -> I {
        Ok(I::of(exec(c).reject_message.len() as u64))
    });
    ic0!(l, "msg_reject_msg_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "msg_reject_msg_copy", dst, off, size, |s| {
            s.reject_message.as_bytes()
        })
    });
    ic0!(l, "msg_deadline", |c| -> i64 {
        Ok(exec(c).env.deadline_nanos as i64)
    });
    ic0!(l, "msg_reply_data_append", |c, src: I, size: I| {
        ensure_can_reply(c, "msg_reply_data_append")?;
        let data = read_heap(c, "msg_reply_data_append", src.u(), size.u())?;
        let state = exec(c);
        let limit = state.response_limit();
        if state.reply_data.len() + data.len() > limit {
            return Err(violation(format!(
                "ic0.msg_reply_data_append: application payload size ({}) cannot be larger than {limit}.",
                state.reply_data.len() + data.len()
            )));
        }
        state.reply_data.extend_from_slice(&data);
        Ok(())
    });
    ic0!(l, "msg_reply", |c| {
        ensure_can_reply(c, "msg_reply")?;
        let state = exec(c);
        state.response = Some(ExecResponse::Reply(std::mem::take(&mut state.reply_data)));
        state.replied = true;
        Ok(())
    });
    ic0!(l, "msg_reject", |c, src: I, size: I| {
        ensure_can_reply(c, "msg_reject")?;
        let message = read_text(c, "msg_reject", src, size)?;
        let state = exec(c);
        state.response = Some(ExecResponse::Reject(message));
        state.reply_data.clear();
        state.replied = true;
        Ok(())
    });
    ic0!(l, "msg_method_name_size", |c| -> I {
        Ok(I::of(exec(c).method_name.len() as u64))
    });
    ic0!(l, "msg_method_name_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "msg_method_name_copy", dst, off, size, |s| {
            s.method_name.as_bytes()
        })
    });
    ic0!(l, "accept_message", |c| {
        let state = exec(c);
        if state.message_accepted {
            return Err(violation(
                "ic0.accept_message: the function was already called.".into(),
            ));
        }
        state.message_accepted = true;
        Ok(())
    });
}

fn define_cycles_functions<I: Addr>(l: &mut Linker<HostState>) {
    ic0!(l, "msg_cycles_available128", |c, dst: I| {
        let available = exec(c).cycles_available;
        write_u128(c, "msg_cycles_available128", dst, available)
    });
    ic0!(l, "msg_cycles_refunded128", |c, dst: I| {
        let refunded = exec(c).env.cycles_refunded;
        write_u128(c, "msg_cycles_refunded128", dst, refunded)
    });
    ic0!(
        l,
        "msg_cycles_accept128",
        |c, high: i64, low: i64, dst: I| {
            let amount = accept_cycles(c, u128_of(high, low));
            write_u128(c, "msg_cycles_accept128", dst, amount)
        }
    );
    ic0!(l, "cycles_burn128", |c, high: i64, low: i64, dst: I| {
        let state = exec(c);
        let amount = u128_of(high, low).min(state.liquid_balance());
        state.balance -= amount;
        state.cycles_burned += amount;
        write_u128(c, "cycles_burn128", dst, amount)
    });
    ic0!(l, "canister_cycle_balance128", |c, dst: I| {
        let balance = exec(c).balance;
        write_u128(c, "canister_cycle_balance128", dst, balance)
    });
    ic0!(l, "canister_liquid_cycle_balance128", |c, dst: I| {
        let liquid = exec(c).liquid_balance();
        write_u128(c, "canister_liquid_cycle_balance128", dst, liquid)
    });
    if !I::WASM64 {
        ic0!(l, "msg_cycles_available", |c| -> i64 {
            fits_u64("msg_cycles_available", exec(c).cycles_available)
        });
    }
    if !I::WASM64 {
        ic0!(l, "msg_cycles_refunded", |c| -> i64 {
            fits_u64("msg_cycles_refunded", exec(c).env.cycles_refunded)
        });
    }
    if !I::WASM64 {
        ic0!(l, "msg_cycles_accept", |c, max: i64| -> i64 {
            Ok(accept_cycles(c, max as u64 as u128) as i64)
        });
    }
    if !I::WASM64 {
        ic0!(l, "canister_cycle_balance", |c| -> i64 {
            fits_u64("canister_cycle_balance", exec(c).balance)
        });
    }
}

fn define_call_functions<I: Addr>(l: &mut Linker<HostState>) {
    ic0!(l, "call_new", |c,
                         callee_src: I,
                         callee_size: I,
                         name_src: I,
                         name_size: I,
                         reply_fun: I,
                         reply_env: I,
                         reject_fun: I,
                         reject_env: I| {
        // The method name may be at most as long as all exported method names together may be
        // (20,000 bytes), else the message traps (replica: `RequestInPrep::new`).
        if name_size.u() > MAX_CALLED_METHOD_NAME_BYTES {
            return Err(violation(format!(
                "Size of method_name {} exceeds the allowed limit of {MAX_CALLED_METHOD_NAME_BYTES}.",
                name_size.u()
            )));
        }
        let callee = read_principal(c, "call_new", callee_src, callee_size)?;
        let method = read_text(c, "call_new", name_src, name_size)?;
        let state = exec(c);
        // A call still under construction is discarded; its cycles return to the balance.
        if let Some(discarded) = state.call_under_construction.take() {
            state.balance += discarded.cycles;
        }
        state.call_under_construction = Some(OutgoingCall {
            callee,
            method,
            payload: Vec::new(),
            cycles: 0,
            callback: Callback {
                reply_fun: reply_fun.u(),
                reply_env: reply_env.u(),
                reject_fun: reject_fun.u(),
                reject_env: reject_env.u(),
                cleanup: None,
            },
            timeout_seconds: None,
        });
        Ok(())
    });
    ic0!(l, "call_on_cleanup", |c, fun: I, env: I| {
        let call = call_under_construction(c, "call_on_cleanup")?;
        if call.callback.cleanup.is_some() {
            return Err(violation(
                "ic0.call_on_cleanup: the cleanup closure is already set".into(),
            ));
        }
        call.callback.cleanup = Some((fun.u(), env.u()));
        Ok(())
    });
    ic0!(l, "call_data_append", |c, src: I, size: I| {
        let call = call_under_construction(c, "call_data_append")?;
        // The replica traps the message when the request (method name plus payload) would pass
        // the same-subnet limit of 10 MiB, whatever the callee (`RequestInPrep`).
        let current = call.method.len() + call.payload.len();
        if size.u()
            > (limits::MAX_SAME_SUBNET_PAYLOAD - current.min(limits::MAX_SAME_SUBNET_PAYLOAD))
                as u64
        {
            let callee = call.callee;
            let method = call.method.clone();
            return Err(violation(format!(
                "Request to {callee}:{method} has a payload size of {}, which exceeds the allowed limit of {}.",
                current as u64 + size.u(),
                limits::MAX_SAME_SUBNET_PAYLOAD
            )));
        }
        let data = read_heap(c, "call_data_append", src.u(), size.u())?;
        call_under_construction(c, "call_data_append")?
            .payload
            .extend_from_slice(&data);
        Ok(())
    });
    ic0!(
        l,
        "call_with_best_effort_response",
        |c, timeout_seconds: i32| {
            let call = call_under_construction(c, "call_with_best_effort_response")?;
            if call.timeout_seconds.is_some() {
                return Err(violation(
                    "ic0.call_with_best_effort_response: the timeout is already set for this call"
                        .into(),
                ));
            }
            call.timeout_seconds =
                Some((timeout_seconds as u32).min(limits::MAX_CALL_TIMEOUT_SECONDS));
            Ok(())
        }
    );
    ic0!(l, "call_cycles_add128", |c, high: i64, low: i64| {
        add_call_cycles(c, "call_cycles_add128", u128_of(high, low))
    });
    if !I::WASM64 {
        ic0!(l, "call_cycles_add", |c, amount: i64| {
            add_call_cycles(c, "call_cycles_add", amount as u64 as u128)
        });
    }
    ic0!(l, "call_perform", |c| -> i32 {
        call_under_construction(c, "call_perform")?;
        let state = exec(c);
        let call = state.call_under_construction.take().expect("checked above");
        // A same-subnet request cannot pass its 10 MiB here (`call_data_append` traps first); a
        // request to another subnet over 2 MiB is not sent.
        let payload_limit = if state.is_same_subnet(&call.callee) {
            limits::MAX_SAME_SUBNET_PAYLOAD
        } else {
            limits::MAX_XNET_PAYLOAD
        };
        let queued = state
            .calls
            .iter()
            .filter(|queued| queued.callee == call.callee)
            .count();
        let free_slots = state
            .env
            .free_slots
            .get(&call.callee)
            .copied()
            .unwrap_or(state.env.default_free_slots);
        // The base fee plus the response reservation must fit above the freezing limit.
        let withdrawal = cost_call(call.method.len() as u64, call.payload.len() as u64);
        if call.payload.len() > payload_limit
            || queued >= free_slots
            || withdrawal > state.liquid_balance()
        {
            // Not sent: the attached cycles return to the balance.
            state.balance += call.cycles;
            return Ok(2);
        }
        state.balance -= withdrawal;
        state.calls.push(call);
        Ok(0)
    });
}

fn define_stable_functions<I: Addr>(l: &mut Linker<HostState>) {
    ic0!(l, "stable64_size", |c| -> i64 {
        Ok(c.data().stable.size_pages() as i64)
    });
    ic0!(l, "stable64_grow", |c, new_pages: i64| -> i64 {
        Ok(
            match c.data_mut().stable.grow(new_pages as u64, MAX_STABLE_PAGES) {
                Some(old) => old as i64,
                None => -1,
            },
        )
    });
    ic0!(
        l,
        "stable64_write",
        |c, offset: i64, src: i64, size: i64| {
            stable_write(c, "stable64_write", offset as u64, src as u64, size as u64)
        }
    );
    ic0!(l, "stable64_read", |c, dst: i64, offset: i64, size: i64| {
        stable_read(c, "stable64_read", dst as u64, offset as u64, size as u64)
    });
    if !I::WASM64 {
        ic0!(l, "stable_size", |c| -> i32 {
            Ok(stable32_pages(c, "stable_size")? as i32)
        });
    }
    if !I::WASM64 {
        ic0!(l, "stable_grow", |c, new_pages: i32| -> i32 {
            stable32_pages(c, "stable_grow")?;
            Ok(
                match c
                    .data_mut()
                    .stable
                    .grow(new_pages as u32 as u64, MAX_STABLE32_PAGES)
                {
                    Some(old) => old as i32,
                    None => -1,
                },
            )
        });
    }
    if !I::WASM64 {
        ic0!(l, "stable_write", |c, offset: i32, src: i32, size: i32| {
            stable32_pages(c, "stable_write")?;
            stable_write(
                c,
                "stable_write",
                offset as u32 as u64,
                src as u32 as u64,
                size as u32 as u64,
            )
        });
    }
    if !I::WASM64 {
        ic0!(l, "stable_read", |c, dst: i32, offset: i32, size: i32| {
            stable32_pages(c, "stable_read")?;
            stable_read(
                c,
                "stable_read",
                dst as u32 as u64,
                offset as u32 as u64,
                size as u32 as u64,
            )
        });
    }
}

fn define_other_functions<I: Addr>(l: &mut Linker<HostState>) {
    ic0!(l, "canister_self_size", |c| -> I {
        Ok(I::of(exec(c).env.canister_id.as_slice().len() as u64))
    });
    ic0!(l, "canister_self_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "canister_self_copy", dst, off, size, |s| {
            s.env.canister_id.as_slice()
        })
    });
    ic0!(l, "canister_status", |c| -> i32 {
        Ok(exec(c).env.status as i32)
    });
    ic0!(l, "canister_version", |c| -> i64 {
        Ok(exec(c).env.canister_version as i64)
    });
    ic0!(l, "subnet_self_size", |c| -> I {
        Ok(I::of(exec(c).env.subnet_id.as_slice().len() as u64))
    });
    ic0!(l, "subnet_self_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "subnet_self_copy", dst, off, size, |s| {
            s.env.subnet_id.as_slice()
        })
    });
    ic0!(l, "subnet_self_node_count", |c| -> i32 {
        Ok(SUBNET_NODE_COUNT)
    });
    ic0!(l, "root_key_size", |c| -> I {
        Ok(I::of(exec(c).env.root_key.len() as u64))
    });
    ic0!(l, "root_key_copy", |c, dst: I, off: I, size: I| {
        copy_out(c, "root_key_copy", dst, off, size, |s| &s.env.root_key)
    });
    ic0!(l, "certified_data_set", |c, src: I, size: I| {
        let data = read_heap(c, "certified_data_set", src.u(), size.u())?;
        if data.len() > 32 {
            return Err(violation(format!(
                "ic0.certified_data_set: certified data is {} bytes, at most 32 are allowed",
                data.len()
            )));
        }
        exec(c).certified_data = Some(data);
        Ok(())
    });
    ic0!(l, "data_certificate_present", |c| -> i32 {
        let state = exec(c);
        let readable = matches!(state.mode, Mode::NonReplicatedQuery | Mode::CompositeQuery);
        Ok((readable && state.env.data_certificate.is_some()) as i32)
    });
    ic0!(l, "data_certificate_size", |c| -> I {
        match &exec(c).env.data_certificate {
            Some(certificate) => Ok(I::of(certificate.len() as u64)),
            None => Err(violation(
                "ic0.data_certificate_size: no certificate is present".into(),
            )),
        }
    });
    ic0!(l, "data_certificate_copy", |c, dst: I, off: I, size: I| {
        if exec(c).env.data_certificate.is_none() {
            return Err(violation(
                "ic0.data_certificate_copy: no certificate is present".into(),
            ));
        }
        copy_out(c, "data_certificate_copy", dst, off, size, |s| {
            s.env.data_certificate.as_deref().unwrap_or_default()
        })
    });
    ic0!(l, "time", |c| -> i64 { Ok(exec(c).env.time_nanos as i64) });
    ic0!(l, "global_timer_set", |c, timestamp: i64| -> i64 {
        let state = exec(c);
        let previous = std::mem::replace(&mut state.global_timer, timestamp as u64);
        state.global_timer_set = true;
        Ok(previous as i64)
    });
    ic0!(l, "performance_counter", |c, counter: i32| -> i64 {
        let used = exec(c).fuel_at_start.saturating_sub(c.get_fuel()?);
        match counter {
            0 => Ok(used as i64),
            1 => Ok((exec(c).env.call_context_instructions + used) as i64),
            _ => Err(violation(format!(
                "ic0.performance_counter: unknown counter type {counter}"
            ))),
        }
    });
    ic0!(l, "is_controller", |c, src: I, size: I| -> i32 {
        let principal = read_principal(c, "is_controller", src, size)?;
        Ok(exec(c).env.controllers.contains(&principal) as i32)
    });
    ic0!(l, "in_replicated_execution", |c| -> i32 {
        Ok(exec(c).mode.is_replicated() as i32)
    });
    ic0!(l, "cost_call", |c,
                          method_name_size: i64,
                          payload_size: i64,
                          dst: I| {
        write_u128(
            c,
            "cost_call",
            dst,
            cost_call(method_name_size as u64, payload_size as u64),
        )
    });
    ic0!(l, "cost_create_canister", |c, dst: I| {
        write_u128(c, "cost_create_canister", dst, CREATE_CANISTER_FEE)
    });
    ic0!(
        l,
        "cost_http_request",
        |c, request_size: i64, max_res_bytes: i64, dst: I| {
            let cost = cost_http_request(request_size as u64, max_res_bytes as u64);
            write_u128(c, "cost_http_request", dst, cost)
        }
    );
    // The v2 parameters are a Candid record; the simulator prices the encoded size as the request
    // and the maximum response size of 2 MB.
    ic0!(
        l,
        "cost_http_request_v2",
        |c, params_src: I, params_size: I, dst: I| {
            read_heap(c, "cost_http_request_v2", params_src.u(), params_size.u())?;
            let cost = cost_http_request(params_size.u(), limits::MAX_RESPONSE_PAYLOAD as u64);
            write_u128(c, "cost_http_request_v2", dst, cost)
        }
    );
    ic0!(l, "cost_sign_with_ecdsa", |c,
                                     src: I,
                                     size: I,
                                     curve: i32,
                                     dst: I|
     -> i32 {
        cost_key(c, "cost_sign_with_ecdsa", src, size, curve, dst, 1)
    });
    ic0!(l, "cost_sign_with_schnorr", |c,
                                       src: I,
                                       size: I,
                                       algorithm: i32,
                                       dst: I|
     -> i32 {
        cost_key(c, "cost_sign_with_schnorr", src, size, algorithm, dst, 2)
    });
    ic0!(l, "cost_vetkd_derive_key", |c,
                                      src: I,
                                      size: I,
                                      curve: i32,
                                      dst: I|
     -> i32 {
        cost_key(c, "cost_vetkd_derive_key", src, size, curve, dst, 1)
    });
    ic0!(l, "env_var_count", |c| -> I {
        Ok(I::of(exec(c).env_vars.len() as u64))
    });
    ic0!(l, "env_var_name_size", |c, index: I| -> I {
        let index = env_var_index(c, "env_var_name_size", index)?;
        Ok(I::of(exec(c).env_vars[index].0.len() as u64))
    });
    ic0!(
        l,
        "env_var_name_copy",
        |c, index: I, dst: I, off: I, size: I| {
            let index = env_var_index(c, "env_var_name_copy", index)?;
            copy_out(c, "env_var_name_copy", dst, off, size, |s| {
                s.env_vars[index].0.as_bytes()
            })
        }
    );
    ic0!(l, "env_var_name_exists", |c,
                                    name_src: I,
                                    name_size: I|
     -> i32 {
        let name = read_text(c, "env_var_name_exists", name_src, name_size)?;
        Ok(exec(c).env_vars.iter().any(|(n, _)| *n == name) as i32)
    });
    ic0!(l, "env_var_value_size", |c,
                                   name_src: I,
                                   name_size: I|
     -> I {
        let index = env_var_value(c, "env_var_value_size", name_src, name_size)?;
        Ok(I::of(exec(c).env_vars[index].1.len() as u64))
    });
    ic0!(
        l,
        "env_var_value_copy",
        |c, name_src: I, name_size: I, dst: I, off: I, size: I| {
            let index = env_var_value(c, "env_var_value_copy", name_src, name_size)?;
            copy_out(c, "env_var_value_copy", dst, off, size, |s| {
                s.env_vars[index].1.as_bytes()
            })
        }
    );
    ic0!(l, "debug_print", |c, src: I, size: I| {
        let bytes = read_heap(c, "debug_print", src.u(), size.u())?;
        exec(c)
            .debug_prints
            .push(String::from_utf8_lossy(&bytes).into_owned());
        Ok(())
    });
    ic0!(l, "trap", |c, src: I, size: I| {
        let bytes = read_heap(c, "trap", src.u(), size.u())?;
        Err(trap(format!(
            "Canister called `ic0.trap` with message: '{}'",
            String::from_utf8_lossy(&bytes)
        )))
    });
}

#[cfg(test)]
mod tests {
    use super::super::imports::{Ty, IC0_IMPORTS};
    use super::*;
    use wasmtime::{Store, ValType};

    /// The host functions and the import table must agree on names and signatures: validation uses
    /// the table, instantiation the linker.
    #[test]
    fn linker_matches_import_table() {
        let mut store = Store::new(super::super::module::engine(), HostState::default());
        let to_ty = |ty: &ValType| match ty {
            ValType::I32 => Ty::I32,
            ValType::I64 => Ty::I64,
            other => panic!("unexpected type {other}"),
        };
        for wasm64 in [false, true] {
            let resolve = |tys: &[Ty]| tys.iter().map(|t| t.resolve(wasm64)).collect::<Vec<_>>();
            let imports = IC0_IMPORTS.iter().filter(|i| !(wasm64 && i.wasm32_only));
            for import in imports.clone() {
                let func = linker(wasm64)
                    .get(&mut store, "ic0", import.name)
                    .unwrap_or_else(|_| panic!("ic0.{} is not defined", import.name))
                    .into_func()
                    .expect("a function");
                let ty = func.ty(&store);
                assert_eq!(
                    ty.params().map(|t| to_ty(&t)).collect::<Vec<_>>(),
                    resolve(import.params),
                    "{} (wasm64: {wasm64})",
                    import.name
                );
                assert_eq!(
                    ty.results().map(|t| to_ty(&t)).collect::<Vec<_>>(),
                    resolve(import.results),
                    "{} (wasm64: {wasm64})",
                    import.name
                );
            }
            assert_eq!(
                linker(wasm64).iter(&mut store).count(),
                imports.count(),
                "wasm64: {wasm64}"
            );
        }
    }
}
