//! CPU-bound work that would stall the async threads (searches, suggestions, the pages'
//! lists) runs on tokio's blocking pool, but never more of it at once than twice the
//! cores; past that, tasks wait their turn in arrival order. Without the gate every
//! concurrent search got a thread of its own and the kernel time-sliced them all, so a
//! search that needed a little more than one slice waited for every other one: at 32
//! concurrent searches on 2 cores the p99 was three to four times the median.

use crate::error::{Error, Result};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Tasks let run at once per core. With one, a core sat idle while the next task was
/// handed its turn; with two, suggestions at 32 connections went from 7k to 11k a
/// second and from a p99 of 7.4 ms to 4.9 ms (ungated: 10.8k, 6.3 ms).
const TURNS_PER_CORE: usize = 2;

fn gate() -> Arc<Semaphore> {
    static GATE: OnceLock<Arc<Semaphore>> = OnceLock::new();
    GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(TURNS_PER_CORE * cores))
    })
    .clone()
}

/// Runs `f` on the blocking pool once a core is free. The turn is held until `f` ends,
/// even if the caller stops waiting (a client that went away).
pub async fn run<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let turn = gate()
        .acquire_owned()
        .await
        .map_err(|e| Error::internal(format!("{what}: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        f()
    })
    .await
    .map_err(|e| Error::internal(format!("{what} task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_tasks_run_at_once_than_the_cores_allow() {
        let turns = TURNS_PER_CORE * std::thread::available_parallelism().map_or(2, |n| n.get());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..turns * 4)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run("test", move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(i)
                }))
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap().unwrap());
        }
        assert_eq!(done, (0..turns * 4).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= turns);
        // An error from the work is the caller's answer.
        let failed = run("test", || Err::<(), _>(Error::BadRequest("no".into()))).await;
        assert!(matches!(failed, Err(Error::BadRequest(_))));
    }
}
