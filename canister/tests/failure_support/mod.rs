//! Shared by the failure scenario tests: a small adopted fleet with a release uploaded, what
//! each child looked like before the rollout, and the end-state checks that compare the
//! deployer's queries with the simulator's view.
#![allow(dead_code)]

use candid::Principal;
use deployer::{ChildHistory, ChildHistoryArg, EventPage, ListEventsArg, PolicyArg};
use deployer::{
    ChildState, EventKind, FailureBudget, OnFailure, RetryPolicy, Step, Verdict, WaveSize,
};
use deployer::{Error, Release};
use ic_sim::{artifacts, CanisterRunStatus, Fault, FaultCount, RejectCode, SimConfig};

use crate::rollout_support::{
    counter_of, create_children, fleet, fleet_with, policy, release, version_of, Fleet,
};
use crate::support::{admin, operator, Answer};

/// Makes the management canister reject `method` on the scenario's child `index` with `code`,
/// `count` times.
pub fn reject(
    scenario: &mut Scenario,
    index: usize,
    method: &str,
    code: RejectCode,
    count: FaultCount,
) {
    let child = scenario.before[index].child;
    scenario.fleet.env.inject(Fault::RejectManagement {
        method: method.to_string(),
        targets: vec![child],
        code,
        message: format!("injected {method} reject"),
        count,
    });
}

/// One child as it was before the rollout touched it.
#[derive(Clone, Debug)]
pub struct Before {
    pub child: Principal,
    pub module_hash: [u8; 32],
    pub counter: u64,
}

pub struct Scenario {
    pub fleet: Fleet,
    pub before: Vec<Before>,
    pub release: Release,
}

impl Scenario {
    /// `count` children on child_v1 with distinct counters, adopted, and `release_wasm`
    /// (an artifact name) uploaded as the release.
    pub fn new(count: usize, release_wasm: &str) -> Self {
        Self::on(fleet(1), count, release_wasm)
    }

    /// As [`Scenario::new`], on `fleet`.
    pub fn on(mut fleet: Fleet, count: usize, release_wasm: &str) -> Self {
        let children = create_children(&mut fleet, 0, count);
        fleet.adopt_all(admin(), std::slice::from_ref(&children));
        let release = release(&mut fleet, &artifacts::wasm(release_wasm), "2");
        let before = children
            .iter()
            .map(|&child| Before {
                child,
                module_hash: module_hash(&fleet, child),
                counter: counter_of(&mut fleet, child),
            })
            .collect();
        Self {
            fleet,
            before,
            release,
        }
    }

    /// Starts a rollout of the scenario's release to every child under `policy`; returns its id.
    pub fn start_all(&mut self, policy: PolicyArg) -> u64 {
        self.fleet
            .start_rollout_of(operator(), &self.release, deployer::Selector::All, policy)
            .answer()
            .expect("start")
            .rollout_id
    }

    pub fn children(&self) -> Vec<Principal> {
        self.before.iter().map(|before| before.child).collect()
    }

    pub fn release_hash(&self) -> [u8; 32] {
        self.release
            .summary
            .sha256
            .as_slice()
            .try_into()
            .expect("a sha256")
    }

    /// The child runs its previous module with the state it had before the rollout.
    pub fn assert_restored(&mut self, index: usize) {
        let previous = self.before[index].module_hash;
        self.assert_running(index, previous, "v1", "previous module");
    }

    /// The child runs the release with the state it had before the rollout.
    pub fn assert_upgraded(&mut self, index: usize) {
        let release = self.release_hash();
        self.assert_running(index, release, "v2", "release module");
    }

    fn assert_running(&mut self, index: usize, module: [u8; 32], version: &str, which: &str) {
        let before = self.before[index].clone();
        let view = self.fleet.env.canister(before.child).unwrap();
        assert_eq!(
            view.status,
            CanisterRunStatus::Running,
            "{} runs",
            before.child
        );
        assert_eq!(view.module_hash, Some(module), "{which}");
        assert_eq!(version_of(&mut self.fleet, before.child), version);
        assert_eq!(
            counter_of(&mut self.fleet, before.child),
            before.counter,
            "state kept"
        );
    }

    pub fn history(&mut self, rollout_id: u64, index: usize) -> ChildHistory {
        history(&mut self.fleet, rollout_id, self.before[index].child)
    }

    /// The child's final verdict, as its history reports it.
    pub fn verdict(&mut self, rollout_id: u64, index: usize) -> Verdict {
        match self.history(rollout_id, index).state {
            ChildState::Finished(verdict) => verdict,
            other => panic!("child {index} has not finished: {other:?}"),
        }
    }
}

pub fn module_hash(fleet: &Fleet, child: Principal) -> [u8; 32] {
    fleet
        .env
        .canister(child)
        .unwrap()
        .module_hash
        .expect("a module")
}

pub fn history(fleet: &mut Fleet, rollout_id: u64, child: Principal) -> ChildHistory {
    let history: Result<ChildHistory, Error> = fleet
        .child_history(
            operator(),
            ChildHistoryArg {
                rollout_id,
                canister_id: child,
                from: None,
                limit: Some(1_000),
            },
        )
        .answer();
    let history = history.expect("child_history");
    assert_eq!(history.next, None, "the whole history fits one page");
    history
}

/// The steps of a history in order, with their attempt numbers.
pub fn steps(history: &ChildHistory) -> Vec<(Step, u32)> {
    history
        .steps
        .iter()
        .map(|record| (record.step, record.attempt))
        .collect()
}

/// Every event the deployer journaled for the rollout, in order, across pages.
pub fn events(fleet: &mut Fleet, rollout_id: u64) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    let mut from = None;
    loop {
        let page: EventPage = fleet.list_events_ok(
            operator(),
            ListEventsArg {
                rollout_id: Some(rollout_id),
                from,
                limit: None,
            },
        );
        kinds.extend(page.events.into_iter().map(|event| event.kind));
        match page.next {
            Some(next) => from = Some(next),
            None => return kinds,
        }
    }
}

/// One canary, then the rest, `concurrency` at a time; retries one second apart (doubling, at
/// most eight) so backoffs stay short in rounds.
pub fn failure_policy(
    on_failure: OnFailure,
    failure_budget: FailureBudget,
    concurrency: u32,
) -> PolicyArg {
    PolicyArg {
        on_failure: Some(on_failure),
        failure_budget: Some(failure_budget),
        retry: Some(RetryPolicy {
            max_attempts: 4,
            base_backoff_nanos: 1_000_000_000,
            max_backoff_nanos: 8_000_000_000,
        }),
        ..policy(1, vec![WaveSize::Percent(100)], concurrency)
    }
}

/// Starts a rollout of the scenario's release to every child whose canary (child 0) fails its
/// install once, with no failure tolerated: the rollout pauses after the canary, rolled back.
pub fn start_with_failing_canary(scenario: &mut Scenario) -> u64 {
    reject(
        scenario,
        0,
        crate::rollout_support::INSTALL_METHOD,
        RejectCode::CanisterError,
        FaultCount::Times(1),
    );
    scenario.start_all(failure_policy(
        OnFailure::RollBack,
        FailureBudget::Count(0),
        3,
    ))
}

/// The deployer on a one-subnet simulator seeded with `seed`, which also seeds its random
/// faults. (`Fleet::new` always uses the default seed.)
pub fn seeded_fleet(seed: u64) -> Fleet {
    fleet_with(SimConfig {
        seed,
        ..SimConfig::default()
    })
}

/// SplitMix64: the campaign's choices of fleet and policy, reproducible from the seed.
pub struct CampaignRng(u64);

impl CampaignRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }
}
