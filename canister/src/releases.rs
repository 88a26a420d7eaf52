//! The release catalog: immutable modules, addressed by their SHA-256, with their metadata.
//!
//! A release is created only by committing an upload and never changes afterwards; it can be
//! deleted once nothing references it. Three tables hold the catalog: the records by module hash,
//! a unique index by (name, version), and an index by creation sequence for newest-first listing.
//! The bytes are not here: a release names its chunks by hash, in order, and the block store
//! holds them.

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Serialize;
use serde_bytes::{ByteArray, ByteBuf};

use crate::backup::SectionVisitor;
use crate::cbor::Cbor;
use crate::hash::Sha256Hash;
use crate::memory::ByteKey;
use crate::uploads::{MAX_NAME_BYTES, MAX_VERSION_BYTES};
use crate::wasm_check::ModuleEncoding;

/// Releases per `list_releases` page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The most releases per page: a page of summaries with full notes stays far below the 3 MiB
/// query reply limit.
pub const MAX_PAGE_SIZE: u32 = 100;

/// A release as listed: everything but the per-chunk hashes and the Candid interface.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSummary {
    pub sha256: ByteBuf,
    pub name: String,
    pub version: String,
    pub notes: Option<String>,
    /// Module size as stored (compressed, for gzip).
    pub size: u64,
    pub uncompressed_size: u64,
    pub encoding: ModuleEncoding,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub has_candid_service: bool,
    /// The module exports the private section `enhanced-orthogonal-persistence` (Motoko's
    /// enhanced orthogonal persistence): its upgrades need `wasm_memory_persistence`. Null for
    /// a release committed before the deployer recorded it (release 0.1).
    pub enhanced_orthogonal_persistence: Option<bool>,
    pub created_at: u64,
    pub created_by: Principal,
    /// Creation order: a later release has a larger sequence.
    pub sequence: u64,
}

/// A release in full, as `get_release` returns it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub summary: ReleaseSummary,
    /// SHA-256 of each chunk, in order: the `chunk_hashes_list` of `install_chunked_code`.
    pub chunk_sha256: Vec<ByteBuf>,
    /// The module's `candid:service` metadata, if it has any.
    pub candid_service: Option<String>,
    /// Whether, since when and by whom the release is blessed for rollouts.
    pub blessing: Option<Blessing>,
}

/// A release blessed for rollouts: who blessed it and when. When the deployer requires blessed
/// releases (`require_blessed_releases`), a rollout of any other release is refused, so that a
/// DAO reviews a module once (a verified build, say) and later rollouts name only it. Stored
/// as CBOR (memory 26); the serde names are stored.
#[derive(CandidType, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blessing {
    pub blessed_at: u64,
    pub blessed_by: Principal,
}

impl std::fmt::Display for Blessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "by {} at {} ns", self.blessed_by, self.blessed_at)
    }
}

/// Argument of `set_release_blessing`: bless the release with module hash `sha256` for
/// rollouts, or withdraw its blessing.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SetReleaseBlessingArg {
    pub sha256: ByteBuf,
    pub blessed: bool,
}

/// A release's module as the deployer itself reads it to install it, in typed values: the wire
/// [`Release`] (hashes as `ByteBuf`) is only for the Candid entry points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseModule {
    pub sha256: Sha256Hash,
    /// Module size as stored (compressed, for gzip).
    pub size: u64,
    /// SHA-256 of each chunk, in order.
    pub chunk_sha256: Vec<Sha256Hash>,
    /// See [`ReleaseSummary::enhanced_orthogonal_persistence`].
    pub enhanced_orthogonal_persistence: Option<bool>,
}

/// Names a release.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ReleaseSelector {
    Sha256(ByteBuf),
    NameVersion { name: String, version: String },
}

#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListReleasesArg {
    /// Only releases with a smaller sequence: the `next_before` of the previous page.
    pub before: Option<u64>,
    /// Default [`DEFAULT_PAGE_SIZE`], at most [`MAX_PAGE_SIZE`].
    pub limit: Option<u32>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReleasePage {
    /// Newest first.
    pub releases: Vec<ReleaseSummary>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReleaseChunkArg {
    pub sha256: ByteBuf,
    pub index: u32,
}

/// Something that keeps a release from being deleted.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ReleaseReference {
    /// A rollout that installs, or may roll back to, the release.
    Rollout { rollout_id: u64 },
}

/// Whatever can reference releases answers who references one. Rollouts will; today nothing
/// does (see [`NoReferences`]).
pub trait ReleaseReferences {
    fn references(&self, sha256: &Sha256Hash) -> Vec<ReleaseReference>;
}

/// The referencers of this version of the deployer: none yet. The rollout feature replaces it
/// with its rollout table.
pub struct NoReferences;

impl ReleaseReferences for NoReferences {
    fn references(&self, _sha256: &Sha256Hash) -> Vec<ReleaseReference> {
        Vec::new()
    }
}

/// What is stored per release. The serde names are stored: renaming is a schema change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRecord {
    pub sha256: ByteArray<32>,
    pub name: String,
    pub version: String,
    pub notes: Option<String>,
    pub size: u64,
    pub uncompressed_size: u64,
    pub encoding: ModuleEncoding,
    pub chunk_size: u32,
    pub chunk_sha256: Vec<ByteArray<32>>,
    pub candid_service: Option<String>,
    /// Release 0.1 did not record it: its records read as `None` (not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_orthogonal_persistence: Option<bool>,
    pub created_at: u64,
    pub created_by: Principal,
    pub sequence: u64,
}

impl ReleaseRecord {
    pub fn summary(&self) -> ReleaseSummary {
        ReleaseSummary {
            sha256: ByteBuf::from(self.sha256.to_vec()),
            name: self.name.clone(),
            version: self.version.clone(),
            notes: self.notes.clone(),
            size: self.size,
            uncompressed_size: self.uncompressed_size,
            encoding: self.encoding,
            chunk_size: self.chunk_size,
            chunk_count: self.chunk_sha256.len() as u32,
            has_candid_service: self.candid_service.is_some(),
            enhanced_orthogonal_persistence: self.enhanced_orthogonal_persistence,
            created_at: self.created_at,
            created_by: self.created_by,
            sequence: self.sequence,
        }
    }

    pub fn module(&self) -> ReleaseModule {
        ReleaseModule {
            sha256: self.sha256.into_array(),
            size: self.size,
            chunk_sha256: self.chunk_sha256.iter().map(|hash| **hash).collect(),
            enhanced_orthogonal_persistence: self.enhanced_orthogonal_persistence,
        }
    }

    pub fn release(&self) -> Release {
        Release {
            summary: self.summary(),
            chunk_sha256: self
                .chunk_sha256
                .iter()
                .map(|hash| ByteBuf::from(hash.to_vec()))
                .collect(),
            candid_service: self.candid_service.clone(),
            // Kept beside the catalog by the release store, which fills it in.
            blessing: None,
        }
    }
}

/// Key of the (name, version) index: `len(name) (u8) | name | version`. The length prefix keeps
/// ("ab", "c") and ("a", "bc") apart and groups all versions of a name together.
pub type NameVersionKey = ByteKey<{ 1 + MAX_NAME_BYTES + MAX_VERSION_BYTES }>;

impl NameVersionKey {
    pub fn new(name: &str, version: &str) -> Self {
        Self::of(&[&[name.len() as u8], name.as_bytes(), version.as_bytes()])
    }
}

/// The backup section of the catalog's records, which a restore reads first for their chunks.
pub const RELEASES_SECTION: &str = "releases";

pub struct ReleaseCatalog<M: Memory> {
    by_sha256: StableBTreeMap<Sha256Hash, Cbor<ReleaseRecord>, M>,
    by_name: StableBTreeMap<NameVersionKey, Sha256Hash, M>,
    by_sequence: StableBTreeMap<u64, Sha256Hash, M>,
}

impl<M: Memory> ReleaseCatalog<M> {
    pub fn init(by_sha256: M, by_name: M, by_sequence: M) -> Self {
        Self {
            by_sha256: StableBTreeMap::init(by_sha256),
            by_name: StableBTreeMap::init(by_name),
            by_sequence: StableBTreeMap::init(by_sequence),
        }
    }

    /// See [`crate::backup`].
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map(RELEASES_SECTION, &mut self.by_sha256);
        sections.map("release_names", &mut self.by_name);
        sections.map("release_sequence", &mut self.by_sequence);
    }

    pub fn get(&self, sha256: &Sha256Hash) -> Option<ReleaseRecord> {
        self.by_sha256.get(sha256).map(|Cbor(record)| record)
    }

    /// How many releases there are.
    pub fn count(&self) -> u64 {
        self.by_sha256.len()
    }

    /// The module hash of the release named (`name`, `version`).
    pub fn find(&self, name: &str, version: &str) -> Option<Sha256Hash> {
        self.by_name.get(&NameVersionKey::new(name, version))
    }

    /// Adds a release. The caller has checked that neither its hash nor its name and version
    /// are taken.
    pub fn insert(&mut self, record: ReleaseRecord) {
        let sha256 = record.sha256.into_array();
        self.by_name
            .insert(NameVersionKey::new(&record.name, &record.version), sha256);
        self.by_sequence.insert(record.sequence, sha256);
        self.by_sha256.insert(sha256, Cbor(record));
    }

    pub fn remove(&mut self, sha256: &Sha256Hash) -> Option<ReleaseRecord> {
        let Cbor(record) = self.by_sha256.remove(sha256)?;
        self.by_name
            .remove(&NameVersionKey::new(&record.name, &record.version));
        self.by_sequence.remove(&record.sequence);
        Some(record)
    }

    pub fn page(&self, arg: &ListReleasesArg) -> ReleasePage {
        let limit = arg
            .limit
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE) as usize;
        let newest_first = match arg.before {
            Some(before) => self.by_sequence.range(..before),
            None => self.by_sequence.range(..),
        }
        .rev();
        let mut releases = Vec::with_capacity(limit);
        let mut more = false;
        for entry in newest_first {
            if releases.len() == limit {
                more = true;
                break;
            }
            let record = self.get(&entry.value()).expect("indexed release exists");
            releases.push(record.summary());
        }
        let next_before = releases.last().filter(|_| more).map(|last| last.sequence);
        ReleasePage {
            releases,
            next_before,
        }
    }

    /// Every release, in module-hash order.
    pub fn records(&self) -> impl Iterator<Item = ReleaseRecord> + '_ {
        self.by_sha256.values().map(|Cbor(record)| record)
    }
}

#[cfg(test)]
mod tests;
