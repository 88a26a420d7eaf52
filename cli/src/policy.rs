//! Rollout policies as people write them: TOML with human units (`bake = "10m"`,
//! `concurrency = 50`, `waves = ["10%", 25]`), every key optional (left out: the deployer's
//! default), unknown keys and bad units refused with the line they are on.
//!
//! ```toml
//! canary = 1                  # children in the first wave
//! waves = ["25%", 100]        # then these waves; the rest form a last wave
//! concurrency = 50            # children in flight at once
//! max_stopped_per_subnet = 10 # children of one subnet stopped at once
//! bake = "10m"                # wait between waves: ms, s, m, h, d
//! on_failure = "rollback"     # or "leave-stopped"
//! snapshot = true             # snapshot each child before its install
//! keep_snapshots = 2          # the deployer's snapshots kept per child (older ones replaced or deleted)
//! failure_budget = "10%"      # failures a wave tolerates (or a count)
//! health_method = "health"    # a query each upgraded child must answer
//! [retry]
//! attempts = 3
//! base_backoff = "2s"
//! max_backoff = "1m"
//! [install]
//! arg = "4449444c0000"        # the upgrade argument, hex Candid (or arg_file = "arg.bin")
//! skip_pre_upgrade = false
//! wasm_memory_persistence = "keep"  # or "replace"
//! [skip_gates]                # upgrade gates not to check, each with the reason voters read
//! known_module = "the factory installed v1; this is its first rollout"
//! higher_version = "rolling back to 1.4 after the 1.5 incident"
//! candid_compatible = "no client calls the removed method (checked in the access logs)"
//! ```

use std::path::Path;

use deployer::{
    FailureBudget, GateOverride, InstallOptions, OnFailure, Policy, PolicyArg, RetryPolicy,
    UpgradeGate, Verification, WasmMemoryPersistence, WavePlan, WaveSize,
};
use serde::Deserialize;

use crate::fail::{Failure, Outcome};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    canary: Option<u32>,
    waves: Option<Vec<Size>>,
    concurrency: Option<u32>,
    max_stopped_per_subnet: Option<u32>,
    bake: Option<Duration>,
    on_failure: Option<OnFailureName>,
    snapshot: Option<bool>,
    keep_snapshots: Option<u8>,
    failure_budget: Option<Size>,
    health_method: Option<String>,
    retry: Option<RetryFile>,
    install: Option<InstallFile>,
    skip_gates: Option<SkipGatesFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipGatesFile {
    known_module: Option<String>,
    higher_version: Option<String>,
    candid_compatible: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    attempts: Option<u32>,
    base_backoff: Option<Duration>,
    max_backoff: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallFile {
    arg: Option<String>,
    arg_file: Option<String>,
    skip_pre_upgrade: Option<bool>,
    wasm_memory_persistence: Option<MemoryName>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OnFailureName {
    Rollback,
    LeaveStopped,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum MemoryName {
    Keep,
    Replace,
}

/// A count (`25`) or a percent (`"25%"`).
enum Size {
    Count(u32),
    Percent(u8),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Count(count) => Ok(Size::Count(count)),
            Raw::Text(text) => text
                .strip_suffix('%')
                .and_then(|percent| percent.trim().parse::<u8>().ok())
                .filter(|percent| *percent <= 100)
                .map(Size::Percent)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{text}`: expected a count (25) or a percent (\"25%\")"
                    ))
                }),
        }
    }
}

/// A duration in nanoseconds, written `"10m"`, `"90s"`, `"1h30m"`, `"250ms"`, `"2d"`.
struct Duration(u64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(Duration)
            .map_err(serde::de::Error::custom)
    }
}

pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{text}`: expected a duration with units ms, s, m, h or d, such as \"10m\" or \"1h30m\""
        )
    };
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(nanos_per)
            .and_then(|nanos| total.checked_add(nanos))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// The policy file at `path` as the deployer's `PolicyArg`, checked against the deployer's own
/// bounds (`PolicyArg::into_policy`) before anything is sent.
pub fn load(path: &Path) -> Outcome<PolicyArg> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::input(format!("{}: {error}", path.display())))?;
    let file: PolicyFile = toml::from_str(&text)
        .map_err(|error| Failure::input(format!("{}: {error}", path.display())))?;
    let arg = to_arg(file, path)?;
    let policy = arg
        .clone()
        .into_policy()
        .map_err(|reason| Failure::input(format!("{}: {reason}", path.display())))?;
    // The engine's own checks of a policy: what the deployer would refuse at start_rollout is
    // refused here, before anything is sent.
    policy
        .validate()
        .map_err(|error| Failure::input(format!("{}: {error}", path.display())))?;
    Ok(arg)
}

fn to_arg(file: PolicyFile, path: &Path) -> Outcome<PolicyArg> {
    let defaults = Policy::default();
    let waves = match (file.canary, file.waves) {
        (None, None) => None,
        (canary, then) => Some(WavePlan {
            canary: canary.unwrap_or(defaults.waves.canary),
            then: match then {
                Some(then) => then
                    .into_iter()
                    .map(|size| match size {
                        Size::Count(count) => WaveSize::Count(count),
                        Size::Percent(percent) => WaveSize::Percent(percent),
                    })
                    .collect(),
                None => defaults.waves.then.clone(),
            },
        }),
    };
    let retry = file.retry.map(|retry| RetryPolicy {
        max_attempts: retry.attempts.unwrap_or(defaults.retry.max_attempts),
        base_backoff_nanos: retry
            .base_backoff
            .map_or(defaults.retry.base_backoff_nanos, |d| d.0),
        max_backoff_nanos: retry
            .max_backoff
            .map_or(defaults.retry.max_backoff_nanos, |d| d.0),
    });
    let install = match file.install {
        None => None,
        Some(install) => {
            let arg = match (install.arg, install.arg_file) {
                (Some(_), Some(_)) => {
                    return Err(Failure::input(format!(
                        "{}: [install] takes arg or arg_file, not both",
                        path.display()
                    )))
                }
                (Some(hex_arg), None) => hex::decode(hex_arg.trim()).map_err(|error| {
                    Failure::input(format!(
                        "{}: [install] arg: not hex ({error})",
                        path.display()
                    ))
                })?,
                (None, Some(file)) => {
                    let file = path.parent().unwrap_or(Path::new(".")).join(file);
                    std::fs::read(&file)
                        .map_err(|error| Failure::input(format!("{}: {error}", file.display())))?
                }
                (None, None) => candid::encode_args(()).expect("no arguments encode"),
            };
            Some(InstallOptions {
                arg,
                skip_pre_upgrade: install.skip_pre_upgrade.unwrap_or(false),
                wasm_memory_persistence: install.wasm_memory_persistence.map(|m| match m {
                    MemoryName::Keep => WasmMemoryPersistence::Keep,
                    MemoryName::Replace => WasmMemoryPersistence::Replace,
                }),
            })
        }
    };
    Ok(PolicyArg {
        waves,
        max_concurrency: file.concurrency,
        max_stopped_per_subnet: file.max_stopped_per_subnet,
        bake_nanos: file.bake.map(|d| d.0),
        snapshot_before_install: file.snapshot,
        keep_snapshots: file.keep_snapshots,
        install,
        verification: file.health_method.map(|method| Verification {
            health_method: Some(method),
        }),
        retry,
        on_failure: file.on_failure.map(|name| match name {
            OnFailureName::Rollback => OnFailure::RollBack,
            OnFailureName::LeaveStopped => OnFailure::LeaveStopped,
        }),
        failure_budget: file.failure_budget.map(|size| match size {
            Size::Count(count) => FailureBudget::Count(count),
            Size::Percent(percent) => FailureBudget::Percent(percent),
        }),
        gate_overrides: file.skip_gates.map(|skip| {
            [
                (UpgradeGate::KnownModule, skip.known_module),
                (UpgradeGate::HigherVersion, skip.higher_version),
                (UpgradeGate::CandidCompatible, skip.candid_compatible),
            ]
            .into_iter()
            .filter_map(|(gate, reason)| {
                Some(GateOverride {
                    gate,
                    reason: reason?,
                })
            })
            .collect()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_human_units_and_refuse_others() {
        assert_eq!(parse_duration("10m"), Ok(600_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        for bad in ["10", "10x", "m", "", "1.5h", "10 minutes"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_policy_file_becomes_the_deployers_policy_arg() {
        let file: PolicyFile = toml::from_str(
            "canary = 2\nwaves = [\"25%\", 10]\nconcurrency = 50\nbake = \"10m\"\non_failure = \"rollback\"\nfailure_budget = \"10%\"\nkeep_snapshots = 2\n",
        )
        .unwrap();
        let arg = to_arg(file, Path::new("p.toml")).unwrap();
        assert_eq!(arg.max_concurrency, Some(50));
        assert_eq!(arg.bake_nanos, Some(600_000_000_000));
        assert_eq!(
            arg.waves,
            Some(WavePlan {
                canary: 2,
                then: vec![WaveSize::Percent(25), WaveSize::Count(10)]
            })
        );
        assert_eq!(arg.on_failure, Some(OnFailure::RollBack));
        assert_eq!(arg.keep_snapshots, Some(2));
        assert_eq!(arg.gate_overrides, None, "every gate is checked");
        assert!(toml::from_str::<PolicyFile>("bakee = \"10m\"").is_err());
    }

    #[test]
    fn skipped_gates_carry_their_reasons() {
        let file: PolicyFile = toml::from_str(
            "[skip_gates]\nknown_module = \"installed by the factory\"\n\
             candid_compatible = \"no client calls `put`\"\n",
        )
        .unwrap();
        let arg = to_arg(file, Path::new("p.toml")).unwrap();
        assert_eq!(
            arg.gate_overrides,
            Some(vec![
                GateOverride {
                    gate: UpgradeGate::KnownModule,
                    reason: "installed by the factory".into(),
                },
                GateOverride {
                    gate: UpgradeGate::CandidCompatible,
                    reason: "no client calls `put`".into(),
                }
            ])
        );
        assert!(toml::from_str::<PolicyFile>("[skip_gates]\nknown = \"x\"\n").is_err());
    }
}
