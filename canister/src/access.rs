//! Who may call which method, and which ingress messages are worth executing at all.
//!
//! [`Method`] is the one table of the deployer's methods: each method's required role and the
//! largest argument it accepts. The entry points authorize against it (a typed `NotAuthorized`
//! for the caller), and `canister_inspect_message` consults it to refuse an ingress message
//! before it is executed, and so before the deployer pays for it: a caller without the role, or
//! an argument that cannot be valid. `inspect_message` runs on one node only and is skipped for
//! calls from canisters, so it is a cost filter, never the authorization itself.

use std::fmt;

use candid::Principal;
use ic_stable_structures::Memory;

use crate::error::Error;
use crate::roles::{Role, Roles};

/// The IC's limit on an ingress message's argument (interface specification, "Ingress
/// messages"). `canister_inspect_message` lets an `upload_chunk` of any size up to it through,
/// so that a chunk over [`crate::uploads::MAX_CHUNK_BYTES`] gets the `ChunkTooLarge` error the
/// interface promises rather than a trap at the filter; only Operators pass the filter for it.
pub const MAX_INGRESS_ARG_BYTES: usize = 2 * 1024 * 1024;
/// The largest argument of any other method: the biggest is `upload_open`'s, whose texts are
/// at most 4 KiB + 128 bytes.
pub const MAX_SMALL_ARG_BYTES: usize = 16 * 1024;

/// Every method of the deployer's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    AddRole,
    RemoveRole,
    ListRoles,
    MyRoles,
    Version,
    UploadOpen,
    UploadChunk,
    UploadStatus,
    UploadCommit,
    UploadAbort,
    UploadSettings,
    SetUploadSettings,
    ListReleases,
    GetRelease,
    ReleaseChunk,
    DeleteRelease,
    StorageStats,
    AdoptChildren,
    ReleaseChild,
    SetLabels,
    RemoveLabel,
    GetChild,
    ListChildren,
    RegisterChunkStore,
    StartRollout,
    PauseRollout,
    ResumeRollout,
    AbortRollout,
    RollbackRollout,
    GetRollout,
    ListRollouts,
    ChildHistory,
    ListEvents,
    PrepareUpgrade,
    ReconcileRollout,
    HttpRequest,
    FleetSummary,
    ListUploads,
    ListChunkStores,
    UnregisterChunkStore,
    PreviewRollout,
    PrepareRollout,
    StartRolloutByProposalValidate,
    StartRolloutByProposal,
    ControlRolloutByProposalValidate,
    ControlRolloutByProposal,
    GovernanceSettings,
    ApplyByProposalValidate,
    ApplyByProposal,
    Proxy,
    ListProxyCalls,
    SetReleaseBlessing,
    StartExport,
    ReadExport,
    BeginRestore,
    RestorePiece,
    CommitRestore,
    StartBackupRun,
    RestoreChild,
}

impl Method {
    pub const ALL: [Method; 59] = [
        Method::AddRole,
        Method::RemoveRole,
        Method::ListRoles,
        Method::MyRoles,
        Method::Version,
        Method::UploadOpen,
        Method::UploadChunk,
        Method::UploadStatus,
        Method::UploadCommit,
        Method::UploadAbort,
        Method::UploadSettings,
        Method::SetUploadSettings,
        Method::ListReleases,
        Method::GetRelease,
        Method::ReleaseChunk,
        Method::DeleteRelease,
        Method::StorageStats,
        Method::AdoptChildren,
        Method::ReleaseChild,
        Method::SetLabels,
        Method::RemoveLabel,
        Method::GetChild,
        Method::ListChildren,
        Method::RegisterChunkStore,
        Method::StartRollout,
        Method::PauseRollout,
        Method::ResumeRollout,
        Method::AbortRollout,
        Method::RollbackRollout,
        Method::GetRollout,
        Method::ListRollouts,
        Method::ChildHistory,
        Method::ListEvents,
        Method::PrepareUpgrade,
        Method::ReconcileRollout,
        Method::HttpRequest,
        Method::FleetSummary,
        Method::ListUploads,
        Method::ListChunkStores,
        Method::UnregisterChunkStore,
        Method::PreviewRollout,
        Method::PrepareRollout,
        Method::StartRolloutByProposalValidate,
        Method::StartRolloutByProposal,
        Method::ControlRolloutByProposalValidate,
        Method::ControlRolloutByProposal,
        Method::GovernanceSettings,
        Method::ApplyByProposalValidate,
        Method::ApplyByProposal,
        Method::Proxy,
        Method::ListProxyCalls,
        Method::SetReleaseBlessing,
        Method::StartExport,
        Method::ReadExport,
        Method::BeginRestore,
        Method::RestorePiece,
        Method::CommitRestore,
        Method::StartBackupRun,
        Method::RestoreChild,
    ];

    /// The name in the Candid interface.
    pub fn name(self) -> &'static str {
        match self {
            Method::AddRole => "add_role",
            Method::RemoveRole => "remove_role",
            Method::ListRoles => "list_roles",
            Method::MyRoles => "my_roles",
            Method::Version => "version",
            Method::UploadOpen => "upload_open",
            Method::UploadChunk => "upload_chunk",
            Method::UploadStatus => "upload_status",
            Method::UploadCommit => "upload_commit",
            Method::UploadAbort => "upload_abort",
            Method::UploadSettings => "upload_settings",
            Method::SetUploadSettings => "set_upload_settings",
            Method::ListReleases => "list_releases",
            Method::GetRelease => "get_release",
            Method::ReleaseChunk => "release_chunk",
            Method::DeleteRelease => "delete_release",
            Method::StorageStats => "storage_stats",
            Method::AdoptChildren => "adopt_children",
            Method::ReleaseChild => "release_child",
            Method::SetLabels => "set_labels",
            Method::RemoveLabel => "remove_label",
            Method::GetChild => "get_child",
            Method::ListChildren => "list_children",
            Method::RegisterChunkStore => "register_chunk_store",
            Method::StartRollout => "start_rollout",
            Method::PauseRollout => "pause_rollout",
            Method::ResumeRollout => "resume_rollout",
            Method::AbortRollout => "abort_rollout",
            Method::RollbackRollout => "rollback_rollout",
            Method::GetRollout => "get_rollout",
            Method::ListRollouts => "list_rollouts",
            Method::ChildHistory => "child_history",
            Method::ListEvents => "list_events",
            Method::PrepareUpgrade => "prepare_upgrade",
            Method::ReconcileRollout => "reconcile_rollout",
            Method::HttpRequest => "http_request",
            Method::FleetSummary => "fleet_summary",
            Method::ListUploads => "list_uploads",
            Method::ListChunkStores => "list_chunk_stores",
            Method::UnregisterChunkStore => "unregister_chunk_store",
            Method::PreviewRollout => "preview_rollout",
            Method::PrepareRollout => "prepare_rollout",
            Method::StartRolloutByProposalValidate => "start_rollout_by_proposal_validate",
            Method::StartRolloutByProposal => "start_rollout_by_proposal",
            Method::ControlRolloutByProposalValidate => "control_rollout_by_proposal_validate",
            Method::ControlRolloutByProposal => "control_rollout_by_proposal",
            Method::GovernanceSettings => "governance_settings",
            Method::ApplyByProposalValidate => "apply_by_proposal_validate",
            Method::ApplyByProposal => "apply_by_proposal",
            Method::Proxy => "proxy",
            Method::ListProxyCalls => "list_proxy_calls",
            Method::SetReleaseBlessing => "set_release_blessing",
            Method::StartExport => "start_export",
            Method::ReadExport => "read_export",
            Method::BeginRestore => "begin_restore",
            Method::RestorePiece => "restore_piece",
            Method::CommitRestore => "commit_restore",
            Method::StartBackupRun => "start_backup_run",
            Method::RestoreChild => "restore_child",
        }
    }

    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|method| method.name() == name)
    }

    /// The role a caller must hold, or `None` for a public method.
    pub fn required_role(self) -> Option<Role> {
        match self {
            Method::AddRole
            | Method::RemoveRole
            | Method::SetUploadSettings
            | Method::AdoptChildren
            | Method::ReleaseChild
            | Method::RegisterChunkStore
            | Method::UnregisterChunkStore
            // Operators upload releases: blessing one is another role's word on it.
            | Method::SetReleaseBlessing
            // The whole state, install arguments included; a restore replaces it.
            | Method::StartExport
            | Method::ReadExport
            | Method::BeginRestore
            | Method::RestorePiece
            | Method::CommitRestore
            | Method::PrepareUpgrade => Some(Role::Admin),
            Method::UploadOpen
            | Method::UploadChunk
            | Method::UploadStatus
            | Method::ListUploads
            | Method::UploadCommit
            | Method::UploadAbort
            | Method::DeleteRelease
            | Method::SetLabels
            | Method::RemoveLabel
            | Method::StartRollout
            | Method::StartBackupRun
            | Method::RestoreChild
            | Method::PauseRollout
            | Method::ResumeRollout
            | Method::AbortRollout
            | Method::RollbackRollout
            | Method::ReconcileRollout
            | Method::StartRolloutByProposal
            | Method::ControlRolloutByProposal
            // Snapshot reads and uploads of children, for the `icp` CLI's `--proxy`.
            | Method::Proxy
            // The least any action needs; each action is then checked for its own method's.
            | Method::ApplyByProposal => Some(Role::Operator),
            // The fleet's ids and labels, install arguments, histories: read by role holders.
            Method::GetChild
            | Method::ListChildren
            | Method::FleetSummary
            | Method::ListChunkStores
            | Method::PreviewRollout
            // A preview planned a slice per message (its plan kept on the heap for previews).
            | Method::PrepareRollout
            | Method::StartRolloutByProposalValidate
            | Method::ControlRolloutByProposalValidate
            | Method::ApplyByProposalValidate
            | Method::GetRollout
            | Method::ListRollouts
            | Method::ChildHistory
            | Method::ListEvents
            | Method::ListProxyCalls => Some(Role::Viewer),
            Method::ListRoles
            | Method::MyRoles
            | Method::Version
            | Method::UploadSettings
            | Method::ListReleases
            | Method::GetRelease
            | Method::ReleaseChunk
            | Method::StorageStats
            | Method::GovernanceSettings
            // Aggregates only (see `crate::dashboard`), for scrapers and browsers.
            | Method::HttpRequest => None,
        }
    }

    /// Whether the method is a query: read-only, answered by one node for free unless a
    /// caller makes it a replicated call (an update call to it, or any call from a canister).
    pub fn is_query(self) -> bool {
        matches!(
            self,
            Method::ListRoles
                | Method::MyRoles
                | Method::Version
                | Method::UploadStatus
                | Method::UploadSettings
                | Method::ListReleases
                | Method::GetRelease
                | Method::ReleaseChunk
                | Method::StorageStats
                | Method::GetChild
                | Method::ListChildren
                | Method::GetRollout
                | Method::ListRollouts
                | Method::ChildHistory
                | Method::ListEvents
                | Method::HttpRequest
                | Method::FleetSummary
                | Method::ListUploads
                | Method::ListChunkStores
                | Method::PreviewRollout
                | Method::StartRolloutByProposalValidate
                | Method::ControlRolloutByProposalValidate
                | Method::GovernanceSettings
                | Method::ApplyByProposalValidate
                | Method::ListProxyCalls
                | Method::ReadExport
        )
    }

    /// Whether the method changes what the deployer keeps: a governance-only deployer refuses
    /// these to everyone but governance. An export only reads (its document is held on the
    /// heap), so a DAO-governed deployer's admins can still take backups; a prepared preview is
    /// kept on the heap too, so that anyone who may preview can prepare what they propose.
    pub fn changes_state(self) -> bool {
        !self.is_query() && !matches!(self, Method::StartExport | Method::PrepareRollout)
    }

    /// The largest argument, in bytes, that can be valid.
    pub fn max_arg_bytes(self) -> usize {
        match self {
            Method::UploadChunk | Method::Proxy | Method::BeginRestore | Method::RestorePiece => {
                MAX_INGRESS_ARG_BYTES
            }
            _ => MAX_SMALL_ARG_BYTES,
        }
    }
}

/// Succeeds if `caller` may call `method`.
pub fn authorize<M: Memory>(
    roles: &Roles<M>,
    caller: Principal,
    method: Method,
) -> Result<(), Error> {
    match method.required_role() {
        Some(required) => roles.authorize(caller, required),
        None => Ok(()),
    }
}

/// Why `canister_inspect_message` refused an ingress message. The refusal reaches the sender
/// as the reject message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InspectRefusal {
    UnknownMethod {
        method: String,
    },
    NotAuthorized {
        method: Method,
        required: Role,
    },
    ArgumentTooLarge {
        method: Method,
        size: usize,
        max: usize,
    },
    /// A query method called as a replicated call by a caller without a role.
    PaidQuery {
        method: Method,
    },
    /// A method served as a query only, called as a replicated call.
    QueryOnly {
        method: Method,
    },
}

impl fmt::Display for InspectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMethod { method } => {
                write!(f, "the deployer has no method {method}")
            }
            Self::NotAuthorized { method, required } => write!(
                f,
                "{} requires the {required} role, which the caller does not hold: \
                 an admin can grant it with add_role",
                method.name()
            ),
            Self::ArgumentTooLarge { method, size, max } => write!(
                f,
                "the argument of {} is {size} bytes, more than the {max} it can validly be",
                method.name()
            ),
            Self::PaidQuery { method } => write!(
                f,
                "{} is a query: call it as a query (`dfx canister call --query`, an agent's \
                 query call). As an update or from a canister it runs replicated at the \
                 deployer's cost, which the deployer bears only for callers holding a role",
                method.name()
            ),
            Self::QueryOnly { method } => write!(
                f,
                "{} is served as a query only (scrapes and pages must not cost the deployer \
                 cycles): call it as a query, or through an HTTP gateway",
                method.name()
            ),
        }
    }
}

/// Whether an ingress message to `method_name`, with an argument of `arg_bytes`, from a caller
/// holding `caller_roles`, is worth executing.
pub fn inspect(
    method_name: &str,
    arg_bytes: usize,
    caller_roles: &[Role],
) -> Result<(), InspectRefusal> {
    let method = Method::from_name(method_name).ok_or_else(|| InspectRefusal::UnknownMethod {
        method: method_name.to_string(),
    })?;
    if let Some(required) = method.required_role() {
        if !caller_roles.iter().any(|role| role.grants(required)) {
            return Err(InspectRefusal::NotAuthorized { method, required });
        }
    }
    // `canister_inspect_message` runs only for update calls: a query method called so runs
    // replicated.
    replicated_execution(method, caller_roles)?;
    if arg_bytes > method.max_arg_bytes() {
        return Err(InspectRefusal::ArgumentTooLarge {
            method,
            size: arg_bytes,
            max: method.max_arg_bytes(),
        });
    }
    Ok(())
}

/// Whether `method` may run as a replicated call for a caller holding `caller_roles`. The
/// deployer pays for replicated execution, so a query runs replicated only for callers holding
/// a role (and `http_request` never); anyone else reads it as a query, for free. Canister callers never meet
/// `canister_inspect_message`, so the queries check this themselves.
pub fn replicated_execution(method: Method, caller_roles: &[Role]) -> Result<(), InspectRefusal> {
    if method == Method::HttpRequest {
        return Err(InspectRefusal::QueryOnly { method });
    }
    if method.is_query() && caller_roles.is_empty() {
        return Err(InspectRefusal::PaidQuery { method });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
