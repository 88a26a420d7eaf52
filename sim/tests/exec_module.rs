//! Module validation at compile time.
//! Spec: IC interface specification, "Canister interface (System API)", "WebAssembly module
//! requirements" (imports only from `ic0` with the listed signatures, at most one memory,
//! `canister_`-prefixed exports, `icp:` custom sections) and "Overview of imports".

mod exec_support;
use exec_support::*;
use ic_sim::exec::{CompiledModule, SystemEntry};

fn refused(wat: &str) -> String {
    compile(wat).err().expect("the module is refused")
}

#[test]
fn module_requirements_import_outside_the_ic0_list_is_refused() {
    let error = refused(r#"(module (import "ic0" "msg_frobnicate" (func)))"#);
    assert!(error.contains("msg_frobnicate"), "{error}");
}

#[test]
fn module_requirements_import_from_another_module_is_refused() {
    let error = refused(r#"(module (import "env" "print" (func (param i32))))"#);
    assert!(error.contains("'print' from 'env'"), "{error}");
}

#[test]
fn module_requirements_import_with_wrong_signature_is_refused() {
    let error = refused(r#"(module (import "ic0" "msg_reply" (func (param i32))))"#);
    assert!(
        error.contains("msg_reply") && error.contains("signature"),
        "{error}"
    );
    // A 64-bit-memory signature is not accepted for a wasm32 module either.
    let error =
        refused(r#"(module (import "ic0" "msg_arg_data_copy" (func (param i64 i64 i64))))"#);
    assert!(error.contains("msg_arg_data_copy"), "{error}");
}

#[test]
fn overview_of_imports_every_listed_and_legacy_import_is_accepted() {
    let module = module(
        r#"(module
      (import "ic0" "msg_cycles_available" (func (result i64)))
      (import "ic0" "msg_cycles_refunded" (func (result i64)))
      (import "ic0" "msg_cycles_accept" (func (param i64) (result i64)))
      (import "ic0" "canister_cycle_balance" (func (result i64)))
      (import "ic0" "call_cycles_add" (func (param i64)))
      (import "ic0" "stable_size" (func (result i32)))
      (import "ic0" "stable_grow" (func (param i32) (result i32)))
      (import "ic0" "stable_write" (func (param i32 i32 i32)))
      (import "ic0" "stable_read" (func (param i32 i32 i32)))
      (import "ic0" "cost_call" (func (param i64 i64 i32)))
      (import "ic0" "cost_sign_with_ecdsa" (func (param i32 i32 i32 i32) (result i32)))
      (import "ic0" "env_var_value_copy" (func (param i32 i32 i32 i32 i32)))
      (import "ic0" "msg_caller_info_data_size" (func (result i32)))
      (import "ic0" "subnet_self_node_count" (func (result i32)))
    )"#,
    );
    assert!(!module.exports_entry(SystemEntry::Init));
}

#[test]
fn module_requirements_two_memories_are_refused() {
    let error = refused(r#"(module (memory 1) (memory 1))"#);
    assert!(error.contains("at most one"), "{error}");
}

#[test]
fn entry_points_unknown_canister_prefixed_export_is_refused() {
    let error = refused(r#"(module (func (export "canister_frobnicate")))"#);
    assert!(error.contains("canister_frobnicate"), "{error}");
    // `canister_query` needs exactly one space and a name.
    let error = refused(r#"(module (func (export "canister_queryfoo")))"#);
    assert!(error.contains("canister_queryfoo"), "{error}");
}

#[test]
fn entry_points_same_method_name_twice_is_refused() {
    let error = refused(
        r#"(module (func $f) (export "canister_update m" (func $f)) (export "canister_query m" (func $f)))"#,
    );
    assert!(error.contains("duplicate method 'm'"), "{error}");
}

#[test]
fn entry_points_must_have_type_unit_to_unit() {
    let error = refused(r#"(module (func (export "canister_update m") (param i32)))"#);
    assert!(error.contains("canister_update m"), "{error}");
}

#[test]
fn entry_points_are_reported() {
    let module = module(
        r#"(module (func $f)
        (export "canister_init" (func $f)) (export "canister_pre_upgrade" (func $f))
        (export "canister_global_timer" (func $f)) (export "canister_on_low_wasm_memory" (func $f))
        (export "canister_update u" (func $f)) (export "canister_query q" (func $f))
        (export "canister_composite_query c" (func $f)) (export "other" (func $f)))"#,
    );
    assert!(module.exports_entry(SystemEntry::Init));
    assert!(module.exports_entry(SystemEntry::PreUpgrade));
    assert!(module.exports_entry(SystemEntry::GlobalTimer));
    assert!(module.exports_entry(SystemEntry::OnLowWasmMemory));
    assert!(!module.exports_entry(SystemEntry::PostUpgrade));
    assert!(!module.exports_entry(SystemEntry::Heartbeat));
    assert!(module.has_update("u") && module.has_query("q") && module.has_composite_query("c"));
    assert!(!module.has_query("u") && !module.has_update("other"));
}

#[test]
fn custom_sections_icp_public_and_private_are_metadata() {
    let module = module(
        r#"(module (@custom "icp:public candid:service" "service : {}")
                   (@custom "icp:private secret" "s3")
                   (@custom "name-of-something-else" "ignored"))"#,
    );
    let metadata = module.metadata();
    assert_eq!(
        metadata.get("candid:service"),
        Some(&(true, b"service : {}".to_vec()))
    );
    assert_eq!(metadata.get("secret"), Some(&(false, b"s3".to_vec())));
    assert_eq!(metadata.len(), 2);
}

#[test]
fn custom_sections_icp_without_scope_or_declared_twice_are_refused() {
    let error = refused(r#"(module (@custom "icp:candid" "x"))"#);
    assert!(error.contains("icp:candid"), "{error}");
    let error = refused(r#"(module (@custom "icp:public a" "x") (@custom "icp:private a" "y"))"#);
    assert!(error.contains("'a'"), "{error}");
}

#[test]
fn module_requirements_bytes_that_are_neither_wasm_nor_gzip_are_refused() {
    let error = CompiledModule::compile(b"not a module")
        .err()
        .expect("refused");
    assert!(error.contains("neither"), "{error}");
    let error = CompiledModule::compile(&[0x1f, 0x8b, 0x08, 0, 0])
        .err()
        .expect("refused");
    assert!(error.contains("gzip"), "{error}");
}
