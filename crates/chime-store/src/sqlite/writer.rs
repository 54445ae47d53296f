//! Group commit: every write of the store goes to one writer thread, which runs the writes
//! that queued up while it was busy in ONE transaction, each in a savepoint of its own, and
//! commits them together.
//!
//! Why: with SQLite a commit costs far more than a row (the WAL append of every page it
//! touched, and with `synchronous=FULL` an fsync). Concurrent callers (HTTP creates, the roles'
//! batches, the relay) queued for a mutex would commit one by one; grouped, a burst of N
//! writes costs a few commits instead of N, and nobody waits longer than one group. No write
//! is delayed to wait for company: a group is whatever queued during the previous commit.
//!
//! Semantics per write are unchanged: a write that fails is rolled back to its savepoint and
//! gets its error, the others go on; a caller hears its result only once the group's commit
//! has succeeded; when the commit (or SQLite itself, e.g. on a full disk) fails, every write of
//! the group gets the error and none of them is kept.

use std::cell::RefCell;
use std::sync::{mpsc, Arc, OnceLock};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{map_err, OutboxSink, Tx};
use crate::{Error, Result};

/// The most writes committed together. A group is a single transaction: bigger groups save
/// commits but make the first writer of the group wait for the last.
const MAX_GROUP: usize = 256;

/// A queued write: runs inside the group's transaction and says whether it succeeded; its
/// finisher hears the group's outcome and answers the caller. Given the group's failure
/// instead of a transaction (the group failed before its turn), it only answers that.
type Job = Box<dyn FnOnce(std::result::Result<&Tx<'_>, &CommitFailure>) -> (bool, Finish) + Send>;
type Finish = Box<dyn FnOnce(Option<&CommitFailure>) + Send>;

/// Why a whole group failed, kept so every caller of the group gets an error of the same kind.
#[derive(Debug)]
struct CommitFailure {
    unavailable: bool,
    message: String,
}

impl CommitFailure {
    fn new(error: &Error) -> Self {
        Self {
            unavailable: matches!(error, Error::Unavailable(_)),
            message: error_chain(error),
        }
    }

    fn to_error(&self) -> Error {
        let source: Box<dyn std::error::Error + Send + Sync> = self.message.clone().into();
        if self.unavailable {
            Error::Unavailable(source)
        } else {
            Error::Storage(source)
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The handle callers hold; the thread stops when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn spawn(
        conn: Connection,
        sink: Arc<OnceLock<Arc<dyn OutboxSink>>>,
    ) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("chime-sqlite-writer".into())
            .spawn(move || run(conn, queue, &sink))
            .map_err(|e| Error::Storage(Box::new(e)))?;
        Ok(Self { jobs })
    }

    /// Runs `f` in the next group's transaction; returns its value once the group committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let result = match tx {
                // A panicking write (a bug) fails alone and leaves the writer thread running.
                Ok(tx) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
                    .unwrap_or_else(|_| Err(Error::Storage("the write panicked".into()))),
                Err(failure) => Err(failure.to_error()),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |failure| {
                let result = match failure {
                    None => result,
                    Some(failure) => Err(failure.to_error()),
                };
                // The caller may have gone (a cancelled request): its write stands regardless.
                let _ = answer.send(result);
            });
            (ok, finish)
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Storage("the SQLite writer thread has stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Storage("the SQLite writer thread has stopped".into()))?
    }
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>, sink: &OnceLock<Arc<dyn OutboxSink>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group, sink.get().map(|s| &**s));
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Job>, sink: Option<&dyn OutboxSink>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_unrun(group, &CommitFailure::new(&map_err(e))),
    };
    let view = Tx {
        conn: &tx,
        sink,
        topics: RefCell::new(Vec::new()),
    };
    let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        // Prepared once per connection (the cache): these run for every write.
        if let Err(e) = run_cached(&tx, "SAVEPOINT write") {
            let failure = CommitFailure::new(&map_err(e));
            finish_all(finishes, &failure);
            return fail_unrun(jobs.collect(), &failure);
        }
        let (ok, finish) = job(Ok(&view));
        finishes.push(finish);
        let settled = if ok {
            run_cached(&tx, "RELEASE write")
        } else {
            run_cached(&tx, "ROLLBACK TO write").and_then(|()| run_cached(&tx, "RELEASE write"))
        };
        // Some errors (a full disk, I/O) make SQLite roll the whole transaction back by
        // itself: then nothing of the group stands, and going on would run the rest outside
        // any transaction.
        if let Err(e) = settled.map_err(map_err).and_then(|()| {
            if tx.is_autocommit() {
                Err(Error::Unavailable(
                    "SQLite rolled the transaction back".into(),
                ))
            } else {
                Ok(())
            }
        }) {
            let failure = CommitFailure::new(&e);
            finish_all(finishes, &failure);
            return fail_unrun(jobs.collect(), &failure);
        }
    }
    let topics = view.topics.take();
    match tx.commit() {
        Ok(()) => {
            if let (Some(sink), false) = (sink, topics.is_empty()) {
                sink.committed(&topics);
            }
            for finish in finishes {
                finish(None);
            }
        }
        Err(e) => finish_all(finishes, &CommitFailure::new(&map_err(e))),
    }
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn finish_all(finishes: Vec<Finish>, failure: &CommitFailure) {
    for finish in finishes {
        finish(Some(failure));
    }
}

/// Jobs the failed group never reached hear the same failure.
fn fail_unrun(jobs: Vec<Job>, failure: &CommitFailure) {
    for job in jobs {
        let (_, finish) = job(Err(failure));
        finish(None);
    }
}
