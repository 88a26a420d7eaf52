use std::cmp::Ordering;

use super::*;

const RELEASE: ModuleHash = ModuleHash([2; 32]);
const V1: ModuleHash = ModuleHash([1; 32]);
const V3: ModuleHash = ModuleHash([3; 32]);
const OTHER: ModuleHash = ModuleHash([4; 32]);
const UNKNOWN: ModuleHash = ModuleHash([9; 32]);
/// A shard release whose service dropped `put`.
const NARROW: ModuleHash = ModuleHash([5; 32]);
/// A release of another name that serves a different interface.
const LEDGER_SERVICE: ModuleHash = ModuleHash([6; 32]);
/// A shard release without Candid metadata.
const BARE: ModuleHash = ModuleHash([7; 32]);

const SHARD_SERVICE: &str = "service : { get : (nat64) -> (opt text) query; put : (text) -> () }";
const SHARD_SERVICE_V2: &str =
    "service : { get : (nat64) -> (opt text) query; put : (text) -> (); count : () -> (nat64) }";

fn named(name: &str, version: &str) -> KnownRelease {
    KnownRelease {
        name: name.into(),
        version: version.into(),
        candid_service: Some(SHARD_SERVICE.into()),
    }
}

fn known(module: &ModuleHash) -> Option<KnownRelease> {
    let with_service = |name, version, service: Option<&str>| {
        Some(KnownRelease {
            candid_service: service.map(str::to_string),
            ..named(name, version)
        })
    };
    match *module {
        RELEASE => Some(target()),
        V1 => Some(named("shard", "1.9.3")),
        V3 => Some(named("shard", "2.0.1")),
        OTHER => with_service("ledger", "1.0.0", None),
        NARROW => with_service(
            "shard",
            "1.5.0",
            Some("service : { get : (nat64) -> (opt text) query }"),
        ),
        LEDGER_SERVICE => with_service(
            "ledger",
            "1.0.0",
            Some("service : { transfer : (nat) -> (nat) }"),
        ),
        BARE => with_service("shard", "1.0.0", None),
        _ => None,
    }
}

/// The release rolled out: shard 2.0.0, which adds `count` to the shard service.
fn target() -> KnownRelease {
    KnownRelease {
        candid_service: Some(SHARD_SERVICE_V2.into()),
        ..named("shard", "2.0.0")
    }
}

fn child(n: u8) -> Principal {
    Principal::from_slice(&[n, 1])
}

fn check(modules: &[Option<ModuleHash>], overrides: &[GateOverride]) -> Result<(), ErrorKind> {
    let children = modules
        .iter()
        .enumerate()
        .map(|(n, module)| (child(n as u8), *module));
    check_gates((&RELEASE, &target()), children, known, overrides)
}

fn skip(gate: UpgradeGate) -> GateOverride {
    GateOverride {
        gate,
        reason: "migrating the ledger shards".into(),
    }
}

#[test]
fn children_on_a_lower_version_of_the_release_or_on_it_already_pass() {
    assert_eq!(check(&[Some(V1), Some(RELEASE), Some(V1)], &[]), Ok(()));
}

#[test]
fn a_child_on_an_unknown_module_or_none_closes_the_known_module_gate() {
    assert_eq!(
        check(&[Some(V1), Some(UNKNOWN), None], &[]),
        Err(ErrorKind::UpgradeGateClosed {
            gate: UpgradeGate::KnownModule,
            children: 2,
            canister_id: child(1),
            running: Some(format!("module {UNKNOWN}")),
            detail: None,
        })
    );
    assert_eq!(
        check(&[Some(UNKNOWN), None], &[skip(UpgradeGate::KnownModule)]),
        Ok(())
    );
}

#[test]
fn a_downgrade_closes_the_version_gate_and_another_application_passes_it() {
    assert_eq!(
        check(&[Some(V1), Some(V3), Some(OTHER), Some(V3)], &[]),
        Err(ErrorKind::UpgradeGateClosed {
            gate: UpgradeGate::HigherVersion,
            children: 2,
            canister_id: child(1),
            running: Some("shard@2.0.1".into()),
            detail: None,
        })
    );
    assert_eq!(
        check(&[Some(V3)], &[skip(UpgradeGate::HigherVersion)]),
        Ok(())
    );
}

#[test]
fn versions_that_do_not_compare_close_the_version_gate() {
    let not_semver = |_: &ModuleHash| Some(named("shard", "nightly"));
    let refused = check_gates(
        (&RELEASE, &target()),
        [(child(0), Some(V1))],
        not_semver,
        &[],
    );
    assert!(matches!(
        refused,
        Err(ErrorKind::UpgradeGateClosed {
            gate: UpgradeGate::HigherVersion,
            ..
        })
    ));
}

#[test]
fn the_first_gate_closed_is_reported_and_an_override_opens_only_its_own() {
    let modules = [Some(V3), Some(UNKNOWN)];
    let closed = |result: Result<(), ErrorKind>| match result {
        Err(ErrorKind::UpgradeGateClosed { gate, .. }) => Some(gate),
        _ => None,
    };
    assert_eq!(closed(check(&modules, &[])), Some(UpgradeGate::KnownModule));
    assert_eq!(
        closed(check(&modules, &[skip(UpgradeGate::KnownModule)])),
        Some(UpgradeGate::HigherVersion)
    );
    assert_eq!(
        closed(check(&modules, &[skip(UpgradeGate::HigherVersion)])),
        Some(UpgradeGate::KnownModule)
    );
}

#[test]
fn each_distinct_module_is_looked_up_once() {
    let lookups = std::cell::Cell::new(0);
    let counting = |module: &ModuleHash| {
        lookups.set(lookups.get() + 1);
        known(module)
    };
    let children = (0..50).map(|n| (child(n), Some(V1)));
    check_gates((&RELEASE, &target()), children, counting, &[]).unwrap();
    assert_eq!(lookups.get(), 1);
}

#[test]
fn a_service_clients_could_not_call_closes_the_candid_gate_whatever_the_name() {
    // NARROW lacks `count`, which the release adds: fine. The release keeps `put`, which
    // NARROW's clients never call: fine too. The ledger's `transfer` is gone: closed.
    assert_eq!(check(&[Some(NARROW), Some(OTHER), Some(BARE)], &[]), Ok(()));
    let refused = check(&[Some(V1), Some(LEDGER_SERVICE), Some(LEDGER_SERVICE)], &[]);
    let Err(ErrorKind::UpgradeGateClosed {
        gate: UpgradeGate::CandidCompatible,
        children: 2,
        canister_id,
        running: Some(running),
        detail: Some(detail),
    }) = refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!((canister_id, running.as_str()), (child(1), "ledger@1.0.0"));
    assert!(detail.contains("transfer"), "{detail}");
    assert_eq!(
        check(
            &[Some(LEDGER_SERVICE)],
            &[skip(UpgradeGate::CandidCompatible)]
        ),
        Ok(())
    );
}

#[test]
fn a_release_without_a_service_cannot_show_it_keeps_the_childrens() {
    let bare = KnownRelease {
        candid_service: None,
        ..target()
    };
    let refused = check_gates((&RELEASE, &bare), [(child(0), Some(V1))], known, &[]);
    assert!(matches!(
        refused,
        Err(ErrorKind::UpgradeGateClosed {
            gate: UpgradeGate::CandidCompatible,
            detail: Some(detail),
            ..
        }) if detail.contains("no candid:service")
    ));
    // Children whose release has no service either: nothing to keep.
    assert_eq!(
        check_gates((&RELEASE, &bare), [(child(0), Some(BARE))], known, &[]),
        Ok(())
    );
}

#[test]
fn a_child_failing_two_gates_counts_for_each() {
    // shard 2.0.1, whose `put` replies a number that the release's does not: a downgrade and
    // an incompatible service.
    let newer_and_narrow = |module: &ModuleHash| {
        Some(KnownRelease {
            candid_service: Some(
                "service : { get : (nat64) -> (opt text) query; put : (text) -> (nat) }".into(),
            ),
            ..named("shard", "2.0.1")
        })
        .filter(|_| *module == V3)
    };
    let refuses = |overrides: &[GateOverride]| match check_gates(
        (&RELEASE, &target()),
        [(child(0), Some(V3))],
        newer_and_narrow,
        overrides,
    ) {
        Err(ErrorKind::UpgradeGateClosed { gate, .. }) => Some(gate),
        _ => None,
    };
    assert_eq!(refuses(&[]), Some(UpgradeGate::HigherVersion));
    assert_eq!(
        refuses(&[skip(UpgradeGate::HigherVersion)]),
        Some(UpgradeGate::CandidCompatible)
    );
    assert_eq!(
        refuses(&[
            skip(UpgradeGate::HigherVersion),
            skip(UpgradeGate::CandidCompatible)
        ]),
        None
    );
}

#[test]
fn versions_are_ordered_as_semantic_versions() {
    use Ordering::*;
    for (a, b, expected) in [
        ("2.0.0", "1.9.3", Some(Greater)),
        ("1.10", "1.9", Some(Greater)),
        ("v1.2", "1.2.0", Some(Equal)),
        ("1.2.0+build.7", "1.2.0", Some(Equal)),
        ("1.2.0", "1.2.0-rc.1", Some(Greater)),
        ("1.2.0-rc.2", "1.2.0-rc.10", Some(Less)),
        ("1.2.0-alpha", "1.2.0-alpha.1", Some(Less)),
        ("1.2.0-1", "1.2.0-alpha", Some(Less)),
        ("bad", "1.0", None),
        ("1.x", "1.0", None),
    ] {
        assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
    }
}

/// The gates checked for all the children at once.
fn check_gates(
    release: (&ModuleHash, &KnownRelease),
    children: impl IntoIterator<Item = (Principal, Option<ModuleHash>)>,
    known: impl Fn(&ModuleHash) -> Option<KnownRelease>,
    overrides: &[GateOverride],
) -> Result<(), ErrorKind> {
    let mut check = GateCheck::new(release.0, release.1.clone(), overrides);
    check.add(children, known);
    check.verdict()
}
