//! `/status`: the same figures as `/metrics`, as one JSON document for pages and scripts.

use serde::Serialize;

use super::metrics::{phase_name, states};
use super::Figures;

pub const CONTENT_TYPE: &str = "application/json";

#[derive(Serialize)]
struct Status<'a> {
    now_nanos: u64,
    version: &'a str,
    schema_version: u32,
    git_commit: Option<&'a str>,
    /// A string: JSON numbers lose precision past 2^53.
    cycles: String,
    stable_memory_bytes: u64,
    heap_memory_bytes: u64,
    releases: u64,
    release_bytes: u64,
    open_uploads: u64,
    children: u64,
    children_in_rollouts: u64,
    children_by_subnet: Vec<SubnetCount>,
    children_by_module: Vec<ModuleCount<'a>>,
    rollouts_started: u64,
    active_rollouts: Vec<RolloutStatus<'a>>,
    management_calls_in_flight: u64,
    journal_lines: u64,
    driver_last_ran_at: Option<u64>,
}

#[derive(Serialize)]
struct SubnetCount {
    subnet: String,
    children: u64,
}

#[derive(Serialize)]
struct ModuleCount<'a> {
    /// Hex; null: no module installed.
    module: Option<String>,
    release: Option<&'a str>,
    children: u64,
}

#[derive(Serialize)]
struct RolloutStatus<'a> {
    rollout_id: u64,
    /// `null` for a backup run.
    module: Option<String>,
    release: Option<&'a str>,
    phase: &'static str,
    current_wave: Option<u32>,
    started_at: u64,
    next_wave_at: Option<u64>,
    calls_in_flight: u32,
    children: Counts,
    /// Children whose upgrade went wrong, by the kind of what went wrong first.
    failures_by_kind: std::collections::BTreeMap<&'a str, u32>,
    waves: Vec<WaveStatus>,
}

#[derive(Serialize)]
struct WaveStatus {
    size: u32,
    failures: u32,
    tolerated_failures: u32,
    started_at: Option<u64>,
    finished_at: Option<u64>,
    children: Counts,
}

/// Children per state, named as `StateCounts`' fields.
#[derive(Serialize)]
#[serde(transparent)]
struct Counts(std::collections::BTreeMap<&'static str, u32>);

impl From<&crate::engine::StateCounts> for Counts {
    fn from(counts: &crate::engine::StateCounts) -> Self {
        Counts(states(counts).into_iter().collect())
    }
}

pub fn render(figures: &Figures) -> Vec<u8> {
    let status = Status {
        now_nanos: figures.now_nanos,
        version: &figures.version.version,
        schema_version: figures.version.schema_version,
        git_commit: figures.version.git_commit.as_deref(),
        cycles: figures.cycles.to_string(),
        stable_memory_bytes: figures.storage.stable_memory_bytes,
        heap_memory_bytes: figures.heap_memory_bytes,
        releases: figures.storage.releases,
        release_bytes: figures.storage.release_bytes,
        open_uploads: figures.storage.open_uploads,
        children: figures.fleet.children,
        children_in_rollouts: figures.fleet.claimed,
        children_by_subnet: figures
            .fleet
            .by_subnet
            .iter()
            .map(|(subnet, children)| SubnetCount {
                subnet: subnet.to_text(),
                children: *children,
            })
            .collect(),
        children_by_module: figures
            .fleet
            .by_module
            .iter()
            .map(|(module, children)| ModuleCount {
                module: module.map(|module| module.to_string()),
                release: module
                    .as_ref()
                    .and_then(|module| figures.release_name(module)),
                children: *children,
            })
            .collect(),
        rollouts_started: figures.rollouts_started,
        active_rollouts: figures
            .active_rollouts
            .iter()
            .map(|rollout| {
                let summary = &rollout.summary;
                RolloutStatus {
                    rollout_id: rollout.rollout_id,
                    module: rollout.release.map(|module| module.to_string()),
                    release: rollout
                        .release
                        .as_ref()
                        .and_then(|module| figures.release_name(module)),
                    phase: phase_name(&summary.phase),
                    current_wave: summary.current_wave,
                    started_at: summary.started_at,
                    next_wave_at: summary.next_wave_at,
                    calls_in_flight: summary.in_flight,
                    children: (&summary.counts).into(),
                    failures_by_kind: summary
                        .failures_by_kind
                        .iter()
                        .flatten()
                        .map(|failure| (failure.kind.as_str(), failure.children))
                        .collect(),
                    waves: summary
                        .waves
                        .iter()
                        .map(|wave| WaveStatus {
                            size: wave.size,
                            failures: wave.failures,
                            tolerated_failures: wave.tolerated_failures,
                            started_at: wave.started_at,
                            finished_at: wave.finished_at,
                            children: (&wave.counts).into(),
                        })
                        .collect(),
                }
            })
            .collect(),
        management_calls_in_flight: figures.management_calls_in_flight,
        journal_lines: figures.journal_lines,
        driver_last_ran_at: figures.driver_last_ran_at,
    };
    serde_json::to_vec(&status).expect("a status is always JSON")
}
