//! The Web Push adapter, checked two ways: byte for byte against the example of RFC 8291 §5,
//! and end to end against a local push service (`chime_testenv::receiver` on 127.0.0.1:0) that
//! does what a real one does with a request: checks the VAPID token against the key the
//! subscription was made with, and hands the body to a "browser" that decrypts it with its own
//! private key.
//!
//! The decryption here is written from the RFCs, apart from the adapter's encryption code
//! (HMAC for the extract steps, HKDF only for expanding), and is itself checked against the
//! RFC's example before it is trusted to judge the adapter.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chime_channels::push::{encrypt_with, PushChannel, PushConfig, VapidKeys};
use chime_channels::{
    ChannelAdapter, PushSubscription, Recipient, Reminder, ReminderAction, SendError,
};
use chime_core::event::OccurrenceKey;
use chime_core::{TaskId, TaskSpec, UserId};
use chime_testenv::receiver::{Receiver, Reply, Request};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde_json::{json, Value};
use sha2::Sha256;

// RFC 8291 §5, "Push Message Encryption Example" (base64url, as the RFC prints them).
const RFC_PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const RFC_AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const RFC_UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const RFC_SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const RFC_AUTH_SECRET: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const RFC_MESSAGE: &str = concat!(
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
);

const SUBJECT: &str = "mailto:ops@chime.example";
/// Part of every endpoint path, to check that no error reason repeats the endpoint.
const CAPABILITY: &str = "cap-9f2c1d7e";

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn array16(s: &str) -> [u8; 16] {
    b64(s).try_into().expect("16 octets")
}

// --- RFC 8291 §5 ---------------------------------------------------------------------------

#[test]
fn encryption_reproduces_the_rfc_8291_example_byte_for_byte() {
    let as_private = SecretKey::from_slice(&b64(RFC_AS_PRIVATE)).expect("as private key");
    assert_eq!(
        as_private.public_key().to_encoded_point(false).as_bytes(),
        b64(RFC_AS_PUBLIC).as_slice()
    );
    let ua_public = PublicKey::from_sec1_bytes(&b64(RFC_UA_PUBLIC)).expect("ua public key");

    let body = encrypt_with(
        RFC_PLAINTEXT.as_bytes(),
        &ua_public,
        &array16(RFC_AUTH_SECRET),
        &as_private,
        &array16(RFC_SALT),
    )
    .expect("encrypts");

    assert_eq!(URL_SAFE_NO_PAD.encode(body), RFC_MESSAGE);
}

#[test]
fn the_tests_own_decryption_opens_the_rfc_8291_example() {
    let ua_private = SecretKey::from_slice(&b64(RFC_UA_PRIVATE)).expect("ua private key");
    let plaintext =
        decrypt(&b64(RFC_MESSAGE), &ua_private, &array16(RFC_AUTH_SECRET)).expect("decrypts");
    assert_eq!(plaintext, RFC_PLAINTEXT.as_bytes());
}

/// RFC 8291 §3 and RFC 8188 §2, from the receiving side.
fn decrypt(body: &[u8], ua_private: &SecretKey, auth_secret: &[u8; 16]) -> Result<Vec<u8>, String> {
    type HmacSha256 = Hmac<Sha256>;
    let hmac = |key: &[u8], data: &[u8]| {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes()
    };
    let expand = |prk: &[u8], info: &[u8], len: usize| {
        let mut out = vec![0; len];
        Hkdf::<Sha256>::from_prk(prk)
            .expect("32-octet prk")
            .expand(info, &mut out)
            .expect("short output");
        out
    };

    if body.len() < 21 {
        return Err("body shorter than the header".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
    let idlen = usize::from(body[20]);
    if idlen != 65 || body.len() < 21 + idlen {
        return Err(format!("keyid of {idlen} octets, want 65"));
    }
    let as_public_bytes = &body[21..21 + idlen];
    let ciphertext = &body[21 + idlen..];
    if ciphertext.len() > rs as usize {
        return Err(format!(
            "ciphertext of {} octets in a record of {rs}",
            ciphertext.len()
        ));
    }
    let as_public = PublicKey::from_sec1_bytes(as_public_bytes).map_err(|e| e.to_string())?;
    let ecdh = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), as_public.as_affine());

    let ua_public = ua_private.public_key().to_encoded_point(false);
    let prk_key = hmac(auth_secret, ecdh.raw_secret_bytes());
    let key_info = [
        b"WebPush: info\0".as_slice(),
        ua_public.as_bytes(),
        as_public_bytes,
    ]
    .concat();
    let ikm = expand(&prk_key, &key_info, 32);
    let prk = hmac(salt, &ikm);
    let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12);

    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|e| e.to_string())?;
    let mut record = cipher
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "AES-GCM authentication failed".to_owned())?;
    // Padding is zeros after the delimiter; the only (so the last) record has delimiter 2.
    while record.last() == Some(&0) {
        record.pop();
    }
    match record.pop() {
        Some(2) => Ok(record),
        other => Err(format!("last-record delimiter {other:?}, want 2")),
    }
}

// --- a local push service ------------------------------------------------------------------

/// A browser's side of a subscription: its key pair and auth secret.
struct Browser {
    private: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        let mut auth = [0; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth);
        Self {
            private: SecretKey::random(&mut rand::rngs::OsRng),
            auth,
        }
    }

    fn subscription(&self, endpoint: String) -> PushSubscription {
        PushSubscription {
            id: "psub_1".into(),
            endpoint,
            p256dh: URL_SAFE_NO_PAD
                .encode(self.private.public_key().to_encoded_point(false).as_bytes()),
            auth: URL_SAFE_NO_PAD.encode(self.auth),
        }
    }
}

/// What the push service saw of an accepted message.
#[derive(Debug)]
struct Delivered {
    headers: HeaderMap,
    plaintext: Vec<u8>,
}

/// What the push service checks a message against: the subscription's server key, and the
/// browser that can decrypt it.
#[derive(Clone)]
struct Service {
    server_key: String,
    browser_private: SecretKey,
    browser_auth: [u8; 16],
}

impl Service {
    /// A message is accepted only if its VAPID token is good for `origin` and the browser can
    /// decrypt it.
    fn check(&self, request: &Request, origin: &str) -> Result<Delivered, String> {
        check_vapid(&request.headers, self, origin)?;
        let plaintext = decrypt(&request.body, &self.browser_private, &self.browser_auth)?;
        Ok(Delivered {
            headers: request.headers.clone(),
            plaintext,
        })
    }

    /// As a push service answers `request`: by its path, `/accept/…` (checked), `/status/CODE/…`
    /// or `/hang/…`.
    fn answer(&self, request: &Request) -> Reply {
        let mut segments = request.path().trim_start_matches('/').split('/');
        match (segments.next(), segments.next()) {
            (Some("accept"), _) => {
                // The origin the client addressed, as a real push service sees it.
                let origin = format!("http://{}", request.header("host").unwrap_or_default());
                match self.check(request, &origin) {
                    Ok(_) => Reply::status(201).header("location", format!("{origin}/message/m1")),
                    Err(e) => Reply::status(400).body(e),
                }
            }
            (Some("status"), Some("429")) => Reply::status(429)
                .header("retry-after", "120")
                .body("slow down"),
            (Some("status"), Some("400")) => {
                Reply::status(400).body("UnauthorizedRegistration: bad header\n")
            }
            (Some("status"), Some(code)) => Reply::status(code.parse().expect("a status")),
            (Some("hang"), _) => Reply::never(),
            _ => Reply::status(404),
        }
    }
}

struct PushService {
    base: String,
    browser: Browser,
    service: Service,
    receiver: Receiver,
}

impl PushService {
    fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}/{CAPABILITY}", self.base)
    }

    /// The `n`th message the service received, checked as it was when it arrived.
    async fn delivered(&self, n: usize) -> Result<Delivered, String> {
        let request = self.receiver.nth(n).await;
        self.service.check(&request, &self.base)
    }
}

async fn spawn_push_service(keys: &VapidKeys) -> PushService {
    let browser = Browser::new();
    let service = Service {
        server_key: keys.public_key_base64url().to_owned(),
        browser_private: browser.private.clone(),
        browser_auth: browser.auth,
    };
    let answering = service.clone();
    let receiver = Receiver::answering(move |request, _| answering.answer(request)).await;
    PushService {
        base: receiver.base().to_owned(),
        browser,
        service,
        receiver,
    }
}

/// RFC 8292 §2 and §3, as a push service checks them.
fn check_vapid(headers: &HeaderMap, s: &Service, origin: &str) -> Result<(), String> {
    let value = headers
        .get("authorization")
        .ok_or("no Authorization")?
        .to_str()
        .map_err(|e| e.to_string())?;
    let params = value.strip_prefix("vapid ").ok_or("not the vapid scheme")?;
    let (mut t, mut k) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v),
            _ => return Err(format!("unexpected parameter {param:?}")),
        }
    }
    let (t, k) = (t.ok_or("no t")?, k.ok_or("no k")?);
    if k != s.server_key {
        return Err("k is not the key the subscription was made with".into());
    }
    let verifying = VerifyingKey::from_sec1_bytes(&b64(k)).map_err(|e| e.to_string())?;

    let parts: Vec<&str> = t.split('.').collect();
    let [header_b64, claims_b64, signature] = parts[..] else {
        return Err("t is not a JWS compact serialization".into());
    };
    let header: Value = serde_json::from_slice(&b64(header_b64)).map_err(|e| e.to_string())?;
    if header != json!({"typ": "JWT", "alg": "ES256"}) {
        return Err(format!("unexpected JWT header {header}"));
    }
    let signature = b64(signature);
    if signature.len() != 64 {
        return Err(format!(
            "ES256 signature of {} octets, want 64",
            signature.len()
        ));
    }
    let signature = Signature::from_slice(&signature).map_err(|e| e.to_string())?;
    verifying
        .verify(format!("{header_b64}.{claims_b64}").as_bytes(), &signature)
        .map_err(|_| "bad JWT signature".to_owned())?;

    let claims: Value = serde_json::from_slice(&b64(claims_b64)).map_err(|e| e.to_string())?;
    if claims["aud"] != json!(origin) {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    if claims["sub"] != json!(SUBJECT) {
        return Err(format!("sub {} is not {SUBJECT}", claims["sub"]));
    }
    let now = jiff::Timestamp::now().as_second();
    let exp = claims["exp"].as_i64().ok_or("exp is not a number")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 hours after {now}"));
    }
    Ok(())
}

// --- helpers -------------------------------------------------------------------------------

fn keys() -> VapidKeys {
    VapidKeys::from_secret(SecretKey::random(&mut rand::rngs::OsRng))
}

fn config(timeout_seconds: u64) -> PushConfig {
    serde_json::from_value(json!({
        "subject": SUBJECT,
        "ttl_seconds": 3600,
        "timeout_seconds": timeout_seconds,
    }))
    .expect("config")
}

fn channel(keys: VapidKeys) -> PushChannel {
    PushChannel::new(&config(15), keys)
        .expect("channel")
        .allow_http_endpoints()
}

fn message(subscription: PushSubscription, description: Option<&str>, late: bool) -> Reminder {
    let mut body = json!({
        "name": "Water the plants",
        "startDate": "2026-12-07T08:00:00Z",
        "timeZone": "Europe/Berlin",
    });
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    let task = TaskSpec::parse(&body).expect("task");
    let occurrence = OccurrenceKey {
        task_id: TaskId::new(),
        due_at: "2026-12-07T08:00:00Z".parse().expect("timestamp"),
    };
    Reminder {
        idempotency_key: format!("{occurrence}/push/{}", subscription.id),
        occurrence,
        user_id: UserId::parse("alice").expect("user"),
        task,
        late,
        attempt: 1,
        recipient: Recipient::Push { subscription },
        actions: Vec::new(),
    }
}

async fn send_to(path: &str) -> (SendError, PushService) {
    let keys = keys();
    let service = spawn_push_service(&keys).await;
    let sub = service.browser.subscription(service.endpoint(path));
    let err = channel(keys)
        .send(&message(sub, None, false))
        .await
        .expect_err("a refusal");
    assert!(!err.to_string().contains(CAPABILITY), "{err}");
    (err, service)
}

// --- end to end ----------------------------------------------------------------------------

#[tokio::test]
async fn a_reminder_reaches_the_browser_signed_with_vapid_and_readable_only_by_it() {
    let keys = keys();
    let service = spawn_push_service(&keys).await;
    let sub = service.browser.subscription(service.endpoint("accept"));
    let message = Reminder {
        actions: vec![ReminderAction {
            kind: "done",
            label: "Done".into(),
            token: "tok.done".into(),
            callback: None,
        }],
        ..message(sub, Some("The ferns too"), false)
    };

    let sent = channel(keys).send(&message).await.expect("sent");

    assert_eq!(
        sent.provider_id.as_deref(),
        Some(format!("{}/message/m1", service.base).as_str())
    );
    let delivered = service
        .delivered(1)
        .await
        .expect("VAPID and encryption check out");
    let h = &delivered.headers;
    assert_eq!(h["content-encoding"], "aes128gcm");
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["ttl"], "3600");
    assert_eq!(h["urgency"], "high");
    let topic = h["topic"].to_str().expect("ascii");
    assert_eq!(topic.len(), 32);
    assert!(topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    let payload: Value = serde_json::from_slice(&delivered.plaintext).expect("JSON payload");
    assert_eq!(payload["title"], "Reminder: Water the plants");
    assert_eq!(
        payload["body"],
        "Monday 7 December 2026, 09:00 (Europe/Berlin)\nThe ferns too"
    );
    assert_eq!(payload["taskId"], message.occurrence.task_id.to_string());
    assert_eq!(payload["dueAt"], "2026-12-07T08:00:00Z");
    assert_eq!(payload["tag"], message.idempotency_key);
    // Buttons for the service worker, each with the token it posts to `/act/{token}`.
    assert_eq!(
        payload["actions"],
        serde_json::json!([{"action": "done", "title": "Done", "token": "tok.done"}])
    );
}

#[tokio::test]
async fn a_late_occurrence_says_so_and_a_long_description_is_cut_to_fit() {
    let keys = keys();
    let service = spawn_push_service(&keys).await;
    let sub = service.browser.subscription(service.endpoint("accept"));
    let description = "\"quoted\" ".repeat(440); // ~4000 characters, escaping makes it longer

    channel(keys)
        .send(&message(sub, Some(&description), true))
        .await
        .expect("sent");

    let delivered = service.delivered(1).await.expect("valid");
    assert!(
        delivered.plaintext.len() <= 3 * 1024,
        "{}",
        delivered.plaintext.len()
    );
    let payload: Value = serde_json::from_slice(&delivered.plaintext).expect("JSON payload");
    assert_eq!(payload["title"], "Late reminder: Water the plants");
    let body = payload["body"].as_str().expect("body");
    assert!(body.starts_with("Monday 7 December 2026, 09:00 (Europe/Berlin)\n\"quoted\""));
    assert!(body.ends_with('…'), "{body}");
}

#[tokio::test]
async fn a_410_means_the_subscription_is_gone() {
    let (err, _service) = send_to("status/410").await;
    assert!(matches!(err, SendError::Gone { .. }), "{err:?}");
}

#[tokio::test]
async fn a_404_means_the_subscription_is_gone() {
    let (err, _service) = send_to("status/404").await;
    assert!(matches!(err, SendError::Gone { .. }), "{err:?}");
}

#[tokio::test]
async fn a_429_is_transient_and_carries_its_retry_after() {
    let (err, _service) = send_to("status/429").await;
    assert!(
        matches!(err, SendError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(120)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_500_is_transient() {
    let (err, _service) = send_to("status/500").await;
    assert!(
        matches!(
            err,
            SendError::Transient {
                retry_after: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_400_is_permanent_with_the_push_services_reason() {
    let (err, service) = send_to("status/400").await;
    let SendError::Permanent { reason } = err else {
        panic!("want Permanent, got {err:?}");
    };
    assert!(
        reason.starts_with(&format!("{} answered 400 Bad Request", service.base)),
        "{reason}"
    );
    assert!(
        reason.ends_with("UnauthorizedRegistration: bad header"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_unreachable_push_service_is_transient_and_the_reason_hides_the_endpoint() {
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let sub = Browser::new().subscription(format!("http://127.0.0.1:{port}/push/{CAPABILITY}"));

    let err = channel(keys())
        .send(&message(sub, None, false))
        .await
        .expect_err("refused");

    assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.to_string().contains(CAPABILITY), "{err}");
}

#[tokio::test]
async fn a_push_service_that_does_not_answer_in_time_is_transient() {
    let keys = keys();
    let service = spawn_push_service(&keys).await;
    let sub = service.browser.subscription(service.endpoint("hang"));
    let channel = PushChannel::new(&config(1), keys)
        .expect("channel")
        .allow_http_endpoints();

    let err = channel
        .send(&message(sub, None, false))
        .await
        .expect_err("timed out");

    assert_eq!(
        err,
        SendError::transient(format!("{} did not answer within 1 s", service.base))
    );
}

#[tokio::test]
async fn an_http_endpoint_is_refused_unless_allowed() {
    let sub = Browser::new().subscription(format!("http://127.0.0.1:9/push/{CAPABILITY}"));
    let err = PushChannel::new(&config(15), keys())
        .expect("channel")
        .send(&message(sub, None, false))
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        SendError::permanent("push subscription psub_1 has an endpoint that is not an https URL")
    );
}

#[tokio::test]
async fn a_subscription_whose_key_is_not_a_p256_point_is_permanent() {
    let mut sub = Browser::new().subscription("https://push.example/x".into());
    sub.p256dh = URL_SAFE_NO_PAD.encode([4u8; 65]);
    let err = channel(keys())
        .send(&message(sub, None, false))
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        SendError::permanent("push subscription psub_1: p256dh is not a point on P-256")
    );
}

// --- configuration and keys ----------------------------------------------------------------

#[test]
fn the_config_has_defaults_and_refuses_unknown_fields() {
    let config: PushConfig =
        serde_json::from_value(json!({"subject": "https://chime.example/contact"}))
            .expect("config");
    assert_eq!(config.ttl_seconds, 86_400);
    assert_eq!(config.timeout_seconds, 15);
    assert!(PushChannel::new(&config, keys()).is_ok());

    let unknown = serde_json::from_value::<PushConfig>(json!({"subject": SUBJECT, "ttl": 5}));
    assert!(unknown.is_err());
}

#[test]
fn a_subject_that_is_neither_mailto_nor_https_is_refused() {
    for subject in ["ops@chime.example", "http://chime.example", "mailto:"] {
        let config: PushConfig =
            serde_json::from_value(json!({ "subject": subject })).expect("config");
        assert!(PushChannel::new(&config, keys()).is_err(), "{subject}");
    }
}

#[test]
fn vapid_keys_are_created_once_owner_only_and_loaded_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = VapidKeys::load_or_create(dir.path()).expect("created");
    let path = dir.path().join("vapid-p256.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let written = std::fs::read(&path).expect("key file");

    let loaded = VapidKeys::load_or_create(dir.path()).expect("loaded");

    assert_eq!(
        loaded.public_key_base64url(),
        created.public_key_base64url()
    );
    assert_eq!(std::fs::read(&path).expect("key file"), written);
    let public = b64(created.public_key_base64url());
    assert_eq!((public.len(), public[0]), (65, 0x04));
}

#[test]
fn a_raw_32_octet_scalar_is_accepted_as_a_vapid_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("vapid-p256.key"), b64(RFC_AS_PRIVATE)).expect("write");
    let keys = VapidKeys::load_or_create(dir.path()).expect("loaded");
    assert_eq!(keys.public_key_base64url(), RFC_AS_PUBLIC);
}

#[test]
fn a_key_file_that_is_not_a_key_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("vapid-p256.key"), b"not a key").expect("write");
    let err = VapidKeys::load_or_create(dir.path()).expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
