//! The users sweep: a background task that writes the last-seen times requests noted
//! (every `auth.last_seen_flush_secs`, one transaction for all of them) and deletes what
//! can no longer be used (every `auth.sweep_interval_secs`): expired sessions and those
//! ended more than a day ago with their refresh-token hashes, expired single-use tokens
//! (MFA login steps, reset and verification links, setup tokens) and forgotten account
//! lockouts. It finds candidates in snapshots and deletes in small write transactions, so
//! the writer is never held for long; it never decides anything a request would not.

use crate::app::AppState;
use crate::auth::{SessionId, session, throttle};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::watch;

use super::store;

/// Rows deleted per write transaction.
const BATCH: usize = 512;
/// An ended (revoked) session stays this long before the sweep deletes it.
const KEEP_ENDED: time::Duration = time::Duration::days(1);

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub last_seen_written: usize,
    pub sessions: usize,
    pub refresh_hashes: usize,
    pub grants: usize,
    pub lockouts: usize,
}

/// Writes the noted last-seen times in one transaction; returns how many sessions moved.
/// On failure the times are kept for the next attempt.
pub async fn flush_last_seen(state: &AppState) -> Result<usize> {
    let seen = state.auth.last_seen.take();
    if seen.is_empty() {
        return Ok(0);
    }
    let now = state.clock.now();
    let batch = seen.clone();
    match state
        .store
        .write(move |tx| session::write_last_seen(tx, &batch, now))
        .await
    {
        Ok(n) => Ok(n),
        Err(e) => {
            state.auth.last_seen.restore(seen);
            Err(e)
        }
    }
}

/// One full sweep at the clock's `now` (the task calls it; tests call it directly).
pub async fn run_once(state: &AppState) -> Result<SweepReport> {
    let mut report = SweepReport {
        last_seen_written: flush_last_seen(state).await?,
        ..SweepReport::default()
    };
    let now = state.clock.now();

    // Sessions, then every refresh-token hash that pointed at one of them.
    let mut gone: HashSet<SessionId> = HashSet::new();
    loop {
        let ids = session::find_done(&state.store.read()?, now, KEEP_ENDED, BATCH)?;
        if ids.is_empty() {
            break;
        }
        let full = ids.len() == BATCH;
        let deleted = state
            .store
            .write(move |tx| session::delete_done(tx, &ids, now, KEEP_ENDED))
            .await?;
        report.sessions += deleted.len();
        let progress = !deleted.is_empty();
        gone.extend(deleted);
        if !full || !progress {
            break;
        }
    }
    if !gone.is_empty() {
        let keys = session::refresh_hashes_of(&state.store.read()?, &gone)?;
        report.refresh_hashes = keys.len();
        for chunk in keys.chunks(BATCH) {
            let chunk = chunk.to_vec();
            state
                .store
                .write(move |tx| session::delete_refresh_hashes(tx, &chunk))
                .await?;
        }
    }

    // Single-use tokens past their time.
    loop {
        let keys = store::find_expired_grants(&state.store.read()?, now, BATCH)?;
        if keys.is_empty() {
            break;
        }
        let full = keys.len() == BATCH;
        let n = state
            .store
            .write(move |tx| store::delete_expired_grants(tx, &keys, now))
            .await?;
        report.grants += n;
        if !full || n == 0 {
            break;
        }
    }

    // Account lockouts quiet for long enough.
    let policy = state.auth.account_policy();
    loop {
        let keys = throttle::find_forgotten(&state.store.read()?, &policy, now, BATCH)?;
        if keys.is_empty() {
            break;
        }
        let full = keys.len() == BATCH;
        let n = state
            .store
            .write(move |tx| throttle::delete_forgotten(tx, &keys, &policy, now))
            .await?;
        report.lockouts += n;
        if !full || n == 0 {
            break;
        }
    }

    if report.sessions + report.grants + report.lockouts > 0 {
        tracing::info!(
            sessions = report.sessions,
            refresh_hashes = report.refresh_hashes,
            grants = report.grants,
            lockouts = report.lockouts,
            "auth sweep"
        );
    }
    Ok(report)
}

/// The running sweep: its own thread (with a small runtime of its own, as the relay
/// has), so that stopping it, or dropping it, joins the thread and releases the store.
pub struct SweepHandle {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SweepHandle {
    /// Stops the sweep after it writes the last-seen times still noted.
    pub async fn stop(self) {
        // The join blocks: keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for SweepHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the sweep: a full sweep at once and then every `auth.sweep_interval_secs`,
/// last-seen times every `auth.last_seen_flush_secs`, and once more when stopped.
pub fn spawn(state: AppState) -> Result<SweepHandle> {
    let sweep_every = Duration::from_secs(state.config.auth.sweep_interval_secs);
    let tick = Duration::from_secs(state.config.auth.last_seen_flush_secs).min(sweep_every);
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("souk-users-sweep".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(run(state, sweep_every, tick, stopped)),
                Err(e) => tracing::error!(error = %e, "the auth sweep cannot start"),
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the auth sweep: {e}")))?;
    Ok(SweepHandle {
        stop,
        thread: Some(thread),
    })
}

async fn run(
    state: AppState,
    sweep_every: Duration,
    tick: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut since_sweep: Option<Duration> = None;
    loop {
        let due = since_sweep.is_none_or(|d| d >= sweep_every);
        let result = if due {
            since_sweep = Some(Duration::ZERO);
            run_once(&state).await.map(|_| ())
        } else {
            flush_last_seen(&state).await.map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "auth sweep");
        }
        if *stopped.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stopped.changed() => break,
        }
        since_sweep = since_sweep.map(|d| d + tick);
    }
    if let Err(e) = flush_last_seen(&state).await {
        tracing::warn!(error = %e, "writing last-seen times at shutdown");
    }
}
