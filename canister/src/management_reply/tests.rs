//! Checks the reader against replies encoded by the `candid` crate from the real
//! `ic-management-canister-types` result (the type the simulator replies with), against subtype
//! variants of it, and against truncated, mutated and hand-made malformed input.

use super::*;
use candid::{CandidType, Deserialize, Int, Nat, Principal, Reserved};
use ic_management_canister_types::{
    CanisterStatusResult, CanisterStatusType, DefiniteCanisterSettings, EnvironmentVariable,
    LogVisibility, MemoryMetrics, QueryStats, SnapshotVisibility, StatusVisibility,
};
use proptest::collection::vec;
use proptest::prelude::*;

const ALL_STATUSES: [(CanisterStatusType, StatusCode); 3] = [
    (CanisterStatusType::Running, StatusCode::Running),
    (CanisterStatusType::Stopping, StatusCode::Stopping),
    (CanisterStatusType::Stopped, StatusCode::Stopped),
];

/// Every field of `CanisterStatusResult` other than `status` and `module_hash`.
#[derive(Clone, Debug)]
struct OtherFields {
    nats: Vec<Nat>,
    controllers: Vec<Principal>,
    visibility: u8,
    viewers: Vec<Principal>,
    environment: Vec<(String, String)>,
    version: u64,
    ready_for_migration: bool,
}

fn sample_other_fields() -> OtherFields {
    let huge = Nat::from(u128::MAX) * Nat::from(u128::MAX);
    OtherFields {
        nats: vec![Nat::from(0u8), Nat::from(127u8), Nat::from(u64::MAX), huge],
        controllers: vec![
            Principal::anonymous(),
            Principal::management_canister(),
            Principal::from_slice(&[7; 29]),
        ],
        visibility: 2,
        viewers: vec![Principal::from_slice(&[1, 2, 3])],
        environment: vec![
            ("NETWORK".into(), "ic".into()),
            ("ÉTÉ".into(), String::new()),
        ],
        version: 42,
        ready_for_migration: true,
    }
}

fn visibility<T>(
    other: &OtherFields,
    controllers: T,
    public: T,
    allowed: fn(Vec<Principal>) -> T,
) -> T {
    match other.visibility % 3 {
        0 => controllers,
        1 => public,
        _ => allowed(other.viewers.clone()),
    }
}

fn status_result(
    status: CanisterStatusType,
    module_hash: Option<Vec<u8>>,
    other: &OtherFields,
) -> CanisterStatusResult {
    let mut nats = other.nats.iter().cycle().cloned();
    let mut nat = || nats.next().expect("OtherFields holds at least one nat");
    CanisterStatusResult {
        status,
        ready_for_migration: other.ready_for_migration,
        version: other.version,
        settings: DefiniteCanisterSettings {
            controllers: other.controllers.clone(),
            compute_allocation: nat(),
            memory_allocation: nat(),
            freezing_threshold: nat(),
            reserved_cycles_limit: nat(),
            minimum_incoming_canister_call_cycles: nat(),
            log_visibility: visibility(
                other,
                LogVisibility::Controllers,
                LogVisibility::Public,
                LogVisibility::AllowedViewers,
            ),
            log_memory_limit: nat(),
            snapshot_visibility: visibility(
                other,
                SnapshotVisibility::Controllers,
                SnapshotVisibility::Public,
                SnapshotVisibility::AllowedViewers,
            ),
            status_visibility: visibility(
                other,
                StatusVisibility::Controllers,
                StatusVisibility::Public,
                StatusVisibility::AllowedViewers,
            ),
            wasm_memory_limit: nat(),
            wasm_memory_threshold: nat(),
            environment_variables: other
                .environment
                .iter()
                .map(|(name, value)| EnvironmentVariable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        },
        module_hash,
        memory_size: nat(),
        memory_metrics: MemoryMetrics {
            wasm_memory_size: nat(),
            stable_memory_size: nat(),
            global_memory_size: nat(),
            wasm_binary_size: nat(),
            custom_sections_size: nat(),
            canister_history_size: nat(),
            wasm_chunk_store_size: nat(),
            snapshots_size: nat(),
            log_memory_store_size: nat(),
        },
        cycles: nat(),
        reserved_cycles: nat(),
        idle_cycles_burned_per_day: nat(),
        query_stats: QueryStats {
            num_calls_total: nat(),
            num_instructions_total: nat(),
            request_payload_bytes_total: nat(),
            response_payload_bytes_total: nat(),
        },
    }
}

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    candid::encode_one(value).expect("test values encode")
}

fn sample_reply() -> Vec<u8> {
    encode(&status_result(
        CanisterStatusType::Running,
        Some(vec![0xab; 32]),
        &sample_other_fields(),
    ))
}

#[test]
fn decodes_every_status_with_and_without_module_hash() {
    for (status, expected) in ALL_STATUSES {
        for module_hash in [None, Some(vec![]), Some((0..32).collect::<Vec<u8>>())] {
            let reply = encode(&status_result(
                status,
                module_hash.clone(),
                &sample_other_fields(),
            ));
            let decoded = decode_child_status(&reply).expect("a real reply decodes");
            assert_eq!(decoded.status, expected);
            assert_eq!(decoded.module_hash, module_hash);
            assert!(decoded.funds.is_some(), "a real reply holds the funds");
        }
    }
}

#[test]
fn reads_the_cycles_the_idle_burn_and_the_freezing_threshold() {
    let mut result = status_result(CanisterStatusType::Running, None, &sample_other_fields());
    result.cycles = Nat::from(123_456_789_012_345u64);
    result.idle_cycles_burned_per_day = Nat::from(987_654u32);
    result.settings.freezing_threshold = Nat::from(2_592_000u32);
    let decoded = decode_child_status(&encode(&result)).expect("a real reply decodes");
    assert_eq!(
        decoded.funds,
        Some(StatusFunds {
            cycles: 123_456_789_012_345,
            idle_cycles_burned_per_day: 987_654,
            freezing_threshold: 2_592_000,
        })
    );
    // Past u128 a balance saturates rather than wraps.
    result.cycles = Nat::from(u128::MAX) * Nat::from(1_000u32);
    result.settings.freezing_threshold = Nat::from(u128::MAX);
    let decoded = decode_child_status(&encode(&result)).expect("a real reply decodes");
    let funds = decoded.funds.expect("funds");
    assert_eq!(
        (funds.cycles, funds.freezing_threshold),
        (u128::MAX, u128::MAX)
    );
}

#[test]
fn field_hashes_match_the_candid_crate() {
    for name in [
        "status",
        "module_hash",
        "running",
        "stopping",
        "stopped",
        "cycles",
        "idle_cycles_burned_per_day",
        "settings",
        "freezing_threshold",
    ] {
        assert_eq!(idl_hash(name), candid::idl_hash(name), "{name}");
    }
}

/// `decode` refuses `reply` cut at every offset, and `reply` with a byte more.
fn assert_cut_and_extended_refused<T: fmt::Debug + PartialEq>(
    reply: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) {
    for end in 0..reply.len() {
        let expected = if end < 4 {
            DecodeError::NotCandid
        } else {
            DecodeError::Truncated
        };
        assert_eq!(decode(&reply[..end]), Err(expected), "cut at {end}");
    }
    let extended = [reply, &[0]].concat();
    assert!(matches!(decode(&extended), Err(DecodeError::Malformed(_))));
}

#[test]
fn a_cut_or_extended_status_reply_is_refused() {
    assert_cut_and_extended_refused(&sample_reply(), decode_child_status);
}

#[test]
fn non_candid_input_is_rejected() {
    assert_eq!(decode_child_status(b""), Err(DecodeError::NotCandid));
    assert_eq!(
        decode_child_status(b"DIDX\x00\x00"),
        Err(DecodeError::NotCandid)
    );
}

#[test]
fn two_arguments_are_rejected() {
    let first = status_result(CanisterStatusType::Running, None, &sample_other_fields());
    let reply = candid::encode_args((first, 1u8)).expect("encodes");
    assert_eq!(
        decode_child_status(&reply),
        Err(DecodeError::Malformed("reply is not a single value"))
    );
}

candid::define_function!(Callback : (u8, String) -> (Nat) query);
candid::define_service!(Notifier : { "notify" : candid::func!((u64) -> ()) });

/// A `status` variant with an extra case and a payload on one case, in a different order.
#[derive(CandidType, Deserialize, Clone)]
enum ExtendedStatus {
    #[serde(rename = "stopped")]
    Stopped,
    #[serde(rename = "migrating")]
    Migrating { target: Principal },
    #[serde(rename = "stopping")]
    Stopping(u64),
    #[serde(rename = "running")]
    Running,
}

/// A recursive type, encoded through a self-referencing type table entry.
#[derive(CandidType, Deserialize, Clone)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[derive(CandidType, Deserialize, Clone)]
struct Nothing {}

/// One value of every fixed-width primitive.
type Numbers = (i8, i16, i32, i64, u16, u32, u64, f32, f64, bool);

/// A reply a newer management canister could send: fields of every Candid kind around the two
/// the deployer reads, declared in a different order.
#[derive(CandidType, Deserialize, Clone)]
struct ExtendedReply {
    callback: Callback,
    numbers: Vec<Option<Numbers>>,
    module_hash: Option<Vec<u8>>,
    signed: Int,
    notifier: Notifier,
    reserved: Reserved,
    nulls: Vec<()>,
    nothings: Vec<Nothing>,
    tree: Tree,
    status: ExtendedStatus,
    controllers: Vec<Principal>,
    nested: Option<Option<Vec<String>>>,
    cycles: Nat,
}

fn extended_reply(status: ExtendedStatus, module_hash: Option<Vec<u8>>) -> ExtendedReply {
    let leaf = |label: &str| Tree {
        label: label.into(),
        children: vec![],
    };
    ExtendedReply {
        callback: Callback::new(Principal::from_slice(&[9; 10]), "on_done".into()),
        numbers: vec![
            None,
            Some((
                -1,
                -300,
                i32::MIN,
                i64::MAX,
                65535,
                7,
                u64::MAX,
                1.5,
                -0.25,
                true,
            )),
        ],
        module_hash,
        signed: Int::from(-12345678901234567890i128),
        notifier: Notifier::new(Principal::from_slice(&[4; 29])),
        reserved: Reserved,
        nulls: vec![(); 1000],
        nothings: vec![Nothing {}, Nothing {}],
        tree: Tree {
            label: "root".into(),
            children: vec![
                leaf("a"),
                Tree {
                    label: "b".into(),
                    children: vec![leaf("c")],
                },
            ],
        },
        status,
        controllers: vec![Principal::anonymous(); 3],
        nested: Some(Some(vec!["x".into(), String::new()])),
        cycles: Nat::from(u128::MAX),
    }
}

#[test]
fn extended_reply_with_reordered_and_unknown_fields_decodes() {
    let cases = [
        (ExtendedStatus::Running, StatusCode::Running),
        (ExtendedStatus::Stopping(77), StatusCode::Stopping),
        (ExtendedStatus::Stopped, StatusCode::Stopped),
    ];
    for (status, expected) in cases {
        for module_hash in [None, Some(vec![1, 2, 3])] {
            let reply = encode(&extended_reply(status.clone(), module_hash.clone()));
            assert_eq!(
                decode_child_status(&reply),
                Ok(ChildStatus {
                    status: expected,
                    module_hash,
                    funds: None,
                })
            );
        }
    }
}

#[test]
fn unknown_status_case_is_reported_by_hash() {
    let migrating = ExtendedStatus::Migrating {
        target: Principal::anonymous(),
    };
    let reply = encode(&extended_reply(migrating, None));
    assert_eq!(
        decode_child_status(&reply),
        Err(DecodeError::UnknownStatus(candid::idl_hash("migrating")))
    );
}

#[test]
fn reply_without_module_hash_field_has_none() {
    #[derive(CandidType)]
    struct StatusOnly {
        memory_size: Nat,
        status: CanisterStatusType,
    }
    let reply = encode(&StatusOnly {
        memory_size: Nat::from(5u8),
        status: CanisterStatusType::Stopping,
    });
    assert_eq!(
        decode_child_status(&reply),
        Ok(ChildStatus {
            status: StatusCode::Stopping,
            module_hash: None,
            funds: None,
        })
    );
}

#[test]
fn reply_without_status_field_is_missing_status() {
    #[derive(CandidType)]
    struct NoStatus {
        module_hash: Option<Vec<u8>>,
        cycles: Nat,
    }
    let reply = encode(&NoStatus {
        module_hash: Some(vec![1]),
        cycles: Nat::from(1u8),
    });
    assert_eq!(decode_child_status(&reply), Err(DecodeError::MissingStatus));
}

#[test]
fn fields_of_the_wrong_type_are_malformed() {
    #[derive(CandidType)]
    struct TextStatus {
        status: String,
    }
    #[derive(CandidType, Deserialize)]
    enum TwoCases {
        #[serde(rename = "running")]
        Running,
        #[serde(rename = "stopped")]
        Stopped,
    }
    #[derive(CandidType)]
    struct TwoCaseStatus {
        status: TwoCases,
    }
    #[derive(CandidType)]
    struct TextModuleHash {
        status: CanisterStatusType,
        module_hash: Option<String>,
    }
    let replies = [
        encode(&TextStatus {
            status: "running".into(),
        }),
        encode(&TwoCaseStatus {
            status: TwoCases::Running,
        }),
        encode(&TwoCaseStatus {
            status: TwoCases::Stopped,
        }),
        encode(&TextModuleHash {
            status: CanisterStatusType::Running,
            module_hash: None,
        }),
        encode(&CanisterStatusType::Running),
    ];
    for reply in replies {
        assert!(
            matches!(decode_child_status(&reply), Err(DecodeError::Malformed(_))),
            "{reply:x?}"
        );
    }
}

fn push_leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn push_sleb(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A hand-made reply `record { 0: <extra>; status: variant { running; stopping; stopped } }` in
/// the running state. Entry 0 is the record, entry 1 the status variant; `extra_entries` (already
/// encoded, `extra_count` of them) follow from index 2. Field 0 sorts before `status`, so its
/// value bytes `extra_value` come first.
fn crafted_reply(
    extra_count: u64,
    extra_entries: &[u8],
    extra_type: i64,
    extra_value: &[u8],
) -> Vec<u8> {
    let mut cases: Vec<u32> = STATUS_CASES.iter().map(|(hash, _)| *hash).collect();
    cases.sort_unstable();
    let mut reply = b"DIDL".to_vec();
    push_leb(&mut reply, 2 + extra_count);
    push_sleb(&mut reply, RECORD);
    push_leb(&mut reply, 2);
    push_leb(&mut reply, 0);
    push_sleb(&mut reply, extra_type);
    push_leb(&mut reply, u64::from(STATUS));
    push_sleb(&mut reply, 1);
    push_sleb(&mut reply, VARIANT);
    push_leb(&mut reply, 3);
    for case in &cases {
        push_leb(&mut reply, u64::from(*case));
        push_sleb(&mut reply, NULL);
    }
    reply.extend_from_slice(extra_entries);
    reply.extend_from_slice(&[1, 0]); // one argument, of type entry 0
    reply.extend_from_slice(extra_value);
    let running = cases
        .iter()
        .position(|case| *case == idl_hash("running"))
        .expect("running is a case");
    push_leb(&mut reply, running as u64);
    reply
}

fn running() -> Result<ChildStatus, DecodeError> {
    Ok(ChildStatus {
        status: StatusCode::Running,
        module_hash: None,
        funds: None,
    })
}

#[test]
fn crafted_reply_with_primitive_extra_field_decodes() {
    assert_eq!(
        decode_child_status(&crafted_reply(0, &[], NAT16, &[1, 2])),
        running()
    );
    assert_eq!(
        decode_child_status(&crafted_reply(0, &[], NAT16, &[1])),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn nesting_deeper_than_the_limit_is_rejected() {
    // Entry 2 = opt <entry 2>: a value of `opt opt opt ...` nested 100 deep.
    let mut entries = Vec::new();
    push_sleb(&mut entries, OPT);
    push_sleb(&mut entries, 2);
    let mut value = vec![1u8; 100];
    value.push(0);
    let deep = crafted_reply(1, &entries, 2, &value);
    assert_eq!(
        decode_child_status(&deep),
        Err(DecodeError::LimitExceeded("nesting depth limit"))
    );
    let shallow = crafted_reply(1, &entries, 2, &[1, 1, 1, 0]);
    assert_eq!(decode_child_status(&shallow), running());
}

#[test]
fn zero_size_values_that_double_per_level_exhaust_the_budget() {
    // Entries 2..42: each a record of two fields of the next entry; the last one is empty. The
    // value takes no bytes but would take 2^40 steps to walk.
    let mut entries = Vec::new();
    for index in 2..42 {
        push_sleb(&mut entries, RECORD);
        push_leb(&mut entries, 2);
        for field in 0..2 {
            push_leb(&mut entries, field);
            push_sleb(&mut entries, index + 1);
        }
    }
    push_sleb(&mut entries, RECORD);
    push_leb(&mut entries, 0);
    let reply = crafted_reply(41, &entries, 2, &[]);
    assert_eq!(
        decode_child_status(&reply),
        Err(DecodeError::LimitExceeded("value count limit"))
    );
}

#[test]
fn huge_vectors_of_zero_size_values_are_skipped_at_once() {
    let mut entries = Vec::new();
    push_sleb(&mut entries, VEC);
    push_sleb(&mut entries, NULL);
    let mut value = Vec::new();
    push_leb(&mut value, u64::MAX);
    assert_eq!(
        decode_child_status(&crafted_reply(1, &entries, 2, &value)),
        running()
    );
}

#[test]
fn lengths_beyond_the_reply_are_truncated_without_allocating() {
    for element in [NAT8, NAT16, TEXT] {
        let mut entries = Vec::new();
        push_sleb(&mut entries, VEC);
        push_sleb(&mut entries, element);
        let mut value = Vec::new();
        push_leb(&mut value, 1 << 40);
        let reply = crafted_reply(1, &entries, 2, &value);
        assert_eq!(
            decode_child_status(&reply),
            Err(DecodeError::Truncated),
            "element {element}"
        );
    }
}

#[test]
fn future_types_are_skipped_by_their_length() {
    // Candid spec "Deserialisation": opcodes below -24 carry a byte length in the table and a
    // byte length and reference count in the value.
    let mut entries = Vec::new();
    push_sleb(&mut entries, -25);
    entries.extend_from_slice(&[2, 0xaa, 0xbb]);
    assert_eq!(
        decode_child_status(&crafted_reply(1, &entries, 2, &[3, 0, 1, 2, 3])),
        running()
    );
}

#[test]
fn out_of_range_type_references_and_overflowing_numbers_are_malformed() {
    let dangling = crafted_reply(0, &[], 5, &[]);
    assert_eq!(
        decode_child_status(&dangling),
        Err(DecodeError::Malformed("type reference is out of range"))
    );
    let mut long_table_length = b"DIDL".to_vec();
    long_table_length.extend_from_slice(&[0xff; 10]);
    long_table_length.push(1);
    assert_eq!(
        decode_child_status(&long_table_length),
        Err(DecodeError::Malformed("LEB128 number exceeds 64 bits"))
    );
}

/// Strategies for every value kind a `canister_status` reply holds.
fn nat() -> impl Strategy<Value = Nat> {
    prop_oneof![
        (0u8..128).prop_map(Nat::from),
        any::<u64>().prop_map(Nat::from),
        any::<u128>().prop_map(Nat::from),
        (any::<u128>(), any::<u128>()).prop_map(|(a, b)| Nat::from(a) * Nat::from(b)),
    ]
}

fn principal() -> impl Strategy<Value = Principal> {
    vec(any::<u8>(), 0..=29).prop_map(|bytes| Principal::from_slice(&bytes))
}

fn other_fields() -> impl Strategy<Value = OtherFields> {
    (
        vec(nat(), 25),
        vec(principal(), 0..10),
        any::<u8>(),
        vec(principal(), 0..4),
        vec(("\\PC{0,12}", "\\PC{0,12}"), 0..4),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                nats,
                controllers,
                visibility,
                viewers,
                environment,
                version,
                ready_for_migration,
            )| {
                OtherFields {
                    nats,
                    controllers,
                    visibility,
                    viewers,
                    environment,
                    version,
                    ready_for_migration,
                }
            },
        )
}

fn status() -> impl Strategy<Value = (CanisterStatusType, StatusCode)> {
    prop::sample::select(ALL_STATUSES.to_vec())
}

proptest! {
    #[test]
    fn decodes_random_status_replies(
        (status, expected) in status(),
        module_hash in proptest::option::of(vec(any::<u8>(), 0..64)),
        other in other_fields(),
    ) {
        let result = status_result(status, module_hash.clone(), &other);
        let reply = encode(&result);
        let saturated = |nat: &Nat| u128::try_from(&nat.0).unwrap_or(u128::MAX);
        let funds = Some(StatusFunds {
            cycles: saturated(&result.cycles),
            idle_cycles_burned_per_day: saturated(&result.idle_cycles_burned_per_day),
            freezing_threshold: saturated(&result.settings.freezing_threshold),
        });
        prop_assert_eq!(
            decode_child_status(&reply),
            Ok(ChildStatus { status: expected, module_hash, funds })
        );
    }

    #[test]
    fn random_bytes_are_rejected_without_panicking(bytes in vec(any::<u8>(), 0..200)) {
        let candid_like = [b"DIDL".as_slice(), &bytes].concat();
        prop_assert!(decode_child_status(&candid_like).is_err());
        if !bytes.starts_with(b"DIDL") {
            prop_assert_eq!(decode_child_status(&bytes), Err(DecodeError::NotCandid));
        }
    }

    /// Whenever a corrupted reply still decodes, the `candid` crate reads the same two fields
    /// from it (or rejects it, being stricter about opaque references).
    #[test]
    fn corrupted_replies_agree_with_the_candid_crate(
        (status, _) in status(),
        other in other_fields(),
        corruptions in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut reply = encode(&status_result(status, Some(vec![5; 32]), &other));
        for (index, byte) in corruptions {
            let position = index.index(reply.len());
            reply[position] = byte;
        }
        if let Ok(decoded) = decode_child_status(&reply) {
            if let Ok(full) = candid::decode_one::<CanisterStatusResult>(&reply) {
                let status = ALL_STATUSES.iter().find(|(full_status, _)| *full_status == full.status);
                prop_assert_eq!(decoded.status, status.expect("a known status").1);
                prop_assert_eq!(decoded.module_hash, full.module_hash);
                if let Some(funds) = decoded.funds.filter(|funds| funds.cycles < u128::MAX) {
                    prop_assert_eq!(Nat::from(funds.cycles), full.cycles.clone());
                }
            }
        }
    }

    #[test]
    fn leb128_numbers_round_trip(unsigned in any::<u64>(), signed in any::<i64>()) {
        let mut bytes = Vec::new();
        push_leb(&mut bytes, unsigned);
        push_sleb(&mut bytes, signed);
        let mut reader = Reader { bytes: &bytes };
        prop_assert_eq!(reader.leb(), Ok(unsigned));
        prop_assert_eq!(reader.sleb(), Ok(signed));
        prop_assert!(reader.bytes.is_empty());
    }
}

// `take_canister_snapshot`'s reply: the real result type, a subtype of it, and malformed input.

fn snapshot_reply(id: &[u8]) -> Vec<u8> {
    encode(&ic_management_canister_types::Snapshot {
        id: id.to_vec(),
        taken_at_timestamp: 1_700_000_000_000_000_000,
        total_size: 4_096,
    })
}

#[test]
fn a_snapshot_reply_gives_its_id() {
    for id in [vec![], vec![7; 16], vec![0xff; 300]] {
        assert_eq!(decode_snapshot_id(&snapshot_reply(&id)), Ok(id));
    }
}

#[test]
fn a_snapshot_reply_with_reordered_and_unknown_fields_gives_its_id() {
    #[derive(CandidType)]
    struct Extended {
        zzz_future: Vec<Option<String>>,
        total_size: u64,
        id: serde_bytes::ByteBuf,
        nested: (Reserved, Int),
    }
    let reply = encode(&Extended {
        zzz_future: vec![Some("x".into()), None],
        total_size: 1,
        id: serde_bytes::ByteBuf::from(vec![1, 2, 3]),
        nested: (Reserved, Int::from(-5)),
    });
    assert_eq!(decode_snapshot_id(&reply), Ok(vec![1, 2, 3]));
}

#[test]
fn a_snapshot_reply_without_a_blob_id_is_refused() {
    #[derive(CandidType)]
    struct NoId {
        total_size: u64,
    }
    #[derive(CandidType)]
    struct TextId {
        id: String,
    }
    assert_eq!(
        decode_snapshot_id(&encode(&NoId { total_size: 1 })),
        Err(DecodeError::MissingSnapshotId)
    );
    assert!(matches!(
        decode_snapshot_id(&encode(&TextId { id: "a".into() })),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_snapshot_id(&encode(&7u8)),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn a_cut_or_extended_snapshot_reply_is_refused() {
    assert_cut_and_extended_refused(&snapshot_reply(&[9; 20]), decode_snapshot_id);
}

/// The empty reply the `candid` crate encodes is the canonical one; other encodings of `()`
/// (one `null` value, a type table entry nobody uses) are not, and the `candid` crate (the
/// fallback) still reads them as `()`.
#[test]
fn only_the_canonical_empty_reply_is_taken_at_a_glance() {
    let canonical = candid::encode_args(()).expect("encodes");
    assert!(is_canonical_empty(&canonical));
    let one_null = candid::encode_one(()).expect("encodes");
    let unused_type = b"DIDL\x01\x6d\x7b\x00".to_vec();
    for other in [one_null, unused_type] {
        assert!(!is_canonical_empty(&other));
        candid::decode_one::<()>(&other).expect("the fallback reads it");
    }
    assert!(!is_canonical_empty(b"DIDL\x00\x00\x00"));
    assert!(!is_canonical_empty(b""));
}

proptest! {
    #[test]
    fn random_bytes_are_no_snapshot_reply(bytes in vec(any::<u8>(), 0..200)) {
        let candid_like = [b"DIDL".as_slice(), &bytes].concat();
        // Whatever it reads is a blob of the input, never a panic.
        if let Ok(id) = decode_snapshot_id(&candid_like) {
            prop_assert!(id.len() <= bytes.len());
        }
    }
}
