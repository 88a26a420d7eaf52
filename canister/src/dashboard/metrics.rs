//! `/metrics`: the Prometheus text format (version 0.0.4), written by `ic-metrics-encoder` as
//! DFINITY's canisters write theirs (the cycles ledger, the ckBTC minter). Every name starts
//! with `deployer_`; every sample carries the time the figures were read.

use ic_metrics_encoder::MetricsEncoder;

use super::Figures;
use crate::engine::{RolloutPhase, StateCounts};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

pub fn render(figures: &Figures) -> Vec<u8> {
    let now_millis = (figures.now_nanos / 1_000_000) as i64;
    let mut encoder = MetricsEncoder::new(Vec::new(), now_millis);
    encode(&mut encoder, figures).expect("writing to a Vec cannot fail");
    encoder.into_inner()
}

fn encode(encoder: &mut MetricsEncoder<Vec<u8>>, figures: &Figures) -> std::io::Result<()> {
    let storage = &figures.storage;
    let fleet = &figures.fleet;
    encoder.encode_gauge(
        "deployer_cycle_balance",
        figures.cycles as f64,
        "Cycles the deployer holds.",
    )?;
    encoder.encode_gauge(
        "deployer_stable_memory_bytes",
        storage.stable_memory_bytes as f64,
        "Stable memory claimed by the deployer's structures.",
    )?;
    encoder.encode_gauge(
        "deployer_heap_memory_bytes",
        figures.heap_memory_bytes as f64,
        "The deployer's Wasm heap.",
    )?;
    encoder.encode_gauge(
        "deployer_releases",
        storage.releases as f64,
        "Committed releases.",
    )?;
    encoder.encode_gauge(
        "deployer_release_bytes",
        storage.release_bytes as f64,
        "Module bytes of all releases.",
    )?;
    encoder.encode_gauge(
        "deployer_open_uploads",
        storage.open_uploads as f64,
        "Uploads opened and not yet committed, aborted or expired.",
    )?;
    encoder.encode_gauge(
        "deployer_children",
        fleet.children as f64,
        "Children in the fleet registry.",
    )?;
    encoder.encode_gauge(
        "deployer_children_in_rollouts",
        fleet.claimed as f64,
        "Children held by an active rollout.",
    )?;
    let mut by_subnet = encoder.gauge_vec("deployer_children_by_subnet", "Children per subnet.")?;
    for (subnet, count) in &fleet.by_subnet {
        by_subnet = by_subnet.value(&[("subnet", &subnet.to_text())], *count as f64)?;
    }
    let mut by_module = encoder.gauge_vec(
        "deployer_children_by_module",
        "Children per installed module (empty: none installed), with its release if it is one.",
    )?;
    for (module, count) in &fleet.by_module {
        let hash = module.map(|module| module.to_string()).unwrap_or_default();
        let release = module
            .as_ref()
            .and_then(|module| figures.release_name(module))
            .unwrap_or("");
        by_module = by_module.value(&[("module", &hash), ("release", release)], *count as f64)?;
    }
    encoder.encode_counter(
        "deployer_rollouts_started_total",
        figures.rollouts_started as f64,
        "Rollouts ever started.",
    )?;
    let mut phases: Vec<(&str, u64)> = Vec::new();
    for rollout in &figures.active_rollouts {
        let phase = phase_name(&rollout.summary.phase);
        match phases.iter_mut().find(|(name, _)| *name == phase) {
            Some((_, count)) => *count += 1,
            None => phases.push((phase, 1)),
        }
    }
    let mut active = encoder.gauge_vec("deployer_rollouts_active", "Active rollouts per phase.")?;
    for (phase, count) in phases {
        active = active.value(&[("phase", phase)], count as f64)?;
    }
    let mut children = encoder.gauge_vec(
        "deployer_rollout_children",
        "Children of each active rollout per state.",
    )?;
    for rollout in &figures.active_rollouts {
        let id = rollout.rollout_id.to_string();
        for (state, count) in states(&rollout.summary.counts) {
            children = children.value(&[("rollout", &id), ("state", state)], count as f64)?;
        }
    }
    let mut failures = encoder.gauge_vec(
        "deployer_rollout_failures",
        "Children of each active rollout whose upgrade went wrong, by the kind of what went wrong \
         first (a FailureKind variant).",
    )?;
    for rollout in &figures.active_rollouts {
        let id = rollout.rollout_id.to_string();
        for failure in rollout.summary.failures_by_kind.iter().flatten() {
            failures = failures.value(
                &[("rollout", &id), ("kind", &failure.kind)],
                f64::from(failure.children),
            )?;
        }
    }
    let mut in_flight = encoder.gauge_vec(
        "deployer_rollout_calls_in_flight",
        "Management calls each active rollout awaits.",
    )?;
    for rollout in &figures.active_rollouts {
        let id = rollout.rollout_id.to_string();
        in_flight = in_flight.value(&[("rollout", &id)], rollout.summary.in_flight as f64)?;
    }
    let mut wave = encoder.gauge_vec(
        "deployer_rollout_current_wave",
        "The wave each active rollout is in (0: the canary), and how many it has.",
    )?;
    for rollout in &figures.active_rollouts {
        let id = rollout.rollout_id.to_string();
        let summary = &rollout.summary;
        // A backup run installs no module: both labels are empty.
        let module = rollout.release.map(|module| module.to_string());
        let release = rollout.release.as_ref();
        let release = release.and_then(|module| figures.release_name(module));
        let (module, release) = (module.unwrap_or_default(), release.unwrap_or(""));
        wave = wave.value(
            &[
                ("rollout", &id),
                ("module", &module),
                ("release", release),
                ("waves", &summary.waves.len().to_string()),
            ],
            summary.current_wave.map_or(0.0, f64::from),
        )?;
    }
    encoder.encode_gauge(
        "deployer_management_calls_in_flight",
        figures.management_calls_in_flight as f64,
        "Management canister calls the deployer awaits.",
    )?;
    encoder.encode_gauge(
        "deployer_journal_lines",
        figures.journal_lines as f64,
        "Journal lines not yet folded into the rollouts' checkpoints.",
    )?;
    if let Some(at) = figures.driver_last_ran_at {
        encoder.encode_gauge(
            "deployer_driver_last_run_seconds_ago",
            figures.now_nanos.saturating_sub(at) as f64 / 1e9,
            "Seconds since the rollout driver last dispatched steps (absent since an upgrade).",
        )?;
    }
    Ok(())
}

/// A phase as a label value.
pub(super) fn phase_name(phase: &RolloutPhase) -> &'static str {
    match phase {
        RolloutPhase::Running => "running",
        RolloutPhase::Paused(_) => "paused",
        RolloutPhase::Aborted => "aborted",
        RolloutPhase::RollingBack => "rolling_back",
        RolloutPhase::Completed => "completed",
        RolloutPhase::RolledBack => "rolled_back",
    }
}

/// Each state of [`StateCounts`], named as its Candid field (the `state` label), and its count.
pub fn states(counts: &StateCounts) -> [(&'static str, u32); 12] {
    [
        ("queued", counts.queued),
        ("active", counts.active),
        ("awaiting_rollback", counts.awaiting_rollback),
        ("upgraded", counts.upgraded),
        ("skipped", counts.skipped),
        ("failed", counts.failed),
        ("rolled_back", counts.rolled_back),
        ("left_stopped", counts.left_stopped),
        ("needs_attention", counts.needs_attention),
        ("cancelled", counts.cancelled),
        ("not_started", counts.not_started),
        ("backed_up", counts.backed_up.unwrap_or(0)),
    ]
}
