//! The canister surface: each method takes the caller and the time from the IC, authorizes the
//! caller against the method's role (see [`crate::access`]), and hands the work to the plain
//! modules. A rollout, once started, resumed or recovered here, is driven by
//! `crate::rollout_driver`.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use candid::Principal;
use ic_cdk::api::{accept_message, msg_caller, msg_method_name, subnet_self, time};
use ic_cdk::{init, inspect_message, post_upgrade, pre_upgrade, query, trap, update};
use ic_cdk_timers::TimerId;
use ic_http_certification::utils::{
    add_skip_certification_header, skip_certification_certified_data,
};
use ic_http_certification::{HttpRequest, HttpResponse};
use ic_stable_structures::DefaultMemoryImpl;
use serde_bytes::ByteBuf;

use crate::access::{self, Method};
use crate::backup::{
    ExportManifest, ReadExportArg, RestorePieceArg, RestoreProgress, RestoreSummary,
};
use crate::cached_candid::{self, Replied};
use crate::dashboard::{self, FleetSummary, HostFigures, StateReadings};
use crate::engine::{Command, ModuleHash};
use crate::error::{Error, ErrorKind};
use crate::fleet::{
    ChildInfo, ChildPage, FleetError, Label, ListChildrenArg, MAX_ADOPTED_PER_CALL,
};
use crate::governance::{
    self, ControlProposal, GovernanceSettings, GovernedAction, RolloutPreview,
};
use crate::proxy::{
    self, ListProxyCallsArg, ProxyArgs, ProxyCall, ProxyCallPage, ProxyError, ProxyOk, ProxyResult,
};
use crate::release_store::StorageStats;
use crate::releases::{
    ListReleasesArg, Release, ReleaseChunkArg, ReleasePage, ReleaseSelector, SetReleaseBlessingArg,
};
use crate::roles::{Role, RoleAssignment};
use crate::rollout_driver::{self, effects};
use crate::rollouts::{
    AdoptChildrenArg, ChildHistory, ChildHistoryArg, ChunkStore, EventPage, ListEventsArg,
    ListRolloutsArg, Preparation, PrepareUpgradeArg, RestoreChildArg, RolloutInfo, RolloutPage,
    StartArg, StartBackupRunArg, StartPlan, StartRolloutArg, UpgradeReadiness,
};
use crate::state::{upgrade_refusal, InitArg, State, UpgradeArg};
use crate::uploads::{
    UploadChunkArg, UploadOpenArg, UploadSettings, UploadSettingsUpdate, UploadStatus,
    TOMBSTONE_RETENTION_NANOS,
};
use crate::version::VersionInfo;

thread_local! {
    /// Set by `init` or `post_upgrade`, which the IC runs before any other method.
    static STATE: RefCell<Option<State<DefaultMemoryImpl>>> = const { RefCell::new(None) };
    /// The pending sweep of expired uploads: its time and timer. Timers live on the heap, so
    /// `post_upgrade` schedules it again from the stored uploads.
    static SWEEP: Cell<Option<(u64, TimerId)>> = const { Cell::new(None) };
}

pub(crate) fn read_state<R>(f: impl FnOnce(&State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with_borrow(|state| f(state.as_ref().expect("state is set by init/post_upgrade")))
}

pub(crate) fn mutate_state<R>(f: impl FnOnce(&mut State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with_borrow_mut(|state| f(state.as_mut().expect("state is set by init/post_upgrade")))
}

/// Runs a query's read. Run as a replicated call (from a canister, or as an update), it runs
/// only for callers holding a role (`access::replicated_execution`): the deployer pays for it.
fn reading<R>(method: Method, f: impl FnOnce(&State<DefaultMemoryImpl>) -> R) -> R {
    let caller = msg_caller();
    read_state(|state| {
        // The deployer calls its own `version` between two messages of a start.
        if ic_cdk::api::in_replicated_execution() && caller != ic_cdk::api::canister_self() {
            let roles = state.roles.roles_of(caller);
            if let Err(refusal) = access::replicated_execution(method, &roles) {
                trap(refusal.to_string());
            }
        }
        f(state)
    })
}

/// Runs a query's read for a caller holding the role `method` requires.
fn viewing<R>(
    method: Method,
    f: impl FnOnce(&State<DefaultMemoryImpl>) -> Result<R, Error>,
) -> Result<R, Error> {
    let caller = msg_caller();
    reading(method, |state| {
        state.authorize(caller, method)?;
        f(state)
    })
}

/// Runs `f` on the state for an authorized caller of `method`.
fn authorized<R>(
    method: Method,
    f: impl FnOnce(&mut State<DefaultMemoryImpl>, Principal) -> Result<R, Error>,
) -> Result<R, Error> {
    let caller = msg_caller();
    mutate_state(|state| {
        state.authorize(caller, method)?;
        f(state, caller)
    })
}

#[init]
fn init(arg: InitArg) {
    match State::init(DefaultMemoryImpl::default(), arg, msg_caller()) {
        Ok(state) => STATE.set(Some(state)),
        Err(error) => trap(format!("deployer init refused: {error}")),
    }
    rollout_driver::start_watchdog();
    warm_query_replies();
    ic_cdk::api::certified_data_set(skip_certification_certified_data());
}

/// The reply types of the queries, whose Candid headers a query cannot keep (see
/// [`cached_candid::warm`]). A type missing here costs its query the header's encoding each
/// time (about 2 M instructions for a `Result<_, Error>`), nothing else.
fn warm_query_replies() {
    use cached_candid::warm;
    warm::<Vec<RoleAssignment>>();
    warm::<Vec<Role>>();
    warm::<VersionInfo>();
    warm::<Result<UploadStatus, Error>>();
    warm::<UploadSettings>();
    warm::<ReleasePage>();
    warm::<Result<Release, Error>>();
    warm::<Result<ByteBuf, Error>>();
    warm::<StorageStats>();
    warm::<Result<ChildInfo, Error>>();
    warm::<Result<ChildPage, Error>>();
    warm::<Result<RolloutInfo, Error>>();
    warm::<Result<RolloutPage, Error>>();
    warm::<Result<ChildHistory, Error>>();
    warm::<Result<EventPage, Error>>();
    warm::<HttpResponse>();
    warm::<Result<FleetSummary, Error>>();
    warm::<Result<Vec<UploadStatus>, Error>>();
    warm::<Result<Vec<ChunkStore>, Error>>();
    warm::<Result<RolloutPreview, Error>>();
    warm::<Result<String, String>>();
    warm::<GovernanceSettings>();
}

/// Serializes nothing (all state is in stable structures): it only refuses an upgrade that
/// would hand the answers of outstanding calls to the new module.
#[pre_upgrade]
fn pre_upgrade() {
    let stopped = ic_cdk::api::canister_status() == ic_cdk::api::CanisterStatusCode::Stopped;
    if let Some(refusal) = upgrade_refusal(stopped, effects::calls_outstanding()) {
        trap(refusal);
    }
    // The restore's pieces and its cursor are on the heap: an upgrade would leave a part written.
    if let Some(writing) = read_state(State::restore_being_written) {
        trap(format!("deployer upgrade refused: {writing}"));
    }
}

#[post_upgrade]
fn post_upgrade(arg: Option<UpgradeArg>) {
    match State::post_upgrade(DefaultMemoryImpl::default(), arg.unwrap_or_default()) {
        Ok(state) => STATE.set(Some(state)),
        Err(error) => trap(format!("deployer upgrade refused: {error}")),
    }
    schedule_next_sweep();
    rollout_driver::start_watchdog();
    rollout_driver::recover();
    warm_query_replies();
    // The deployer certifies nothing but this: gateways skip verifying its HTTP responses,
    // as the canister itself decided (`ic-http-certification`'s skip-certification).
    ic_cdk::api::certified_data_set(skip_certification_certified_data());
}

/// Refuses ingress that would be refused anyway, before the deployer pays for executing it.
#[inspect_message]
fn inspect_message() {
    let method = msg_method_name();
    let caller = msg_caller();
    // While a restore is being written, so are the roles: every method answers with where the
    // commit stands, and the commit goes on for any caller (see `State::authorize`).
    if read_state(|state| state.restore_being_written().is_some()) {
        accept_message();
        return;
    }
    let (roles, governance) =
        read_state(|state| (state.roles.roles_of(caller), state.governance()));
    match access::inspect(&method, ic0::msg_arg_data_size(), &roles) {
        Ok(()) => {}
        Err(refusal) => trap(refusal.to_string()),
    }
    let method = Method::from_name(&method).expect("inspect knows the method");
    if let Err(refusal) = governance.check(caller, method) {
        trap(Error::from(refusal).to_string());
    }
    accept_message();
}

#[update(manual_reply = true)]
fn add_role(principal: Principal, role: Role) -> Replied<Result<(), Error>> {
    cached_candid::reply(|| {
        authorized(Method::AddRole, |state, _| {
            state.roles.grant(principal, role)
        })
    })
}

#[update(manual_reply = true)]
fn remove_role(principal: Principal, role: Role) -> Replied<Result<(), Error>> {
    cached_candid::reply(|| {
        authorized(Method::RemoveRole, |state, _| {
            state.roles.revoke(principal, role)
        })
    })
}

/// Public: who governs the deployer, and whether it is governance-only.
#[query(manual_reply = true)]
fn governance_settings() -> Replied<GovernanceSettings> {
    cached_candid::reply(|| reading(Method::GovernanceSettings, |state| state.governance()))
}

/// Public: who holds which role is part of the deployer's governance, not a secret.
#[query(manual_reply = true)]
fn list_roles() -> Replied<Vec<RoleAssignment>> {
    cached_candid::reply(|| reading(Method::ListRoles, |state| state.roles.list()))
}

#[query(manual_reply = true)]
fn my_roles() -> Replied<Vec<Role>> {
    cached_candid::reply(|| {
        let caller = msg_caller();
        reading(Method::MyRoles, |state| state.roles.roles_of(caller))
    })
}

#[query(manual_reply = true)]
fn version() -> Replied<VersionInfo> {
    cached_candid::reply(|| reading(Method::Version, |_| VersionInfo::of_this_build()))
}

#[update(manual_reply = true)]
fn upload_open(arg: UploadOpenArg) -> Replied<Result<UploadStatus, Error>> {
    cached_candid::reply(|| {
        let status = authorized(Method::UploadOpen, |state, caller| {
            state.release_store.open_upload(arg, caller, time())
        })?;
        sweep_no_later_than(status.expires_at);
        Ok(status)
    })
}

#[update(manual_reply = true)]
fn upload_chunk(arg: UploadChunkArg) -> Replied<Result<UploadStatus, Error>> {
    cached_candid::reply(|| {
        // A chunk only moves its upload's expiry later, so the pending sweep stays early enough.
        authorized(Method::UploadChunk, |state, _| {
            state.release_store.put_chunk(arg, time())
        })
    })
}

#[query(manual_reply = true)]
fn upload_status(upload_id: u64) -> Replied<Result<UploadStatus, Error>> {
    cached_candid::reply(|| {
        let caller = msg_caller();
        reading(Method::UploadStatus, |state| {
            state.authorize(caller, Method::UploadStatus)?;
            state.release_store.upload_status(upload_id, time())
        })
    })
}

/// The uploads open now (at most `max_open_uploads`), to resume or abort.
#[query(manual_reply = true)]
fn list_uploads() -> Replied<Result<Vec<UploadStatus>, Error>> {
    cached_candid::reply(|| {
        viewing(Method::ListUploads, |state| {
            Ok(state.release_store.list_uploads(time()))
        })
    })
}

#[update(manual_reply = true)]
fn upload_commit(upload_id: u64) -> Replied<Result<Release, Error>> {
    cached_candid::reply(|| {
        let release = authorized(Method::UploadCommit, |state, caller| {
            state.release_store.commit_upload(upload_id, caller, time())
        })?;
        sweep_no_later_than(time() + TOMBSTONE_RETENTION_NANOS);
        Ok(release)
    })
}

#[update(manual_reply = true)]
fn upload_abort(upload_id: u64) -> Replied<Result<(), Error>> {
    cached_candid::reply(|| {
        authorized(Method::UploadAbort, |state, _| {
            state.release_store.abort_upload(upload_id, time())
        })
    })
}

#[query(manual_reply = true)]
fn upload_settings() -> Replied<UploadSettings> {
    cached_candid::reply(|| {
        reading(Method::UploadSettings, |state| {
            state.release_store.upload_settings()
        })
    })
}

#[update(manual_reply = true)]
fn set_upload_settings(update: UploadSettingsUpdate) -> Replied<Result<UploadSettings, Error>> {
    cached_candid::reply(|| {
        authorized(Method::SetUploadSettings, |state, _| {
            state.release_store.update_upload_settings(&update)
        })
    })
}

#[query(manual_reply = true)]
fn list_releases(arg: ListReleasesArg) -> Replied<ReleasePage> {
    cached_candid::reply(|| {
        reading(Method::ListReleases, |state| {
            state.release_store.list_releases(&arg)
        })
    })
}

#[query(manual_reply = true)]
fn get_release(selector: ReleaseSelector) -> Replied<Result<Release, Error>> {
    cached_candid::reply(|| {
        reading(Method::GetRelease, |state| {
            state.release_store.get_release(&selector)
        })
    })
}

/// One chunk per reply: at most 1 MiB, under the reply size limit.
#[query(manual_reply = true)]
fn release_chunk(arg: ReleaseChunkArg) -> Replied<Result<ByteBuf, Error>> {
    cached_candid::reply(|| {
        reading(Method::ReleaseChunk, |state| {
            state.release_store.release_chunk(&arg).map(ByteBuf::from)
        })
    })
}

#[update(manual_reply = true)]
fn delete_release(sha256: ByteBuf) -> Replied<Result<(), Error>> {
    cached_candid::reply(|| {
        authorized(Method::DeleteRelease, |state, _| {
            state.release_store.delete_release(&sha256, &state.rollouts)
        })
    })
}

/// Blesses a release for rollouts, or withdraws its blessing (see `require_blessed_releases`).
#[update(manual_reply = true)]
fn set_release_blessing(arg: SetReleaseBlessingArg) -> Replied<Result<(), Error>> {
    cached_candid::reply(|| {
        authorized(Method::SetReleaseBlessing, |state, caller| {
            state.set_release_blessing(&arg, caller, time())
        })
    })
}

#[query(manual_reply = true)]
fn storage_stats() -> Replied<StorageStats> {
    cached_candid::reply(|| reading(Method::StorageStats, |state| state.storage_stats(time())))
}

/// The dashboard page and its views (see [`crate::dashboard`]), for anyone, as a query only: run
/// replicated (as an update, or from a canister) it traps, so no scrape costs the deployer.
#[query(manual_reply = true)]
fn http_request(request: HttpRequest<'static>) -> Replied<HttpResponse<'static>> {
    cached_candid::reply(|| {
        let now = time();
        let host = HostFigures {
            now_nanos: now,
            cycles: ic_cdk::api::canister_cycle_balance(),
            heap_memory_bytes: heap_memory_bytes(),
            management_calls_in_flight: effects::calls_outstanding(),
            driver_last_ran_at: rollout_driver::last_driven_at(),
        };
        let mut response = reading(Method::HttpRequest, |state| {
            dashboard::answer(&request, &StateReadings { state, host })
        });
        if let Some(certificate) = ic_cdk::api::data_certificate() {
            add_skip_certification_header(certificate, &mut response);
        }
        response
    })
}

/// The Wasm heap's size.
fn heap_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    let pages = core::arch::wasm32::memory_size(0) as u64;
    #[cfg(not(target_arch = "wasm32"))]
    let pages = 0;
    pages * crate::memory::WASM_PAGE_BYTES
}

/// Makes sure a sweep runs at `deadline` or earlier. A sweep that finds nothing due is cheap,
/// so an early one is harmless; it schedules the next one itself.
fn sweep_no_later_than(deadline: u64) {
    if let Some((scheduled, timer)) = SWEEP.get() {
        if scheduled <= deadline {
            return;
        }
        ic_cdk_timers::clear_timer(timer);
    }
    let delay = Duration::from_nanos(deadline.saturating_sub(time()));
    let timer = ic_cdk_timers::set_timer(delay, async {
        SWEEP.set(None);
        mutate_state(|state| state.release_store.sweep(time()));
        schedule_next_sweep();
    });
    SWEEP.set(Some((deadline, timer)));
}

fn schedule_next_sweep() {
    if let Some(deadline) = read_state(|state| state.release_store.next_deadline()) {
        sweep_no_later_than(deadline);
    }
}

/// Adopts canisters the deployer controls as children. Each is checked on its own: the reply
/// holds one result per canister, in the order given. `subnet` defaults to the deployer's own.
#[update(manual_reply = true)]
async fn adopt_children(
    arg: AdoptChildrenArg,
) -> Replied<Result<Vec<Result<ChildInfo, Error>>, Error>> {
    let result = adopt(arg).await;
    cached_candid::reply(|| result)
}

/// Adopts what `arg` names, for `adopt_children` and for a proposal.
async fn adopt(arg: AdoptChildrenArg) -> Result<Vec<Result<ChildInfo, Error>>, Error> {
    {
        let caller = msg_caller();
        read_state(|state| state.authorize(caller, Method::AdoptChildren))?;
        if arg.canister_ids.len() > MAX_ADOPTED_PER_CALL {
            return Err(fleet_error(FleetError::TooManyToAdopt {
                count: arg.canister_ids.len() as u64,
                max: MAX_ADOPTED_PER_CALL as u64,
            }));
        }
        let subnet = arg.subnet.unwrap_or_else(subnet_self);
        let statuses = effects::join_calls(
            arg.canister_ids
                .iter()
                .map(|&id| effects::canister_status(id)),
        )
        .await;
        let now = time();
        let deployer = ic_cdk::api::canister_self();
        mutate_state(|state| {
            // The caller's role may have been revoked while the statuses were read.
            state.authorize(caller, Method::AdoptChildren)?;
            Ok(arg
                .canister_ids
                .iter()
                .zip(statuses)
                .map(|(&canister_id, status)| {
                    if canister_id == deployer || state.rollouts.is_store(canister_id) {
                        return Err(fleet_error(FleetError::NotAChildCanister { canister_id }));
                    }
                    let status = status.map_err(|error| unavailable(canister_id, error))?;
                    if !effects::controls(&status) {
                        return Err(ErrorKind::NotAController { canister_id }.into());
                    }
                    let module_hash = status
                        .module_hash
                        .and_then(|hash| <[u8; 32]>::try_from(hash).ok())
                        .map(ModuleHash);
                    state
                        .fleet
                        .adopt(canister_id, subnet, module_hash, &arg.labels, now, caller)
                        .and_then(|()| state.fleet.info(&canister_id))
                        .map_err(fleet_error)
                })
                .collect())
        })
    }
}

/// The `icp` CLI's proxy interface, for operators: forwards an allowed management call about a
/// child (see [`crate::proxy`]) and records it in the audit log.
#[update]
async fn proxy(args: ProxyArgs) -> ProxyResult {
    let caller = msg_caller();
    let admitted = read_state(|state| {
        state
            .authorize(caller, Method::Proxy)
            .map_err(|_| ProxyError::UnauthorizedUser)?;
        Ok(proxy::admit(&args, |id| state.fleet.get(id).is_some()))
    });
    let admitted = match admitted {
        // A stranger's calls are not recorded: they could flush the operators' entries.
        Err(unauthorized) => return ProxyResult::Err(unauthorized),
        Ok(admitted) => admitted,
    };
    let mut audit = AuditedIfDropped(Some(ProxyCall {
        sequence: 0,
        at: time(),
        caller,
        method: args.method.chars().take(64).collect(),
        child: admitted.as_ref().ok().copied(),
        args_bytes: args.args.len() as u64,
        reply_bytes: None,
        error: None,
    }));
    let result = match admitted {
        Err(refused) => Err(refused),
        Ok(_) => forward(args).await,
    };
    let mut entry = audit.0.take().expect("recorded once");
    match &result {
        Ok(reply) => entry.reply_bytes = Some(reply.len() as u64),
        Err(ProxyError::CallFailed { reason }) => entry.error = Some(reason.clone()),
        Err(other) => entry.error = Some(format!("{other:?}")),
    }
    mutate_state(|state| state.proxy_audit.record(entry));
    match result {
        Ok(reply) => ProxyResult::Ok(ProxyOk {
            result: ByteBuf::from(reply),
        }),
        Err(error) => ProxyResult::Err(error),
    }
}

/// A proxied call's audit entry, recorded when the call's future is dropped before its answer
/// is (its callback trapped, and ic-cdk dropped the future in the cleanup): the call was made,
/// and the log says so.
struct AuditedIfDropped(Option<ProxyCall>);

impl Drop for AuditedIfDropped {
    fn drop(&mut self) {
        if let Some(mut entry) = self.0.take() {
            entry.error = Some(
                "the answer was lost: the deployer's callback trapped; read the child to learn \
                 what the call did"
                    .into(),
            );
            mutate_state(|state| state.proxy_audit.record(entry));
        }
    }
}

async fn forward(args: ProxyArgs) -> Result<Vec<u8>, ProxyError> {
    let cycles = u128::try_from(&args.cycles.0).unwrap_or(u128::MAX);
    let available = ic_cdk::api::canister_liquid_cycle_balance();
    if cycles > available {
        return Err(ProxyError::InsufficientCycles {
            available: available.into(),
            required: args.cycles,
        });
    }
    effects::forward_to_management(&args.method, args.args.into_vec(), cycles)
        .await
        .map_err(|error| ProxyError::CallFailed {
            reason: format!(
                "the management canister rejected {} (code {}): {}",
                args.method, error.code, error.message
            ),
        })
}

/// Forgets a child; refused while a rollout holds it.
#[update(manual_reply = true)]
fn release_child(canister_id: Principal) -> Replied<Result<ChildInfo, Error>> {
    cached_candid::reply(|| {
        authorized(Method::ReleaseChild, |state, _| {
            let info = state.fleet.info(&canister_id).map_err(fleet_error)?;
            state.fleet.release(&canister_id).map_err(fleet_error)?;
            Ok(info)
        })
    })
}

#[update(manual_reply = true)]
fn set_labels(canister_id: Principal, labels: Vec<Label>) -> Replied<Result<ChildInfo, Error>> {
    cached_candid::reply(|| {
        authorized(Method::SetLabels, |state, _| {
            state
                .fleet
                .set_labels(&canister_id, &labels)
                .and_then(|()| state.fleet.info(&canister_id))
                .map_err(fleet_error)
        })
    })
}

#[update(manual_reply = true)]
fn remove_label(canister_id: Principal, key: String) -> Replied<Result<bool, Error>> {
    cached_candid::reply(|| {
        authorized(Method::RemoveLabel, |state, _| {
            state
                .fleet
                .remove_label(&canister_id, &key)
                .map_err(fleet_error)
        })
    })
}

#[query(manual_reply = true)]
fn get_child(canister_id: Principal) -> Replied<Result<ChildInfo, Error>> {
    cached_candid::reply(|| {
        viewing(Method::GetChild, |state| {
            state.fleet.info(&canister_id).map_err(fleet_error)
        })
    })
}

#[query(manual_reply = true)]
fn list_children(arg: ListChildrenArg) -> Replied<Result<ChildPage, Error>> {
    cached_candid::reply(|| {
        viewing(Method::ListChildren, |state| {
            state.fleet.list(&arg).map_err(fleet_error)
        })
    })
}

/// Registers an empty canister the deployer controls as the chunk store of `subnet`, for
/// chunked installs on a subnet other than the deployer's own.
#[update(manual_reply = true)]
async fn register_chunk_store(
    subnet: Principal,
    canister_id: Principal,
) -> Replied<Result<(), Error>> {
    let result = register_store(subnet, canister_id).await;
    cached_candid::reply(|| result)
}

/// Registers the chunk store, for `register_chunk_store` and for a proposal.
async fn register_store(subnet: Principal, canister_id: Principal) -> Result<(), Error> {
    {
        let caller = msg_caller();
        read_state(|state| state.authorize(caller, Method::RegisterChunkStore))?;
        let status = effects::canister_status(canister_id)
            .await
            .map_err(|error| unavailable(canister_id, error))?;
        if !effects::controls(&status) {
            return Err(ErrorKind::NotAController { canister_id }.into());
        }
        if status.module_hash.is_some() {
            return Err(ErrorKind::StoreNotEmpty { canister_id }.into());
        }
        mutate_state(|state| {
            // The caller's role may have been revoked while the status was read.
            state.authorize(caller, Method::RegisterChunkStore)?;
            // A child is not a store: its module is what rollouts replace.
            if let Ok(child) = state.fleet.info(&canister_id) {
                return Err(fleet_error(FleetError::AlreadyAdopted {
                    canister_id,
                    adopted_at: child.adopted_at,
                    adopted_by: child.adopted_by,
                }));
            }
            state.rollouts.register_store(subnet, canister_id);
            Ok(())
        })
    }
}

#[query(manual_reply = true)]
fn list_chunk_stores() -> Replied<Result<Vec<ChunkStore>, Error>> {
    cached_candid::reply(|| viewing(Method::ListChunkStores, |state| Ok(state.rollouts.stores())))
}

/// Forgets `subnet`'s chunk store (the canister is left as it is, for its controllers to
/// delete); refused while an active rollout installs through the stores.
#[update(manual_reply = true)]
fn unregister_chunk_store(subnet: Principal) -> Replied<Result<ChunkStore, Error>> {
    cached_candid::reply(|| {
        authorized(Method::UnregisterChunkStore, |state, _| {
            Ok(state.rollouts.unregister_store(subnet)?)
        })
    })
}

#[query(manual_reply = true)]
fn fleet_summary() -> Replied<Result<FleetSummary, Error>> {
    cached_candid::reply(|| {
        let cycles = ic_cdk::api::canister_cycle_balance();
        viewing(Method::FleetSummary, |state| {
            Ok(FleetSummary::read(state, cycles))
        })
    })
}

#[update(manual_reply = true)]
async fn start_rollout(arg: StartRolloutArg) -> Replied<Result<RolloutInfo, Error>> {
    let result = start(Method::StartRollout, arg.into()).await;
    cached_candid::reply(|| result)
}

/// Starts a rollout or a backup run, its planning spread over messages: `PLAN_SLICE` children
/// read (checked and claimed), then planned (made and stored), per message, the deployer
/// calling itself between two. The caller's role and the release's blessing are checked again
/// at the end.
async fn start(method: Method, arg: StartArg) -> Result<RolloutInfo, Error> {
    let caller = msg_caller();
    let own_subnet = subnet_self();
    let release = match &arg {
        StartArg::Rollout(arg) => Some(arg.release.clone()),
        StartArg::Backup(_) => None,
    };
    let check_blessing = |state: &State<DefaultMemoryImpl>| match &release {
        Some(release) => state.check_blessing(release),
        None => Ok(()),
    };
    let plan = authorized(method, |state, _| {
        check_blessing(state)?;
        let State {
            release_store,
            fleet,
            rollouts,
            ..
        } = state;
        rollouts.begin_start(fleet, release_store, arg)
    })?;
    let mut plan = AbandonedUnlessStarted(Some(plan));
    loop {
        let planned = mutate_state(|state| {
            let State {
                release_store,
                fleet,
                rollouts,
                ..
            } = state;
            let plan = plan.0.as_mut().expect("planning");
            rollouts.start_some(plan, fleet, release_store, own_subnet)
        })?;
        if planned {
            break;
        }
        effects::next_message().await;
    }
    let now = time();
    let rollout_id = mutate_state(|state| {
        state.authorize(caller, method)?;
        check_blessing(state)?;
        let State {
            fleet, rollouts, ..
        } = state;
        let plan = plan.0.take().expect("planned");
        rollouts.create_started(plan, fleet, caller, now)
    })?;
    rollout_driver::drive_no_later_than(rollout_id, now);
    read_state(|state| state.rollouts.info(rollout_id))
}

/// A start's plan, abandoned (its claims freed) when the start ends without the rollout: a
/// refusal at the end, or a trap in one of its messages (ic-cdk drops the start's future in the
/// call's cleanup).
struct AbandonedUnlessStarted(Option<StartPlan>);

impl Drop for AbandonedUnlessStarted {
    fn drop(&mut self) {
        if let Some(plan) = &self.0 {
            mutate_state(|state| {
                let State {
                    fleet, rollouts, ..
                } = state;
                rollouts.abandon_start(plan, fleet);
            });
        }
    }
}

/// Operator. A snapshot of each selected child, with a rollout's waves and concurrency.
#[update(manual_reply = true)]
async fn start_backup_run(arg: StartBackupRunArg) -> Replied<Result<RolloutInfo, Error>> {
    let result = start(Method::StartBackupRun, arg.into()).await;
    cached_candid::reply(|| result)
}

/// Operator. Loads a snapshot into one child, journaled as a rollout.
#[update(manual_reply = true)]
fn restore_child(arg: RestoreChildArg) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| restore(Method::RestoreChild, arg))
}

fn restore(method: Method, arg: RestoreChildArg) -> Result<RolloutInfo, Error> {
    let now = time();
    let rollout_id = authorized(method, |state, caller| {
        let State {
            fleet, rollouts, ..
        } = state;
        rollouts.start_restore(fleet, arg, caller, now)
    })?;
    rollout_driver::drive_no_later_than(rollout_id, now);
    read_state(|state| state.rollouts.info(rollout_id))
}

/// What `start_rollout(arg)` would do now, and the hash that pins its plan.
#[query(manual_reply = true)]
fn preview_rollout(arg: StartRolloutArg) -> Replied<Result<RolloutPreview, Error>> {
    cached_candid::reply(|| preview(Method::PreviewRollout, arg))
}

fn preview(method: Method, arg: StartRolloutArg) -> Result<RolloutPreview, Error> {
    let own_subnet = subnet_self();
    viewing(method, |state| {
        state.check_blessing(&arg.release)?;
        state
            .rollouts
            .preview(&state.fleet, &state.release_store, arg, own_subnet)
    })
}

/// Plans what `start_rollout(arg)` would do, a slice of children per message as a start plans,
/// claiming none, and keeps its preview for `preview_rollout` and the proposal validators.
#[update(manual_reply = true)]
async fn prepare_rollout(arg: StartRolloutArg) -> Replied<Result<RolloutPreview, Error>> {
    let result = prepare(arg).await;
    cached_candid::reply(|| result)
}

async fn prepare(arg: StartRolloutArg) -> Result<RolloutPreview, Error> {
    let own_subnet = subnet_self();
    let preparation = authorized(Method::PrepareRollout, |state, _| {
        state.check_blessing(&arg.release)?;
        let State {
            release_store,
            fleet,
            rollouts,
            ..
        } = state;
        rollouts.begin_prepare(fleet, release_store, arg)
    })?;
    let mut preparation = LetGoUnlessEnded(Some(preparation));
    loop {
        let prepared = read_state(|state| {
            let preparation = preparation.0.as_mut().expect("preparing");
            state
                .rollouts
                .prepare_some(preparation, &state.fleet, &state.release_store, own_subnet)
        })?;
        if prepared {
            break;
        }
        effects::next_message().await;
    }
    let now = time();
    mutate_state(|state| {
        let preparation = preparation.0.take().expect("prepared");
        state
            .rollouts
            .end_prepare(preparation, &state.release_store, now)
    })
}

/// A preparation counted in flight until it ends: let go when its call ends otherwise (a
/// refusal, or a trap in one of its messages).
struct LetGoUnlessEnded(Option<Preparation>);

impl Drop for LetGoUnlessEnded {
    fn drop(&mut self) {
        if let Some(preparation) = &mut self.0 {
            mutate_state(|state| state.rollouts.let_go_of_preparation(preparation));
        }
    }
}

/// A rollout proposal pins its plan: without `plan_sha256` voters could not tell what runs.
fn require_pinned_plan(arg: &StartRolloutArg) -> Result<(), Error> {
    match arg.plan_sha256 {
        Some(_) => Ok(()),
        None => Err(ErrorKind::InvalidRolloutPlan {
            reason: "a proposal pins its plan: set plan_sha256 to the hash preview_rollout gives"
                .to_string(),
        }
        .into()),
    }
}

/// SNS and Orbit validators: the proposal rendered for voters, or why it cannot execute now.
#[query(manual_reply = true)]
fn start_rollout_by_proposal_validate(arg: StartRolloutArg) -> Replied<Result<String, String>> {
    cached_candid::reply(|| {
        require_pinned_plan(&arg)
            .and_then(|()| preview(Method::StartRolloutByProposalValidate, arg))
            .map(|preview| governance::render_rollout(&preview))
            .map_err(|error| error.to_string())
    })
}

/// Executes a rollout proposal; rejects (traps) on any refusal, so the proposal shows as failed.
#[update(manual_reply = true)]
async fn start_rollout_by_proposal(arg: StartRolloutArg) -> Replied<RolloutInfo> {
    let result = match require_pinned_plan(&arg) {
        Ok(()) => start(Method::StartRolloutByProposal, arg.into()).await,
        Err(error) => Err(error),
    };
    cached_candid::reply(|| {
        result.unwrap_or_else(|error| trap(format!("start_rollout_by_proposal refused: {error}")))
    })
}

#[query(manual_reply = true)]
fn control_rollout_by_proposal_validate(
    proposal: ControlProposal,
) -> Replied<Result<String, String>> {
    cached_candid::reply(|| {
        let now = time();
        viewing(Method::ControlRolloutByProposalValidate, |state| {
            let rollout =
                state
                    .rollouts
                    .check_control(proposal.rollout_id, proposal.command, now)?;
            Ok(governance::render_control(&proposal, &rollout))
        })
        .map_err(|error| error.to_string())
    })
}

/// Validates a proposal for any other action: the action is carried out for real and its render
/// kept, since a query's changes are discarded whether it runs replicated or not. So the
/// validator refuses exactly what execution would refuse now (the caller's role included).
#[query(manual_reply = true)]
fn apply_by_proposal_validate(action: GovernedAction) -> Replied<Result<String, String>> {
    cached_candid::reply(|| {
        let caller = msg_caller();
        let render = reading(Method::ApplyByProposalValidate, |state| {
            action.render(state)
        });
        mutate_state(|state| {
            state.authorize(caller, action.method())?;
            action.apply(state, caller, time())
        })
        .map(|()| render)
        .map_err(|error| error.to_string())
    })
}

/// Executes a proposal for any other action; rejects on refusal. Replies with what was done (the
/// render), which Orbit keeps with the request.
#[update(manual_reply = true)]
async fn apply_by_proposal(action: GovernedAction) -> Replied<String> {
    let render = read_state(|state| action.render(state));
    let done: Result<(), String> = match &action {
        GovernedAction::AdoptChildren(arg) => match adopt(arg.clone()).await {
            Ok(adopted) => {
                let refused: Vec<String> = adopted
                    .iter()
                    .zip(&arg.canister_ids)
                    .filter_map(|(result, id)| Some(format!("{id}: {}", result.as_ref().err()?)))
                    .collect();
                match refused.first() {
                    None => Ok(()),
                    Some(first) => Err(format!(
                        "{} of {} canisters were refused, so none is adopted (the trap undoes \
                         the adoptions since the statuses were read); the first: {first}",
                        refused.len(),
                        arg.canister_ids.len()
                    )),
                }
            }
            Err(error) => Err(error.to_string()),
        },
        GovernedAction::RegisterChunkStore {
            subnet,
            canister_id,
        } => register_store(*subnet, *canister_id)
            .await
            .map_err(|error| error.to_string()),
        // Started as their own methods start them, so that the driver takes them up at once.
        GovernedAction::StartBackupRun(arg) => start(action.method(), arg.clone().into())
            .await
            .map(drop)
            .map_err(|error| error.to_string()),
        GovernedAction::RestoreChild(arg) => restore(action.method(), arg.clone())
            .map(drop)
            .map_err(|error| error.to_string()),
        _ => authorized(action.method(), |state, caller| {
            action.apply(state, caller, time())
        })
        .map_err(|error| error.to_string()),
    };
    if let Err(error) = done {
        trap(format!("apply_by_proposal refused: {error}"));
    }
    cached_candid::reply(|| render)
}

/// Executes a proposal to pause, resume, abort or roll back a rollout; rejects on refusal.
#[update(manual_reply = true)]
fn control_rollout_by_proposal(proposal: ControlProposal) -> Replied<RolloutInfo> {
    cached_candid::reply(|| {
        control(
            Method::ControlRolloutByProposal,
            proposal.rollout_id,
            proposal.command,
        )
        .unwrap_or_else(|error| trap(format!("control_rollout_by_proposal refused: {error}")))
    })
}

#[update(manual_reply = true)]
fn pause_rollout(rollout_id: u64) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| control(Method::PauseRollout, rollout_id, Command::Pause))
}

#[update(manual_reply = true)]
fn resume_rollout(rollout_id: u64) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| control(Method::ResumeRollout, rollout_id, Command::Resume))
}

#[update(manual_reply = true)]
fn abort_rollout(rollout_id: u64) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| control(Method::AbortRollout, rollout_id, Command::Abort))
}

#[update(manual_reply = true)]
fn rollback_rollout(rollout_id: u64) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| control(Method::RollbackRollout, rollout_id, Command::RollBackAll))
}

#[update(manual_reply = true)]
fn reconcile_rollout(rollout_id: u64) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| {
        authorized(Method::ReconcileRollout, |_, _| Ok(()))?;
        rollout_driver::reconcile(rollout_id)?;
        read_state(|state| state.rollouts.info(rollout_id))
    })
}

#[query(manual_reply = true)]
fn get_rollout(rollout_id: u64) -> Replied<Result<RolloutInfo, Error>> {
    cached_candid::reply(|| viewing(Method::GetRollout, |state| state.rollouts.info(rollout_id)))
}

#[query(manual_reply = true)]
fn list_rollouts(arg: ListRolloutsArg) -> Replied<Result<RolloutPage, Error>> {
    cached_candid::reply(|| viewing(Method::ListRollouts, |state| Ok(state.rollouts.list(&arg))))
}

#[query(manual_reply = true)]
fn child_history(arg: ChildHistoryArg) -> Replied<Result<ChildHistory, Error>> {
    cached_candid::reply(|| {
        viewing(Method::ChildHistory, |state| {
            state.rollouts.child_history(&arg)
        })
    })
}

/// The audit log of proxied calls, oldest first.
#[query]
fn list_proxy_calls(arg: ListProxyCallsArg) -> Result<ProxyCallPage, Error> {
    viewing(Method::ListProxyCalls, |state| {
        Ok(state.proxy_audit.list(&arg))
    })
}

#[query(manual_reply = true)]
fn list_events(arg: ListEventsArg) -> Replied<Result<EventPage, Error>> {
    cached_candid::reply(|| viewing(Method::ListEvents, |state| Ok(state.rollouts.events(&arg))))
}

/// Admin. Freezes the state and takes its document a slice per message, then hashes its pieces
/// a message each (see [`crate::backup`]), the deployer calling itself between two; replies
/// with the manifest after the last.
#[update]
async fn start_export() -> Result<ExportManifest, Error> {
    let now = time();
    authorized(Method::StartExport, |state, _| {
        state.start_export(now);
        Ok(())
    })?;
    let _taking = AbandonedUnlessTaken(now);
    loop {
        if let Some(manifest) = mutate_state(|state| state.continue_export(now))? {
            return Ok(manifest);
        }
        if !effects::next_message().await {
            return Err(ErrorKind::ExportNotHeld { exported_at: now }.into());
        }
    }
}

/// An export's call, which lets go of the export (thawing the memories) if it ends before the
/// document is taken: its call to itself came back refused, or one of its messages trapped
/// (ic-cdk drops the call's future in the cleanup). A freeze left behind would keep every page
/// written after it on the heap, up to `MAX_KEPT_BYTES`.
struct AbandonedUnlessTaken(u64);

impl Drop for AbandonedUnlessTaken {
    fn drop(&mut self) {
        mutate_state(|state| state.abandon_export(self.0));
    }
}

#[query]
fn read_export(arg: ReadExportArg) -> Result<ByteBuf, Error> {
    viewing(Method::ReadExport, |state| {
        state.read_export(&arg).map(ByteBuf::from)
    })
}

#[update]
fn begin_restore(manifest: ExportManifest) -> Result<RestoreProgress, Error> {
    authorized(Method::BeginRestore, |state, _| {
        state.begin_restore(manifest)
    })
}

#[update]
fn restore_piece(arg: RestorePieceArg) -> Result<RestoreProgress, Error> {
    authorized(Method::RestorePiece, |state, _| state.restore_piece(arg))
}

/// Checks the restored state, then writes it, a slice per message (the deployer calling
/// itself between two), then reopens it as `post_upgrade` does; its active rollouts come back
/// paused, so no timer is needed until an operator resumes one, except for finished ones still
/// storing their children apart. When the deployer cannot call itself (it is stopping), the
/// commit stands where it is and a later call goes on from there. Once committed, a call answers
/// the same summary (a retry, or the other of two calls that drove the commit).
#[update]
async fn commit_restore() -> Result<RestoreSummary, Error> {
    authorized(Method::CommitRestore, |_, _| Ok(()))?;
    loop {
        let now = time();
        let committed = STATE.with_borrow_mut(|slot| {
            let state = slot.take().expect("state is set by init/post_upgrade");
            let (state, committed) = state.commit_restore(now);
            *slot = Some(state);
            committed
        })?;
        if let Some(summary) = committed {
            for rollout_id in read_state(|state| state.rollouts.storing_apart()) {
                rollout_driver::drive_no_later_than(rollout_id, now);
            }
            return Ok(summary);
        }
        if !effects::next_message().await {
            return Err(read_state(State::restore_committing)
                .unwrap_or_else(|| ErrorKind::RestoreNotBegun.into()));
        }
    }
}

/// Admin. Holds every rollout and folds the journal so that the deployer can be upgraded to a
/// build whose engine decides differently, or lifts the hold.
#[update(manual_reply = true)]
fn prepare_upgrade(arg: PrepareUpgradeArg) -> Replied<Result<UpgradeReadiness, Error>> {
    cached_candid::reply(|| {
        let (to_drive, readiness) = authorized(Method::PrepareUpgrade, |state, _| {
            Ok(state.rollouts.prepare_upgrade(arg.hold))
        })?;
        let now = time();
        for rollout_id in to_drive {
            rollout_driver::drive_no_later_than(rollout_id, now);
        }
        Ok(readiness)
    })
}

fn control(method: Method, rollout_id: u64, command: Command) -> Result<RolloutInfo, Error> {
    let now = time();
    authorized(method, |state, _| {
        state
            .rollouts
            .control(rollout_id, command, &mut state.fleet, now)
    })?;
    rollout_driver::drive_no_later_than(rollout_id, now);
    read_state(|state| state.rollouts.info(rollout_id))
}

fn fleet_error(error: FleetError) -> Error {
    ErrorKind::Fleet(error).into()
}

fn unavailable(canister_id: Principal, error: effects::CallError) -> Error {
    ErrorKind::CanisterStatusUnavailable {
        canister_id,
        code: error.code,
        message: error.message,
    }
    .into()
}

// Generates `__export_service()`, the Candid service of the methods above, for the interface
// test. Not `ic_cdk::export_candid!`: that also exports `get_candid_pointer` from the Wasm, and
// the packaged Wasm carries `candid/deployer.did` as metadata instead.
#[cfg(test)]
candid::export_service!();

#[cfg(test)]
mod candid_interface_tests;
