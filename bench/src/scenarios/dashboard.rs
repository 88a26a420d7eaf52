//! The dashboard's views (`http_request`, answered as a query) with 10 rollouts running in a
//! fleet of 1,000 and of 10,000 children on three subnets: the instructions of `/metrics`,
//! `/status`, `/events` and the page against the 1 % of a query's 5 B instruction limit that
//! issue 16 sets, the bytes served (the page under 100 KB), and that no view grows with the
//! fleet (every figure is a running count), which is what carries the limit to 100,000
//! children. A fleet of 100,000 takes 6.5 minutes and 15 GiB of the simulator to set up, too
//! much for CI: `DASHBOARD_FLEET=100000 bench --only dashboard` runs it. Measured there (on
//! 2026-12-03): `/metrics` 2.02 M instructions, `/status` 2.14 M, `/events` 3.95 M, the page
//! 0.27 M (1,000 children: 1.99 M, 2.14 M, 3.94 M, 0.27 M).

use super::rollouts::fleet;
use super::{controller, upload, Deployer, Figures};
use candid::Principal;
use deployer::dashboard::DashboardSettings;
use deployer::{ListChildrenArg, Selector, UpgradeArg};
use deployer_client::staged_policy as policy;
use ic_sim::artifacts;
use std::collections::BTreeMap;

const ROLLOUTS: usize = 10;
/// Children each rollout upgrades; the rest of the fleet stays idle.
const ROLLOUT_CHILDREN: usize = 100;
/// 1 % of the 5 B instructions a query may use.
const QUERY_BUDGET: u64 = 50_000_000;

fn child_ids(deployer: &mut Deployer) -> Vec<Principal> {
    let mut ids = Vec::new();
    let mut arg = ListChildrenArg::default();
    loop {
        let page = deployer.list_children_ok(controller(), arg.clone());
        ids.extend(page.children.iter().map(|child| child.canister_id));
        match page.next {
            Some(next) => arg.from = Some(next),
            None => return ids,
        }
    }
}

pub fn ten_rollouts() -> Figures {
    let large = std::env::var("DASHBOARD_FLEET")
        .ok()
        .and_then(|fleet| fleet.parse().ok())
        .unwrap_or(10_000);
    let small = views(1_000);
    let large_views = views(large);
    let mut figures = Figures::new();
    for (name, small_figure) in &small {
        let large_figure = large_views[name];
        if name.ends_with("_instructions") {
            // Flat: within 10 % (the rollouts' children and events are the same; only the
            // fleet's ids in the sample differ).
            assert!(
                large_figure.abs_diff(*small_figure) * 10 <= *small_figure,
                "{name}: {small_figure} with 1,000 children, {large_figure} with {large}"
            );
        }
        figures.insert(format!("{name}_1000_children"), *small_figure);
        figures.insert(format!("{name}_{large}_children"), large_figure);
    }
    figures
}

/// The views' figures with [`ROLLOUTS`] rollouts mid-flight in a fleet of `children`.
fn views(children: usize) -> Figures {
    let mut deployer = fleet(3, children);
    let public = UpgradeArg {
        dashboard: Some(DashboardSettings {
            public_events: true,
        }),
        ..UpgradeArg::default()
    };
    deployer
        .upgrade_stopped(controller(), Some(public))
        .expect("upgrade the deployer");
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    // Spread over the fleet, and so over the subnets, alike for every fleet size: the
    // rollouts then progress alike.
    let ids = child_ids(&mut deployer);
    let selected: Vec<Principal> = ids
        .iter()
        .step_by(children / (ROLLOUTS * ROLLOUT_CHILDREN))
        .take(ROLLOUTS * ROLLOUT_CHILDREN)
        .copied()
        .collect();
    for selection in selected.chunks(ROLLOUT_CHILDREN) {
        let selector = Selector::Explicit(selection.to_vec());
        deployer
            .start_rollout_of(controller(), &release, selector, policy(1, vec![], 10))
            .expect("start_rollout");
    }
    // Mid-flight: canaries done, children in flight in every rollout.
    for _ in 0..30 {
        deployer.env.tick();
    }
    let mut figures = BTreeMap::new();
    for (path, name) in [
        ("/metrics", "metrics"),
        ("/status", "status"),
        ("/events", "events"),
        ("/", "page"),
    ] {
        let response = deployer.http_get(controller(), path).expect("http_request");
        assert_eq!(response.status_code().as_u16(), 200, "{path}");
        let instructions = deployer.env.last_instructions(deployer.canister);
        assert!(
            instructions < QUERY_BUDGET,
            "{path} costs {instructions} instructions with {children} children"
        );
        figures.insert(format!("{name}_instructions"), instructions);
        figures.insert(format!("{name}_bytes"), response.body().len() as u64);
    }
    let metrics = deployer.metrics_ok(controller());
    let running: f64 = metrics
        .named("deployer_rollouts_active")
        .map(|(_, count)| count)
        .sum();
    assert_eq!(running, ROLLOUTS as f64, "every rollout is still running");
    assert!(figures["page_bytes"] < 100 * 1024);
    figures
}
