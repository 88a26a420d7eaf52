//! The deployer canister: holds releases and upgrades fleets of child canisters.
//!
//! Every module except `entry_points` and `rollout_driver` is plain Rust that never calls the
//! IC: the caller, the installer and stable memory reach it as arguments, so it is unit-tested
//! natively. Those two are the canister side; they are compiled for the Wasm target (and for
//! this crate's unit tests, which check the entry points against `candid/deployer.did`), never
//! for native dependents, which use the Candid types re-exported here.
//!
//! | module                 | what it is                                                      |
//! |------------------------|-----------------------------------------------------------------|
//! | `entry_points`         | the Candid methods: authorize the caller, hand the work on      |
//! | `rollout_driver`       | runs rollouts against the IC; `effects` is its management seam  |
//! | [`state`]              | the whole state; fresh install or upgrade                       |
//! | [`backup`]             | the state as an export document; restore into a fresh deployer  |
//! | [`memory`]             | the stable memory layout: which structure owns which memory     |
//! | [`access`], [`roles`]  | who may call which method                                       |
//! | [`release_store`]      | releases: upload sessions, chunk bytes and catalog, together    |
//! | [`uploads`]            | upload sessions and their limits                                |
//! | [`block_store`]        | chunk bytes of uploads and releases, in stable-memory blocks    |
//! | [`releases`]           | the release catalog and its Candid shapes                       |
//! | [`wasm_check`]         | what a committed module must be                                 |
//! | [`candid_compat`]      | whether a release's Candid service can replace a child's        |
//! | [`hash`]               | SHA-256 and hex                                                 |
//! | [`fleet`]              | the fleet registry: children, labels, subnets, claims           |
//! | [`engine`]             | the rollout engine: a pure state machine per rollout            |
//! | [`rollouts`]           | rollouts as stored: planning, journal, admission, stores, reads |
//! | [`management_reply`]   | the fields of the management replies the driver reads           |
//! | [`dashboard`]          | `http_request`: the page, `/metrics`, `/status`, `/events`      |
//! | [`governance`]         | proposals: plan hashes, renders, governance-only settings       |
//! | [`proxy`]              | the `icp` CLI's proxy interface: admission and the audit log    |
//! | [`error`], [`version`] | the error every method returns; the build's version             |
//! | [`text`]               | texts cut to a byte bound on a character boundary               |

pub mod access;
pub mod backup;
pub mod block_store;
#[cfg(any(target_family = "wasm", test))]
mod cached_candid;
pub mod candid_compat;
mod cbor;
pub mod dashboard;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod governance;
pub mod hash;
pub mod management_reply;
pub mod memory;
pub mod proxy;
pub mod release_store;
pub mod releases;
pub mod roles;
pub mod rollouts;
pub mod state;
pub mod text;
pub mod uploads;
pub mod version;
pub mod wasm_check;

#[cfg(any(target_family = "wasm", test))]
mod entry_points;
#[cfg(any(target_family = "wasm", test))]
mod rollout_driver;

// The wire surface: every type of `candid/deployer.did`, at the crate root, so that callers (the
// client, the tests, the bench, the demo) name the interface and not the rooms that implement it.
pub use backup::{
    ExportManifest, ExportPiece, ExportStream, ReadExportArg, RestorePieceArg, RestoreProgress,
    RestoreSummary,
};
pub use engine::{
    CallResult, ChildId, ChildState, Command, EventKind, Failure, FailureBudget, FailureKind,
    GateOverride, InstallOptions, OnFailure, Path, PauseReason, Policy, RetryPolicy, RollbackCause,
    RolloutPhase, RunStatus, SkipReason, StateCounts, Step, StepRecord, Summary, UpgradeGate,
    Verdict, Verification, WasmMemoryPersistence, WavePlan, WaveSize, WaveSummary,
};
pub use error::{Error, ErrorKind, Quota, TextField};
pub use fleet::{ChildClaim, ChildInfo, ChildPage, FleetError, Label, ListChildrenArg, Selector};
pub use proxy::{
    ListProxyCallsArg, ProxyArgs, ProxyCall, ProxyCallPage, ProxyError, ProxyOk, ProxyResult,
};
pub use release_store::StorageStats;
pub use releases::{
    Blessing, ListReleasesArg, Release, ReleaseChunkArg, ReleasePage, ReleaseReference,
    ReleaseSelector, ReleaseSummary, SetReleaseBlessingArg,
};
pub use roles::{Role, RoleAssignment};
pub use rollouts::{
    AdoptChildrenArg, ChildHistory, ChildHistoryArg, ChunkStore, EventPage, ListEventsArg,
    ListRolloutsArg, PolicyArg, PrepareUpgradeArg, RestoreChildArg, RolloutEvent, RolloutInfo,
    RolloutOperation, RolloutPage, RolloutPhaseFilter, StartBackupRunArg, StartRolloutArg,
    UpgradeReadiness,
};
pub use state::{InitArg, UpgradeArg};
pub use uploads::{
    UploadChunkArg, UploadOpenArg, UploadSetting, UploadSettings, UploadSettingsUpdate,
    UploadStatus,
};
pub use version::VersionInfo;
pub use wasm_check::ModuleEncoding;
