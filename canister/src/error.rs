//! The one error shape every deployer endpoint returns.
//!
//! [`ErrorKind`] carries the meaning: a Candid variant whose cases hold the facts a client needs
//! to react programmatically. [`Error`] pairs it with a human sentence that says what to do next,
//! so a `dfx` user sees the remedy without knowing the variant. The message is derived from the
//! kind and nothing else, which is why `Error` can only be built from an `ErrorKind`.
//!
//! Later features extend `ErrorKind` with their own cases (and a `Display` arm each); they do not
//! add new error types to the interface.

use std::fmt;

use candid::{CandidType, Deserialize, Principal};
use serde_bytes::ByteBuf;

use crate::backup::ExportStream;
use crate::engine::{Command, RolloutPhase, UpgradeGate};
use crate::fleet::FleetError;
use crate::hash::hex;
use crate::releases::{ReleaseReference, ReleaseSelector};
use crate::roles::Role;
use crate::uploads::UploadSetting;

/// Why a request was refused. Match on this, not on [`Error::message`].
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller does not hold a role that grants `required`.
    NotAuthorized { caller: Principal, required: Role },
    /// Removing the role would leave the deployer without any admin.
    LastAdmin { admin: Principal },
    /// Roles cannot be granted to the anonymous principal: anyone could exercise them.
    AnonymousPrincipal,
    /// No upload has this id (never opened, aborted, or its tombstone was purged).
    UnknownUpload { upload_id: u64 },
    /// The upload saw no activity for the upload time to live; its chunks are gone.
    UploadExpired { upload_id: u64, expired_at: u64 },
    /// The upload was committed as the release `release_sha256`.
    UploadCommitted {
        upload_id: u64,
        release_sha256: ByteBuf,
    },
    /// A SHA-256 argument is not 32 bytes long.
    InvalidSha256 { length: u64 },
    /// A release text is empty or too long (lengths in UTF-8 bytes).
    InvalidTextLength {
        field: TextField,
        length: u64,
        min: u64,
        max: u64,
    },
    /// The requested chunk size is 0 or above the maximum.
    InvalidChunkSize { chunk_size: u32, max: u32 },
    /// The module would have more chunks than the IC's chunk store holds.
    TooManyChunks {
        chunk_count: u64,
        max: u32,
        min_chunk_size: u64,
    },
    /// The declared module size is above the IC's limit.
    ModuleTooLarge { size: u64, max: u64 },
    /// The gzipped module decompresses to more than the IC's limit.
    UncompressedModuleTooLarge { max: u64 },
    /// Opening the upload would exceed a quota.
    QuotaExceeded {
        quota: Quota,
        limit: u64,
        in_use: u64,
        requested: u64,
    },
    /// There is no chunk at `index`.
    ChunkIndexOutOfRange { index: u32, chunk_count: u32 },
    /// The chunk is larger than any chunk may be.
    ChunkTooLarge { size: u64, max: u32 },
    /// The chunk is not as long as the upload's chunk size says it must be.
    ChunkSizeMismatch {
        index: u32,
        size: u64,
        expected: u32,
    },
    /// Different bytes were already received for this index.
    ChunkConflict {
        index: u32,
        stored_sha256: ByteBuf,
        sent_sha256: ByteBuf,
    },
    /// Commit needs every chunk; these are missing.
    MissingChunks { missing: Vec<u32> },
    /// The received module does not hash to the SHA-256 declared at open.
    HashMismatch { expected: ByteBuf, actual: ByteBuf },
    /// The module is neither Wasm nor gzipped Wasm.
    InvalidWasm { reason: String },
    /// No release matches.
    ReleaseNotFound { release: ReleaseSelector },
    /// Another module is already released under this name and version.
    ReleaseVersionTaken {
        name: String,
        version: String,
        sha256: ByteBuf,
    },
    /// The release is referenced and cannot be deleted.
    ReleaseInUse {
        sha256: ByteBuf,
        references: Vec<ReleaseReference>,
    },
    /// A setting's new value is outside its range.
    SettingOutOfRange {
        setting: UploadSetting,
        value: u64,
        min: u64,
        max: u64,
    },
    /// The fleet registry refused: a child not adopted or held by another rollout, a label
    /// that is not valid, ...
    Fleet(FleetError),
    /// The deployer is not a controller of the canister, so it cannot manage it.
    NotAController { canister_id: Principal },
    /// The management canister rejected reading the canister's status.
    CanisterStatusUnavailable {
        canister_id: Principal,
        code: u32,
        message: String,
    },
    /// A chunk store canister must be empty: the deployer installs nothing into it.
    StoreNotEmpty { canister_id: Principal },
    /// The release goes through a chunk store, and no store canister is registered for this
    /// subnet of selected children.
    NoChunkStore { subnet: Principal },
    /// The deployer is governance-only: only `governance` (through proposals) changes anything.
    GovernanceOnly { governance: Principal },
    /// The deployer rolls out blessed releases only, and this one is not blessed.
    ReleaseNotBlessed { sha256: ByteBuf },
    /// The rollout's plan no longer has the hash it was reviewed or voted on with: the fleet or
    /// the release changed since.
    PlanChanged { expected: ByteBuf, actual: ByteBuf },
    /// More than `at_once` children are selected (or labels whose index takes more than a
    /// slice's budget to read), more than a preview (a query) plans at once, and no plan of the
    /// rollout was prepared.
    PlanNotPrepared { at_once: u64 },
    /// `max` rollout plans are being prepared already (each holds its selection on the heap).
    PreparesInFlight { max: u32 },
    /// The subnet's chunk store serves an active rollout's installs.
    StoreInUse { subnet: Principal, rollout_id: u64 },
    /// The rollout's selection or policy cannot be carried out; `reason` says why.
    InvalidRolloutPlan { reason: String },
    /// No rollout has this id.
    RolloutNotFound { rollout_id: u64 },
    /// The rollout finished long ago: its overview is kept, its children's details were pruned.
    RolloutDetailsPruned { rollout_id: u64 },
    /// The command does not apply in the rollout's phase.
    RolloutCommandRefused {
        rollout_id: u64,
        command: Command,
        phase: RolloutPhase,
    },
    /// The rollout took no snapshots, so it cannot be rolled back.
    NothingToRollBack { rollout_id: u64 },
    /// The rollout reached a final phase: it has nothing in flight to reconcile.
    RolloutFinished {
        rollout_id: u64,
        phase: RolloutPhase,
    },
    /// The canister is not one of the rollout's children.
    NotInRollout {
        rollout_id: u64,
        canister_id: Principal,
    },
    /// Selected children fail an upgrade gate the policy does not override: `children` of
    /// them, `canister_id` first, which runs `running` (a release's `name@version`, a module's
    /// hash, or nothing); `detail` says why when the gate's name does not (the Candid
    /// incompatibilities; boxed, so that every `Result<_, Error>` stays small).
    UpgradeGateClosed {
        gate: UpgradeGate,
        children: u64,
        canister_id: Principal,
        running: Option<String>,
        detail: Option<Box<str>>,
    },
    /// `read_export` named an export that is no longer held (another was taken since, or the
    /// deployer was upgraded).
    ExportNotHeld { exported_at: u64 },
    /// The stream is not part of the export, or no longer readable.
    ExportStreamMissing { stream: ExportStream },
    /// The backup's document format or stable schema is not the one this build reads.
    BackupVersionUnsupported {
        format: u32,
        schema: u32,
        supported_format: u32,
        supported_schema: u32,
    },
    /// A restore goes into a freshly installed deployer only; this one holds `holds`.
    RestoreIntoDeployerWithState { holds: String },
    /// No restore was begun (or it was committed, or the deployer was upgraded since).
    RestoreNotBegun,
    /// A piece's bytes are not those the manifest lists.
    RestorePieceMismatch {
        stream: ExportStream,
        expected_sha256: ByteBuf,
        found_sha256: ByteBuf,
    },
    /// `missing` streams have not arrived, `first` among them.
    RestoreIncomplete { missing: u64, first: ExportStream },
    /// The manifest or the document cannot be restored, for `reason`.
    RestoreInvalid { reason: String },
    /// A restore's commit is writing the state (`written` of its `entries` so far): every other
    /// method and the deployer's upgrade wait for its end.
    RestoreCommitting { written: u64, entries: u64 },
}

/// A release text, named in [`ErrorKind::InvalidTextLength`].
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextField {
    Name,
    Version,
    Notes,
}

/// A limit on open uploads, named in [`ErrorKind::QuotaExceeded`].
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    /// How many uploads may be open at once.
    OpenUploads,
    /// The declared sizes of the open uploads, summed.
    StagedBytes,
    /// How many releases the deployer keeps.
    Releases,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthorized { caller, required } if *caller == Principal::anonymous() => {
                write!(
                    f,
                    "this method requires the {required} role and the call is anonymous: \
                 call with an identity that holds {required}"
                )
            }
            Self::NotAuthorized { caller, required } => write!(
                f,
                "{caller} does not hold the {required} role: an admin can grant it with \
                 add_role(principal \"{caller}\", variant {{ {required} }})"
            ),
            Self::LastAdmin { admin } => write!(
                f,
                "{admin} is the last admin and cannot lose the Admin role: \
                 grant Admin to another principal with add_role first"
            ),
            Self::AnonymousPrincipal => write!(
                f,
                "roles cannot be granted to the anonymous principal {}: \
                 pass the principal of an authenticated identity",
                Principal::anonymous()
            ),
            Self::UnknownUpload { upload_id } => write!(
                f,
                "there is no upload {upload_id}: it was never opened, was aborted, or ended more \
                 than a week ago; open the upload again with upload_open"
            ),
            Self::UploadExpired {
                upload_id,
                expired_at,
            } => write!(
                f,
                "upload {upload_id} expired at {expired_at} ns after a period without chunks, and \
                 its chunks were discarded: open it again with upload_open and send every chunk"
            ),
            Self::UploadCommitted {
                upload_id,
                release_sha256,
            } => write!(
                f,
                "upload {upload_id} is already committed as release {}: read it with \
                 get_release; there is nothing left to send",
                hex(release_sha256)
            ),
            Self::InvalidSha256 { length } => write!(
                f,
                "a SHA-256 hash is 32 bytes, this one is {length}: pass the raw digest, not its \
                 hex text"
            ),
            Self::InvalidTextLength {
                field,
                length,
                min,
                max,
            } => write!(
                f,
                "the release {field:?} is {length} bytes of UTF-8; it must be {min} to {max} bytes"
            ),
            Self::InvalidChunkSize { chunk_size, max } => write!(
                f,
                "chunk size {chunk_size} is not allowed: choose 1 to {max} bytes, or leave it \
                 null for {max}"
            ),
            Self::TooManyChunks {
                chunk_count,
                max,
                min_chunk_size,
            } => write!(
                f,
                "the module would be {chunk_count} chunks, more than the {max} that the IC's chunk \
                 store holds: use a chunk size of at least {min_chunk_size} bytes"
            ),
            Self::ModuleTooLarge { size, max } => write!(
                f,
                "a module of {size} bytes is larger than the IC installs ({max} bytes): shrink it, \
                 or gzip it"
            ),
            Self::UncompressedModuleTooLarge { max } => write!(
                f,
                "the gzipped module decompresses to more than {max} bytes, which the IC does not \
                 install: shrink the Wasm, then abort this upload and upload the new module"
            ),
            Self::QuotaExceeded {
                quota: Quota::OpenUploads,
                limit,
                in_use,
                ..
            } => write!(
                f,
                "{in_use} uploads are open, the limit is {limit}: commit or abort one (or wait for \
                 one to expire), or ask an admin to raise max_open_uploads"
            ),
            Self::QuotaExceeded {
                quota: Quota::StagedBytes,
                limit,
                in_use,
                requested,
            } => write!(
                f,
                "open uploads already reserve {in_use} of {limit} staged bytes, and this one needs \
                 {requested} more: commit or abort an upload, or ask an admin to raise \
                 max_staged_bytes"
            ),
            Self::QuotaExceeded {
                quota: Quota::Releases,
                limit,
                in_use,
                ..
            } => write!(
                f,
                "the deployer keeps {in_use} releases, its limit is {limit}: delete releases no \
                 longer needed (delete_release), or ask an admin to raise max_releases"
            ),
            Self::ChunkIndexOutOfRange { index, chunk_count } => write!(
                f,
                "there is no chunk {index}: the module has {chunk_count} chunks, numbered from 0"
            ),
            Self::ChunkTooLarge { size, max } => write!(
                f,
                "a chunk of {size} bytes is larger than the {max}-byte maximum: split the module \
                 into chunks of the upload's chunk size"
            ),
            Self::ChunkSizeMismatch {
                index,
                size,
                expected,
            } => write!(
                f,
                "chunk {index} is {size} bytes but must be {expected}: every chunk is chunk_size \
                 bytes except a shorter last one; check the chunk_size in upload_status"
            ),
            Self::ChunkConflict {
                index,
                stored_sha256,
                sent_sha256,
            } => write!(
                f,
                "chunk {index} was already received with SHA-256 {}, and these bytes hash to {}: \
                 the module changed during the upload; abort it and upload the new module",
                hex(stored_sha256),
                hex(sent_sha256)
            ),
            Self::MissingChunks { missing } => write!(
                f,
                "{} chunks are missing ({missing:?}): send them with upload_chunk, then commit",
                missing.len()
            ),
            Self::HashMismatch { expected, actual } => write!(
                f,
                "the received module hashes to {}, not to the declared {}: a chunk is wrong or the \
                 hash was declared for another module; abort the upload and upload again",
                hex(actual),
                hex(expected)
            ),
            Self::InvalidWasm { reason } => write!(
                f,
                "the module is not installable Wasm: {reason}; abort the upload and upload a Wasm \
                 module or a gzipped one"
            ),
            Self::ReleaseNotFound {
                release: ReleaseSelector::Sha256(sha256),
            } => write!(
                f,
                "no release has module hash {}: list_releases shows the releases",
                hex(sha256)
            ),
            Self::ReleaseNotFound {
                release: ReleaseSelector::NameVersion { name, version },
            } => write!(
                f,
                "no release is named {name} {version}: list_releases shows the releases"
            ),
            Self::ReleaseVersionTaken {
                name,
                version,
                sha256,
            } => write!(
                f,
                "{name} {version} is already the release with module hash {}, and releases never \
                 change: give this module another version (abort this upload and open it again)",
                hex(sha256)
            ),
            Self::ReleaseInUse { sha256, references } => write!(
                f,
                "release {} is still referenced by {references:?}: finish or remove those first",
                hex(sha256)
            ),
            Self::SettingOutOfRange {
                setting,
                value,
                min,
                max,
            } => write!(
                f,
                "{setting:?} cannot be {value}: choose a value from {min} to {max}"
            ),
            Self::Fleet(error) => write!(f, "{error}"),
            Self::NotAController { canister_id } => write!(
                f,
                "the deployer is not a controller of {canister_id}: add the deployer to its \
                 controllers (dfx canister update-settings --add-controller), then try again"
            ),
            Self::CanisterStatusUnavailable {
                canister_id,
                code,
                message,
            } => write!(
                f,
                "reading the status of {canister_id} was rejected (code {code}: {message}): \
                 check that the canister exists and that the deployer controls it"
            ),
            Self::StoreNotEmpty { canister_id } => write!(
                f,
                "{canister_id} has a module installed; a chunk store must be an empty canister \
                 the deployer controls: create one, or uninstall its code"
            ),
            Self::GovernanceOnly { governance } => write!(
                f,
                "the deployer is governance-only: changes go through proposals executed by \
                 {governance}; reads stay open (controllers can lift the mode with an upgrade \
                 argument governance_only = false)"
            ),
            Self::ReleaseNotBlessed { sha256 } => write!(
                f,
                "release {} is not blessed for rollouts, and the deployer rolls out blessed \
                 releases only: an admin blesses it with set_release_blessing (by proposal, \
                 apply_by_proposal with SetReleaseBlessing, when the deployer is \
                 governance-only)",
                hex(sha256)
            ),
            Self::PlanChanged { expected, actual } => write!(
                f,
                "the rollout's plan now has hash {} where {} was reviewed: the fleet or the \
                 release changed since; preview the rollout again and start (or propose) it \
                 with the new hash",
                hex(actual),
                hex(expected)
            ),
            Self::PlanNotPrepared { at_once } => write!(
                f,
                "the selection is larger than a preview or a proposal's validation plans at once \
                 (more than {at_once} children, or labels whose index takes longer to read): call \
                 prepare_rollout with the same argument (an update that plans a slice of \
                 children per message), then preview or propose"
            ),
            Self::PreparesInFlight { max } => write!(
                f,
                "{max} rollout plans are being prepared already: call prepare_rollout again once \
                 one of them answered"
            ),
            Self::StoreInUse { subnet, rollout_id } => write!(
                f,
                "rollout {rollout_id} installs through the chunk stores, among them subnet \
                 {subnet}'s: unregister it once the rollout finished, or abort the rollout"
            ),
            Self::NoChunkStore { subnet } => write!(
                f,
                "no chunk store canister is registered for subnet {subnet} (a release installed \
                 through the stores needs one on each selected child's subnet): register one \
                 with register_chunk_store"
            ),
            Self::InvalidRolloutPlan { reason } => {
                write!(f, "the rollout cannot be planned: {reason}")
            }
            Self::RolloutNotFound { rollout_id } => write!(
                f,
                "there is no rollout {rollout_id}: list_rollouts shows the rollouts"
            ),
            Self::RolloutDetailsPruned { rollout_id } => write!(
                f,
                "rollout {rollout_id} finished before the last {} finished rollouts: get_rollout \
                 shows its summary, but its children's histories were pruned and it can no \
                 longer be rolled back; list_events still holds its events",
                crate::rollouts::RETAINED_FINISHED_CHECKPOINTS
            ),
            Self::RolloutCommandRefused {
                rollout_id,
                command,
                phase,
            } => write!(
                f,
                "rollout {rollout_id} is {phase:?}, where {command:?} does not apply: \
                 get_rollout shows its phase"
            ),
            Self::RolloutFinished { rollout_id, phase } => write!(
                f,
                "rollout {rollout_id} is {phase:?}, a final phase: it has nothing to reconcile; \
                 rollback_rollout starts a rollback of its children"
            ),
            Self::NothingToRollBack { rollout_id } => write!(
                f,
                "rollout {rollout_id} has nothing to roll back: it took no snapshots \
                 (snapshot_before_install was off), or it is a backup run or a restore, which \
                 install nothing"
            ),
            Self::NotInRollout {
                rollout_id,
                canister_id,
            } => write!(
                f,
                "{canister_id} is not a child of rollout {rollout_id}: get_rollout shows its \
                 children's counts, list_events their events"
            ),
            Self::ExportNotHeld { exported_at } => write!(
                f,
                "the export taken at {exported_at} is no longer held (another export replaced \
                 it, the deployer was upgraded, or its state changed too much while the \
                 document was taken): take one with start_export and read that"
            ),
            Self::ExportStreamMissing { stream } => write!(
                f,
                "{stream} is not part of the export (or its release was deleted since): read \
                 the streams the manifest lists, or take a new export"
            ),
            Self::BackupVersionUnsupported {
                format,
                schema,
                supported_format,
                supported_schema,
            } => write!(
                f,
                "the backup is in document format {format} of schema {schema}; this build reads \
                 format {supported_format} of schema {supported_schema}: restore it with the \
                 deployer release that exported it, then upgrade"
            ),
            Self::RestoreIntoDeployerWithState { holds } => write!(
                f,
                "this deployer holds {holds}; a restore goes into a freshly installed deployer \
                 only: install a new one (or reinstall this one) and restore there"
            ),
            Self::RestoreNotBegun => write!(
                f,
                "no restore is under way: begin one with begin_restore and the export's manifest"
            ),
            Self::RestorePieceMismatch {
                stream,
                expected_sha256,
                found_sha256,
            } => write!(
                f,
                "{stream} hashes to {}, not to the manifest's {}: read it from the export again \
                 and send it again",
                hex(found_sha256),
                hex(expected_sha256)
            ),
            Self::RestoreIncomplete { missing, first } => write!(
                f,
                "{missing} streams of the export have not arrived, {first} first: send them with \
                 restore_piece, then commit again"
            ),
            Self::RestoreInvalid { reason } => write!(f, "the backup cannot be restored: {reason}"),
            Self::RestoreCommitting { written, entries } => write!(
                f,
                "a restore is being written into this deployer ({written} of {entries} entries): \
                 call commit_restore to finish it (it goes on where it stands), then call again"
            ),
            Self::UpgradeGateClosed {
                gate,
                children,
                canister_id,
                running,
                detail,
            } => {
                let running = running.as_deref().unwrap_or("no module");
                let detail = detail
                    .as_deref()
                    .map(|detail| format!(" ({detail})"))
                    .unwrap_or_default();
                let remedy = match gate {
                    UpgradeGate::KnownModule => {
                        "upload the module they run as a release, so that it is known"
                    }
                    UpgradeGate::HigherVersion => {
                        "roll out a release of the same name with a higher version"
                    }
                    UpgradeGate::CandidCompatible => {
                        "roll out a release whose service keeps every method and type the \
                         children's clients use"
                    }
                };
                write!(
                    f,
                    "{children} selected children fail the {gate:?} gate, {canister_id} first, \
                     which runs {running}{detail}: {remedy}; or, knowing why, override the gate in the \
                     policy with gate_overrides = opt vec {{ record {{ gate = variant \
                     {{ {gate:?} }}; reason = \"...\" }} }}"
                )
            }
        }
    }
}

/// A refused request: what went wrong ([`ErrorKind`]) and what to do about it (`message`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        let message = kind.to_string();
        Self { kind, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_rendered_from_the_kind() {
        let caller = Principal::from_slice(&[7; 29]);
        let error = Error::from(ErrorKind::NotAuthorized {
            caller,
            required: Role::Admin,
        });
        assert_eq!(
            error.message(),
            format!(
                "{caller} does not hold the Admin role: an admin can grant it with \
                 add_role(principal \"{caller}\", variant {{ Admin }})"
            )
        );
    }

    #[test]
    fn anonymous_caller_is_told_to_use_an_identity() {
        let error = Error::from(ErrorKind::NotAuthorized {
            caller: Principal::anonymous(),
            required: Role::Operator,
        });
        assert!(error.message().contains("the call is anonymous"));
        assert!(error.message().contains("holds Operator"));
    }
}
