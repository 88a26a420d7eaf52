//! The deployer's event log, kept bounded without ever copying an event.
//!
//! Every engine event is appended with its rollout id; its sequence number counts every event
//! ever appended. The log is two generations, each a stable-structures `Log` with the sequence
//! number of its first event (memories 8, 18 and 21; 30, 31 and 32). Events go to the newer
//! one; once it holds [`EventRetention::per_generation`] events, the older one is emptied (its
//! headers rewritten: constant work) and is written next. The log so keeps between one and two
//! generations of the newest events. Until schema 3 the log was one generation that was
//! rewritten with its newest half once full: 0.42 B instructions in one message at 100,000
//! children, copying 100,000 events.
//!
//! Which generation is newer is not stored: it is the one whose first sequence number is the
//! larger (the first, memories 8 and 18, when both are 0). Emptying the older generation gives
//! it the sequence number after the newer one's last event, larger than any other, and a
//! generation never written (schema 2's memory, or release 0.1's) starts at 0: it is the older,
//! and empty.

use ic_stable_structures::{Log, Memory, StableCell};

use super::api::RolloutEvent;
use super::journal::{append, LoggedEvent, StableLog};
use crate::backup::SectionVisitor;
use crate::cbor::Cbor;

/// How many events the log keeps: between one and two generations of `per_generation`. An
/// event is about 100 to 300 bytes of CBOR, so each generation's memory stays under about 30 MB
/// at the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRetention {
    pub per_generation: u64,
}

impl EventRetention {
    pub const DEFAULT: Self = Self {
        per_generation: 100_000,
    };
}

/// The memories of one generation: its log's index and data, and its first sequence number.
#[derive(Clone)]
pub struct GenerationMemories<M> {
    pub index: M,
    pub data: M,
    pub base: M,
}

struct Generation<M: Memory> {
    /// `None` only while it is emptied.
    log: Option<StableLog<LoggedEvent, M>>,
    base: StableCell<u64, M>,
}

impl<M: Memory> Generation<M> {
    fn init(memories: GenerationMemories<M>) -> Self {
        Self {
            log: Some(Log::init(memories.index, memories.data)),
            base: StableCell::init(memories.base, 0),
        }
    }

    fn log(&self) -> &StableLog<LoggedEvent, M> {
        self.log.as_ref().expect("not being emptied")
    }

    fn first(&self) -> u64 {
        *self.base.get()
    }

    fn end(&self) -> u64 {
        self.first() + self.log().len()
    }

    fn get(&self, sequence: u64) -> RolloutEvent {
        let Cbor(logged) = self
            .log()
            .get(sequence - self.first())
            .expect("a sequence number within the generation");
        RolloutEvent {
            sequence,
            rollout_id: logged.rollout_id,
            at: logged.event.at,
            kind: logged.event.kind,
        }
    }

    /// Empties the generation; its first event will be `first`.
    fn restart_at(&mut self, first: u64) {
        let (index, data) = self.log.take().expect("not being emptied").into_memories();
        self.log = Some(Log::new(index, data));
        self.base.set(first);
    }
}

pub struct EventLog<M: Memory> {
    generations: [Generation<M>; 2],
    retention: EventRetention,
}

impl<M: Memory> EventLog<M> {
    pub fn init(first: GenerationMemories<M>, second: GenerationMemories<M>) -> Self {
        Self {
            generations: [Generation::init(first), Generation::init(second)],
            retention: EventRetention::DEFAULT,
        }
    }

    #[cfg(test)]
    pub fn set_retention(&mut self, retention: EventRetention) {
        assert!(retention.per_generation > 0, "a generation holds an event");
        self.retention = retention;
    }

    /// The index of the newer generation, written to; the other is older.
    fn newer(&self) -> usize {
        usize::from(self.generations[1].first() > self.generations[0].first())
    }

    fn older(&self) -> &Generation<M> {
        &self.generations[1 - self.newer()]
    }

    /// The sequence number of the oldest event kept (the next one's when none is).
    pub fn first(&self) -> u64 {
        let older = self.older();
        if !older.log().is_empty() {
            older.first()
        } else {
            self.generations[self.newer()].first()
        }
    }

    /// The sequence number the next event will have.
    pub fn end(&self) -> u64 {
        self.generations[self.newer()].end()
    }

    pub fn is_empty(&self) -> bool {
        self.first() == self.end()
    }

    /// The event of a sequence number in `first()..end()`.
    pub fn get(&self, sequence: u64) -> RolloutEvent {
        let newer = &self.generations[self.newer()];
        if sequence >= newer.first() {
            newer.get(sequence)
        } else {
            self.older().get(sequence)
        }
    }

    /// Appends an event, emptying the older generation first when the newer one is full.
    pub fn append(&mut self, event: LoggedEvent) {
        let newer = self.newer();
        if self.generations[newer].log().len() >= self.retention.per_generation {
            let next = self.generations[newer].end();
            self.generations[1 - newer].restart_at(next);
        }
        append(self.generations[self.newer()].log(), event);
    }

    /// See [`crate::backup`]: each generation as it is stored.
    pub fn visit_sections(&mut self, sections: &mut impl SectionVisitor) {
        let [first, second] = &mut self.generations;
        sections.log("events", first.log());
        sections.cell("events_base", &mut first.base);
        sections.log("events_second", second.log());
        sections.cell("events_second_base", &mut second.base);
    }
}

#[cfg(test)]
mod tests {
    use ic_stable_structures::VectorMemory;

    use super::*;
    use crate::engine::{Event, EventKind};

    fn memories() -> GenerationMemories<VectorMemory> {
        GenerationMemories {
            index: VectorMemory::default(),
            data: VectorMemory::default(),
            base: VectorMemory::default(),
        }
    }

    fn event(rollout_id: u64) -> LoggedEvent {
        LoggedEvent {
            rollout_id,
            event: Event {
                at: rollout_id * 10,
                kind: EventKind::Resumed,
            },
        }
    }

    fn kept(log: &EventLog<VectorMemory>) -> Vec<u64> {
        (log.first()..log.end())
            .map(|sequence| log.get(sequence).rollout_id)
            .collect()
    }

    /// The log keeps between one and two generations of the newest events, each under its
    /// sequence number, and an emptied generation's memory does not grow: its entries are
    /// written over.
    #[test]
    fn the_log_keeps_the_newest_generations_and_reuses_the_older_ones_memory() {
        let first = memories();
        let mut log = EventLog::init(first.clone(), memories());
        log.set_retention(EventRetention { per_generation: 4 });
        assert!(log.is_empty());
        assert_eq!((log.first(), log.end()), (0, 0));
        for sequence in 0..4 {
            log.append(event(sequence));
        }
        assert_eq!(kept(&log), [0, 1, 2, 3]);
        for sequence in 4..8 {
            log.append(event(sequence));
        }
        assert_eq!(kept(&log), [0, 1, 2, 3, 4, 5, 6, 7]);
        // The ninth empties the first generation, which holds it.
        log.append(event(8));
        assert_eq!(kept(&log), [4, 5, 6, 7, 8]);
        assert_eq!(log.newer(), 0);
        for sequence in 9..=13 {
            log.append(event(sequence));
        }
        assert_eq!(kept(&log), [8, 9, 10, 11, 12, 13]);
        assert_eq!(log.newer(), 1);
        // 10,000 events of about 20 bytes would take 3 pages of 64 KiB; a generation, one.
        for sequence in 14..10_000 {
            log.append(event(sequence));
            let kept = log.end() - log.first();
            assert!((4..=8).contains(&kept), "{kept} kept");
            assert_eq!(log.get(log.end() - 1).rollout_id, sequence);
        }
        assert_eq!(first.data.size(), 1);
    }

    /// Memory written before schema 3 holds one generation, in the first memories, under its
    /// base: it is the newer one, and the second, never written, is the older and empty. An
    /// upgrade reads a log of two generations as it was.
    #[test]
    fn a_log_of_one_generation_reads_as_the_newer_and_a_reopened_log_as_it_was() {
        let (first, second) = (memories(), memories());
        let reopen = |first: &GenerationMemories<VectorMemory>,
                      second: &GenerationMemories<VectorMemory>| {
            let mut log = EventLog::init(first.clone(), second.clone());
            log.set_retention(EventRetention { per_generation: 3 });
            log
        };
        {
            // As schema 2 left it: its log pruned once, its first event 7.
            let old: StableLog<LoggedEvent, VectorMemory> =
                Log::init(first.index.clone(), first.data.clone());
            for sequence in 7..12 {
                old.append(&Cbor(event(sequence))).unwrap();
            }
            StableCell::init(first.base.clone(), 0u64).set(7);
        }
        let mut log = reopen(&first, &second);
        assert_eq!(kept(&log), [7, 8, 9, 10, 11]);
        log.append(event(12));
        assert_eq!(kept(&log), [7, 8, 9, 10, 11, 12]);
        assert_eq!(log.newer(), 1);
        log.append(event(13));
        log.append(event(14));
        let log = reopen(&first, &second);
        assert_eq!(kept(&log), [7, 8, 9, 10, 11, 12, 13, 14]);
    }
}
