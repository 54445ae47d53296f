//! Sign-in through an external OpenID Connect provider: a REAL one, `oidc-provider` (a
//! certified implementation, `tests/support/oidc/provider.mjs`), started per test on
//! loopback. Chime discovers its JWKS, follows a key rotation without a restart, refetches at
//! most once per window for unknown kids, and refuses every token it should (expired, not yet
//! valid, wrong audience or issuer, `alg: none`, HS256 keyed with the public key, a kid the
//! provider never had). The local issuer is checked as one more OIDC issuer to the same code.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chime_http::{Authenticator, OidcKeys};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{in_ms, problem_of, spawn_app, spawn_app_with, StatusCode, TestApp, PATIENCE};

/// One `oidc-provider` process; killed when dropped. (The web app's end-to-end tests sign
/// in through it too: `web.rs`.)
pub(crate) struct Provider {
    _child: tokio::process::Child,
    pub(crate) issuer: String,
    http: reqwest::Client,
}

impl Provider {
    pub(crate) async fn start() -> Provider {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc");
        assert!(
            std::path::Path::new(dir).join("node_modules").exists(),
            "the test OIDC provider is not installed: run `npm ci` in {dir} (.ci/run does)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start node (the test OIDC provider needs Node.js 20.19 or later)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Node starting oidc-provider takes seconds, many more while Chromium, Vitest and
        // schemathesis run beside it on two cores: a start-up wait, not a speed check.
        let port: u16 = tokio::time::timeout(PATIENCE * 4, lines.next_line())
            .await
            .expect("the OIDC provider did not start in time")
            .expect("read the provider's stdout")
            .and_then(|line| line.strip_prefix("ready ")?.trim().parse().ok())
            .expect("the provider prints `ready <port>`");
        Provider {
            _child: child,
            issuer: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    /// An access token from the client_credentials grant: `client`'s, for `resource`
    /// (`urn:chime:rs256` is audience `chime`, signed RS256; `urn:other:es256` is audience
    /// `other`, and so on).
    async fn token(&self, client: &str, resource: &str) -> String {
        let response = self
            .http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", "secret"),
                ("resource", resource),
                ("scope", "tasks"),
            ])
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body: Value = response.json().await.expect("token json");
        assert_eq!(status, 200, "token endpoint: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn test_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.issuer));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("provider test endpoint");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// New signing keys; the old ones stay published when `keep`. Returns the new kids by alg.
    async fn rotate(&self, keep: bool) -> Value {
        let path = if keep {
            "/test/rotate?keep=1"
        } else {
            "/test/rotate"
        };
        self.test_call(reqwest::Method::POST, path, None).await["kids"].clone()
    }

    /// A JWS over `claims`, made with the provider's current `alg` key (header overridable).
    async fn sign(&self, alg: &str, claims: Value, header: Value) -> String {
        let body = json!({"alg": alg, "claims": claims, "header": header});
        self.test_call(reqwest::Method::POST, "/test/sign", Some(body))
            .await["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// How many times the JWKS was served.
    async fn jwks_fetches(&self) -> u64 {
        self.test_call(reqwest::Method::GET, "/test/stats", None)
            .await["jwks"]
            .as_u64()
            .expect("count")
    }

    async fn public_pem(&self, alg: &str) -> (String, String) {
        let v = self
            .test_call(
                reqwest::Method::GET,
                &format!("/test/public-pem?alg={alg}"),
                None,
            )
            .await;
        (
            v["pem"].as_str().expect("pem").to_owned(),
            v["kid"].as_str().expect("kid").to_owned(),
        )
    }

    /// Claims the provider would sign for `sub`, valid now, for Chime.
    fn claims(&self, sub: &str) -> Value {
        let now = jiff::Timestamp::now().as_second();
        json!({"iss": self.issuer, "aud": "chime", "sub": sub, "iat": now, "exp": now + 300})
    }
}

async fn app_for(provider: &Provider, configure: impl FnOnce(&mut chime::Config)) -> TestApp {
    let issuer = provider.issuer.clone();
    spawn_app_with(move |c| {
        c.auth.issuer = Some(issuer);
        configure(c);
    })
    .await
}

async fn create_with(app: &TestApp, token: &str, name: &str) -> Value {
    app.anonymous()
        .bearer(token)
        .create_task(&json!({"name": name, "startDate": in_ms(3_600_000)}))
        .await
}

/// A 401 problem+json with a `WWW-Authenticate: Bearer` challenge.
async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let response = app
        .anonymous()
        .bearer(token)
        .request(reqwest::Method::GET, "/api/v1/tasks")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401, "{why}: expected a 401");
    let problem = problem_of(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(problem.headers["www-authenticate"], "Bearer", "{why}");
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn header_of(token: &str) -> Value {
    let first = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn a_token_from_the_provider_is_accepted_for_rs256_es256_and_eddsa_and_sub_is_the_user() {
    let provider = Provider::start().await;
    let app = app_for(&provider, |_| {}).await;
    for (resource, alg) in [
        ("urn:chime:rs256", "RS256"),
        ("urn:chime:es256", "ES256"),
        ("urn:chime:eddsa", "EdDSA"),
    ] {
        let token = provider.token("alice", resource).await;
        assert_eq!(header_of(&token)["alg"], alg);
        let task = create_with(&app, &token, alg).await;
        assert_eq!(task["userId"], "alice", "{alg}");
    }
    // Each user sees their own tasks only.
    let bob = provider.token("bob", "urn:chime:es256").await;
    let page: Value = app
        .anonymous()
        .bearer(bob)
        .get("/api/v1/tasks", StatusCode::OK)
        .await;
    assert_eq!(page["tasks"], json!([]));
}

#[tokio::test]
async fn a_configured_user_claim_names_the_user_instead_of_sub() {
    let provider = Provider::start().await;
    let app = app_for(&provider, |c| {
        c.auth.user_claim = "preferred_username".into()
    })
    .await;
    let token = provider.token("alice", "urn:chime:rs256").await;
    let task = create_with(&app, &token, "by claim").await;
    assert_eq!(task["userId"], "alice@example.com");
}

#[tokio::test]
async fn after_a_key_rotation_at_the_provider_tokens_of_the_new_key_are_accepted_without_a_restart()
{
    let provider = Provider::start().await;
    let app = app_for(&provider, |_| {}).await;
    let before = provider.token("alice", "urn:chime:es256").await;
    create_with(&app, &before, "before rotation").await;
    assert_eq!(provider.jwks_fetches().await, 1);

    // The provider replaces every key and drops the old ones from its JWKS.
    let kids = provider.rotate(false).await;
    let after = provider.token("alice", "urn:chime:es256").await;
    assert_eq!(header_of(&after)["kid"], kids["ES256"]);
    assert_ne!(header_of(&after)["kid"], header_of(&before)["kid"]);
    create_with(&app, &after, "after rotation").await;
    assert_eq!(
        provider.jwks_fetches().await,
        2,
        "one refetch for the new kid"
    );
    let page: Value = app
        .anonymous()
        .bearer(&after)
        .get("/api/v1/tasks", StatusCode::OK)
        .await;
    assert_eq!(page["tasks"].as_array().expect("tasks").len(), 2);
    // The dropped key no longer verifies: a token it signed is refused.
    assert_refused(&app, &before, "a token of a key the provider dropped").await;
}

#[tokio::test]
async fn a_rotation_that_keeps_the_old_key_published_accepts_tokens_of_both_keys() {
    let provider = Provider::start().await;
    let app = app_for(&provider, |_| {}).await;
    let before = provider.token("alice", "urn:chime:rs256").await;
    create_with(&app, &before, "old key").await;
    provider.rotate(true).await;
    let after = provider.token("alice", "urn:chime:rs256").await;
    create_with(&app, &after, "new key").await;
    create_with(&app, &before, "old key again").await;
}

#[tokio::test]
async fn unknown_kids_cause_at_most_one_jwks_fetch_per_window() {
    let provider = Provider::start().await;
    let app = app_for(&provider, |_| {}).await;
    let good = provider.token("alice", "urn:chime:rs256").await;
    create_with(&app, &good, "first").await;
    assert_eq!(provider.jwks_fetches().await, 1);

    // A flood of tokens, each with a different made-up kid, many at once.
    let mut bogus = Vec::new();
    for i in 0..25 {
        bogus.push(
            provider
                .sign(
                    "RS256",
                    provider.claims("mallory"),
                    json!({"kid": format!("made-up-{i}")}),
                )
                .await,
        );
    }
    let anonymous = app.anonymous();
    let responses = futures::future::join_all(bogus.iter().map(|token| {
        anonymous
            .bearer(token)
            .request(reqwest::Method::GET, "/api/v1/tasks")
            .send()
    }))
    .await;
    for response in responses {
        assert_eq!(response.expect("request").status(), 401);
    }
    for token in &bogus {
        assert_refused(&app, token, "a made-up kid").await;
    }
    let fetches = provider.jwks_fetches().await;
    assert!(
        fetches <= 2,
        "the provider served its JWKS {fetches} times: at most one refetch per window"
    );
    // The cached keys still verify.
    create_with(&app, &good, "second").await;
    assert_eq!(provider.jwks_fetches().await, fetches);
}

#[tokio::test]
async fn tokens_the_provider_did_not_issue_for_us_are_refused_with_a_401_problem() {
    let provider = Provider::start().await;
    let app = app_for(&provider, |_| {}).await;
    let now = jiff::Timestamp::now().as_second();
    let valid = provider.claims("alice");

    // The control: a token made by /test/sign with valid claims is accepted, so each refusal
    // below is for the one thing changed.
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = provider.sign(alg, valid.clone(), json!({})).await;
        create_with(&app, &token, alg).await;
    }

    let mut expired = valid.clone();
    expired["exp"] = json!(now - 120);
    expired["iat"] = json!(now - 600);
    assert_refused(
        &app,
        &provider.sign("ES256", expired, json!({})).await,
        "expired",
    )
    .await;

    let mut early = valid.clone();
    early["nbf"] = json!(now + 300);
    assert_refused(
        &app,
        &provider.sign("ES256", early, json!({})).await,
        "nbf ahead",
    )
    .await;

    let other_audience = provider.token("alice", "urn:other:es256").await;
    assert_refused(&app, &other_audience, "a token for another audience").await;

    let mut wrong_iss = valid.clone();
    wrong_iss["iss"] = json!("https://evil.example.com");
    assert_refused(
        &app,
        &provider.sign("RS256", wrong_iss, json!({})).await,
        "wrong iss",
    )
    .await;

    let mut no_exp = valid.clone();
    no_exp.as_object_mut().expect("object").remove("exp");
    assert_refused(
        &app,
        &provider.sign("RS256", no_exp, json!({})).await,
        "no exp",
    )
    .await;

    let never = provider
        .sign(
            "RS256",
            valid.clone(),
            json!({"kid": "a-kid-the-provider-never-had"}),
        )
        .await;
    assert_refused(&app, &never, "a kid the provider never had").await;

    // `alg: none`, naming a real kid, with and without a signature part.
    let real = provider.token("alice", "urn:chime:rs256").await;
    let kid = header_of(&real)["kid"].clone();
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&valid)
    );
    assert_refused(&app, &unsigned, "alg none").await;
    assert_refused(&app, unsigned.trim_end_matches('.'), "alg none, two parts").await;

    // HS256 keyed with the RSA public key's PEM bytes (the classic algorithm confusion).
    let (pem, rsa_kid) = provider.public_pem("RS256").await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(rsa_kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &valid,
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )
    .expect("hs256");
    assert_refused(&app, &confused, "HS256 with the public key as secret").await;

    // The token's header cannot pick another algorithm for a key: ES256 claimed over an RSA kid.
    let mut header = header_of(&provider.sign("ES256", valid.clone(), json!({})).await);
    header["kid"] = json!(rsa_kid);
    let es = provider.sign("ES256", valid.clone(), header).await;
    assert_refused(&app, &es, "ES256 over an RSA key's kid").await;

    // A token of another issuer altogether (its own keys and iss).
    let stranger = Provider::start().await;
    let foreign = stranger.token("alice", "urn:chime:rs256").await;
    assert_refused(&app, &foreign, "another provider's token").await;

    // A local-issuer token is no good once an external issuer is configured.
    assert_refused(&app, &app.token("alice"), "a local issuer token").await;
}

#[tokio::test]
async fn the_local_issuers_discovery_document_and_jwks_verify_a_chime_token_through_oidc_keys() {
    let local = spawn_app().await;
    let discovery: Value = local
        .anonymous()
        .get("/.well-known/openid-configuration", StatusCode::OK)
        .await;
    assert_eq!(discovery["issuer"], local.base);
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", local.base)
    );
    let jwks: Value = local
        .anonymous()
        .get("/.well-known/jwks.json", StatusCode::OK)
        .await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["kid"], local.running.issuer.kid());
    assert!(key.get("d").is_none(), "no private part");

    // The same code that verifies an external provider's tokens, pointed at this server.
    let keys = OidcKeys::new(&local.base, Duration::from_secs(600)).expect("oidc keys");
    let authenticator = Authenticator::new(Arc::new(keys), &local.base, "chime");
    let principal = authenticator
        .verify(&local.token("alice"))
        .await
        .expect("a chime token verifies through OidcKeys");
    assert_eq!(principal.user.as_str(), "alice");
    assert!(!principal.admin);

    // And a second Chime whose external issuer is the first one accepts its tokens.
    let base = local.base.clone();
    let relying = spawn_app_with(move |c| c.auth.issuer = Some(base)).await;
    let task = create_with(&relying, &local.token("alice"), "via local OIDC").await;
    assert_eq!(task["userId"], "alice");
    // It publishes no issuer of its own.
    let none = relying
        .anonymous()
        .request(reqwest::Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .expect("jwks");
    assert_eq!(none.status(), 404);
}

/// Collects what is logged on this thread (the test's current-thread runtime runs the server
/// too), so a test can read the audit events.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_admin_may_read_any_task_and_every_such_read_is_an_audit_event() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("audit=info"))
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let provider = Provider::start().await;
    let app = app_for(&provider, |c| {
        c.auth.admin_claim = Some("roles".into());
        c.auth.admin_value = Some("chime-admin".into());
    })
    .await;
    let alice = provider.token("alice", "urn:chime:es256").await;
    let task = create_with(&app, &alice, "support case").await;
    let id = task["id"].as_str().expect("id");
    let path = format!("/api/v1/admin/tasks/{id}");

    let support = app
        .anonymous()
        .bearer(provider.token("support", "urn:chime:es256").await);
    let read: Value = support.get(&path, StatusCode::OK).await;
    assert_eq!(read["id"], id);
    assert_eq!(read["userId"], "alice");
    // The admin role reads through the admin endpoint only; the user API stays the admin's own.
    support
        .get_problem(&format!("/api/v1/tasks/{id}"), StatusCode::NOT_FOUND)
        .await;
    // Anyone else: the endpoint does not exist, whether or not the task does.
    let bob = provider.token("bob", "urn:chime:es256").await;
    for token in [&bob, &alice] {
        app.anonymous()
            .bearer(token)
            .get_problem(&path, StatusCode::NOT_FOUND)
            .await;
    }
    let missing = "/api/v1/admin/tasks/tsk_00000000000000000000000000000000";
    support.get_problem(missing, StatusCode::NOT_FOUND).await;

    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    let events: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|event: &Value| event["target"] == "audit")
        .collect();
    assert_eq!(events.len(), 2, "one audit event per admin read: {log}");
    assert_eq!(events[0]["fields"]["admin"], "support");
    assert_eq!(events[0]["fields"]["task_id"], id);
    assert_eq!(events[0]["fields"]["owner"], "alice");
    assert_eq!(events[1]["fields"]["found"], false);
    // Non-admins' attempts are not admin reads.
    assert!(!log.contains("\"admin\":\"bob\""));
}
