//! The upgrade gates a rollout passes at planning, before any child is touched: each selected
//! child that the rollout would upgrade runs a release the deployer knows ([`UpgradeGate::
//! KnownModule`]) and, when that release has the rollout's name, a lower version
//! ([`UpgradeGate::HigherVersion`]: versions that do not compare fail it too). A release of
//! another name is another application: nothing to compare. A policy overrides a gate with a
//! reason, which the rollout keeps and voters read.
//!
//! The Candid service of the release against the children's (a subtype check) is not a gate
//! yet: see the note on issue 15.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use candid::Principal;

use crate::engine::{GateOverride, ModuleHash, UpgradeGate};
use crate::error::ErrorKind;

/// A release as the gates compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedVersion {
    pub name: String,
    pub version: String,
}

/// Checks the gates not overridden for the children the rollout would upgrade (those not on
/// `release` already). `known` names a module's release, looked up once per distinct module.
/// Refuses with the first gate that some child fails, counting the children that fail it.
pub fn check_gates(
    release: (&ModuleHash, &NamedVersion),
    children: impl IntoIterator<Item = (Principal, Option<ModuleHash>)>,
    known: impl Fn(&ModuleHash) -> Option<NamedVersion>,
    overrides: &[GateOverride],
) -> Result<(), ErrorKind> {
    let (release_hash, target) = release;
    let checked = |gate| !overrides.iter().any(|skip| skip.gate == gate);
    let mut looked_up: BTreeMap<ModuleHash, Option<NamedVersion>> = BTreeMap::new();
    // Per gate: how many children fail it, the first of them and what it runs.
    let mut failing: BTreeMap<UpgradeGate, (u64, Principal, Option<String>)> = BTreeMap::new();
    for (child, module) in children {
        if module.as_ref() == Some(release_hash) {
            continue;
        }
        let running = module.map(|module| {
            let named = looked_up
                .entry(module)
                .or_insert_with(|| known(&module))
                .clone();
            (module, named)
        });
        let (gate, shown) = match &running {
            None => (UpgradeGate::KnownModule, None),
            Some((module, None)) => (UpgradeGate::KnownModule, Some(format!("module {module}"))),
            // Another application's release: no version to compare with.
            Some((_, Some(named))) if named.name != target.name => continue,
            Some((_, Some(named))) => {
                if compare_versions(&target.version, &named.version) == Some(Ordering::Greater) {
                    continue;
                }
                let shown = Some(format!("{}@{}", named.name, named.version));
                (UpgradeGate::HigherVersion, shown)
            }
        };
        if checked(gate) {
            failing
                .entry(gate)
                .and_modify(|(count, _, _)| *count += 1)
                .or_insert((1, child, shown));
        }
    }
    match failing.into_iter().next() {
        None => Ok(()),
        Some((gate, (children, canister_id, running))) => Err(ErrorKind::UpgradeGateClosed {
            gate,
            children,
            canister_id,
            running,
        }),
    }
}

/// Orders two versions as semantic versions do (a leading `v` allowed, build metadata after
/// `+` ignored, a pre-release after `-` lower than its release); `None` when either is not
/// dot-separated numbers.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a_core, a_pre) = split_version(a)?;
    let (b_core, b_pre) = split_version(b)?;
    let width = a_core.len().max(b_core.len());
    let at = |core: &[u64], index: usize| core.get(index).copied().unwrap_or(0);
    let core = (0..width)
        .map(|index| at(&a_core, index).cmp(&at(&b_core, index)))
        .find(|ordering| ordering.is_ne())
        .unwrap_or(Ordering::Equal);
    Some(core.then_with(|| match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => compare_pre_releases(a, b),
    }))
}

fn split_version(version: &str) -> Option<(Vec<u64>, Option<&str>)> {
    let version = version.strip_prefix('v').unwrap_or(version);
    let version = version.split('+').next().unwrap_or_default();
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers = core
        .split('.')
        .map(|part| part.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some((numbers, pre))
}

/// Semantic versioning's precedence of pre-releases: identifier by identifier, numbers
/// numerically and below words, a shorter list lower when all else is equal.
fn compare_pre_releases(a: &str, b: &str) -> Ordering {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ordering = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ordering.is_ne() {
                    return ordering;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
