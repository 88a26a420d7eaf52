//! The dashboard's views (`http_request`, answered as a query) with 10 rollouts running over
//! 1,000 children on three subnets: the instructions of `/metrics`, `/status`, `/events` and the
//! page against the 1 % of a query's 5 B instruction limit that issue 16 sets, and the bytes
//! served (the page under 100 KB).

use super::rollouts::fleet;
use super::{controller, upload, Deployer, Figures};
use candid::Principal;
use deployer::{ListChildrenArg, Selector};
use deployer_client::staged_policy as policy;
use ic_sim::artifacts;
use std::collections::BTreeMap;

const CHILDREN: usize = 1_000;
const ROLLOUTS: usize = 10;
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

pub fn thousand_children_ten_rollouts() -> Figures {
    let mut deployer = fleet(3, CHILDREN);
    let release = upload(&mut deployer, &artifacts::wasm("child_v2"));
    let ids = child_ids(&mut deployer);
    for selection in ids.chunks(CHILDREN / ROLLOUTS) {
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
            "{path} costs {instructions} instructions"
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
