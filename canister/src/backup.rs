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
//! The first message of `start_export` freezes the deployer's stable memory
//! ([`crate::memory::freezable`]: copy on write, the pages written since kept on the heap), and
//! the document is taken from the frozen memory a slice per message after it ([`take`]), then
//! hashed a piece per message. So it is the state between two messages, whatever rollouts,
//! callbacks and calls write while it is taken: a step in flight then is in the journal as
//! dispatched, and the restored deployer settles it as unknown (it reads the child) as after its
//! own upgrade. Chunk bytes are immutable and named by their hash, so reading them later reads what
//! the document names, or fails with `ExportStreamMissing` if the release was deleted since.
//!
//! # Restore
//!
//! Into a deployer that holds no release, upload, child, rollout, event or proxied call only.
//! The manifest comes first; every piece is checked against its SHA-256 as it arrives (document
//! pieces are held on the heap, chunks are written to free blocks); nothing is visible until the
//! commit, which checks that every piece arrived and that the whole document is one this build
//! reads, entry by entry, before it writes any, then writes every section and reopens the state
//! as an upgrade does, a slice per message ([`commit`]). Every other method and the deployer's
//! upgrade wait while it writes.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use candid::{CandidType, Deserialize};
use ic_stable_structures::{Log, Memory, StableBTreeMap, StableCell, StableVec, Storable};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::block_store::Extent;
use crate::error::{Error, ErrorKind};
use crate::hash::{sha256, Sha256Hash};
use crate::memory::{JournalWriter, OLDEST_MIGRATED_SCHEMA, SCHEMA_VERSION};
use sha2::{Digest, Sha256};

pub mod commit;
pub mod take;
use commit::{Commit, Slice};
use take::{SliceTaker, Taking};

/// The document's own format: what the top-level map and the sections' shapes mean.
pub const EXPORT_FORMAT: u32 = 1;

/// The section of the rollouts' journal, whose lines a restore checks this build replays alike.
pub const JOURNAL_SECTION: &str = "journal";

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

type SectionEntry = (ByteBuf, ByteBuf);

/// The export held for reading and the restore under way: on the heap, gone at an upgrade
/// (an export is taken again; a restore begun again, its chunks' blocks are then lost).
#[derive(Default)]
pub struct BackupSessions {
    pub export: Option<Export>,
    pub restore: Option<Restore>,
    /// The summary of the restore committed last, answered again to a later `commit_restore`
    /// (a retry, or a second caller that drove the same commit), until a restore begins.
    pub committed: Option<RestoreSummary>,
}

/// The document's body: each stored structure's entries by section name.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub struct Sections(BTreeMap<String, Vec<SectionEntry>>);

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct Document {
    pub format: u32,
    pub schema: u32,
    pub journal_format: u32,
    pub engine_revision: u32,
    pub exported_at: u64,
    pub sections: Sections,
}

/// The stored structures of a part of the state, each named as its section: the one list that
/// the export, a restore's check and a restore's write walk (`visit_sections` of each part).
pub trait SectionVisitor {
    fn map<K, V, M>(&mut self, name: &str, map: &mut StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory;

    fn cell<T: Storable + Clone, M: Memory>(&mut self, name: &str, cell: &mut StableCell<T, M>);

    fn log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>);

    fn vec<T: Storable, M: Memory>(&mut self, name: &str, vec: &StableVec<T, M>);
}

/// Every entry of every structure visited: the document taken at once, as the tests' reference.
#[cfg(test)]
impl SectionVisitor for Sections {
    fn map<K, V, M>(&mut self, name: &str, map: &mut StableBTreeMap<K, V, M>)
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

    fn cell<T: Storable + Clone, M: Memory>(&mut self, name: &str, cell: &mut StableCell<T, M>) {
        let value = bytes(cell.get().clone().into_bytes());
        self.0
            .insert(name.to_string(), vec![(ByteBuf::new(), value)]);
    }

    fn log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>) {
        let mut entries = Vec::with_capacity(log.len() as usize);
        for index in 0..log.len() {
            let mut value = Vec::new();
            log.read_entry(index, &mut value)
                .expect("an index below the log's length has an entry");
            entries.push((bytes(index.to_be_bytes().to_vec()), bytes(value)));
        }
        self.0.insert(name.to_string(), entries);
    }

    fn vec<T: Storable, M: Memory>(&mut self, name: &str, vec: &StableVec<T, M>) {
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
}

/// A restore's check of one slice of entries: each decoded as its structure would decode it,
/// nothing written. A value that does not decode traps the slice, before any write.
pub struct Checking<'a>(pub &'a Sections);

impl SectionVisitor for Checking<'_> {
    fn map<K, V, M>(&mut self, name: &str, _: &mut StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory,
    {
        for (key, value) in self.0.entries_of(name) {
            K::from_bytes(Cow::Borrowed(key.as_slice()));
            V::from_bytes(Cow::Borrowed(value.as_slice()));
        }
    }

    fn cell<T: Storable + Clone, M: Memory>(&mut self, name: &str, _: &mut StableCell<T, M>) {
        self.check_values::<T>(name);
    }

    fn log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, _: &Log<T, I, D>) {
        self.check_values::<T>(name);
    }

    fn vec<T: Storable, M: Memory>(&mut self, name: &str, _: &StableVec<T, M>) {
        self.check_values::<T>(name);
    }
}

impl Checking<'_> {
    fn check_values<T: Storable>(&self, name: &str) {
        for (_, value) in self.0.entries_of(name) {
            T::from_bytes(Cow::Borrowed(value.as_slice()));
        }
    }
}

/// Empties the maps and vectors a restore writes into: a deployer without state still holds
/// its installer's role, which the document's roles replace. Logs are empty in a deployer a
/// restore may begin in; cells are set by their section.
pub struct Emptying;

impl SectionVisitor for Emptying {
    fn map<K, V, M>(&mut self, _: &str, map: &mut StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory,
    {
        while map.pop_first().is_some() {}
    }

    fn cell<T: Storable + Clone, M: Memory>(&mut self, _: &str, _: &mut StableCell<T, M>) {}

    fn log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>) {
        assert_eq!(log.len(), 0, "a restore begins without {name}");
    }

    fn vec<T: Storable, M: Memory>(&mut self, _: &str, vec: &StableVec<T, M>) {
        while vec.pop().is_some() {}
    }
}

/// A restore's write of one slice of entries, checked before: appended to the structures
/// (emptied first by [`Emptying`]), in the document's order.
pub struct Writing<'a>(pub &'a mut Sections);

impl SectionVisitor for Writing<'_> {
    fn map<K, V, M>(&mut self, name: &str, map: &mut StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory,
    {
        for (key, value) in self.0.take(name) {
            map.insert(decode(key), decode(value));
        }
    }

    fn cell<T: Storable + Clone, M: Memory>(&mut self, name: &str, cell: &mut StableCell<T, M>) {
        if let Some((_, value)) = self.0.take(name).pop() {
            cell.set(decode(value));
        }
    }

    fn log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>) {
        for (_, value) in self.0.take(name) {
            log.append(&decode::<T>(value))
                .expect("a restore's log fits the stable memory the export came from");
        }
    }

    fn vec<T: Storable, M: Memory>(&mut self, name: &str, vec: &StableVec<T, M>) {
        for (_, value) in self.0.take(name) {
            vec.push(&decode::<T>(value));
        }
    }
}

impl Sections {
    /// The values of a section, decoded, without taking it.
    pub fn values<T: Storable>(&self, name: &str) -> impl Iterator<Item = T> + '_ {
        self.entries_of(name)
            .map(|(_, value)| T::from_bytes(Cow::Borrowed(value.as_slice())))
    }

    /// Entries in all sections.
    pub fn entries(&self) -> u64 {
        self.0.values().map(|entries| entries.len() as u64).sum()
    }

    fn entries_of(&self, name: &str) -> impl Iterator<Item = &SectionEntry> {
        self.0.get(name).into_iter().flatten()
    }

    fn push(&mut self, name: &str, entry: SectionEntry) {
        match self.0.get_mut(name) {
            Some(entries) => entries.push(entry),
            None => {
                self.0.insert(name.to_string(), vec![entry]);
            }
        }
    }

    fn take(&mut self, name: &str) -> Vec<SectionEntry> {
        self.0.remove(name).unwrap_or_default()
    }
}

#[cfg(test)]
fn bytes(bytes: Vec<u8>) -> ByteBuf {
    ByteBuf::from(bytes)
}

/// Decodes a stored encoding: the document was checked against its SHA-256 and written by an
/// export of a schema this build reads, so bytes that do not decode trap the commit (and undo it).
fn decode<T: Storable>(bytes: ByteBuf) -> T {
    T::from_bytes(Cow::Owned(bytes.into_vec()))
}

/// A document taken by `start_export`, held on the heap until the next export or upgrade. It
/// is taken a slice per message from the state frozen when the export began ([`take`]), then
/// hashed a piece per message (hashing is most of an export's cost: 206 M of 236 M instructions
/// at 1,000 children), and its manifest is complete after the last piece.
pub struct Export {
    /// Its `document_size`, `document_pieces` and `document_sha256` are filled as the document is
    /// taken and hashed.
    pub manifest: ExportManifest,
    document: Vec<u8>,
    /// How far the taking went, until the document is whole.
    taking: Option<Taking>,
    whole: Sha256,
}

impl Export {
    /// An export to be taken at `now`; `chunks` are the releases' chunks with their sizes.
    pub fn begin(chunks: Vec<(Sha256Hash, u64)>, now: u64) -> Self {
        let manifest = ExportManifest {
            format: EXPORT_FORMAT,
            schema: SCHEMA_VERSION,
            exported_at: now,
            document_size: 0,
            document_sha256: ByteBuf::new(),
            document_pieces: Vec::new(),
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
            document: Vec::new(),
            taking: Some(Taking::new(now)),
            whole: Sha256::new(),
        }
    }

    /// The export of `sections` taken at once, as the tests' reference.
    #[cfg(test)]
    pub fn of_sections(sections: Sections, chunks: Vec<(Sha256Hash, u64)>, now: u64) -> Self {
        let writer = JournalWriter::current();
        let document = Document {
            format: EXPORT_FORMAT,
            schema: SCHEMA_VERSION,
            journal_format: writer.format,
            engine_revision: writer.engine_revision,
            exported_at: now,
            sections,
        };
        let mut export = Self::begin(chunks, now);
        ciborium::into_writer(&document, &mut export.document)
            .expect("CBOR encoding into memory cannot fail");
        export.taking = None;
        export.manifest.document_size = export.document.len() as u64;
        export
    }

    /// Takes the next slice of the document, `visit` walking the frozen state's sections with
    /// the taker it is given; whether the document is whole now.
    pub fn take_slice(&mut self, visit: impl FnMut(&mut SliceTaker)) -> bool {
        if let Some(taking) = &mut self.taking {
            if taking.take_slice(&mut self.document, visit) {
                self.taking = None;
                self.manifest.document_size = self.document.len() as u64;
            }
        }
        self.taking.is_none()
    }

    /// Whether the whole document is taken.
    pub fn taken(&self) -> bool {
        self.taking.is_none()
    }

    /// Hashes the next piece of the document; whether every piece is hashed now.
    pub fn hash_next_piece(&mut self) -> bool {
        let next = self.taken().then_some(self.manifest.document_pieces.len());
        if let Some(piece) =
            next.and_then(|next| self.document.chunks(DOCUMENT_PIECE_BYTES).nth(next))
        {
            self.whole.update(piece);
            self.manifest.document_pieces.push(ExportPiece {
                sha256: ByteBuf::from(sha256(piece).to_vec()),
                size: piece.len() as u64,
            });
            if self.hashed() {
                let whole = std::mem::take(&mut self.whole).finalize();
                self.manifest.document_sha256 = ByteBuf::from(whole.to_vec());
            }
        }
        self.hashed()
    }

    /// Whether every piece is hashed: the manifest is complete and the export can be read.
    pub fn hashed(&self) -> bool {
        self.taken()
            && self.manifest.document_pieces.len()
                == self.document.len().div_ceil(DOCUMENT_PIECE_BYTES)
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

/// A restore under way: the manifest, the pieces received so far, the commit once begun.
#[derive(Debug)]
pub struct Restore {
    manifest: ExportManifest,
    document_pieces: Vec<Option<Vec<u8>>>,
    /// Chunks received, written to free blocks; adopted by the releases at the commit.
    chunks: BTreeMap<Sha256Hash, Extent>,
    commit: Option<Commit>,
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
        let sizes = &manifest.document_pieces;
        let total: u64 = sizes.iter().map(|piece| piece.size).sum();
        if sizes[..pieces - 1]
            .iter()
            .any(|piece| piece.size != DOCUMENT_PIECE_BYTES as u64)
            || sizes[pieces - 1].size > DOCUMENT_PIECE_BYTES as u64
            || total != manifest.document_size
        {
            return Err(invalid(format!(
                "the manifest's document pieces are not {DOCUMENT_PIECE_BYTES} bytes each but the \
                 last, or do not add up to its document_size: pass the manifest `start_export` \
                 returned"
            )));
        }
        Ok(Self {
            document_pieces: vec![None; pieces],
            manifest,
            chunks: BTreeMap::new(),
            commit: None,
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

    /// Keeps a checked document piece; a commit's check begun is begun again.
    pub fn received_document_piece(&mut self, index: u32, piece: Vec<u8>) {
        self.document_pieces[index as usize] = Some(piece);
        self.commit = None;
    }

    /// Records a checked chunk's blocks; returns the extent of an earlier copy, to free. A
    /// commit's check begun is begun again.
    pub fn received_chunk(&mut self, hash: Sha256Hash, extent: Extent) -> Option<Extent> {
        self.commit = None;
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

    /// The commit's next slice (see [`commit`]). The first checks that every stream arrived
    /// and reads the document's head. A refusal while checking ends the commit begun (a later
    /// one checks from the start); the restore stays, so that missing streams can be sent.
    pub fn next_commit_slice(&mut self) -> Result<Slice, Error> {
        let result = self.commit_slice();
        if result.is_err() {
            self.commit = None;
        }
        result
    }

    fn commit_slice(&mut self) -> Result<Slice, Error> {
        let commit = match &mut self.commit {
            Some(commit) => commit,
            None => {
                let missing = self.missing();
                if let Some(stream) = missing.first() {
                    return Err(ErrorKind::RestoreIncomplete {
                        missing: missing.len() as u64,
                        first: stream.clone(),
                    }
                    .into());
                }
                let commit = Commit::begin(&self.document_pieces, self.manifest.document_size)?;
                let head = commit.head();
                check_version(head.format, head.schema)?;
                if head.exported_at != self.manifest.exported_at {
                    return Err(invalid(
                        "the document was taken at another time than the manifest says: pass \
                         the manifest of the same export"
                            .to_string(),
                    ));
                }
                self.commit.insert(commit)
            }
        };
        let slice = commit.next(
            &self.document_pieces,
            self.manifest.document_size,
            &self.manifest.document_sha256,
        )?;
        if commit.checked() {
            let head = commit.head();
            JournalWriter {
                format: head.journal_format,
                engine_revision: head.engine_revision,
            }
            .check(commit.journal_lines())
            .map_err(|error| {
                invalid(format!(
                    "{error}: restore it into the build that exported it"
                ))
            })?;
        }
        Ok(slice)
    }

    /// Checks that the chunks a checked slice's releases name were received.
    pub fn check_named_chunks(&mut self, named: BTreeSet<Sha256Hash>) -> Result<(), Error> {
        if let Some(missing) = named.iter().find(|hash| !self.chunks.contains_key(*hash)) {
            self.commit = None;
            return Err(stream_missing(ExportStream::ReleaseChunk(ByteBuf::from(
                missing.to_vec(),
            ))));
        }
        if let Some(commit) = &mut self.commit {
            commit.named_chunks(named);
        }
        Ok(())
    }

    /// Where the commit begun stands, as the error that says so.
    pub fn committing(&self) -> Option<Error> {
        self.commit.as_ref().map(|commit| {
            ErrorKind::RestoreCommitting {
                written: commit.written(),
                entries: commit.entries(),
            }
            .into()
        })
    }

    /// The refusal of every other method once the commit began writing.
    pub fn writing(&self) -> Option<Error> {
        self.commit
            .as_ref()
            .filter(|commit| commit.writing())
            .and(self.committing())
    }

    /// What the commit wrote; with the received chunks, handed over after its last slice.
    pub fn summary(&self) -> RestoreSummary {
        let commit = self.commit.as_ref().expect("the commit ended");
        RestoreSummary {
            exported_at: self.manifest.exported_at,
            sections: commit.sections(),
            entries: commit.entries(),
            chunks: commit.chunks(),
        }
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
