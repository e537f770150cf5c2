//! The telemetry pipe: high-volume, best-effort events (searches performed, pages and
//! products viewed, search feedback) that go straight to the `telemetry` topic of the
//! event log, never through the redb outbox: they need no transaction, and a lost one
//! costs a statistic, not money. `record` never blocks a request; a full queue drops the
//! event and counts it (`souk_telemetry_dropped_total`). Domain events never come here.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::EventLog;
use crate::log::event::{Envelope, Event};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The log topic every telemetry event goes to.
pub const TOPIC: &str = "telemetry";
/// Events waiting for the writer; beyond this, `record` drops.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Events appended in one fjall batch at most.
const MAX_BATCH: usize = 2_048;
/// How long the writer lets events gather after the first one arrives. Under load this
/// turns one wake-up, journal write and fjall commit per event into one per batch, and
/// senders find the writer asleep rather than parked on the queue, so `record` costs no
/// system call. Telemetry is read for statistics, so 20 ms of delay costs nothing.
const LINGER: Duration = Duration::from_millis(20);
/// The Prometheus counter of events dropped because the queue was full or closed (set
/// from [`Telemetry::dropped`] at every scrape of `/metrics`).
pub const DROPPED_METRIC: &str = "souk_telemetry_dropped_total";

enum Msg {
    Event(Box<Envelope>),
    /// Append everything queued before this, fsync, then answer.
    Flush(SyncSender<Result<()>>),
    /// Append everything queued before this and stop.
    Stop,
}

/// The sending side, held in `AppState`. Cheap to share behind its `Arc`.
pub struct Telemetry {
    tx: SyncSender<Msg>,
    clock: Clock,
    dropped: Arc<AtomicU64>,
    recorded: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Telemetry {
    /// Starts the writer thread appending to `log`. It runs until [`Telemetry::shutdown`]
    /// or until every handle is dropped (it appends what is queued first either way).
    pub fn start(log: EventLog, clock: Clock) -> Result<Arc<Telemetry>> {
        Self::with_capacity(log, clock, QUEUE_CAPACITY)
    }

    pub fn with_capacity(log: EventLog, clock: Clock, capacity: usize) -> Result<Arc<Telemetry>> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let t = Arc::new(Telemetry {
            tx,
            clock,
            dropped: Arc::new(AtomicU64::new(0)),
            recorded: AtomicU64::new(0),
            writer: Mutex::new(None),
        });
        let dropped = t.dropped.clone();
        let handle = std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || write_loop(&log, &rx, &dropped))
            .map_err(Error::internal)?;
        *t.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(t)
    }

    /// Queues `event` for the log, stamped now. Never blocks and never fails: a full
    /// queue drops the event and counts it. Only events of the `telemetry` topic are
    /// taken; anything else belongs in the outbox and is refused (and counted) here.
    pub fn record(&self, event: Event) {
        let at = self.clock.now();
        self.record_envelope(Envelope::identified(crate::clock::loose_v7(), event, at));
    }

    /// As [`Telemetry::record`], for a caller that sets the envelope's actor or
    /// correlation id.
    pub fn record_envelope(&self, envelope: Envelope) {
        if envelope.topic != TOPIC {
            tracing::warn!(
                event.type = envelope.type_name(),
                "not a telemetry event; domain events go through the outbox"
            );
            self.drop_one();
            return;
        }
        match self.tx.try_send(Msg::Event(Box::new(envelope))) {
            Ok(()) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.drop_one(),
        }
    }

    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Events dropped since start (queue full, writer stopped, or not telemetry).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events accepted into the queue since start.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Waits until everything recorded before this call is in the log and synced to
    /// disk. Blocking: from async code call it on the blocking pool.
    pub fn flush(&self) -> Result<()> {
        let (ack, done) = sync_channel(1);
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| Error::internal("the telemetry writer has stopped"))?;
        done.recv()
            .map_err(|_| Error::internal("the telemetry writer stopped before flushing"))?
    }

    /// Appends what is queued, stops the writer and waits for it (releasing its handle
    /// on the log). Later records are dropped and counted. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else {
            return Ok(());
        };
        let flushed = self.flush();
        let _ = self.tx.send(Msg::Stop);
        handle
            .join()
            .map_err(|_| Error::internal("the telemetry writer panicked"))?;
        flushed
    }

    /// [`Telemetry::shutdown`] off the async threads.
    pub async fn shutdown_async(self: &Arc<Self>) -> Result<()> {
        let t = self.clone();
        tokio::task::spawn_blocking(move || t.shutdown())
            .await
            .map_err(|e| Error::internal(format!("telemetry shutdown: {e}")))?
    }
}

/// The last handle gone: what is queued is appended and the writer joined, so the log it
/// held is released before anyone reopens it.
impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "stopping telemetry");
        }
    }
}

/// Waits for a message, lets more gather for [`LINGER`] (unless the last batch was full,
/// so a backlog drains at full speed, or someone waits for a flush), appends what is
/// queued in one batch, answers flushes, and repeats until stopped or every sender is
/// gone.
fn write_loop(log: &EventLog, rx: &Receiver<Msg>, dropped: &AtomicU64) {
    let mut batch: Vec<Envelope> = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    let mut backlog = false;
    loop {
        let mut stop = match rx.recv() {
            Ok(m) => take(m, &mut batch, &mut acks),
            Err(_) => true,
        };
        if !stop && !backlog && acks.is_empty() {
            std::thread::sleep(LINGER);
        }
        while !stop && batch.len() < MAX_BATCH && acks.is_empty() {
            match rx.try_recv() {
                Ok(m) => stop = take(m, &mut batch, &mut acks),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => stop = true,
            }
        }
        backlog = batch.len() >= MAX_BATCH;
        append(log, &mut batch, dropped);
        if !acks.is_empty() {
            let synced = log.persist().map_err(|e| e.to_string());
            for ack in acks.drain(..) {
                let _ = ack.send(synced.clone().map_err(Error::internal));
            }
        }
        if stop {
            return;
        }
    }
}

/// Files one message; true when the writer should stop after this batch.
fn take(m: Msg, batch: &mut Vec<Envelope>, acks: &mut Vec<SyncSender<Result<()>>>) -> bool {
    match m {
        Msg::Event(e) => batch.push(*e),
        Msg::Flush(ack) => acks.push(ack),
        Msg::Stop => return true,
    }
    false
}

/// Appends the batch; if the log refuses it as a whole (one event too large, say), each
/// event is tried alone so one bad event costs only itself.
fn append(log: &EventLog, batch: &mut Vec<Envelope>, dropped: &AtomicU64) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = log.append(batch) {
        tracing::warn!(error = %e, events = batch.len(), "telemetry batch refused; appending one by one");
        for one in batch.iter() {
            if let Err(e) = log.append(std::slice::from_ref(one)) {
                tracing::warn!(error = %e, event.type = one.type_name(), "telemetry event dropped");
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn viewed(product: &str) -> Event {
        Event::ProductViewed {
            product_id: product.into(),
            user_id: None,
            session_id: Some("s-1".into()),
            timestamp: datetime!(2026-11-26 09:30 UTC),
        }
    }

    fn open(dir: &std::path::Path) -> EventLog {
        let config = crate::config::LogConfig {
            partitions: 2,
            ..Default::default()
        };
        EventLog::open(dir, &config, Clock::default()).unwrap()
    }

    #[test]
    fn recorded_events_reach_the_telemetry_topic_and_survive_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let t = Telemetry::start(log.clone(), Clock::default()).unwrap();
        for i in 0..500 {
            t.record(viewed(&format!("p-{i}")));
        }
        t.flush().unwrap();
        assert_eq!(log.topic(TOPIC).unwrap().len(), 500);
        t.record(viewed("last"));
        t.shutdown().unwrap();
        assert_eq!(
            log.topic(TOPIC).unwrap().len(),
            501,
            "shutdown appends the rest"
        );
        t.record(viewed("after"));
        assert_eq!(
            t.dropped(),
            1,
            "a record after shutdown is dropped and counted"
        );
        t.shutdown().unwrap();
    }

    #[test]
    fn domain_events_are_refused_and_a_full_queue_drops() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let t = Telemetry::with_capacity(log.clone(), Clock::default(), 1).unwrap();
        t.record(Event::OrderCompleted {
            order_id: "o-1".into(),
            timestamp: datetime!(2026-11-26 09:30 UTC),
        });
        assert_eq!(t.dropped(), 1);
        for i in 0..10_000 {
            t.record(viewed(&format!("p-{i}")));
        }
        t.shutdown().unwrap();
        let kept = log.topic(TOPIC).map(|i| i.len()).unwrap_or(0);
        assert_eq!(
            kept + t.dropped(),
            10_001,
            "every event is either kept or counted"
        );
        assert!(t.dropped() > 1, "a one-slot queue overflows");
        assert!(log.topic("orders").is_none());
    }
}
