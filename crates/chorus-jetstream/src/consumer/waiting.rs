//! The queue of pull requests waiting for messages (nats-server's `waitQueue`).
//!
//! Requests are served round robin: a request that still wants more goes to the back after
//! each message. With the `prioritized` priority policy the queue is kept ordered by the
//! requests' `priority` (lower first), first come first served within a priority.

use std::collections::VecDeque;

use super::api::PriorityGroup;

/// One pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRequest {
    /// Where the messages go.
    pub reply: String,
    /// Messages still owed (may go to 0 or below on the last pop).
    pub n: i64,
    /// Messages delivered so far.
    pub d: i64,
    /// Bytes still allowed (0: no byte limit).
    pub b: i64,
    /// Unix nanos; 0 for none.
    pub expires: i64,
    pub received: i64,
    /// Heartbeat interval (ns) and the time of the next one.
    pub hb: i64,
    pub hbt: i64,
    pub no_wait: bool,
    pub priority_group: Option<PriorityGroup>,
}

impl WaitingRequest {
    fn priority(&self) -> i64 {
        self.priority_group.as_ref().map_or(i32::MAX as i64, |g| g.priority)
    }
}

/// Bounded FIFO of [`WaitingRequest`]s.
#[derive(Debug, Clone, Default)]
pub struct WaitQueue {
    q: VecDeque<WaitingRequest>,
    max: usize,
    /// Last activity (unix nanos): request arrival, expiry, delivery. Drives the inactivity
    /// threshold of pull consumers.
    pub last: i64,
}

impl WaitQueue {
    pub fn new(max: i64) -> WaitQueue {
        WaitQueue { q: VecDeque::new(), max: max.max(0) as usize, last: 0 }
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.q.len() == self.max
    }

    pub fn iter(&self) -> impl Iterator<Item = &WaitingRequest> {
        self.q.iter()
    }

    /// Appends; `false` when full.
    pub fn add(&mut self, wr: WaitingRequest) -> bool {
        if self.is_full() {
            return false;
        }
        self.last = wr.received;
        self.q.push_back(wr);
        true
    }

    /// Inserts after every request of the same or a better (lower) priority; `false` when
    /// full.
    pub fn add_prioritized(&mut self, wr: WaitingRequest) -> bool {
        if self.is_full() {
            return false;
        }
        self.last = wr.received;
        self.insert_by_priority(wr);
        true
    }

    fn insert_by_priority(&mut self, wr: WaitingRequest) {
        let p = wr.priority();
        let at = self.q.iter().position(|w| w.priority() > p).unwrap_or(self.q.len());
        self.q.insert(at, wr);
    }

    pub fn peek(&self) -> Option<&WaitingRequest> {
        self.q.front()
    }

    pub(crate) fn peek_mut(&mut self) -> Option<&mut WaitingRequest> {
        self.q.front_mut()
    }

    pub fn remove_head(&mut self) -> Option<WaitingRequest> {
        self.q.pop_front()
    }

    /// Moves the head to the back.
    pub fn cycle(&mut self) {
        if let Some(wr) = self.q.pop_front() {
            self.q.push_back(wr);
        }
    }

    /// Takes one message for the head request: counts it, then requeues the request at the
    /// back (or, prioritized, behind its peers) if it wants more, or drops it. Returns the
    /// request as it is after counting.
    pub fn pop(&mut self, prioritized: bool) -> Option<WaitingRequest> {
        let len = self.q.len();
        let wr = self.q.front_mut()?;
        wr.d += 1;
        wr.n -= 1;
        let out = wr.clone();
        if out.n > 0 && len > 1 {
            let wr = self.q.pop_front().expect("non-empty");
            if prioritized {
                self.insert_by_priority(wr);
            } else {
                self.q.push_back(wr);
            }
        } else if out.n <= 0 {
            self.q.pop_front();
        }
        Some(out)
    }

    /// Drops every request, returning them.
    pub fn drain(&mut self) -> Vec<WaitingRequest> {
        self.q.drain(..).collect()
    }

    /// Finds the request answering on `reply`.
    pub fn find_mut(&mut self, reply: &str) -> Option<&mut WaitingRequest> {
        self.q.iter_mut().find(|w| w.reply == reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wr(reply: &str, n: i64, prio: Option<i64>) -> WaitingRequest {
        WaitingRequest {
            reply: reply.into(),
            n,
            d: 0,
            b: 0,
            expires: 0,
            received: 1,
            hb: 0,
            hbt: 0,
            no_wait: false,
            priority_group: prio.map(|p| PriorityGroup { priority: p, ..Default::default() }),
        }
    }

    #[test]
    fn round_robin_and_bounds() {
        let mut q = WaitQueue::new(2);
        assert!(q.add(wr("a", 2, None)));
        assert!(q.add(wr("b", 1, None)));
        assert!(!q.add(wr("c", 1, None)));
        assert_eq!(q.pop(false).unwrap().reply, "a");
        assert_eq!(q.peek().unwrap().reply, "b");
        assert_eq!(q.pop(false).unwrap().n, 0);
        let last = q.pop(false).unwrap();
        assert_eq!((last.reply.as_str(), last.n, last.d), ("a", 0, 2));
        assert!(q.is_empty());
    }

    #[test]
    fn prioritized_order() {
        let mut q = WaitQueue::new(10);
        q.add_prioritized(wr("low", 2, Some(5)));
        q.add_prioritized(wr("high", 2, Some(1)));
        q.add_prioritized(wr("high2", 1, Some(1)));
        let order: Vec<_> = q.iter().map(|w| w.reply.clone()).collect();
        assert_eq!(order, ["high", "high2", "low"]);
        // Requeued behind its peers, still ahead of lower priorities.
        q.pop(true);
        let order: Vec<_> = q.iter().map(|w| w.reply.clone()).collect();
        assert_eq!(order, ["high2", "high", "low"]);
    }
}
