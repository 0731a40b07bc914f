//! What a consumer reads from its stream, as a trait the runtime implements over the store
//! ([`ConsumerStream`]), plus a small in-memory stream ([`VecStream`]) for tests and tools.

use std::collections::BTreeMap;

use bytes::Bytes;
use chorus_proto::subject::subject_is_subset_of;

/// A consumer's subject filter: empty means every message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerFilter {
    subjects: Vec<String>,
}

impl ConsumerFilter {
    pub fn new(subjects: Vec<String>) -> ConsumerFilter {
        ConsumerFilter { subjects }
    }

    /// No filter.
    pub fn all() -> ConsumerFilter {
        ConsumerFilter::default()
    }

    pub fn is_all(&self) -> bool {
        self.subjects.is_empty()
    }

    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }

    /// Whether a message on the literal `subject` is for this consumer.
    pub fn matches(&self, subject: &str) -> bool {
        self.is_all()
            || self.subjects.iter().any(|f| subject_is_subset_of(subject.as_bytes(), f.as_bytes()))
    }
}

/// A stored message as the consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMsg {
    pub seq: u64,
    pub subject: String,
    pub header: Option<Bytes>,
    pub payload: Bytes,
    /// Unix nanos at which the stream stored it.
    pub timestamp: i64,
}

/// The stream's sequence range (nats-server's `FastState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// 0 while the stream has never held a message (and after a purge, the next sequence).
    pub first_seq: u64,
    pub last_seq: u64,
    pub msgs: u64,
}

/// Read access to the stream a consumer belongs to. Everything is a query; the consumer
/// never changes the stream (it asks through [`super::Action::AckedForRetention`]).
pub trait ConsumerStream {
    fn summary(&self) -> StreamSummary;
    /// The message at `seq`, if it is still stored.
    fn load(&self, seq: u64) -> Option<StreamMsg>;
    /// The first message at or after `start` matching `filter`.
    fn next_matching(&self, filter: &ConsumerFilter, start: u64) -> Option<StreamMsg>;
    /// Messages at or after `start` matching `filter`; with `last_per_subject`, subjects
    /// whose last message is at or after `start`.
    fn num_pending(&self, start: u64, filter: &ConsumerFilter, last_per_subject: bool) -> u64;
    /// The last sequence of every subject matching `filter`, ascending.
    fn last_seqs_per_subject(&self, filter: &ConsumerFilter) -> Vec<u64>;
    /// The last sequence matching the subject (pattern) `subject`, 0 if none.
    fn last_seq_matching(&self, subject: &str) -> u64;
    /// The first sequence at or after `start` matching `subject`, 0 if none.
    fn first_seq_matching(&self, subject: &str, start: u64) -> u64;
    /// The first sequence stored at or after `unix_nanos` (`last_seq + 1` if none).
    fn seq_for_time(&self, unix_nanos: i64) -> u64;
}

/// Who is listening: the runtime's subscription table, for pull request inboxes.
pub trait DeliveryInterest {
    fn has_interest(&self, subject: &str) -> bool;
}

/// Everyone is listening.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysInterested;

impl DeliveryInterest for AlwaysInterested {
    fn has_interest(&self, _: &str) -> bool {
        true
    }
}

impl<F: Fn(&str) -> bool> DeliveryInterest for F {
    fn has_interest(&self, subject: &str) -> bool {
        self(subject)
    }
}

/// A stream held in a `BTreeMap`: enough of a store for tests, fuzzing and examples.
#[derive(Debug, Clone, Default)]
pub struct VecStream {
    msgs: BTreeMap<u64, StreamMsg>,
    first: u64,
    last: u64,
}

impl VecStream {
    pub fn new() -> VecStream {
        VecStream::default()
    }

    /// Stores a message at `last + 1` and returns its sequence.
    pub fn append(&mut self, subject: &str, payload: &[u8], timestamp: i64) -> u64 {
        self.append_with_header(subject, None, payload, timestamp)
    }

    pub fn append_with_header(
        &mut self,
        subject: &str,
        header: Option<&[u8]>,
        payload: &[u8],
        timestamp: i64,
    ) -> u64 {
        self.last += 1;
        if self.msgs.is_empty() {
            self.first = self.last;
        }
        let seq = self.last;
        self.msgs.insert(
            seq,
            StreamMsg {
                seq,
                subject: subject.into(),
                header: header.map(Bytes::copy_from_slice),
                payload: Bytes::copy_from_slice(payload),
                timestamp,
            },
        );
        seq
    }

    /// Removes one message; returns its subject.
    pub fn remove(&mut self, seq: u64) -> Option<String> {
        let m = self.msgs.remove(&seq)?;
        self.first = self.msgs.keys().next().copied().unwrap_or(self.last + 1);
        Some(m.subject)
    }

    /// Removes everything; the next message gets `last + 1`.
    pub fn purge(&mut self) -> u64 {
        let n = self.msgs.len() as u64;
        self.msgs.clear();
        self.first = self.last + 1;
        n
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.msgs.contains_key(&seq)
    }
}

impl ConsumerStream for VecStream {
    fn summary(&self) -> StreamSummary {
        StreamSummary { first_seq: self.first, last_seq: self.last, msgs: self.msgs.len() as u64 }
    }

    fn load(&self, seq: u64) -> Option<StreamMsg> {
        self.msgs.get(&seq).cloned()
    }

    fn next_matching(&self, filter: &ConsumerFilter, start: u64) -> Option<StreamMsg> {
        self.msgs.range(start..).map(|(_, m)| m).find(|m| filter.matches(&m.subject)).cloned()
    }

    fn num_pending(&self, start: u64, filter: &ConsumerFilter, last_per_subject: bool) -> u64 {
        if !last_per_subject {
            return self.msgs.range(start..).filter(|(_, m)| filter.matches(&m.subject)).count()
                as u64;
        }
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for m in self.msgs.values().filter(|m| filter.matches(&m.subject)) {
            last.insert(&m.subject, m.seq);
        }
        last.values().filter(|&&s| s >= start).count() as u64
    }

    fn last_seqs_per_subject(&self, filter: &ConsumerFilter) -> Vec<u64> {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for m in self.msgs.values().filter(|m| filter.matches(&m.subject)) {
            last.insert(&m.subject, m.seq);
        }
        let mut seqs: Vec<u64> = last.into_values().collect();
        seqs.sort_unstable();
        seqs
    }

    fn last_seq_matching(&self, subject: &str) -> u64 {
        let f = ConsumerFilter::new(vec![subject.to_string()]);
        self.msgs.values().rev().find(|m| f.matches(&m.subject)).map_or(0, |m| m.seq)
    }

    fn first_seq_matching(&self, subject: &str, start: u64) -> u64 {
        let f = ConsumerFilter::new(vec![subject.to_string()]);
        self.next_matching(&f, start).map_or(0, |m| m.seq)
    }

    fn seq_for_time(&self, unix_nanos: i64) -> u64 {
        self.msgs.values().find(|m| m.timestamp >= unix_nanos).map_or(self.last + 1, |m| m.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_stream_queries() {
        let mut s = VecStream::new();
        assert_eq!(s.summary(), StreamSummary::default());
        s.append("a.1", b"x", 10);
        s.append("b.1", b"y", 20);
        s.append("a.1", b"z", 30);
        s.append("a.2", b"w", 40);
        let fa = ConsumerFilter::new(vec!["a.*".into()]);
        assert_eq!(s.next_matching(&fa, 2).unwrap().seq, 3);
        assert_eq!(s.num_pending(1, &fa, false), 3);
        assert_eq!(s.num_pending(1, &fa, true), 2);
        assert_eq!(s.last_seqs_per_subject(&fa), [3, 4]);
        assert_eq!(s.last_seq_matching("b.>"), 2);
        assert_eq!(s.first_seq_matching("a.2", 1), 4);
        assert_eq!(s.seq_for_time(25), 3);
        assert_eq!(s.seq_for_time(99), 5);
        s.remove(1);
        assert_eq!(s.summary(), StreamSummary { first_seq: 2, last_seq: 4, msgs: 3 });
        s.purge();
        assert_eq!(s.summary(), StreamSummary { first_seq: 5, last_seq: 4, msgs: 0 });
        assert_eq!(s.append("a.1", b"", 50), 5);
    }
}
