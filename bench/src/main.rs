//! Benchmarks measured in the simulator: instructions, messages, rounds and bytes, never seconds.
//!
//! `bench --write` runs every scenario and writes `bench/report.json`; `bench --check` runs them and
//! fails when the committed report is stale (a scenario added, removed, or a figure off by more
//! than the tolerance either way) or a figure regressed. Every figure is "lower is better".

mod report;
mod scenarios;

use report::{compare, Report, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

fn report_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("report.json")
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode != "--write" && mode != "--check" {
        eprintln!("usage: bench --write | --check");
        return ExitCode::from(2);
    }
    let measured = scenarios::run_all();
    for (name, figures) in &measured.scenarios {
        let line: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{name}: {}", line.join(" "));
    }
    let path = report_path();
    if mode == "--write" {
        std::fs::write(&path, measured.to_json()).expect("write bench report");
        println!("wrote {}", path.display());
        return ExitCode::SUCCESS;
    }
    let committed = match std::fs::read_to_string(&path).map(|text| Report::from_json(&text)) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("{} is not a bench report: {e}", path.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!(
                "cannot read {}: {e}; run `cargo run -p bench -- --write`",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let problems = compare(&committed, &measured);
    if problems.is_empty() {
        println!(
            "bench: report is current ({} scenarios)",
            measured.scenarios.len()
        );
        return ExitCode::SUCCESS;
    }
    for problem in &problems {
        let hint = match problem.verdict {
            Verdict::Regressed => "a regression: fix it, or justify it and rewrite the report",
            Verdict::Stale => {
                "the report is stale: run `cargo run -p bench -- --write` and commit it"
            }
        };
        eprintln!("bench: {}: {}", problem.what, hint);
    }
    ExitCode::FAILURE
}
