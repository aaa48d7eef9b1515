//! The requests the loop still needs: every request from the oldest unfinished one to the newest
//! arrival, indexed by request id. Finished requests leave from the front, in id order, to a
//! [`RequestSink`], so memory grows with the span of requests in flight, not with the run's length.

use super::{Phase, Request};
use crate::error::Result;
use std::ops::{Index, IndexMut};

/// Receives each request once it is finished (completed or rejected), in request-id order.
pub trait RequestSink {
    fn finished(&mut self, id: u32, request: &Request) -> Result<()>;
}

/// Keeps every finished request, in id order (for tests, replays and the in-memory run).
impl RequestSink for Vec<Request> {
    fn finished(&mut self, id: u32, request: &Request) -> Result<()> {
        let _ = id;
        self.push(request.clone());
        Ok(())
    }
}

/// Requests from the oldest not yet retired to the newest arrival, indexed by id. A plain vector with
/// a moving front (indexing is one subtraction, as cheap as the flat array it replaces); the retired
/// prefix is dropped once it is at least half the vector, so memory stays within twice the requests
/// held.
#[derive(Debug, Default)]
pub struct RequestWindow {
    /// Id of `reqs[0]`.
    first_id: u32,
    /// Index in `reqs` of the oldest request not retired.
    front: usize,
    reqs: Vec<Request>,
    peak: usize,
}

/// Retired requests kept before the vector is compacted.
const COMPACT_AFTER: usize = 1024;

fn is_finished(r: &Request) -> bool {
    matches!(r.phase, Phase::Completed | Phase::Rejected(_))
}

impl RequestWindow {
    /// Adds the next request; its id is the returned value.
    pub fn push(&mut self, r: Request) -> u32 {
        self.reqs.push(r);
        self.peak = self.peak.max(self.len());
        self.first_id + self.reqs.len() as u32 - 1
    }

    /// Requests held.
    pub fn len(&self) -> usize {
        self.reqs.len() - self.front
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most requests held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Hands the finished requests at the front that nothing refers to any more (not `pinned`) to
    /// `sink` and drops them.
    pub fn retire(&mut self, sink: &mut dyn RequestSink) -> Result<()> {
        while let Some(r) = self.reqs.get(self.front) {
            if !is_finished(r) || r.pinned {
                break;
            }
            sink.finished(self.first_id + self.front as u32, r)?;
            self.front += 1;
        }
        if self.front >= COMPACT_AFTER && self.front * 2 >= self.reqs.len() {
            self.reqs.drain(..self.front);
            self.first_id += self.front as u32;
            self.front = 0;
        }
        Ok(())
    }

    /// At the end of the run: hands every remaining finished request to `sink` (pins no longer
    /// matter) and returns how many were not finished.
    pub fn drain(&mut self, sink: &mut dyn RequestSink) -> Result<usize> {
        let mut unfinished = 0;
        for (k, r) in self.reqs.iter().enumerate().skip(self.front) {
            if is_finished(r) {
                sink.finished(self.first_id + k as u32, r)?;
            } else {
                unfinished += 1;
            }
        }
        self.first_id += self.reqs.len() as u32;
        self.front = 0;
        self.reqs.clear();
        Ok(unfinished)
    }
}

impl Index<usize> for RequestWindow {
    type Output = Request;
    #[inline]
    fn index(&self, id: usize) -> &Request {
        &self.reqs[id - self.first_id as usize]
    }
}

impl IndexMut<usize> for RequestWindow {
    #[inline]
    fn index_mut(&mut self, id: usize) -> &mut Request {
        &mut self.reqs[id - self.first_id as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_requests_leave_in_id_order_and_pins_hold_them() {
        let mut w = RequestWindow::default();
        for i in 0..4 {
            assert_eq!(w.push(Request::new(i, 8, 4)), i as u32);
        }
        let mut out: Vec<Request> = Vec::new();
        w[1].phase = Phase::Completed;
        w.retire(&mut out).unwrap();
        assert!(out.is_empty(), "request 0 is still running");
        w[0].phase = Phase::Completed;
        w[0].pinned = true;
        w.retire(&mut out).unwrap();
        assert!(out.is_empty(), "a pinned request stays");
        w[0].pinned = false;
        w.retire(&mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(w.len(), 2);
        assert_eq!(w[2].arrival_ns, 2);
        assert_eq!(w.push(Request::new(9, 8, 4)), 4);
        w[3].phase = Phase::Completed;
        assert_eq!(w.drain(&mut out).unwrap(), 2);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].arrival_ns, 3);
        assert_eq!(w.peak(), 4);
        assert!(w.is_empty());

        // Long runs compact the retired prefix: the vector stays near the requests held.
        let mut w = RequestWindow::default();
        for i in 0..10_000u64 {
            let id = w.push(Request::new(i, 8, 4));
            w[id as usize].phase = Phase::Completed;
            w.retire(&mut out).unwrap();
            assert!(w.reqs.len() <= 2 * COMPACT_AFTER);
            assert_eq!(w.len(), 0);
        }
        assert_eq!(out.len(), 10_003);
        assert_eq!(out[10_002].arrival_ns, 9_999);
    }
}
