//! The children of the checkpointed rollouts, stored apart from their checkpoints (memory 29)
//! in runs of [`CHILDREN_PER_RUN`] by position, so that a checkpoint rewrites only the runs
//! whose children changed since the last one: a fold costs what the steps since the last fold
//! changed, not the rollout's size. A checkpoint that held its children rewrote all of them at
//! every fold (368 M instructions at 10,000 children, 3.6 B at 100,000).
//!
//! A rollout's runs are removed a slice at a time once its checkpoint is gone (it finished and
//! its children were stored apart, `finished`), so that no message pays for a whole fleet's.

use std::collections::BTreeSet;

use ic_stable_structures::{Memory, StableBTreeMap};

use crate::backup::SectionVisitor;
use crate::cbor::CborBytes;
use crate::engine::{Child, Rollout};

/// Children in one run: a changed child rewrites its run (about 0.6 M instructions).
pub(super) const CHILDREN_PER_RUN: usize = 32;

/// Runs of rollouts without a checkpoint removed per message: a rollout of 1,000 children
/// leaves 32, of 100,000 children 3,125. With 16, the timer message that removed them beside
/// its other work was the largest of a 10,000-child rollout (35.2 M instructions, 10.4 % over
/// the 1,000-child rollout's largest); with 8, a fold is (29.7 M).
const PRUNE_SLICE: usize = 8;

/// The rollout id in the high 64 bits, the run's number (its first child's position over
/// [`CHILDREN_PER_RUN`]) in the low 32: a rollout's runs are one range, in order.
fn run_key(rollout_id: u64, run: u32) -> u128 {
    (u128::from(rollout_id) << 32) | u128::from(run)
}

fn rollout_of(key: u128) -> u64 {
    (key >> 32) as u64
}

/// The checkpointed rollouts' children, see the module docs.
pub(super) struct CheckpointChildren<M: Memory> {
    runs: StableBTreeMap<u128, CborBytes<Vec<Child>>, M>,
    /// Runs written since the deployer started: what tests of the checkpoints' cost count.
    #[cfg(test)]
    pub(super) runs_written: usize,
}

impl<M: Memory> CheckpointChildren<M> {
    pub(super) fn init(memory: M) -> Self {
        Self {
            runs: StableBTreeMap::init(memory),
            #[cfg(test)]
            runs_written: 0,
        }
    }

    /// Writes the runs holding the `changed` positions of the rollout's children, or every run
    /// when `changed` is `None`.
    pub(super) fn store(
        &mut self,
        rollout_id: u64,
        engine: &Rollout,
        changed: Option<&BTreeSet<u32>>,
    ) {
        let children = engine.children();
        let runs: Vec<u32> = match changed {
            Some(changed) => {
                let runs: BTreeSet<u32> = changed
                    .iter()
                    .map(|&position| position / CHILDREN_PER_RUN as u32)
                    .collect();
                runs.into_iter().collect()
            }
            None => (0..children.len().div_ceil(CHILDREN_PER_RUN) as u32).collect(),
        };
        for &run in &runs {
            self.write_run(rollout_id, run, children);
        }
    }

    /// Writes the runs of a rollout being planned whose children are all made, from the
    /// `stored` first (a whole number of runs); the last run, when not full, once `all` the
    /// children are made. Returns how many children are stored.
    pub(super) fn store_from(
        &mut self,
        rollout_id: u64,
        children: &[Child],
        stored: usize,
        all: bool,
    ) -> usize {
        let end = if all {
            children.len()
        } else {
            children.len() - children.len() % CHILDREN_PER_RUN
        };
        for start in (stored..end).step_by(CHILDREN_PER_RUN) {
            self.write_run(rollout_id, (start / CHILDREN_PER_RUN) as u32, children);
        }
        end
    }

    fn write_run(&mut self, rollout_id: u64, run: u32, children: &[Child]) {
        let start = run as usize * CHILDREN_PER_RUN;
        let end = (start + CHILDREN_PER_RUN).min(children.len());
        let bytes = CborBytes::encode_items(&children[start..end]);
        self.runs.insert(run_key(rollout_id, run), bytes);
        #[cfg(test)]
        {
            self.runs_written += 1;
        }
    }

    /// The last rollout with runs stored: a rollout id is not given again while runs of a
    /// refused plan may remain.
    pub(super) fn last_rollout(&self) -> Option<u64> {
        self.runs.keys().next_back().map(rollout_of)
    }

    /// The rollout's children, in their order.
    pub(super) fn load(&self, rollout_id: u64) -> Vec<Child> {
        self.runs
            .range(run_key(rollout_id, 0)..=run_key(rollout_id, u32::MAX))
            .flat_map(|entry| entry.value().decode())
            .collect()
    }

    /// Removes up to [`PRUNE_SLICE`] runs of rollouts that `is_checkpointed` says have no
    /// checkpoint any more. Returns whether such runs may remain.
    pub(super) fn prune_slice(&mut self, is_checkpointed: impl Fn(u64) -> bool) -> bool {
        let mut from = 0;
        let mut removed = 0;
        while let Some(key) = self.runs.range(from..).next().map(|entry| *entry.key()) {
            let rollout_id = rollout_of(key);
            if is_checkpointed(rollout_id) {
                // Skip the rollout's runs: they are its checkpoint's.
                match rollout_id.checked_add(1) {
                    Some(next) => from = run_key(next, 0),
                    None => return false,
                }
                continue;
            }
            if removed == PRUNE_SLICE {
                return true;
            }
            self.runs.remove(&key);
            removed += 1;
        }
        false
    }

    /// The runs stored for a rollout.
    #[cfg(test)]
    pub(super) fn runs_stored(&self, rollout_id: u64) -> usize {
        self.runs
            .range(run_key(rollout_id, 0)..=run_key(rollout_id, u32::MAX))
            .count()
    }

    /// Removes the rollout's runs, as a checkpoint of schema 1 has none.
    #[cfg(test)]
    pub(super) fn remove_all(&mut self, rollout_id: u64) {
        while self.prune_slice(|other| other != rollout_id) {}
    }

    pub(super) fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        sections.map("checkpoint_children", &mut self.runs);
    }
}
