//! The writes waiting for the Kubernetes API: Incidents opened, evidence that joined them, phase
//! changes. They wait while this instance does not lead (a follower keeps what it saw, to write
//! it when it takes over) and while the API does not answer (an outage also costs the Lease, so
//! the two are one case), and are written in order when it leads again, with the times they
//! were queued at.
//!
//! [`Pending`] is bounded twice — by count and by age — and counts what it drops, by
//! [`DropReason`]; the executor exports the counts and the depth as metrics. No IO here: the
//! tests drive it with passed-in time.

use cellwarden_models::Timestamp;
use std::collections::VecDeque;

/// Why a waiting write was dropped (the `reason` label of
/// `cellwarden_pending_writes_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was at its cap.
    Full,
    /// It waited longer than the queue's age bound (the leader of that time wrote it, or the
    /// API stayed away longer than the bound).
    Expired,
    /// The API refused it for good (a 4xx other than a conflict or throttling).
    Rejected,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Full => "full",
            DropReason::Expired => "expired",
            DropReason::Rejected => "rejected",
        }
    }
}

/// Which end gives way when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the newest: the first incidents of an outage are the fault, later ones mostly its
    /// consequences, and what was accepted stays.
    DropNewest,
    /// Drop the oldest: each entry carries the latest copy of its incident, so the newest says
    /// the most.
    DropOldest,
}

/// A bounded FIFO of `T`, each with the time it was queued.
#[derive(Debug)]
pub struct Pending<T> {
    items: VecDeque<(T, Timestamp)>,
    cap: usize,
    /// Entries older than this at [`Pending::expire`] are dropped, seconds.
    max_age_secs: i64,
    overflow: Overflow,
}

impl<T> Pending<T> {
    pub fn new(cap: usize, max_age_secs: i64, overflow: Overflow) -> Pending<T> {
        Pending {
            items: VecDeque::new(),
            cap: cap.max(1),
            max_age_secs,
            overflow,
        }
    }

    /// Queues `item` at `at`; false when the cap made something give way (the newest, i.e.
    /// `item`, or the oldest, by the queue's [`Overflow`]).
    pub fn push(&mut self, item: T, at: Timestamp) -> bool {
        if self.items.len() < self.cap {
            self.items.push_back((item, at));
            return true;
        }
        if self.overflow == Overflow::DropOldest {
            self.items.pop_front();
            self.items.push_back((item, at));
        }
        false
    }

    /// Drops the entries queued more than the age bound before `now`; returns how many.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let before = self.items.len();
        let oldest = now.plus_secs(-self.max_age_secs);
        self.items.retain(|(_, at)| *at >= oldest);
        before - self.items.len()
    }

    /// The oldest entry, taken out to be written.
    pub fn pop(&mut self) -> Option<(T, Timestamp)> {
        self.items.pop_front()
    }

    /// Puts back an entry whose write did not go through, ahead of the rest (order is kept).
    pub fn put_back(&mut self, item: T, at: Timestamp) {
        self.items.push_front((item, at));
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut (T, Timestamp)> {
        self.items.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// When the oldest entry was queued.
    pub fn oldest(&self) -> Option<Timestamp> {
        self.items.front().map(|(_, at)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + secs * 1000)
    }

    #[test]
    fn a_full_queue_refuses_the_newest_or_drops_the_oldest_by_its_overflow() {
        let mut q = Pending::new(2, 3600, Overflow::DropNewest);
        assert!(q.push("a", t(0)) && q.push("b", t(1)));
        assert!(!q.push("c", t(2)));
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(("a", t(0))), Some(("b", t(1))), None));

        let mut q = Pending::new(2, 3600, Overflow::DropOldest);
        q.push("a", t(0));
        q.push("b", t(1));
        assert!(!q.push("c", t(2)));
        assert_eq!((q.pop(), q.pop()), (Some(("b", t(1))), Some(("c", t(2)))));
    }

    #[test]
    fn entries_past_the_age_bound_expire_and_the_rest_keep_their_times_and_order() {
        let mut q = Pending::new(10, 60, Overflow::DropNewest);
        for (s, item) in [(0, "a"), (30, "b"), (90, "c")] {
            q.push(item, t(s));
        }
        // At 100 s, "a" (queued 100 s ago) is past the 60 s bound; "b" (70 s) too; "c" stays.
        assert_eq!(q.expire(t(100)), 2);
        assert_eq!(q.oldest(), Some(t(90)));
        // A write that failed goes back in front, with its own time.
        q.push("d", t(95));
        let (first, at) = q.pop().unwrap();
        q.put_back(first, at);
        assert_eq!((q.pop(), q.pop(), q.len()), (Some(("c", t(90))), Some(("d", t(95))), 0));
    }
}
