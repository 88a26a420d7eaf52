//! The release store: upload sessions ([`crate::uploads`]), the block store that holds chunk
//! bytes ([`crate::block_store`]) and the release catalog ([`crate::releases`]), and the
//! operations that span them (open, chunk, commit, abort, expire, delete).
//!
//! Every operation takes `now` (nanoseconds since the epoch) and is decided by it alone: an
//! upload whose `expires_at` has passed behaves as expired whether or not a sweep has turned it
//! into a tombstone yet, so the timer that sweeps only frees space early and changes no answer.
//! Callers are authorized by the entry points before they get here.

use std::collections::{BTreeMap, BTreeSet};

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};
use serde::Serialize;
use serde_bytes::{ByteArray, ByteBuf};
use sha2::{Digest, Sha256};

use crate::backup::{SectionVisitor, Sections};
use crate::block_store::{BlockStore, Extent};
use crate::cbor::Cbor;
use crate::error::{Error, ErrorKind, Quota, TextField};
use crate::hash::{sha256, Sha256Hash};
use crate::memory::{Memories, StoredMemory};
use crate::releases::{
    Blessing, ListReleasesArg, Release, ReleaseCatalog, ReleaseChunkArg, ReleaseModule,
    ReleasePage, ReleaseRecord, ReleaseReferences, ReleaseSelector, RELEASES_SECTION,
};
use crate::uploads::{
    check_text, parse_sha256, validate_open, OpenUpload, UploadChunkArg, UploadOpenArg,
    UploadRecord, UploadSessions, UploadSettings, UploadSettingsUpdate, UploadStatus,
    MAX_CHUNK_BYTES, MAX_NAME_BYTES, MAX_VERSION_BYTES, TOMBSTONE_RETENTION_NANOS,
};
use crate::wasm_check::{ModuleError, ModuleInspector, MAX_MODULE_BYTES};

/// The release store's settings and counters, in one CBOR cell.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReleaseStoreConfig {
    pub upload_settings: UploadSettings,
    /// Upload ids are never reused, so a stale id can only be unknown, never someone else's.
    pub next_upload_id: u64,
    pub next_release_sequence: u64,
    /// Running totals for `storage_stats`, kept as releases come and go. Release 0.1 kept
    /// none: [`ReleaseStore::open`] counts them once on the upgrade from it.
    #[serde(default)]
    pub totals: Option<StoredTotals>,
}

/// Bytes `storage_stats` would otherwise sum over every release and chunk.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredTotals {
    /// Module sizes of all releases.
    pub release_bytes: u64,
    /// Bytes of the indexed chunks, each counted once.
    pub chunk_bytes: u64,
}

impl Default for ReleaseStoreConfig {
    fn default() -> Self {
        Self {
            upload_settings: UploadSettings::default(),
            next_upload_id: 1,
            next_release_sequence: 1,
            totals: Some(StoredTotals::default()),
        }
    }
}

/// Reply of `storage_stats`: what the release store holds and the stable memory it takes.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Stable memory claimed by all of the deployer's structures.
    pub stable_memory_bytes: u64,
    pub releases: u64,
    /// Module sizes of all releases, summed (chunks shared between releases counted each time).
    pub release_bytes: u64,
    pub open_uploads: u64,
    /// Chunk bytes received by open uploads.
    pub staged_bytes: u64,
    /// Distinct chunks of releases, and their bytes counted once.
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// Blocks allocated for chunk bytes, and how many of them are free for reuse.
    pub block_bytes: u64,
    pub free_block_bytes: u64,
}

pub struct ReleaseStore<M: Memory> {
    config: StableCell<Cbor<ReleaseStoreConfig>, M>,
    uploads: UploadSessions<M>,
    chunks: BlockStore<M>,
    releases: ReleaseCatalog<M>,
    blessings: StableBTreeMap<Sha256Hash, Cbor<Blessing>, M>,
}

impl<M: Memory + Clone> ReleaseStore<StoredMemory<M>> {
    /// Opens the release store's structures in their memories, creating empty ones on a fresh
    /// install.
    /// Counts the totals once when the config has none (written by release 0.1): a scan of the
    /// releases and chunks, bounded by the release quota.
    pub fn open(memories: &Memories<M>) -> Self {
        let mut store = Self {
            config: StableCell::init(
                memories.release_store_config(),
                Cbor(ReleaseStoreConfig::default()),
            ),
            uploads: UploadSessions::init(memories.uploads()),
            chunks: BlockStore::init(
                memories.chunk_blocks(),
                memories.free_blocks(),
                memories.chunk_index(),
            ),
            releases: ReleaseCatalog::init(
                memories.releases(),
                memories.release_names(),
                memories.release_sequence(),
            ),
            blessings: StableBTreeMap::init(memories.release_blessings()),
        };
        if store.config.get().0.totals.is_none() {
            let totals = StoredTotals {
                release_bytes: store.releases.records().map(|record| record.size).sum(),
                chunk_bytes: store.chunks.stats().indexed_bytes,
            };
            store.update_config(|config| config.totals = Some(totals));
        }
        store
    }
}

impl<M: Memory> ReleaseStore<M> {
    pub fn upload_settings(&self) -> UploadSettings {
        self.config.get().0.upload_settings.clone()
    }

    pub fn update_upload_settings(
        &mut self,
        update: &UploadSettingsUpdate,
    ) -> Result<UploadSettings, Error> {
        let settings = self.upload_settings().updated(update)?;
        self.update_config(|config| config.upload_settings = settings.clone());
        Ok(settings)
    }

    /// Opens an upload, or returns the open upload of the same module (same SHA-256 and size):
    /// that is how a client resumes after a restart. Opening refreshes the expiry.
    pub fn open_upload(
        &mut self,
        arg: UploadOpenArg,
        caller: Principal,
        now: u64,
    ) -> Result<UploadStatus, Error> {
        let (sha256, chunk_size) = validate_open(&arg)?;
        self.sweep(now);
        let settings = self.upload_settings();
        let resumed = self
            .open_uploads()
            .find(|(_, upload)| upload.sha256 == sha256 && upload.size == arg.size);
        if let Some((upload_id, mut upload)) = resumed {
            upload.expires_at = now + settings.ttl_nanos();
            self.uploads
                .insert(upload_id, UploadRecord::Open(upload.clone()));
            return Ok(upload.status(upload_id));
        }
        if let Some(released) = self.releases.find(&arg.name, &arg.version) {
            if released != sha256 {
                return Err(version_taken(&arg.name, &arg.version, released).into());
            }
        }
        if self.releases.get(&sha256).is_none() {
            self.check_release_quota(&settings)?;
        }
        let (open, staged) = self
            .open_uploads()
            .fold((0, 0), |(open, staged), (_, upload)| {
                (open + 1, staged + upload.size)
            });
        if open >= u64::from(settings.max_open_uploads) {
            return Err(ErrorKind::QuotaExceeded {
                quota: Quota::OpenUploads,
                limit: u64::from(settings.max_open_uploads),
                in_use: open,
                requested: 1,
            }
            .into());
        }
        if staged + arg.size > settings.max_staged_bytes {
            return Err(ErrorKind::QuotaExceeded {
                quota: Quota::StagedBytes,
                limit: settings.max_staged_bytes,
                in_use: staged,
                requested: arg.size,
            }
            .into());
        }
        let chunk_count = arg.size.div_ceil(u64::from(chunk_size)) as usize;
        let upload = OpenUpload {
            sha256: ByteArray::new(sha256),
            size: arg.size,
            chunk_size,
            name: arg.name,
            version: arg.version,
            notes: arg.notes,
            opened_by: caller,
            opened_at: now,
            expires_at: now + settings.ttl_nanos(),
            chunks: vec![None; chunk_count],
        };
        let upload_id = self.config.get().0.next_upload_id;
        self.update_config(|config| config.next_upload_id += 1);
        let status = upload.status(upload_id);
        self.uploads.insert(upload_id, UploadRecord::Open(upload));
        Ok(status)
    }

    /// Stores chunk `index`. Resending the bytes already received is accepted and changes
    /// nothing but the expiry.
    pub fn put_chunk(&mut self, arg: UploadChunkArg, now: u64) -> Result<UploadStatus, Error> {
        let upload_id = arg.upload_id;
        let mut upload = self.open_upload_at(upload_id, now)?;
        let index = arg.index;
        if index >= upload.chunk_count() {
            return Err(ErrorKind::ChunkIndexOutOfRange {
                index,
                chunk_count: upload.chunk_count(),
            }
            .into());
        }
        let size = arg.bytes.len() as u64;
        if size > u64::from(MAX_CHUNK_BYTES) {
            return Err(ErrorKind::ChunkTooLarge {
                size,
                max: MAX_CHUNK_BYTES,
            }
            .into());
        }
        let expected = upload.expected_len(index);
        if size != u64::from(expected) {
            return Err(ErrorKind::ChunkSizeMismatch {
                index,
                size,
                expected,
            }
            .into());
        }
        match &upload.chunks[index as usize] {
            Some(stored) => {
                let stored = self.chunks.read(stored);
                if stored != *arg.bytes {
                    return Err(ErrorKind::ChunkConflict {
                        index,
                        stored_sha256: ByteBuf::from(sha256(&stored).to_vec()),
                        sent_sha256: ByteBuf::from(sha256(&arg.bytes).to_vec()),
                    }
                    .into());
                }
            }
            None => upload.chunks[index as usize] = Some(self.chunks.stage(&arg.bytes)),
        }
        upload.expires_at = now + self.upload_settings().ttl_nanos();
        let status = upload.status(upload_id);
        self.uploads.insert(upload_id, UploadRecord::Open(upload));
        Ok(status)
    }

    /// The uploads open at `now`, by id: at most `max_open_uploads` of them.
    pub fn list_uploads(&self, now: u64) -> Vec<UploadStatus> {
        self.open_uploads()
            .filter(|(_, upload)| !upload.is_expired(now))
            .map(|(upload_id, upload)| upload.status(upload_id))
            .collect()
    }

    pub fn upload_status(&self, upload_id: u64, now: u64) -> Result<UploadStatus, Error> {
        let upload = self.live_upload(upload_id, now)?;
        Ok(upload.status(upload_id))
    }

    /// Verifies the complete upload and makes it a release. Committing a module that already is
    /// a release returns that release, as does committing an upload again.
    pub fn commit_upload(
        &mut self,
        upload_id: u64,
        caller: Principal,
        now: u64,
    ) -> Result<Release, Error> {
        if let Some(UploadRecord::Committed {
            release_sha256,
            committed_at,
        }) = self.uploads.get(upload_id)
        {
            if now < committed_at + TOMBSTONE_RETENTION_NANOS {
                return self.release_by_sha256(&release_sha256.into_array());
            }
        }
        let upload = self.open_upload_at(upload_id, now)?;
        let missing = upload.missing_chunks();
        if !missing.is_empty() {
            return Err(ErrorKind::MissingChunks { missing }.into());
        }
        let extents: Vec<Extent> = upload.chunks.iter().flatten().cloned().collect();
        let verified = self.verify(&upload, &extents)?;
        let sha256 = upload.sha256.into_array();
        if let Some(existing) = self.releases.get(&sha256) {
            for extent in extents {
                self.chunks.discard(extent);
            }
            self.close_as_committed(upload_id, sha256, now);
            return Ok(existing.release());
        }
        if let Some(released) = self.releases.find(&upload.name, &upload.version) {
            return Err(version_taken(&upload.name, &upload.version, released).into());
        }
        // Checked again: other uploads may have become releases since this one opened. The
        // upload stays open, so deleting a release and committing again succeeds.
        self.check_release_quota(&self.upload_settings())?;
        let mut indexed = 0;
        for (hash, extent) in verified.chunk_sha256.iter().zip(extents) {
            indexed += self.chunks.adopt(*hash, extent);
        }
        let sequence = self.config.get().0.next_release_sequence;
        self.update_config(|config| {
            config.next_release_sequence += 1;
            let totals = config.totals.get_or_insert_default();
            totals.release_bytes += upload.size;
            totals.chunk_bytes += indexed;
        });
        let record = ReleaseRecord {
            sha256: upload.sha256,
            name: upload.name,
            version: upload.version,
            notes: upload.notes,
            size: upload.size,
            uncompressed_size: verified.facts.uncompressed_size,
            encoding: verified.facts.encoding,
            chunk_size: upload.chunk_size,
            chunk_sha256: verified
                .chunk_sha256
                .into_iter()
                .map(ByteArray::new)
                .collect(),
            candid_service: verified.facts.candid_service,
            enhanced_orthogonal_persistence: Some(verified.facts.enhanced_orthogonal_persistence),
            created_at: now,
            created_by: caller,
            sequence,
        };
        let release = record.release();
        self.releases.insert(record);
        self.close_as_committed(upload_id, sha256, now);
        Ok(release)
    }

    /// Discards an open upload and its chunks. Its id is unknown afterwards.
    pub fn abort_upload(&mut self, upload_id: u64, now: u64) -> Result<(), Error> {
        let upload = self.open_upload_at(upload_id, now)?;
        for extent in upload.chunks.into_iter().flatten() {
            self.chunks.discard(extent);
        }
        self.uploads.remove(upload_id);
        Ok(())
    }

    /// Turns uploads whose time is up into tombstones (freeing their chunks) and removes
    /// tombstones past their retention.
    pub fn sweep(&mut self, now: u64) {
        let due: Vec<(u64, UploadRecord)> = self
            .uploads
            .iter()
            .filter(|(_, record)| deadline(record) <= now)
            .collect();
        for (upload_id, record) in due {
            match record {
                UploadRecord::Open(upload) => self.expire(upload_id, upload, now),
                UploadRecord::Expired { .. } | UploadRecord::Committed { .. } => {
                    self.uploads.remove(upload_id)
                }
            }
        }
    }

    /// When [`sweep`](Self::sweep) next has work: the earliest expiry or tombstone end.
    pub fn next_deadline(&self) -> Option<u64> {
        self.uploads
            .iter()
            .map(|(_, record)| deadline(&record))
            .min()
    }

    pub fn list_releases(&self, arg: &ListReleasesArg) -> ReleasePage {
        self.releases.page(arg)
    }

    pub fn get_release(&self, selector: &ReleaseSelector) -> Result<Release, Error> {
        self.release_by_sha256(&self.resolve(selector)?)
    }

    /// The bytes of chunk `index` of a release.
    pub fn release_chunk(&self, arg: &ReleaseChunkArg) -> Result<Vec<u8>, Error> {
        self.module_chunk(&parse_sha256(&arg.sha256)?, arg.index)
    }

    /// The module of the release `selector` names, in typed values: what a rollout installs.
    pub fn release_module(&self, selector: &ReleaseSelector) -> Result<ReleaseModule, Error> {
        self.module_by_sha256(&self.resolve(selector)?)
    }

    /// `name@version` of the release whose module hash is `sha256`, if it is a release.
    pub fn release_name(&self, sha256: &Sha256Hash) -> Option<String> {
        let (name, version) = self.name_and_version(sha256)?;
        Some(format!("{name}@{version}"))
    }

    /// The name and version of the release whose module hash is `sha256`, if it is a release.
    pub fn name_and_version(&self, sha256: &Sha256Hash) -> Option<(String, String)> {
        let record = self.release_record(sha256).ok()?;
        Some((record.name, record.version))
    }

    /// The module of the release with module hash `sha256`, in typed values.
    pub fn module_by_sha256(&self, sha256: &Sha256Hash) -> Result<ReleaseModule, Error> {
        Ok(self.release_record(sha256)?.module())
    }

    /// The bytes of chunk `index` of the release with module hash `sha256`.
    pub fn module_chunk(&self, sha256: &Sha256Hash, index: u32) -> Result<Vec<u8>, Error> {
        let record = self.release_record(sha256)?;
        let chunk = record.chunk_sha256.get(index as usize).ok_or({
            ErrorKind::ChunkIndexOutOfRange {
                index,
                chunk_count: record.chunk_sha256.len() as u32,
            }
        })?;
        Ok(self
            .chunks
            .get(chunk)
            .expect("every chunk of a release is indexed"))
    }

    /// Deletes a release that nothing references, and the chunks no other release uses.
    pub fn delete_release(
        &mut self,
        sha256: &[u8],
        referencers: &impl ReleaseReferences,
    ) -> Result<(), Error> {
        let sha256 = parse_sha256(sha256)?;
        self.release_record(&sha256)?;
        let references = referencers.references(&sha256);
        if !references.is_empty() {
            return Err(ErrorKind::ReleaseInUse {
                sha256: ByteBuf::from(sha256.to_vec()),
                references,
            }
            .into());
        }
        let record = self.releases.remove(&sha256).expect("checked above");
        self.blessings.remove(&sha256);
        let mut unindexed = 0;
        for chunk in &record.chunk_sha256 {
            unindexed += self.chunks.release(chunk);
        }
        self.update_config(|config| {
            let totals = config.totals.get_or_insert_default();
            totals.release_bytes -= record.size;
            totals.chunk_bytes -= unindexed;
        });
        Ok(())
    }

    /// Everything but `stable_memory_bytes`, which only the whole state knows.
    /// Counts and running totals: no release or chunk is read.
    pub fn storage_stats(&self, now: u64) -> StorageStats {
        let totals = self.config.get().0.totals.unwrap_or_default();
        let (open_uploads, staged_bytes) = self
            .open_uploads()
            .filter(|(_, upload)| !upload.is_expired(now))
            .fold((0, 0), |(count, bytes), (_, upload)| {
                (count + 1, bytes + upload.bytes_received())
            });
        let chunks = self.chunks.sizes();
        StorageStats {
            stable_memory_bytes: 0,
            releases: self.releases.count(),
            release_bytes: totals.release_bytes,
            open_uploads,
            staged_bytes,
            chunks: chunks.chunks,
            chunk_bytes: totals.chunk_bytes,
            block_bytes: chunks.block_bytes,
            free_block_bytes: chunks.free_block_bytes,
        }
    }

    /// The upload as it stands at `now`, without changing anything.
    fn live_upload(&self, upload_id: u64, now: u64) -> Result<OpenUpload, ErrorKind> {
        match self.uploads.get(upload_id) {
            Some(UploadRecord::Open(upload)) if now < upload.expires_at => Ok(upload),
            Some(record) if now < tombstone_end(&record) => Err(closed_upload(upload_id, record)),
            _ => Err(ErrorKind::UnknownUpload { upload_id }),
        }
    }

    /// [`live_upload`](Self::live_upload) for an operation that changes the upload: an upload
    /// found expired is turned into its tombstone first, so its space is free at once.
    fn open_upload_at(&mut self, upload_id: u64, now: u64) -> Result<OpenUpload, ErrorKind> {
        let result = self.live_upload(upload_id, now);
        if let Err(ErrorKind::UploadExpired { .. }) = result {
            if let Some(UploadRecord::Open(upload)) = self.uploads.get(upload_id) {
                self.expire(upload_id, upload, now);
            }
        }
        result
    }

    fn expire(&mut self, upload_id: u64, upload: OpenUpload, now: u64) {
        let expired_at = upload.expires_at;
        for extent in upload.chunks.into_iter().flatten() {
            self.chunks.discard(extent);
        }
        if now < tombstone_end(&UploadRecord::Expired { expired_at }) {
            self.uploads
                .insert(upload_id, UploadRecord::Expired { expired_at });
        } else {
            self.uploads.remove(upload_id);
        }
    }

    fn close_as_committed(&mut self, upload_id: u64, sha256: Sha256Hash, now: u64) {
        self.uploads.insert(
            upload_id,
            UploadRecord::Committed {
                release_sha256: ByteArray::new(sha256),
                committed_at: now,
            },
        );
    }

    /// Reads every chunk once: hashes the whole module and each chunk, and checks the Wasm.
    fn verify(&self, upload: &OpenUpload, extents: &[Extent]) -> Result<Verified, ErrorKind> {
        let mut module_hasher = Sha256::new();
        let mut inspector = ModuleInspector::default();
        let mut chunk_sha256 = Vec::with_capacity(extents.len());
        for extent in extents {
            let bytes = self.chunks.read(extent);
            module_hasher.update(&bytes);
            chunk_sha256.push(sha256(&bytes));
            inspector.write(&bytes);
        }
        let actual: Sha256Hash = module_hasher.finalize().into();
        if actual != *upload.sha256 {
            return Err(ErrorKind::HashMismatch {
                expected: ByteBuf::from(upload.sha256.to_vec()),
                actual: ByteBuf::from(actual.to_vec()),
            });
        }
        let facts = inspector.finish().map_err(|error| match error {
            ModuleError::Invalid(reason) => ErrorKind::InvalidWasm { reason },
            ModuleError::UncompressedTooLarge => ErrorKind::UncompressedModuleTooLarge {
                max: MAX_MODULE_BYTES,
            },
        })?;
        Ok(Verified {
            chunk_sha256,
            facts,
        })
    }

    /// Refuses one more release than `max_releases`.
    fn check_release_quota(&self, settings: &UploadSettings) -> Result<(), ErrorKind> {
        let releases = self.releases.count();
        if releases >= u64::from(settings.max_releases) {
            return Err(ErrorKind::QuotaExceeded {
                quota: Quota::Releases,
                limit: u64::from(settings.max_releases),
                in_use: releases,
                requested: 1,
            });
        }
        Ok(())
    }

    fn open_uploads(&self) -> impl Iterator<Item = (u64, OpenUpload)> + '_ {
        self.uploads
            .iter()
            .filter_map(|(upload_id, record)| match record {
                UploadRecord::Open(upload) => Some((upload_id, upload)),
                _ => None,
            })
    }

    /// The catalog record of the release whose module hash is `sha256`.
    pub fn release_record(&self, sha256: &Sha256Hash) -> Result<ReleaseRecord, ErrorKind> {
        self.releases
            .get(sha256)
            .ok_or_else(|| ErrorKind::ReleaseNotFound {
                release: ReleaseSelector::Sha256(ByteBuf::from(sha256.to_vec())),
            })
    }

    pub fn release_by_sha256(&self, sha256: &Sha256Hash) -> Result<Release, Error> {
        let mut release = self.release_record(sha256)?.release();
        release.blessing = self.blessing(sha256);
        Ok(release)
    }

    /// Blesses the release `arg.sha256` names for rollouts (`blessing`), or withdraws its
    /// blessing (`None`). Blessing a blessed release keeps its first blessing.
    pub fn set_blessing(&mut self, sha256: &[u8], blessing: Option<Blessing>) -> Result<(), Error> {
        let sha256 = parse_sha256(sha256)?;
        self.release_record(&sha256)?;
        match blessing {
            Some(_) if self.blessings.contains_key(&sha256) => {}
            Some(blessing) => {
                self.blessings.insert(sha256, Cbor(blessing));
            }
            None => {
                self.blessings.remove(&sha256);
            }
        }
        Ok(())
    }

    /// Whether the store holds nothing a restore would overwrite: no release, no upload.
    pub fn is_empty(&self) -> bool {
        self.releases.count() == 0 && self.uploads.iter().next().is_none()
    }

    /// See [`crate::backup`]: the settings and counters, the catalog and the blessings; the
    /// chunks are streams of their own ([`ReleaseStore::release_chunks`]).
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.cell("release_store_config", &mut self.config);
        self.releases.visit_sections(sections);
        sections.map("release_blessings", &mut self.blessings);
    }

    /// The releases' chunks and their lengths, each once.
    pub fn release_chunks(&self) -> Vec<(Sha256Hash, u64)> {
        self.chunks.chunk_lengths()
    }

    pub fn release_chunk_bytes(&self, hash: &Sha256Hash) -> Option<Vec<u8>> {
        self.chunks.get(hash)
    }

    /// Writes a restore's chunk to free blocks, indexed only at the commit.
    pub fn stage_restored_chunk(&mut self, bytes: &[u8]) -> Extent {
        self.chunks.stage(bytes)
    }

    pub fn discard_restored_chunk(&mut self, extent: Extent) {
        self.chunks.discard(extent);
    }

    /// The chunks the document's releases name, each once.
    pub fn chunks_named_by(sections: &Sections) -> BTreeSet<Sha256Hash> {
        sections
            .values::<Cbor<ReleaseRecord>>(RELEASES_SECTION)
            .flat_map(|Cbor(record)| record.chunk_sha256)
            .map(ByteArray::into_array)
            .collect()
    }

    /// Replaces the store's settings, catalog and blessings with the document's and indexes
    /// `chunks` with the references its releases hold; chunks no release names are freed.
    /// The caller checked that every chunk named is among `chunks`.
    /// Indexes the chunks a restore received for the releases it wrote, and frees any other.
    pub fn index_restored_chunks(&mut self, mut chunks: BTreeMap<Sha256Hash, Extent>) {
        let mut refs: BTreeMap<Sha256Hash, u32> = BTreeMap::new();
        for record in self.releases.records() {
            for hash in record.chunk_sha256 {
                *refs.entry(hash.into_array()).or_default() += 1;
            }
        }
        for (hash, count) in refs {
            let extent = chunks.remove(&hash).expect("checked before the commit");
            self.chunks.index_restored(hash, extent, count);
        }
        for extent in chunks.into_values() {
            self.chunks.discard(extent);
        }
    }

    /// The blessing of the release with module hash `sha256`, if it is blessed.
    pub fn blessing(&self, sha256: &Sha256Hash) -> Option<Blessing> {
        self.blessings.get(sha256).map(|blessing| blessing.0)
    }

    /// Refuses a release that is not blessed, for a deployer that rolls out blessed releases only.
    pub fn require_blessing(&self, selector: &ReleaseSelector) -> Result<(), Error> {
        let sha256 = self.resolve(selector)?;
        self.release_record(&sha256)?;
        match self.blessing(&sha256) {
            Some(_) => Ok(()),
            None => Err(ErrorKind::ReleaseNotBlessed {
                sha256: ByteBuf::from(sha256.to_vec()),
            }
            .into()),
        }
    }

    /// The module hash `selector` names: parsed from it, or looked up by (name, version).
    fn resolve(&self, selector: &ReleaseSelector) -> Result<Sha256Hash, Error> {
        match selector {
            ReleaseSelector::Sha256(sha256) => Ok(parse_sha256(sha256)?),
            ReleaseSelector::NameVersion { name, version } => {
                // No release has longer texts, and the error below echoes them.
                check_text(TextField::Name, name, 1, MAX_NAME_BYTES)?;
                check_text(TextField::Version, version, 1, MAX_VERSION_BYTES)?;
                let sha256 = self.releases.find(name, version).ok_or_else(|| {
                    ErrorKind::ReleaseNotFound {
                        release: selector.clone(),
                    }
                })?;
                Ok(sha256)
            }
        }
    }

    fn update_config(&mut self, change: impl FnOnce(&mut ReleaseStoreConfig)) {
        let mut config = self.config.get().0.clone();
        change(&mut config);
        self.config.set(Cbor(config));
    }
}

struct Verified {
    chunk_sha256: Vec<Sha256Hash>,
    facts: crate::wasm_check::ModuleFacts,
}

/// When a record next needs the sweeper: an open upload at its expiry, a tombstone at the end
/// of its retention.
fn deadline(record: &UploadRecord) -> u64 {
    match record {
        UploadRecord::Open(upload) => upload.expires_at,
        UploadRecord::Expired { .. } | UploadRecord::Committed { .. } => tombstone_end(record),
    }
}

/// When the record's id becomes unknown: its tombstone's retention counts from the expiry or
/// the commit (for an open upload, from the expiry it has not reached yet).
fn tombstone_end(record: &UploadRecord) -> u64 {
    let closed_at = match record {
        UploadRecord::Open(upload) => upload.expires_at,
        UploadRecord::Expired { expired_at } => *expired_at,
        UploadRecord::Committed { committed_at, .. } => *committed_at,
    };
    closed_at + TOMBSTONE_RETENTION_NANOS
}

/// The error for an upload that is no longer open but whose tombstone is still kept.
fn closed_upload(upload_id: u64, record: UploadRecord) -> ErrorKind {
    match record {
        UploadRecord::Open(OpenUpload { expires_at, .. }) => ErrorKind::UploadExpired {
            upload_id,
            expired_at: expires_at,
        },
        UploadRecord::Expired { expired_at } => ErrorKind::UploadExpired {
            upload_id,
            expired_at,
        },
        UploadRecord::Committed { release_sha256, .. } => ErrorKind::UploadCommitted {
            upload_id,
            release_sha256: ByteBuf::from(release_sha256.to_vec()),
        },
    }
}

fn version_taken(name: &str, version: &str, released: Sha256Hash) -> ErrorKind {
    ErrorKind::ReleaseVersionTaken {
        name: name.to_string(),
        version: version.to_string(),
        sha256: ByteBuf::from(released.to_vec()),
    }
}

#[cfg(test)]
mod tests;
