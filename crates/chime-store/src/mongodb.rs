//! The MongoDB adapter: the design's document store, shared by every instance of every role,
//! on the official driver (`mongodb` 3.x).
//!
//! Same records and semantics as the SQL adapters, one collection per table, so that a reader
//! of either finds the other: instants are 64-bit integers of microseconds (what the port
//! writes is what it reads back, compared as integers), ids and users their API strings
//! (compared byte by byte, as `COLLATE "C"` does), and JSON bodies kept as the text they were
//! written as (a BSON document would not round-trip every JSON value: integers beyond `i64`,
//! key order after an update, `\u0000` in keys). A table keyed by one column keeps it in `_id`;
//! one keyed by several (deliveries, occurrences, history) keeps them as fields under a unique
//! index.
//!
//! What MongoDB changes:
//! - Every write that spans documents (a task and its outbox events; a claim, its occurrences
//!   and its events) is a multi-document transaction, which needs a replica set (a single
//!   node is enough). Transactions read a snapshot and a write to a document another open
//!   transaction wrote fails at once with a `TransientTransactionError` (write conflict): the
//!   transaction is aborted and run again from the start, with a short jittered back-off. So a
//!   claim (`fire_due`, `wake_due`, `escalate_due`) first marks every row it read, and only
//!   when all marks took does it call the pure function that decides what to fire: two
//!   instances never both fire a row, and a retried claim never calls it twice for one row.
//! - Outbox seqs come from a counter document, taken outside the transaction (as PostgreSQL
//!   takes a sequence value): never reused, not in commit order across tasks, so the relay
//!   acknowledges exactly the seqs it published. Relays share the outbox as on PostgreSQL: a
//!   claim takes turns on a lock document instead of an advisory lock, and leases by the
//!   instance's clock (the clocks of instances sharing a store must agree to well within
//!   [`OUTBOX_LEASE`]).
//! - Wake-ups between processes come from change streams where PostgreSQL uses LISTEN/NOTIFY:
//!   inserts into `outbox` wake the relay, and a retried dead letter bumps its channel's
//!   document in `wakeups`, which wakes that channel's delivery workers. A stream that breaks
//!   resumes from its last resume token; everything is woken once after each (re)connection.
//! - The schema (collections with validators, indexes, a version document) is set up by
//!   [`MongoStore::migrate`], never implicitly.
//! - No handoffs yet ([`crate::OutboxStore::keeps_handoffs`] is false): on MongoDB a dead or
//!   cut-off notification consumer's share of `execute_task` waits for the broker to move its
//!   partitions, as it did everywhere before PostgreSQL kept handoffs.
//!
//! This file holds the client, the schema, the transaction loop, the document helpers and the
//! change streams; each port is a module of its own, as in `postgres/`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::mongodb::bson::{doc, Binary, Bson, Document};
use ::mongodb::error::{
    ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
use ::mongodb::options::{
    Acknowledgment, ClientOptions, FindOptions, IndexOptions, ReadConcern, ReturnDocument,
    WriteConcern,
};
use ::mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use async_trait::async_trait;
use chime_core::event::{Channel, DeliveryOutcome, OccurrenceKey};
use chime_core::{NotificationId, TaskId, UserId};
use futures::TryStreamExt;
use jiff::Timestamp;
use tokio::sync::{oneshot, Notify};

use crate::rows::prelude::*;
use crate::wakeups::{Signals, Wakers, Wakeup};

/// Runs `$body` (an expression of type `Result<T>` that may use `?` and the session `$s`)
/// in a transaction, again from the start while it fails with a transient error (a write
/// conflict), and commits it. A macro rather than a function taking a closure: the body
/// borrows the session and whatever the caller holds, which a closure's future could not.
macro_rules! transaction {
    ($store:expr, |$s:ident| $body:expr) => {{
        let store: &MongoStore = &$store;
        let mut attempt = 0u32;
        loop {
            let mut session = store.begin().await?;
            let result: crate::Result<_> = {
                let $s: &mut ::mongodb::ClientSession = &mut session;
                async { $body }.await
            };
            if let Some(done) = store.finish(&mut session, result, &mut attempt).await {
                break done;
            }
        }
    }};
}

mod deliveries;
mod occurrences;
mod outbox;
mod recipients;
mod reencrypt;
mod retention;
mod schedule;
mod sessions;
mod tasks;

/// The schema version this build sets up: the `version` of the `chime_schema` document.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a relay's claim on an outbox batch lasts (as on PostgreSQL).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(5);

/// How many times a transaction runs before a write conflict is reported as the store being
/// unavailable. Conflicts end when the other transaction commits, within milliseconds.
const MAX_ATTEMPTS: u32 = 60;

/// How long the change-stream listener waits before connecting again after a failure.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

// The collections: one per table of the SQL adapters, plus what MongoDB needs of its own.
pub(crate) const TASKS: &str = "tasks";
pub(crate) const SCHEDULE: &str = "schedule";
pub(crate) const DELIVERIES: &str = "deliveries";
pub(crate) const INBOX: &str = "inbox";
pub(crate) const HISTORY: &str = "history";
pub(crate) const HISTORY_DELIVERIES: &str = "history_deliveries";
pub(crate) const PUSH_SUBSCRIPTIONS: &str = "push_subscriptions";
pub(crate) const WEBHOOKS: &str = "webhooks";
pub(crate) const OUTBOX: &str = "outbox";
pub(crate) const SESSIONS: &str = "sessions";
pub(crate) const PROFILES: &str = "profiles";
pub(crate) const OCCURRENCES: &str = "occurrences";
pub(crate) const REPLY_TARGETS: &str = "sms_reply_targets";
pub(crate) const CALENDAR_FEEDS: &str = "calendar_feeds";
pub(crate) const DESTINATIONS: &str = "destinations";
/// Counters (the outbox seq) and the lock document outbox claims take turns on.
const COUNTERS: &str = "counters";
/// One document per delivery channel, bumped when a dead letter of it is retried: its change
/// events wake that channel's workers in every process.
const WAKEUPS: &str = "wakeups";
/// The schema version document.
const SCHEMA: &str = "chime_schema";

/// The store on one MongoDB database.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    /// Who this instance's outbox claims belong to (unique per store, so per process).
    claimer: Arc<str>,
    /// The relay's and the delivery workers' signals, and the change streams that wake them.
    wakers: Wakers,
}

impl MongoStore {
    /// Connects to `url` (`mongodb://[user:password@]host[:port][,host…]/database[?options]`;
    /// the database is required). Writes are acknowledged by a majority, journaled, unless
    /// the URL says otherwise (`w=`, `journal=`). Does not migrate: see [`MongoStore::migrate`].
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self> {
        let mut options = ClientOptions::parse(url).await.map_err(map_err)?;
        let database = options.default_database.clone().ok_or_else(|| {
            Error::Storage("the MongoDB URL names no database (mongodb://host/DATABASE)".into())
        })?;
        options.app_name.get_or_insert_with(|| "chime".to_owned());
        options.max_pool_size = Some(pool_size.max(1));
        let concern = options
            .write_concern
            .get_or_insert_with(WriteConcern::default);
        concern.w.get_or_insert(Acknowledgment::Majority);
        concern.journal.get_or_insert(true);
        let client = Client::with_options(options).map_err(map_err)?;
        let store = Self::from_client(client, &database);
        // One round trip now: an unreachable server is reported at start-up with its reason.
        store.ping().await?;
        Ok(store)
    }

    /// The store on database `database` of an existing client.
    pub fn from_client(client: Client, database: &str) -> Self {
        let db = client.database(database);
        Self {
            client,
            db,
            claimer: uuid::Uuid::now_v7().to_string().into(),
            wakers: Wakers::new(),
        }
    }

    /// The database, for the adapter's own tests and tools.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// One round trip (`ping`): whether the server answers, for readiness.
    pub async fn ping(&self) -> Result<()> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The schema version of the database (0 before the first migration), without changing
    /// anything: what `chime doctor` compares with [`SCHEMA_VERSION`].
    pub async fn applied_schema_version(&self) -> Result<i64> {
        let stored = self
            .coll(SCHEMA)
            .find_one(doc! { "_id": "schema" })
            .await
            .map_err(map_err)?;
        stored.map_or(Ok(0), |d| int(&d, "version"))
    }

    /// Sets up the collections (with their validators) and indexes this build needs, and
    /// records [`SCHEMA_VERSION`]. Idempotent, and safe for several instances at once (a
    /// collection or index that exists already is left as it is). A database set up by a
    /// newer build is refused.
    pub async fn migrate(&self) -> Result<()> {
        let applied = self.applied_schema_version().await?;
        if applied > SCHEMA_VERSION {
            return Err(Error::Corrupt(format!(
                "the database has schema version {applied}, which this build does not know: \
                 upgrade chime"
            )));
        }
        let existing: Vec<String> = self.db.list_collection_names().await.map_err(map_err)?;
        for (name, validator) in schema::collections() {
            if existing.iter().any(|e| e == name) {
                continue;
            }
            let created = match validator {
                Some(v) => self.db.create_collection(name).validator(v).await,
                None => self.db.create_collection(name).await,
            };
            match created {
                Ok(()) => {}
                // Another instance created it meanwhile (NamespaceExists).
                Err(e) if code_of(&e) == Some(48) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        for (collection, keys, unique) in schema::indexes() {
            let model = IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(unique).build())
                .build();
            self.coll(collection)
                .create_index(model)
                .await
                .map_err(map_err)?;
        }
        // The documents every instance updates (the outbox counter, the claim turn, one
        // wake-up per channel) exist before any write: two first upserts of one document at
        // once would fail one of them with a duplicate key.
        let shared = [
            (COUNTERS, doc! { "_id": "outbox", "seq": 0_i64 }),
            (COUNTERS, doc! { "_id": "outbox_claim", "claims": 0_i64 }),
        ]
        .into_iter()
        .chain(
            Channel::ALL
                .into_iter()
                .map(|c| (WAKEUPS, doc! { "_id": c.as_str(), "retried": 0_i64 })),
        );
        for (collection, document) in shared {
            match self.coll(collection).insert_one(document).await {
                Ok(_) => {}
                Err(e) if code_of(&e) == Some(11000) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        self.coll(SCHEMA)
            .update_one(
                doc! { "_id": "schema", "version": { "$lt": SCHEMA_VERSION } },
                doc! { "$set": { "version": SCHEMA_VERSION } },
            )
            .await
            .map_err(map_err)?;
        if self.applied_schema_version().await? == 0 {
            match self
                .coll(SCHEMA)
                .insert_one(doc! { "_id": "schema", "version": SCHEMA_VERSION })
                .await
            {
                Ok(_) => {}
                // Another instance recorded it meanwhile (DuplicateKey).
                Err(e) if code_of(&e) == Some(11000) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(())
    }

    pub(crate) fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// A session with a transaction started: snapshot reads, majority writes.
    async fn begin(&self) -> Result<ClientSession> {
        let mut session = self.client.start_session().await.map_err(map_err)?;
        session
            .start_transaction()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .await
            .map_err(map_err)?;
        Ok(session)
    }

    /// Commits a transaction whose body succeeded (again while the outcome of the commit is
    /// unknown), or aborts one whose body failed. `None`: a transient failure, run the
    /// transaction again.
    async fn finish<T>(
        &self,
        session: &mut ClientSession,
        result: Result<T>,
        attempt: &mut u32,
    ) -> Option<Result<T>> {
        let error = match result {
            Ok(value) => loop {
                match session.commit_transaction().await {
                    Ok(()) => return Some(Ok(value)),
                    Err(e)
                        if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                            && *attempt < MAX_ATTEMPTS =>
                    {
                        *attempt += 1;
                    }
                    Err(e) => break map_err(e),
                }
            },
            Err(e) => {
                // The server aborts it anyway when the session ends; nothing to report.
                let _ = session.abort_transaction().await;
                e
            }
        };
        if is_transient(&error) && *attempt < MAX_ATTEMPTS {
            *attempt += 1;
            tokio::time::sleep(backoff(*attempt)).await;
            return None;
        }
        Some(Err(error))
    }

    /// Appends `events` to the outbox in the transaction of `session`, with seqs taken from
    /// the counter outside it (so a conflict on the counter never aborts the write).
    async fn insert_outbox(
        &self,
        session: &mut ClientSession,
        events: &[OutboxEvent],
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let n = events.len() as i64;
        let counter = self
            .coll(COUNTERS)
            .find_one_and_update(doc! { "_id": "outbox" }, doc! { "$inc": { "seq": n } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?
            .ok_or_else(|| Error::Corrupt("the outbox counter is missing".into()))?;
        let last = int(&counter, "seq")?;
        let docs: Vec<Document> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                doc! {
                    "_id": last - n + 1 + i as i64,
                    "topic": e.topic,
                    "key": &e.key,
                    "payload": binary(&e.payload),
                    "claimed_by": Bson::Null,
                    "claimed_until": Bson::Null,
                }
            })
            .collect();
        self.coll(OUTBOX)
            .insert_many(docs)
            .session(&mut *session)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    fn signal_if(&self, wrote_events: bool) {
        self.wakers.wrote_events(wrote_events);
    }

    /// What starts the change-stream listener (see [`Wakers`]).
    fn listener(&self) -> impl FnOnce(Signals, oneshot::Receiver<()>) -> ListenFuture {
        let db = self.db.clone();
        move |signals, stop| Box::pin(listen_for_others(db, signals, stop))
    }
}

type ListenFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl From<::mongodb::error::Error> for Error {
    fn from(e: ::mongodb::error::Error) -> Self {
        map_err(e)
    }
}

/// A jittered, growing pause before running a conflicting transaction again (at most about
/// 50 ms), so that two instances that conflicted do not meet again at once.
fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let cap = 1u64 << attempt.min(5);
    Duration::from_micros(1_000 + u64::from(nanos) % (cap * 1_500))
}

/// The server's error code, when it answered with one.
fn code_of(e: &::mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

/// A failure that running the transaction again may not meet: a write conflict (also two
/// transactions inserting one key), or a transaction the server already aborted.
fn is_transient(e: &Error) -> bool {
    let (Error::Unavailable(source) | Error::Storage(source)) = e else {
        return false;
    };
    source
        .downcast_ref::<::mongodb::error::Error>()
        .is_some_and(|e| {
            e.contains_label(TRANSIENT_TRANSACTION_ERROR) || matches!(code_of(e), Some(112 | 251))
        })
}

pub(crate) fn map_err(e: ::mongodb::error::Error) -> Error {
    let retryable = matches!(
        &*e.kind,
        ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
    ) || e.contains_label(TRANSIENT_TRANSACTION_ERROR)
        || e.contains_label(::mongodb::error::RETRYABLE_WRITE_ERROR)
        || code_of(&e).is_some_and(|code| {
            // Write conflicts, no primary (an election), shutting down, out of disk, timeouts:
            // the same write may succeed later.
            matches!(
                code,
                6 | 7
                    | 89
                    | 91
                    | 112
                    | 189
                    | 262
                    | 9001
                    | 10107
                    | 11600
                    | 11602
                    | 13435
                    | 13436
                    | 14031
                    | 50
            )
        });
    if retryable {
        Error::Unavailable(Box::new(e))
    } else {
        Error::Storage(Box::new(e))
    }
}

/// The documents `filter` matches, in `sort` order, at most `limit` (`None`: all), in the
/// transaction of `session`.
async fn find_in(
    coll: &Collection<Document>,
    session: &mut ClientSession,
    filter: Document,
    sort: Option<Document>,
    limit: Option<usize>,
) -> Result<Vec<Document>> {
    if limit == Some(0) {
        return Ok(Vec::new());
    }
    let options = FindOptions::builder()
        .sort(sort)
        .limit(limit.map(limit_of))
        .build();
    let mut cursor = coll
        .find(filter)
        .with_options(options)
        .session(&mut *session)
        .await
        .map_err(map_err)?;
    let mut docs = Vec::new();
    while let Some(doc) = cursor.next(&mut *session).await {
        docs.push(doc.map_err(map_err)?);
    }
    Ok(docs)
}

/// As [`find_in`], outside any transaction.
async fn find_all(
    coll: &Collection<Document>,
    filter: Document,
    sort: Option<Document>,
    limit: Option<usize>,
) -> Result<Vec<Document>> {
    if limit == Some(0) {
        return Ok(Vec::new());
    }
    let options = FindOptions::builder()
        .sort(sort)
        .limit(limit.map(limit_of))
        .build();
    coll.find(filter)
        .with_options(options)
        .await
        .map_err(map_err)?
        .try_collect()
        .await
        .map_err(map_err)
}

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: ::mongodb::bson::spec::BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

fn missing(key: &str) -> Error {
    Error::Corrupt(format!("stored document has no valid `{key}`"))
}

/// An integer field (written as 64-bit; 32-bit read too).
fn int(d: &Document, key: &str) -> Result<i64> {
    opt_int(d, key)?.ok_or_else(|| missing(key))
}

/// An integer field that may be null or absent.
fn opt_int(d: &Document, key: &str) -> Result<Option<i64>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int64(i)) => Ok(Some(*i)),
        Some(Bson::Int32(i)) => Ok(Some(i64::from(*i))),
        Some(_) => Err(missing(key)),
    }
}

fn text(d: &Document, key: &str) -> Result<String> {
    opt_text(d, key)?.ok_or_else(|| missing(key))
}

fn opt_text(d: &Document, key: &str) -> Result<Option<String>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(missing(key)),
    }
}

/// A boolean field; absent is false.
fn flag(d: &Document, key: &str) -> Result<bool> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(false),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(_) => Err(missing(key)),
    }
}

fn bytes(d: &Document, key: &str) -> Result<Vec<u8>> {
    match d.get(key) {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        _ => Err(missing(key)),
    }
}

fn count(n: i64, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Corrupt(format!("stored {what} {n}")))
}

/// Free text from outside as stored: kept as it is (BSON strings may hold NUL), the same
/// signature as the PostgreSQL adapter's so that both read alike.
fn opt(s: Option<&str>) -> Bson {
    s.map_or(Bson::Null, |s| Bson::String(s.to_owned()))
}

fn opt_i64(v: Option<i64>) -> Bson {
    v.map_or(Bson::Null, Bson::Int64)
}

/// The collections and indexes of [`SCHEMA_VERSION`].
mod schema {
    use super::*;

    /// A `$jsonSchema` validator: each field with its BSON types (`?` after a type: null too).
    fn validator(fields: &[(&str, &str)]) -> Document {
        let mut properties = Document::new();
        let mut required = Vec::new();
        for (name, ty) in fields {
            let (ty, nullable) = match ty.strip_suffix('?') {
                Some(ty) => (ty, true),
                None => (*ty, false),
            };
            let types: Vec<Bson> = std::iter::once(ty)
                .chain(nullable.then_some("null"))
                .map(|t| Bson::String(t.to_owned()))
                .collect();
            properties.insert(*name, doc! { "bsonType": types });
            if !nullable {
                required.push(Bson::String((*name).to_owned()));
            }
        }
        doc! { "$jsonSchema": { "bsonType": "object", "required": required, "properties": properties } }
    }

    pub(super) fn collections() -> Vec<(&'static str, Option<Document>)> {
        let id = ("_id", "string");
        let key = [
            ("task_id", "string"),
            ("due_at", "long"),
            ("channel", "string"),
            ("target", "string"),
        ];
        vec![
            (
                TASKS,
                Some(validator(&[
                    id,
                    ("user_id", "string"),
                    ("version", "long"),
                    ("body", "string"),
                    ("created_at", "long"),
                    ("modified_at", "long"),
                ])),
            ),
            (
                SCHEDULE,
                Some(validator(&[
                    id,
                    ("user_id", "string"),
                    ("version", "long"),
                    ("body", "string?"),
                    ("due_at", "long?"),
                    ("seq", "long"),
                ])),
            ),
            (
                DELIVERIES,
                Some(validator(&[
                    key[0],
                    key[1],
                    key[2],
                    key[3],
                    ("user_id", "string"),
                    ("outcome", "string"),
                    ("attempts", "long"),
                    ("at", "long"),
                    ("next_attempt_at", "long?"),
                    ("leased_until", "long?"),
                ])),
            ),
            (
                INBOX,
                Some(validator(&[
                    id,
                    ("user_id", "string"),
                    ("task_id", "string"),
                    ("task_name", "string"),
                    ("due_at", "long"),
                    ("created_at", "long"),
                    ("read", "bool"),
                    ("silent", "bool"),
                ])),
            ),
            (
                HISTORY,
                Some(validator(&[
                    key[0],
                    key[1],
                    ("user_id", "string"),
                    ("seq", "long"),
                    ("fired_at", "long"),
                ])),
            ),
            (
                HISTORY_DELIVERIES,
                Some(validator(&[
                    key[0],
                    key[1],
                    key[2],
                    key[3],
                    ("outcome", "string"),
                    ("attempts", "long"),
                    ("at", "long"),
                ])),
            ),
            (
                PUSH_SUBSCRIPTIONS,
                Some(validator(&[
                    id,
                    ("user_id", "string"),
                    ("endpoint", "string"),
                    ("p256dh", "string"),
                    ("auth", "string"),
                    ("created_at", "long"),
                ])),
            ),
            (
                WEBHOOKS,
                Some(validator(&[
                    id,
                    ("url", "string"),
                    ("secret", "string"),
                    ("created_at", "long"),
                ])),
            ),
            (
                OUTBOX,
                Some(validator(&[
                    ("_id", "long"),
                    ("topic", "string"),
                    ("key", "string"),
                    ("payload", "binData"),
                ])),
            ),
            (
                SESSIONS,
                Some(validator(&[id, ("csrf", "string"), ("expires_at", "long")])),
            ),
            (
                PROFILES,
                Some(validator(&[id, ("body", "string"), ("updated_at", "long")])),
            ),
            (
                OCCURRENCES,
                Some(validator(&[
                    key[0],
                    key[1],
                    ("user_id", "string"),
                    ("fired_at", "long"),
                    ("expires_at", "long"),
                    ("seq", "long"),
                    ("wake_at", "long?"),
                    ("escalate_at", "long?"),
                ])),
            ),
            (
                REPLY_TARGETS,
                Some(validator(&[
                    id,
                    ("user_id", "string"),
                    ("task_id", "string"),
                    ("due_at", "long"),
                    ("sent_at", "long"),
                ])),
            ),
            (
                CALENDAR_FEEDS,
                Some(validator(&[
                    id,
                    ("generation", "long"),
                    ("active", "bool"),
                    ("created_at", "long"),
                ])),
            ),
            (
                DESTINATIONS,
                Some(validator(&[
                    id,
                    ("user_id", "string"),
                    ("name", "string"),
                    ("url", "string"),
                    ("created_at", "long"),
                ])),
            ),
            (COUNTERS, None),
            (WAKEUPS, None),
            (SCHEMA, None),
        ]
    }

    /// `(collection, keys, unique)`. What each query filters and sorts on, as the SQL
    /// adapters' indexes (MongoDB indexes nulls too, so no partial indexes are needed).
    pub(super) fn indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            (TASKS, doc! { "user_id": 1, "_id": 1 }, false),
            (SCHEDULE, doc! { "due_at": 1 }, false),
            (
                DELIVERIES,
                doc! { "task_id": 1, "due_at": 1, "channel": 1, "target": 1 },
                true,
            ),
            (
                DELIVERIES,
                doc! { "channel": 1, "outcome": 1, "next_attempt_at": 1 },
                false,
            ),
            (
                DELIVERIES,
                doc! { "user_id": 1, "task_id": 1, "outcome": 1 },
                false,
            ),
            (INBOX, doc! { "user_id": 1, "_id": 1 }, false),
            (
                INBOX,
                doc! { "user_id": 1, "task_id": 1, "due_at": 1 },
                false,
            ),
            (HISTORY, doc! { "task_id": 1, "due_at": 1 }, true),
            (
                HISTORY_DELIVERIES,
                doc! { "task_id": 1, "due_at": 1, "channel": 1, "target": 1 },
                true,
            ),
            (PUSH_SUBSCRIPTIONS, doc! { "endpoint": 1 }, true),
            (PUSH_SUBSCRIPTIONS, doc! { "user_id": 1 }, false),
            (OUTBOX, doc! { "key": 1, "_id": 1 }, false),
            (SESSIONS, doc! { "expires_at": 1 }, false),
            (OCCURRENCES, doc! { "task_id": 1, "due_at": 1 }, true),
            (OCCURRENCES, doc! { "user_id": 1, "due_at": 1 }, false),
            (OCCURRENCES, doc! { "wake_at": 1 }, false),
            (OCCURRENCES, doc! { "escalate_at": 1 }, false),
            (
                DESTINATIONS,
                doc! { "user_id": 1, "created_at": 1, "_id": 1 },
                false,
            ),
        ]
    }
}

/// Watches inserts into `outbox` and changes of `wakeups`, and wakes the relay or the
/// channel's delivery workers on each, and all of them once after each (re)connection, until
/// the store is dropped. A broken stream resumes after the last event it saw (its resume
/// token), so nothing committed meanwhile is missed where the server still has it.
async fn listen_for_others(db: Database, signals: Signals, mut stop: oneshot::Receiver<()>) {
    use futures::StreamExt;
    let mut tokens: [Option<::mongodb::change_stream::event::ResumeToken>; 2] = [None, None];
    loop {
        let opening = async {
            let outbox = db
                .collection::<Document>(OUTBOX)
                .watch()
                .pipeline([doc! { "$match": { "operationType": "insert" } }])
                .resume_after(tokens[0].clone())
                .await?;
            let wakeups = db
                .collection::<Document>(WAKEUPS)
                .watch()
                .resume_after(tokens[1].clone())
                .await?;
            Ok::<_, ::mongodb::error::Error>((outbox, wakeups))
        };
        let opened = tokio::select! {
            _ = &mut stop => return,
            opened = opening => opened,
        };
        let (mut outbox, mut wakeups) = match opened {
            Ok(streams) => streams,
            Err(e) => {
                // A resume token the server no longer has: start afresh (everything is woken
                // once below, for what was missed).
                tokens = [None, None];
                tracing::warn!(error = %e, "cannot watch for other processes' writes; retrying");
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(LISTEN_RETRY) => continue,
                }
            }
        };
        if !signals.wake(Wakeup::Everything) {
            return;
        }
        loop {
            let woke = tokio::select! {
                _ = &mut stop => return,
                event = outbox.next() => match event {
                    Some(Ok(_)) => {
                        tokens[0] = outbox.resume_token();
                        signals.wake(Wakeup::Outbox)
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "lost the outbox change stream; resuming");
                        break;
                    }
                    None => break,
                },
                event = wakeups.next() => match event {
                    Some(Ok(event)) => {
                        tokens[1] = wakeups.resume_token();
                        let channel = event
                            .document_key
                            .as_ref()
                            .and_then(|k| k.get_str("_id").ok())
                            .unwrap_or_default()
                            .to_owned();
                        signals.wake(Wakeup::Channel(&channel))
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "lost the wake-up change stream; resuming");
                        break;
                    }
                    None => break,
                },
            };
            if !woke {
                return;
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(LISTEN_RETRY) => {}
        }
    }
}
