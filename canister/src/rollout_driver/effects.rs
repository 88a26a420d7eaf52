//! The one seam between the rollout engine and the IC: each [`ActionKind`] becomes one call to
//! the management canister (or, for a health check, to the child), and its result an engine
//! [`Outcome`]. The entry points use it too, to read the status of a canister being adopted as a
//! child or registered as a chunk store.
//!
//! Every call is bounded-wait (`Call::bounded_wait`, 300 s): the deployer then never waits on a
//! call forever, so it can always be stopped and upgraded. A bounded-wait call may end in
//! `SYS_UNKNOWN`, which becomes [`Outcome::Unknown`]: the engine never guesses, it reads the
//! child (IC interface specification, "Bounded-wait calls"). A reply that does not decode is
//! unknown too: the call took effect, but what it returned is lost.

use std::cell::Cell;
use std::future::{Future, IntoFuture};

use candid::{CandidType, Principal};
use ic_cdk::api::canister_self;
use ic_cdk::call::{Call, CallFailed};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterStatusResult, ChunkHash,
    DeleteCanisterSnapshotArgs, InstallChunkedCodeArgs, InstallCodeArgs, LoadCanisterSnapshotArgs,
    Snapshot, TakeCanisterSnapshotArgs, UpgradeFlags, UploadChunkArgs,
    WasmMemoryPersistence as IcPersistence,
};
use serde::de::DeserializeOwned;

use crate::cached_candid;
use crate::engine::{
    bounded_reject_message, reject_code, Action, ActionKind, ChildFunds, InstallOptions,
    Observation, Outcome, Reply, RunStatus, SnapshotId, WasmMemoryPersistence,
};
use crate::hash::Sha256Hash;
use crate::management_reply::{self, StatusCode};

thread_local! {
    /// Calls made and not yet answered: the deployer refuses its own upgrade while any may be
    /// answered (`state::upgrade_refusal`). A trapped callback's changes are undone, and its
    /// cleanup drops the task that awaited the call, counting that call out; calls awaited
    /// together with it are counted again (`join_calls`), since their answers will find no task.
    /// So the count may stay high, never low: then the deployer must be stopped to be upgraded,
    /// which is always safe.
    static CALLS_OUTSTANDING: Cell<u64> = const { Cell::new(0) };
}

pub fn calls_outstanding() -> u64 {
    CALLS_OUTSTANDING.get()
}

/// Awaits calls made at once, their results in order. When one's callback traps, the cleanup
/// drops them all, each counting its call out; but only that one was answered, so the others
/// still out are counted again.
pub async fn join_calls<T>(calls: impl IntoIterator<Item = impl Future<Output = T>>) -> Vec<T> {
    struct StillOut(Cell<u64>);
    impl Drop for StillOut {
        fn drop(&mut self) {
            let others = self.0.get().saturating_sub(1);
            CALLS_OUTSTANDING.set(CALLS_OUTSTANDING.get() + others);
        }
    }
    let out = StillOut(Cell::new(0));
    let out = &out;
    let calls = calls.into_iter().map(|call| async move {
        out.0.set(out.0.get() + 1);
        let result = call.await;
        out.0.set(out.0.get() - 1);
        result
    });
    futures_util::future::join_all(calls).await
}

/// Awaits a call, counted as outstanding until it is answered (or until ic-cdk drops the
/// future in the cleanup of a trapped callback).
async fn counted<F: IntoFuture>(call: F) -> F::Output {
    struct Outstanding;
    impl Drop for Outstanding {
        fn drop(&mut self) {
            CALLS_OUTSTANDING.set(CALLS_OUTSTANDING.get().saturating_sub(1));
        }
    }
    CALLS_OUTSTANDING.set(CALLS_OUTSTANDING.get() + 1);
    let _outstanding = Outstanding;
    call.await
}

/// How a call was refused: its reject code and message (interface specification, "Reject
/// codes"). A call that could not even be made counts as `SYS_TRANSIENT`: nothing happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

/// Where the module of an install comes from.
pub enum Install {
    /// The whole module, in the `install_code` message.
    Inline(Vec<u8>),
    /// The chunks of the module, already in `store`'s chunk store.
    Chunked {
        store: Principal,
        chunk_hashes: Vec<Sha256Hash>,
    },
}

/// Whether an install's outcome says that the store canister lacked a chunk the install named
/// (interface specification, `install_chunked_code`: the chunks must be in the store's chunk
/// store; the IC answers `CANISTER_ERROR` with "Error from Wasm chunk store").
pub fn store_lost_chunks(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Rejected { code, message }
        if *code == reject_code::CANISTER_ERROR && message.contains("Wasm chunk store"))
}

/// Makes the call `action` stands for. `install` is the module's source for an install action
/// and ignored otherwise.
pub async fn perform(action: &Action, install: Option<Install>) -> Outcome {
    let child = Principal::from_slice(action.child.as_bytes());
    let target = CanisterIdRecord { canister_id: child };
    match &action.kind {
        ActionKind::Stop => done(management_unit("stop_canister", target).await),
        ActionKind::Start => done(management_unit("start_canister", target).await),
        ActionKind::TakeSnapshot { replace } => {
            let arg = TakeCanisterSnapshotArgs {
                canister_id: child,
                replace_snapshot: replace.as_ref().map(|id| id.0.clone()),
                uninstall_code: None,
                sender_canister_version: None,
            };
            let method = "take_canister_snapshot";
            let reply = management_raw(method, arg).await;
            outcome(reply.and_then(|reply| {
                management_reply::decode_snapshot_id(&reply)
                    .map(|id| Reply::Snapshot(SnapshotId(id)))
                    .map_err(|error| undecodable(method, error))
            }))
        }
        ActionKind::InstallCode {
            module_hash: _,
            options,
        }
        | ActionKind::InstallChunked {
            module_hash: _,
            options,
            ..
        } => {
            let mode = upgrade_mode(options);
            let result = match install.expect("an install action comes with its module") {
                Install::Inline(wasm_module) => {
                    let arg = InstallCodeArgs {
                        mode,
                        canister_id: child,
                        wasm_module,
                        arg: options.arg.clone(),
                        sender_canister_version: None,
                    };
                    management_unit("install_code", arg).await
                }
                Install::Chunked {
                    store,
                    chunk_hashes,
                } => {
                    let ActionKind::InstallChunked { module_hash, .. } = &action.kind else {
                        unreachable!("chunks are only sent for a chunked install")
                    };
                    let arg = InstallChunkedCodeArgs {
                        mode,
                        target_canister: child,
                        store_canister: Some(store),
                        chunk_hashes_list: chunk_hashes
                            .into_iter()
                            .map(|hash| ChunkHash {
                                hash: hash.to_vec(),
                            })
                            .collect(),
                        wasm_module_hash: module_hash.0.to_vec(),
                        arg: options.arg.clone(),
                        sender_canister_version: None,
                    };
                    management_unit("install_chunked_code", arg).await
                }
            };
            done(result)
        }
        ActionKind::CheckCycles | ActionKind::ReadStatus { .. } => {
            outcome(observe(child, false).await)
        }
        ActionKind::Reconcile { list_snapshots } => outcome(observe(child, *list_snapshots).await),
        ActionKind::HealthCheck { method } => {
            let call = Call::bounded_wait(child, method).with_args(&());
            done(counted(call).await.map(|_| ()).map_err(call_error))
        }
        ActionKind::LoadSnapshot { snapshot } => {
            let arg = LoadCanisterSnapshotArgs {
                canister_id: child,
                snapshot_id: snapshot.0.clone(),
                sender_canister_version: None,
            };
            done(management_unit("load_canister_snapshot", arg).await)
        }
        ActionKind::DeleteSnapshot { snapshot } => {
            let arg = DeleteCanisterSnapshotArgs {
                canister_id: child,
                snapshot_id: snapshot.0.clone(),
            };
            done(management_unit("delete_canister_snapshot", arg).await)
        }
    }
}

/// `canister_status` of a canister the deployer should control.
pub async fn canister_status(canister_id: Principal) -> Result<CanisterStatusResult, CallError> {
    management("canister_status", CanisterIdRecord { canister_id }).await
}

/// The hashes of the chunks in `store`'s chunk store.
pub async fn stored_chunks(store: Principal) -> Result<Vec<Vec<u8>>, CallError> {
    let chunks: Vec<ChunkHash> =
        management("stored_chunks", CanisterIdRecord { canister_id: store }).await?;
    Ok(chunks.into_iter().map(|chunk| chunk.hash).collect())
}

/// Empties `store`'s chunk store.
pub async fn clear_chunk_store(store: Principal) -> Result<(), CallError> {
    management("clear_chunk_store", CanisterIdRecord { canister_id: store }).await
}

pub async fn upload_chunk(store: Principal, chunk: Vec<u8>) -> Result<(), CallError> {
    let arg = UploadChunkArgs {
        canister_id: store,
        chunk,
    };
    management::<ChunkHash>("upload_chunk", arg)
        .await
        .map(|_| ())
}

/// Whether the deployer is among the canister's controllers, as its status shows them.
pub fn controls(status: &CanisterStatusResult) -> bool {
    status.settings.controllers.contains(&canister_self())
}

/// Reads the child's run status, module hash and funds. Only those fields of the
/// `canister_status` reply are decoded ([`management_reply`]): the whole reply through the
/// `candid` crate costs about half a million instructions, twice per upgraded child.
async fn observe(child: Principal, list_snapshots: bool) -> Result<Reply, CallError> {
    let method = "canister_status";
    let reply = management_raw(method, CanisterIdRecord { canister_id: child }).await?;
    let status = management_reply::decode_child_status(&reply)
        .map_err(|error| undecodable(method, error))?;
    let snapshots = if list_snapshots {
        let listed: Vec<Snapshot> = management(
            "list_canister_snapshots",
            CanisterIdRecord { canister_id: child },
        )
        .await?;
        Some(
            listed
                .into_iter()
                .map(|snapshot| SnapshotId(snapshot.id))
                .collect(),
        )
    } else {
        None
    };
    Ok(Reply::Status(Observation {
        status: match status.status {
            StatusCode::Running => RunStatus::Running,
            StatusCode::Stopping => RunStatus::Stopping,
            StatusCode::Stopped => RunStatus::Stopped,
        },
        module_hash: status
            .module_hash
            .and_then(|hash| <[u8; 32]>::try_from(hash).ok())
            .map(crate::engine::ModuleHash),
        snapshots,
        funds: status.funds.map(|funds| ChildFunds {
            cycles: funds.cycles,
            idle_cycles_burned_per_day: funds.idle_cycles_burned_per_day,
            freezing_threshold_seconds: u64::try_from(funds.freezing_threshold).unwrap_or(u64::MAX),
        }),
    }))
}

fn upgrade_mode(options: &InstallOptions) -> CanisterInstallMode {
    CanisterInstallMode::Upgrade(Some(UpgradeFlags {
        skip_pre_upgrade: Some(options.skip_pre_upgrade),
        wasm_memory_persistence: options.wasm_memory_persistence.map(|keep| match keep {
            WasmMemoryPersistence::Keep => IcPersistence::Keep,
            WasmMemoryPersistence::Replace => IcPersistence::Replace,
        }),
    }))
}

/// Forwards an admitted proxy call (see [`crate::proxy`]) to the management canister as it
/// came: its raw argument and cycles; the reply's bytes as they came back. Bounded-wait, like
/// every call of the deployer: the CLI retries reads and uploads at fixed offsets, which are
/// idempotent.
pub async fn forward_to_management(
    method: &str,
    args: Vec<u8>,
    cycles: u128,
) -> Result<Vec<u8>, CallError> {
    let call = Call::bounded_wait(Principal::management_canister(), method)
        .take_raw_args(args)
        .with_cycles(cycles);
    let response = counted(call).await.map_err(call_error)?;
    Ok(response.into_bytes())
}

/// A bounded-wait call to the management canister. A reply that does not decode is reported
/// as `SYS_UNKNOWN`: the call happened, its result is lost.
async fn management<R: CandidType + DeserializeOwned>(
    method: &str,
    arg: impl CandidType + 'static,
) -> Result<R, CallError> {
    let reply = management_raw(method, arg).await?;
    candid::decode_one(&reply).map_err(|error| undecodable(method, error))
}

/// [`management`] for a method that answers `()`: its canonical reply is checked at a glance.
async fn management_unit(method: &str, arg: impl CandidType + 'static) -> Result<(), CallError> {
    let reply = management_raw(method, arg).await?;
    if management_reply::is_canonical_empty(&reply) {
        return Ok(());
    }
    candid::decode_one::<()>(&reply).map_err(|error| undecodable(method, error))
}

/// [`management`]'s call, its reply's bytes undecoded.
async fn management_raw(
    method: &str,
    arg: impl CandidType + 'static,
) -> Result<Vec<u8>, CallError> {
    let call = Call::bounded_wait(Principal::management_canister(), method)
        .take_raw_args(cached_candid::encode(&arg));
    // The call owns the encoded bytes and frees them once sent; freeing the argument here too
    // keeps a module or chunk off the heap while its call is in flight.
    drop(arg);
    let response = counted(call).await.map_err(call_error)?;
    Ok(response.into_bytes())
}

/// A reply that does not decode: the call happened, its result is lost (`SYS_UNKNOWN`).
fn undecodable(method: &str, error: impl std::fmt::Display) -> CallError {
    CallError {
        code: reject_code::SYS_UNKNOWN,
        message: format!("the reply of {method} does not decode: {error}"),
    }
}

fn call_error(failed: CallFailed) -> CallError {
    match failed {
        CallFailed::CallRejected(rejected) => CallError {
            code: rejected.raw_reject_code(),
            message: bounded_reject_message(rejected.reject_message()),
        },
        other => CallError {
            code: reject_code::SYS_TRANSIENT,
            message: other.to_string(),
        },
    }
}

fn done(result: Result<(), CallError>) -> Outcome {
    outcome(result.map(|()| Reply::Done))
}

fn outcome(result: Result<Reply, CallError>) -> Outcome {
    match result {
        Ok(reply) => Outcome::Ok(reply),
        Err(error) if error.code == reject_code::SYS_UNKNOWN => Outcome::Unknown,
        Err(CallError { code, message }) => Outcome::Rejected { code, message },
    }
}

/// Ends the running message, to resume in a later one: a call to the deployer's own `version`
/// (cheap, and answered to the deployer as to a caller with a role). A start spreads its
/// planning over messages this way; the caller's reply waits for the last. Counted as any
/// call, so the deployer refuses its upgrade until the start is over. Returns whether the call
/// came back; when it did not (the deployer is stopping, or its queues are full) the caller goes
/// on in the message it is in.
pub async fn next_message() -> bool {
    counted(Call::bounded_wait(canister_self(), "version"))
        .await
        .is_ok()
}
