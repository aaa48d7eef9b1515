//! The event queue: events ordered by (time, sequence number), so events at the same instant leave in
//! the order they were pushed and a run is reproducible bit for bit.
//!
//! Input: events pushed with their time. Output: events popped in time order, the queue's clock moved
//! to each popped event's time. An event earlier than the clock is refused with an error. Knows
//! nothing of what the events mean.

use crate::error::{Error, Result};
use crate::units::SimTime;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// An event with its time and the sequence number that breaks ties.
struct Entry<E> {
    time: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// Events in (time, push order); the clock is the time of the last event popped.
pub struct EventQueue<E> {
    now: SimTime,
    seq: u64,
    heap: BinaryHeap<Reverse<Entry<E>>>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }
}

impl<E> EventQueue<E> {
    /// The time of the last event popped (0 before the first).
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Queues `event` at `time`; an event before the clock is refused.
    pub fn push(&mut self, time: SimTime, event: E) -> Result<()> {
        if time < self.now {
            return Err(Error::Internal(format!(
                "an event was scheduled at {time} ns, before the current time {} ns",
                self.now
            )));
        }
        self.heap.push(Reverse(Entry {
            time,
            seq: self.seq,
            event,
        }));
        self.seq += 1;
        Ok(())
    }

    /// The earliest event (the first pushed among equal times), with the clock moved to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse(e) = self.heap.pop()?;
        self.now = e.time;
        Some((e.time, e.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_time_events_leave_in_push_order() {
        let mut q = EventQueue::default();
        q.push(5, 'c').unwrap();
        q.push(3, 'a').unwrap();
        q.push(5, 'd').unwrap();
        q.push(3, 'b').unwrap();
        q.push(5, 'e').unwrap();
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(3, 'a'), (3, 'b'), (5, 'c'), (5, 'd'), (5, 'e')]);
        assert_eq!(q.now(), 5);
    }

    #[test]
    fn an_event_before_the_clock_is_refused() {
        let mut q = EventQueue::default();
        q.push(10, 1).unwrap();
        assert_eq!(q.pop(), Some((10, 1)));
        q.push(10, 2).unwrap();
        let e = q.push(9, 3).unwrap_err().to_string();
        assert!(e.contains("9 ns") && e.contains("10 ns"), "{e}");
        assert_eq!(q.pop(), Some((10, 2)));
        assert_eq!(q.pop(), None);
    }
}
