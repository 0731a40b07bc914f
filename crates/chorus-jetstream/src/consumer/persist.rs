//! The durable state of a consumer (nats-server's `ConsumerState`) and the updates its
//! consumer store applies to it.
//!
//! nats-server keeps two views of a consumer: the leader's working state and the store's
//! state, which is what survives a restart, what raft replicates (`updateDelivered`,
//! `updateAcks`), and what `ConsumerInfo` reports for `delivered` and `ack_floor`. The two
//! differ in small ways (the store's floors move only with deliveries and acks it is told
//! about), so we keep the store's view as its own value with the store's own rules:
//! [`ConsumerState::update_delivered`] and [`ConsumerState::update_acks`] are what a
//! follower applying a log would call too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{AckPolicy, ConsumerConfig};
use crate::go::Timestamp;

/// A consumer sequence with its stream sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencePair {
    #[serde(rename = "consumer_seq")]
    pub consumer: u64,
    #[serde(rename = "stream_seq")]
    pub stream: u64,
}

/// A delivered, not yet acknowledged message: its consumer sequence and delivery time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The consumer sequence of its first delivery.
    pub sequence: u64,
    /// Unix nanos of the (last) delivery.
    #[serde(rename = "ts")]
    pub timestamp: i64,
}

/// Why the store refused an update (nats-server logs these and carries on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("no ack policy")]
    NoAckPolicy,
    #[error("no message found")]
    NotPending,
}

/// What a consumer store keeps, keyed by stream sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerState {
    pub delivered: SequencePair,
    pub ack_floor: SequencePair,
    /// Only for ack policies other than none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<u64, Pending>,
    /// Redelivery counts (deliveries minus one) of messages delivered more than once.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redelivered: BTreeMap<u64, u64>,
}

impl ConsumerState {
    /// `SetStarting`: positions a new consumer just before stream sequence `sseq + 1`.
    pub fn set_starting(&mut self, sseq: u64) {
        self.delivered.stream = sseq;
        self.ack_floor.stream = sseq;
    }

    /// Whether a memory consumer store would say it has state (a file store always does
    /// once created).
    pub fn has_state(&self) -> bool {
        self.delivered.consumer != 0 || self.delivered.stream != 0
    }

    /// `UpdateDelivered`: message `sseq` went out as consumer sequence `dseq`, delivery `dc`,
    /// at `ts`.
    pub fn update_delivered(
        &mut self,
        dseq: u64,
        sseq: u64,
        dc: u64,
        ts: i64,
        ack_policy: AckPolicy,
        max_deliver: i64,
    ) -> Result<(), StateError> {
        if dc != 1 && ack_policy == AckPolicy::None {
            return Err(StateError::NoAckPolicy);
        }
        // A replay of an old log entry.
        if dseq <= self.ack_floor.consumer {
            return Ok(());
        }
        if ack_policy != AckPolicy::None {
            if sseq <= self.delivered.stream {
                if let Some(p) = self.pending.get_mut(&sseq) {
                    p.timestamp = ts;
                }
            } else {
                self.pending.insert(sseq, Pending { sequence: dseq, timestamp: ts });
            }
            self.delivered.consumer = self.delivered.consumer.max(dseq);
            self.delivered.stream = self.delivered.stream.max(sseq);
            if dc > 1 {
                if max_deliver > 0 && dc > max_deliver as u64 {
                    self.pending.remove(&sseq);
                }
                let r = self.redelivered.entry(sseq).or_insert(0);
                if *r < dc - 1 {
                    *r = dc - 1;
                }
            }
        } else {
            if dseq > self.delivered.consumer {
                self.delivered.consumer = dseq;
                self.ack_floor.consumer = dseq;
            }
            if sseq > self.delivered.stream {
                self.delivered.stream = sseq;
                self.ack_floor.stream = sseq;
            }
        }
        Ok(())
    }

    /// `UpdateAcks`: consumer sequence `dseq` / stream sequence `sseq` was acknowledged.
    pub fn update_acks(
        &mut self,
        dseq: u64,
        sseq: u64,
        ack_policy: AckPolicy,
    ) -> Result<(), StateError> {
        if ack_policy == AckPolicy::None {
            return Err(StateError::NoAckPolicy);
        }
        self.redelivered.remove(&sseq);
        if dseq <= self.ack_floor.consumer {
            return Ok(());
        }
        if !self.pending.contains_key(&sseq) {
            return Err(StateError::NotPending);
        }
        if matches!(ack_policy, AckPolicy::All | AckPolicy::FlowControl) {
            self.ack_floor = SequencePair { consumer: dseq, stream: sseq };
            let below: Vec<u64> = self.pending.range(..=sseq).map(|(s, _)| *s).collect();
            for s in below {
                self.pending.remove(&s);
                self.redelivered.remove(&s);
            }
            return Ok(());
        }
        let mut dseq = dseq;
        if let Some(p) = self.pending.remove(&sseq)
            && dseq > p.sequence
            && p.sequence > 0
        {
            dseq = p.sequence;
        }
        if self.pending.is_empty() {
            self.ack_floor = self.delivered;
        } else if dseq == self.ack_floor.consumer + 1 {
            self.ack_floor = SequencePair { consumer: dseq, stream: sseq };
            if self.delivered.consumer > dseq
                && let Some((&ss, p)) = self.pending.range(sseq + 1..=self.delivered.stream).next()
                && p.sequence > 0
            {
                self.ack_floor = SequencePair { consumer: p.sequence - 1, stream: ss - 1 };
            }
        }
        Ok(())
    }

    /// Drops redelivery counts below `seq` (`RemoveRedeliveredBelow`).
    pub fn remove_redelivered_below(&mut self, seq: u64) {
        if seq > 0 {
            self.redelivered.retain(|&s, _| s >= seq);
        }
    }
}

/// Everything needed to bring a consumer back: the blob for the store's consumer entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSnapshot {
    pub stream: String,
    pub name: String,
    pub created: Timestamp,
    pub config: ConsumerConfig,
    pub state: ConsumerState,
}

/// Why a snapshot did not decode.
#[derive(Debug, thiserror::Error)]
#[error("consumer snapshot does not decode: {0}")]
pub struct SnapshotError(#[from] serde_json::Error);

impl ConsumerSnapshot {
    /// The bytes to store (JSON: stable, and readable when debugging a store).
    pub fn encode(&self) -> Vec<u8> {
        crate::go::to_json_vec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<ConsumerSnapshot, SnapshotError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_acks_move_the_floor_over_gaps() {
        let mut s = ConsumerState::default();
        for (d, ss) in [(1, 10), (2, 11), (3, 12)] {
            s.update_delivered(d, ss, 1, 0, AckPolicy::Explicit, -1).unwrap();
        }
        assert_eq!(s.delivered, SequencePair { consumer: 3, stream: 12 });
        s.update_acks(2, 11, AckPolicy::Explicit).unwrap();
        assert_eq!(s.ack_floor, SequencePair::default());
        s.update_acks(1, 10, AckPolicy::Explicit).unwrap();
        // 2 was acked already, so the floor jumps to just below 3.
        assert_eq!(s.ack_floor, SequencePair { consumer: 2, stream: 11 });
        s.update_acks(3, 12, AckPolicy::Explicit).unwrap();
        assert_eq!(s.ack_floor, s.delivered);
        assert!(s.pending.is_empty());
        assert_eq!(s.update_acks(3, 12, AckPolicy::Explicit), Ok(()));
        assert_eq!(s.update_acks(4, 13, AckPolicy::Explicit), Err(StateError::NotPending));
    }

    #[test]
    fn redeliveries_are_counted_and_capped() {
        let mut s = ConsumerState::default();
        s.update_delivered(1, 5, 1, 0, AckPolicy::Explicit, 2).unwrap();
        s.update_delivered(1, 5, 2, 9, AckPolicy::Explicit, 2).unwrap();
        assert_eq!(s.redelivered.get(&5), Some(&1));
        assert_eq!(s.pending.get(&5), Some(&Pending { sequence: 1, timestamp: 9 }));
        s.update_delivered(1, 5, 3, 9, AckPolicy::Explicit, 2).unwrap();
        assert!(s.pending.is_empty());
        assert_eq!(s.redelivered.get(&5), Some(&2));
        assert_eq!(
            s.update_delivered(1, 6, 2, 0, AckPolicy::None, -1),
            Err(StateError::NoAckPolicy)
        );
    }

    #[test]
    fn ack_all_clears_everything_below() {
        let mut s = ConsumerState::default();
        for (d, ss) in [(1, 1), (2, 3), (3, 4)] {
            s.update_delivered(d, ss, 1, 0, AckPolicy::All, -1).unwrap();
        }
        s.update_acks(2, 3, AckPolicy::All).unwrap();
        assert_eq!(s.ack_floor, SequencePair { consumer: 2, stream: 3 });
        assert_eq!(s.pending.keys().copied().collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut state = ConsumerState::default();
        state.update_delivered(1, 7, 1, 42, AckPolicy::Explicit, -1).unwrap();
        state.update_delivered(1, 7, 2, 43, AckPolicy::Explicit, -1).unwrap();
        let snap = ConsumerSnapshot {
            stream: "S".into(),
            name: "C".into(),
            created: Timestamp::from_unix_nanos(5),
            config: ConsumerConfig { durable: "C".into(), ..Default::default() },
            state,
        };
        let back = ConsumerSnapshot::decode(&snap.encode()).unwrap();
        assert_eq!(back, snap);
        assert!(ConsumerSnapshot::decode(b"{").is_err());
    }
}
