//! Checks that `candid/deployer.did` is the interface the Rust code actually implements.
//!
//! What this proves: the service generated from the `#[init]`/`#[update]`/`#[query]` signatures
//! (`__export_service`) is structurally equal to the file, init argument included: same methods,
//! same modes, same field and case names, same types. It ignores comments, whitespace, the order
//! of definitions and the names of types. What it does not prove: that the interface is backward
//! compatible with a released one; that needs `service_compatible` against the released file.

use std::path::PathBuf;

use candid::types::internal::TypeContainer;
use candid::types::subtype::equal;
use candid::CandidType;
use candid_parser::utils::{service_equal, CandidSource};

use crate::access::Method;
use crate::state::{InitArg, UpgradeArg};

fn did_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../candid/deployer.did")
}

#[test]
fn rust_service_equals_did_file() {
    let generated = super::__export_service();
    let did_path = did_path();
    if let Err(error) = service_equal(
        CandidSource::Text(&generated),
        CandidSource::File(&did_path),
    ) {
        panic!(
            "{} disagrees with the Rust interface: {error:?}\n\nRust interface:\n{generated}",
            did_path.display()
        );
    }
}

/// The service type has no slot for the upgrade argument (ic-cdk exports only `#[init]`'s), so
/// the named type in the file is checked on its own.
#[test]
fn upgrade_arg_equals_did_type() {
    assert_rust_type_equals_did_type::<UpgradeArg>("UpgradeArg");
}

/// Installing with no argument at all (empty bytes, which ic-cdk reads as `DIDL\0\0`) is refused
/// by Candid: `InitArg` is a record, and only `opt`, `null` and `reserved` values may be missing.
/// Installers must pass `(record {})` at least; this pins that contract.
#[test]
fn install_argument_is_required() {
    assert!(candid::decode_args::<(InitArg,)>(b"DIDL\0\0").is_err());
    let (arg,) =
        candid::decode_args::<(InitArg,)>(&candid::encode_one(InitArg::default()).unwrap())
            .expect("record {} decodes");
    assert_eq!(arg.admins, None);
}

/// The upgrade argument is optional, so upgrading with no argument keeps working.
#[test]
fn upgrade_argument_may_be_omitted() {
    let (arg,) = candid::decode_args::<(Option<UpgradeArg>,)>(b"DIDL\0\0").expect("decodes");
    assert_eq!(arg, None);
}

/// `access::Method` is the table `canister_inspect_message` and the role checks read; a method
/// missing from it would be refused as unknown at the ingress filter.
#[test]
fn the_access_table_lists_exactly_the_did_methods() {
    let (env, service) = CandidSource::File(&did_path())
        .load()
        .expect("the did file parses");
    let service = service.expect("the did file has a service");
    let mut did_methods: Vec<String> = env
        .as_service(&service)
        .expect("a service type")
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    did_methods.sort();
    let mut table: Vec<String> = Method::ALL
        .iter()
        .map(|method| method.name().to_string())
        .collect();
    table.sort();
    assert_eq!(table, did_methods);
}

/// `Method::is_query` decides which methods refuse paid replicated execution; it must say
/// "query" exactly where the file does.
#[test]
fn the_access_table_marks_exactly_the_did_queries() {
    let (env, service) = CandidSource::File(&did_path())
        .load()
        .expect("the did file parses");
    let service = service.expect("the did file has a service");
    for (name, function) in env.as_service(&service).expect("a service type") {
        let method = Method::from_name(name).expect("a did method is in the table");
        let did_query = env.as_func(function).expect("a function").is_query();
        assert_eq!(method.is_query(), did_query, "{name}");
    }
}

fn assert_rust_type_equals_did_type<T: CandidType>(name: &str) {
    let (mut env, _) = CandidSource::File(&did_path())
        .load()
        .expect("the did file parses");
    let did_type = env.find_type(name).expect("the type is defined").clone();
    let mut rust_types = TypeContainer::new();
    let rust_type = rust_types.add::<T>();
    let rust_type = env.merge_type(rust_types.env, rust_type);
    equal(&mut Default::default(), &env, &did_type, &rust_type)
        .unwrap_or_else(|error| panic!("type {name} in the did file differs from Rust: {error:?}"));
}

/// `dfx deploy` in the project deploys the deployer alone (the test fixtures have their own
/// `fixtures/dfx.json`), with an init argument of the `.did`'s init type, so it needs no
/// terminal to ask for one.
#[test]
fn dfx_json_deploys_the_deployer_alone_with_a_typed_init_argument() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("dfx.json")).expect("dfx.json");
    let config: serde_json::Value = serde_json::from_str(&text).expect("dfx.json is JSON");
    let canisters = config["canisters"].as_object().expect("a canisters map");
    assert_eq!(canisters.keys().collect::<Vec<_>>(), vec!["deployer"]);
    let init_arg = canisters["deployer"]["init_arg"]
        .as_str()
        .expect("an init_arg");
    let args = candid_parser::parse_idl_args(init_arg).expect("init_arg is Candid");
    let bytes = args.to_bytes().expect("init_arg encodes");
    let (arg,) = candid::decode_args::<(InitArg,)>(&bytes).expect("init_arg is an InitArg");
    assert_eq!(arg, InitArg::default());
}
