//! One typed method per endpoint of `candid/deployer.did`, written once in [`endpoints!`]: the
//! plain form (`Result<T, CallError>`) and the `_ok` form that expects success. [`ENDPOINTS`]
//! lists them with their Candid types, so a test can hold the list against the `.did` file.

use candid::types::internal::TypeContainer;
use candid::types::{Type, TypeEnv};
use candid::Principal;
use deployer::dashboard::{FleetSummary, HttpRequest, HttpResponse};
use deployer::governance::{ControlProposal, GovernanceSettings, GovernedAction, RolloutPreview};
use deployer::{
    AdoptChildrenArg, ChildHistory, ChildHistoryArg, ChildInfo, ChildPage, ChunkStore, Error,
    EventPage, ExportManifest, Label, ListChildrenArg, ListEventsArg, ListProxyCallsArg,
    ListReleasesArg, ListRolloutsArg, PrepareUpgradeArg, ProxyArgs, ProxyCallPage, ProxyResult,
    ReadExportArg, Release, ReleaseChunkArg, ReleasePage, ReleaseSelector, RestoreChildArg,
    RestorePieceArg, RestoreProgress, RestoreSummary, Role, RoleAssignment, RolloutInfo,
    RolloutPage, SetReleaseBlessingArg, StartBackupRunArg, StartRolloutArg, StorageStats,
    UpgradeReadiness, UploadChunkArg, UploadOpenArg, UploadSettings, UploadSettingsUpdate,
    UploadStatus, VersionInfo,
};
use serde_bytes::ByteBuf;

use crate::{CallError, Deployer, Transport};

/// A reply as the deployer sends it, turned into what the caller wants: `Result<T, Error>` for
/// the methods that can fail, the value itself for the reads that cannot.
pub trait Reply {
    type Value;
    fn into_call_result(self) -> Result<Self::Value, CallError>;
}

impl<T> Reply for Result<T, Error> {
    type Value = T;
    fn into_call_result(self) -> Result<T, CallError> {
        self.map_err(CallError::Deployer)
    }
}

macro_rules! infallible_replies {
    ($($reply:ty),* $(,)?) => {$(
        impl Reply for $reply {
            type Value = $reply;
            fn into_call_result(self) -> Result<$reply, CallError> {
                Ok(self)
            }
        }
    )*};
}

infallible_replies!(
    Vec<RoleAssignment>,
    Vec<Role>,
    VersionInfo,
    UploadSettings,
    ReleasePage,
    StorageStats,
    HttpResponse<'static>,
    RolloutInfo,
    Result<String, String>,
    GovernanceSettings,
    String,
    ProxyResult,
);

/// One endpoint as the client calls it: its name, whether it is a query, and the Candid types
/// of its arguments and reply (in a type environment of their own).
pub struct Endpoint {
    pub name: &'static str,
    pub query: bool,
    pub types: fn() -> (TypeEnv, Vec<Type>, Type),
}

fn types_of(
    add: impl FnOnce(&mut TypeContainer) -> (Vec<Type>, Type),
) -> (TypeEnv, Vec<Type>, Type) {
    let mut container = TypeContainer::new();
    let (args, reply) = add(&mut container);
    (container.env, args, reply)
}

macro_rules! mode_is_query {
    (update) => {
        false
    };
    (query) => {
        true
    };
}

macro_rules! endpoints {
    ($(
        $(#[doc = $doc:literal])*
        $mode:ident $name:ident, $name_ok:ident ( $($arg:ident : $ty:ty),* ) -> $reply:ty ;
    )*) => {
        /// Every endpoint the client wraps, in the `.did` file's order.
        pub const ENDPOINTS: &[Endpoint] = &[$(
            Endpoint {
                name: stringify!($name),
                query: mode_is_query!($mode),
                types: || types_of(|container| {
                    (vec![$(container.add::<$ty>()),*], container.add::<$reply>())
                }),
            },
        )*];

        impl<E: Transport> Deployer<E> {
            $(
                $(#[doc = $doc])*
                pub fn $name(
                    &mut self,
                    sender: Principal,
                    $($arg: $ty),*
                ) -> Result<<$reply as Reply>::Value, CallError> {
                    let (reply,): ($reply,) = self
                        .call(mode_is_query!($mode), sender, stringify!($name), ($($arg,)*))?;
                    reply.into_call_result()
                }

                #[doc = concat!("[`Deployer::", stringify!($name), "`], expected to succeed.")]
                #[track_caller]
                pub fn $name_ok(
                    &mut self,
                    sender: Principal,
                    $($arg: $ty),*
                ) -> <$reply as Reply>::Value {
                    match self.$name(sender, $($arg),*) {
                        Ok(value) => value,
                        Err(error) => panic!("{}: {error}", stringify!($name)),
                    }
                }
            )*
        }
    };
}

// Keep in the order of `candid/deployer.did`; its comments say what each method does.
endpoints! {
    update add_role, add_role_ok(principal: Principal, role: Role) -> Result<(), Error>;
    update remove_role, remove_role_ok(principal: Principal, role: Role) -> Result<(), Error>;
    query governance_settings, governance_settings_ok() -> GovernanceSettings;
    query list_roles, list_roles_ok() -> Vec<RoleAssignment>;
    query my_roles, my_roles_ok() -> Vec<Role>;
    query version, version_ok() -> VersionInfo;

    update upload_open, upload_open_ok(arg: UploadOpenArg) -> Result<UploadStatus, Error>;
    update upload_chunk, upload_chunk_ok(arg: UploadChunkArg) -> Result<UploadStatus, Error>;
    query upload_status, upload_status_ok(upload_id: u64) -> Result<UploadStatus, Error>;
    update upload_commit, upload_commit_ok(upload_id: u64) -> Result<Release, Error>;
    update upload_abort, upload_abort_ok(upload_id: u64) -> Result<(), Error>;
    query list_uploads, list_uploads_ok() -> Result<Vec<UploadStatus>, Error>;
    query upload_settings, upload_settings_ok() -> UploadSettings;
    update set_upload_settings, set_upload_settings_ok(update: UploadSettingsUpdate) -> Result<UploadSettings, Error>;

    query list_releases, list_releases_ok(arg: ListReleasesArg) -> ReleasePage;
    query get_release, get_release_ok(selector: ReleaseSelector) -> Result<Release, Error>;
    query release_chunk, release_chunk_ok(arg: ReleaseChunkArg) -> Result<ByteBuf, Error>;
    update delete_release, delete_release_ok(sha256: ByteBuf) -> Result<(), Error>;
    update set_release_blessing, set_release_blessing_ok(arg: SetReleaseBlessingArg) -> Result<(), Error>;
    query storage_stats, storage_stats_ok() -> StorageStats;

    update adopt_children, adopt_children_ok(arg: AdoptChildrenArg) -> Result<Vec<Result<ChildInfo, Error>>, Error>;
    update release_child, release_child_ok(canister_id: Principal) -> Result<ChildInfo, Error>;
    update set_labels, set_labels_ok(canister_id: Principal, labels: Vec<Label>) -> Result<ChildInfo, Error>;
    update remove_label, remove_label_ok(canister_id: Principal, key: String) -> Result<bool, Error>;
    query get_child, get_child_ok(canister_id: Principal) -> Result<ChildInfo, Error>;
    query list_children, list_children_ok(arg: ListChildrenArg) -> Result<ChildPage, Error>;
    update register_chunk_store, register_chunk_store_ok(subnet: Principal, canister_id: Principal) -> Result<(), Error>;
    update unregister_chunk_store, unregister_chunk_store_ok(subnet: Principal) -> Result<ChunkStore, Error>;
    query list_chunk_stores, list_chunk_stores_ok() -> Result<Vec<ChunkStore>, Error>;
    query fleet_summary, fleet_summary_ok() -> Result<FleetSummary, Error>;

    update start_rollout, start_rollout_ok(arg: StartRolloutArg) -> Result<RolloutInfo, Error>;
    update pause_rollout, pause_rollout_ok(rollout_id: u64) -> Result<RolloutInfo, Error>;
    update resume_rollout, resume_rollout_ok(rollout_id: u64) -> Result<RolloutInfo, Error>;
    update abort_rollout, abort_rollout_ok(rollout_id: u64) -> Result<RolloutInfo, Error>;
    update rollback_rollout, rollback_rollout_ok(rollout_id: u64) -> Result<RolloutInfo, Error>;
    update reconcile_rollout, reconcile_rollout_ok(rollout_id: u64) -> Result<RolloutInfo, Error>;
    query preview_rollout, preview_rollout_ok(arg: StartRolloutArg) -> Result<RolloutPreview, Error>;
    update prepare_rollout, prepare_rollout_ok(arg: StartRolloutArg) -> Result<RolloutPreview, Error>;
    query start_rollout_by_proposal_validate, start_rollout_by_proposal_validate_ok(arg: StartRolloutArg) -> Result<String, String>;
    update start_rollout_by_proposal, start_rollout_by_proposal_ok(arg: StartRolloutArg) -> RolloutInfo;
    query control_rollout_by_proposal_validate, control_rollout_by_proposal_validate_ok(proposal: ControlProposal) -> Result<String, String>;
    update control_rollout_by_proposal, control_rollout_by_proposal_ok(proposal: ControlProposal) -> RolloutInfo;
    query apply_by_proposal_validate, apply_by_proposal_validate_ok(action: GovernedAction) -> Result<String, String>;
    update apply_by_proposal, apply_by_proposal_ok(action: GovernedAction) -> String;
    query get_rollout, get_rollout_ok(rollout_id: u64) -> Result<RolloutInfo, Error>;
    query list_rollouts, list_rollouts_ok(arg: ListRolloutsArg) -> Result<RolloutPage, Error>;
    query child_history, child_history_ok(arg: ChildHistoryArg) -> Result<ChildHistory, Error>;
    query list_events, list_events_ok(arg: ListEventsArg) -> Result<EventPage, Error>;
    update proxy, proxy_ok(args: ProxyArgs) -> ProxyResult;
    query list_proxy_calls, list_proxy_calls_ok(arg: ListProxyCallsArg) -> Result<ProxyCallPage, Error>;
    update start_export, start_export_ok() -> Result<ExportManifest, Error>;
    query read_export, read_export_ok(arg: ReadExportArg) -> Result<ByteBuf, Error>;
    update begin_restore, begin_restore_ok(manifest: ExportManifest) -> Result<RestoreProgress, Error>;
    update restore_piece, restore_piece_ok(arg: RestorePieceArg) -> Result<RestoreProgress, Error>;
    update commit_restore, commit_restore_ok() -> Result<RestoreSummary, Error>;
    update start_backup_run, start_backup_run_ok(arg: StartBackupRunArg) -> Result<RolloutInfo, Error>;
    update restore_child, restore_child_ok(arg: RestoreChildArg) -> Result<RolloutInfo, Error>;

    query http_request, http_request_ok(request: HttpRequest<'static>) -> HttpResponse<'static>;

    update prepare_upgrade, prepare_upgrade_ok(arg: PrepareUpgradeArg) -> Result<UpgradeReadiness, Error>;
}
