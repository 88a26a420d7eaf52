//! `bench --check` as a test of the test command's one build: run as `cargo run -p bench`, the
//! bench resolved its dependencies' features apart from `cargo test --workspace` and compiled
//! them all again (5 minutes on 2 cores, for a check that runs in under 2).

use std::process::Command;

#[test]
fn the_committed_report_is_current_and_meets_its_targets() {
    // The child's output goes straight to the terminal: the figures and, on failure, what to do.
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--check")
        .status()
        .expect("run the bench");
    assert!(
        status.success(),
        "`bench --check` failed ({status}): its lines above say which figure and what to do"
    );
}
