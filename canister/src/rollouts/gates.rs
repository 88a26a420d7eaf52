//! The upgrade gates a rollout passes at planning, before any child is touched: each selected
//! child that the rollout would upgrade runs a release the deployer knows ([`UpgradeGate::
//! KnownModule`]); when that release has the rollout's name, a lower version
//! ([`UpgradeGate::HigherVersion`]: versions that do not compare fail it too; a release of
//! another name is another application, with no version to compare); and when it carries a
//! Candid service, the rollout's release carries one its clients can still call
//! ([`UpgradeGate::CandidCompatible`], whatever the names: a child's callers see its interface,
//! not its name). A policy overrides a gate with a reason, which the rollout keeps and voters
//! read.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use candid::Principal;

use crate::candid_compat::check_service_compatible;
use crate::engine::{GateOverride, ModuleHash, UpgradeGate};
use crate::error::ErrorKind;

/// A release as the gates compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownRelease {
    pub name: String,
    pub version: String,
    /// The module's `candid:service` metadata, if it carries one.
    pub candid_service: Option<String>,
}

/// What the gates found about one running module, worked out once per distinct module.
struct RunningModule {
    /// `name@version`, or the module's hash when it is no release.
    shown: String,
    /// The gates it fails, with why when the gate's name does not say it all.
    fails: Vec<(UpgradeGate, Option<String>)>,
}

/// Checks the gates not overridden for the children the rollout would upgrade (those not on
/// `release` already), a group of children at a time (a selection of 100,000 is read over
/// several messages). `known` names a module's release; it is looked up, and the Candid
/// services compared, once per distinct module. [`GateCheck::verdict`] refuses with the first
/// gate that some child fails, counting the children that fail it.
pub struct GateCheck {
    release: ModuleHash,
    target: KnownRelease,
    overrides: Vec<GateOverride>,
    looked_up: BTreeMap<ModuleHash, RunningModule>,
    /// Per gate: how many children fail it, the first of them, what it runs and why.
    failing: BTreeMap<UpgradeGate, (u64, Principal, Option<String>, Option<String>)>,
}

impl GateCheck {
    pub fn new(release: &ModuleHash, target: KnownRelease, overrides: &[GateOverride]) -> Self {
        Self {
            release: *release,
            target,
            overrides: overrides.to_vec(),
            looked_up: BTreeMap::new(),
            failing: BTreeMap::new(),
        }
    }

    /// Checks the next children, in selection order.
    pub fn add(
        &mut self,
        children: impl IntoIterator<Item = (Principal, Option<ModuleHash>)>,
        known: impl Fn(&ModuleHash) -> Option<KnownRelease>,
    ) {
        let overrides = &self.overrides;
        let checked = |gate| !overrides.iter().any(|skip| skip.gate == gate);
        let failing = &mut self.failing;
        let mut fail = |gate, child, shown: Option<String>, detail: Option<String>| {
            failing
                .entry(gate)
                .and_modify(|(count, ..)| *count += 1)
                .or_insert((1, child, shown, detail));
        };
        for (child, module) in children {
            if module.as_ref() == Some(&self.release) {
                continue;
            }
            let Some(module) = module else {
                if checked(UpgradeGate::KnownModule) {
                    fail(UpgradeGate::KnownModule, child, None, None);
                }
                continue;
            };
            let target = &self.target;
            let running = self
                .looked_up
                .entry(module)
                .or_insert_with(|| gates_of_module(&module, known(&module), target, &checked));
            for (gate, detail) in &running.fails {
                fail(*gate, child, Some(running.shown.clone()), detail.clone());
            }
        }
    }

    /// Refuses with the first gate that some child checked fails.
    pub fn verdict(self) -> Result<(), ErrorKind> {
        match self.failing.into_iter().next() {
            None => Ok(()),
            Some((gate, (children, canister_id, running, detail))) => {
                Err(ErrorKind::UpgradeGateClosed {
                    gate,
                    children,
                    canister_id,
                    running,
                    detail: detail.map(String::into_boxed_str),
                })
            }
        }
    }
}

/// The checked gates a child running `module` (the release `running`, if known) fails.
fn gates_of_module(
    module: &ModuleHash,
    running: Option<KnownRelease>,
    target: &KnownRelease,
    checked: &impl Fn(UpgradeGate) -> bool,
) -> RunningModule {
    let Some(running) = running else {
        let fails = checked(UpgradeGate::KnownModule)
            .then_some((UpgradeGate::KnownModule, None))
            .into_iter()
            .collect();
        return RunningModule {
            shown: format!("module {module}"),
            fails,
        };
    };
    let mut fails = Vec::new();
    if checked(UpgradeGate::HigherVersion)
        && running.name == target.name
        && compare_versions(&target.version, &running.version) != Some(Ordering::Greater)
    {
        fails.push((UpgradeGate::HigherVersion, None));
    }
    if checked(UpgradeGate::CandidCompatible) {
        let compatible = match (&target.candid_service, &running.candid_service) {
            // Nothing to keep compatible with.
            (_, None) => Ok(()),
            (None, Some(_)) => Err(
                "the release carries no candid:service metadata to compare with the children's"
                    .to_string(),
            ),
            (Some(new), Some(old)) => check_service_compatible(new, old),
        };
        if let Err(why) = compatible {
            fails.push((UpgradeGate::CandidCompatible, Some(why)));
        }
    }
    RunningModule {
        shown: format!("{}@{}", running.name, running.version),
        fails,
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
