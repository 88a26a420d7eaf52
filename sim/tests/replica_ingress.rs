//! Conformance tests: ingress messages and queries (IC interface specification, "HTTPS interface":
//! "Request: Call", "Request: Query call", "Ingress message inspection"; "Reject codes").

mod replica_support;

use ic_sim::{IngressStatus, RejectCode};
use replica_support::*;

// "Request: Call": an update call's reply reaches the user through the ingress history.
#[test]
fn ingress_update_reply_reaches_the_user() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let id = sim
        .submit_update(user(), canister, "reply_arg", b"hello".to_vec())
        .unwrap();
    assert_eq!(sim.ingress_status(id), IngressStatus::Processing);
    assert_eq!(sim.await_ingress(id, 10).unwrap(), b"hello");
}

// "Principals": the anonymous principal may send calls; `msg_caller` is the sender.
#[test]
fn anonymous_sender_is_the_caller() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let anonymous = candid::Principal::anonymous();
    let caller = sim
        .update_call(anonymous, canister, "caller", Vec::new())
        .unwrap();
    assert_eq!(caller, anonymous.as_slice());
    let caller = sim
        .update_call(user(), canister, "caller", Vec::new())
        .unwrap();
    assert_eq!(caller, user().as_slice());
}

// Resource limits: ingress messages carry at most 2 MiB.
#[test]
fn ingress_payload_over_2_mib_is_refused() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let at_limit = vec![7u8; 2 * 1024 * 1024];
    let reply = sim
        .update_call(user(), canister, "arg_size", at_limit)
        .unwrap();
    assert_eq!(reply, (2u32 * 1024 * 1024).to_le_bytes());
    let over = vec![7u8; 2 * 1024 * 1024 + 1];
    let refused = sim
        .submit_update(user(), canister, "arg_size", over)
        .unwrap_err();
    assert!(refused.message.contains("payload too large"), "{refused}");
}

// "Ingress message inspection": a canister that does not call `accept_message` refuses the
// message before it is enqueued.
#[test]
fn inspect_message_refusal_is_canister_reject_ic0406() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let round = sim.round();
    let refused = sim
        .submit_update(user(), canister, "refused", Vec::new())
        .unwrap_err();
    assert_eq!(refused.code, RejectCode::CanisterReject);
    assert_eq!(refused.error_code.as_deref(), Some("IC0406"));
    assert!(
        refused.message.contains("rejected the message"),
        "{refused}"
    );
    sim.run_until_idle(10);
    assert_eq!(sim.round(), round, "nothing was enqueued");
}

// "Ingress message inspection": a trap in `canister_inspect_message` also refuses the message.
#[test]
fn inspect_message_trap_refuses_the_message() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let refused = sim
        .submit_update(user(), canister, "inspect_trap", Vec::new())
        .unwrap_err();
    assert_eq!(refused.code, RejectCode::CanisterError);
    assert_eq!(refused.error_code.as_deref(), Some("IC0503"));
    assert!(refused.message.contains("inspect_trap"), "{refused}");
}

// "Request: Query call": a query's state changes are discarded.
#[test]
fn query_changes_are_discarded() {
    let mut sim = new_sim();
    let canister = install_on(&mut sim, 0, &echo_wasm(), b"from init".to_vec());
    assert_eq!(
        sim.query_call(user(), canister, "read", Vec::new())
            .unwrap(),
        b"from init"
    );
    sim.query_call(user(), canister, "write_in_query", b"lost".to_vec())
        .unwrap();
    assert_eq!(
        sim.query_call(user(), canister, "read", Vec::new())
            .unwrap(),
        b"from init"
    );
    // The same method run as an update call (a replicated query) is discarded as well.
    sim.update_call(user(), canister, "write_in_query", b"lost too".to_vec())
        .unwrap();
    assert_eq!(
        sim.query_call(user(), canister, "read", Vec::new())
            .unwrap(),
        b"from init"
    );
    sim.update_call(user(), canister, "write", b"kept".to_vec())
        .unwrap();
    assert_eq!(
        sim.query_call(user(), canister, "read", Vec::new())
            .unwrap(),
        b"kept"
    );
}

// "Request: Query call": only query methods can be called as queries.
#[test]
fn update_method_called_as_query_is_refused() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let err = sim
        .query_call(user(), canister, "reply_arg", Vec::new())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0536"));
    assert!(
        err.message.contains("has no query method 'reply_arg'"),
        "{err}"
    );
}

// Ingress to a method the canister does not export is refused (IC0536, CANISTER_ERROR).
#[test]
fn update_to_unknown_method_is_refused() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let err = sim
        .submit_update(user(), canister, "no_such_method", Vec::new())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0536"));
    assert!(
        err.message
            .contains("Canister has no update method 'no_such_method'"),
        "{err}"
    );
}

// Ingress to a canister without code is refused (IC0537).
#[test]
fn update_to_empty_canister_is_refused() {
    let mut sim = new_sim();
    let canister = sim.create_canister(0, vec![user()]);
    let err = sim
        .submit_update(user(), canister, "reply_arg", Vec::new())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0537"));
    assert!(err.message.contains("contains no Wasm module"), "{err}");
}

// Ingress to a canister id that does not exist: DESTINATION_INVALID.
#[test]
fn update_to_unknown_canister_is_refused() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let mut bytes = canister.as_slice().to_vec();
    bytes[7] += 1;
    let unknown = candid::Principal::from_slice(&bytes);
    let err = sim
        .submit_update(user(), unknown, "reply_arg", Vec::new())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::DestinationInvalid);
    assert_eq!(err.error_code.as_deref(), Some("IC0301"));
}

// "Reject codes": `msg_reject` gives the user CANISTER_REJECT with the canister's message.
#[test]
fn msg_reject_is_canister_reject() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let err = sim
        .update_call(user(), canister, "reject", b"no thanks".to_vec())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject);
    assert_eq!(err.message, "no thanks");
}

// A trap answers the call with CANISTER_ERROR (IC0503 for an explicit trap).
#[test]
fn trap_in_update_is_canister_error_ic0503() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let err = sim
        .update_call(user(), canister, "trap", b"boom".to_vec())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0503"));
    assert!(err.message.contains(&canister.to_text()), "{err}");
    assert!(err.message.contains("boom"), "{err}");
}

// A method that neither replies nor calls: the system rejects the call (IC0506).
#[test]
fn no_reply_is_canister_error_ic0506() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let err = sim
        .update_call(user(), canister, "noreply", Vec::new())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(err.error_code.as_deref(), Some("IC0506"));
    assert_eq!(
        err.message,
        format!("Canister {canister} did not reply to the call")
    );
}

// A query method may be called as an update (replicated query).
#[test]
fn query_method_can_be_called_as_update() {
    let mut sim = new_sim();
    let canister = echo(&mut sim);
    let reply = sim
        .update_call(user(), canister, "query_arg", b"replicated".to_vec())
        .unwrap();
    assert_eq!(reply, b"replicated");
}
