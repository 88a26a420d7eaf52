//! Upload sessions: a module on its way in, chunk by chunk, before it becomes a release.
//!
//! An upload is declared up front (SHA-256, size, chunk size), so every chunk's expected length
//! is known and the status can name exactly the chunks still missing. Chunks arrive by index in
//! any order; each one is staged in the block store and the upload keeps its [`Extent`]. Nothing
//! is hashed on the way in: SHA-256 costs about 45 instructions per byte in Wasm, more than the
//! ingestion budget, so commit hashes every chunk once (the per-chunk hashes of the release) while
//! it also hashes the whole module.
//!
//! An upload that sees no activity for the configured time to live expires. It then leaves a
//! tombstone for [`TOMBSTONE_RETENTION_NANOS`], so a client coming back late learns that its
//! upload expired rather than that it never existed; a committed upload leaves one too, naming
//! its release, so a retried commit returns that release.

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Serialize;
use serde_bytes::{ByteArray, ByteBuf};

use crate::block_store::Extent;
use crate::cbor::Cbor;
use crate::error::{ErrorKind, TextField};
use crate::hash::Sha256Hash;
use crate::wasm_check::MAX_MODULE_BYTES;

/// The largest chunk: the management canister's `upload_chunk` limit, so a release's chunks can
/// be handed to a chunk store unchanged. Also the default chunk size.
pub const MAX_CHUNK_BYTES: u32 = 1024 * 1024;
/// The most chunks in one module: the capacity of the IC's Wasm chunk store, which
/// `install_chunked_code` reads the chunks from.
pub const MAX_CHUNKS: u32 = 100;
/// How long an expired or committed upload's tombstone is kept.
pub const TOMBSTONE_RETENTION_NANOS: u64 = 7 * 24 * 3600 * NANOS_PER_SECOND;
/// Byte limits of the release texts.
pub const MAX_NAME_BYTES: usize = 64;
pub const MAX_VERSION_BYTES: usize = 64;
pub const MAX_NOTES_BYTES: usize = 4096;

pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The argument of `upload_open`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadOpenArg {
    /// SHA-256 of the whole module, as it will be stored (gzip bytes for a gzipped module).
    pub sha256: ByteBuf,
    /// Module size in bytes.
    pub size: u64,
    /// Bytes per chunk, except the last; default and maximum [`MAX_CHUNK_BYTES`].
    pub chunk_size: Option<u32>,
    pub name: String,
    pub version: String,
    pub notes: Option<String>,
}

/// The argument of `upload_chunk`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadChunkArg {
    pub upload_id: u64,
    pub index: u32,
    pub bytes: ByteBuf,
}

/// Where an open upload stands.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadStatus {
    pub upload_id: u64,
    pub sha256: ByteBuf,
    pub size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub name: String,
    pub version: String,
    pub notes: Option<String>,
    pub opened_by: Principal,
    /// Nanoseconds since the epoch, like every time in the interface.
    pub opened_at: u64,
    pub bytes_received: u64,
    /// Indices of the chunks not received yet, ascending.
    pub missing_chunks: Vec<u32>,
    /// When the upload expires unless a chunk arrives or it is opened again first.
    pub expires_at: u64,
}

/// What is stored per upload id. The serde names are stored: renaming is a schema change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum UploadRecord {
    Open(OpenUpload),
    /// Expired at `expired_at`; its blocks are free.
    Expired {
        expired_at: u64,
    },
    /// Committed as the release with this module hash.
    Committed {
        release_sha256: ByteArray<32>,
        committed_at: u64,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OpenUpload {
    pub sha256: ByteArray<32>,
    pub size: u64,
    pub chunk_size: u32,
    pub name: String,
    pub version: String,
    pub notes: Option<String>,
    pub opened_by: Principal,
    pub opened_at: u64,
    pub expires_at: u64,
    /// One slot per chunk index: the staged bytes, once received.
    pub chunks: Vec<Option<Extent>>,
}

impl OpenUpload {
    pub fn chunk_count(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// The length chunk `index` must have: `chunk_size`, except for a shorter last chunk.
    pub fn expected_len(&self, index: u32) -> u32 {
        let start = u64::from(index) * u64::from(self.chunk_size);
        (self.size - start).min(u64::from(self.chunk_size)) as u32
    }

    pub fn bytes_received(&self) -> u64 {
        self.chunks
            .iter()
            .flatten()
            .map(|extent| u64::from(extent.len))
            .sum()
    }

    pub fn missing_chunks(&self) -> Vec<u32> {
        (0..self.chunk_count())
            .filter(|&index| self.chunks[index as usize].is_none())
            .collect()
    }

    pub fn status(&self, upload_id: u64) -> UploadStatus {
        UploadStatus {
            upload_id,
            sha256: ByteBuf::from(self.sha256.to_vec()),
            size: self.size,
            chunk_size: self.chunk_size,
            chunk_count: self.chunk_count(),
            name: self.name.clone(),
            version: self.version.clone(),
            notes: self.notes.clone(),
            opened_by: self.opened_by,
            opened_at: self.opened_at,
            bytes_received: self.bytes_received(),
            missing_chunks: self.missing_chunks(),
            expires_at: self.expires_at,
        }
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// Limits on uploads, set by admins. Stored in the release store's config (CBOR, by field name).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadSettings {
    /// An upload expires this long after its last chunk (or its last open).
    pub upload_ttl_seconds: u64,
    /// How many uploads may be open at once.
    pub max_open_uploads: u32,
    /// The declared sizes of all open uploads together.
    pub max_staged_bytes: u64,
    /// How many releases the deployer keeps: what bounds its stable memory for releases and
    /// the reads that go over them. Release 0.1 stored no such field; it reads as the default.
    #[serde(default = "default_max_releases")]
    pub max_releases: u32,
}

pub const DEFAULT_MAX_RELEASES: u32 = 1_000;

fn default_max_releases() -> u32 {
    DEFAULT_MAX_RELEASES
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            upload_ttl_seconds: 24 * 3600,
            max_open_uploads: 10,
            max_staged_bytes: 1024 * 1024 * 1024,
            max_releases: DEFAULT_MAX_RELEASES,
        }
    }
}

/// The argument of `set_upload_settings`: the settings to change.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadSettingsUpdate {
    pub upload_ttl_seconds: Option<u64>,
    pub max_open_uploads: Option<u32>,
    pub max_staged_bytes: Option<u64>,
    pub max_releases: Option<u32>,
}

/// A setting, named in [`ErrorKind::SettingOutOfRange`].
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadSetting {
    UploadTtlSeconds,
    MaxOpenUploads,
    MaxStagedBytes,
    MaxReleases,
}

impl UploadSetting {
    /// The values an admin may choose: at least a minute to upload a chunk; at least one
    /// upload of one full chunk; at most a month, a thousand uploads, and 256 GiB; between one
    /// and ten thousand releases.
    fn range(self) -> (u64, u64) {
        match self {
            Self::UploadTtlSeconds => (60, 30 * 24 * 3600),
            Self::MaxOpenUploads => (1, 1000),
            Self::MaxStagedBytes => (u64::from(MAX_CHUNK_BYTES), 256 * 1024 * 1024 * 1024),
            Self::MaxReleases => (1, 10_000),
        }
    }

    fn check(self, value: u64) -> Result<(), ErrorKind> {
        let (min, max) = self.range();
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(ErrorKind::SettingOutOfRange {
                setting: self,
                value,
                min,
                max,
            })
        }
    }
}

impl UploadSettings {
    /// The settings with `update` applied, if every new value is in range.
    pub fn updated(&self, update: &UploadSettingsUpdate) -> Result<Self, ErrorKind> {
        let mut settings = self.clone();
        if let Some(ttl) = update.upload_ttl_seconds {
            UploadSetting::UploadTtlSeconds.check(ttl)?;
            settings.upload_ttl_seconds = ttl;
        }
        if let Some(max) = update.max_open_uploads {
            UploadSetting::MaxOpenUploads.check(u64::from(max))?;
            settings.max_open_uploads = max;
        }
        if let Some(max) = update.max_staged_bytes {
            UploadSetting::MaxStagedBytes.check(max)?;
            settings.max_staged_bytes = max;
        }
        if let Some(max) = update.max_releases {
            UploadSetting::MaxReleases.check(u64::from(max))?;
            settings.max_releases = max;
        }
        Ok(settings)
    }

    pub fn ttl_nanos(&self) -> u64 {
        self.upload_ttl_seconds * NANOS_PER_SECOND
    }
}

/// Checks an `upload_open` argument on its own and returns the declared hash and chunk size.
pub fn validate_open(arg: &UploadOpenArg) -> Result<(Sha256Hash, u32), ErrorKind> {
    let sha256 = parse_sha256(&arg.sha256)?;
    check_text(TextField::Name, &arg.name, 1, MAX_NAME_BYTES)?;
    check_text(TextField::Version, &arg.version, 1, MAX_VERSION_BYTES)?;
    if let Some(notes) = &arg.notes {
        check_text(TextField::Notes, notes, 0, MAX_NOTES_BYTES)?;
    }
    if arg.size > MAX_MODULE_BYTES {
        return Err(ErrorKind::ModuleTooLarge {
            size: arg.size,
            max: MAX_MODULE_BYTES,
        });
    }
    if arg.size < MIN_MODULE_BYTES {
        return Err(ErrorKind::InvalidWasm {
            reason: format!(
                "a module of {} bytes cannot hold the {MIN_MODULE_BYTES}-byte Wasm header",
                arg.size
            ),
        });
    }
    let chunk_size = arg.chunk_size.unwrap_or(MAX_CHUNK_BYTES);
    if chunk_size == 0 || chunk_size > MAX_CHUNK_BYTES {
        return Err(ErrorKind::InvalidChunkSize {
            chunk_size,
            max: MAX_CHUNK_BYTES,
        });
    }
    let chunk_count = arg.size.div_ceil(u64::from(chunk_size));
    if chunk_count > u64::from(MAX_CHUNKS) {
        return Err(ErrorKind::TooManyChunks {
            chunk_count,
            max: MAX_CHUNKS,
            min_chunk_size: arg.size.div_ceil(u64::from(MAX_CHUNKS)),
        });
    }
    Ok((sha256, chunk_size))
}

/// The Wasm header is 8 bytes; anything shorter cannot be a module.
const MIN_MODULE_BYTES: u64 = 8;

pub fn parse_sha256(bytes: &[u8]) -> Result<Sha256Hash, ErrorKind> {
    bytes.try_into().map_err(|_| ErrorKind::InvalidSha256 {
        length: bytes.len() as u64,
    })
}

pub(crate) fn check_text(
    field: TextField,
    text: &str,
    min: usize,
    max: usize,
) -> Result<(), ErrorKind> {
    if (min..=max).contains(&text.len()) {
        Ok(())
    } else {
        Err(ErrorKind::InvalidTextLength {
            field,
            length: text.len() as u64,
            min: min as u64,
            max: max as u64,
        })
    }
}

/// The uploads table: upload id (u64, big-endian) to its CBOR record.
pub struct UploadSessions<M: Memory> {
    records: StableBTreeMap<u64, Cbor<UploadRecord>, M>,
}

impl<M: Memory> UploadSessions<M> {
    pub fn init(memory: M) -> Self {
        Self {
            records: StableBTreeMap::init(memory),
        }
    }

    pub fn get(&self, upload_id: u64) -> Option<UploadRecord> {
        self.records.get(&upload_id).map(|Cbor(record)| record)
    }

    pub fn insert(&mut self, upload_id: u64, record: UploadRecord) {
        self.records.insert(upload_id, Cbor(record));
    }

    pub fn remove(&mut self, upload_id: u64) {
        self.records.remove(&upload_id);
    }

    /// Every record, by id. The table is small: open uploads are bounded by the quota, and
    /// tombstones by their retention.
    pub fn iter(&self) -> impl Iterator<Item = (u64, UploadRecord)> + '_ {
        self.records
            .iter()
            .map(|entry| (*entry.key(), entry.value().0))
    }
}

#[cfg(test)]
mod tests;
