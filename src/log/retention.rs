//! Retention: events older than `log.retention_hours` (by append time) and, per topic,
//! the oldest events beyond `log.retention_bytes` are deleted, a whole stored batch at a
//! time and always from the low end of a partition, moving its low watermark up in the
//! same fjall write. Readers behind the
//! new watermark are told they fell behind; nothing else changes for them.

use super::batch;
use super::{EventLog, Topic, lock, unix_ms};
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

/// Batches deleted per fjall write, so a large sweep does not build one huge write.
const CHUNK: usize = 10_000;

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    /// Events.
    pub deleted: u64,
    /// Stored (compressed) bytes.
    pub bytes: u64,
}

/// The stored batch at the low end of a partition: its offsets, stored size and append time.
struct Head {
    base: u64,
    end: u64,
    size: u64,
    appended_ms: i64,
}

impl EventLog {
    /// Runs one retention sweep over every topic now (the background task calls this
    /// every `log.retention_interval_secs`).
    pub fn enforce_retention(&self) -> Result<RetentionReport> {
        let _one_at_a_time = lock(&self.inner.retention);
        let cfg = &self.inner.config;
        let horizon = self.clock().now() - time::Duration::hours(cfg.retention_hours as i64);
        let cutoff_ms = unix_ms(horizon);
        let topics: Vec<Topic> = lock(&self.inner.topics).values().cloned().collect();
        let mut report = RetentionReport::default();
        for topic in topics {
            let doomed = select(&topic, cutoff_ms, cfg.retention_bytes)?;
            for chunk in doomed.chunks(CHUNK) {
                let r = self.delete(&topic.info.name, chunk)?;
                report.deleted += r.deleted;
                report.bytes += r.bytes;
            }
        }
        if report.deleted > 0 {
            tracing::info!(
                deleted = report.deleted,
                bytes = report.bytes,
                "log retention"
            );
        }
        Ok(report)
    }

    /// Deletes `doomed` (each partition's entries ascending from its low watermark) and
    /// moves the watermarks, in one batch.
    fn delete(&self, topic: &str, doomed: &[(u16, Head)]) -> Result<RetentionReport> {
        let mut topics = lock(&self.inner.topics);
        let Some(current) = topics.get(topic) else {
            return Ok(RetentionReport::default());
        };
        let mut t = current.clone();
        let mut write = self.inner.db.batch();
        let mut report = RetentionReport::default();
        for (p, head) in doomed {
            let Some(part) = t.info.partitions.get_mut(usize::from(*p)) else {
                continue;
            };
            write.remove(&t.keyspace, batch::key(*p, head.base));
            part.low = part.low.max(head.end);
            part.bytes = part.bytes.saturating_sub(head.size);
            report.deleted += head.end - head.base;
            report.bytes += head.size;
        }
        write.insert(
            &self.inner.meta,
            super::topic_meta_key(topic),
            serde_json::to_vec(&t.info)?,
        );
        write.commit()?;
        topics.insert(topic.to_string(), t);
        Ok(report)
    }
}

/// Chooses what to delete in one topic: first every record appended before `cutoff_ms`
/// (per partition, from the low end, stopping at the first younger one), then, while the
/// topic is over `max_bytes`, the oldest remaining head across partitions.
fn select(topic: &Topic, cutoff_ms: i64, max_bytes: u64) -> Result<Vec<(u16, Head)>> {
    let mut heads = BTreeMap::new();
    for (p, info) in topic.info.partitions.iter().enumerate() {
        let p = p as u16;
        if info.low < info.next {
            let iter = topic
                .keyspace
                .range(batch::key(p, info.low)..batch::key(p, info.next))
                .map(|item| -> Result<Head> {
                    let (k, v) = item.into_inner()?;
                    let (_, base) = batch::parse_key(&k)?;
                    let h = batch::header(&v)?;
                    Ok(Head {
                        base,
                        end: base + u64::from(h.count),
                        size: (batch::KEY_LEN + v.len()) as u64,
                        appended_ms: h.appended_ms,
                    })
                })
                .peekable();
            heads.insert(p, iter);
        }
    }
    let mut total = topic.info.bytes();
    let mut doomed = Vec::new();
    // By age.
    for (p, iter) in heads.iter_mut() {
        while peek_appended(iter)?.is_some_and(|t| t < cutoff_ms) {
            if let Some(h) = iter.next().transpose()? {
                total = total.saturating_sub(h.size);
                doomed.push((*p, h));
            }
        }
    }
    // By size: always the oldest head across the topic's partitions.
    while total > max_bytes {
        let mut oldest: Option<(u16, i64)> = None;
        for (p, iter) in heads.iter_mut() {
            if let Some(t) = peek_appended(iter)?
                && oldest.is_none_or(|(_, o)| t < o)
            {
                oldest = Some((*p, t));
            }
        }
        let Some((p, _)) = oldest else { break };
        if let Some(h) = heads.get_mut(&p).and_then(|i| i.next()).transpose()? {
            total = total.saturating_sub(h.size);
            doomed.push((p, h));
        }
    }
    Ok(doomed)
}

/// The append time of the next record, or the error reading it.
fn peek_appended(
    iter: &mut std::iter::Peekable<impl Iterator<Item = Result<Head>>>,
) -> Result<Option<i64>> {
    match iter.peek() {
        Some(Ok(h)) => Ok(Some(h.appended_ms)),
        Some(Err(_)) => match iter.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// The background retention sweep. Dropping it (or [`RetentionHandle::stop`]) ends it.
pub struct RetentionHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a thread that sweeps every `interval` (first sweep right away).
pub fn spawn(log: EventLog, interval: Duration) -> Result<RetentionHandle> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("souk-log-retention".into())
        .spawn(move || {
            loop {
                if let Err(e) = log.enforce_retention() {
                    tracing::error!(error = %e, "log retention failed; retrying next interval");
                }
                match stopped.recv_timeout(interval) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        })
        .map_err(|e| crate::Error::Internal(format!("cannot start log retention: {e}")))?;
    Ok(RetentionHandle {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl RetentionHandle {
    /// Ends the sweep (waiting for a running one to finish).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RetentionHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, event};
    use super::*;
    use crate::clock::Clock;
    use crate::config::LogConfig;

    #[test]
    fn age_retention_moves_the_low_watermark_and_readers_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let log = EventLog::open(dir.path(), &config(2), clock.clone()).unwrap();
        let old: Vec<_> = (0..30).map(|i| event(&format!("o-{i}"))).collect();
        log.append(&old).unwrap();
        clock.advance(time::Duration::hours(24 * 8));
        let young: Vec<_> = (0..10).map(|i| event(&format!("o-{i}"))).collect();
        log.append(&young).unwrap();
        let before = log.topic("orders").unwrap();
        let r = log.enforce_retention().unwrap();
        assert_eq!(r.deleted, 30);
        let after = log.topic("orders").unwrap();
        for (b, a) in before.partitions.iter().zip(&after.partitions) {
            assert_eq!(a.next, b.next, "the high watermark does not move");
            assert!(a.low <= a.next);
        }
        assert_eq!(after.len(), 10);
        assert!(log.verify().unwrap().is_empty());
        for p in 0..2u16 {
            let info = after.partitions[usize::from(p)];
            if info.low > 0 {
                match log.read("orders", p, 0, 10) {
                    Err(crate::log::ReadError::FellBehind(f)) => {
                        assert_eq!(f.first_available, info.low)
                    }
                    other => panic!("expected FellBehind, got {other:?}"),
                }
            }
            assert_eq!(
                log.read("orders", p, info.low, 100).unwrap().len() as u64,
                info.next - info.low
            );
        }
        // a second sweep finds nothing, and the watermarks survive a reopen
        assert_eq!(log.enforce_retention().unwrap().deleted, 0);
        drop(log);
        let log = EventLog::open(dir.path(), &config(2), clock).unwrap();
        assert_eq!(log.topic("orders").unwrap(), after);
    }

    #[test]
    fn size_retention_deletes_the_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let cfg = LogConfig {
            partitions: 3,
            retention_bytes: 4000,
            ..LogConfig::default()
        };
        let log = EventLog::open(dir.path(), &cfg, clock.clone()).unwrap();
        let mut all = Vec::new();
        for i in 0..60 {
            // distinct append times, so "oldest" is well defined
            clock.advance(time::Duration::seconds(1));
            let e = event(&format!("o-{i}"));
            log.append(std::slice::from_ref(&e)).unwrap();
            all.push(e);
        }
        let r = log.enforce_retention().unwrap();
        assert!(r.deleted > 0);
        let info = log.topic("orders").unwrap();
        assert!(info.bytes() <= 4000, "{}", info.bytes());
        // what is left is exactly the newest events
        let mut kept = Vec::new();
        for p in 0..3u16 {
            let low = info.partitions[usize::from(p)].low;
            kept.extend(
                log.read("orders", p, low, 1000)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.envelope.id),
            );
        }
        let newest: Vec<_> = all[all.len() - kept.len()..].iter().map(|e| e.id).collect();
        kept.sort();
        let mut newest_sorted = newest.clone();
        newest_sorted.sort();
        assert_eq!(kept, newest_sorted);
        assert!(log.verify().unwrap().is_empty());
    }

    #[test]
    fn background_sweep_runs_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let log = EventLog::open(dir.path(), &config(1), clock.clone()).unwrap();
        log.append(&[event("a"), event("b")]).unwrap();
        clock.advance(time::Duration::days(30));
        let handle = spawn(log.clone(), Duration::from_millis(10)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.topic("orders").unwrap().partitions[0].low < 2 {
            assert!(std::time::Instant::now() < deadline, "retention never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.stop();
    }
}
