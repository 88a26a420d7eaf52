//! A restore's commit, a slice per message, so that no message's instructions grow with the
//! state restored: writing a whole document in one message cost 0.59 M instructions a child
//! (593 M at 1,000 children and one rollout), which would have reached the 40 B limit near
//! 67,000 children.
//!
//! The document is read an item at a time from the pieces received (`ciborium-ll`), twice.
//! First it is checked, nothing written: every entry decoded as its structure decodes it, the
//! bytes hashed against the manifest's `document_sha256` as they are read, the journal against
//! this build's engine, the chunks the releases name against those received. Then the
//! structures are emptied and written. A slice reads at most [`SLICE_ENTRIES`] entries or
//! [`SLICE_BYTES`] of document. A refusal or a trap while checking leaves nothing written (a
//! later commit checks again from the start); once writing began, the deployer refuses every
//! other method and its upgrade until the last slice (see `RestoreCommitting`).

use std::collections::BTreeSet;

use ciborium_io::Read as _;
use ciborium_ll::{Decoder, Header};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use super::{invalid, Sections, DOCUMENT_PIECE_BYTES, JOURNAL_SECTION};
use crate::error::Error;
use crate::hash::Sha256Hash;

/// Entries a slice reads at most. Measured on the deployer's Wasm (bench
/// `deployer_state_export_1000_children`, slices of 1,000): a checked entry costs about 35 K
/// instructions, a written one 36 K to 160 K (the fleet's index), so a slice stays under
/// 400 M, a fifth of a round's 2 B, while a 100,000-child deployer (about 600,000 entries with
/// one rollout) commits in about 600 messages.
pub const SLICE_ENTRIES: u64 = 2_000;

/// Bytes of document a slice reads at most (its entries' bytes and their framing).
pub const SLICE_BYTES: u64 = 1_000_000;

/// The document's fields before its sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentHead {
    pub format: u32,
    pub schema: u32,
    pub journal_format: u32,
    pub engine_revision: u32,
    pub exported_at: u64,
}

/// Where a reading of the sections stands.
#[derive(Clone, Debug)]
pub struct Cursor {
    /// The next byte to read.
    offset: u64,
    /// Sections after the current one.
    sections_left: u64,
    section: String,
    /// Entries of the current section left to read.
    entries_left: u64,
}

impl Cursor {
    fn at_end(&self) -> bool {
        self.sections_left == 0 && self.entries_left == 0
    }
}

#[derive(Debug)]
enum CommitStage {
    Checking { cursor: Cursor, hasher: Sha256 },
    Emptying,
    Writing(Cursor),
}

/// What the state does with a slice.
#[derive(Debug)]
pub enum Slice {
    /// Decode these entries as their structures do; write nothing.
    Check(Sections),
    /// The document passed its check: empty the structures to write.
    Empty,
    /// Write these entries; `last` when no entry is left after them.
    Write { entries: Sections, last: bool },
}

/// A commit under way, on the heap beside the restore's pieces.
#[derive(Debug)]
pub struct Commit {
    head: DocumentHead,
    sections_at: Cursor,
    stage: CommitStage,
    /// Counted while checking: the sections and entries the document holds, the journal's
    /// lines, the chunks its releases name.
    sections: u64,
    entries: u64,
    journal_lines: u64,
    chunks: BTreeSet<Sha256Hash>,
    written: u64,
}

impl Commit {
    /// Reads the document's head from the complete `pieces` (`size` bytes in all).
    pub fn begin(pieces: &[Option<Vec<u8>>], size: u64) -> Result<Self, Error> {
        let mut hasher = Sha256::new();
        let mut reader = DocumentReader::new(pieces, size, 0, Some(&mut hasher));
        let (head, sections) = reader.head()?;
        let cursor = Cursor {
            offset: reader.offset(),
            sections_left: sections,
            section: String::new(),
            entries_left: 0,
        };
        Ok(Self {
            head,
            sections_at: cursor.clone(),
            stage: CommitStage::Checking { cursor, hasher },
            sections,
            entries: 0,
            journal_lines: 0,
            chunks: BTreeSet::new(),
            written: 0,
        })
    }

    pub fn head(&self) -> &DocumentHead {
        &self.head
    }

    /// The next slice. The check's last slice also compares the whole document's SHA-256 with
    /// `sha256` and refuses bytes after its end.
    pub fn next(
        &mut self,
        pieces: &[Option<Vec<u8>>],
        size: u64,
        sha256: &[u8],
    ) -> Result<Slice, Error> {
        match &mut self.stage {
            CommitStage::Checking { cursor, hasher } => {
                let mut reader = DocumentReader::new(pieces, size, cursor.offset, Some(hasher));
                let (entries, begun) = reader.entries(cursor)?;
                for (name, count) in begun {
                    self.entries += count;
                    if name == JOURNAL_SECTION {
                        self.journal_lines += count;
                    }
                }
                if cursor.at_end() {
                    if cursor.offset != size {
                        return Err(invalid(format!(
                            "the document has {} bytes after its end: pass the pieces of one \
                             export",
                            size - cursor.offset
                        )));
                    }
                    let whole = std::mem::take(hasher).finalize();
                    self.stage = CommitStage::Emptying;
                    if whole.as_slice() != sha256 {
                        return Err(invalid(
                            "the pieces do not hash to the manifest's document_sha256: the \
                             manifest was altered; begin again with the manifest `start_export` \
                             returned"
                                .to_string(),
                        ));
                    }
                }
                Ok(Slice::Check(entries))
            }
            CommitStage::Emptying => {
                self.stage = CommitStage::Writing(self.sections_at.clone());
                Ok(Slice::Empty)
            }
            CommitStage::Writing(cursor) => {
                let mut reader = DocumentReader::new(pieces, size, cursor.offset, None);
                let (entries, _) = reader
                    .entries(cursor)
                    .expect("the check read the same bytes");
                self.written += entries.entries();
                Ok(Slice::Write {
                    entries,
                    last: cursor.at_end(),
                })
            }
        }
    }

    /// Whether writing began (the structures emptied).
    pub fn writing(&self) -> bool {
        matches!(self.stage, CommitStage::Writing(_))
    }

    /// Whether the check just ended: the slice read was its last.
    pub fn checked(&self) -> bool {
        matches!(self.stage, CommitStage::Emptying)
    }

    pub fn journal_lines(&self) -> u64 {
        self.journal_lines
    }

    /// Counts chunks a checked slice's releases name.
    pub fn named_chunks(&mut self, chunks: impl IntoIterator<Item = Sha256Hash>) {
        self.chunks.extend(chunks);
    }

    pub fn chunks(&self) -> u64 {
        self.chunks.len() as u64
    }

    pub fn sections(&self) -> u64 {
        self.sections
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

/// Reads the document from the pieces, from `offset`, feeding what it reads to a hasher.
struct DocumentReader<'a> {
    decoder: Decoder<Pieces<'a>>,
    start: u64,
    size: u64,
}

impl<'a> DocumentReader<'a> {
    fn new(
        pieces: &'a [Option<Vec<u8>>],
        size: u64,
        offset: u64,
        hasher: Option<&'a mut Sha256>,
    ) -> Self {
        Self {
            decoder: Decoder::from(Pieces {
                pieces,
                offset,
                hasher,
            }),
            start: offset,
            size,
        }
    }

    fn offset(&mut self) -> u64 {
        self.start + self.decoder.offset() as u64
    }

    /// The head's fields, and how many sections follow; `sections` must be the last field.
    fn head(&mut self) -> Result<(DocumentHead, u64), Error> {
        let mut head = DocumentHead::default();
        let fields = self.map()?;
        for field in 0..fields {
            let key = self.text()?;
            match key.as_str() {
                "format" => head.format = self.number()?,
                "schema" => head.schema = self.number()?,
                "journal_format" => head.journal_format = self.number()?,
                "engine_revision" => head.engine_revision = self.number()?,
                "exported_at" => head.exported_at = self.number()?,
                "sections" if field + 1 == fields => return Ok((head, self.map()?)),
                _ => {
                    return Err(invalid(format!(
                        "the document's field `{key}` is not a field of its format, or not in \
                         its place: pass the pieces `read_export` gave"
                    )))
                }
            }
        }
        Err(invalid("the document has no sections".to_string()))
    }

    /// Up to a slice's entries from `cursor` on, and the sections begun with their lengths;
    /// moves the cursor past them.
    fn entries(&mut self, cursor: &mut Cursor) -> Result<(Sections, Vec<(String, u64)>), Error> {
        let mut entries = Sections::default();
        let mut begun = Vec::new();
        let mut taken = 0;
        while taken < SLICE_ENTRIES && self.offset() - self.start < SLICE_BYTES {
            if cursor.entries_left == 0 {
                if cursor.sections_left == 0 {
                    break;
                }
                cursor.section = self.text()?;
                cursor.entries_left = self.array()?;
                cursor.sections_left -= 1;
                begun.push((cursor.section.clone(), cursor.entries_left));
                continue;
            }
            if self.array()? != 2 {
                return Err(self.unexpected("an entry of two byte strings"));
            }
            let key = self.bytes()?;
            let value = self.bytes()?;
            entries.push(&cursor.section, (key, value));
            cursor.entries_left -= 1;
            taken += 1;
        }
        cursor.offset = self.offset();
        Ok((entries, begun))
    }

    fn header(&mut self) -> Result<Header, Error> {
        let at = self.offset();
        self.decoder.pull().map_err(|error| {
            invalid(format!(
                "the document does not decode at byte {at}: {error:?}"
            ))
        })
    }

    fn map(&mut self) -> Result<u64, Error> {
        match self.header()? {
            Header::Map(Some(len)) => Ok(len as u64),
            _ => Err(self.unexpected("a map of known length")),
        }
    }

    fn array(&mut self) -> Result<u64, Error> {
        match self.header()? {
            Header::Array(Some(len)) => Ok(len as u64),
            _ => Err(self.unexpected("an array of known length")),
        }
    }

    fn number<T: TryFrom<u64>>(&mut self) -> Result<T, Error> {
        match self.header()? {
            Header::Positive(number) => {
                T::try_from(number).map_err(|_| self.unexpected("a number in range"))
            }
            _ => Err(self.unexpected("a number")),
        }
    }

    fn text(&mut self) -> Result<String, Error> {
        match self.header()? {
            Header::Text(Some(len)) => {
                let bytes = self.read(len)?;
                String::from_utf8(bytes).map_err(|_| self.unexpected("UTF-8 text"))
            }
            _ => Err(self.unexpected("a text of known length")),
        }
    }

    fn bytes(&mut self) -> Result<ByteBuf, Error> {
        match self.header()? {
            Header::Bytes(Some(len)) => self.read(len).map(ByteBuf::from),
            _ => Err(self.unexpected("a byte string of known length")),
        }
    }

    /// `len` bytes, refused before any allocation when fewer are left in the document.
    fn read(&mut self, len: usize) -> Result<Vec<u8>, Error> {
        if len as u64 > self.size - self.offset() {
            return Err(self.unexpected("an item within the document"));
        }
        let mut bytes = vec![0; len];
        self.decoder
            .read_exact(&mut bytes)
            .map_err(|_| self.unexpected("an item within the document"))?;
        Ok(bytes)
    }

    fn unexpected(&mut self, expected: &str) -> Error {
        invalid(format!(
            "the document holds something else than {expected} before byte {}: pass the pieces \
             `read_export` gave",
            self.offset()
        ))
    }
}

/// The document's bytes across its pieces, each [`DOCUMENT_PIECE_BYTES`] long but the last
/// (as [`super::Restore::begin`] requires of a manifest).
struct Pieces<'a> {
    pieces: &'a [Option<Vec<u8>>],
    offset: u64,
    hasher: Option<&'a mut Sha256>,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let piece = (self.offset / DOCUMENT_PIECE_BYTES as u64) as usize;
        let within = (self.offset % DOCUMENT_PIECE_BYTES as u64) as usize;
        let available = self
            .pieces
            .get(piece)
            .and_then(Option::as_deref)
            .and_then(|bytes| bytes.get(within..))
            .unwrap_or_default();
        let read = available.len().min(buf.len());
        buf[..read].copy_from_slice(&available[..read]);
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&available[..read]);
        }
        self.offset += read as u64;
        Ok(read)
    }
}
