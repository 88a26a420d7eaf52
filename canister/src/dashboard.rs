//! What the deployer serves over HTTP (the IC's HTTP gateway protocol, `http_request`):
//! `/metrics` in the Prometheus text format and `/status` as JSON, for dashboards and scrapers.
//!
//! Plain Rust: the entry point passes the request and the [`Figures`] it read (from the state
//! and from the IC: cycles, heap, the driver's last run); nothing here calls the IC. Every figure
//! is a running count or a handful of reads (the fleet's composition, the active rollouts'
//! summaries), never a scan of the fleet.
//!
//! Requests are answered as queries only: served by one node for free, so nobody can make the
//! deployer pay for a scrape (the entry point refuses replicated execution). The figures are
//! aggregates (counts per subnet, per module, per active rollout); child ids, labels and install
//! arguments stay behind the role-checked Candid queries.

mod metrics;
mod status;

pub use metrics::states;

pub use ic_http_certification::{HttpRequest, HttpResponse};
use ic_http_certification::{Method, StatusCode};
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

use crate::engine::{ModuleHash, Summary};
use crate::fleet::FleetComposition;
use crate::release_store::StorageStats;
use crate::releases::ReleaseSelector;
use crate::state::State;
use crate::version::VersionInfo;

/// The longest request URL answered; longer ones get 414. Every path served is short and takes
/// no parameters but `canisterId`, which gateways add.
pub const MAX_URL_BYTES: usize = 512;

/// What `/metrics` and `/status` show, read by the entry point for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub now_nanos: u64,
    pub version: VersionInfo,
    pub cycles: u128,
    pub heap_memory_bytes: u64,
    pub storage: StorageStats,
    pub fleet: FleetComposition,
    /// `name@version` of each module in `fleet.by_module` that is a release.
    pub release_names: Vec<(ModuleHash, String)>,
    /// Rollouts ever started (ids are sequential) and those still stored.
    pub rollouts_started: u64,
    pub active_rollouts: Vec<ActiveRollout>,
    /// Management calls the deployer awaits (rollout steps and uploads to chunk stores).
    pub management_calls_in_flight: u64,
    pub journal_lines: u64,
    /// When the rollout driver last dispatched a step; `None` since the last upgrade.
    pub driver_last_ran_at: Option<u64>,
}

/// An active rollout, as its summary counts it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveRollout {
    pub rollout_id: u64,
    pub release: ModuleHash,
    pub summary: Summary,
}

/// What only the IC knows, read by the entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFigures {
    pub now_nanos: u64,
    pub cycles: u128,
    pub heap_memory_bytes: u64,
    pub management_calls_in_flight: u64,
    pub driver_last_ran_at: Option<u64>,
}

impl Figures {
    /// Reads the figures: the fleet's counts, the active rollouts' summaries, and the release
    /// of each module they name.
    pub fn read<M: Memory>(state: &State<M>, host: HostFigures) -> Figures {
        let fleet = state.fleet.composition();
        let active_rollouts: Vec<ActiveRollout> = state
            .rollouts
            .active_infos()
            .into_iter()
            .map(|info| ActiveRollout {
                rollout_id: info.rollout_id,
                release: ModuleHash(
                    info.release_sha256
                        .as_slice()
                        .try_into()
                        .expect("a release hash is 32 bytes"),
                ),
                summary: info.summary,
            })
            .collect();
        let mut modules: Vec<ModuleHash> = fleet
            .by_module
            .iter()
            .filter_map(|(module, _)| *module)
            .chain(active_rollouts.iter().map(|rollout| rollout.release))
            .collect();
        modules.sort();
        modules.dedup();
        let release_names = modules
            .into_iter()
            .filter_map(|module| {
                let selector = ReleaseSelector::Sha256(ByteBuf::from(module.0.to_vec()));
                let release = state.release_store.get_release(&selector).ok()?.summary;
                Some((module, format!("{}@{}", release.name, release.version)))
            })
            .collect();
        Figures {
            now_nanos: host.now_nanos,
            version: VersionInfo::of_this_build(),
            cycles: host.cycles,
            heap_memory_bytes: host.heap_memory_bytes,
            storage: state.storage_stats(host.now_nanos),
            fleet,
            release_names,
            rollouts_started: state.rollouts.started(),
            active_rollouts,
            management_calls_in_flight: host.management_calls_in_flight,
            journal_lines: state.rollouts.journal_lines(),
            driver_last_ran_at: host.driver_last_ran_at,
        }
    }

    fn release_name(&self, module: &ModuleHash) -> Option<&str> {
        self.release_names
            .iter()
            .find(|(hash, _)| hash == module)
            .map(|(_, name)| name.as_str())
    }
}

/// Answers an HTTP request; `figures` is read only for the paths that show them.
pub fn answer(request: &HttpRequest, figures: impl FnOnce() -> Figures) -> HttpResponse<'static> {
    if request.url().len() > MAX_URL_BYTES {
        return plain(
            StatusCode::URI_TOO_LONG,
            format!(
                "the URL has {} bytes: at most {MAX_URL_BYTES}",
                request.url().len()
            ),
        );
    }
    let Ok(path) = request.get_path() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the URL cannot be parsed".to_string(),
        );
    };
    let render: fn(&Figures) -> (&'static str, Vec<u8>) = match path.as_str() {
        "/metrics" => |figures| (metrics::CONTENT_TYPE, metrics::render(figures)),
        "/status" => |figures| (status::CONTENT_TYPE, status::render(figures)),
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                format!("no page at {path}: the deployer serves /metrics and /status"),
            )
        }
    };
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} answers GET and HEAD, not {method}"),
        );
        response.add_header(("Allow".to_string(), "GET, HEAD".to_string()));
        return response;
    }
    let (content_type, body) = render(&figures());
    let length = body.len().to_string();
    let body = if method == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    HttpResponse::ok(
        body,
        vec![
            ("Content-Type".to_string(), content_type.to_string()),
            ("Content-Length".to_string(), length),
            ("Cache-Control".to_string(), "no-store".to_string()),
        ],
    )
    .build()
}

fn plain(status: StatusCode, message: String) -> HttpResponse<'static> {
    HttpResponse::builder()
        .with_status_code(status)
        .with_headers(vec![(
            "Content-Type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        )])
        .with_body(message.into_bytes())
        .build()
}

#[cfg(test)]
mod tests;
