//! What the deployer serves over HTTP (the IC's HTTP gateway protocol, `http_request`):
//!
//! | path       | what                                                                  |
//! |------------|-----------------------------------------------------------------------|
//! | `/`        | the dashboard page: one HTML file, no external asset, polls the views |
//! | `/metrics` | Prometheus text format (`deployer_*`), for scrapers                   |
//! | `/status`  | JSON: the fleet's composition, active rollouts by wave, health        |
//! | `/events`  | JSON: the newest events, and the failures among the newest 1,000      |
//!
//! Plain Rust: the entry point passes the request and what it can read ([`Readings`]: the
//! state, and from the IC cycles, heap, the driver's last run); nothing here calls the IC.
//! Every figure is a running count or a handful of reads (the fleet's composition, the active
//! rollouts' summaries, a bounded window of events), never a scan of the fleet.
//!
//! Requests are answered as queries only: served by one node for free, so nobody can make the
//! deployer pay for a scrape (the entry point refuses replicated execution). Requests through
//! a gateway come from nobody in particular, so what is served is public: `/metrics` and
//! `/status` are aggregates (counts per subnet, per module, per active rollout); `/events`
//! names children and says why they failed, so it answers 403 unless the controllers made it
//! public ([`DashboardSettings`]). Labels and install arguments stay behind the role-checked
//! Candid queries.

mod events;
mod metrics;
mod status;

pub use metrics::states;

use std::collections::{BTreeMap, BTreeSet};

use candid::{CandidType, Deserialize, Principal};
pub use ic_http_certification::{HttpRequest, HttpResponse};
use ic_http_certification::{Method, StatusCode};
use ic_stable_structures::Memory;
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::engine::{ModuleHash, Summary};
use crate::fleet::FleetComposition;
use crate::release_store::StorageStats;
use crate::rollouts::RolloutEvent;
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
    pub release_names: BTreeMap<ModuleHash, String>,
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
    /// `None` for a backup run, which installs nothing.
    pub release: Option<ModuleHash>,
    pub summary: Summary,
}

/// `name@version` of each module that is a release, each looked up once.
fn release_names<M: Memory + Clone>(
    state: &State<M>,
    modules: impl Iterator<Item = ModuleHash>,
) -> BTreeMap<ModuleHash, String> {
    let modules: BTreeSet<ModuleHash> = modules.collect();
    modules
        .into_iter()
        .filter_map(|module| Some((module, state.release_store.release_name(&module.0)?)))
        .collect()
}

/// Reply of `fleet_summary`: the fleet by subnet and by module, from the running counts.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetSummary {
    pub children: u64,
    /// Children held by an active rollout.
    pub in_rollouts: u64,
    pub by_subnet: Vec<SubnetChildren>,
    /// Modules in hash order, then the children with no module.
    pub by_module: Vec<ModuleChildren>,
    pub cycles: candid::Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubnetChildren {
    pub subnet: Principal,
    pub children: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModuleChildren {
    /// Null: no module installed.
    pub module_hash: Option<ByteBuf>,
    /// `name@version` when the module is a release.
    pub release: Option<String>,
    pub children: u64,
}

impl FleetSummary {
    pub fn read<M: Memory + Clone>(state: &State<M>, cycles: u128) -> FleetSummary {
        let fleet = state.fleet.composition();
        let names = release_names(
            state,
            fleet.by_module.iter().filter_map(|(module, _)| *module),
        );
        FleetSummary {
            children: fleet.children,
            in_rollouts: fleet.claimed,
            by_subnet: fleet
                .by_subnet
                .into_iter()
                .map(|(subnet, children)| SubnetChildren { subnet, children })
                .collect(),
            by_module: fleet
                .by_module
                .into_iter()
                .map(|(module, children)| ModuleChildren {
                    module_hash: module.map(|module| ByteBuf::from(module.0.to_vec())),
                    release: module.and_then(|module| names.get(&module).cloned()),
                    children,
                })
                .collect(),
            cycles: candid::Nat::from(cycles),
        }
    }
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
    pub fn read<M: Memory + Clone>(state: &State<M>, host: HostFigures) -> Figures {
        let fleet = state.fleet.composition();
        let active_rollouts: Vec<ActiveRollout> = state
            .rollouts
            .active_infos()
            .into_iter()
            .map(|info| ActiveRollout {
                rollout_id: info.rollout_id,
                // Empty for a backup run.
                release: info
                    .release_sha256
                    .as_slice()
                    .try_into()
                    .ok()
                    .map(ModuleHash),
                summary: info.summary,
            })
            .collect();
        let modules = fleet
            .by_module
            .iter()
            .filter_map(|(module, _)| *module)
            .chain(active_rollouts.iter().filter_map(|rollout| rollout.release));
        let release_names = release_names(state, modules);
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
        self.release_names.get(module).map(String::as_str)
    }
}

/// The deployer's own readings: its state, and what the IC told the entry point.
pub struct StateReadings<'a, M: Memory + Clone> {
    pub state: &'a State<M>,
    pub host: HostFigures,
}

impl<M: Memory + Clone> Readings for StateReadings<'_, M> {
    fn settings(&self) -> DashboardSettings {
        self.state.dashboard()
    }

    fn figures(&self) -> Figures {
        Figures::read(self.state, self.host)
    }

    fn newest_events(&self, limit: usize) -> Vec<RolloutEvent> {
        self.state.rollouts.newest_events(limit)
    }
}

/// What the HTTP views show anyone, set by the controllers at install or upgrade. Stored as
/// CBOR (memory 24); the serde names are stored.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DashboardSettings {
    /// `/events` served: child ids with what happened to them and why they failed. Off, the
    /// page shows the aggregates only; role holders read events with `list_events`.
    #[serde(default)]
    pub public_events: bool,
}

/// What a page is made from, read only for the page asked.
pub trait Readings {
    fn settings(&self) -> DashboardSettings;
    fn figures(&self) -> Figures;
    /// The newest `limit` events, newest first.
    fn newest_events(&self, limit: usize) -> Vec<RolloutEvent>;
}

/// Why `/events` answers 403, and what to do.
pub const PRIVATE_EVENTS: &str = "the events name the fleet's children, and this deployer keeps \
     them private: role holders read them with the `list_events` query; the deployer's \
     controllers make them public with the install or upgrade argument `dashboard = opt record \
     { public_events = true }`";

/// The dashboard page.
const PAGE: &str = include_str!("dashboard/page.html");

/// Renders a page from the readings and the `child` parameter: its content type and body.
type Render = fn(&dyn Readings, Option<Principal>) -> (&'static str, Vec<u8>);

/// Answers an HTTP request.
pub fn answer(request: &HttpRequest, readings: &impl Readings) -> HttpResponse<'static> {
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
    let child = match child_parameter(request) {
        Ok(child) => child,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    let render: Render = match path.as_str() {
        "/" | "/index.html" => |_, _| ("text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
        "/metrics" => |readings, _| (metrics::CONTENT_TYPE, metrics::render(&readings.figures())),
        "/status" => |readings, _| (status::CONTENT_TYPE, status::render(&readings.figures())),
        "/events" if !readings.settings().public_events => {
            return plain(StatusCode::FORBIDDEN, PRIVATE_EVENTS.to_string())
        }
        "/events" => |readings, child| {
            let newest = readings.newest_events(events::FAILURE_WINDOW);
            (events::CONTENT_TYPE, events::render(&newest, child))
        },
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                format!("no page at {path}: the deployer serves /, /metrics, /status and /events"),
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
    let (content_type, body) = render(readings, child);
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

/// The `child` query parameter (a principal), if given; other parameters (the gateway's
/// `canisterId`) are ignored.
fn child_parameter(request: &HttpRequest) -> Result<Option<Principal>, String> {
    let query = request.get_query().ok().flatten().unwrap_or_default();
    let Some((_, text)) = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "child")
    else {
        return Ok(None);
    };
    Principal::from_text(text)
        .map(Some)
        .map_err(|error| format!("child={text} is not a principal: {error}"))
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
