//! Releases end to end on the real deployer Wasm: chunked uploads through ingress, resumption,
//! the deployer's own upgrade in the middle of an upload, expiry, and downloads.
//! IC interface specification: "Ingress messages" (2 MiB payload limit) and "Ingress message
//! inspection" (`canister_inspect_message`: a trap refuses the message before execution).

mod support;

use deployer::{ErrorKind, ModuleEncoding, ReleaseSelector, UploadSettingsUpdate};
use ic_sim::RejectCode;
use support::*;

/// The IC's ingress payload limit.
const MAX_INGRESS_BYTES: usize = 2 * MIB;

#[test]
fn a_100_mib_module_goes_up_in_1_mib_ingress_chunks_and_comes_back_byte_identical() {
    let mut deployer = install();
    let module = wasm_module(100 * MIB, 100);
    let status = deployer
        .upload_open(operator(), open_arg(&module, None, "big", "1.0.0"))
        .answer()
        .expect("open");
    assert_eq!((status.chunk_size, status.chunk_count), (MIB as u32, 100));
    for (index, chunk) in module.chunks(MIB).enumerate() {
        let arg = candid::encode_one(chunk_arg(status.upload_id, index as u32, chunk)).unwrap();
        assert!(
            arg.len() < MAX_INGRESS_BYTES,
            "chunk {index} fits in one ingress message"
        );
        deployer
            .upload_chunk(operator(), chunk_arg(status.upload_id, index as u32, chunk))
            .answer()
            .expect("chunk");
    }
    let release = deployer
        .upload_commit(operator(), status.upload_id)
        .answer()
        .expect("commit");

    let listed = deployer.list_releases_ok(
        stranger(),
        deployer::ListReleasesArg {
            before: None,
            limit: None,
        },
    );
    assert_eq!(listed.releases, vec![release.summary.clone()]);
    assert_eq!(release.summary.size, 100 * MIB as u64);
    assert_eq!(release.summary.encoding, ModuleEncoding::Wasm);
    let downloaded = deployer.download(stranger(), &release).expect("download");
    assert!(
        downloaded == module,
        "the downloaded module is the uploaded one"
    );
    let chunk_hashes: Vec<[u8; 32]> = module.chunks(MIB).map(sha256).collect();
    let recorded: Vec<&[u8]> = release.chunk_sha256.iter().map(|h| h.as_slice()).collect();
    assert_eq!(
        recorded,
        chunk_hashes
            .iter()
            .map(|h| h.as_slice())
            .collect::<Vec<_>>()
    );
    assert_eq!(release.summary.sha256.as_slice(), sha256(&module));
}

#[test]
fn an_interrupted_upload_resumes_with_exactly_the_missing_chunks() {
    let mut deployer = install();
    let chunk_size = 256 * 1024;
    let module = wasm_module(5 * MIB + 777, 5);
    let arg = open_arg(&module, Some(chunk_size), "app", "2.0.0");
    let first = deployer
        .upload_open(operator(), arg.clone())
        .answer()
        .expect("open");
    let skipped = [2, 5, 6, 20];
    for (index, chunk) in module.chunks(chunk_size).enumerate() {
        if !skipped.contains(&index) {
            deployer
                .upload_chunk(operator(), chunk_arg(first.upload_id, index as u32, chunk))
                .answer()
                .expect("chunk");
        }
    }

    // The client restarts and knows only the module: it opens again.
    let resumed = deployer
        .upload_open(operator(), arg.clone())
        .answer()
        .expect("reopen");
    assert_eq!(resumed.upload_id, first.upload_id);
    assert_eq!(resumed.missing_chunks, vec![2, 5, 6, 20]);
    let missing_bytes: u64 = skipped
        .iter()
        .map(|&index| module.chunks(chunk_size).nth(index).unwrap().len() as u64)
        .sum();
    assert_eq!(resumed.bytes_received, module.len() as u64 - missing_bytes);

    for index in resumed.missing_chunks {
        let chunk = module.chunks(chunk_size).nth(index as usize).unwrap();
        deployer
            .upload_chunk(operator(), chunk_arg(first.upload_id, index, chunk))
            .answer()
            .expect("missing chunk");
    }
    let release = deployer
        .upload_commit(operator(), first.upload_id)
        .answer()
        .expect("commit");
    assert!(deployer.download(stranger(), &release).expect("download") == module);
}

#[test]
fn an_upload_survives_a_deployer_upgrade_in_the_middle() {
    let mut deployer = install();
    let earlier = deployer.upload_ok(operator(), &wasm_module(300_000, 1), MIB, "app", "1");
    let module = wasm_module(3 * MIB + 5, 2);
    let status = deployer
        .upload_open(operator(), open_arg(&module, None, "app", "2"))
        .answer()
        .expect("open");
    deployer
        .upload_chunk(
            operator(),
            chunk_arg(status.upload_id, 1, &module[MIB..2 * MIB]),
        )
        .answer()
        .expect("chunk 1");
    let before = deployer
        .upload_status(operator(), status.upload_id)
        .answer()
        .expect("status");

    upgrade(&mut deployer);

    assert_eq!(
        deployer
            .upload_status(operator(), status.upload_id)
            .answer(),
        Ok(before)
    );
    for index in [0, 2, 3] {
        let chunk = module.chunks(MIB).nth(index).unwrap();
        deployer
            .upload_chunk(operator(), chunk_arg(status.upload_id, index as u32, chunk))
            .answer()
            .expect("chunk after the upgrade");
    }
    let release = deployer
        .upload_commit(operator(), status.upload_id)
        .answer()
        .expect("commit");
    assert!(deployer.download(stranger(), &release).expect("download") == module);
    assert_eq!(
        deployer
            .list_releases_ok(
                stranger(),
                deployer::ListReleasesArg {
                    before: None,
                    limit: None
                }
            )
            .releases,
        vec![release.summary, earlier.summary]
    );
}

#[test]
fn the_large_child_gzip_module_is_released_with_its_candid_interface() {
    let mut deployer = install();
    let module = ic_sim::artifacts::wasm("child_large");
    assert!(module.len() > MAX_INGRESS_BYTES);
    let release = deployer.upload_ok(operator(), &module, MIB, "child", "large");
    assert_eq!(release.summary.encoding, ModuleEncoding::Gzip);
    assert!(release.summary.uncompressed_size > release.summary.size);
    let candid = release
        .candid_service
        .clone()
        .expect("the packager embeds child.did");
    assert!(
        candid.contains("large_digest : () -> (nat64) query"),
        "{candid}"
    );
    assert!(deployer.download(stranger(), &release).expect("download") == module);
}

#[test]
fn an_idle_upload_expires_by_timer_and_its_space_is_reused() {
    let mut deployer = install();
    let module = wasm_module(3 * MIB, 3);
    let opened = deployer
        .upload_open(operator(), open_arg(&module, None, "app", "1"))
        .answer()
        .expect("open");
    let mut status = opened;
    for (index, chunk) in module.chunks(MIB).enumerate() {
        status = deployer
            .upload_chunk(operator(), chunk_arg(status.upload_id, index as u32, chunk))
            .answer()
            .expect("chunk");
    }
    let staged = deployer.storage_stats_ok(stranger());
    assert_eq!(staged.staged_bytes, module.len() as u64);

    deployer.env.advance_time(25 * HOUR_NANOS);
    deployer.env.tick();
    deployer.env.tick();

    let swept = deployer.storage_stats_ok(stranger());
    assert_eq!((swept.open_uploads, swept.staged_bytes), (0, 0));
    assert_eq!(
        swept.free_block_bytes, swept.block_bytes,
        "the timer freed the expired upload's blocks without anyone touching it"
    );
    assert_eq!(
        deployer
            .upload_status(operator(), status.upload_id)
            .answer()
            .map_err(|e| e.kind().clone()),
        Err(ErrorKind::UploadExpired {
            upload_id: status.upload_id,
            expired_at: status.expires_at,
        })
    );

    let next = wasm_module(3 * MIB, 4);
    deployer.upload_ok(operator(), &next, MIB, "app", "1");
    let reused = deployer.storage_stats_ok(stranger());
    assert_eq!(reused.block_bytes, swept.block_bytes, "no new blocks");
    assert_eq!(reused.free_block_bytes, 0);
}

#[test]
fn inspect_message_refuses_strangers_and_the_method_refuses_oversized_chunks() {
    let mut deployer = install();
    let module = wasm_module(2 * MIB, 6);
    let arg = open_arg(&module, None, "app", "1");
    let refused = deployer
        .upload_open(stranger(), arg.clone())
        .expect_err("a stranger's upload is refused at the ingress filter")
        .reject();
    // The deployer traps in `canister_inspect_message` to say why: a trap there is reported as
    // a canister error, and the message is never executed.
    assert_eq!(refused.code, RejectCode::CanisterError);
    assert!(refused
        .message
        .contains("upload_open requires the Operator role"));

    let status = deployer
        .upload_open(operator(), arg.clone())
        .answer()
        .expect("open");
    // A chunk over 1 MiB that ingress still carries gets the error the interface promises,
    // and nothing is stored.
    let oversized = vec![0; MIB + 2048];
    let refused = deployer
        .upload_chunk(operator(), chunk_arg(status.upload_id, 0, &oversized))
        .answer()
        .expect_err("an oversized chunk is refused");
    assert_eq!(
        refused.kind(),
        &ErrorKind::ChunkTooLarge {
            size: (MIB + 2048) as u64,
            max: MIB as u32
        }
    );
    assert_eq!(deployer.storage_stats_ok(operator()).block_bytes, 0);
}

#[test]
fn releases_page_newest_first_and_are_found_by_name() {
    let mut deployer = install();
    let releases: Vec<_> = (0..5)
        .map(|n| {
            deployer.upload_ok(
                operator(),
                &wasm_module(1000 + n, n as u64),
                512,
                "app",
                &format!("1.{n}"),
            )
        })
        .collect();
    let first = deployer.list_releases_ok(
        stranger(),
        deployer::ListReleasesArg {
            before: None,
            limit: Some(2),
        },
    );
    let second = deployer.list_releases_ok(
        stranger(),
        deployer::ListReleasesArg {
            before: first.next_before,
            limit: Some(2),
        },
    );
    let last = deployer.list_releases_ok(
        stranger(),
        deployer::ListReleasesArg {
            before: second.next_before,
            limit: Some(2),
        },
    );
    let listed: Vec<_> = [first.releases, second.releases, last.releases].concat();
    let newest_first: Vec<_> = releases.iter().rev().map(|r| r.summary.clone()).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(last.next_before, None);
    let by_name = ReleaseSelector::NameVersion {
        name: "app".to_string(),
        version: "1.3".to_string(),
    };
    assert_eq!(
        deployer.get_release(stranger(), by_name).answer(),
        Ok(releases[3].clone())
    );
}

#[test]
fn deleting_a_release_frees_the_chunks_no_other_release_uses() {
    let mut deployer = install();
    let kept = deployer.upload_ok(operator(), &wasm_module(2 * MIB, 7), MIB, "app", "1");
    let gone = deployer.upload_ok(operator(), &wasm_module(2 * MIB, 8), MIB, "app", "2");
    deployer
        .delete_release(operator(), gone.summary.sha256.clone())
        .answer()
        .expect("delete");
    assert_eq!(
        deployer
            .get_release(
                stranger(),
                ReleaseSelector::Sha256(gone.summary.sha256.clone())
            )
            .answer()
            .map_err(|e| e.kind().clone()),
        Err(ErrorKind::ReleaseNotFound {
            release: ReleaseSelector::Sha256(gone.summary.sha256),
        })
    );
    let stats = deployer.storage_stats_ok(stranger());
    assert_eq!((stats.releases, stats.chunk_bytes), (1, 2 * MIB as u64));
    assert_eq!(stats.free_block_bytes, 2 * MIB as u64);
    assert!(deployer.download(stranger(), &kept).expect("download") == wasm_module(2 * MIB, 7));
}

#[test]
fn settings_changes_apply_to_new_uploads() {
    let mut deployer = install();
    let settings = deployer
        .set_upload_settings(
            admin(),
            UploadSettingsUpdate {
                upload_ttl_seconds: Some(3600),
                ..Default::default()
            },
        )
        .answer()
        .expect("settings");
    assert_eq!(settings.upload_ttl_seconds, 3600);
    let module = wasm_module(1000, 9);
    let status = deployer
        .upload_open(operator(), open_arg(&module, None, "app", "1"))
        .answer()
        .expect("open");
    assert_eq!(status.expires_at - status.opened_at, 3600 * 1_000_000_000);
}

/// The deployer pays for replicated execution, so its queries run replicated (as an update, or
/// called by a canister, which never meets `canister_inspect_message`) only for callers holding
/// a role; anyone reads them as queries.
#[test]
fn queries_run_replicated_only_for_callers_holding_a_role() {
    #[derive(candid::CandidType)]
    struct ForwardRequest {
        callee: candid::Principal,
        method: String,
        arg: serde_bytes::ByteBuf,
        cycles: candid::Nat,
        timeout_seconds: Option<u32>,
    }
    #[derive(candid::CandidType, candid::Deserialize, Debug)]
    struct ProbeCallError {
        code: u32,
        message: String,
    }
    use ic_sim::scenario::IcEnvExt;
    let mut deployer = install();
    let arg = candid::encode_one(deployer::ListReleasesArg::default()).unwrap();
    deployer.list_releases_ok(stranger(), deployer::ListReleasesArg::default());

    let refused = deployer
        .env
        .update_raw(stranger(), deployer.canister, "list_releases", arg.clone())
        .expect_err("a stranger's update call to a query is refused at inspection");
    assert!(
        refused
            .message
            .contains("list_releases is a query: call it as a query"),
        "{refused}"
    );
    deployer
        .env
        .update_raw(operator(), deployer.canister, "list_releases", arg.clone())
        .expect("an operator's update call to a query runs");

    let probe = deployer.env.create_canister(0, vec![admin()]);
    deployer
        .env
        .install_code(
            admin(),
            probe,
            &ic_sim::artifacts::wasm("probe"),
            candid::encode_args(()).unwrap(),
            ic_sim::InstallMode::Install,
        )
        .expect("install the probe");
    let forward = |deployer: &mut Deployer| {
        let request = ForwardRequest {
            callee: deployer.canister,
            method: "list_releases".to_string(),
            arg: serde_bytes::ByteBuf::from(arg.clone()),
            cycles: candid::Nat::from(0u32),
            timeout_seconds: None,
        };
        let (answer,): (Result<serde_bytes::ByteBuf, ProbeCallError>,) = deployer
            .env
            .update(admin(), probe, "forward", (request,))
            .expect("the probe answers");
        answer
    };
    let refused = forward(&mut deployer).expect_err("a canister without a role is refused");
    assert_eq!(refused.code, RejectCode::CanisterError as u32);
    assert!(
        refused.message.contains("list_releases is a query"),
        "{refused:?}"
    );
    deployer.add_role_ok(admin(), probe, deployer::Role::Operator);
    let reply = forward(&mut deployer).expect("a canister holding a role may pay");
    let (page,): (deployer::ReleasePage,) = candid::decode_args(&reply).unwrap();
    assert!(page.releases.is_empty());
}
