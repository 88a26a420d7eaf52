//! Model-based test: random sequences of upload operations (open, chunk, duplicate and
//! conflicting chunks, status, commit, abort, delete, list, time passing beyond expiry, deployer
//! upgrades) run against the real deployer Wasm and against a plain in-memory model. Every reply
//! and the storage totals must agree.
//!
//! `DEPLOYER_PROPTEST_CASES` sets the number of cases (default [`DEFAULT_CASES`]).

mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use deployer::{
    Error, ErrorKind, ModuleEncoding, Quota, Release, ReleaseSelector, ReleaseSummary,
    UploadSettingsUpdate, UploadStatus,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_bytes::ByteBuf;
use support::*;

const DEFAULT_CASES: u32 = 100;
const TTL: u64 = 24 * HOUR_NANOS;
const RETENTION: u64 = 7 * 24 * HOUR_NANOS;
const MAX_OPEN_UPLOADS: u32 = 3;
const CHUNK_SIZES: [u32; 3] = [16, 50, 64];
/// Sums of these steps stay at least an hour away from the TTL and the tombstone ends (24 h,
/// 168 h, 192 h), more than the simulated seconds a case's messages take (under 40 minutes for
/// 60 operations), so no outcome depends on exactly when a message executed.
const TIME_STEPS_HOURS: [u64; 2] = [5, 30];

/// A module the test may upload: its bytes, the SHA-256 declared for it, and why the bytes
/// are not Wasm (if they are not).
struct Entry {
    bytes: Vec<u8>,
    declared: [u8; 32],
    invalid: Option<&'static str>,
}

fn pool() -> Vec<Entry> {
    let honest = |bytes: Vec<u8>, invalid| Entry {
        declared: sha256(&bytes),
        bytes,
        invalid,
    };
    let shared = wasm_module(300, 3);
    let mut sharing = shared.clone();
    *sharing.last_mut().unwrap() ^= 1; // the same chunks but the last
    vec![
        honest(wasm_module(40, 1), None),
        honest(wasm_module(130, 2), None),
        honest(shared, None),
        honest(sharing, None),
        honest(
            b"plain text, not a Wasm module at all".to_vec(),
            Some("the module starts with [70, 6c, 61, 69], neither the Wasm magic \\0asm nor gzip"),
        ),
        Entry {
            bytes: wasm_module(130, 2),
            declared: [0xee; 32],
            invalid: None,
        },
    ]
}

#[derive(Clone, Copy, Debug)]
enum ChunkKind {
    Correct,
    Conflicting,
    Truncated,
}

#[derive(Clone, Debug)]
enum Op {
    Open {
        entry: usize,
        chunk_size: u32,
        version: u8,
    },
    /// `upload` picks one of the ids given out so far, or the next (unknown) one.
    Chunk {
        upload: usize,
        index: u32,
        kind: ChunkKind,
    },
    /// Sends every missing chunk of the upload, as a client finishing it does.
    SendRest {
        upload: usize,
    },
    Status {
        upload: usize,
    },
    Commit {
        upload: usize,
    },
    Abort {
        upload: usize,
    },
    Delete {
        release: usize,
    },
    List,
    AdvanceHours(u64),
    Upgrade,
}

fn op(entries: usize) -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        3 => Just(ChunkKind::Correct),
        1 => Just(ChunkKind::Conflicting),
        1 => Just(ChunkKind::Truncated),
    ];
    prop_oneof![
        3 => (0..entries, prop::sample::select(&CHUNK_SIZES[..]), 0..3u8).prop_map(
            |(entry, chunk_size, version)| Op::Open { entry, chunk_size, version }
        ),
        10 => (any::<usize>(), 0..25u32, kind)
            .prop_map(|(upload, index, kind)| Op::Chunk { upload, index, kind }),
        3 => any::<usize>().prop_map(|upload| Op::SendRest { upload }),
        1 => any::<usize>().prop_map(|upload| Op::Status { upload }),
        3 => any::<usize>().prop_map(|upload| Op::Commit { upload }),
        1 => any::<usize>().prop_map(|upload| Op::Abort { upload }),
        1 => any::<usize>().prop_map(|release| Op::Delete { release }),
        1 => Just(Op::List),
        1 => prop::sample::select(&TIME_STEPS_HOURS[..]).prop_map(Op::AdvanceHours),
        1 => Just(Op::Upgrade),
    ]
}

/// The span of simulated time in which a message executed.
#[derive(Clone, Copy, Debug)]
struct Window {
    from: u64,
    to: u64,
}

impl Window {
    /// Whether `deadline` had passed when the message executed (the deployer's `now >= deadline`).
    fn reached(self, deadline: u64) -> bool {
        if self.to < deadline {
            false
        } else if self.from >= deadline {
            true
        } else {
            panic!("{deadline} falls inside {self:?}: the outcome depends on the exact time")
        }
    }

    fn contains(self, time: u64) -> bool {
        (self.from..=self.to).contains(&time)
    }
}

enum ModelUpload {
    Open {
        entry: usize,
        chunk_size: u32,
        version: String,
        received: BTreeMap<u32, Vec<u8>>,
        opened_at: u64,
        expires_at: u64,
    },
    Committed {
        sha256: [u8; 32],
        /// When the commit executed, known to its window.
        at: Window,
    },
}

/// What the deployer should hold, in the plainest terms.
#[derive(Default)]
struct Model {
    next_upload_id: u64,
    next_sequence: u64,
    uploads: BTreeMap<u64, ModelUpload>,
    releases: BTreeMap<[u8; 32], Release>,
    /// Every module hash ever released, for `Delete` to pick from.
    released: Vec<[u8; 32]>,
}

/// An upload as the deployer must see it at a given time.
enum Live<'a> {
    Open(&'a ModelUpload),
    Closed(ErrorKind),
}

impl Model {
    fn new() -> Self {
        Self {
            next_upload_id: 1,
            next_sequence: 1,
            ..Default::default()
        }
    }

    fn live(&self, upload_id: u64, at: Window) -> Live<'_> {
        let unknown = Live::Closed(ErrorKind::UnknownUpload { upload_id });
        let Some(upload) = self.uploads.get(&upload_id) else {
            return unknown;
        };
        match upload {
            ModelUpload::Open { expires_at, .. } if !at.reached(*expires_at) => Live::Open(upload),
            // Past its expiry an upload is expired, swept or not.
            ModelUpload::Open { expires_at, .. } => {
                if at.reached(expires_at + RETENTION) {
                    unknown
                } else {
                    Live::Closed(ErrorKind::UploadExpired {
                        upload_id,
                        expired_at: *expires_at,
                    })
                }
            }
            ModelUpload::Committed {
                sha256,
                at: committed,
            } => {
                if at.reached(committed.to + RETENTION) != at.reached(committed.from + RETENTION) {
                    panic!("a tombstone's end is ambiguous at {at:?}");
                }
                if at.reached(committed.from + RETENTION) {
                    unknown
                } else {
                    Live::Closed(ErrorKind::UploadCommitted {
                        upload_id,
                        release_sha256: ByteBuf::from(sha256.to_vec()),
                    })
                }
            }
        }
    }

    fn open_uploads(&self, at: Window) -> impl Iterator<Item = (u64, &ModelUpload)> + '_ {
        self.uploads
            .iter()
            .filter(move |(id, _)| matches!(self.live(**id, at), Live::Open(_)))
            .map(|(id, upload)| (*id, upload))
    }

    fn status(&self, upload_id: u64, pool: &[Entry]) -> UploadStatus {
        let Some(ModelUpload::Open {
            entry,
            chunk_size,
            version,
            received,
            opened_at,
            expires_at,
        }) = self.uploads.get(&upload_id)
        else {
            panic!("upload {upload_id} is not open in the model");
        };
        let module = &pool[*entry];
        let chunk_count = module.bytes.len().div_ceil(*chunk_size as usize) as u32;
        UploadStatus {
            upload_id,
            sha256: ByteBuf::from(module.declared.to_vec()),
            size: module.bytes.len() as u64,
            chunk_size: *chunk_size,
            chunk_count,
            name: "app".to_string(),
            version: version.clone(),
            notes: None,
            opened_by: operator(),
            opened_at: *opened_at,
            bytes_received: received.values().map(|bytes| bytes.len() as u64).sum(),
            missing_chunks: (0..chunk_count)
                .filter(|index| !received.contains_key(index))
                .collect(),
            expires_at: *expires_at,
        }
    }
}

/// The real deployer and the model, side by side.
struct Harness<'a> {
    deployer: &'a mut Deployer,
    model: Model,
    pool: &'a [Entry],
}

type Outcome<T> = Result<T, ErrorKind>;

fn kinds<T>(result: Result<T, Error>) -> Outcome<T> {
    result.map_err(|error| error.kind().clone())
}

impl Harness<'_> {
    fn window_of<T>(&mut self, call: impl FnOnce(&mut Deployer) -> T) -> (T, Window) {
        let from = self.deployer.env.time_nanos();
        let result = call(self.deployer);
        let to = self.deployer.env.time_nanos();
        (result, Window { from, to })
    }

    /// An id given out so far, or now and then the next one, which is unknown.
    fn upload_id(&self, pick: usize) -> u64 {
        let given = self.model.next_upload_id - 1;
        if given == 0 || pick.is_multiple_of(8) {
            self.model.next_upload_id
        } else {
            (pick as u64 / 8) % given + 1
        }
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Open {
                entry,
                chunk_size,
                version,
            } => self.open(entry, chunk_size, format!("v{version}")),
            Op::Chunk {
                upload,
                index,
                kind,
            } => self.chunk(self.upload_id(upload), index, kind),
            Op::SendRest { upload } => {
                let upload_id = self.upload_id(upload);
                let missing = match self.model.uploads.get(&upload_id) {
                    Some(ModelUpload::Open { .. }) => {
                        self.model.status(upload_id, self.pool).missing_chunks
                    }
                    _ => vec![0],
                };
                for index in missing {
                    self.chunk(upload_id, index, ChunkKind::Correct)?;
                }
                Ok(())
            }
            Op::Status { upload } => {
                let upload_id = self.upload_id(upload);
                let now = self.deployer.env.time_nanos();
                let actual = kinds(self.deployer.upload_status(operator(), upload_id).answer());
                let expected = match self.model.live(upload_id, Window { from: now, to: now }) {
                    Live::Open(_) => Ok(self.model.status(upload_id, self.pool)),
                    Live::Closed(error) => Err(error),
                };
                prop_assert_eq!(actual, expected);
                Ok(())
            }
            Op::Commit { upload } => self.commit(self.upload_id(upload)),
            Op::Abort { upload } => {
                let upload_id = self.upload_id(upload);
                let (actual, at) =
                    self.window_of(|d| kinds(d.upload_abort(operator(), upload_id).answer()));
                let expected = match self.model.live(upload_id, at) {
                    Live::Open(_) => {
                        self.model.uploads.remove(&upload_id);
                        Ok(())
                    }
                    Live::Closed(error) => Err(error),
                };
                prop_assert_eq!(actual, expected);
                Ok(())
            }
            Op::Delete { release } => {
                let released = &self.model.released;
                let sha256 = released
                    .get(release % (released.len() + 1))
                    .copied()
                    .unwrap_or([0x42; 32]);
                let actual = kinds(
                    self.deployer
                        .delete_release(operator(), ByteBuf::from(sha256.to_vec()))
                        .answer(),
                );
                let expected = match self.model.releases.remove(&sha256) {
                    Some(_) => Ok(()),
                    None => Err(ErrorKind::ReleaseNotFound {
                        release: ReleaseSelector::Sha256(ByteBuf::from(sha256.to_vec())),
                    }),
                };
                prop_assert_eq!(actual, expected);
                Ok(())
            }
            Op::List => {
                let page = self.deployer.list_releases_ok(
                    stranger(),
                    deployer::ListReleasesArg {
                        before: None,
                        limit: Some(100),
                    },
                );
                let mut expected: Vec<ReleaseSummary> = self
                    .model
                    .releases
                    .values()
                    .map(|release| release.summary.clone())
                    .collect();
                expected.sort_by_key(|summary| std::cmp::Reverse(summary.sequence));
                prop_assert_eq!(page.releases, expected);
                prop_assert_eq!(page.next_before, None);
                Ok(())
            }
            Op::AdvanceHours(hours) => {
                self.deployer.env.advance_time(hours * HOUR_NANOS);
                self.deployer.env.tick();
                Ok(())
            }
            Op::Upgrade => {
                upgrade(self.deployer);
                Ok(())
            }
        }
    }

    fn open(
        &mut self,
        entry: usize,
        chunk_size: u32,
        version: String,
    ) -> Result<(), TestCaseError> {
        let module = &self.pool[entry];
        let mut arg = open_arg(&module.bytes, Some(chunk_size as usize), "app", &version);
        arg.sha256 = ByteBuf::from(module.declared.to_vec());
        let (actual, at) =
            self.window_of(|d| kinds(d.upload_open(operator(), arg.clone()).answer()));
        let resumed = self
            .model
            .open_uploads(at)
            .find_map(|(id, upload)| match upload {
                ModelUpload::Open { entry: open, .. } => {
                    let open = &self.pool[*open];
                    (open.declared == module.declared && open.bytes.len() == module.bytes.len())
                        .then_some(id)
                }
                _ => None,
            });
        let taken = self
            .model
            .releases
            .values()
            .find(|release| release.summary.version == version)
            .filter(|release| release.summary.sha256.as_slice() != module.declared);
        let open_count = self.model.open_uploads(at).count() as u64;
        let expected_error = if resumed.is_some() {
            None
        } else if let Some(release) = taken {
            Some(ErrorKind::ReleaseVersionTaken {
                name: "app".to_string(),
                version: version.clone(),
                sha256: release.summary.sha256.clone(),
            })
        } else if open_count >= u64::from(MAX_OPEN_UPLOADS) {
            Some(ErrorKind::QuotaExceeded {
                quota: Quota::OpenUploads,
                limit: u64::from(MAX_OPEN_UPLOADS),
                in_use: open_count,
                requested: 1,
            })
        } else {
            None
        };
        if let Some(error) = expected_error {
            prop_assert_eq!(actual, Err(error));
            return Ok(());
        }
        let status = actual.map_err(|error| TestCaseError::fail(format!("open: {error:?}")))?;
        prop_assert!(
            at.contains(status.expires_at - TTL),
            "expiry {}",
            status.expires_at
        );
        let upload_id = match resumed {
            Some(upload_id) => upload_id,
            None => {
                let upload_id = self.model.next_upload_id;
                self.model.next_upload_id += 1;
                self.model.uploads.insert(
                    upload_id,
                    ModelUpload::Open {
                        entry,
                        chunk_size,
                        version,
                        received: BTreeMap::new(),
                        opened_at: status.opened_at,
                        expires_at: 0,
                    },
                );
                upload_id
            }
        };
        self.set_expiry(upload_id, status.expires_at);
        prop_assert_eq!(status, self.model.status(upload_id, self.pool));
        Ok(())
    }

    fn chunk(&mut self, upload_id: u64, index: u32, kind: ChunkKind) -> Result<(), TestCaseError> {
        let target = match self.model.uploads.get(&upload_id) {
            Some(ModelUpload::Open {
                entry, chunk_size, ..
            }) => Some((&self.pool[*entry].bytes, *chunk_size as usize)),
            _ => None,
        };
        let (index, bytes) = match target {
            Some((module, chunk_size)) => {
                let count = module.len().div_ceil(chunk_size) as u32;
                let index = index % (count + 1);
                let bytes = module.chunks(chunk_size).nth(index as usize).map_or(
                    vec![0],
                    |chunk| match kind {
                        ChunkKind::Correct => chunk.to_vec(),
                        ChunkKind::Conflicting => {
                            let mut changed = chunk.to_vec();
                            changed[0] ^= 0xff;
                            changed
                        }
                        ChunkKind::Truncated => chunk[..chunk.len() - 1].to_vec(),
                    },
                );
                (index, bytes)
            }
            None => (index, vec![1, 2, 3]),
        };
        let (actual, at) = self.window_of(|d| {
            kinds(
                d.upload_chunk(operator(), chunk_arg(upload_id, index, &bytes))
                    .answer(),
            )
        });
        let expected = self.model_chunk(upload_id, index, bytes, at, actual.as_ref().ok());
        prop_assert_eq!(actual, expected);
        Ok(())
    }

    /// What the model says `upload_chunk` must answer; takes the new expiry from `reply`.
    fn model_chunk(
        &mut self,
        upload_id: u64,
        index: u32,
        bytes: Vec<u8>,
        at: Window,
        reply: Option<&UploadStatus>,
    ) -> Outcome<UploadStatus> {
        if let Live::Closed(error) = self.model.live(upload_id, at) {
            return Err(error);
        }
        let Some(ModelUpload::Open {
            entry,
            chunk_size,
            received,
            ..
        }) = self.model.uploads.get_mut(&upload_id)
        else {
            unreachable!("live");
        };
        let module = &self.pool[*entry].bytes;
        let chunk_count = module.len().div_ceil(*chunk_size as usize) as u32;
        if index >= chunk_count {
            return Err(ErrorKind::ChunkIndexOutOfRange { index, chunk_count });
        }
        let expected = module
            .chunks(*chunk_size as usize)
            .nth(index as usize)
            .unwrap()
            .len();
        if bytes.len() != expected {
            return Err(ErrorKind::ChunkSizeMismatch {
                index,
                size: bytes.len() as u64,
                expected: expected as u32,
            });
        }
        if let Some(stored) = received.get(&index) {
            if *stored != bytes {
                return Err(ErrorKind::ChunkConflict {
                    index,
                    stored_sha256: ByteBuf::from(sha256(stored).to_vec()),
                    sent_sha256: ByteBuf::from(sha256(&bytes).to_vec()),
                });
            }
        }
        received.insert(index, bytes);
        let expires_at = reply.expect("the model accepts the chunk").expires_at;
        assert!(at.contains(expires_at - TTL), "expiry {expires_at}");
        self.set_expiry(upload_id, expires_at);
        Ok(self.model.status(upload_id, self.pool))
    }

    fn commit(&mut self, upload_id: u64) -> Result<(), TestCaseError> {
        let (actual, at) =
            self.window_of(|d| kinds(d.upload_commit(operator(), upload_id).answer()));
        let expected = self.model_commit(upload_id, at, actual.as_ref().ok());
        prop_assert_eq!(actual, expected);
        Ok(())
    }

    fn model_commit(
        &mut self,
        upload_id: u64,
        at: Window,
        reply: Option<&Release>,
    ) -> Outcome<Release> {
        let not_found = |sha256: [u8; 32]| ErrorKind::ReleaseNotFound {
            release: ReleaseSelector::Sha256(ByteBuf::from(sha256.to_vec())),
        };
        let upload = match self.model.live(upload_id, at) {
            Live::Open(upload) => upload,
            Live::Closed(ErrorKind::UploadCommitted { release_sha256, .. }) => {
                let sha256: [u8; 32] = release_sha256.as_slice().try_into().unwrap();
                return self
                    .model
                    .releases
                    .get(&sha256)
                    .cloned()
                    .ok_or(not_found(sha256));
            }
            Live::Closed(error) => return Err(error),
        };
        let ModelUpload::Open {
            entry,
            chunk_size,
            version,
            received,
            ..
        } = upload
        else {
            unreachable!("live");
        };
        let module = &self.pool[*entry];
        let chunk_count = module.bytes.len().div_ceil(*chunk_size as usize) as u32;
        let missing: Vec<u32> = (0..chunk_count)
            .filter(|i| !received.contains_key(i))
            .collect();
        if !missing.is_empty() {
            return Err(ErrorKind::MissingChunks { missing });
        }
        let bytes: Vec<u8> = received.values().flatten().copied().collect();
        let actual = sha256(&bytes);
        if actual != module.declared {
            return Err(ErrorKind::HashMismatch {
                expected: ByteBuf::from(module.declared.to_vec()),
                actual: ByteBuf::from(actual.to_vec()),
            });
        }
        if let Some(reason) = module.invalid {
            return Err(ErrorKind::InvalidWasm {
                reason: reason.to_string(),
            });
        }
        let (sha256, size, chunk_size, version) =
            (actual, bytes.len(), *chunk_size, version.clone());
        let chunk_sha256: Vec<ByteBuf> = received
            .values()
            .map(|chunk| ByteBuf::from(support::sha256(chunk).to_vec()))
            .collect();
        let committed = ModelUpload::Committed { sha256, at };
        if let Some(existing) = self.model.releases.get(&sha256).cloned() {
            self.model.uploads.insert(upload_id, committed);
            return Ok(existing);
        }
        if let Some(taken) = self
            .model
            .releases
            .values()
            .find(|r| r.summary.version == version)
        {
            return Err(ErrorKind::ReleaseVersionTaken {
                name: "app".to_string(),
                version,
                sha256: taken.summary.sha256.clone(),
            });
        }
        let created_at = reply.expect("the model commits").summary.created_at;
        assert!(at.contains(created_at));
        let release = Release {
            summary: ReleaseSummary {
                sha256: ByteBuf::from(sha256.to_vec()),
                name: "app".to_string(),
                version,
                notes: None,
                size: size as u64,
                uncompressed_size: size as u64,
                encoding: ModuleEncoding::Wasm,
                chunk_size,
                chunk_count: chunk_sha256.len() as u32,
                has_candid_service: false,
                enhanced_orthogonal_persistence: Some(false),
                created_at,
                created_by: operator(),
                sequence: self.model.next_sequence,
            },
            chunk_sha256,
            candid_service: None,
            blessing: None,
        };
        self.model.next_sequence += 1;
        self.model.releases.insert(sha256, release.clone());
        self.model.released.push(sha256);
        self.model.uploads.insert(upload_id, committed);
        Ok(release)
    }

    fn set_expiry(&mut self, upload_id: u64, new_expiry: u64) {
        if let Some(ModelUpload::Open { expires_at, .. }) = self.model.uploads.get_mut(&upload_id) {
            *expires_at = new_expiry;
        }
    }

    /// The storage totals the model implies: releases, distinct chunks, open uploads.
    fn check_storage(&mut self) -> Result<(), TestCaseError> {
        let now = self.deployer.env.time_nanos();
        let stats = self.deployer.storage_stats_ok(stranger());
        let releases = &self.model.releases;
        let release_bytes: u64 = releases.values().map(|r| r.summary.size).sum();
        let chunks: BTreeSet<Vec<u8>> = releases
            .keys()
            .flat_map(|sha256| {
                let entry = self
                    .pool
                    .iter()
                    .find(|e| sha256 == &support::sha256(&e.bytes))
                    .unwrap();
                let chunk_size = releases[sha256].summary.chunk_size as usize;
                entry
                    .bytes
                    .chunks(chunk_size)
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect();
        let open: Vec<u64> = self
            .model
            .open_uploads(Window { from: now, to: now })
            .map(|(id, _)| id)
            .collect();
        let staged: u64 = open
            .iter()
            .map(|&id| self.model.status(id, self.pool).bytes_received)
            .sum();
        prop_assert_eq!(
            (stats.releases, stats.release_bytes),
            (releases.len() as u64, release_bytes)
        );
        prop_assert_eq!(
            (stats.chunks, stats.chunk_bytes),
            (
                chunks.len() as u64,
                chunks.iter().map(|c| c.len() as u64).sum::<u64>()
            )
        );
        prop_assert_eq!(
            (stats.open_uploads, stats.staged_bytes),
            (open.len() as u64, staged)
        );
        Ok(())
    }
}

fn cases() -> u32 {
    std::env::var("DEPLOYER_PROPTEST_CASES")
        .ok()
        .map(|cases| cases.parse().expect("DEPLOYER_PROPTEST_CASES is a number"))
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn the_deployer_agrees_with_the_model_on_random_upload_sequences() {
    let pool = pool();
    // One IC for every case: it compiles the deployer Wasm once; each case gets a new deployer.
    let deployer = RefCell::new(install());
    let config = Config {
        cases: cases(),
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let ops = prop::collection::vec(op(pool.len()), 1..60);
    TestRunner::new(config)
        .run(&ops, |ops| {
            let mut deployer = deployer.borrow_mut();
            reinstall(&mut deployer);
            deployer
                .set_upload_settings(
                    admin(),
                    UploadSettingsUpdate {
                        max_open_uploads: Some(MAX_OPEN_UPLOADS),
                        ..Default::default()
                    },
                )
                .answer()
                .expect("settings");
            let mut harness = Harness {
                deployer: &mut deployer,
                model: Model::new(),
                pool: &pool,
            };
            for op in &ops {
                harness.run(op)?;
                harness.check_storage()?;
            }
            Ok(())
        })
        .unwrap();
}
