//! Consumer groups: a group reads a topic from its committed offset in each partition.
//! Offsets live either in the log's meta keyspace ([`EventLog::commit`]) or, for a
//! consumer whose effects go to redb, in `CONSUMER_TO_OFFSET` inside the same
//! transaction as the effects ([`store_offset`]), so effect and offset commit together.
//! A group that never committed starts at the oldest event kept; one whose committed
//! offset was deleted by retention is told it fell behind, never skipped forward.

use super::{EventLog, LogRecord, ReadError};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::tables::CONSUMER_TO_OFFSET;
use redb::{ReadTransaction, WriteTransaction};

/// Group names end up in keys: ASCII letters, digits, `.`, `_`, `-`, at most 100.
pub fn validate_group(group: &str) -> Result<()> {
    let ok = !group.is_empty()
        && group.len() <= 100
        && group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "group",
            "invalid_group",
            format!(
                "`{group}` is not a valid consumer group name (A-Z a-z 0-9 . _ -, at most 100)"
            ),
        ))
    }
}

/// The key of a committed offset, in the log's meta keyspace and in redb alike.
fn offset_key(group: &str, topic: &str, partition: u16) -> String {
    format!("{group}/{topic}/{partition}")
}

fn log_offset_key(group: &str, topic: &str, partition: u16) -> String {
    format!("group:{}", offset_key(group, topic, partition))
}

/// Stores `group`'s next offset for `topic`/`partition` in the caller's redb transaction:
/// the consumer's effects and its position commit together or not at all.
pub fn store_offset(
    tx: &WriteTransaction,
    group: &str,
    topic: &str,
    partition: u16,
    next_offset: u64,
) -> Result<()> {
    validate_group(group)?;
    tx.open_table(CONSUMER_TO_OFFSET)?
        .insert(offset_key(group, topic, partition).as_str(), next_offset)?;
    Ok(())
}

/// `group`'s next offset for `topic`/`partition` as stored in redb, if it ever stored one.
pub fn stored_offset(
    rtx: &ReadTransaction,
    group: &str,
    topic: &str,
    partition: u16,
) -> Result<Option<u64>> {
    let table = match rtx.open_table(CONSUMER_TO_OFFSET) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(table
        .get(offset_key(group, topic, partition).as_str())?
        .map(|v| v.value()))
}

impl EventLog {
    /// Records that `group` has processed `topic`/`partition` up to (not including)
    /// `next_offset`. Not fsynced: after a power cut a group may see a few events again,
    /// which consumers must tolerate anyway (at-least-once delivery).
    pub fn commit(&self, group: &str, topic: &str, partition: u16, next_offset: u64) -> Result<()> {
        self.commit_many(group, topic, &[(partition, next_offset)])
    }

    fn commit_many(&self, group: &str, topic: &str, offsets: &[(u16, u64)]) -> Result<()> {
        validate_group(group)?;
        super::validate_topic(topic)?;
        let mut batch = self.inner.db.batch();
        for &(partition, next_offset) in offsets {
            let end = self
                .watermarks(topic, partition)
                .map(|w| w.next)
                .unwrap_or(0);
            if partition >= self.partitions(topic) || next_offset > end {
                return Err(Error::invalid(
                    "offset",
                    "offset_out_of_range",
                    format!(
                        "{topic}/{partition} ends at offset {end}; cannot commit {next_offset}"
                    ),
                ));
            }
            batch.insert(
                &self.inner.meta,
                log_offset_key(group, topic, partition),
                next_offset.to_be_bytes(),
            );
        }
        batch.commit()?;
        Ok(())
    }

    /// `group`'s committed next offset for `topic`/`partition` in the log, if any.
    pub fn committed(&self, group: &str, topic: &str, partition: u16) -> Result<Option<u64>> {
        match self
            .inner
            .meta
            .get(log_offset_key(group, topic, partition))?
        {
            Some(v) => Ok(Some(u64::from_be_bytes(v.as_ref().try_into().map_err(
                |_| Error::Storage("log: corrupt committed offset".into()),
            )?))),
            None => Ok(None),
        }
    }

    /// A consumer for `group` on `topic`, resuming at the offsets committed in the log.
    pub fn consumer(&self, group: &str, topic: &str) -> Result<Consumer> {
        validate_group(group)?;
        super::validate_topic(topic)?;
        let positions = (0..self.partitions(topic))
            .map(|p| self.committed(group, topic, p))
            .collect::<Result<_>>()?;
        Ok(Consumer::new(self.clone(), group, topic, positions))
    }

    /// A consumer for `group` on `topic`, resuming at the offsets stored in redb by
    /// [`store_offset`] (for consumers that write their effects to redb).
    pub fn consumer_from_store(&self, group: &str, topic: &str, store: &Store) -> Result<Consumer> {
        validate_group(group)?;
        super::validate_topic(topic)?;
        let rtx = store.read()?;
        let positions = (0..self.partitions(topic))
            .map(|p| stored_offset(&rtx, group, topic, p))
            .collect::<Result<_>>()?;
        Ok(Consumer::new(self.clone(), group, topic, positions))
    }
}

/// Reads one topic for one group. Positions advance as records are polled; they become
/// the group's committed offsets only through [`Consumer::commit`] (log) or
/// [`Consumer::store_offsets`] (redb, in the caller's transaction).
#[derive(Clone)]
pub struct Consumer {
    log: EventLog,
    group: String,
    topic: String,
    /// Next offset to read per partition; `None` = never committed, start at the oldest kept.
    positions: Vec<Option<u64>>,
    /// Which partition the next poll starts with, so no partition starves another.
    start: usize,
    /// The event types this consumer decodes (all with `None`); see [`Consumer::only`].
    types: Option<&'static [&'static str]>,
    /// Records the last poll passed over for their type.
    skipped: usize,
}

impl Consumer {
    fn new(log: EventLog, group: &str, topic: &str, positions: Vec<Option<u64>>) -> Consumer {
        Consumer {
            log,
            group: group.to_string(),
            topic: topic.to_string(),
            positions,
            start: 0,
            types: None,
            skipped: 0,
        }
    }

    /// Decodes only events of these types; the rest are passed over (their offsets still
    /// count as consumed), which spares a consumer decoding what it would ignore.
    pub fn only(mut self, types: &'static [&'static str]) -> Consumer {
        self.types = Some(types);
        self
    }

    /// How many records the last [`Consumer::poll`] passed over for their type: with
    /// the records it returned, how far the poll moved.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Up to `max` records across partitions, each partition in offset order. A
    /// partition whose position was deleted by retention stops the poll with
    /// [`ReadError::FellBehind`]; the consumer decides what to do (usually rebuild from
    /// state, then [`Consumer::seek`] to the first available offset).
    pub fn poll(&mut self, max: usize) -> Result<Vec<LogRecord>, ReadError> {
        let count = usize::from(self.log.partitions(&self.topic));
        self.positions.resize(count, None);
        let mut out = Vec::new();
        let mut looked = 0;
        for i in 0..count {
            if looked >= max {
                break;
            }
            let p = (self.start + i) % count;
            let partition = p as u16;
            let from = match self.positions[p] {
                Some(o) => o,
                None => self
                    .log
                    .watermarks(&self.topic, partition)
                    .map(|w| w.low)
                    .unwrap_or(0),
            };
            let (records, next) =
                self.log
                    .read_types(&self.topic, partition, from, max - looked, self.types)?;
            if next > from {
                self.positions[p] = Some(next);
                looked += (next - from) as usize;
            }
            out.extend(records);
        }
        self.start = (self.start + 1) % count.max(1);
        self.skipped = looked - out.len();
        Ok(out)
    }

    /// Moves one partition's position, e.g. to `first_available` after a [`FellBehind`].
    pub fn seek(&mut self, partition: u16, offset: u64) {
        let p = usize::from(partition);
        if self.positions.len() <= p {
            self.positions.resize(p + 1, None);
        }
        self.positions[p] = Some(offset);
    }

    /// Where the next poll reads in each partition (`None`: from the oldest kept).
    pub fn positions(&self) -> &[Option<u64>] {
        &self.positions
    }

    /// Commits the current positions as the group's offsets in the log.
    pub fn commit(&self) -> Result<()> {
        let offsets: Vec<(u16, u64)> = self.set_positions().collect();
        if offsets.is_empty() {
            return Ok(());
        }
        self.log.commit_many(&self.group, &self.topic, &offsets)
    }

    /// Stores the current positions in the caller's redb transaction (see [`store_offset`]).
    pub fn store_offsets(&self, tx: &WriteTransaction) -> Result<()> {
        for (p, next) in self.set_positions() {
            store_offset(tx, &self.group, &self.topic, p, next)?;
        }
        Ok(())
    }

    fn set_positions(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.positions
            .iter()
            .enumerate()
            .filter_map(|(p, o)| o.map(|o| (p as u16, o)))
    }
}
