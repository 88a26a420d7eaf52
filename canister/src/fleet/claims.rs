//! The claims of the active rollouts, on the heap. A rollout's claims end at once, in a message
//! whose cost does not grow with its children ([`Claims::end`]); their entries leave the map a
//! slice at a time afterwards ([`Claims::sweep`]), as the finished rollout stores its children
//! apart. Freeing 10,000 entries in the message of a rollout's last outcome cost 56 M
//! instructions (5.6 K per child), 0.56 B at 100,000.
//!
//! Each claim is taken under a generation, and a rollout's claims hold while its generation is
//! current: ending them forgets the generation, so the entries left are void; claiming again
//! (a rollback of a whole finished rollout) takes a new one, which leaves the void entries void.

use std::collections::BTreeMap;

use crate::engine::ChildId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Holder {
    rollout_id: u64,
    generation: u64,
}

#[derive(Default)]
pub(super) struct Claims {
    holders: BTreeMap<ChildId, Holder>,
    /// The generation of each rollout whose claims hold.
    current: BTreeMap<u64, u64>,
    /// Entries in `holders` per generation, void ones included.
    entries: BTreeMap<u64, u64>,
    next_generation: u64,
}

impl Claims {
    /// The rollout whose claim on the child holds, if any.
    pub(super) fn holder(&self, id: &ChildId) -> Option<u64> {
        self.holders
            .get(id)
            .filter(|holder| self.holds(holder))
            .map(|holder| holder.rollout_id)
    }

    fn holds(&self, holder: &Holder) -> bool {
        self.current.get(&holder.rollout_id) == Some(&holder.generation)
    }

    /// Children whose claims hold: a few rollouts' counts, whatever the fleet's size.
    pub(super) fn claimed(&self) -> u64 {
        self.current
            .values()
            .map(|generation| self.entries.get(generation).copied().unwrap_or(0))
            .sum()
    }

    /// Marks the child as held by `rollout_id`, unchecked.
    pub(super) fn insert(&mut self, id: ChildId, rollout_id: u64) {
        let generation = match self.current.get(&rollout_id) {
            Some(&generation) => generation,
            None => {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.current.insert(rollout_id, generation);
                generation
            }
        };
        let holder = Holder {
            rollout_id,
            generation,
        };
        if let Some(replaced) = self.holders.insert(id, holder) {
            self.forget_entry(replaced.generation);
        }
        *self.entries.entry(generation).or_insert(0) += 1;
    }

    /// Frees the child if `rollout_id` holds it (or held it: a void entry goes too). Returns
    /// whether its claim held.
    pub(super) fn remove(&mut self, id: &ChildId, rollout_id: u64) -> bool {
        let Some(&holder) = self
            .holders
            .get(id)
            .filter(|holder| holder.rollout_id == rollout_id)
        else {
            return false;
        };
        let held = self.holds(&holder);
        self.holders.remove(id);
        self.forget_entry(holder.generation);
        held
    }

    /// Ends every claim of the rollout, whichever children they are on.
    pub(super) fn end(&mut self, rollout_id: u64) {
        self.current.remove(&rollout_id);
    }

    /// Removes the named children's void entries of the rollout (claims that ended); a claim
    /// that holds stays.
    pub(super) fn sweep<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a ChildId>,
        rollout_id: u64,
    ) {
        for id in ids {
            let void = self
                .holders
                .get(id)
                .is_some_and(|holder| holder.rollout_id == rollout_id && !self.holds(holder));
            if void {
                self.remove(id, rollout_id);
            }
        }
    }

    fn forget_entry(&mut self, generation: u64) {
        if let Some(count) = self.entries.get_mut(&generation) {
            *count -= 1;
            if *count == 0 {
                self.entries.remove(&generation);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn entries(&self) -> usize {
        self.holders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ChildId {
        ChildId::new([n]).expect("one byte")
    }

    #[test]
    fn ended_claims_free_their_children_at_once_and_their_entries_as_swept() {
        let mut claims = Claims::default();
        for n in 0..4 {
            claims.insert(id(n), 7);
        }
        claims.insert(id(9), 8);
        claims.end(7);
        assert_eq!(claims.holder(&id(0)), None);
        assert_eq!(claims.claimed(), 1);
        assert_eq!(claims.entries(), 5, "nothing removed yet");
        claims.sweep(&[id(0), id(1), id(9)], 7);
        assert_eq!(claims.entries(), 3, "rollout 8's claim is not 7's to sweep");
        assert_eq!(claims.holder(&id(9)), Some(8));
        // Claimed again (a rollback of the whole rollout) before the sweep ended: the entries
        // left from before stay void, and a sweep leaves the new claims.
        claims.insert(id(2), 7);
        assert_eq!(claims.holder(&id(2)), Some(7));
        assert_eq!(claims.holder(&id(3)), None);
        assert_eq!(claims.claimed(), 2);
        claims.sweep(&[id(2), id(3)], 7);
        assert_eq!(claims.holder(&id(2)), Some(7));
        assert_eq!(claims.entries(), 2);
        assert!(claims.remove(&id(2), 7));
        assert!(!claims.remove(&id(9), 7));
        assert_eq!(claims.claimed(), 1);
    }
}
