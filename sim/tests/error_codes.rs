//! The simulator's error codes against the replica's, as the `pocket-ic` crate (16.x) mirrors
//! its `ErrorCode` enum.
//! Spec: IC interface specification, "Reject codes" (the leading digit of `IC0xxx` is the reject
//! code) and "Error codes" (an implementation-specific code per error); the management
//! canister's method list (ic.did).

use ic_sim::errors::{ERROR_CODES, MANAGEMENT_COMMON_ERRORS, MANAGEMENT_METHOD_ERRORS};
use ic_sim::RejectCode;

#[test]
fn every_error_code_is_the_replicas_with_its_name_and_reject_code() {
    for row in ERROR_CODES {
        let replica = pocket_ic::ErrorCode::try_from(row.code as u64).unwrap_or_else(|_| {
            panic!("IC0{} ({}) is not a replica error code", row.code, row.name)
        });
        assert_eq!(format!("{replica:?}"), row.name, "IC0{}", row.code);
        assert_eq!(replica as u64, row.code as u64);
        let reject = match row.code / 100 {
            1 => RejectCode::SysFatal,
            2 => RejectCode::SysTransient,
            3 => RejectCode::DestinationInvalid,
            4 => RejectCode::CanisterReject,
            5 => RejectCode::CanisterError,
            _ => RejectCode::SysUnknown,
        };
        assert_eq!(row.reject, reject, "IC0{} {}", row.code, row.name);
    }
    let mut codes: Vec<u16> = ERROR_CODES.iter().map(|r| r.code).collect();
    codes.dedup();
    assert_eq!(codes.len(), ERROR_CODES.len(), "one row per code, in order");
}

#[test]
fn every_management_method_has_its_row_and_lists_only_known_codes() {
    let served = ic_sim::management_method_names();
    let listed: Vec<&str> = MANAGEMENT_METHOD_ERRORS.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        served, listed,
        "the table lists the served methods, in order"
    );
    for code in MANAGEMENT_COMMON_ERRORS
        .iter()
        .chain(MANAGEMENT_METHOD_ERRORS.iter().flat_map(|(_, c)| c.iter()))
    {
        assert!(
            ERROR_CODES.iter().any(|row| row.code == *code),
            "IC0{code} is not in ERROR_CODES"
        );
    }
    // The methods of ic.did the simulator serves (all but the canister logs and migration
    // methods, which are not modelled).
    for method in [
        "read_canister_snapshot_metadata",
        "read_canister_snapshot_data",
        "upload_canister_snapshot_metadata",
        "upload_canister_snapshot_data",
        "subnet_info",
        "node_metrics_history",
        "http_request",
        "ecdsa_public_key",
        "sign_with_ecdsa",
        "schnorr_public_key",
        "sign_with_schnorr",
        "vetkd_public_key",
        "vetkd_derive_key",
        "bitcoin_get_balance",
        "bitcoin_get_utxos",
        "bitcoin_send_transaction",
        "bitcoin_get_current_fee_percentiles",
        "bitcoin_get_block_headers",
    ] {
        assert!(served.contains(&method), "{method} is not served");
    }
}
