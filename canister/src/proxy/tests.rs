use super::*;
use ic_stable_structures::VectorMemory;

fn child() -> Principal {
    Principal::from_slice(&[7, 1])
}

fn call(method: &str, about: Principal) -> ProxyArgs {
    #[derive(CandidType)]
    struct ReadData {
        canister_id: Principal,
        snapshot_id: ByteBuf,
        kind: u8,
    }
    ProxyArgs {
        canister_id: Principal::management_canister(),
        method: method.into(),
        args: ByteBuf::from(
            candid::encode_one(ReadData {
                canister_id: about,
                snapshot_id: ByteBuf::from(vec![0; 8]),
                kind: 1,
            })
            .unwrap(),
        ),
        cycles: Nat::from(0u8),
    }
}

fn reason(refused: Result<Principal, ProxyError>) -> String {
    match refused {
        Err(ProxyError::CallFailed { reason }) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn snapshot_reads_about_a_child_pass_and_the_child_is_named() {
    let is_child = |id: &Principal| *id == child();
    for method in ALLOWED_METHODS {
        assert_eq!(admit(&call(method, child()), is_child), Ok(child()));
    }
}

#[test]
fn other_callees_methods_canisters_and_arguments_are_refused_with_a_reason() {
    let is_child = |id: &Principal| *id == child();
    let elsewhere = ProxyArgs {
        canister_id: child(),
        ..call("canister_status", child())
    };
    assert!(reason(admit(&elsewhere, is_child)).contains("management canister"));
    for method in [
        "install_code",
        "load_canister_snapshot",
        "delete_canister_snapshot",
        "update_settings",
    ] {
        let refused = reason(admit(&call(method, child()), is_child));
        assert!(
            refused.contains("does not proxy") && refused.contains("rollouts"),
            "{refused}"
        );
    }
    let stranger = Principal::from_slice(&[9, 9]);
    assert!(reason(admit(&call("canister_status", stranger), is_child))
        .contains("not one of the deployer's children"));
    let garbage = ProxyArgs {
        args: ByteBuf::from(b"DIDL\x00\x01\x71\x01x".to_vec()),
        ..call("canister_status", child())
    };
    assert!(reason(admit(&garbage, is_child)).contains("does not decode"));
    let huge = ProxyArgs {
        args: ByteBuf::from(vec![0; MAX_PROXY_ARGS_BYTES + 1]),
        ..call("upload_canister_snapshot_data", child())
    };
    assert!(reason(admit(&huge, is_child)).contains("2,000,000"));
}

#[test]
fn the_audit_keeps_the_newest_entries_in_pages() {
    let mut audit = ProxyAudit::init(VectorMemory::default());
    let entry = |n: u64| ProxyCall {
        sequence: 0,
        at: n,
        caller: child(),
        method: "read_canister_snapshot_data".into(),
        child: Some(child()),
        args_bytes: 60,
        reply_bytes: Some(n),
        error: None,
    };
    for n in 0..MAX_AUDIT_ENTRIES + 5 {
        assert_eq!(audit.record(entry(n)), n);
    }
    let first = audit.list(&ListProxyCallsArg::default());
    assert_eq!(first.calls.len(), MAX_AUDIT_PAGE as usize);
    assert_eq!(first.calls[0].sequence, 5, "the five oldest were dropped");
    assert_eq!(first.calls[0].at, 5);
    let mut seen = first.calls.len() as u64;
    let mut next = first.next;
    while let Some(from) = next {
        let page = audit.list(&ListProxyCallsArg {
            from: Some(from),
            limit: Some(MAX_AUDIT_PAGE),
        });
        assert_eq!(page.calls[0].sequence, from);
        seen += page.calls.len() as u64;
        next = page.next;
    }
    assert_eq!(seen, MAX_AUDIT_ENTRIES);
}
