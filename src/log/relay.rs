//! The outbox relay: moves events from redb's outbox to the log, in commit order, once.
//!
//! One round: read the outbox rows after the relay position (only rows whose commit is
//! durable: seq <= `store.committed_outbox()`), append them to the log in ONE fjall batch
//! that also records the new relay position, fsync the log, and only then delete those
//! rows from the outbox. A crash before the fsync loses the batch and its position
//! together (the rows are still in the outbox: appended again); a crash after it leaves
//! rows the position already covers (deleted without appending on the next start). So no
//! event is lost and none is appended twice.

use super::{EventLog, lock};
use crate::error::{Error, Result};
use crate::log::event::Envelope;
use crate::store::tables::OUTBOX_SEQ_TO_EVENT;
use crate::store::{Store, Tx, codec};
use redb::ReadableTable;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::watch;

/// Most events moved in one round (one fjall batch, one fsync).
const BATCH_MAX: usize = 1024;
/// How often an idle relay proves it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How far the relay got, in outbox sequence numbers: `appended` = in the log and
/// readable; `relayed` = in the log and fsynced; `cleared` = deleted from the outbox
/// (everything at or below it is gone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub appended: u64,
    pub relayed: u64,
    pub cleared: u64,
}

/// The relay's health, kept in the log so `/ready` and `/metrics` can read it from
/// `AppState` without holding the handle.
#[derive(Default)]
pub(crate) struct Shared {
    running: AtomicBool,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    heartbeat: Option<Instant>,
    last_relayed_at: Option<OffsetDateTime>,
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

/// A snapshot of the relay, for `/ready` and `/metrics`.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    pub running: bool,
    /// The last outbox seq committed (durably) in the store.
    pub committed: u64,
    /// The last outbox seq the log holds.
    pub relayed: u64,
    /// Events committed but not yet in the log.
    pub lag: u64,
    pub last_relayed_at: Option<OffsetDateTime>,
    /// The error of the last round, if it failed (cleared by a successful round).
    pub last_error: Option<String>,
    heartbeat_age: Option<Duration>,
    failing_for: Option<Duration>,
}

impl RelayStatus {
    /// True when events are waiting and the relay is not running, has not been heard
    /// from for `after`, or has been failing for longer than `after`.
    pub fn is_stuck(&self, after: Duration) -> bool {
        self.lag > 0
            && (!self.running
                || self.heartbeat_age.is_none_or(|a| a > after)
                || self.failing_for.is_some_and(|f| f > after))
    }
}

/// The relay's status as seen from the store and the log (no handle needed).
pub fn status(store: &Store, log: &EventLog) -> RelayStatus {
    let shared = &log.inner.relay_status;
    let health = lock(&shared.health);
    let committed = *store.committed_outbox().borrow();
    let relayed = log.relay_position();
    RelayStatus {
        running: shared.running.load(Ordering::Acquire),
        committed,
        relayed,
        lag: committed.saturating_sub(relayed),
        last_relayed_at: health.last_relayed_at,
        last_error: health.last_error.clone(),
        heartbeat_age: health.heartbeat.map(|h| h.elapsed()),
        failing_for: health.failing_since.map(|f| f.elapsed()),
    }
}

impl Shared {
    fn beat(&self) {
        lock(&self.health).heartbeat = Some(Instant::now());
    }
    fn succeeded(&self, at: OffsetDateTime) {
        let mut h = lock(&self.health);
        h.heartbeat = Some(Instant::now());
        h.last_relayed_at = Some(at);
        h.failing_since = None;
        h.last_error = None;
    }
    fn failed(&self, e: &Error) {
        tracing::error!(error = %e, "outbox relay round failed; retrying");
        let mut h = lock(&self.health);
        h.heartbeat = Some(Instant::now());
        h.failing_since.get_or_insert_with(Instant::now);
        h.last_error = Some(e.to_string());
    }
}

/// The running relay. [`RelayHandle::stop`] (or dropping it) ends it.
pub struct RelayHandle {
    store: Store,
    log: EventLog,
    progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Starts the relay on its own thread. Refuses a log that holds outbox positions the
/// store never committed (a log from another or newer database: restore both together),
/// and a second relay on the same log.
pub fn spawn(store: Store, log: EventLog) -> Result<RelayHandle> {
    let committed = store.committed_outbox();
    let last_committed = *committed.borrow();
    let position = log.relay_position();
    if position > last_committed {
        return Err(Error::Storage(format!(
            "the event log holds outbox events up to #{position} but the store has committed only up to \
             #{last_committed}: the log does not belong to this database (back up and restore the data dir as a whole)"
        )));
    }
    let shared = &log.inner.relay_status;
    if shared.running.swap(true, Ordering::AcqRel) {
        return Err(Error::Internal(
            "the outbox relay is already running".into(),
        ));
    }
    shared.beat();
    let (stop, stopped) = watch::channel(false);
    let (progress_tx, progress) = watch::channel(Progress::default());
    let (s, l) = (store.clone(), log.clone());
    let thread = std::thread::Builder::new()
        .name("souk-relay".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(run(&s, &l, committed, stopped, progress_tx)),
                Err(e) => l.inner.relay_status.failed(&Error::internal(e)),
            }
            l.inner.relay_status.running.store(false, Ordering::Release);
        });
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            shared.running.store(false, Ordering::Release);
            return Err(Error::Internal(format!(
                "cannot start the outbox relay: {e}"
            )));
        }
    };
    Ok(RelayHandle {
        store,
        log,
        progress,
        stop,
        thread: Mutex::new(Some(thread)),
    })
}

impl RelayHandle {
    /// Waits until every event committed before this call is in the log and gone from
    /// the outbox. Graceful shutdown calls it (under a timeout) before closing the store.
    pub async fn flush(&self) -> Result<()> {
        // The store publishes its committed seq just after answering the writers, so a
        // caller's own events may be newer than that watch: take the outbox's last row too.
        let last_row = {
            let rtx = self.store.read()?;
            let outbox = rtx.open_table(OUTBOX_SEQ_TO_EVENT)?;
            outbox.last()?.map_or(0, |(seq, _)| seq.value())
        };
        let target = last_row.max(*self.store.committed_outbox().borrow());
        let mut progress = self.progress.clone();
        loop {
            if progress.borrow_and_update().cleared >= target {
                return Ok(());
            }
            if progress.changed().await.is_err() {
                if progress.borrow().cleared >= target {
                    return Ok(());
                }
                let status = self.status();
                return Err(Error::Internal(format!(
                    "the outbox relay stopped with {} event(s) not moved{}",
                    status.lag,
                    status
                        .last_error
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )));
            }
        }
    }

    /// Events committed but not yet in the log.
    pub fn lag(&self) -> u64 {
        self.status().lag
    }

    pub fn status(&self) -> RelayStatus {
        status(&self.store, &self.log)
    }

    /// Watch the relay's progress (benches and tests wait on it).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops the relay after its current round and waits for its thread. Events still
    /// in the outbox stay there and move on the next start.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

type Deleting = Option<(u64, tokio::task::JoinHandle<Result<()>>)>;

async fn run(
    store: &Store,
    log: &EventLog,
    mut committed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
    progress: watch::Sender<Progress>,
) {
    let shared = &log.inner.relay_status;
    // The highest position known fsynced. What the log holds at start may have been
    // written by a process that died before its fsync, so it is synced before any
    // outbox row is deleted.
    let mut durable: Option<u64> = None;
    // Rows up to the position may be left from before a crash: the first round clears them.
    let mut cleared: Option<u64> = (log.relay_position() == 0).then_some(0);
    let mut deleting: Deleting = None;
    let mut retry = Retry::default();
    loop {
        if *stop.borrow() {
            break;
        }
        let position = log.relay_position();
        if retry.at.is_none() && durable.is_none_or(|d| d < position) {
            match log.persist() {
                Ok(()) => {
                    durable = Some(position);
                    progress.send_modify(|pr| {
                        pr.appended = position;
                        pr.relayed = position;
                    });
                    shared.succeeded(log.clock().now());
                }
                Err(e) => {
                    shared.failed(&e);
                    retry.later();
                }
            }
        }
        if let Some(d) = durable
            && deleting.is_none()
            && retry.at.is_none()
            && cleared.is_none_or(|c| c < d)
        {
            let s = store.clone();
            let job = tokio::spawn(async move { s.write(move |tx| delete_upto(tx, d)).await });
            deleting = Some((d, job));
        }
        let target = *committed.borrow_and_update();
        if target > position && retry.at.is_none() {
            match relay_once(store, log, position, target) {
                Ok(()) => {
                    retry.backoff = BACKOFF_MIN;
                    progress.send_modify(|pr| pr.appended = log.relay_position());
                    continue; // the top of the loop syncs it
                }
                Err(e) => {
                    shared.failed(&e);
                    retry.later();
                }
            }
        }
        let nap = retry
            .at
            .map_or(HEARTBEAT, |t| t.saturating_duration_since(Instant::now()));
        tokio::select! {
            changed = committed.changed() => {
                if changed.is_err() {
                    break; // the store closed
                }
            }
            (upto, done) = finished(&mut deleting) => match done {
                Ok(()) => {
                    cleared = Some(upto);
                    progress.send_modify(|pr| pr.cleared = upto);
                }
                Err(e) => {
                    shared.failed(&e);
                    retry.later();
                }
            },
            _ = stop.changed() => {}
            _ = tokio::time::sleep(nap) => {
                if retry.at.is_some_and(|t| t <= Instant::now()) {
                    retry.at = None;
                }
                shared.beat();
            }
        }
    }
    if deleting.is_some() {
        let (upto, done) = finished(&mut deleting).await;
        if done.is_ok() {
            progress.send_modify(|pr| pr.cleared = upto);
        }
    }
}

/// When the relay may try again after a failure, backing off from [`BACKOFF_MIN`] to
/// [`BACKOFF_MAX`].
struct Retry {
    at: Option<Instant>,
    backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            at: None,
            backoff: BACKOFF_MIN,
        }
    }
}

impl Retry {
    fn later(&mut self) {
        self.at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// Resolves when the outbox deletion in flight ends; never, if there is none.
async fn finished(deleting: &mut Deleting) -> (u64, Result<()>) {
    let Some((upto, job)) = deleting else {
        return std::future::pending().await;
    };
    let done = match job.await {
        Ok(r) => r,
        Err(e) => Err(Error::internal(e)),
    };
    let upto = *upto;
    *deleting = None;
    (upto, done)
}

/// One round: the committed rows after `position` (at most [`BATCH_MAX`]) into the log,
/// in one batch with the new position. Not yet synced: the caller does that before it
/// deletes anything from the outbox.
fn relay_once(store: &Store, log: &EventLog, position: u64, committed: u64) -> Result<()> {
    let mut events: Vec<Envelope> = Vec::new();
    let mut upto = committed;
    {
        let rtx = store.read()?;
        let outbox = rtx.open_table(OUTBOX_SEQ_TO_EVENT)?;
        let mut expected = position + 1;
        for row in outbox.range(position + 1..=committed)? {
            let (seq, value) = row?;
            let seq = seq.value();
            if seq != expected {
                // Sequence numbers are dense; a hole means rows vanished, and waiting will
                // not bring them back. Say so loudly and move on with what is there.
                tracing::error!(
                    from = expected,
                    to = seq - 1,
                    "outbox rows missing; the log will not have them"
                );
            }
            events.push(codec::decode::<Envelope>(value.value()).map_err(|e| {
                Error::Storage(format!(
                    "outbox row #{seq} cannot be read ({e}); the relay stops here"
                ))
            })?);
            expected = seq + 1;
            if events.len() >= BATCH_MAX {
                upto = seq;
                break;
            }
        }
    }
    log.append_batch(&events, Some(upto))?;
    Ok(())
}

/// Deletes the outbox rows the log already holds.
fn delete_upto(tx: &mut Tx<'_>, upto: u64) -> Result<()> {
    tx.open_table(OUTBOX_SEQ_TO_EVENT)?
        .retain_in(..=upto, |_, _| false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        lag: u64,
        running: bool,
        heartbeat: Option<u64>,
        failing: Option<u64>,
    ) -> RelayStatus {
        RelayStatus {
            running,
            committed: 10,
            relayed: 10 - lag,
            lag,
            last_relayed_at: None,
            last_error: None,
            heartbeat_age: heartbeat.map(Duration::from_secs),
            failing_for: failing.map(Duration::from_secs),
        }
    }

    #[test]
    fn stuck_means_events_waiting_and_no_progress() {
        let after = Duration::from_secs(30);
        assert!(
            !status(0, false, None, None).is_stuck(after),
            "nothing waiting"
        );
        assert!(
            !status(3, true, Some(1), None).is_stuck(after),
            "alive and working"
        );
        assert!(
            status(3, false, Some(1), None).is_stuck(after),
            "not running"
        );
        assert!(
            status(3, true, Some(60), None).is_stuck(after),
            "silent too long"
        );
        assert!(
            !status(3, true, Some(1), Some(5)).is_stuck(after),
            "failing, retrying"
        );
        assert!(
            status(3, true, Some(1), Some(60)).is_stuck(after),
            "failing too long"
        );
    }
}
