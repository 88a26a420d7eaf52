//! The stable memory layout: every byte the deployer keeps across upgrades is described here.
//!
//! All state lives in stable structures, written as it changes. Nothing is serialized in
//! `pre_upgrade` (the canister exports none), so the cost of an upgrade does not grow with the
//! amount of stored data, and an upgrade cannot fail for running out of instructions there.
//!
//! Stable memory is split by the stable-structures `MemoryManager` into virtual memories, each
//! owned by exactly one structure. Two structures must never share a memory id: they would
//! overwrite each other's bytes.
//!
//! | id | structure                               | owner               | key                   | value                     |
//! |----|-----------------------------------------|---------------------|-----------------------|---------------------------|
//! | 0  | cell [`HEADER_MEMORY_ID`]               | `memory`            | -                     | [`Header`]: magic, schema |
//! | 1  | map [`ROLES_MEMORY_ID`]                 | `roles`             | principal bytes       | CBOR array of role names  |
//! | 2  | map [`RELEASES_MEMORY_ID`]              | `releases`          | module SHA-256        | CBOR `ReleaseRecord`      |
//! | 3  | blocks [`CHUNK_BLOCKS_MEMORY_ID`]       | `block_store`       | block n: n × 64 KiB   | chunk bytes, see below    |
//! | 4  | map [`UPLOADS_MEMORY_ID`]               | `uploads`           | upload id (u64 BE)    | CBOR `UploadRecord`       |
//! | 5  | map [`FLEET_CHILDREN_MEMORY_ID`]        | `fleet`             | child principal bytes | CBOR `ChildRecord`        |
//! | 6  | map [`ROLLOUTS_MEMORY_ID`]              | `rollouts::journal` | rollout id (u64 BE)   | CBOR `RolloutRecord`      |
//! | 7  | log index [`JOURNAL_MEMORY_ID`]         | `rollouts::journal` | line (log index)      | end offsets into 17       |
//! | 8  | log index [`EVENTS_MEMORY_ID`]          | `rollouts::event_log` | sequence - base (log index) | end offsets into 18 |
//! | 9  | map [`CHUNK_INDEX_MEMORY_ID`]           | `block_store`       | chunk SHA-256         | CBOR `ChunkEntry`         |
//! | 10 | map [`FREE_BLOCKS_MEMORY_ID`]           | `block_store`       | first block (u32 BE)  | run length (u32 BE)       |
//! | 11 | map [`RELEASE_NAMES_MEMORY_ID`]         | `releases`          | `NameVersionKey`      | module SHA-256            |
//! | 12 | map [`RELEASE_SEQUENCE_MEMORY_ID`]      | `releases`          | sequence (u64 BE)     | module SHA-256            |
//! | 13 | cell [`RELEASE_STORE_CONFIG_MEMORY_ID`] | `release_store`     | -                     | CBOR `ReleaseStoreConfig` |
//! | 14 | map [`FLEET_INDEX_MEMORY_ID`]           | `fleet`             | tag, digest, child    | `()`                      |
//! | 15 | map [`FLEET_SUBNETS_MEMORY_ID`]         | `fleet`             | subnet index (u32 BE) | subnet principal bytes    |
//! | 16 | map [`STORE_CANISTERS_MEMORY_ID`]       | `rollouts::stores`  | subnet principal      | store canister principal  |
//! | 17 | log data [`JOURNAL_DATA_MEMORY_ID`]     | `rollouts::journal` | -                     | CBOR `JournalLine`s       |
//! | 18 | log data [`EVENTS_DATA_MEMORY_ID`]      | `rollouts::event_log` | -                   | CBOR `LoggedEvent`s       |
//! | 19 | map [`ACTIVE_ROLLOUTS_MEMORY_ID`]       | `rollouts::journal` | rollout id (u64 BE)   | `()`                      |
//! | 20 | map [`ROLLOUT_OVERVIEWS_MEMORY_ID`]     | `rollouts::journal` | rollout id (u64 BE)   | CBOR `RolloutOverview`    |
//! | 21 | cell [`EVENTS_BASE_MEMORY_ID`]          | `rollouts::event_log` | -                   | u64 LE: first sequence    |
//! | 22 | vec [`FLEET_COUNTS_MEMORY_ID`]          | `fleet`             | slot index            | tag, subnet/module, count |
//! | 23 | cell [`GOVERNANCE_MEMORY_ID`]           | `state`             | -                     | CBOR `GovernanceSettings` |
//! | 24 | cell [`DASHBOARD_MEMORY_ID`]            | `state`             | -                     | CBOR `DashboardSettings`  |
//! | 25 | map [`PROXY_AUDIT_MEMORY_ID`]           | `proxy`             | sequence (u64)        | CBOR `ProxyCall`          |
//! | 26 | map [`RELEASE_BLESSINGS_MEMORY_ID`]     | `release_store`     | module SHA-256        | CBOR `Blessing`           |
//! | 27 | map [`FINISHED_CHILDREN_MEMORY_ID`]     | `rollouts::finished`| rollout id, child     | CBOR `FinishedChild`s     |
//! | 28 | map [`FINISHED_ROLLOUTS_MEMORY_ID`]     | `rollouts::finished`| rollout id (u64 BE)   | CBOR `RolloutRecord`      |
//! | 29 | map [`CHECKPOINT_CHILDREN_MEMORY_ID`]   | `rollouts::checkpoint_children` | rollout id, run (u128 BE) | CBOR array of `Child` |
//! | 30 | log index [`EVENTS_SECOND_MEMORY_ID`]   | `rollouts::event_log` | sequence - base (log index) | end offsets into 31 |
//! | 31 | log data [`EVENTS_SECOND_DATA_MEMORY_ID`] | `rollouts::event_log` | -                   | CBOR `LoggedEvent`s       |
//! | 32 | cell [`EVENTS_SECOND_BASE_MEMORY_ID`]   | `rollouts::event_log` | -                     | u64 LE: first sequence    |
//!
//! A cell is a `StableCell`, a map a `StableBTreeMap`, a log a stable-structures `Log` (an
//! index memory of entry end offsets and a data memory of entries, appended in place);
//! SHA-256 keys and values are the 32 raw bytes. `ReleaseRecord` holds the release's metadata
//! and its chunk hashes in order, `UploadRecord` an open upload (with the blocks of each
//! received chunk) or its tombstone, `ChunkEntry` a chunk's length, reference count and block
//! runs, `ReleaseStoreConfig` the upload settings and the id counters. Golden-byte tests (here,
//! in `block_store` and in `uploads`) pin each encoding. The owner column names the module that
//! reads and writes the memory; `releases`, `uploads` and `block_store` are opened together by
//! [`crate::release_store::ReleaseStore`], the `rollouts` ones by [`crate::rollouts::Rollouts`].
//!
//! Chunk bytes live outside any map, in memory 3 cut into 64 KiB blocks (one Wasm page, so the
//! memory's size in pages is the number of blocks ever allocated). A chunk occupies whole blocks,
//! listed as runs `(first block, count)` in its index entry; freed runs go to memory 10, where
//! adjacent runs are merged, and are reused before the memory grows. Keeping megabyte values out of
//! `StableBTreeMap` matters: its nodes rewrite every value they hold on each insert, so 1 MiB
//! values would be copied about ten times per chunk. `NameVersionKey` is `len(name) (u8) | name |
//! version`, UTF-8, at most 129 bytes.
//!
//! The fleet registry's four maps (5, 14, 15, 22) are drawn in [`crate::fleet`]; the counts
//! (22, added after release 0.1) are made from the children when the memory has none. A rollout is a
//! checkpoint (6: its engine state, `crate::engine::Rollout`, plus its creator, claims and the
//! first journal entry not folded in; its children with their step histories in 29 since
//! schema 2, included before) and
//! a write-ahead journal shared by all rollouts (7 and 17: one line per dispatch, outcome or
//! command, written before the calls are made and when each outcome arrives, emptied when it is
//! folded into the checkpoints), and the ids of the active rollouts (19), so that an upgrade
//! reads only those, and each rollout's overview (20: creator, release, policy, summary), so
//! that reading a rollout that is not on the heap does not decode its children; see
//! [`crate::rollouts`]. A rollout that finishes moves out of 6: its children (with their
//! positions) to 27 in runs of 32 by id, each under the last id it holds, so that reading one
//! child's history decodes one run, a few runs per message; then its record without children to
//! 28 (`crate::rollouts::finished`). Until then it keeps its checkpoint and its id in 19.
//! Since schema 2 a checkpoint keeps its children apart (`children_apart` set; the record's
//! engine without children and wave order, its `children` empty): in 29, in runs of 32 by
//! position under `rollout id << 32 | run`, so that a checkpoint rewrites only the runs whose
//! children changed since the last one. The runs of a checkpoint removed go a slice at a time.
//! The event log is two generations (8, 18 and 21; since schema 3 also 30, 31 and 32), each a
//! log of `LoggedEvent`s, which name their rollouts, and the sequence number of its first event
//! (absent, as in release 0.1: 0). Events are appended to the newer (the larger first sequence
//! number); once it is full the older is emptied and written next ([`crate::rollouts`]'s
//! `event_log`). Before schema 3 the log was the first generation alone, rewritten with its
//! newest events when full.
//!
//! An export of the deployer's state ([`crate::backup`]) carries these structures' entries in
//! the encodings drawn here, one section per row (named after it), so [`SCHEMA_VERSION`] also
//! versions export documents: a restore refuses a document of another schema.
//!
//! Reserved ids get a constant and a getter when the feature that owns them lands; they are
//! listed here so that no other feature takes them.
//!
//! Values are CBOR (the crate's `Cbor<T>` wrapper) unless a row says otherwise; keys are
//! fixed or big-endian encodings so that byte order is key order.
//!
//! # Schema versions
//!
//! [`SCHEMA_VERSION`] names this layout. Schema 2 keeps checkpoints' children apart (memory
//! 29); it reads schema 1's checkpoints as they are, so its migration from 1 is the header's
//! new version (written by `post_upgrade`, [`Memories::record_this_build`]), which makes a
//! build of schema 1 refuse the memory from then on: it would read a checkpoint of schema 2 as
//! a rollout without children. Schema 3 keeps the event log in two generations (30 to 32
//! added); it reads the log of schema 1 or 2 as its first generation, the newer, so its
//! migration too is the header's version: a build of schema 2 would append to the first
//! generation when it is the older, numbering its events as the second's. Schema 1 is the layout of release 0.1, frozen: its
//! Wasm is kept in `fixtures/releases/deployer-0.1.wasm.gz`, and a scenario test upgrades from
//! it in the middle of a rollout. `post_upgrade` reads the header first and refuses to run on
//! memory it does not understand: memory written by a newer schema (a downgrade), or not
//! written by the deployer at all. A change that old code would misread (a new meaning for an
//! id, a key encoding, a value that old code cannot decode) bumps the version and adds its
//! migration to [`Memories::open`]; a new memory id or a new optional field (serde default)
//! does not. Backup runs and restores (added after release 0.1) store their operation where a
//! rollout stores its release (`crate::engine::Operation`, untagged: an upgrade's is the
//! release's map, byte for byte as 0.1 wrote it), so schema 1 still holds; only a downgrade to
//! 0.1 of a deployer that ran one is refused, by 0.1's `post_upgrade` trapping on that map
//! (the IC then keeps the running module and its memory).
//!
//! # The journal's writer
//!
//! The journal (memories 7 and 17) holds inputs that the engine replays, so its lines mean what
//! they mean only to the engine that wrote them. The header records who wrote them, as a
//! [`JournalWriter`]: the line encoding ([`JOURNAL_FORMAT`]) and the engine's decisions
//! ([`crate::engine::ENGINE_REVISION`]). An upgrade whose build would read either differently
//! is refused while the journal holds lines ([`JournalWriter::check`]); `prepare_upgrade` folds
//! the journal so that any build of the schema can take over. Once the journal is accepted,
//! `post_upgrade` records the new build as its writer.

use std::borrow::Cow;
use std::fmt;

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::storable::{Bound, Storable};
use ic_stable_structures::{Memory, StableCell};

pub mod freezable;
pub use freezable::{FreezableMemory, FrozenMemory};

/// The memory of every stored structure: a virtual memory of the deployer's stable memory.
pub type StoredMemory<M> = VirtualMemory<FreezableMemory<M>>;

/// A map key stored as its bytes, so that map order is byte order: at most `MAX` of them.
/// Each key type is one instantiation (`crate::fleet`'s index keys, release names, finished
/// rollouts' children), with its constructor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteKey<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> ByteKey<MAX> {
    /// The parts, concatenated. Callers bound them: more than `MAX` bytes is a bug.
    pub fn of(parts: &[&[u8]]) -> Self {
        let bytes = parts.concat();
        assert!(bytes.len() <= MAX, "a key of {} bytes", bytes.len());
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> Storable for ByteKey<MAX> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Self(bytes.into_owned())
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: MAX as u32,
        is_fixed_size: false,
    };
}

/// The layout version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 3;

/// The oldest layout this code migrates from. Schema 2 differs from 1 only in checkpoints
/// written from then on (their children apart, in memory 29), schema 3 from 2 in the event
/// log's second generation (30 to 32), and each reads the older one's memory as it is: the
/// migration is the header's new version, which keeps builds of older schemas away.
pub const OLDEST_MIGRATED_SCHEMA: u32 = 1;

/// The encoding of the journal's lines (`crate::rollouts::JournalLine` in CBOR).
pub const JOURNAL_FORMAT: u32 = 1;

/// First bytes of the header: marks memory as the deployer's, whatever its schema version.
pub const MAGIC: [u8; 4] = *b"DPLY";

/// The header cell: magic and schema version.
pub const HEADER_MEMORY_ID: MemoryId = MemoryId::new(0);
/// The roles table, see [`crate::roles::Roles`].
pub const ROLES_MEMORY_ID: MemoryId = MemoryId::new(1);
/// Releases by module hash, see [`crate::releases::ReleaseCatalog`].
pub const RELEASES_MEMORY_ID: MemoryId = MemoryId::new(2);
/// The bytes of every stored chunk, see [`crate::block_store::BlockStore`].
pub const CHUNK_BLOCKS_MEMORY_ID: MemoryId = MemoryId::new(3);
/// Upload sessions and their tombstones, see [`crate::uploads::UploadSessions`].
pub const UPLOADS_MEMORY_ID: MemoryId = MemoryId::new(4);
/// Chunk hash to length, reference count and blocks, see [`crate::block_store::BlockStore`].
pub const CHUNK_INDEX_MEMORY_ID: MemoryId = MemoryId::new(9);
/// Runs of free chunk blocks, reused before memory 3 grows.
pub const FREE_BLOCKS_MEMORY_ID: MemoryId = MemoryId::new(10);
/// Release (name, version) to module hash: the unique index behind `get_release` by name.
pub const RELEASE_NAMES_MEMORY_ID: MemoryId = MemoryId::new(11);
/// Release creation sequence to module hash: newest-first listing.
pub const RELEASE_SEQUENCE_MEMORY_ID: MemoryId = MemoryId::new(12);
/// Upload settings and the id counters, see [`crate::release_store::ReleaseStoreConfig`].
pub const RELEASE_STORE_CONFIG_MEMORY_ID: MemoryId = MemoryId::new(13);

/// Fleet children by canister id, see [`crate::fleet::Fleet`].
pub const FLEET_CHILDREN_MEMORY_ID: MemoryId = MemoryId::new(5);
/// Rollouts by id: the journal of each rollout, see [`crate::rollouts::Rollouts`].
pub const ROLLOUTS_MEMORY_ID: MemoryId = MemoryId::new(6);
/// The write-ahead journal's index: the rollouts' changes since their checkpoints, see
/// [`crate::rollouts`].
pub const JOURNAL_MEMORY_ID: MemoryId = MemoryId::new(7);
/// The deployer's event log's index, see [`crate::rollouts::Rollouts`].
pub const EVENTS_MEMORY_ID: MemoryId = MemoryId::new(8);
/// The journal's lines.
pub const JOURNAL_DATA_MEMORY_ID: MemoryId = MemoryId::new(17);
/// The event log's events.
pub const EVENTS_DATA_MEMORY_ID: MemoryId = MemoryId::new(18);
/// The ids of the rollouts in progress.
pub const ACTIVE_ROLLOUTS_MEMORY_ID: MemoryId = MemoryId::new(19);
/// What reads show of each rollout, written with its checkpoint (added after release 0.1; a
/// rollout 0.1 finished has none and is read from its checkpoint).
pub const ROLLOUT_OVERVIEWS_MEMORY_ID: MemoryId = MemoryId::new(20);
/// The sequence number of the event log's first event, once older ones were pruned (added after
/// release 0.1).
pub const EVENTS_BASE_MEMORY_ID: MemoryId = MemoryId::new(21);
/// The fleet registry's label and module index.
pub const FLEET_INDEX_MEMORY_ID: MemoryId = MemoryId::new(14);
/// The fleet registry's subnet numbering.
pub const FLEET_SUBNETS_MEMORY_ID: MemoryId = MemoryId::new(15);
/// The fleet's running counts by subnet and by module (added after release 0.1).
pub const FLEET_COUNTS_MEMORY_ID: MemoryId = MemoryId::new(22);
/// Who governs the deployer, see [`crate::governance::GovernanceSettings`] (added after
/// release 0.1: absent, nobody).
pub const GOVERNANCE_MEMORY_ID: MemoryId = MemoryId::new(23);
/// What the HTTP views show anyone, see [`crate::dashboard::DashboardSettings`] (added after
/// release 0.1: absent, aggregates only).
pub const DASHBOARD_MEMORY_ID: MemoryId = MemoryId::new(24);
/// The audit log of calls through the `icp` CLI's proxy interface, see
/// [`crate::proxy::ProxyAudit`] (added after release 0.1: absent, empty).
pub const PROXY_AUDIT_MEMORY_ID: MemoryId = MemoryId::new(25);
/// The releases blessed for rollouts, see [`crate::release_store::Blessing`] (added after
/// release 0.1: absent, none).
pub const RELEASE_BLESSINGS_MEMORY_ID: MemoryId = MemoryId::new(26);
/// The children of the finished rollouts in 28, in runs of 32 by id, with their positions
/// (added after release 0.1).
pub const FINISHED_CHILDREN_MEMORY_ID: MemoryId = MemoryId::new(27);
/// Finished rollouts, their engine without children (added after release 0.1: rollouts finished
/// before keep their checkpoints in 6; a build without it sees their details as pruned).
pub const FINISHED_ROLLOUTS_MEMORY_ID: MemoryId = MemoryId::new(28);
/// The children of the checkpoints in 6 written by schema 2, in runs of 32 by position (added in
/// schema 2).
pub const CHECKPOINT_CHILDREN_MEMORY_ID: MemoryId = MemoryId::new(29);
/// The event log's second generation: its index, its events and its first sequence number
/// (added in schema 3).
pub const EVENTS_SECOND_MEMORY_ID: MemoryId = MemoryId::new(30);
pub const EVENTS_SECOND_DATA_MEMORY_ID: MemoryId = MemoryId::new(31);
pub const EVENTS_SECOND_BASE_MEMORY_ID: MemoryId = MemoryId::new(32);
/// The chunk store canister registered for each subnet other than the deployer's own, see
/// [`crate::rollouts::SubnetStore`].
pub const STORE_CANISTERS_MEMORY_ID: MemoryId = MemoryId::new(16);

/// Every memory id in use, for [`Memories::claimed_bytes`].
const USED_MEMORY_IDS: [MemoryId; 33] = [
    HEADER_MEMORY_ID,
    ROLES_MEMORY_ID,
    RELEASES_MEMORY_ID,
    CHUNK_BLOCKS_MEMORY_ID,
    UPLOADS_MEMORY_ID,
    CHUNK_INDEX_MEMORY_ID,
    FREE_BLOCKS_MEMORY_ID,
    RELEASE_NAMES_MEMORY_ID,
    RELEASE_SEQUENCE_MEMORY_ID,
    RELEASE_STORE_CONFIG_MEMORY_ID,
    FLEET_CHILDREN_MEMORY_ID,
    ROLLOUTS_MEMORY_ID,
    JOURNAL_MEMORY_ID,
    EVENTS_MEMORY_ID,
    FLEET_INDEX_MEMORY_ID,
    FLEET_SUBNETS_MEMORY_ID,
    STORE_CANISTERS_MEMORY_ID,
    JOURNAL_DATA_MEMORY_ID,
    EVENTS_DATA_MEMORY_ID,
    ACTIVE_ROLLOUTS_MEMORY_ID,
    ROLLOUT_OVERVIEWS_MEMORY_ID,
    EVENTS_BASE_MEMORY_ID,
    FLEET_COUNTS_MEMORY_ID,
    GOVERNANCE_MEMORY_ID,
    DASHBOARD_MEMORY_ID,
    PROXY_AUDIT_MEMORY_ID,
    RELEASE_BLESSINGS_MEMORY_ID,
    FINISHED_CHILDREN_MEMORY_ID,
    FINISHED_ROLLOUTS_MEMORY_ID,
    CHECKPOINT_CHILDREN_MEMORY_ID,
    EVENTS_SECOND_MEMORY_ID,
    EVENTS_SECOND_DATA_MEMORY_ID,
    EVENTS_SECOND_BASE_MEMORY_ID,
];

/// Bytes in a Wasm (and stable memory) page.
pub const WASM_PAGE_BYTES: u64 = 65_536;

/// The framing magics of the stable-structures `MemoryManager` and `StableCell` layouts (v1,
/// drawn in the library's docs; not exported by it). [`Memories::open`] checks them before
/// initializing either structure, because both `init`s silently format memory they do not
/// recognize.
const MEMORY_MANAGER_MAGIC: &[u8; 3] = b"MGR";
const STABLE_CELL_MAGIC: &[u8; 3] = b"SCL";

/// The deployer's stable memory, split into its virtual memories.
pub struct Memories<M: Memory + Clone> {
    manager: MemoryManager<FreezableMemory<M>>,
    /// What the manager splits, kept to freeze it and to open a view of it.
    memory: FreezableMemory<M>,
}

impl<M: Memory + Clone> Memories<M> {
    /// Lays out empty stable memory for a fresh install and writes the header.
    ///
    /// Install and reinstall start from empty stable memory, so there is nothing to check.
    pub fn format(memory: M) -> Self {
        let memories = Self::split(FreezableMemory::new(memory));
        StableCell::new(memories.header(), Header::current());
        memories
    }

    /// Opens memory left by a previous installation, after checking that this code
    /// understands it. Reads only: memory that fails a check is left as it was.
    pub fn open(memory: M) -> Result<Self, LayoutError> {
        if memory.size() == 0 {
            return Err(LayoutError::Empty);
        }
        if !starts_with(&memory, MEMORY_MANAGER_MAGIC) {
            return Err(LayoutError::NotDeployer);
        }
        let memories = Self::split(FreezableMemory::new(memory));
        if !starts_with(&memories.header(), STABLE_CELL_MAGIC) {
            return Err(LayoutError::NotDeployer);
        }
        // The cell exists, so `init` decodes it and never writes the default passed here.
        StableCell::init(memories.header(), Header::current())
            .get()
            .check()?;
        Ok(memories)
    }

    fn split(memory: FreezableMemory<M>) -> Self {
        Self {
            manager: MemoryManager::init(memory.clone()),
            memory,
        }
    }

    /// Freezes the memory as it is now (see [`freezable`]), for [`Memories::frozen`].
    pub fn freeze(&self) {
        self.memory.freeze();
    }

    pub fn thaw(&self) {
        self.memory.thaw();
    }

    /// The memories as they were frozen, to be read only; `None` when no freeze holds (never
    /// frozen, thawed, or given up).
    pub fn frozen(&self) -> Option<Memories<FrozenMemory<M>>> {
        self.memory
            .frozen_view()
            .map(|view| Memories::split(FreezableMemory::new(view)))
    }

    /// Who wrote the journal's lines, as the header records it.
    pub fn journal_writer(&self) -> JournalWriter {
        StableCell::init(self.header(), Header::current())
            .get()
            .journal_writer
            .clone()
    }

    /// Records this build as the journal's writer and the memory's schema ([`SCHEMA_VERSION`],
    /// migrated from an older one by [`Memories::open`]'s check): after
    /// [`JournalWriter::check`] accepted the lines the previous build left.
    pub fn record_this_build(&self) {
        StableCell::init(self.header(), Header::current()).set(Header::current());
    }

    pub fn header(&self) -> StoredMemory<M> {
        self.manager.get(HEADER_MEMORY_ID)
    }

    pub fn roles(&self) -> StoredMemory<M> {
        self.manager.get(ROLES_MEMORY_ID)
    }

    pub fn releases(&self) -> StoredMemory<M> {
        self.manager.get(RELEASES_MEMORY_ID)
    }

    pub fn chunk_blocks(&self) -> StoredMemory<M> {
        self.manager.get(CHUNK_BLOCKS_MEMORY_ID)
    }

    pub fn uploads(&self) -> StoredMemory<M> {
        self.manager.get(UPLOADS_MEMORY_ID)
    }

    pub fn chunk_index(&self) -> StoredMemory<M> {
        self.manager.get(CHUNK_INDEX_MEMORY_ID)
    }

    pub fn free_blocks(&self) -> StoredMemory<M> {
        self.manager.get(FREE_BLOCKS_MEMORY_ID)
    }

    pub fn release_names(&self) -> StoredMemory<M> {
        self.manager.get(RELEASE_NAMES_MEMORY_ID)
    }

    pub fn release_sequence(&self) -> StoredMemory<M> {
        self.manager.get(RELEASE_SEQUENCE_MEMORY_ID)
    }

    pub fn release_store_config(&self) -> StoredMemory<M> {
        self.manager.get(RELEASE_STORE_CONFIG_MEMORY_ID)
    }

    pub fn fleet_children(&self) -> StoredMemory<M> {
        self.manager.get(FLEET_CHILDREN_MEMORY_ID)
    }

    pub fn fleet_index(&self) -> StoredMemory<M> {
        self.manager.get(FLEET_INDEX_MEMORY_ID)
    }

    pub fn fleet_subnets(&self) -> StoredMemory<M> {
        self.manager.get(FLEET_SUBNETS_MEMORY_ID)
    }

    pub fn fleet_counts(&self) -> StoredMemory<M> {
        self.manager.get(FLEET_COUNTS_MEMORY_ID)
    }

    pub fn governance(&self) -> StoredMemory<M> {
        self.manager.get(GOVERNANCE_MEMORY_ID)
    }

    pub fn dashboard(&self) -> StoredMemory<M> {
        self.manager.get(DASHBOARD_MEMORY_ID)
    }

    pub fn proxy_audit(&self) -> StoredMemory<M> {
        self.manager.get(PROXY_AUDIT_MEMORY_ID)
    }

    pub fn release_blessings(&self) -> StoredMemory<M> {
        self.manager.get(RELEASE_BLESSINGS_MEMORY_ID)
    }

    pub fn finished_children(&self) -> StoredMemory<M> {
        self.manager.get(FINISHED_CHILDREN_MEMORY_ID)
    }

    pub fn checkpoint_children(&self) -> StoredMemory<M> {
        self.manager.get(CHECKPOINT_CHILDREN_MEMORY_ID)
    }

    pub fn finished_rollouts(&self) -> StoredMemory<M> {
        self.manager.get(FINISHED_ROLLOUTS_MEMORY_ID)
    }

    pub fn rollouts(&self) -> StoredMemory<M> {
        self.manager.get(ROLLOUTS_MEMORY_ID)
    }

    pub fn journal(&self) -> StoredMemory<M> {
        self.manager.get(JOURNAL_MEMORY_ID)
    }

    pub fn events(&self) -> StoredMemory<M> {
        self.manager.get(EVENTS_MEMORY_ID)
    }

    pub fn journal_data(&self) -> StoredMemory<M> {
        self.manager.get(JOURNAL_DATA_MEMORY_ID)
    }

    pub fn events_data(&self) -> StoredMemory<M> {
        self.manager.get(EVENTS_DATA_MEMORY_ID)
    }

    pub fn active_rollouts(&self) -> StoredMemory<M> {
        self.manager.get(ACTIVE_ROLLOUTS_MEMORY_ID)
    }

    pub fn rollout_overviews(&self) -> StoredMemory<M> {
        self.manager.get(ROLLOUT_OVERVIEWS_MEMORY_ID)
    }

    pub fn events_base(&self) -> StoredMemory<M> {
        self.manager.get(EVENTS_BASE_MEMORY_ID)
    }

    pub fn events_second(&self) -> StoredMemory<M> {
        self.manager.get(EVENTS_SECOND_MEMORY_ID)
    }

    pub fn events_second_data(&self) -> StoredMemory<M> {
        self.manager.get(EVENTS_SECOND_DATA_MEMORY_ID)
    }

    pub fn events_second_base(&self) -> StoredMemory<M> {
        self.manager.get(EVENTS_SECOND_BASE_MEMORY_ID)
    }

    pub fn store_canisters(&self) -> StoredMemory<M> {
        self.manager.get(STORE_CANISTERS_MEMORY_ID)
    }

    /// Stable memory the deployer's structures have grown to, summed over its virtual memories
    /// (page granularity; the memory manager's 8 MiB buckets behind them are not counted).
    pub fn claimed_bytes(&self) -> u64 {
        USED_MEMORY_IDS
            .iter()
            .map(|&id| self.manager.get(id).size() * WASM_PAGE_BYTES)
            .sum()
    }
}

fn starts_with(memory: &impl Memory, magic: &[u8]) -> bool {
    if memory.size() == 0 {
        return false;
    }
    let mut prefix = vec![0; magic.len()];
    memory.read(0, &mut prefix);
    prefix == magic
}

/// The first value in stable memory: who wrote it, in which schema, and who wrote the journal.
///
/// Encoded by hand, not as CBOR, so that any future version can read the magic and the schema
/// version without understanding anything else: `magic (4 bytes) | schema_version (u32, BE) |
/// journal format (u32, BE) | engine revision (u32, BE)`. Later fields are appended after these
/// 16 bytes; decoders ignore what they do not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: [u8; 4],
    pub schema_version: u32,
    pub journal_writer: JournalWriter,
}

/// What the journal's lines mean: their encoding and the engine that decided them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalWriter {
    pub format: u32,
    pub engine_revision: u32,
}

const HEADER_LEN: usize = 16;

impl Header {
    pub fn current() -> Self {
        Self {
            magic: MAGIC,
            schema_version: SCHEMA_VERSION,
            journal_writer: JournalWriter::current(),
        }
    }

    fn check(&self) -> Result<(), LayoutError> {
        if self.magic != MAGIC {
            return Err(LayoutError::NotDeployer);
        }
        match self.schema_version.cmp(&SCHEMA_VERSION) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Greater => Err(LayoutError::NewerSchema {
                found: self.schema_version,
            }),
            std::cmp::Ordering::Less if self.schema_version >= OLDEST_MIGRATED_SCHEMA => Ok(()),
            std::cmp::Ordering::Less => Err(LayoutError::NoMigration {
                found: self.schema_version,
            }),
        }
    }
}

impl JournalWriter {
    pub fn current() -> Self {
        Self {
            format: JOURNAL_FORMAT,
            engine_revision: crate::engine::ENGINE_REVISION,
        }
    }

    /// Whether this build may replay the `lines` journal lines this writer left. An empty
    /// journal means nothing to any build.
    pub fn check(&self, lines: u64) -> Result<(), LayoutError> {
        if lines == 0 || *self == Self::current() {
            return Ok(());
        }
        Err(if self.format > JOURNAL_FORMAT {
            LayoutError::NewerJournal {
                found: self.format,
                lines,
            }
        } else {
            LayoutError::JournalOfAnotherEngine {
                found: self.clone(),
                lines,
            }
        })
    }
}

impl Storable for Header {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        bytes.extend_from_slice(&self.magic);
        bytes.extend_from_slice(&self.schema_version.to_be_bytes());
        bytes.extend_from_slice(&self.journal_writer.format.to_be_bytes());
        bytes.extend_from_slice(&self.journal_writer.engine_revision.to_be_bytes());
        bytes
    }

    /// Panics on fewer than 16 bytes: the cell's own framing was intact, so only a bug could
    /// have stored such a header.
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        assert!(
            bytes.len() >= HEADER_LEN,
            "deployer header is {} bytes, expected at least {HEADER_LEN}",
            bytes.len()
        );
        let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Self {
            magic: bytes[..4].try_into().expect("4 bytes"),
            schema_version: word(4),
            journal_writer: JournalWriter {
                format: word(8),
                engine_revision: word(12),
            },
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// Why stable memory left by the previous installation cannot be used by this code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// There is no stable memory at all.
    Empty,
    /// Stable memory was not written by the deployer.
    NotDeployer,
    /// Stable memory was written by a newer deployer: this is a downgrade.
    NewerSchema { found: u32 },
    /// Stable memory was written by an older schema this code has no migration from.
    NoMigration { found: u32 },
    /// The journal's lines are in an encoding newer than this build reads.
    NewerJournal { found: u32, lines: u64 },
    /// The journal's lines were decided by an engine that decides differently from this
    /// build's (or encoded in an older format): replaying them could apply an outcome to
    /// another child.
    JournalOfAnotherEngine { found: JournalWriter, lines: u64 },
}

/// What to do when the journal blocks an upgrade: the refused upgrade changed nothing.
const PREPARE_UPGRADE_HINT: &str = "the deployer keeps its current build (a refused upgrade \
     changes nothing): start it, call `prepare_upgrade(record { hold = true })` as an admin \
     until it answers `ready = true` (rollouts hold, their calls come back and the journal is \
     folded into checkpoints), stop it, and upgrade again";

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(
                f,
                "stable memory is empty, so there is no deployer state to upgrade: \
                 install the deployer (install mode `install` or `reinstall`) instead"
            ),
            Self::NotDeployer => write!(
                f,
                "stable memory was not written by the deployer: upgrading would destroy it; \
                 check the target canister, or use `reinstall` if its data may be discarded"
            ),
            Self::NewerSchema { found } => write!(
                f,
                "stable memory has deployer schema version {found}, newer than version \
                 {SCHEMA_VERSION} that this Wasm understands: install a deployer Wasm that \
                 supports schema {found} or later"
            ),
            Self::NoMigration { found } => write!(
                f,
                "stable memory has deployer schema version {found}, and this Wasm (schema \
                 {SCHEMA_VERSION}) has no migration from it: upgrade through a release that \
                 migrates from schema {found} first"
            ),
            Self::NewerJournal { found, lines } => write!(
                f,
                "the rollout journal holds {lines} lines in format {found}, newer than format \
                 {JOURNAL_FORMAT} that this Wasm reads: {PREPARE_UPGRADE_HINT}"
            ),
            Self::JournalOfAnotherEngine { found, lines } => write!(
                f,
                "the rollout journal holds {lines} lines decided by engine revision {} (format \
                 {}), and this Wasm's engine (revision {}, format {JOURNAL_FORMAT}) would replay \
                 them differently: {PREPARE_UPGRADE_HINT}",
                found.engine_revision,
                found.format,
                crate::engine::ENGINE_REVISION
            ),
        }
    }
}

impl std::error::Error for LayoutError {}

#[cfg(test)]
mod tests;
