//! Committed firings handed from the commit thread to the outbox drainer in
//! memory, so that under load the drainer publishes them without reading them
//! back from the store and decoding them again.
//!
//! The store stays the only source of truth; this queue is a shortcut the
//! drainer may take and always may skip. Invariants:
//! - only firings of a committed transaction are pushed, in `firing_seq`
//!   order (the commit thread pushes after each commit, and the ingest
//!   transactions run on that thread alone);
//! - [`Handoff::take_after`] hands out a run of consecutive seqs that starts
//!   right after the drainer's cursor, or nothing. Firings written elsewhere
//!   (wait answers, replay) are never pushed, and a full queue drops what
//!   comes: both leave a gap, and at a gap the drainer reads the store, which
//!   holds every pending firing;
//! - what is at or before the cursor was handed to NATS already (from the
//!   store or from here) and is dropped;
//! - a push of any firings wakes the drainer at once, from the commit
//!   thread (also when the queue was full: it then reads them from the
//!   store). This is the drainer's only wake-up for ingest commits.

use std::collections::VecDeque;
use std::sync::Mutex;

use signalbox_store::NewFiring;

/// How many firings may wait here. Past that, new ones are dropped (the
/// store has them): a drainer that fell that far behind reads the store.
pub(crate) const CAPACITY: usize = 16 * 1024;

/// The queue. See the module docs.
#[derive(Default)]
pub(crate) struct Handoff {
    queue: Mutex<VecDeque<NewFiring>>,
    /// Notified after a push of any firings.
    wake: tokio::sync::Notify,
}

impl Handoff {
    /// Queues committed firings (each with its `firing_seq` and message) and
    /// wakes the drainer if there were any; what does not fit under
    /// [`CAPACITY`] is dropped.
    pub(crate) fn push(&self, firings: impl IntoIterator<Item = NewFiring>) {
        let mut any = false;
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            for item in firings {
                any = true;
                if queue.len() < CAPACITY {
                    queue.push_back(item);
                }
            }
        }
        if any {
            self.wake.notify_one();
        }
    }

    /// Completes when a push of firings happened (at once if one did since
    /// the last wait).
    pub(crate) async fn pushed(&self) {
        self.wake.notified().await;
    }

    /// Drops every queued firing at or before `cursor` and returns up to
    /// `limit` firings whose seqs run `cursor + 1, cursor + 2, …` without a
    /// gap; nothing when the next queued seq is not `cursor + 1`.
    pub(crate) fn take_after(&self, cursor: u64, limit: usize) -> Vec<NewFiring> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        while queue.front().is_some_and(|f| f.seq <= cursor) {
            queue.pop_front();
        }
        let mut taken = Vec::new();
        let mut next = cursor.checked_add(1);
        while taken.len() < limit
            && let Some(expected) = next
            && queue.front().is_some_and(|f| f.seq == expected)
        {
            taken.extend(queue.pop_front());
            next = expected.checked_add(1);
        }
        taken
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// How many firings are queued.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(seq: u64) -> NewFiring {
        NewFiring {
            seq,
            firing: signalbox_model::Firing {
                firing_id: format!("f{seq}"),
                subscription: "s".into(),
                version: 1,
                action: signalbox_model::ActionKind::Publish,
                subject: "out".into(),
                params: Default::default(),
                signals: Vec::new(),
                created_at_ms: 0,
                traceparent: None,
            },
            message: Vec::new(),
        }
    }

    fn seqs(taken: &[NewFiring]) -> Vec<u64> {
        taken.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn hands_out_the_run_right_after_the_cursor() {
        let h = Handoff::default();
        h.push((5..=9).map(firing));
        assert_eq!(seqs(&h.take_after(4, 3)), vec![5, 6, 7]);
        assert_eq!(seqs(&h.take_after(7, 10)), vec![8, 9]);
        assert!(h.take_after(9, 10).is_empty());
    }

    #[test]
    fn drops_what_the_cursor_passed_and_stops_at_a_gap() {
        let h = Handoff::default();
        h.push([1, 2, 3, 6, 7].map(firing));
        // The drainer read 1..=4 from the store: 1-3 are dropped, 5 is missing.
        assert!(h.take_after(4, 10).is_empty());
        assert_eq!(h.len(), 2);
        // After it read 5 from the store, the run goes on from the queue.
        assert_eq!(seqs(&h.take_after(5, 10)), vec![6, 7]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn a_full_queue_drops_new_firings() {
        let h = Handoff::default();
        h.push((1..=CAPACITY as u64 + 5).map(firing));
        assert_eq!(h.len(), CAPACITY);
        h.push([firing(CAPACITY as u64 + 6)]);
        assert_eq!(h.len(), CAPACITY);
        let taken = h.take_after(0, CAPACITY + 10);
        assert_eq!(taken.len(), CAPACITY);
        // What was dropped comes from the store: the queue now has a gap.
        h.push([firing(CAPACITY as u64 + 7)]);
        assert!(h.take_after(CAPACITY as u64, 10).is_empty());
    }

    #[tokio::test]
    async fn a_push_wakes_the_drainer_and_an_empty_one_does_not() {
        let h = Handoff::default();
        h.push(Vec::new());
        let idle = tokio::time::timeout(std::time::Duration::from_millis(50), h.pushed()).await;
        assert!(idle.is_err(), "woken by a push that queued nothing");
        h.push([firing(1)]);
        tokio::time::timeout(std::time::Duration::from_secs(5), h.pushed())
            .await
            .expect("woken by the push");
    }

    #[test]
    fn the_largest_cursor_takes_nothing() {
        let h = Handoff::default();
        h.push([firing(u64::MAX)]);
        assert!(h.take_after(u64::MAX, 10).is_empty());
        assert_eq!(h.len(), 0);
    }
}
