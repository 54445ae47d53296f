//! Test helpers: start a server ([`spawn`]), call it with the typed client ([`client`]), as a
//! browser's session ([`browser`]), read its event stream ([`sse`]), wait for conditions with
//! a deadline.

mod browser;
mod client;
mod spawn;
mod sse;

use std::future::Future;
use std::time::Duration;

pub use browser::Browser;
pub use chime_testenv::receiver::{Receiver, Reply};
pub use client::{problem_of, reply_of, sample, TestClient};
pub use reqwest::StatusCode;
pub use spawn::{spawn_app, spawn_app_with, token_with, ChimeProcess, Serve, TestApp};

/// How long a test waits for something that should happen in milliseconds, before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Held for their whole run by the tests that load the machine for long and measure time
/// against a deadline (thousands of reminders, SIGKILL loops, the cluster, races against the
/// timer), so that two of them never share the two cores: each one's deadlines are sized for
/// the machine, not for half of it. A tokio mutex: it works across the tests' runtimes and is
/// not poisoned by a failing test.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`]. For state
/// that changes through background work with no event the test can subscribe to.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_until(what, tokio::time::Instant::now() + PATIENCE, check).await
}

/// [`eventually`], failing at `deadline`.
pub async fn eventually_until<T, F, Fut>(
    what: &str,
    deadline: tokio::time::Instant,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // Backoff of a poll with a deadline: there is no event to await.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An RFC 3339 instant `ms` milliseconds from now.
pub fn in_ms(ms: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(ms);
    jiff::Timestamp::from_millisecond(at.as_millisecond())
        .expect("in range")
        .to_string()
}

/// A port that was free a moment ago, for a server process that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One occurrence: task id and due instant as the API writes them.
pub type Occurrence = (String, String);

/// What each webhook POST `receiver` saw names: its `webhook-id`, its occurrence, and when it
/// arrived.
pub fn webhook_hits(receiver: &Receiver) -> Vec<(String, Occurrence, jiff::Timestamp)> {
    receiver
        .requests()
        .iter()
        .map(|request| {
            let id = request.header("webhook-id").unwrap_or_default().to_owned();
            let payload: serde_json::Value =
                serde_json::from_slice(&request.body).unwrap_or_default();
            let field = |name: &str| {
                payload["data"][name]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            let at = jiff::Timestamp::try_from(request.received_at).expect("an arrival time");
            (id, (field("taskId"), field("dueAt")), at)
        })
        .collect()
}

/// A test parameter from the environment (`CHIME_…`), or `default`; a bad value fails loudly.
pub fn param<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        Err(_) => default,
    }
}

/// The auth secret of every test browser's push subscription.
pub const PUSH_AUTH: [u8; 16] = [7; 16];

/// Subscribes `client`'s user to web push at `endpoint`, as a browser does: its own P-256
/// key and auth secret (the server's public key fetched first, as the web app does). Returns
/// the browser's private key, to read what is pushed to it ([`decrypt_push`]).
pub async fn subscribe_push(client: &TestClient, endpoint: &str) -> p256::SecretKey {
    use base64::Engine as _;
    client
        .get::<serde_json::Value>("/api/v1/push/public-key", StatusCode::OK)
        .await;
    let browser = p256::SecretKey::random(&mut rand::thread_rng());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let p256dh = b64.encode(p256::EncodedPoint::from(browser.public_key()).as_bytes());
    let auth = b64.encode(PUSH_AUTH);
    client
        .post::<serde_json::Value>(
            "/api/v1/push/subscriptions",
            &serde_json::json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}),
            StatusCode::CREATED,
        )
        .await;
    browser
}

/// What a browser holding `browser` (subscribed with [`PUSH_AUTH`]) reads from a push
/// message body, decrypted independently of the server's code: RFC 8291 keys over RFC 8188
/// `aes128gcm`, one record.
pub fn decrypt_push(browser: &p256::SecretKey, body: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit};
    let (salt, rest) = body.split_at(16);
    let record_size = u32::from_be_bytes(rest[..4].try_into().expect("rs")) as usize;
    let id_len = usize::from(rest[4]);
    let server_public = &rest[5..5 + id_len];
    let ciphertext = &rest[5 + id_len..];
    assert!(ciphertext.len() <= record_size, "one record");
    let server_key = p256::PublicKey::from_sec1_bytes(server_public).expect("the server's key");
    let shared = p256::ecdh::diffie_hellman(browser.to_nonzero_scalar(), server_key.as_affine());
    let browser_public = p256::EncodedPoint::from(browser.public_key());
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(browser_public.as_bytes());
    info.extend_from_slice(server_public);
    let mut ikm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&PUSH_AUTH), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .expect("ikm");
    let prk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &ikm);
    let (mut key, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut key)
        .expect("key");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("nonce");
    let mut plain = aes_gcm::Aes128Gcm::new(&key.into())
        .decrypt(&nonce.into(), ciphertext)
        .expect("a message the browser can read");
    // The last record's padding: a 2 delimiter, then zeros.
    while plain.last() == Some(&0) {
        plain.pop();
    }
    assert_eq!(plain.pop(), Some(2), "the last record's delimiter");
    plain
}

/// A reply in Twilio's shape to `url`, signed with `auth_token` (or not, when `None`).
pub async fn sms_reply(
    url: &str,
    auth_token: Option<&str>,
    from: &str,
    body: &str,
) -> (u16, String) {
    let params: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "ACtest"),
        ("From", from),
        ("To", "+14075550000"),
        ("Body", body),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signature = match auth_token {
        Some(token) => chime_channels::sms::request_signature(token, url, &params),
        None => "bm90IHRoZSBwcm92aWRlcidz".to_owned(),
    };
    let response = reqwest::Client::new()
        .post(url)
        .header("x-twilio-signature", signature)
        .form(&params)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}
