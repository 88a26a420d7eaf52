//! Benchmarks measured in the simulator: instructions, messages, rounds and bytes, never seconds.
//!
//! `bench --write` runs every scenario and writes `bench/report.json`; `bench --check` runs them and
//! fails when the committed report is stale (a scenario added, removed, or a figure off by more
//! than the tolerance either way), a figure regressed, or a figure misses a target an issue set
//! (`report::TARGETS`; `--write` fails on those too, after writing). Every figure is "lower is
//! better". `bench --only <part of a name>` runs the matching scenarios and prints their figures,
//! writing and checking nothing.

mod report;
mod scenarios;

use report::{compare, missed_targets, Report, Verdict, TARGETS};
use std::path::PathBuf;
use std::process::ExitCode;

fn report_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("report.json")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, only) = match args.as_slice() {
        [mode] if mode == "--write" || mode == "--check" => (mode.as_str(), ""),
        [mode, only] if mode == "--only" => (mode.as_str(), only.as_str()),
        _ => {
            eprintln!("usage: bench --write | --check | --only <part of a scenario's name>");
            return ExitCode::from(2);
        }
    };
    let measured = scenarios::run_all(only);
    for (name, figures) in &measured.scenarios {
        let line: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{name}: {}", line.join(" "));
    }
    if mode == "--only" {
        return ExitCode::SUCCESS;
    }
    let path = report_path();
    let committed = read_report(&path);
    let mut measured = measured;
    if let Ok(committed) = &committed {
        measured.keep_on_demand(committed);
    }
    let missed = missed_targets(&measured, TARGETS);
    if mode == "--write" {
        std::fs::write(&path, measured.to_json()).expect("write bench report");
        println!("wrote {}", path.display());
        for problem in &missed {
            eprintln!("bench: {}", problem.what);
        }
        return if missed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let committed = match committed {
        Ok(report) => report,
        Err(problem) => {
            eprintln!("{problem}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = compare(&committed, &measured);
    problems.extend(missed);
    if problems.is_empty() {
        println!(
            "bench: report is current ({} scenarios)",
            measured.scenarios.len()
        );
        return ExitCode::SUCCESS;
    }
    for problem in &problems {
        let hint = match problem.verdict {
            Verdict::MissedTarget => "it misses its target: fix it",
            Verdict::Regressed => "a regression: fix it, or justify it and rewrite the report",
            Verdict::Stale => {
                "the report is stale: run `cargo run -p bench -- --write` and commit it"
            }
        };
        eprintln!("bench: {}: {}", problem.what, hint);
    }
    ExitCode::FAILURE
}

/// The committed report, or why it cannot be read.
fn read_report(path: &std::path::Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; run `cargo run -p bench -- --write`",
            path.display()
        )
    })?;
    Report::from_json(&text).map_err(|e| format!("{} is not a bench report: {e}", path.display()))
}
