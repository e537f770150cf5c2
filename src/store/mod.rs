//! The system of record on redb. Owns the database file, the single writer thread and the
//! outbox; knows nothing of any service. Every change of state goes through
//! [`Store::write`]: one closure, one transaction, its events in the outbox of that same
//! transaction, durable before the caller hears "ok".

pub mod cache;
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

/// A queued command: its closure (kept, so that it can run again if another command of
/// its group forces the shared transaction to be rolled back), the result of its last run,
/// and the caller waiting for both.
trait Command: Send {
    /// Runs the command in `tx`; true if it succeeded, so its writes are to be kept.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Tells the caller the outcome: `commit` is the fate of the transaction that kept the
    /// last run (`Ok` for a refused command, which kept nothing).
    fn reply(self: Box<Self>, commit: Result<()>);
}

struct Queued<F, T> {
    f: F,
    result: Option<Result<T>>,
    send: oneshot::Sender<Result<T>>,
}

impl<F, T> Command for Queued<F, T>
where
    T: Send,
    F: FnOnce(&mut Tx<'_>) -> Result<T> + Clone + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let result = (self.f.clone())(tx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reply(self: Box<Self>, commit: Result<()>) {
        let result = match self.result {
            Some(result) => commit.and(result),
            None => commit.and(Err(Error::Internal(
                "the store writer could not run the command".into(),
            ))),
        };
        let _ = self.send.send(result);
    }
}

type Job = Box<dyn Command>;

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
    ///
    /// `f` may run more than once (a clone each time): when another command of its group
    /// fails, the shared transaction is rolled back and `f` runs again in a fresh one. Only
    /// the last run's result and writes count, so `f` must act only through `tx`.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Clone + Send + 'static,
    {
        let (send, recv) = oneshot::channel();
        let job: Job = Box::new(Queued {
            f,
            result: None,
            send,
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
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Clone + Send + 'static,
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
/// together, in one transaction with one fsync; callers hear back only after it. A command
/// that fails has its writes undone by rolling the shared transaction back: the commands
/// before it run again in a transaction of their own, and the group goes on after it.
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
        let mut writer = GroupWriter {
            db: &db,
            next_seq,
            fates: (0..group.len()).map(|_| Fate::Pending).collect(),
            unflushed: false,
        };
        writer.settle(&mut group, 0);
        next_seq = writer.next_seq;
        let flush = if writer.unflushed {
            make_durable(&db)
        } else {
            Ok(())
        };
        // The relay's watch moves before callers hear "ok", so a caller that waits for
        // the relay after its write never misses its own events.
        if flush.is_ok() {
            committed.send_replace(next_seq - 1);
        }
        if writer.fates.iter().any(|f| matches!(f, Fate::Committed)) {
            generation.fetch_add(1, Ordering::AcqRel);
        }
        for (job, fate) in group.into_iter().zip(writer.fates) {
            job.reply(match fate {
                Fate::Committed => flush
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| Error::Storage(e.to_string())),
                Fate::Refused => Ok(()),
                Fate::Failed(e) => Err(e),
                Fate::Pending => Err(Error::Internal("the store writer lost a command".into())),
            });
        }
    }
    drop(db);
    if let Some(ack) = closing {
        let _ = ack.send(());
    }
}

/// What became of one command of a group.
enum Fate {
    Pending,
    /// Its writes are committed (durable once the group's flush succeeds).
    Committed,
    /// It returned an error; nothing it did is kept.
    Refused,
    /// Its transaction could not be begun or committed.
    Failed(Error),
}

/// Commits one group of commands; see [`writer_loop`].
struct GroupWriter<'a> {
    db: &'a Database,
    next_seq: u64,
    /// One per command of the group.
    fates: Vec<Fate>,
    /// A commit without fsync happened since the last durable one.
    unflushed: bool,
}

impl GroupWriter<'_> {
    /// Commits `jobs` (the group's commands from index `first` on, in order), every one
    /// that succeeds in one transaction where possible. A refusal rolls the transaction
    /// back; the commands before the refused one are settled again on their own (they
    /// succeed again: they see the same state), then the ones after it.
    fn settle(&mut self, jobs: &mut [Job], first: usize) {
        let mut start = 0;
        while start < jobs.len() {
            match self.attempt(&mut jobs[start..], first + start) {
                Ok(None) => return,
                Ok(Some(refused)) => {
                    self.fates[first + start + refused] = Fate::Refused;
                    if refused > 0 {
                        self.settle(&mut jobs[start..start + refused], first + start);
                    }
                    start += refused + 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "store commit failed");
                    for i in start..jobs.len() {
                        self.fates[first + i] = Fate::Failed(Error::Storage(e.to_string()));
                    }
                    return;
                }
            }
        }
    }

    /// Runs all of `jobs` in one transaction and commits it: Ok(None). If one fails, the
    /// transaction is rolled back and Ok(Some(its index)) returned. Durable (fsync) when it
    /// reaches the group's last command; otherwise the group's flush makes it so.
    fn attempt(&mut self, jobs: &mut [Job], first: usize) -> Result<Option<usize>> {
        let wtx = self.db.begin_write()?;
        let mut seq = self.next_seq;
        for (i, job) in jobs.iter_mut().enumerate() {
            let mut tx = Tx {
                inner: &wtx,
                events: Vec::new(),
            };
            if !job.run(&mut tx) {
                let _ = wtx.abort();
                return Ok(Some(i));
            }
            if !tx.events.is_empty() {
                let mut outbox = wtx.open_table(OUTBOX_SEQ_TO_EVENT)?;
                for ev in &tx.events {
                    outbox.insert(seq, codec::encode(ev)?.as_slice())?;
                    seq += 1;
                }
            }
        }
        if seq != self.next_seq {
            let mut meta = wtx.open_table(META)?;
            meta.insert(migrations::OUTBOX_NEXT_SEQ, codec::encode(&seq)?.as_slice())?;
        }
        let durable = first + jobs.len() == self.fates.len();
        let mut wtx = wtx;
        wtx.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| Error::Storage(e.to_string()))?;
        wtx.commit()?;
        self.next_seq = seq;
        self.unflushed = !durable;
        for i in 0..jobs.len() {
            self.fates[first + i] = Fate::Committed;
        }
        Ok(None)
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

    /// A group in one transaction: every command reads the counter the ones before it
    /// left and adds one; the refused ones write before refusing. Only what the others did
    /// is kept, their events are numbered without gaps, and each saw the state it would
    /// have seen alone.
    #[test]
    fn a_refusal_in_a_group_undoes_only_itself() {
        use crate::log::event::Event;
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let refuse = [
            false, true, false, false, true, true, false, false, false, true,
        ];
        let mut receivers = Vec::new();
        let mut group: Vec<Job> = Vec::new();
        for (i, &no) in refuse.iter().enumerate() {
            let (send, recv) = oneshot::channel();
            receivers.push(recv);
            let f = move |tx: &mut Tx<'_>| -> Result<u64> {
                let mut t = tx.open_table(T)?;
                let next = t.get(0)?.map(|v| v.value()).unwrap_or(0) + 1;
                t.insert(0, next)?;
                t.insert(100 + i as u64, next)?;
                drop(t);
                let now = time::OffsetDateTime::UNIX_EPOCH;
                let user_id = format!("u{i}");
                tx.emit(Envelope::new(
                    Event::UserDeleted {
                        user_id,
                        timestamp: now,
                    },
                    now,
                ));
                if no {
                    return Err(Error::conflict("nope", "refused"));
                }
                Ok(next)
            };
            group.push(Box::new(Queued {
                f,
                result: None,
                send,
            }));
        }
        let mut writer = GroupWriter {
            db: &db,
            next_seq: 1,
            fates: (0..group.len()).map(|_| Fate::Pending).collect(),
            unflushed: false,
        };
        writer.settle(&mut group, 0);
        assert!(
            writer.unflushed,
            "the last command was refused: the others still need the group's fsync"
        );
        assert_eq!(writer.next_seq, 7, "six events, one per command kept");
        for (job, fate) in group.into_iter().zip(writer.fates) {
            job.reply(match fate {
                Fate::Committed | Fate::Refused => Ok(()),
                _ => panic!("a command failed or was lost"),
            });
        }
        let mut kept = Vec::new();
        for (i, mut recv) in receivers.into_iter().enumerate() {
            match recv.try_recv().unwrap() {
                Ok(n) => kept.push((i as u64, n)),
                Err(_) => assert!(refuse[i]),
            }
        }
        assert_eq!(kept, vec![(0, 1), (2, 2), (3, 3), (6, 4), (7, 5), (8, 6)]);
        let rtx = db.begin_read().unwrap();
        let t = rtx.open_table(T).unwrap();
        assert_eq!(t.get(0).unwrap().unwrap().value(), 6);
        for (i, &no) in refuse.iter().enumerate() {
            assert_eq!(t.get(100 + i as u64).unwrap().is_some(), !no, "command {i}");
        }
        let outbox = rtx.open_table(OUTBOX_SEQ_TO_EVENT).unwrap();
        let keys: Vec<u64> = outbox
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert_eq!(keys, (1..=6).collect::<Vec<_>>());
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
