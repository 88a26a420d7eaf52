use std::collections::BTreeMap;

use candid::Principal;
use ic_http_certification::{HttpRequest, StatusCode};

use super::*;
use crate::engine::{
    ChildId, EventKind, Failure, FailureKind, FailureKindCount, PauseReason, RolloutPhase,
    StateCounts, Step, Verdict, WaveSummary,
};
use crate::fleet::canister_id;

const V1: ModuleHash = ModuleHash([1; 32]);
const V2: ModuleHash = ModuleHash([2; 32]);

fn subnet(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

fn rollout(rollout_id: u64, phase: RolloutPhase, counts: StateCounts) -> ActiveRollout {
    ActiveRollout {
        rollout_id,
        release: Some(V2),
        summary: Summary {
            phase,
            current_wave: Some(1),
            waves: vec![
                WaveSummary {
                    size: 1,
                    counts: StateCounts {
                        upgraded: 1,
                        ..StateCounts::default()
                    },
                    failures: 0,
                    tolerated_failures: 0,
                    started_at: Some(10),
                    finished_at: Some(20),
                },
                WaveSummary {
                    size: 9,
                    counts,
                    failures: counts.failed,
                    tolerated_failures: 2,
                    started_at: Some(30),
                    finished_at: None,
                },
            ],
            counts,
            in_flight: counts.active,
            started_at: 10,
            finished_at: None,
            next_wave_at: None,
            failures_by_kind: Some(
                (counts.failed > 0)
                    .then(|| FailureKindCount {
                        kind: "RetriesExhausted".to_string(),
                        children: counts.failed,
                    })
                    .into_iter()
                    .collect(),
            ),
        },
    }
}

fn figures() -> Figures {
    let counts = StateCounts {
        queued: 3,
        active: 2,
        upgraded: 4,
        failed: 1,
        ..StateCounts::default()
    };
    Figures {
        now_nanos: 5_000_000_000,
        version: VersionInfo::of_this_build(),
        cycles: 12_345_678_901_234,
        heap_memory_bytes: 3 << 20,
        storage: StorageStats {
            stable_memory_bytes: 7 << 20,
            releases: 2,
            release_bytes: 300_000,
            open_uploads: 1,
            ..StorageStats::default()
        },
        fleet: FleetComposition {
            children: 12,
            claimed: 10,
            by_subnet: vec![(subnet(1), 7), (subnet(2), 5)],
            by_module: vec![(Some(V1), 6), (Some(V2), 5), (None, 1)],
        },
        release_names: BTreeMap::from([(V1, "shard@1.0.0".into()), (V2, "shard@1.1.0".into())]),
        rollouts_started: 4,
        active_rollouts: vec![
            rollout(2, RolloutPhase::Running, counts),
            rollout(
                3,
                RolloutPhase::Paused(PauseReason::Operator),
                StateCounts::default(),
            ),
        ],
        management_calls_in_flight: 2,
        journal_lines: 17,
        driver_last_ran_at: Some(3_500_000_000),
    }
}

/// The figures above and a log of events: a canary that failed, then others.
/// The figures above, with events public or not.
struct Fixture {
    public_events: bool,
}

const PUBLIC: Fixture = Fixture {
    public_events: true,
};

impl Readings for Fixture {
    fn settings(&self) -> DashboardSettings {
        DashboardSettings {
            public_events: self.public_events,
        }
    }

    fn figures(&self) -> Figures {
        figures()
    }

    fn newest_events(&self, limit: usize) -> Vec<RolloutEvent> {
        newest_events().into_iter().take(limit).collect()
    }
}

/// Refuses to be read: for requests that must be answered without reading anything.
struct Unread;

impl Readings for Unread {
    fn settings(&self) -> DashboardSettings {
        panic!("settings are read only for a page served")
    }

    fn figures(&self) -> Figures {
        panic!("figures are read only for a page served")
    }

    fn newest_events(&self, _: usize) -> Vec<RolloutEvent> {
        panic!("events are read only for a page served")
    }
}

fn child(n: u8) -> ChildId {
    ChildId::new(vec![n, 1, 1]).unwrap()
}

/// Newest first: child 2 upgraded, child 1 failed its install (a child's own text in the
/// reason), both started.
fn newest_events() -> Vec<RolloutEvent> {
    let failure = Failure {
        step: Step::Install,
        attempts: 1,
        kind: FailureKind::Rejected {
            code: 5,
            message: "<script>alert(1)</script> trapped in post_upgrade".into(),
        },
    };
    let kinds = [
        EventKind::ChildFinished {
            child: child(2),
            verdict: Verdict::Upgraded,
        },
        EventKind::ChildFailed {
            child: child(1),
            failure,
        },
        EventKind::ChildStarted {
            child: child(2),
            wave: 1,
        },
        EventKind::ChildStarted {
            child: child(1),
            wave: 0,
        },
        EventKind::Created {
            children: 2,
            skipped: 0,
            waves: 2,
        },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(index, kind)| RolloutEvent {
            sequence: 10 - index as u64,
            rollout_id: 2,
            at: 100 - index as u64,
            kind,
        })
        .collect()
}

fn get(url: &str) -> HttpResponse<'static> {
    answer(&HttpRequest::get(url).build(), &PUBLIC)
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers()
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[test]
fn metrics_parse_as_prometheus_text_with_the_figures_values() {
    let response = get("/metrics");
    assert_eq!(response.status_code(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        Some(metrics::CONTENT_TYPE)
    );
    // The client's parser: `prometheus-parse`, Prometheus' rules.
    let samples = deployer_client::dashboard::Samples::parse(response.body());
    let value = |name: &str, pairs: &[(&str, &str)]| samples.value(name, pairs);
    assert_eq!(value("deployer_cycle_balance", &[]), 12_345_678_901_234.0);
    assert_eq!(value("deployer_children", &[]), 12.0);
    assert_eq!(value("deployer_children_in_rollouts", &[]), 10.0);
    assert_eq!(value("deployer_releases", &[]), 2.0);
    assert_eq!(value("deployer_open_uploads", &[]), 1.0);
    assert_eq!(value("deployer_stable_memory_bytes", &[]), (7 << 20) as f64);
    let subnet_1 = subnet(1).to_text();
    assert_eq!(
        value("deployer_children_by_subnet", &[("subnet", &subnet_1)]),
        7.0
    );
    let v1 = V1.to_string();
    assert_eq!(
        value(
            "deployer_children_by_module",
            &[("module", &v1), ("release", "shard@1.0.0")]
        ),
        6.0
    );
    assert_eq!(
        value(
            "deployer_children_by_module",
            &[("module", ""), ("release", "")]
        ),
        1.0
    );
    assert_eq!(value("deployer_rollouts_started_total", &[]), 4.0);
    assert_eq!(
        value("deployer_rollouts_active", &[("phase", "running")]),
        1.0
    );
    assert_eq!(
        value("deployer_rollouts_active", &[("phase", "paused")]),
        1.0
    );
    for (state, count) in [
        ("upgraded", 4.0),
        ("failed", 1.0),
        ("active", 2.0),
        ("queued", 3.0),
    ] {
        let pairs = [("rollout", "2"), ("state", state)];
        assert_eq!(value("deployer_rollout_children", &pairs), count);
    }
    let failures = [("rollout", "2"), ("kind", "RetriesExhausted")];
    assert_eq!(value("deployer_rollout_failures", &failures), 1.0);
    assert_eq!(
        value("deployer_rollout_calls_in_flight", &[("rollout", "2")]),
        2.0
    );
    let v2 = V2.to_string();
    let wave = [
        ("rollout", "3"),
        ("module", v2.as_str()),
        ("release", "shard@1.1.0"),
        ("waves", "2"),
    ];
    assert_eq!(value("deployer_rollout_current_wave", &wave), 1.0);
    assert_eq!(value("deployer_management_calls_in_flight", &[]), 2.0);
    assert_eq!(value("deployer_journal_lines", &[]), 17.0);
    assert_eq!(value("deployer_driver_last_run_seconds_ago", &[]), 1.5);
    // Every state of each active rollout, zeros included: 12 states, 2 rollouts.
    let rollout_children = samples.named("deployer_rollout_children").count();
    assert_eq!(rollout_children, 24);
}

#[test]
fn status_is_json_with_the_same_figures() {
    let response = get("/status");
    assert_eq!(response.status_code(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let status: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(status["cycles"], "12345678901234");
    assert_eq!(status["children"], 12);
    assert_eq!(status["children_by_subnet"][1]["children"], 5);
    assert_eq!(status["children_by_module"][0]["release"], "shard@1.0.0");
    assert_eq!(
        status["children_by_module"][2]["module"],
        serde_json::Value::Null
    );
    let rollout = &status["active_rollouts"][0];
    assert_eq!(rollout["rollout_id"], 2);
    assert_eq!(rollout["phase"], "running");
    assert_eq!(rollout["children"]["failed"], 1);
    assert_eq!(rollout["failures_by_kind"]["RetriesExhausted"], 1);
    assert_eq!(rollout["waves"][1]["tolerated_failures"], 2);
    assert_eq!(rollout["waves"][0]["children"]["upgraded"], 1);
    assert_eq!(status["active_rollouts"][1]["phase"], "paused");
    assert_eq!(status["journal_lines"], 17);
    assert_eq!(
        header(&response, "content-length").map(str::to_string),
        Some(response.body().len().to_string())
    );
}

#[test]
fn bad_requests_get_404_405_and_414_without_reading_figures() {
    let not_found = answer(&HttpRequest::get("/admin").build(), &Unread);
    assert_eq!(not_found.status_code(), StatusCode::NOT_FOUND);
    assert!(std::str::from_utf8(not_found.body())
        .unwrap()
        .contains("/metrics, /status and /events"));
    let post = answer(&HttpRequest::post("/metrics").build(), &Unread);
    assert_eq!(post.status_code(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&post, "allow"), Some("GET, HEAD"));
    let long = format!("/metrics?{}", "a".repeat(MAX_URL_BYTES));
    let too_long = answer(&HttpRequest::get(long).build(), &Unread);
    assert_eq!(too_long.status_code(), StatusCode::URI_TOO_LONG);
    // The gateway's own parameter is ignored.
    let with_id = get("/metrics?canisterId=rwlgt-iiaaa-aaaaa-aaaaa-cai");
    assert_eq!(with_id.status_code(), StatusCode::OK);
    let bad_child = answer(&HttpRequest::get("/events?child=nope").build(), &Unread);
    assert_eq!(bad_child.status_code(), StatusCode::BAD_REQUEST);
}

#[test]
fn head_gets_the_headers_without_the_body() {
    let get = get("/status");
    let head = answer(
        &HttpRequest::builder()
            .with_method(ic_http_certification::Method::HEAD)
            .with_url("/status")
            .build(),
        &PUBLIC,
    );
    assert_eq!(head.status_code(), StatusCode::OK);
    assert!(head.body().is_empty());
    assert_eq!(
        header(&head, "content-length"),
        Some(get.body().len().to_string().as_str())
    );
}

#[test]
fn events_tell_each_event_and_list_the_failures_with_their_reasons() {
    let response = get("/events?canisterId=rwlgt-iiaaa-aaaaa-aaaaa-cai");
    assert_eq!(response.status_code(), StatusCode::OK);
    let page: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let child_1 = canister_id(&child(1)).to_text();
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    assert_eq!(page["events"][0]["event"], "ChildFinished");
    assert_eq!(page["events"][0]["text"], "upgraded");
    assert_eq!(
        page["events"][4]["text"],
        "2 children selected, 0 already on the release, 2 waves"
    );
    let failures = page["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["child"], child_1.as_str());
    assert_eq!(failures[0]["rollout_id"], 2);
    assert_eq!(
        failures[0]["text"],
        "Install failed after 1 attempt: rejected (code 5): <script>alert(1)</script> trapped in \
         post_upgrade"
    );
    // One child's events: its start and its failure.
    let of_child = get(&format!("/events?child={child_1}"));
    let page: serde_json::Value = serde_json::from_slice(of_child.body()).unwrap();
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ChildFailed", "ChildStarted"]);
}

#[test]
fn the_page_is_one_small_html_file_that_loads_nothing_from_elsewhere() {
    let response = get("/");
    assert_eq!(response.status_code(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = std::str::from_utf8(response.body()).unwrap();
    assert!(page.len() < 100 * 1024, "{} bytes", page.len());
    for external in ["http://", "https://", " src=", "@import", "url("] {
        assert!(!page.contains(external), "the page names {external}");
    }
    // Children's texts (failure reasons) are set as text, never parsed as HTML.
    assert!(!page.contains("innerHTML"));
    for view in ["\"/status\"", "\"/events\""] {
        assert!(page.contains(view), "the page polls {view}");
    }
}

#[test]
fn events_name_children_only_where_the_controllers_made_them_public() {
    let private = Fixture {
        public_events: false,
    };
    let events = answer(&HttpRequest::get("/events").build(), &private);
    assert_eq!(events.status_code(), StatusCode::FORBIDDEN);
    let says = String::from_utf8(events.body().to_vec()).unwrap();
    assert!(says.contains("list_events") && says.contains("public_events = true"));
    // The aggregates stay served.
    for path in ["/", "/metrics", "/status"] {
        let response = answer(&HttpRequest::get(path).build(), &private);
        assert_eq!(response.status_code(), StatusCode::OK, "{path}");
    }
}
