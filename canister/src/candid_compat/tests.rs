use super::*;

const OLD: &str = r#"
type Item = record { id : nat64; name : text };
service : (opt text) -> {
  get : (nat64) -> (opt Item) query;
  put : (Item) -> ();
  count : () -> (nat64) query;
}"#;

#[test]
fn a_service_that_only_adds_is_compatible() {
    // A new method, a new optional argument, a new reply field: old clients still work.
    let new = r#"
type Item = record { id : nat64; name : text; tags : vec text };
service : (opt text) -> {
  get : (nat64, opt bool) -> (opt Item) query;
  put : (record { id : nat64; name : text; note : opt text }) -> ();
  count : () -> (nat64) query;
  remove : (nat64) -> ();
}"#;
    assert_eq!(check_service_compatible(new, OLD), Ok(()));
    assert_eq!(check_service_compatible(OLD, OLD), Ok(()));
}

#[test]
fn a_removed_method_and_a_changed_reply_are_both_named() {
    let new = r#"
type Item = record { id : nat64; name : text };
service : (opt text) -> {
  get : (nat64) -> (opt Item) query;
  put : (Item) -> ();
  count : () -> (text) query;
}"#;
    let without_put = r#"service : { get : (nat64) -> (opt record { id : nat64; name : text }) query; count : () -> (nat64) query }"#;
    let without_put_and_changed = r#"service : (opt text) -> { get : (nat64) -> (opt record { id : nat64; name : text }) query; count : () -> (text) query }"#;
    let changed = check_service_compatible(new, OLD).unwrap_err();
    assert!(changed.contains("count"), "{changed}");
    // Every incompatibility, each with where it is: what a voter reads.
    assert_eq!(
        check_service_compatible(without_put_and_changed, OLD),
        Err(
            "method \"count\" > return type: text is not a subtype of nat64; method \"put\" is \
             expected by the old interface but missing in the new one"
                .to_string()
        )
    );
    let removed = check_service_compatible(without_put, OLD).unwrap_err();
    assert!(removed.contains("put"), "{removed}");
    // The reverse direction is the other question: the old service lacks nothing the smaller
    // one offers.
    assert_eq!(check_service_compatible(OLD, without_put), Ok(()));
}

#[test]
fn a_new_required_argument_is_incompatible() {
    let new = r#"
type Item = record { id : nat64; name : text };
service : (opt text) -> {
  get : (nat64) -> (opt Item) query;
  put : (Item, nat) -> ();
  count : () -> (nat64) query;
}"#;
    let report = check_service_compatible(new, OLD).unwrap_err();
    assert!(report.contains("put"), "{report}");
}

#[test]
fn the_special_opt_rule_counts_as_incompatible() {
    // Old clients would read `get`'s reply as null: decodable, but not what they expect.
    let new = r#"
service : (opt text) -> {
  get : (nat64) -> (opt record { id : text }) query;
  put : (record { id : nat64; name : text }) -> ();
  count : () -> (nat64) query;
}"#;
    let report = check_service_compatible(new, OLD).unwrap_err();
    assert!(report.contains("get") || report.contains("opt"), "{report}");
}

#[test]
fn metadata_that_does_not_parse_is_named_and_reports_stay_bounded() {
    let broken = check_service_compatible("service : { get : (", OLD).unwrap_err();
    assert!(
        broken.starts_with("the release's candid:service metadata does not parse"),
        "{broken}"
    );
    let broken = check_service_compatible(OLD, "type T = nat;").unwrap_err();
    assert_eq!(
        broken,
        "the running release's candid:service metadata has no main service"
    );

    // A hundred removed methods: the report names the first ones and stops at its bound.
    let methods: String = (0..100)
        .map(|index| format!("method_with_a_long_name_{index} : () -> ();\n"))
        .collect();
    let old = format!("service : {{ {methods} }}");
    let report = check_service_compatible("service : {}", &old).unwrap_err();
    assert!(report.len() <= MAX_REPORT_BYTES, "{}", report.len());
    assert!(report.ends_with("..."), "{report}");
    assert!(report.contains("method_with_a_long_name_"), "{report}");
}
