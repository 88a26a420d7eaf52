//! The committed report and its comparison with a fresh measurement.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Allowed drift of a figure, either way, before the report counts as stale or regressed.
pub const TOLERANCE_PERCENT: u64 = 2;

/// Scenario name -> figure name -> value. Ordered maps keep the JSON byte-stable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub scenarios: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Report {
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("serialize report");
        text.push('\n');
        text
    }

    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Worse than committed by more than the tolerance.
    Regressed,
    /// The report no longer describes what is measured (better beyond tolerance, or scenarios or
    /// figures added or removed).
    Stale,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub verdict: Verdict,
}

fn beyond_tolerance(committed: u64, measured: u64) -> bool {
    let diff = committed.abs_diff(measured) as u128;
    diff * 100 > committed as u128 * TOLERANCE_PERCENT as u128
}

pub fn compare(committed: &Report, measured: &Report) -> Vec<Problem> {
    let mut problems = Vec::new();
    let stale = |what: String| Problem {
        what,
        verdict: Verdict::Stale,
    };
    for name in committed.scenarios.keys() {
        if !measured.scenarios.contains_key(name) {
            problems.push(stale(format!(
                "scenario `{name}` is in the report but no longer measured"
            )));
        }
    }
    for (name, figures) in &measured.scenarios {
        let Some(old) = committed.scenarios.get(name) else {
            problems.push(stale(format!(
                "scenario `{name}` is measured but not in the report"
            )));
            continue;
        };
        for key in old.keys().filter(|k| !figures.contains_key(*k)) {
            problems.push(stale(format!(
                "`{name}.{key}` is in the report but no longer measured"
            )));
        }
        for (key, &value) in figures {
            let Some(&before) = old.get(key) else {
                problems.push(stale(format!(
                    "`{name}.{key}` is measured but not in the report"
                )));
                continue;
            };
            if !beyond_tolerance(before, value) {
                continue;
            }
            let what = format!("`{name}.{key}` was {before}, now {value}");
            let verdict = if value > before {
                Verdict::Regressed
            } else {
                Verdict::Stale
            };
            problems.push(Problem { what, verdict });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(entries: &[(&str, &str, u64)]) -> Report {
        let mut r = Report::default();
        for (scenario, figure, value) in entries {
            r.scenarios
                .entry(scenario.to_string())
                .or_default()
                .insert(figure.to_string(), *value);
        }
        r
    }

    #[test]
    fn within_tolerance_passes() {
        let committed = report(&[("a", "instructions", 1000)]);
        assert!(compare(&committed, &report(&[("a", "instructions", 1020)])).is_empty());
        assert!(compare(&committed, &report(&[("a", "instructions", 980)])).is_empty());
    }

    #[test]
    fn regression_beyond_tolerance_fails() {
        let committed = report(&[("a", "instructions", 1000)]);
        let problems = compare(&committed, &report(&[("a", "instructions", 1021)]));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].verdict, Verdict::Regressed);
    }

    #[test]
    fn improvement_beyond_tolerance_is_stale() {
        let committed = report(&[("a", "rounds", 100)]);
        let problems = compare(&committed, &report(&[("a", "rounds", 90)]));
        assert_eq!(problems[0].verdict, Verdict::Stale);
    }

    #[test]
    fn added_and_removed_scenarios_are_stale() {
        let committed = report(&[("old", "rounds", 1)]);
        let problems = compare(&committed, &report(&[("new", "rounds", 1)]));
        assert_eq!(problems.len(), 2);
        assert!(problems.iter().all(|p| p.verdict == Verdict::Stale));
    }

    #[test]
    fn json_round_trip_is_byte_stable() {
        let r = report(&[("b", "x", 2), ("a", "y", 1)]);
        let text = r.to_json();
        assert_eq!(Report::from_json(&text).unwrap().to_json(), text);
    }
}
