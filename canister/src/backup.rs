//! The deployer's own state as a document: exported in pieces, restored into a fresh deployer.
//!
//! # The document
//!
//! A CBOR map (ciborium), versioned by [`EXPORT_FORMAT`] and by the stable layout's
//! [`SCHEMA_VERSION`] whose encodings it carries:
//!
//! ```text
//! { format: u32, schema: u32, journal_format: u32, engine_revision: u32, exported_at: u64,
//!   sections: { <name>: [ [key: bytes, value: bytes], ... ], ... } }
//! ```
//!
//! A section is one stored structure of [`crate::memory`]'s table, named after its row
//! (`roles`, `releases`, `fleet_children`, `rollouts`, `journal`, `events`, ...), and its entries
//! are that structure's keys and values in the encodings the table documents (most values are
//! CBOR themselves, so any CBOR reader walks into them). Cells have one entry with an empty
//! key; logs and vectors are keyed by their index (u64, big-endian). Left out: open uploads
//! (finish or abort them before exporting) and the chunk bytes, which are streams of their
//! own, named by their SHA-256 and listed in the manifest with their sizes, so that a client
//! keeps one copy of each and skips those it already has. The chunk index and its free blocks
//! are laid out again by the restore.
//!
//! # Consistency
//!
//! The document is encoded in the one message of `start_export`, so it is the state between
//! two messages, whatever rollouts run: a step in flight then is in the journal as dispatched,
//! and the restored deployer settles it as unknown (it reads the child) as after its own
//! upgrade. Chunk bytes are immutable and named by their hash, so reading them later reads what
//! the document names, or fails with `ExportStreamMissing` if the release was deleted since.
//!
//! # Restore
//!
//! Into a deployer that holds no release, upload, child, rollout, event or proxied call only.
//! The manifest comes first; every piece is checked against its SHA-256 as it arrives (document
//! pieces are held on the heap, chunks are written to free blocks); nothing is visible until the
//! commit, which checks that every piece arrived and that the document is one this build reads,
//! then writes every section and reopens the state as an upgrade does. A trap in the commit
//! undoes the whole message, so a restore is committed whole or not at all.

use std::borrow::Cow;
use std::collections::BTreeMap;

use candid::{CandidType, Deserialize};
use ic_stable_structures::{Log, Memory, StableBTreeMap, StableCell, StableVec, Storable};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::block_store::Extent;
use crate::error::{Error, ErrorKind};
use crate::hash::{sha256, Sha256Hash};
use crate::memory::{JournalWriter, OLDEST_MIGRATED_SCHEMA, SCHEMA_VERSION};

/// The document's own format: what the top-level map and the sections' shapes mean.
pub const EXPORT_FORMAT: u32 = 1;

/// Bytes of a document piece: a read's reply and a restore's argument stay under the 2 MiB
/// message limits with room for their framing.
pub const DOCUMENT_PIECE_BYTES: usize = 1_000_000;

/// Most pieces a manifest may list (document pieces and chunks each): 100 GB of document, and
/// more chunks than the release quota allows.
pub const MAX_MANIFEST_PIECES: usize = 100_000;

/// What `start_export` produced, and what `begin_restore` is given.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ExportManifest {
    pub format: u32,
    pub schema: u32,
    /// When the document was taken; names the export in `read_export`.
    pub exported_at: u64,
    pub document_size: u64,
    pub document_sha256: ByteBuf,
    /// The document's pieces in order.
    pub document_pieces: Vec<ExportPiece>,
    /// The releases' distinct chunks, by hash.
    pub release_chunks: Vec<ExportPiece>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ExportPiece {
    pub sha256: ByteBuf,
    pub size: u64,
}

/// One stream of an export: a piece of the document by index, or a release chunk by hash.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExportStream {
    DocumentPiece(u32),
    ReleaseChunk(ByteBuf),
}

impl std::fmt::Display for ExportStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DocumentPiece(index) => write!(f, "document piece {index}"),
            Self::ReleaseChunk(hash) => write!(f, "release chunk {}", crate::hash::hex(hash)),
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReadExportArg {
    pub exported_at: u64,
    pub stream: ExportStream,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestorePieceArg {
    pub stream: ExportStream,
    pub bytes: ByteBuf,
}

/// Where a restore stands: what arrived, and what is still missing before the commit.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestoreProgress {
    pub exported_at: u64,
    pub received: u64,
    pub expected: u64,
    /// The first missing streams, at most [`MISSING_SHOWN`].
    pub missing: Vec<ExportStream>,
}

/// Streams a progress or an error lists by name.
pub const MISSING_SHOWN: usize = 20;

/// What a committed restore brought in.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    pub exported_at: u64,
    pub sections: u64,
    pub entries: u64,
    pub chunks: u64,
}

type Entry = (ByteBuf, ByteBuf);

/// The export held for reading and the restore under way: on the heap, gone at an upgrade
/// (an export is taken again; a restore begun again, its chunks' blocks are then lost).
#[derive(Default)]
pub struct BackupSessions {
    pub export: Option<Export>,
    pub restore: Option<Restore>,
}

/// The document's body: each stored structure's entries by section name.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub struct Sections(BTreeMap<String, Vec<Entry>>);

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct Document {
    pub format: u32,
    pub schema: u32,
    pub journal_format: u32,
    pub engine_revision: u32,
    pub exported_at: u64,
    pub sections: Sections,
}

impl Sections {
    pub fn put_map<K, V, M>(&mut self, name: &str, map: &StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory,
    {
        let entries = map
            .iter()
            .map(|entry| {
                let (key, value) = entry.into_pair();
                (bytes(key.into_bytes()), bytes(value.into_bytes()))
            })
            .collect();
        self.0.insert(name.to_string(), entries);
    }

    /// Replaces the map's entries with the section's (a missing section: none).
    pub fn take_map<K, V, M>(&mut self, name: &str, map: &mut StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory,
    {
        while map.pop_first().is_some() {}
        for (key, value) in self.take(name) {
            map.insert(decode(key), decode(value));
        }
    }

    pub fn put_cell<T: Storable + Clone, M: Memory>(
        &mut self,
        name: &str,
        cell: &StableCell<T, M>,
    ) {
        let value = bytes(cell.get().clone().into_bytes());
        self.0
            .insert(name.to_string(), vec![(ByteBuf::new(), value)]);
    }

    /// Sets the cell to the section's value (a missing section leaves it as it is).
    pub fn take_cell<T: Storable, M: Memory>(&mut self, name: &str, cell: &mut StableCell<T, M>) {
        if let Some((_, value)) = self.take(name).pop() {
            cell.set(decode(value));
        }
    }

    pub fn put_log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>) {
        let mut entries = Vec::with_capacity(log.len() as usize);
        for index in 0..log.len() {
            let mut value = Vec::new();
            log.read_entry(index, &mut value)
                .expect("an index below the log's length has an entry");
            entries.push((bytes(index.to_be_bytes().to_vec()), bytes(value)));
        }
        self.0.insert(name.to_string(), entries);
    }

    /// Appends the section's entries, in order, to an empty log.
    pub fn take_log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>) {
        for (_, value) in self.take(name) {
            log.append(&decode::<T>(value))
                .expect("a restore's log fits the stable memory the export came from");
        }
    }

    pub fn put_vec<T: Storable, M: Memory>(&mut self, name: &str, vec: &StableVec<T, M>) {
        let entries = vec
            .iter()
            .enumerate()
            .map(|(index, item)| {
                (
                    bytes((index as u64).to_be_bytes().to_vec()),
                    bytes(item.into_bytes()),
                )
            })
            .collect();
        self.0.insert(name.to_string(), entries);
    }

    /// Replaces the vector's items with the section's.
    pub fn take_vec<T: Storable, M: Memory>(&mut self, name: &str, vec: &StableVec<T, M>) {
        while vec.pop().is_some() {}
        for (_, value) in self.take(name) {
            vec.push(&decode::<T>(value));
        }
    }

    /// The values of a section, decoded, without taking it.
    pub fn values<T: Storable>(&self, name: &str) -> impl Iterator<Item = T> + '_ {
        self.0
            .get(name)
            .into_iter()
            .flatten()
            .map(|(_, value)| T::from_bytes(Cow::Borrowed(value.as_slice())))
    }

    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in one section.
    pub fn count(&self, name: &str) -> u64 {
        self.0.get(name).map_or(0, |entries| entries.len() as u64)
    }

    pub fn entries(&self) -> u64 {
        self.0.values().map(|entries| entries.len() as u64).sum()
    }

    fn take(&mut self, name: &str) -> Vec<Entry> {
        self.0.remove(name).unwrap_or_default()
    }
}

fn bytes(bytes: Vec<u8>) -> ByteBuf {
    ByteBuf::from(bytes)
}

/// Decodes a stored encoding: the document was checked against its SHA-256 and written by an
/// export of a schema this build reads, so bytes that do not decode trap the commit (and undo it).
fn decode<T: Storable>(bytes: ByteBuf) -> T {
    T::from_bytes(Cow::Owned(bytes.into_vec()))
}

/// A document taken by `start_export`, held on the heap until the next export or upgrade.
pub struct Export {
    pub manifest: ExportManifest,
    document: Vec<u8>,
}

impl Export {
    /// Encodes `sections` and cuts the document into pieces; `chunks` are the releases' chunks
    /// with their sizes.
    pub fn new(sections: Sections, chunks: Vec<(Sha256Hash, u64)>, now: u64) -> Self {
        let writer = JournalWriter::current();
        let document = Document {
            format: EXPORT_FORMAT,
            schema: SCHEMA_VERSION,
            journal_format: writer.format,
            engine_revision: writer.engine_revision,
            exported_at: now,
            sections,
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&document, &mut bytes)
            .expect("CBOR encoding into memory cannot fail");
        let manifest = ExportManifest {
            format: EXPORT_FORMAT,
            schema: SCHEMA_VERSION,
            exported_at: now,
            document_size: bytes.len() as u64,
            document_sha256: ByteBuf::from(sha256(&bytes).to_vec()),
            document_pieces: bytes
                .chunks(DOCUMENT_PIECE_BYTES)
                .map(|piece| ExportPiece {
                    sha256: ByteBuf::from(sha256(piece).to_vec()),
                    size: piece.len() as u64,
                })
                .collect(),
            release_chunks: chunks
                .into_iter()
                .map(|(hash, size)| ExportPiece {
                    sha256: ByteBuf::from(hash.to_vec()),
                    size,
                })
                .collect(),
        };
        Self {
            manifest,
            document: bytes,
        }
    }

    /// A piece of the document; chunks are read from the release store by the caller.
    pub fn document_piece(&self, index: u32) -> Result<Vec<u8>, Error> {
        self.document
            .chunks(DOCUMENT_PIECE_BYTES)
            .nth(index as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| stream_missing(ExportStream::DocumentPiece(index)))
    }

    /// Whether the manifest lists this chunk.
    pub fn lists_chunk(&self, hash: &[u8]) -> bool {
        self.manifest
            .release_chunks
            .iter()
            .any(|piece| piece.sha256.as_slice() == hash)
    }
}

pub fn stream_missing(stream: ExportStream) -> Error {
    ErrorKind::ExportStreamMissing { stream }.into()
}

/// A restore under way: the manifest, the pieces received so far.
#[derive(Debug)]
pub struct Restore {
    manifest: ExportManifest,
    document_pieces: Vec<Option<Vec<u8>>>,
    /// Chunks received, written to free blocks; adopted by the releases at the commit.
    chunks: BTreeMap<Sha256Hash, Extent>,
}

impl Restore {
    /// Checks a manifest before any piece is sent: its format and schema, its size.
    pub fn begin(manifest: ExportManifest) -> Result<Self, Error> {
        check_version(manifest.format, manifest.schema)?;
        let pieces = manifest.document_pieces.len();
        let chunks = manifest.release_chunks.len();
        if pieces == 0 || pieces.max(chunks) > MAX_MANIFEST_PIECES {
            return Err(invalid(format!(
                "the manifest lists {pieces} document pieces and {chunks} chunks: a document has \
                 1 to {MAX_MANIFEST_PIECES} pieces and at most as many chunks; pass the manifest \
                 `start_export` returned"
            )));
        }
        Ok(Self {
            document_pieces: vec![None; pieces],
            manifest,
            chunks: BTreeMap::new(),
        })
    }

    pub fn exported_at(&self) -> u64 {
        self.manifest.exported_at
    }

    /// Checks a piece against the manifest: listed there, and of the size and SHA-256 it gives.
    pub fn check_piece(&self, stream: &ExportStream, piece: &[u8]) -> Result<(), Error> {
        let expected = match stream {
            ExportStream::DocumentPiece(index) => {
                self.manifest.document_pieces.get(*index as usize)
            }
            ExportStream::ReleaseChunk(hash) => self
                .manifest
                .release_chunks
                .iter()
                .find(|chunk| chunk.sha256 == *hash),
        }
        .ok_or_else(|| {
            invalid(format!(
                "{stream} is not in the manifest this restore began with: send the streams \
                 the manifest lists"
            ))
        })?;
        let found = sha256(piece);
        if expected.sha256.as_slice() != found || expected.size != piece.len() as u64 {
            return Err(ErrorKind::RestorePieceMismatch {
                stream: stream.clone(),
                expected_sha256: expected.sha256.clone(),
                found_sha256: ByteBuf::from(found.to_vec()),
            }
            .into());
        }
        Ok(())
    }

    /// Keeps a checked document piece.
    pub fn received_document_piece(&mut self, index: u32, piece: Vec<u8>) {
        self.document_pieces[index as usize] = Some(piece);
    }

    /// Records a checked chunk's blocks; returns the extent of an earlier copy, to free.
    pub fn received_chunk(&mut self, hash: Sha256Hash, extent: Extent) -> Option<Extent> {
        self.chunks.insert(hash, extent)
    }

    pub fn progress(&self) -> RestoreProgress {
        let missing = self.missing();
        let expected =
            (self.manifest.document_pieces.len() + self.manifest.release_chunks.len()) as u64;
        RestoreProgress {
            exported_at: self.manifest.exported_at,
            received: expected - missing.len() as u64,
            expected,
            missing: missing.into_iter().take(MISSING_SHOWN).collect(),
        }
    }

    fn missing(&self) -> Vec<ExportStream> {
        let pieces = self
            .document_pieces
            .iter()
            .enumerate()
            .filter(|(_, piece)| piece.is_none())
            .map(|(index, _)| ExportStream::DocumentPiece(index as u32));
        let chunks = self
            .manifest
            .release_chunks
            .iter()
            .filter(|chunk| {
                <Sha256Hash>::try_from(chunk.sha256.as_slice())
                    .map_or(true, |hash| !self.chunks.contains_key(&hash))
            })
            .map(|chunk| ExportStream::ReleaseChunk(chunk.sha256.clone()));
        pieces.chain(chunks).collect()
    }

    /// The document, once every stream arrived: checked whole and decoded. On an error the
    /// restore stays as it is, so that the missing streams can still be sent.
    pub fn document(&self) -> Result<Document, Error> {
        let missing = self.missing();
        if let Some(stream) = missing.first() {
            return Err(ErrorKind::RestoreIncomplete {
                missing: missing.len() as u64,
                first: stream.clone(),
            }
            .into());
        }
        let bytes: Vec<u8> = self
            .document_pieces
            .iter()
            .flatten()
            .flatten()
            .copied()
            .collect();
        if sha256(&bytes).as_slice() != self.manifest.document_sha256.as_slice() {
            return Err(invalid(
                "the pieces do not hash to the manifest's document_sha256: the manifest was \
                 altered; begin again with the manifest `start_export` returned"
                    .to_string(),
            ));
        }
        let document: Document = ciborium::from_reader(bytes.as_slice())
            .map_err(|error| invalid(format!("the document does not decode: {error}")))?;
        check_version(document.format, document.schema)?;
        if document.exported_at != self.manifest.exported_at {
            return Err(invalid(
                "the document was taken at another time than the manifest says: pass the \
                 manifest of the same export"
                    .to_string(),
            ));
        }
        Ok(document)
    }

    pub fn received_chunks(&self) -> std::collections::BTreeSet<Sha256Hash> {
        self.chunks.keys().copied().collect()
    }

    /// Hands over the received chunks at the commit.
    pub fn into_chunks(self) -> BTreeMap<Sha256Hash, Extent> {
        self.chunks
    }
}

fn check_version(format: u32, schema: u32) -> Result<(), Error> {
    // A document of an older schema this build migrates from holds what its memory would.
    if format != EXPORT_FORMAT || !(OLDEST_MIGRATED_SCHEMA..=SCHEMA_VERSION).contains(&schema) {
        return Err(ErrorKind::BackupVersionUnsupported {
            format,
            schema,
            supported_format: EXPORT_FORMAT,
            supported_schema: SCHEMA_VERSION,
        }
        .into());
    }
    Ok(())
}

fn invalid(reason: String) -> Error {
    ErrorKind::RestoreInvalid { reason }.into()
}

#[cfg(test)]
mod tests;
