//! The system of record on redb. Owns the database file, the single writer thread and the
//! outbox; knows nothing of any service. Every change of state goes through
//! [`Store::write`]: one closure, one transaction, its events in the outbox of that same
//! transaction, durable before the caller hears "ok".

pub mod codec;
pub mod ids;
pub mod migrations;
pub mod tables;

use crate::error::{Error, Result};
use crate::log::event::Envelope;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction,
};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tables::{META, OUTBOX_SEQ_TO_EVENT};
use tokio::sync::{oneshot, watch};

pub use migrations::SCHEMA_VERSION;

/// A write transaction handed to a command. It derefs to redb's transaction for table
/// access; events go through [`Tx::emit`] so that they land in the outbox atomically.
pub struct Tx<'a> {
    inner: &'a WriteTransaction,
    events: Vec<Envelope>,
}

impl<'a> Tx<'a> {
    /// Queue an event; it is written to the outbox only if the command succeeds.
    pub fn emit(&mut self, event: Envelope) {
        self.events.push(event);
    }
}

impl Deref for Tx<'_> {
    type Target = WriteTransaction;
    fn deref(&self) -> &WriteTransaction {
        self.inner
    }
}

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Reply) + Send>;

enum Msg {
    Job(Job),
    /// Stop the writer after what is queued, and say so.
    Close(std::sync::mpsc::SyncSender<()>),
}

/// Cheap to clone; all clones share one database and one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    jobs: mpsc::SyncSender<Msg>,
    /// The last outbox sequence number committed; the relay watches it.
    committed: watch::Receiver<u64>,
    /// Bumped after every commit that changed something: see [`Store::generation`].
    generation: Arc<AtomicU64>,
}

impl Store {
    /// Opens (or creates) `souk.redb` in `dir`, migrates an older schema, refuses a newer
    /// one, and starts the writer thread.
    pub fn open(dir: &Path, cache_mib: usize, group_commit_max: usize) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
        let path = dir.join("souk.redb");
        let db = Database::builder()
            .set_cache_size(cache_mib.max(1) * 1024 * 1024)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::Storage(format!(
                    "{} is in use by another souk process (stop it first)",
                    path.display()
                )),
                e => Error::Storage(format!("{}: {e}", path.display())),
            })?;
        migrations::prepare(&db)?;
        let next_seq = next_outbox_seq(&db)?;
        let db = Arc::new(db);
        let (jobs, rx) = mpsc::sync_channel::<Msg>(4096);
        let (committed_tx, committed) = watch::channel(next_seq.saturating_sub(1));
        let writer_db = db.clone();
        let generation = Arc::new(AtomicU64::new(0));
        let writer_generation = generation.clone();
        std::thread::Builder::new()
            .name("souk-writer".into())
            .spawn(move || {
                writer_loop(
                    writer_db,
                    rx,
                    (committed_tx, writer_generation),
                    next_seq,
                    group_commit_max,
                )
            })
            .map_err(|e| Error::Internal(format!("cannot start writer thread: {e}")))?;
        Ok(Store {
            db,
            jobs,
            committed,
            generation,
        })
    }

    /// Runs `f` in a write transaction on the writer thread. If it returns `Ok`, its
    /// writes and events are committed durably (fsync) before this returns; if `Err`,
    /// nothing it did is kept. Never call it while holding another transaction.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (send, recv) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let result = f(tx);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit: Result<()>| {
                let _ = send.send(commit.and(result));
            });
            (ok, reply)
        });
        self.jobs
            .send(Msg::Job(job))
            .map_err(|_| Error::Internal("the store writer has stopped".into()))?;
        recv.await
            .map_err(|_| Error::Internal("the store writer dropped a command".into()))?
    }

    /// Blocking variant for the CLI and tests outside a runtime.
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(Error::internal)?;
        rt.block_on(self.write(f))
    }

    /// An MVCC snapshot; never blocks the writer.
    pub fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// A number that changes after every commit that wrote something, for caches of
    /// derived read models: read it *before* opening the read transaction the cached
    /// value is computed from, and the value is current for as long as the number stays.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Watch the last committed outbox sequence number (the relay waits on it).
    pub fn committed_outbox(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Stops the writer thread once the commands already queued are committed. The file
    /// closes when the last clone of this store is dropped.
    pub fn close(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.jobs.send(Msg::Close(ack)).is_ok() {
            let _ = done.recv();
        }
    }
}

fn next_outbox_seq(db: &Database) -> Result<u64> {
    let rtx = db.begin_read()?;
    let meta = rtx.open_table(META)?;
    let stored = match meta.get(migrations::OUTBOX_NEXT_SEQ)? {
        Some(v) => codec::decode::<u64>(v.value())?,
        None => 1,
    };
    let outbox = rtx.open_table(OUTBOX_SEQ_TO_EVENT)?;
    let after_last = match outbox.last()? {
        Some((k, _)) => k.value() + 1,
        None => 1,
    };
    Ok(stored.max(after_last))
}

/// The one writer. Commands that queue up while a commit is in flight are committed
/// together: each in its own non-durable transaction (so one failing command undoes only
/// itself), then a single durable commit makes the whole group persistent with one fsync.
/// Callers hear back only after that fsync.
fn writer_loop(
    db: Arc<Database>,
    rx: mpsc::Receiver<Msg>,
    (committed, generation): (watch::Sender<u64>, Arc<AtomicU64>),
    mut next_seq: u64,
    group_max: usize,
) {
    let mut closing = None;
    while closing.is_none() {
        let mut group = match rx.recv() {
            Ok(Msg::Job(job)) => vec![job],
            Ok(Msg::Close(ack)) => {
                closing = Some(ack);
                break;
            }
            Err(_) => break,
        };
        while group.len() < group_max {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => group.push(job),
                Ok(Msg::Close(ack)) => {
                    closing = Some(ack);
                    break;
                }
                Err(_) => break,
            }
        }
        let alone = group.len() == 1;
        let mut replies: Vec<(Reply, bool)> = Vec::with_capacity(group.len());
        let mut pending_durable = false;
        for job in group {
            let durability = if alone {
                Durability::Immediate
            } else {
                Durability::None
            };
            match run_one(&db, job, durability, &mut next_seq) {
                Ok((reply, true)) => {
                    pending_durable |= !alone;
                    replies.push((reply, true));
                }
                Ok((reply, false)) => replies.push((reply, false)),
                Err((reply, e)) => {
                    tracing::error!(error = %e, "store commit failed");
                    reply(Err(e));
                }
            }
        }
        let mut flush = Ok(());
        if pending_durable {
            flush = make_durable(&db);
        }
        // The relay's watch moves before callers hear "ok", so a caller that waits for
        // the relay after its write never misses its own events.
        if flush.is_ok() {
            committed.send_replace(next_seq - 1);
        }
        if replies.iter().any(|(_, wrote)| *wrote) {
            generation.fetch_add(1, Ordering::AcqRel);
        }
        for (reply, ok) in replies {
            if ok {
                reply(
                    flush
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| Error::Storage(e.to_string())),
                );
            } else {
                reply(Ok(()));
            }
        }
    }
    drop(db);
    if let Some(ack) = closing {
        let _ = ack.send(());
    }
}

/// Runs one command in its own transaction. Ok((reply, committed?)); Err when the commit
/// itself failed.
fn run_one(
    db: &Database,
    job: Job,
    durability: Durability,
    next_seq: &mut u64,
) -> std::result::Result<(Reply, bool), (Reply, Error)> {
    // If no transaction can be begun the job is dropped unrun, and its caller is told
    // that the writer dropped the command.
    let noop: fn() -> Reply = || Box::new(|_| {});
    let mut wtx = match db.begin_write() {
        Ok(w) => w,
        Err(e) => return Err((noop(), Error::from(e))),
    };
    if let Err(e) = wtx.set_durability(durability) {
        return Err((noop(), Error::Storage(e.to_string())));
    }
    let mut tx = Tx {
        inner: &wtx,
        events: Vec::new(),
    };
    let (ok, reply) = job(&mut tx);
    let events = std::mem::take(&mut tx.events);
    if !ok {
        let _ = wtx.abort();
        return Ok((reply, false));
    }
    let mut seq = *next_seq;
    let written = (|| -> Result<()> {
        if !events.is_empty() {
            let mut outbox = wtx.open_table(OUTBOX_SEQ_TO_EVENT)?;
            for ev in &events {
                outbox.insert(seq, codec::encode(ev)?.as_slice())?;
                seq += 1;
            }
            let mut meta = wtx.open_table(META)?;
            meta.insert(migrations::OUTBOX_NEXT_SEQ, codec::encode(&seq)?.as_slice())?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = wtx.abort();
        return Err((reply, e));
    }
    match wtx.commit() {
        Ok(()) => {
            *next_seq = seq;
            Ok((reply, true))
        }
        Err(e) => Err((reply, Error::from(e))),
    }
}

fn make_durable(db: &Database) -> Result<()> {
    let wtx = db.begin_write()?;
    wtx.commit()?;
    Ok(())
}

/// Reads a codec-encoded META value.
pub fn meta_get<T: serde::de::DeserializeOwned>(
    rtx: &ReadTransaction,
    key: &str,
) -> Result<Option<T>> {
    let meta = rtx.open_table(META)?;
    match meta.get(key)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTableMetadata, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("test_numbers");

    #[tokio::test]
    async fn failed_commands_leave_nothing_and_successes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 4, 64).unwrap();
            let mut handles = Vec::new();
            for i in 0..50u64 {
                let s = store.clone();
                handles.push(tokio::spawn(async move {
                    s.write(move |tx| {
                        tx.open_table(T)?.insert(i, i * 2)?;
                        if i % 5 == 0 {
                            return Err(Error::conflict("nope", "refused"));
                        }
                        Ok(i)
                    })
                    .await
                }));
            }
            let mut ok = 0;
            for h in handles {
                if h.await.unwrap().is_ok() {
                    ok += 1;
                }
            }
            assert_eq!(ok, 40);
            store.close();
        }
        let store = Store::open(dir.path(), 4, 64).unwrap();
        let rtx = store.read().unwrap();
        let t = rtx.open_table(T).unwrap();
        assert_eq!(t.len().unwrap(), 40);
        assert!(t.get(5).unwrap().is_none());
        assert_eq!(t.get(7).unwrap().unwrap().value(), 14);
    }

    #[tokio::test]
    async fn the_generation_moves_before_the_writer_hears_ok_and_only_for_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, 64).unwrap();
        let before = store.generation();
        let refused = store
            .write(|tx| {
                tx.open_table(T)?.insert(1, 1)?;
                Err::<(), _>(Error::conflict("nope", "refused"))
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(
            store.generation(),
            before,
            "a refused command changed nothing"
        );
        store
            .write(|tx| {
                tx.open_table(T)?.insert(2, 2)?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(store.generation() > before);
        store.close();
    }
}
