//! Every error the deployer's interface declares reaches a client of the real Wasm, with its
//! facts, and leaves everything stored as it was.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use candid::Principal;
use candid_parser::utils::CandidSource;
use deployer::{
    Error, ErrorKind, Quota, ReleasePage, ReleaseSelector, Role, StorageStats, TextField,
    UploadSetting, UploadSettingsUpdate, UploadStatus,
};
use serde_bytes::ByteBuf;
use support::*;

/// Errors of the fleet, of rollouts and of governance: each is produced on the real Wasm by
/// `rollout_errors_tests.rs`, except `ReleaseInUse` (a release an active rollout installs), which
/// `rollout_control_tests.rs` produces, `RolloutFinished`, which `silent_stall_tests.rs` does,
/// `StoreInUse` (`dashboard_tests.rs`), and `PlanChanged`, `GovernanceOnly` and
/// `ReleaseNotBlessed` (`governance_tests.rs`: a proposal executed after the fleet changed, a
/// governance-only deployer, a deployer that rolls out blessed releases only), and the errors
/// of backups of the deployer's own state (`state_backup_tests.rs`).
const PRODUCED_BY_ROLLOUT_TESTS: [&str; 29] = [
    // governance_tests (the Wasm, 1,001 children) and rollouts::tests (in flight).
    "PlanNotPrepared",
    "PreparesInFlight",
    "ExportNotHeld",
    "RestoreCommitting",
    "ExportStreamMissing",
    "BackupVersionUnsupported",
    "RestoreIntoDeployerWithState",
    "RestoreNotBegun",
    "RestorePieceMismatch",
    "RestoreIncomplete",
    "RestoreInvalid",
    "UpgradeGateClosed",
    "StoreInUse",
    "PlanChanged",
    "GovernanceOnly",
    "ReleaseNotBlessed",
    "ReleaseInUse",
    "Fleet",
    "NotAController",
    "CanisterStatusUnavailable",
    "StoreNotEmpty",
    "NoChunkStore",
    "InvalidRolloutPlan",
    "RolloutNotFound",
    "RolloutCommandRefused",
    "NothingToRollBack",
    "NotInRollout",
    "RolloutFinished",
    "RolloutDetailsPruned",
];

/// Everything a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Stored {
    stats: StorageStats,
    releases: ReleasePage,
    uploads: Vec<Result<UploadStatus, Error>>,
}

struct Catalogue {
    deployer: Deployer,
    uploads: Vec<u64>,
    seen: BTreeSet<String>,
}

impl Catalogue {
    fn stored(&mut self) -> Stored {
        let uploads = self.uploads.clone();
        Stored {
            stats: self.deployer.storage_stats_ok(stranger()),
            releases: self.deployer.list_releases_ok(
                stranger(),
                deployer::ListReleasesArg {
                    before: None,
                    limit: Some(100),
                },
            ),
            uploads: uploads
                .into_iter()
                .map(|id| self.deployer.upload_status(operator(), id).answer())
                .collect(),
        }
    }

    /// Runs `request`, expects `expected`, and checks that nothing stored changed.
    fn refused<T: std::fmt::Debug>(
        &mut self,
        expected: ErrorKind,
        request: impl FnOnce(&mut Deployer) -> Result<T, Error>,
    ) {
        let before = self.stored();
        let error = request(&mut self.deployer).expect_err("refused");
        assert_eq!(error.kind(), &expected);
        assert!(!error.message().is_empty());
        assert_eq!(self.stored(), before, "{expected:?} changed stored data");
        self.seen.insert(variant_name(&expected));
    }
}

fn variant_name(kind: &ErrorKind) -> String {
    let debug = format!("{kind:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_string()
}

fn did_error_variants() -> BTreeSet<String> {
    let did = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../candid/deployer.did");
    let (env, _) = CandidSource::File(&did).load().expect("the did parses");
    let error_kind = env.find_type("ErrorKind").expect("ErrorKind is defined");
    match error_kind.as_ref() {
        candid::types::TypeInner::Variant(fields) => {
            fields.iter().map(|field| field.id.to_string()).collect()
        }
        other => panic!("ErrorKind is not a variant: {other:?}"),
    }
}

fn blob(bytes: &[u8]) -> ByteBuf {
    ByteBuf::from(bytes.to_vec())
}

#[test]
fn every_error_variant_reaches_the_client_and_changes_nothing() {
    let mut c = Catalogue {
        deployer: install(),
        uploads: Vec::new(),
        seen: BTreeSet::new(),
    };
    let module = wasm_module(100, 1);
    let released = c.deployer.upload_ok(operator(), &module, 40, "app", "1");
    let open = c
        .deployer
        .upload_open(
            operator(),
            open_arg(&wasm_module(100, 2), Some(40), "app", "2"),
        )
        .answer()
        .unwrap();
    let id = open.upload_id;
    c.uploads.push(id);
    let other = wasm_module(100, 2);
    c.deployer
        .upload_chunk(operator(), chunk_arg(id, 0, &other[..40]))
        .answer()
        .unwrap();

    // Roles.
    c.refused(
        ErrorKind::NotAuthorized {
            caller: stranger(),
            required: Role::Operator,
        },
        |d| d.upload_status(stranger(), id).answer(),
    );
    c.refused(ErrorKind::LastAdmin { admin: admin() }, |d| {
        d.remove_role(admin(), admin(), Role::Admin).answer()
    });
    c.refused(ErrorKind::AnonymousPrincipal, |d| {
        d.add_role(admin(), Principal::anonymous(), Role::Operator)
            .answer()
    });

    // Opening.
    let mut arg = open_arg(&module, None, "app", "3");
    arg.sha256 = blob(&[1; 31]);
    c.refused(ErrorKind::InvalidSha256 { length: 31 }, |d| {
        d.upload_open(operator(), arg.clone()).answer()
    });
    let arg = open_arg(&module, None, "", "3");
    c.refused(
        ErrorKind::InvalidTextLength {
            field: TextField::Name,
            length: 0,
            min: 1,
            max: 64,
        },
        |d| d.upload_open(operator(), arg.clone()).answer(),
    );
    let arg = open_arg(&module, Some(0), "app", "3");
    c.refused(
        ErrorKind::InvalidChunkSize {
            chunk_size: 0,
            max: MIB as u32,
        },
        |d| d.upload_open(operator(), arg.clone()).answer(),
    );
    let arg = open_arg(&wasm_module(1000, 3), Some(5), "app", "3");
    c.refused(
        ErrorKind::TooManyChunks {
            chunk_count: 200,
            max: 100,
            min_chunk_size: 10,
        },
        |d| d.upload_open(operator(), arg.clone()).answer(),
    );
    let mut arg = open_arg(&module, None, "app", "3");
    arg.size = 100 * MIB as u64 + 1;
    c.refused(
        ErrorKind::ModuleTooLarge {
            size: 100 * MIB as u64 + 1,
            max: 100 * MIB as u64,
        },
        |d| d.upload_open(operator(), arg.clone()).answer(),
    );
    let arg = open_arg(&wasm_module(100, 4), Some(40), "app", "1");
    c.refused(
        ErrorKind::ReleaseVersionTaken {
            name: "app".to_string(),
            version: "1".to_string(),
            sha256: released.summary.sha256.clone(),
        },
        |d| d.upload_open(operator(), arg.clone()).answer(),
    );
    c.refused(
        ErrorKind::SettingOutOfRange {
            setting: UploadSetting::MaxOpenUploads,
            value: 0,
            min: 1,
            max: 1000,
        },
        |d| {
            d.set_upload_settings(
                admin(),
                UploadSettingsUpdate {
                    max_open_uploads: Some(0),
                    ..Default::default()
                },
            )
            .answer()
        },
    );
    c.deployer
        .set_upload_settings(
            admin(),
            UploadSettingsUpdate {
                max_open_uploads: Some(1),
                ..Default::default()
            },
        )
        .answer()
        .unwrap();
    let arg = open_arg(&wasm_module(100, 5), Some(40), "app", "5");
    c.refused(
        ErrorKind::QuotaExceeded {
            quota: Quota::OpenUploads,
            limit: 1,
            in_use: 1,
            requested: 1,
        },
        |d| d.upload_open(operator(), arg.clone()).answer(),
    );

    // Chunks.
    c.refused(
        ErrorKind::ChunkIndexOutOfRange {
            index: 3,
            chunk_count: 3,
        },
        |d| {
            d.upload_chunk(operator(), chunk_arg(id, 3, &other[..20]))
                .answer()
        },
    );
    // Inside the ingress filter's framing allowance, beyond any chunk.
    let oversized = vec![0; MIB + 1];
    c.refused(
        ErrorKind::ChunkTooLarge {
            size: MIB as u64 + 1,
            max: MIB as u32,
        },
        |d| {
            d.upload_chunk(operator(), chunk_arg(id, 0, &oversized))
                .answer()
        },
    );
    c.refused(
        ErrorKind::ChunkSizeMismatch {
            index: 2,
            size: 40,
            expected: 20,
        },
        |d| {
            d.upload_chunk(operator(), chunk_arg(id, 2, &other[..40]))
                .answer()
        },
    );
    let conflicting = [0u8; 40];
    c.refused(
        ErrorKind::ChunkConflict {
            index: 0,
            stored_sha256: blob(&sha256(&other[..40])),
            sent_sha256: blob(&sha256(&conflicting)),
        },
        |d| {
            d.upload_chunk(operator(), chunk_arg(id, 0, &conflicting))
                .answer()
        },
    );
    c.refused(ErrorKind::UnknownUpload { upload_id: 999 }, |d| {
        d.upload_status(operator(), 999).answer()
    });

    // Commit.
    c.refused(
        ErrorKind::MissingChunks {
            missing: vec![1, 2],
        },
        |d| d.upload_commit(operator(), id).answer(),
    );
    c.deployer.upload_abort(operator(), id).answer().unwrap();
    c.uploads.clear();
    c.deployer
        .set_upload_settings(
            admin(),
            UploadSettingsUpdate {
                max_open_uploads: Some(10),
                ..Default::default()
            },
        )
        .answer()
        .unwrap();
    let mut declared = open_arg(&other, Some(40), "app", "2");
    declared.sha256 = blob(&[0xee; 32]);
    let wrong_hash = send_everything(&mut c, &declared, &other);
    c.refused(
        ErrorKind::HashMismatch {
            expected: blob(&[0xee; 32]),
            actual: blob(&sha256(&other)),
        },
        |d| d.upload_commit(operator(), wrong_hash).answer(),
    );
    let not_wasm = b"#!/bin/sh\necho this is a shell script, not Wasm\n".to_vec();
    let script = send_everything(
        &mut c,
        &open_arg(&not_wasm, Some(20), "script", "1"),
        &not_wasm,
    );
    c.refused(
        ErrorKind::InvalidWasm {
            reason:
                "the module starts with [23, 21, 2f, 62], neither the Wasm magic \\0asm nor gzip"
                    .to_string(),
        },
        |d| d.upload_commit(operator(), script).answer(),
    );
    let bomb = gzip_bomb();
    let bomb_upload = send_everything(&mut c, &open_arg(&bomb, None, "bomb", "1"), &bomb);
    c.refused(
        ErrorKind::UncompressedModuleTooLarge {
            max: 100 * MIB as u64,
        },
        |d| d.upload_commit(operator(), bomb_upload).answer(),
    );

    // Closed uploads.
    let committed = c
        .deployer
        .upload_ok(operator(), &wasm_module(100, 6), 40, "app", "6");
    let upload_of_committed = bomb_upload + 1; // ids are given out in order
    c.refused(
        ErrorKind::UploadCommitted {
            upload_id: upload_of_committed,
            release_sha256: committed.summary.sha256.clone(),
        },
        |d| d.upload_status(operator(), upload_of_committed).answer(),
    );
    let status_before_expiry = c
        .deployer
        .upload_status(operator(), script)
        .answer()
        .unwrap();
    c.deployer.env.advance_time(25 * HOUR_NANOS);
    c.refused(
        ErrorKind::UploadExpired {
            upload_id: script,
            expired_at: status_before_expiry.expires_at,
        },
        |d| d.upload_status(operator(), script).answer(),
    );

    // Releases.
    let unknown = ReleaseSelector::Sha256(blob(&[7; 32]));
    c.refused(
        ErrorKind::ReleaseNotFound {
            release: unknown.clone(),
        },
        |d| d.get_release(stranger(), unknown.clone()).answer(),
    );
    c.refused(
        ErrorKind::ChunkIndexOutOfRange {
            index: 9,
            chunk_count: 3,
        },
        |d| {
            d.release_chunk(
                stranger(),
                deployer::ReleaseChunkArg {
                    sha256: released.summary.sha256.clone(),
                    index: 9,
                },
            )
            .answer()
        },
    );

    let elsewhere: BTreeSet<String> = PRODUCED_BY_ROLLOUT_TESTS
        .iter()
        .map(|name| name.to_string())
        .collect();
    let declared = did_error_variants();
    assert!(declared.contains("ChunkConflict"), "{declared:?}");
    let untested: Vec<_> = declared
        .difference(&c.seen)
        .filter(|name| !elsewhere.contains(*name))
        .cloned()
        .collect();
    assert!(untested.is_empty(), "no test produces {untested:?}");
}

/// Opens an upload of `module` and sends all of it; returns the upload id.
fn send_everything(c: &mut Catalogue, arg: &deployer::UploadOpenArg, module: &[u8]) -> u64 {
    let status = c
        .deployer
        .upload_open(operator(), arg.clone())
        .answer()
        .expect("open");
    let chunk_size = status.chunk_size as usize;
    for (index, chunk) in module.chunks(chunk_size).enumerate() {
        c.deployer
            .upload_chunk(operator(), chunk_arg(status.upload_id, index as u32, chunk))
            .answer()
            .expect("chunk");
    }
    c.uploads.push(status.upload_id);
    status.upload_id
}

/// A small gzip stream of a Wasm header and a custom section whose zeros decompress to more
/// than 100 MiB.
fn gzip_bomb() -> Vec<u8> {
    let section_size = 100 * MIB as u32;
    let mut wasm = b"\0asm\x01\x00\x00\x00\x00".to_vec();
    let mut size = section_size;
    for _ in 0..4 {
        wasm.push((size & 0x7f) as u8 | 0x80);
        size >>= 7;
    }
    wasm.push(size as u8);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&wasm).unwrap();
    let zeros = vec![0; MIB];
    for _ in 0..=100 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
}
