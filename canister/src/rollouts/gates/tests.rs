use std::cmp::Ordering;

use super::*;

const RELEASE: ModuleHash = ModuleHash([2; 32]);
const V1: ModuleHash = ModuleHash([1; 32]);
const V3: ModuleHash = ModuleHash([3; 32]);
const OTHER: ModuleHash = ModuleHash([4; 32]);
const UNKNOWN: ModuleHash = ModuleHash([9; 32]);

fn named(name: &str, version: &str) -> NamedVersion {
    NamedVersion {
        name: name.into(),
        version: version.into(),
    }
}

fn known(module: &ModuleHash) -> Option<NamedVersion> {
    match *module {
        RELEASE => Some(named("shard", "2.0.0")),
        V1 => Some(named("shard", "1.9.3")),
        V3 => Some(named("shard", "2.0.1")),
        OTHER => Some(named("ledger", "1.0.0")),
        _ => None,
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
    check_gates(
        (&RELEASE, &named("shard", "2.0.0")),
        children,
        known,
        overrides,
    )
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
        (&RELEASE, &named("shard", "2.0.0")),
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
    check_gates(
        (&RELEASE, &named("shard", "2.0.0")),
        children,
        counting,
        &[],
    )
    .unwrap();
    assert_eq!(lookups.get(), 1);
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
