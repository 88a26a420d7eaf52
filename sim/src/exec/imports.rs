//! The `ic0` import table: every function a canister may import, its Wasm signature and the
//! execution modes in which it may be called.
//!
//! Signatures use [`Ty::Addr`] where the spec writes `I ∈ {i32, i64}`: `i32` for a module whose
//! memory is 32-bit or that declares none, `i64` for a module with a 64-bit memory (wasm64).
//! The legacy imports at the end of the table exist for wasm32 modules only (spec: "The following
//! System API functions are only available if `I = i32`").
//!
//! Spec: IC interface specification, "Canister interface (System API)", "Overview of imports"; the
//! same list as ic-interface-notes §2.1. Module validation refuses imports that are not listed here
//! (or are listed with another signature), and every host function checks its modes against this
//! table, so it is the single source of truth for both.

use std::fmt;

/// The context an entry point runs in; decides which `ic0` functions are available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// `(start)` (`s`).
    Start,
    /// `canister_init` and `canister_post_upgrade` (`I`).
    Init,
    /// `canister_pre_upgrade` (`G`).
    PreUpgrade,
    /// An update method (`U`).
    Update,
    /// A query executed as an update (`RQ`).
    ReplicatedQuery,
    /// A query executed on one replica (`NRQ`).
    NonReplicatedQuery,
    /// `CQ`.
    CompositeQuery,
    /// Reply closure of an outgoing call (`Ry`).
    ReplyCallback,
    /// Reject closure of an outgoing call (`Rt`).
    RejectCallback,
    /// Cleanup closure (`C`).
    Cleanup,
    /// Reply closure of a call a composite query made (`CRy`).
    CompositeReplyCallback,
    /// Reject closure of a call a composite query made (`CRt`).
    CompositeRejectCallback,
    /// Cleanup closure of a call a composite query made (`CC`).
    CompositeCleanup,
    /// `canister_inspect_message` (`F`).
    InspectMessage,
    /// Heartbeat, global timer, low-memory hook (`T`).
    SystemTask,
}

impl Mode {
    const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Whether the state of this execution is part of the replicated state
    /// (`ic0.in_replicated_execution`).
    pub(super) fn is_replicated(self) -> bool {
        !matches!(
            self,
            Mode::NonReplicatedQuery
                | Mode::CompositeQuery
                | Mode::CompositeReplyCallback
                | Mode::CompositeRejectCallback
                | Mode::CompositeCleanup
                | Mode::InspectMessage
        )
    }
}

/// The names the replica uses in "cannot be executed in ... mode" messages.
impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Start => "start",
            Mode::Init => "init",
            Mode::PreUpgrade => "pre_upgrade",
            Mode::Update => "update",
            Mode::ReplicatedQuery => "replicated query",
            Mode::NonReplicatedQuery => "non-replicated query",
            Mode::CompositeQuery => "composite query",
            Mode::ReplyCallback => "reply callback",
            Mode::RejectCallback => "reject callback",
            Mode::Cleanup => "cleanup",
            Mode::CompositeReplyCallback => "composite reply callback",
            Mode::CompositeRejectCallback => "composite reject callback",
            Mode::CompositeCleanup => "composite cleanup",
            Mode::InspectMessage => "inspect message",
            Mode::SystemTask => "system task",
        })
    }
}

/// A set of modes, written with the letters of the spec's import table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Modes(u16);

impl Modes {
    pub(super) fn contains(self, mode: Mode) -> bool {
        self.0 & mode.bit() != 0
    }
}

const fn modes(list: &[Mode]) -> Modes {
    let mut bits = 0;
    let mut i = 0;
    while i < list.len() {
        bits |= list[i].bit();
        i += 1;
    }
    Modes(bits)
}

use Mode::*;

/// `*`: everything except `(start)`.
const ANY: Modes = modes(&[
    Init,
    PreUpgrade,
    Update,
    ReplicatedQuery,
    NonReplicatedQuery,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    CompositeReplyCallback,
    CompositeRejectCallback,
    CompositeCleanup,
    InspectMessage,
    SystemTask,
]);
/// `* s`: everything.
const ANY_AND_START: Modes = Modes(ANY.0 | Start.bit());
const ARG: Modes = modes(&[
    Init,
    Update,
    ReplicatedQuery,
    NonReplicatedQuery,
    CompositeQuery,
    ReplyCallback,
    CompositeReplyCallback,
    InspectMessage,
]);
const CALLER_INFO: Modes = modes(&[
    Update,
    ReplicatedQuery,
    NonReplicatedQuery,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
    Cleanup,
    CompositeCleanup,
    InspectMessage,
]);
const REJECT_CODE: Modes = modes(&[
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
    Cleanup,
]);
const REJECT_MSG: Modes = modes(&[RejectCallback, CompositeRejectCallback]);
const REPLY: Modes = modes(&[
    Update,
    ReplicatedQuery,
    NonReplicatedQuery,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
]);
const CYCLES_AVAILABLE: Modes = modes(&[Update, ReplicatedQuery, ReplyCallback, RejectCallback]);
const CYCLES_REFUNDED: Modes = modes(&[ReplyCallback, RejectCallback]);
const CYCLES_BURN: Modes = modes(&[
    Init,
    PreUpgrade,
    Update,
    ReplicatedQuery,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    SystemTask,
]);
const INSPECT: Modes = modes(&[InspectMessage]);
const CALL: Modes = modes(&[
    Update,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
    SystemTask,
]);
const CALL_CYCLES: Modes = modes(&[Update, ReplyCallback, RejectCallback, SystemTask]);
const ROOT_KEY: Modes = CYCLES_BURN;
const CERTIFIED_DATA_SET: Modes = modes(&[
    Init,
    PreUpgrade,
    Update,
    ReplyCallback,
    RejectCallback,
    SystemTask,
]);
const DATA_CERTIFICATE: Modes = modes(&[NonReplicatedQuery, CompositeQuery]);
const GLOBAL_TIMER: Modes = modes(&[
    Init,
    PreUpgrade,
    Update,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    SystemTask,
]);

/// A Wasm value type of an `ic0` signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    I32,
    I64,
    /// The spec's `I`: `i32` in a wasm32 module, `i64` in a wasm64 module.
    Addr,
}

impl Ty {
    /// The concrete type in a module of the given memory width.
    pub(super) fn resolve(self, wasm64: bool) -> Ty {
        match self {
            Ty::Addr if wasm64 => Ty::I64,
            Ty::Addr => Ty::I32,
            other => other,
        }
    }
}

use Ty::{Addr as A, I32, I64};

/// One `ic0` function.
#[derive(Debug)]
pub(super) struct Ic0Import {
    pub name: &'static str,
    pub params: &'static [Ty],
    pub results: &'static [Ty],
    pub modes: Modes,
    /// Only for modules with a 32-bit memory (or none).
    pub wasm32_only: bool,
}

const fn f(
    name: &'static str,
    params: &'static [Ty],
    results: &'static [Ty],
    modes: Modes,
) -> Ic0Import {
    Ic0Import {
        name,
        params,
        results,
        modes,
        wasm32_only: false,
    }
}

/// A legacy import that exists for wasm32 modules only.
const fn legacy(
    name: &'static str,
    params: &'static [Ty],
    results: &'static [Ty],
    modes: Modes,
) -> Ic0Import {
    Ic0Import {
        wasm32_only: true,
        ..f(name, params, results, modes)
    }
}

const COPY: &[Ty] = &[A, A, A];

/// Every function of module `ic0` that a canister may import.
pub(super) static IC0_IMPORTS: &[Ic0Import] = &[
    f("msg_arg_data_size", &[], &[A], ARG),
    f("msg_arg_data_copy", COPY, &[], ARG),
    f("msg_caller_size", &[], &[A], ANY),
    f("msg_caller_copy", COPY, &[], ANY),
    f("msg_caller_info_data_size", &[], &[A], CALLER_INFO),
    f("msg_caller_info_data_copy", COPY, &[], CALLER_INFO),
    f("msg_caller_info_signer_size", &[], &[A], CALLER_INFO),
    f("msg_caller_info_signer_copy", COPY, &[], CALLER_INFO),
    f("msg_reject_code", &[], &[I32], REJECT_CODE),
    f("msg_reject_msg_size", &[], &[A], REJECT_MSG),
    f("msg_reject_msg_copy", COPY, &[], REJECT_MSG),
    f("msg_deadline", &[], &[I64], REPLY),
    f("msg_reply_data_append", &[A, A], &[], REPLY),
    f("msg_reply", &[], &[], REPLY),
    f("msg_reject", &[A, A], &[], REPLY),
    f("msg_cycles_available128", &[A], &[], CYCLES_AVAILABLE),
    f("msg_cycles_refunded128", &[A], &[], CYCLES_REFUNDED),
    f(
        "msg_cycles_accept128",
        &[I64, I64, A],
        &[],
        CYCLES_AVAILABLE,
    ),
    f("cycles_burn128", &[I64, I64, A], &[], CYCLES_BURN),
    f("canister_self_size", &[], &[A], ANY),
    f("canister_self_copy", COPY, &[], ANY),
    f("canister_cycle_balance128", &[A], &[], ANY),
    f("canister_liquid_cycle_balance128", &[A], &[], ANY),
    f("canister_status", &[], &[I32], ANY),
    f("canister_version", &[], &[I64], ANY),
    f("subnet_self_size", &[], &[A], ANY),
    f("subnet_self_copy", COPY, &[], ANY),
    f("subnet_self_node_count", &[], &[I32], ANY),
    f("msg_method_name_size", &[], &[A], INSPECT),
    f("msg_method_name_copy", COPY, &[], INSPECT),
    f("accept_message", &[], &[], INSPECT),
    f("call_new", &[A; 8], &[], CALL),
    f("call_on_cleanup", &[A, A], &[], CALL),
    f("call_data_append", &[A, A], &[], CALL),
    f("call_with_best_effort_response", &[I32], &[], CALL),
    f("call_cycles_add128", &[I64, I64], &[], CALL_CYCLES),
    f("call_perform", &[], &[I32], CALL),
    f("stable64_size", &[], &[I64], ANY_AND_START),
    f("stable64_grow", &[I64], &[I64], ANY_AND_START),
    f("stable64_write", &[I64, I64, I64], &[], ANY_AND_START),
    f("stable64_read", &[I64, I64, I64], &[], ANY_AND_START),
    f("root_key_size", &[], &[A], ROOT_KEY),
    f("root_key_copy", COPY, &[], ROOT_KEY),
    f("certified_data_set", &[A, A], &[], CERTIFIED_DATA_SET),
    f("data_certificate_present", &[], &[I32], ANY),
    f("data_certificate_size", &[], &[A], DATA_CERTIFICATE),
    f("data_certificate_copy", COPY, &[], DATA_CERTIFICATE),
    f("time", &[], &[I64], ANY),
    f("global_timer_set", &[I64], &[I64], GLOBAL_TIMER),
    f("performance_counter", &[I32], &[I64], ANY_AND_START),
    f("is_controller", &[A, A], &[I32], ANY_AND_START),
    f("in_replicated_execution", &[], &[I32], ANY_AND_START),
    f("cost_call", &[I64, I64, A], &[], ANY_AND_START),
    f("cost_create_canister", &[A], &[], ANY_AND_START),
    f("cost_http_request", &[I64, I64, A], &[], ANY_AND_START),
    f("cost_http_request_v2", &[A, A, A], &[], ANY_AND_START),
    f(
        "cost_sign_with_ecdsa",
        &[A, A, I32, A],
        &[I32],
        ANY_AND_START,
    ),
    f(
        "cost_sign_with_schnorr",
        &[A, A, I32, A],
        &[I32],
        ANY_AND_START,
    ),
    f(
        "cost_vetkd_derive_key",
        &[A, A, I32, A],
        &[I32],
        ANY_AND_START,
    ),
    f("env_var_count", &[], &[A], ANY),
    f("env_var_name_size", &[A], &[A], ANY),
    f("env_var_name_copy", &[A, A, A, A], &[], ANY),
    f("env_var_name_exists", &[A, A], &[I32], ANY),
    f("env_var_value_size", &[A, A], &[A], ANY),
    f("env_var_value_copy", &[A, A, A, A, A], &[], ANY),
    f("debug_print", &[A, A], &[], ANY_AND_START),
    f("trap", &[A, A], &[], ANY_AND_START),
    // Legacy wasm32-only imports: 64-bit cycles and the 32-bit stable memory API.
    legacy("msg_cycles_available", &[], &[I64], CYCLES_AVAILABLE),
    legacy("msg_cycles_refunded", &[], &[I64], CYCLES_REFUNDED),
    legacy("msg_cycles_accept", &[I64], &[I64], CYCLES_AVAILABLE),
    legacy("canister_cycle_balance", &[], &[I64], ANY),
    legacy("call_cycles_add", &[I64], &[], CALL_CYCLES),
    legacy("stable_size", &[], &[I32], ANY_AND_START),
    legacy("stable_grow", &[I32], &[I32], ANY_AND_START),
    legacy("stable_write", &[I32, I32, I32], &[], ANY_AND_START),
    legacy("stable_read", &[I32, I32, I32], &[], ANY_AND_START),
];

/// The table entry for `name`. Panics for a name not in the table: host functions are only
/// registered for listed names (a unit test checks the two agree).
pub(super) fn ic0_import(name: &str) -> &'static Ic0Import {
    IC0_IMPORTS
        .iter()
        .find(|import| import.name == name)
        .unwrap_or_else(|| panic!("ic0.{name} is not in the import table"))
}

/// `(i32, i32) -> (i64)`, as in error messages about a wrong signature, for a module of the
/// given memory width.
pub(super) fn signature(params: &[Ty], results: &[Ty], wasm64: bool) -> String {
    let list = |tys: &[Ty]| {
        tys.iter()
            .map(|ty| match ty.resolve(wasm64) {
                I64 => "i64",
                _ => "i32",
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}
