//! Taking an export's document a slice per message, so that no message's instructions grow with
//! the state exported (taking a whole document in one message cost 33 M instructions at 1,000
//! children and one rollout, about 3.3 B at 100,000).
//!
//! The structures are read from the deployer's memories as they were frozen when the export
//! began ([`crate::memory::freezable`]), so the document is the state of that moment while
//! rollouts, callbacks and calls go on writing the live state between two slices. Each slice
//! walks the sections in the document's order (by name) from where the last one stopped (the
//! key after which a map goes on, the index of a log or vector), and encodes at most
//! [`SLICE_ENTRIES`] entries or [`SLICE_BYTES`] of document, in the encoding the whole document
//! had when it was encoded at once (`ciborium` of [`super::Document`]): the format is unchanged.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Bound;

use ciborium_ll::{Encoder, Header};
use ic_stable_structures::{Log, Memory, StableBTreeMap, StableCell, StableVec, Storable};

use super::commit::{SLICE_BYTES, SLICE_ENTRIES};
use super::{SectionVisitor, EXPORT_FORMAT};
use crate::memory::{JournalWriter, SCHEMA_VERSION};

/// How far the taking of a document went.
pub struct Taking {
    /// The sections' names in the document's order, once the document's head is encoded.
    names: Vec<String>,
    /// The section being taken, an index into `names`.
    section: usize,
    position: SectionPosition,
    exported_at: u64,
}

/// Where the section being taken stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SectionPosition {
    /// Its name and length not yet encoded.
    Head,
    /// The next entry is its first.
    First,
    /// A map's next entry is the first after this key.
    AfterKey(Vec<u8>),
    /// A log's or vector's next entry is this index.
    Index(u64),
}

impl Taking {
    pub fn new(exported_at: u64) -> Self {
        Self {
            names: Vec::new(),
            section: 0,
            position: SectionPosition::Head,
            exported_at,
        }
    }

    /// Encodes the next slice of the document into `document`; `visit` walks the sections of the
    /// frozen state with the taker it is given. Whether the document is whole now.
    pub fn take_slice(
        &mut self,
        document: &mut Vec<u8>,
        mut visit: impl FnMut(&mut SliceTaker),
    ) -> bool {
        let start = document.len() as u64;
        if self.names.is_empty() {
            let mut names = BTreeSet::new();
            visit(&mut SliceTaker::Naming(&mut names));
            self.names = names.into_iter().collect();
            self.encode_head(document);
        }
        let mut entries = 0;
        while let Some(name) = self.names.get(self.section) {
            let mut taker = SliceTaker::Taking(SectionTaking {
                name,
                position: &mut self.position,
                document: &mut *document,
                start,
                entries: &mut entries,
                finished: false,
            });
            visit(&mut taker);
            if !matches!(
                taker,
                SliceTaker::Taking(SectionTaking { finished: true, .. })
            ) {
                return false;
            }
            self.section += 1;
            self.position = SectionPosition::Head;
        }
        true
    }

    /// The document's fields before its sections, and the head of the sections' map.
    fn encode_head(&self, document: &mut Vec<u8>) {
        let writer = JournalWriter::current();
        let fields: [(&str, u64); 5] = [
            ("format", EXPORT_FORMAT.into()),
            ("schema", SCHEMA_VERSION.into()),
            ("journal_format", writer.format.into()),
            ("engine_revision", writer.engine_revision.into()),
            ("exported_at", self.exported_at),
        ];
        push(document, Header::Map(Some(fields.len() + 1)));
        for (name, value) in fields {
            text(document, name);
            push(document, Header::Positive(value));
        }
        text(document, "sections");
        push(document, Header::Map(Some(self.names.len())));
    }
}

/// What a slice does with the sections a state's walk visits: names them all (the first slice,
/// for the document's order), or takes entries of the one being taken (every other walked past).
pub enum SliceTaker<'a> {
    Naming(&'a mut BTreeSet<String>),
    Taking(SectionTaking<'a>),
}

pub struct SectionTaking<'a> {
    name: &'a str,
    position: &'a mut SectionPosition,
    document: &'a mut Vec<u8>,
    /// The document's length when the slice began.
    start: u64,
    /// Entries the slice took so far.
    entries: &'a mut u64,
    /// Whether the section's last entry is taken.
    finished: bool,
}

impl<'a> SliceTaker<'a> {
    /// The section `name` if it is the one being taken (when naming, it is named).
    fn taking(&mut self, name: &str) -> Option<&mut SectionTaking<'a>> {
        match self {
            Self::Naming(names) => {
                names.insert(name.to_string());
                None
            }
            Self::Taking(taking) => (taking.name == name).then_some(taking),
        }
    }
}

impl SectionTaking<'_> {
    /// Whether the slice took all it may.
    fn full(&self) -> bool {
        let taken_bytes = self.document.len() as u64 - self.start;
        *self.entries >= SLICE_ENTRIES || taken_bytes >= SLICE_BYTES
    }

    /// Encodes the section's name and length, once.
    fn head(&mut self, len: u64) {
        if *self.position == SectionPosition::Head {
            text(self.document, self.name);
            push(self.document, Header::Array(Some(len as usize)));
            *self.position = SectionPosition::First;
        }
    }

    /// Encodes one entry: `[key, value]`, both byte strings.
    fn entry(&mut self, key: &[u8], value: &[u8]) {
        push(self.document, Header::Array(Some(2)));
        bytes(self.document, key);
        bytes(self.document, value);
        *self.entries += 1;
    }

    /// Takes indexed entries (a cell's one, a log's or a vector's) from the position on, while
    /// the slice has room: `key` and `value` give an index's bytes.
    fn indexed(
        &mut self,
        len: u64,
        key: impl Fn(u64) -> Vec<u8>,
        mut value: impl FnMut(u64) -> Vec<u8>,
    ) {
        self.head(len);
        let mut index = match &*self.position {
            SectionPosition::Index(index) => *index,
            _ => 0,
        };
        while index < len {
            if self.full() {
                *self.position = SectionPosition::Index(index);
                return;
            }
            let value = value(index);
            self.entry(&key(index), &value);
            index += 1;
        }
        self.finished = true;
    }
}

fn index_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

impl SectionVisitor for SliceTaker<'_> {
    fn map<K, V, M>(&mut self, name: &str, map: &mut StableBTreeMap<K, V, M>)
    where
        K: Storable + Ord + Clone,
        V: Storable,
        M: Memory,
    {
        let Some(taking) = self.taking(name) else {
            return;
        };
        taking.head(map.len());
        let entries = match &*taking.position {
            SectionPosition::AfterKey(key) => {
                let after = K::from_bytes(Cow::Borrowed(key.as_slice()));
                map.range((Bound::Excluded(after), Bound::Unbounded))
            }
            _ => map.iter(),
        };
        for entry in entries {
            if taking.full() {
                return;
            }
            let (key, value) = entry.into_pair();
            let key = key.into_bytes();
            taking.entry(&key, &value.into_bytes());
            *taking.position = SectionPosition::AfterKey(key);
        }
        taking.finished = true;
    }

    fn cell<T: Storable + Clone, M: Memory>(&mut self, name: &str, cell: &mut StableCell<T, M>) {
        if let Some(taking) = self.taking(name) {
            taking.indexed(1, |_| Vec::new(), |_| cell.get().clone().into_bytes());
        }
    }

    fn log<T: Storable, I: Memory, D: Memory>(&mut self, name: &str, log: &Log<T, I, D>) {
        if let Some(taking) = self.taking(name) {
            taking.indexed(log.len(), index_key, |index| {
                let mut value = Vec::new();
                log.read_entry(index, &mut value)
                    .expect("an index below the log's length has an entry");
                value
            });
        }
    }

    fn vec<T: Storable, M: Memory>(&mut self, name: &str, vec: &StableVec<T, M>) {
        if let Some(taking) = self.taking(name) {
            taking.indexed(vec.len(), index_key, |index| {
                vec.get(index)
                    .expect("an index below the vector's length has an entry")
                    .into_bytes()
            });
        }
    }
}

fn push(document: &mut Vec<u8>, header: Header) {
    Encoder::from(document)
        .push(header)
        .expect("encoding into memory cannot fail");
}

fn text(document: &mut Vec<u8>, text: &str) {
    Encoder::from(document)
        .text(text, None)
        .expect("encoding into memory cannot fail");
}

fn bytes(document: &mut Vec<u8>, bytes: &[u8]) {
    Encoder::from(document)
        .bytes(bytes, None)
        .expect("encoding into memory cannot fail");
}
