//! The `icp` CLI's proxy interface on the real Wasm: an operator downloads a child's snapshot
//! through the deployer (metadata, then data in slices), uploads it
//! into another child through it, and that child, loaded from it, holds the first one's state.
//! Calls the proxy does not forward are refused with a reason, strangers are refused, and every
//! operator call is in the audit log, even one whose answer a trapped callback lost.
//! Spec: IC interface specification, management canister, "IC method
//! read_canister_snapshot_metadata", "read_canister_snapshot_data",
//! "upload_canister_snapshot_metadata", "upload_canister_snapshot_data".

mod rollout_support;
mod support;

use candid::{CandidType, Nat, Principal};
use deployer::{ListProxyCallsArg, ProxyArgs, ProxyError, ProxyResult, Selector};
use ic_management_canister_types::{
    CanisterIdRecord, LoadCanisterSnapshotArgs, ReadCanisterSnapshotMetadataArgs,
    SnapshotDataOffset, UploadCanisterSnapshotDataArgs, UploadCanisterSnapshotMetadataArgs,
    UploadCanisterSnapshotMetadataResult,
};
use ic_sim::scenario::IcEnvExt;
use rollout_support::*;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use support::{admin, operator, stranger};

/// Slices of 64 KiB (the IC allows up to 2,000,000 bytes): each part takes several, at offsets.
const SLICE: u64 = 64 * 1024;

fn proxied<A: CandidType, R: DeserializeOwned + CandidType>(
    fleet: &mut Fleet,
    method: &str,
    arg: &A,
) -> R {
    match proxy(fleet, method, arg) {
        ProxyResult::Ok(ok) => candid::decode_one(&ok.result).expect("the reply decodes"),
        ProxyResult::Err(error) => panic!("{method} through the proxy: {error:?}"),
    }
}

fn proxy<A: CandidType>(fleet: &mut Fleet, method: &str, arg: &A) -> ProxyResult {
    fleet.proxy_ok(
        operator(),
        ProxyArgs {
            canister_id: Principal::management_canister(),
            method: method.into(),
            args: ByteBuf::from(candid::encode_one(arg).unwrap()),
            cycles: Nat::from(0u8),
        },
    )
}

fn upload(
    fleet: &mut Fleet,
    child: Principal,
    snapshot: &[u8],
    bytes: &[u8],
    kind: fn(u64) -> SnapshotDataOffset,
) {
    for (index, slice) in bytes.chunks(SLICE as usize).enumerate() {
        let () = proxied(
            fleet,
            "upload_canister_snapshot_data",
            &UploadCanisterSnapshotDataArgs {
                canister_id: child,
                snapshot_id: snapshot.to_vec(),
                kind: kind(index as u64 * SLICE),
                chunk: slice.to_vec(),
            },
        );
    }
}

fn management<A: CandidType>(fleet: &mut Fleet, method: &str, arg: A) {
    let _: () = fleet
        .env
        .update(admin(), Principal::management_canister(), method, (arg,))
        .unwrap_or_else(|error| panic!("{method}: {error:?}"));
}

#[test]
fn an_operator_downloads_a_childs_snapshot_through_the_deployer_and_restores_it_elsewhere() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 2);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let (source, target) = (children[0], children[1]);
    for _ in 0..3 {
        let _: (u64,) = fleet.env.update(admin(), source, "increment", ()).unwrap();
    }
    let v1_hash = fleet.get_child_ok(operator(), source).module_hash.unwrap();
    let at_snapshot = counter_of(&mut fleet, source);
    // The rollout to v2 leaves the deployer's pre-install snapshot of each child.
    let v2 = release(&mut fleet, &ic_sim::artifacts::wasm("child_v2"), "2.0.0");
    let started = fleet
        .start_rollout_of(operator(), &v2, Selector::All, policy(1, vec![], 2))
        .answer()
        .unwrap();
    fleet.run_to_end(operator(), started.rollout_id, 1_000);
    let _: (u64,) = fleet.env.update(admin(), source, "increment", ()).unwrap();
    assert_eq!(counter_of(&mut fleet, source), at_snapshot + 1);

    let listed = fleet.child_snapshots(operator(), source).unwrap();
    let known = fleet.get_child_ok(operator(), source).snapshots;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, known[0].to_vec(), "the deployer's snapshot");
    let downloaded = fleet
        .download_child_snapshot(operator(), source, &listed[0].id, SLICE)
        .unwrap();
    let metadata = &downloaded.metadata;
    assert!(
        metadata.wasm_module_size > SLICE && metadata.wasm_memory_size > SLICE,
        "the module and the heap take several slices"
    );
    assert_eq!(
        Sha256::digest(&downloaded.wasm_module).to_vec(),
        v1_hash.to_vec(),
        "the module the child ran before the rollout"
    );
    assert_eq!(
        downloaded.stable_memory.len() as u64,
        metadata.stable_memory_size
    );

    // Into the other child, through the deployer too; its controller loads it.
    let uploaded: UploadCanisterSnapshotMetadataResult = proxied(
        &mut fleet,
        "upload_canister_snapshot_metadata",
        &UploadCanisterSnapshotMetadataArgs {
            canister_id: target,
            replace_snapshot: None,
            wasm_module_size: metadata.wasm_module_size,
            globals: metadata
                .globals
                .iter()
                .map(|global| global.clone().expect("a global the IC names"))
                .collect(),
            wasm_memory_size: metadata.wasm_memory_size,
            stable_memory_size: metadata.stable_memory_size,
            certified_data: metadata.certified_data.clone(),
            global_timer: None,
            on_low_wasm_memory_hook_status: None,
        },
    );
    let id = uploaded.snapshot_id;
    upload(&mut fleet, target, &id, &downloaded.wasm_module, |offset| {
        SnapshotDataOffset::WasmModule { offset }
    });
    upload(&mut fleet, target, &id, &downloaded.wasm_memory, |offset| {
        SnapshotDataOffset::WasmMemory { offset }
    });
    upload(
        &mut fleet,
        target,
        &id,
        &downloaded.stable_memory,
        |offset| SnapshotDataOffset::StableMemory { offset },
    );
    management(
        &mut fleet,
        "stop_canister",
        CanisterIdRecord {
            canister_id: target,
        },
    );
    management(
        &mut fleet,
        "load_canister_snapshot",
        LoadCanisterSnapshotArgs {
            canister_id: target,
            snapshot_id: id,
            sender_canister_version: None,
        },
    );
    management(
        &mut fleet,
        "start_canister",
        CanisterIdRecord {
            canister_id: target,
        },
    );
    assert_eq!(version_of(&mut fleet, target), "v1");
    assert_eq!(
        counter_of(&mut fleet, target),
        at_snapshot,
        "the source's state at its snapshot"
    );

    // Every operator call is in the audit log, with the child and the bytes moved.
    let audit = fleet.list_proxy_calls_ok(operator(), ListProxyCallsArg::default());
    assert!(audit
        .calls
        .iter()
        .all(|call| call.caller == operator() && call.error.is_none()));
    let reads: u64 = audit
        .calls
        .iter()
        .filter(|call| call.method == "read_canister_snapshot_data")
        .map(|call| call.reply_bytes.unwrap())
        .sum();
    assert!(reads >= downloaded.data_bytes());
    assert_eq!(audit.calls[0].method, "list_canister_snapshots");
    assert_eq!(audit.calls[0].child, Some(source));
}

#[test]
fn the_proxy_forwards_only_allowed_calls_about_children_for_operators() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 1);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    let child = children[0];
    let reason = |result: ProxyResult| match result {
        ProxyResult::Err(ProxyError::CallFailed { reason }) => reason,
        other => panic!("{other:?}"),
    };
    let status = CanisterIdRecord { canister_id: child };
    let refused = reason(proxy(&mut fleet, "uninstall_code", &status));
    assert!(
        refused.contains("does not proxy \"uninstall_code\""),
        "{refused}"
    );
    assert_eq!(version_of(&mut fleet, child), "v1", "nothing was forwarded");
    let outsider = fleet.env.create_canister(0, vec![admin(), fleet.canister]);
    let refused = reason(proxy(
        &mut fleet,
        "canister_status",
        &CanisterIdRecord {
            canister_id: outsider,
        },
    ));
    assert!(
        refused.contains("not one of the deployer's children"),
        "{refused}"
    );
    // A snapshot the child does not have: the management canister's reject, passed on.
    let refused = reason(proxy(
        &mut fleet,
        "read_canister_snapshot_metadata",
        &ReadCanisterSnapshotMetadataArgs {
            canister_id: child,
            snapshot_id: vec![0; 8],
        },
    ));
    assert!(
        refused.starts_with("the management canister rejected"),
        "{refused}"
    );

    // A stranger's ingress is refused before it runs (canister_inspect_message), and is not
    // recorded.
    assert!(fleet
        .proxy(
            stranger(),
            ProxyArgs {
                canister_id: Principal::management_canister(),
                method: "canister_status".into(),
                args: ByteBuf::from(candid::encode_one(&status).unwrap()),
                cycles: Nat::from(0u8),
            },
        )
        .is_err());
    let audit = fleet.list_proxy_calls_ok(operator(), ListProxyCallsArg::default());
    let errors: Vec<_> = audit
        .calls
        .iter()
        .map(|call| call.error.is_some())
        .collect();
    assert_eq!(errors, [true, true, true]);
    assert_eq!(audit.calls[1].child, None, "refused before naming a child");
}

/// The callback of a proxied call traps: the IC rejects the operator's call with
/// `CANISTER_ERROR` and runs the cleanup, where the call is still recorded, its answer lost.
#[test]
fn a_proxied_call_whose_callback_trapped_is_in_the_audit_log() {
    let mut fleet = fleet(1);
    let children = create_children(&mut fleet, 0, 1);
    fleet.adopt_all(admin(), std::slice::from_ref(&children));
    fleet.env.inject(ic_sim::Fault::TrapExecution {
        canister: fleet.canister,
        entry: "response:canister_status".to_string(),
        count: ic_sim::FaultCount::Times(1),
    });
    let status = CanisterIdRecord {
        canister_id: children[0],
    };

    let reject = fleet
        .proxy(
            operator(),
            ProxyArgs {
                canister_id: Principal::management_canister(),
                method: "canister_status".into(),
                args: ByteBuf::from(candid::encode_one(&status).unwrap()),
                cycles: Nat::from(0u8),
            },
        )
        .expect_err("the callback trapped")
        .reject();

    assert_eq!(reject.code, ic_sim::RejectCode::CanisterError, "{reject:?}");
    let audit = fleet.list_proxy_calls_ok(operator(), ListProxyCallsArg::default());
    assert_eq!(audit.calls.len(), 1, "{audit:?}");
    let call = &audit.calls[0];
    assert_eq!(call.child, Some(children[0]));
    assert_eq!(call.reply_bytes, None);
    let error = call.error.as_deref().unwrap_or_default();
    assert!(error.contains("callback trapped"), "{error}");
}
