//! The requests the loop still needs: every request from the oldest unfinished one to the newest
//! arrival, indexed by request id. Finished requests leave from the front, in id order, to a
//! [`RequestSink`], so memory grows with the span of requests in flight, not with the run's length.

use crate::cluster::{Phase, Request};
use crate::error::Result;
use std::collections::VecDeque;
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

/// Requests `base..base + len`, indexed by id.
#[derive(Debug, Default)]
pub struct RequestWindow {
    base: u32,
    reqs: VecDeque<Request>,
    peak: usize,
}

fn is_finished(r: &Request) -> bool {
    matches!(r.phase, Phase::Completed | Phase::Rejected(_))
}

impl RequestWindow {
    /// Adds the next request; its id is the returned value.
    pub fn push(&mut self, r: Request) -> u32 {
        self.reqs.push_back(r);
        self.peak = self.peak.max(self.reqs.len());
        self.base + self.reqs.len() as u32 - 1
    }

    /// Requests held.
    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Most requests held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Hands the finished requests at the front that nothing refers to any more (not `pinned`) to
    /// `sink` and drops them.
    pub fn retire(&mut self, sink: &mut dyn RequestSink) -> Result<()> {
        while let Some(front) = self.reqs.front() {
            if !is_finished(front) || front.pinned {
                break;
            }
            sink.finished(self.base, front)?;
            self.reqs.pop_front();
            self.base += 1;
        }
        Ok(())
    }

    /// At the end of the run: hands every remaining finished request to `sink` (pins no longer
    /// matter) and returns how many were not finished.
    pub fn drain(&mut self, sink: &mut dyn RequestSink) -> Result<usize> {
        let mut unfinished = 0;
        while let Some(r) = self.reqs.pop_front() {
            if is_finished(&r) {
                sink.finished(self.base, &r)?;
            } else {
                unfinished += 1;
            }
            self.base += 1;
        }
        Ok(unfinished)
    }
}

impl Index<usize> for RequestWindow {
    type Output = Request;
    fn index(&self, id: usize) -> &Request {
        &self.reqs[id - self.base as usize]
    }
}

impl IndexMut<usize> for RequestWindow {
    fn index_mut(&mut self, id: usize) -> &mut Request {
        &mut self.reqs[id - self.base as usize]
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
    }
}
