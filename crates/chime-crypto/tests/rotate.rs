//! `chime keys rotate` as a library call, on SQLite: data written under `k1` moves to `k2`,
//! nothing is left on `k1` (not even in a compacted copy of the file), everything still reads
//! back with `k2` alone, a second run rewrites nothing, and it runs beside live writers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chime_core::event::{Channel, DeliveryOutcome, Event, OccurrenceKey, TaskChanged};
use chime_core::{TaskId, TaskSpec, UserId};
use chime_crypto::rotate::{rotate, Summary};
use chime_crypto::scan::scan_files;
use chime_crypto::{EncryptedStore, Keyring};
use chime_store::sqlite::{SqliteOptions, SqliteStore};
use chime_store::{
    DeliveryStatus, DeliveryStore, DeliveryWrite, DestinationRecord, OutboxEvent, OutboxStore,
    PiiTable, PushSubscriptionRecord, RecipientStore, ScheduleChange, ScheduleStore, TaskRecord,
    TaskStore, WebhookEndpoint,
};
use jiff::Timestamp;
use serde_json::json;

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];

fn keyring(keys: &[(&str, [u8; 32])]) -> Arc<Keyring> {
    Arc::new(
        Keyring::new(keys.iter().map(|(id, k)| ((*id).to_owned(), *k)).collect())
            .expect("a valid keyring"),
    )
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_893_456_000 + secs).expect("a valid instant")
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("a valid user id")
}

fn body(email: &str, sms: &str) -> serde_json::Value {
    TaskSpec::parse(&json!({
        "name": "Water the plants",
        "startDate": "2030-01-07 09:00:00.00+0100",
        "timeZone": "Europe/Berlin",
        "notify": { "email": email, "sms": sms, "inApp": true },
    }))
    .expect("a valid task body")
    .to_stored()
}

fn task(owner: &UserId, i: usize) -> TaskRecord {
    TaskRecord {
        id: TaskId::new(),
        user_id: owner.clone(),
        version: 1,
        body: body(&format!("owner{i}@example.com"), "+14075550100"),
        created_at: at(0),
        modified_at: at(0),
    }
}

fn created(task: &TaskRecord) -> OutboxEvent {
    OutboxEvent::from(&Event::TaskCreated(TaskChanged {
        task_id: task.id,
        user_id: task.user_id.clone(),
        version: task.version,
        task: task.body.clone(),
        at: task.created_at,
    }))
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions::default()).expect("open the SQLite store")
}

/// Writes one of everything that holds personal data, through `store`.
async fn write_everything(store: &EncryptedStore, owner: &UserId, n: usize) -> Vec<TaskRecord> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let t = task(owner, i);
        store.create_task(&t, created(&t)).await.expect("create");
        tasks.push(t);
    }
    let changes: Vec<ScheduleChange> = tasks
        .iter()
        .map(|t| ScheduleChange::Set {
            task_id: t.id,
            user_id: t.user_id.clone(),
            version: t.version,
            body: t.body.clone(),
            next: Some((at(100), 1)),
        })
        .collect();
    store
        .apply_schedule_changes(&changes)
        .await
        .expect("schedule");
    let occurrence = OccurrenceKey {
        task_id: tasks[0].id,
        due_at: at(100),
    };
    store
        .record_deliveries(&[DeliveryWrite {
            occurrence,
            user_id: owner.clone(),
            status: DeliveryStatus {
                channel: Channel::Webhook,
                target: String::new(),
                outcome: DeliveryOutcome::Pending,
                attempts: 0,
                at: at(100),
                detail: None,
                provider_id: None,
            },
            inbox: None,
            message: Some(json!({
                "late": false,
                "task": tasks[0].body,
                "recipient": { "kind": "webhook", "url": "https://hooks.example/owner", "secret": "whsec_b3duZXI=" },
            })),
            event: None,
        }])
        .await
        .expect("record a delivery");
    store
        .put_push_subscription(&PushSubscriptionRecord {
            id: "sub_1".to_owned(),
            user_id: owner.clone(),
            endpoint: "https://push.example/owner-browser".to_owned(),
            p256dh: "BOwnerP256dh".to_owned(),
            auth: "owner-auth".to_owned(),
            created_at: at(1),
        })
        .await
        .expect("put a push subscription");
    store
        .put_webhook(&WebhookEndpoint {
            user_id: owner.clone(),
            url: "https://hooks.example/owner".to_owned(),
            secret: "whsec_b3duZXI=".to_owned(),
            created_at: at(1),
        })
        .await
        .expect("put a webhook");
    store
        .put_destination(&destination(owner))
        .await
        .expect("put a destination");
    tasks
}

/// `owner`'s one destination: a Telegram chat, its bot token in the URL.
fn destination(owner: &UserId) -> DestinationRecord {
    DestinationRecord {
        id: "dst_family".to_owned(),
        user_id: owner.clone(),
        name: "Family chat".to_owned(),
        url: "tgram://123456:bot-token-canary/-100987654".to_owned(),
        created_at: at(1),
    }
}

/// A compacted copy of the store (only live rows: no free pages, no WAL), to scan.
fn compacted_copy(path: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join(format!("copy-{}.sqlite", TaskId::new()));
    rusqlite::Connection::open(path)
        .and_then(|c| c.execute("VACUUM INTO ?1", [copy.to_string_lossy()]))
        .expect("VACUUM INTO a copy");
    copy
}

async fn run(store: &SqliteStore, keys: &Arc<Keyring>) -> Summary {
    let mut reports = 0;
    let summary = rotate(store, keys.clone(), 2, |_| reports += 1)
        .await
        .expect("rotate");
    assert!(reports >= summary.tables.len());
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_moves_every_field_to_the_newest_key_and_a_second_run_is_a_no_op() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("chime.sqlite");
    let raw = Arc::new(open(&path));
    let owner = user("alice");

    let before = EncryptedStore::new(raw.clone(), keyring(&[("k1", K1)]));
    let tasks = write_everything(&before, &owner, 5).await;
    // A row from before encryption was turned on: plaintext, which the rotation encrypts.
    let legacy = task(&owner, 99);
    raw.create_task(&legacy, created(&legacy))
        .await
        .expect("plaintext row");

    let k1_marker = "enc:v1:k1:";
    let copy = compacted_copy(&path, dir.path());
    assert!(!scan_files(&[copy], &[k1_marker]).expect("scan").is_empty());

    let both = keyring(&[("k1", K1), ("k2", K2)]);
    let summary = run(&raw, &both).await;
    // 6 tasks, 5 schedule rows, 1 delivery, 1 subscription, 1 webhook, 1 destination, 6
    // outbox events.
    assert_eq!(summary.rewritten(), 21, "{summary:?}");
    let destinations = summary
        .tables
        .iter()
        .find(|t| t.table == PiiTable::Destinations)
        .expect("the destinations were visited");
    assert_eq!((destinations.scanned, destinations.rewritten), (1, 1));

    let copy = compacted_copy(&path, dir.path());
    let hits = scan_files(
        std::slice::from_ref(&copy),
        &[k1_marker, "owner99@example.com", "bot-token-canary"],
    )
    .expect("scan");
    assert!(hits.is_empty(), "left on k1 or in clear: {hits:?}");
    assert!(!scan_files(&[copy], &["enc:v1:k2:"])
        .expect("scan")
        .is_empty());

    // Everything reads back with k2 alone: k1 is no longer needed.
    let after = EncryptedStore::new(raw.clone(), keyring(&[("k2", K2)]));
    for t in tasks.iter().chain([&legacy]) {
        let read = after
            .get_task(&owner, t.id)
            .await
            .expect("get")
            .expect("the task");
        assert_eq!(read.body, t.body);
        let row = after.scheduled(t.id).await.expect("scheduled");
        assert_eq!(
            row.map(|r| r.body),
            (t.id != legacy.id).then(|| t.body.clone())
        );
    }
    let claimed = after
        .claim_deliveries(Channel::Webhook, at(200), at(300), 10)
        .await
        .expect("claim");
    assert_eq!(
        claimed[0].message["recipient"]["url"],
        "https://hooks.example/owner"
    );
    assert_eq!(claimed[0].message["task"], tasks[0].body);
    let subs = after
        .push_subscriptions(&owner)
        .await
        .expect("subscriptions");
    assert_eq!(subs[0].endpoint, "https://push.example/owner-browser");
    assert_eq!(subs[0].auth, "owner-auth");
    let hook = after
        .webhook(&owner)
        .await
        .expect("webhook")
        .expect("a webhook");
    assert_eq!(hook.secret, "whsec_b3duZXI=");
    assert_eq!(
        after.destinations(&owner).await.expect("destinations"),
        [destination(&owner)]
    );
    let outbox = after.outbox_batch(100).await.expect("outbox");
    assert_eq!(outbox.len(), 6);
    assert_eq!(outbox[0].payload, created(&tasks[0]).payload);

    // Idempotent: nothing left to do.
    assert_eq!(run(&raw, &both).await.rewritten(), 0);
}

/// A browser that subscribed again under the new key before the rotation (as another user)
/// left two rows for one endpoint; the rotation keeps the later one, as a put would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_endpoint_put_again_under_the_new_key_is_one_subscription_after_rotation() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let raw = Arc::new(open(&dir.path().join("chime.sqlite")));
    let (alice, bob) = (user("alice"), user("bob"));
    let sub = |owner: &UserId, id: &str| PushSubscriptionRecord {
        id: id.to_owned(),
        user_id: owner.clone(),
        endpoint: "https://push.example/shared-laptop".to_owned(),
        p256dh: "BKey".to_owned(),
        auth: "auth".to_owned(),
        created_at: at(1),
    };
    let old = EncryptedStore::new(raw.clone(), keyring(&[("k1", K1)]));
    old.put_push_subscription(&sub(&alice, "sub_alice"))
        .await
        .expect("put");
    let new = EncryptedStore::new(raw.clone(), keyring(&[("k1", K1), ("k2", K2)]));
    // Alice again: the stored (k1) row is matched and keeps its id.
    let again = new
        .put_push_subscription(&sub(&alice, "sub_alice_2"))
        .await
        .expect("put");
    assert_eq!(again.id, "sub_alice");
    // Bob, on the same browser: a second row until the rotation.
    new.put_push_subscription(&sub(&bob, "sub_bob"))
        .await
        .expect("put");
    assert_eq!(new.push_subscriptions(&alice).await.expect("list").len(), 1);

    let summary = run(&raw, &keyring(&[("k1", K1), ("k2", K2)])).await;
    assert_eq!(summary.tables.iter().map(|t| t.removed).sum::<usize>(), 1);
    assert!(new
        .push_subscriptions(&alice)
        .await
        .expect("list")
        .is_empty());
    let bobs = new.push_subscriptions(&bob).await.expect("list");
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].endpoint, "https://push.example/shared-laptop");
}

/// Online: a rotation in small batches while another store instance keeps creating tasks
/// (on the new key) loses nothing and leaves nothing on the old key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_beside_a_live_writer_loses_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("chime.sqlite");
    let owner = user("alice");
    let old = EncryptedStore::new(Arc::new(open(&path)), keyring(&[("k1", K1)]));
    let mut tasks = write_everything(&old, &owner, 40).await;

    let both = keyring(&[("k1", K1), ("k2", K2)]);
    let server = EncryptedStore::new(Arc::new(open(&path)), both.clone());
    let writer = {
        let (server, owner) = (server.clone(), owner.clone());
        tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 100..140 {
                let t = task(&owner, i);
                server.create_task(&t, created(&t)).await.expect("create");
                written.push(t);
            }
            written
        })
    };
    let rotator = open(&path);
    rotate(&rotator, both.clone(), 3, |_| {})
        .await
        .expect("rotate");
    tasks.extend(writer.await.expect("the writer"));

    let copy = compacted_copy(&path, dir.path());
    assert!(scan_files(&[copy], &["enc:v1:k1:"])
        .expect("scan")
        .is_empty());
    let listed = server.list_tasks(&owner, None, 1000).await.expect("list");
    assert_eq!(listed.len(), tasks.len());
    assert_eq!(
        server.outbox_batch(1000).await.expect("outbox").len(),
        tasks.len()
    );
}
