//! Every reject the replica model produces, with the replica's error code and text.
//!
//! The `IC0xxx` codes are those of the replica's `ErrorCode` enum: the leading digit is the reject
//! code (IC interface specification, "Reject codes"), so `IC05xx` is always `CANISTER_ERROR`.
//! Messages follow the replica's wording (`canister_manager`, `HypervisorError`, the ingress filter);
//! the "Consider ..." help suffixes the replica appends are left out.

use crate::types::{CanisterRunStatus, Principal, Reject, RejectCode};

fn reject(code: RejectCode, error_code: &str, message: impl Into<String>) -> Reject {
    debug_assert!(
        error_code_row(error_code).is_some_and(|row| row.reject == code),
        "{error_code} with {code:?} is not in ERROR_CODES"
    );
    Reject::new(code, error_code, message)
}

/// One of the replica's `ErrorCode`s the simulator answers with: its number (`IC0` + 3 digits),
/// the replica's name for it, its reject code (the leading digit), and where the simulator uses
/// it.
#[derive(Debug)]
pub struct ErrorCodeRow {
    pub code: u16,
    pub name: &'static str,
    pub reject: RejectCode,
    pub used_for: &'static str,
}

const fn row(
    code: u16,
    name: &'static str,
    reject: RejectCode,
    used_for: &'static str,
) -> ErrorCodeRow {
    ErrorCodeRow {
        code,
        name,
        reject,
        used_for,
    }
}

use RejectCode::{
    CanisterError as E5, CanisterReject as R4, DestinationInvalid as D3, SysTransient as T2,
    SysUnknown as U6,
};

/// Every error code the simulator answers with: the one place its codes are written down. A
/// test compares numbers and names with the `ErrorCode` enum the `pocket-ic` crate mirrors from
/// the replica; debug builds check every reject made here against this table (and management
/// methods' rejects against [`MANAGEMENT_METHOD_ERRORS`]).
pub const ERROR_CODES: &[ErrorCodeRow] = &[
    row(206, "StopCanisterRequestTimeout", T2, "a stop_canister call past its timeout"),
    row(207, "CanisterOutOfCycles", T2, "a frozen canister, an execution or install it cannot pay for"),
    row(209, "CanisterInstallCodeRateLimited", T2, "install_code past the install instruction rate"),
    row(301, "CanisterNotFound", D3, "no such canister (or no route to it)"),
    row(305, "CanisterSnapshotNotFound", D3, "no such snapshot on the canister's subnet"),
    row(403, "InsufficientCyclesForCreateCanister", R4, "create_canister without the creation fee"),
    row(404, "SubnetNotFound", R4, "subnet_info / node_metrics_history of an unknown subnet"),
    row(406, "CanisterRejectedMessage", R4, "msg_reject, inspect_message refusal, ingress filter, unknown threshold key, a fee not attached, snapshot rules"),
    row(408, "InvalidManagementPayload", R4, "an argument that does not decode or that the method refuses; snapshot slices"),
    row(409, "CanisterSnapshotImmutable", R4, "data uploaded into a snapshot that was taken"),
    row(502, "CanisterTrapped", E5, "a trap (Wasm trap, out of bounds...)"),
    row(503, "CanisterCalledTrap", E5, "ic0.trap"),
    row(504, "CanisterContractViolation", E5, "System API misuse, request over 10 MiB, invalid settings, EOP upgrade options, chunk store limits"),
    row(505, "CanisterInvalidWasm", E5, "a module that fails validation"),
    row(506, "CanisterDidNotReply", E5, "an execution that ended without a reply"),
    row(508, "CanisterStopped", E5, "a message to a stopped canister"),
    row(509, "CanisterStopping", E5, "a message to a stopping canister"),
    row(510, "CanisterNotStopped", E5, "delete_canister (or a snapshot, when configured) of a running canister"),
    row(511, "CanisterStoppingCancelled", E5, "a stop_canister call cancelled by start_canister"),
    row(512, "CanisterInvalidController", E5, "a management call by someone who is not a controller"),
    row(514, "CanisterNonEmpty", E5, "install on a canister that has code"),
    row(520, "InsufficientCyclesInCall", E5, "a call with fewer cycles than minimum_incoming_canister_call_cycles"),
    row(522, "CanisterInstructionLimitExceeded", E5, "an execution past its instruction limit"),
    row(525, "QueryCallGraphTooDeep", E5, "composite queries nested too deep"),
    row(527, "CompositeQueryCalledInReplicatedMode", E5, "a composite query called as an update or by a canister"),
    row(536, "CanisterMethodNotFound", E5, "no such method (or management method)"),
    row(537, "CanisterWasmModuleNotFound", E5, "a message to an empty canister"),
    row(539, "CanisterWasmMemoryLimitExceeded", E5, "growing the heap past wasm_memory_limit"),
    row(601, "DeadlineExpired", U6, "a bounded-wait call past its deadline"),
];

/// The row of `IC0xxx`.
pub fn error_code_row(error_code: &str) -> Option<&'static ErrorCodeRow> {
    let number: u16 = error_code.strip_prefix("IC")?.parse().ok()?;
    ERROR_CODES.iter().find(|row| row.code == number)
}

/// Codes any management method may answer with: its target does not exist, the caller may not
/// call it (ingress filter, controllers), the argument does not decode, the target cannot pay.
pub const MANAGEMENT_COMMON_ERRORS: &[u16] = &[207, 301, 406, 408, 512];

/// Per management method, the codes it answers with besides [`MANAGEMENT_COMMON_ERRORS`].
pub const MANAGEMENT_METHOD_ERRORS: &[(&str, &[u16])] = &[
    ("create_canister", &[403, 504]),
    ("update_settings", &[504]),
    (
        "install_code",
        &[209, 502, 503, 504, 505, 514, 522, 537, 539],
    ),
    ("upload_chunk", &[504]),
    ("clear_chunk_store", &[]),
    ("stored_chunks", &[]),
    (
        "install_chunked_code",
        &[209, 502, 503, 504, 505, 514, 522, 537, 539],
    ),
    ("uninstall_code", &[]),
    ("start_canister", &[]),
    ("stop_canister", &[206, 511]),
    ("canister_status", &[]),
    ("canister_info", &[]),
    ("canister_metadata", &[]),
    ("take_canister_snapshot", &[305, 510]),
    ("load_canister_snapshot", &[305, 510]),
    ("list_canister_snapshots", &[]),
    ("read_canister_snapshot_metadata", &[305]),
    ("read_canister_snapshot_data", &[305, 504]),
    ("upload_canister_snapshot_metadata", &[305]),
    ("upload_canister_snapshot_data", &[305, 409, 504]),
    ("delete_canister_snapshot", &[305]),
    ("delete_canister", &[510]),
    ("deposit_cycles", &[]),
    ("raw_rand", &[]),
    ("ecdsa_public_key", &[]),
    ("sign_with_ecdsa", &[]),
    ("schnorr_public_key", &[]),
    ("sign_with_schnorr", &[]),
    ("vetkd_public_key", &[]),
    ("vetkd_derive_key", &[]),
    ("http_request", &[]),
    ("bitcoin_get_balance", &[]),
    ("bitcoin_get_utxos", &[]),
    ("bitcoin_send_transaction", &[]),
    ("bitcoin_get_current_fee_percentiles", &[]),
    ("bitcoin_get_block_headers", &[]),
    ("subnet_info", &[404]),
    ("node_metrics_history", &[404]),
    ("provisional_create_canister_with_cycles", &[504]),
    ("provisional_top_up_canister", &[]),
];

/// Whether the table lets `method` answer with `reject` (debug builds check every answer).
pub(crate) fn management_error_listed(method: &str, reject: &Reject) -> bool {
    let Some(code) = reject.error_code.as_deref().and_then(error_code_row) else {
        return reject.error_code.is_none();
    };
    MANAGEMENT_COMMON_ERRORS.contains(&code.code)
        || MANAGEMENT_METHOD_ERRORS
            .iter()
            .any(|(name, codes)| *name == method && codes.contains(&code.code))
        // An unknown method name.
        || (code.code == 536 && !MANAGEMENT_METHOD_ERRORS.iter().any(|(name, _)| *name == method))
}

/// IC0504 (`CanisterContractViolation`): an upgrade of a canister with enhanced orthogonal
/// persistence without `wasm_memory_persistence` (replica: `MissingUpgradeOptionError`).
pub(crate) fn missing_upgrade_option(message: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0504",
        format!("Missing upgrade option: {message}"),
    )
}

/// IC0504: `wasm_memory_persistence = opt keep` into a module without enhanced orthogonal
/// persistence (replica: `InvalidUpgradeOptionError`).
pub(crate) fn invalid_upgrade_option(message: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0504",
        format!("Invalid upgrade option: {message}"),
    )
}

/// A call that attached fewer cycles than the callee's `minimum_incoming_canister_call_cycles`
/// (spec: CANISTER_ERROR). The replica's `ErrorCode` for calls short of cycles is
/// `InsufficientCyclesInCall` (IC0520); the wording is the simulator's.
pub(crate) fn too_few_incoming_cycles(callee: Principal, attached: u128, minimum: u128) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0520",
        format!(
            "Canister {callee} requires at least {minimum} cycles attached to calls from other canisters, but the call attached {attached}."
        ),
    )
}

/// IC0406: a threshold key no subnet holds (replica: "Requested unknown threshold key").
pub(crate) fn unknown_threshold_key(key: &str, existing: &str) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("Requested unknown threshold key: {key}, existing keys: {existing}"),
    )
}

/// IC0406: a management method called with fewer cycles than its fee.
pub(crate) fn fee_not_attached(method: &str, sent: u128, required: u128) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("{method} request sent with {sent} cycles, but {required} cycles are required."),
    )
}

/// An HTTPS outcall that failed outside the replica (the transform, the response size): the
/// replica answers SYS_FATAL without an `ErrorCode`.
pub(crate) fn http_outcall_failed(message: String) -> Reject {
    Reject {
        code: RejectCode::SysFatal,
        message,
        error_code: None,
    }
}

/// IC0408: a snapshot data range outside the snapshot (replica `InvalidSlice`).
pub(crate) fn snapshot_invalid_slice(offset: u64, size: u64) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0408",
        format!(
            "Invalid subslice into wasm module / main memory / stable memory: offset: {offset}, size: {size}"
        ),
    )
}

/// IC0408: a read of more than 2,000,000 bytes (replica `SliceTooLarge`).
pub(crate) fn snapshot_slice_too_large(requested: u64, allowed: u64) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0408",
        format!("Requested slice too large: {requested} > {allowed}"),
    )
}

/// IC0409: data uploaded into a snapshot that was taken, not created by a metadata upload.
pub(crate) fn snapshot_immutable() -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0409",
        "Only canister snapshots created by metadata upload can be mutated.",
    )
}

/// IC0525: composite queries called one another too deep.
pub(crate) fn query_call_graph_too_deep(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0525",
        format!(
            "Error from Canister {canister}: Composite query call graph reached the maximum depth."
        ),
    )
}

/// IC0301: the destination does not exist (or was deleted).
pub(crate) fn canister_not_found(canister: Principal) -> Reject {
    reject(
        RejectCode::DestinationInvalid,
        "IC0301",
        format!("Canister {canister} not found"),
    )
}

/// IC0301: a principal outside every subnet's canister id range.
pub(crate) fn no_route(canister: Principal) -> Reject {
    reject(
        RejectCode::DestinationInvalid,
        "IC0301",
        format!("No route to canister {canister}"),
    )
}

fn not_running_code(status: CanisterRunStatus) -> &'static str {
    match status {
        CanisterRunStatus::Stopped => "IC0508",
        _ => "IC0509",
    }
}

/// A call that reached a canister which is not running (checked at submission and at execution).
pub(crate) fn not_running(canister: Principal, status: CanisterRunStatus) -> Reject {
    reject(
        RejectCode::CanisterError,
        not_running_code(status),
        format!("Canister {canister} is not running"),
    )
}

/// A request or ingress message inducted into a canister that is stopping or stopped.
pub(crate) fn induction_not_running(canister: Principal, status: CanisterRunStatus) -> Reject {
    let state = match status {
        CanisterRunStatus::Stopped => "stopped",
        _ => "stopping",
    };
    reject(
        RejectCode::CanisterError,
        not_running_code(status),
        format!("Canister {canister} is {state}"),
    )
}

/// A non-replicated query to a stopped canister.
pub(crate) fn query_to_stopped(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0508",
        format!("Canister {canister} is stopped and therefore does not have a CallContextManager"),
    )
}

/// IC0537: the canister is empty.
pub(crate) fn wasm_module_not_found(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0537",
        format!(
            "Error from Canister {canister}: Attempted to execute a message, but the canister contains no Wasm module."
        ),
    )
}

/// Which export a caller looked for, for [`method_not_found`].
#[derive(Clone, Copy)]
pub(crate) enum MethodKind {
    Update,
    Query,
}

/// IC0536: no such exported method.
pub(crate) fn method_not_found(canister: Principal, kind: MethodKind, method: &str) -> Reject {
    let kind = match kind {
        MethodKind::Update => "update",
        MethodKind::Query => "query",
    };
    reject(
        RejectCode::CanisterError,
        "IC0536",
        format!("Error from Canister {canister}: Canister has no {kind} method '{method}'."),
    )
}

/// IC0527: a composite query reached through an update call or an inter-canister call.
pub(crate) fn composite_query_in_replicated_mode(canister: Principal, method: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0527",
        format!(
            "Error from Canister {canister}: Composite query method '{method}' cannot be called in replicated mode."
        ),
    )
}

/// A trap, with the replica's error code for its kind. The exec layer words trap messages as the
/// replica's `HypervisorError` does, so the kind follows from the message.
pub(crate) fn trapped(canister: Principal, trap: &str) -> Reject {
    const CODES: [(&str, &str); 5] = [
        ("Canister called `ic0.trap`", "IC0503"),
        ("Canister violated contract", "IC0504"),
        ("Canister exceeded the limit of", "IC0522"),
        ("Canister exceeded its current Wasm memory limit", "IC0539"),
        ("Canister has no ", "IC0536"),
    ];
    let error_code = CODES
        .iter()
        .find(|(prefix, _)| trap.starts_with(prefix))
        .map_or("IC0502", |(_, code)| code);
    reject(
        RejectCode::CanisterError,
        error_code,
        format!("Error from Canister {canister}: {trap}"),
    )
}

/// IC0506: the execution ended without a reply and without outstanding calls.
pub(crate) fn did_not_reply(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0506",
        format!("Canister {canister} did not reply to the call"),
    )
}

/// IC0406: `msg_reject` by the callee, as an ingress sender sees it.
pub(crate) fn canister_rejected(message: String) -> Reject {
    reject(RejectCode::CanisterReject, "IC0406", message)
}

/// IC0406: `canister_inspect_message` did not call `accept_message`.
pub(crate) fn inspect_message_refused(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("Error from Canister {canister}: Canister rejected the message"),
    )
}

/// A request whose payload is larger than the limit for its route (2 MiB across subnets).
pub(crate) fn request_too_large(callee: Principal, size: usize, limit: usize) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0504",
        format!(
            "Canister violated contract: the request to {callee} has a payload of {size} bytes, more than the limit of {limit} bytes"
        ),
    )
}

/// An ingress message above the 2 MiB ingress limit (the boundary node refuses it before any
/// replica sees it, so there is no replica error code).
pub(crate) fn ingress_too_large(size: usize, limit: usize) -> Reject {
    Reject {
        code: RejectCode::SysFatal,
        message: format!(
            "Request payload too large: {size} bytes exceeds the ingress limit of {limit} bytes"
        ),
        error_code: None,
    }
}

/// IC0601: a bounded-wait call whose deadline passed before its response arrived.
pub(crate) fn deadline_expired() -> Reject {
    reject(
        RejectCode::SysUnknown,
        "IC0601",
        "Call deadline has expired.",
    )
}

/// IC0406: an open call context of a canister whose code was uninstalled.
pub(crate) fn uninstalled() -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        "Canister has been uninstalled.",
    )
}

/// IC0512: the management canister's controller check.
pub(crate) fn not_a_controller(
    canister: Principal,
    controllers: &[Principal],
    sender: Principal,
) -> Reject {
    let controllers = controllers
        .iter()
        .map(|c| c.to_text())
        .collect::<Vec<_>>()
        .join(" ");
    reject(
        RejectCode::CanisterError,
        "IC0512",
        format!(
            "Only the controllers of the canister {canister} can control it.\nCanister's controllers: {controllers}\nSender's ID: {sender}"
        ),
    )
}

/// IC0512: the ingress filter's controller check for management canister methods.
pub(crate) fn ingress_not_a_controller(canister: Principal, method: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0512",
        format!("Only controllers of canister {canister} can call ic00 method {method}"),
    )
}

/// IC0406: a management canister method that users may not call by ingress.
pub(crate) fn only_canisters_can_call(method: &str) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("Only canisters can call ic00 method {method}"),
    )
}

/// IC0536: a method the management canister does not have.
pub(crate) fn unknown_management_method(method: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0536",
        format!("Management canister has no method '{method}'"),
    )
}

/// IC0408: an argument that does not decode as the method's Candid type.
pub(crate) fn invalid_management_payload(method: &str, error: &str) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0408",
        format!("Failed to decode payload for ic00 method {method}: {error}"),
    )
}

/// IC0408: an argument that decodes but that the method refuses (a stand-in's checks).
pub(crate) fn invalid_management_argument(method: &str, error: &str) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0408",
        format!("Invalid argument for ic00 method {method}: {error}"),
    )
}

/// IC0404: `subnet_info` / `node_metrics_history` of a subnet that does not exist.
pub(crate) fn subnet_not_found(subnet: Principal) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0404",
        format!("Subnet {subnet} not found"),
    )
}

/// IC0504: settings that fail validation (too many controllers, environment variables...).
pub(crate) fn invalid_settings(message: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0504",
        format!("Could not validate the settings: {message}"),
    )
}

/// IC0514: `install` mode on a canister that already has code.
pub(crate) fn canister_non_empty(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0514",
        format!(
            "Canister {canister} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."
        ),
    )
}

/// IC0505: a module that does not compile or validate.
pub(crate) fn invalid_wasm(canister: Principal, message: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0505",
        format!("Error from Canister {canister}: Canister's Wasm module is not valid: {message}"),
    )
}

/// IC0206: `stop_canister` waited `stop_timeout_nanos` and the canister is still stopping.
pub(crate) fn stop_timed_out(canister: Principal) -> Reject {
    reject(
        RejectCode::SysTransient,
        "IC0206",
        format!("Stop canister request timed out for canister {canister}"),
    )
}

/// IC0511: `start_canister` cancelled a pending `stop_canister`.
pub(crate) fn stop_cancelled(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0511",
        format!("Canister {canister}'s stop request was cancelled."),
    )
}

/// IC0510: `delete_canister` on a canister that is not stopped.
pub(crate) fn delete_not_stopped(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0510",
        format!("Canister {canister} must be stopped before it is deleted."),
    )
}

/// IC0512: a canister asking the management canister to delete itself.
pub(crate) fn delete_self(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0512",
        format!("Canister {canister} cannot delete itself."),
    )
}

/// IC0403: `create_canister` with fewer cycles attached than the creation fee.
pub(crate) fn create_canister_fee(sent: u128, required: u128) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0403",
        format!(
            "Creating a canister requires a fee of {required} that is deducted from the canister's initial balance but only {sent} cycles were received with the create_canister request."
        ),
    )
}

/// IC0406: a `specified_id` that cannot be used.
pub(crate) fn specified_id_unavailable(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("Unsuccessful canister creation: canister id {canister} is not available."),
    )
}

/// IC0504: the Wasm chunk store refused a chunk or a chunked installation (replica
/// `WasmChunkStoreError`).
pub(crate) fn chunk_store_error(message: &str) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0504",
        format!("Error from Wasm chunk store: {message}."),
    )
}

/// `install_chunked_code` names a hash the store canister does not hold.
pub(crate) fn chunk_not_found(store: Principal, hash: &[u8]) -> Reject {
    chunk_store_error(&format!(
        "Chunk with hash {} was not found in the Wasm chunk store of canister {store}",
        hex::encode(hash)
    ))
}

/// `install_chunked_code`: the assembled module's SHA-256 is not `wasm_module_hash`.
pub(crate) fn chunked_module_hash_mismatch(actual: &[u8], given: &[u8]) -> Reject {
    chunk_store_error(&format!(
        "Wasm module hash {} does not match given hash {}",
        hex::encode(actual),
        hex::encode(given)
    ))
}

/// IC0305: no snapshot with this id belongs to a canister of the subnet.
pub(crate) fn snapshot_not_found(canister: Principal, snapshot_id: &[u8]) -> Reject {
    reject(
        RejectCode::DestinationInvalid,
        "IC0305",
        format!(
            "Could not find the snapshot ID {} for canister {canister}.",
            hex::encode(snapshot_id)
        ),
    )
}

/// IC0406: the snapshot belongs to another canister.
pub(crate) fn snapshot_invalid_ownership(canister: Principal, snapshot_id: &[u8]) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!(
            "The snapshot {} does not belong to canister {canister}.",
            hex::encode(snapshot_id)
        ),
    )
}

/// IC0406: `take_canister_snapshot` on a canister without code.
pub(crate) fn snapshot_of_empty_canister(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("Failed to create snapshot for empty canister {canister}."),
    )
}

/// IC0406: `take_canister_snapshot` without `replace_snapshot` on a canister that has the
/// maximum number of snapshots.
pub(crate) fn snapshot_limit_reached(canister: Principal, limit: usize) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!(
            "Canister {canister} has reached the maximum number of snapshots allowed: {limit}."
        ),
    )
}

/// IC0406: loading another canister's snapshot without controlling that canister.
pub(crate) fn snapshot_not_controller(
    canister: Principal,
    snapshot_id: &[u8],
    sender: Principal,
) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!(
            "Only a controller of the canister that snapshot {} belongs to can load it on canister {canister}. Sender: {sender}.",
            hex::encode(snapshot_id)
        ),
    )
}

/// IC0406: the snapshot's memories could not be turned back into an instance.
pub(crate) fn snapshot_not_loadable(
    canister: Principal,
    snapshot_id: &[u8],
    reason: &str,
) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!(
            "Snapshot {} is not loadable on canister {canister}: {reason}",
            hex::encode(snapshot_id)
        ),
    )
}

/// IC0510: take or load on a canister that is not stopped, in the simulator's strict snapshot
/// mode (`SimConfig::snapshots_require_stopped`; the IC itself does not refuse).
pub(crate) fn snapshot_requires_stopped(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterError,
        "IC0510",
        format!(
            "Canister {canister} must be stopped before a snapshot is taken or loaded (strict snapshot mode)."
        ),
    )
}

/// IC0406: `canister_metadata` on an empty canister.
pub(crate) fn metadata_without_module(canister: Principal) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("The canister {canister} has no Wasm module and hence no metadata is available."),
    )
}

/// IC0406: `canister_metadata` for a section the module does not have.
pub(crate) fn metadata_section_not_found(canister: Principal, name: &str) -> Reject {
    reject(
        RejectCode::CanisterReject,
        "IC0406",
        format!("The canister {canister} has no metadata section with the name {name}."),
    )
}

/// IC0207: the canister cannot pay for a message without going below its freezing limit (a
/// frozen canister rejects every call this way).
pub(crate) fn out_of_cycles(canister: Principal, missing: u128) -> Reject {
    reject(
        RejectCode::SysTransient,
        "IC0207",
        format!(
            "Canister {canister} is out of cycles: please top up the canister with at least {missing} additional cycles"
        ),
    )
}

/// IC0207 as the ingress filter words it for a sender that does not control the canister.
pub(crate) fn out_of_cycles_hidden(canister: Principal) -> Reject {
    reject(
        RejectCode::SysTransient,
        "IC0207",
        format!("Canister {canister} is out of cycles"),
    )
}

/// IC0207: `install_code` cannot prepay its instruction limit above the freezing limit.
pub(crate) fn install_out_of_cycles(canister: Principal, missing: u128) -> Reject {
    let cause = out_of_cycles(canister, missing).message;
    reject(
        RejectCode::SysTransient,
        "IC0207",
        format!("Canister installation failed with `{cause}`."),
    )
}

/// IC0207: a query to a frozen canister.
pub(crate) fn query_to_frozen(canister: Principal) -> Reject {
    reject(
        RejectCode::SysTransient,
        "IC0207",
        format!(
            "Canister {canister} is unable to process query calls because it's frozen. Please top up the canister with cycles and try again."
        ),
    )
}

/// IC0209: `install_code` on a canister whose earlier installs exceeded the install rate.
pub(crate) fn install_rate_limited(canister: Principal) -> Reject {
    reject(
        RejectCode::SysTransient,
        "IC0209",
        format!(
            "Canister {canister} is rate limited because it executed too many instructions in the previous install_code messages. Please retry installation after several minutes."
        ),
    )
}
