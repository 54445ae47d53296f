//! Browser sessions, the BFF way: the browser holds only an opaque, random session id in an
//! `HttpOnly`, `SameSite=Lax` (and, unless configured off for plain-HTTP development,
//! `Secure`) cookie; whatever proves who the user is (the OIDC access token, or nothing at all
//! for the local issuer, which signs a short-lived token per call) stays on the server.
//!
//! Every browser gets a session on its first `GET /bff/session`, signed in or not, because
//! the CSRF token and a pending OIDC sign-in (PKCE verifier, state, nonce) need one. Signing
//! in replaces the session id and the CSRF token (no session fixation).
//!
//! Sessions live in the store ([`SessionStore`]), the one the rest of the process uses: every
//! `web` instance on a shared store (PostgreSQL) sees every session, so the gateway may send
//! a browser to any of them, and a restart signs nobody out. The store never sees a session
//! id, only its SHA-256, so reading the database yields no usable cookie; the encrypting
//! decorator seals the access token and the PKCE verifier. Instants come from the process's
//! [`Clock`]. Expired sessions are never returned, and are purged every [`PURGE_EVERY`]
//! sessions this process creates (and whenever the cap is reached), so the table stays
//! bounded without a timer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chime_core::UserId;
use chime_roles::Clock;
use chime_store::{PendingSignIn, SessionRecord, SessionStore};
use jiff::Timestamp;
use ring::rand::SecureRandom;

/// The cookie's name.
pub const COOKIE: &str = "chime_session";

/// Live sessions kept at most; past this, new anonymous ones are refused until some expire.
const MAX_SESSIONS: u64 = 100_000;

/// How long a session nobody signed into lives.
pub const ANONYMOUS_TTL: Duration = Duration::from_secs(3600);

/// Every this many sessions a process creates, it first purges the expired ones (at its
/// first one too), so expired sessions do not pile up in the store.
pub const PURGE_EVERY: u64 = 1000;

/// A secret the user's tokens never leave the server in.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserId,
    /// The OIDC access token (forwarded to the task API), and when it expires. `None` with
    /// the local issuer, which signs a token per call.
    pub access_token: Option<(Secret, Timestamp)>,
}

/// An OIDC sign-in under way: what the callback must check.
#[derive(Debug, Clone)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: Secret,
    pub return_to: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub signed_in: Option<SignedIn>,
    pub pending: Option<Pending>,
    pub expires: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("too many sessions")]
    Full,
    #[error("the session store failed")]
    Store(#[from] chime_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The sessions of the web role: a thin layer over the store that keeps ids, tokens and
/// lifetimes right.
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    created: AtomicU64,
    max_sessions: u64,
    purge_every: u64,
}

/// A random URL-safe token of 32 bytes.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG does not fail on the platforms we run on; a zeroed token would only be
    // guessable, so fail closed: the comparison below never accepts an empty expectation.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Equal, in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    !a.is_empty()
        && a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What the store knows a session id by: its SHA-256, base64url.
fn id_hash(id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// `at + d`, or the last instant there is.
fn after(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(d).unwrap_or(Timestamp::MAX)
}

impl From<Pending> for PendingSignIn {
    fn from(p: Pending) -> Self {
        PendingSignIn {
            state: p.state,
            nonce: p.nonce,
            verifier: p.verifier.0,
            return_to: p.return_to,
        }
    }
}

impl From<PendingSignIn> for Pending {
    fn from(p: PendingSignIn) -> Self {
        Pending {
            state: p.state,
            nonce: p.nonce,
            verifier: Secret(p.verifier),
            return_to: p.return_to,
        }
    }
}

impl Session {
    fn from_record(r: SessionRecord) -> Self {
        let access_token = match (r.access_token, r.access_expires_at) {
            (Some(token), Some(expires)) => Some((Secret(token), expires)),
            // A token without its expiry is not one the BFF wrote: treat it as expired.
            (Some(token), None) => Some((Secret(token), Timestamp::MIN)),
            (None, _) => None,
        };
        Session {
            csrf: r.csrf,
            signed_in: r.user.map(|user| SignedIn { user, access_token }),
            pending: r.pending.map(Pending::from),
            expires: r.expires_at,
        }
    }

    fn to_record(&self, id_hash: String) -> SessionRecord {
        let who = self.signed_in.as_ref();
        let token = who.and_then(|w| w.access_token.as_ref());
        SessionRecord {
            id_hash,
            csrf: self.csrf.clone(),
            user: who.map(|w| w.user.clone()),
            access_token: token.map(|(t, _)| t.0.clone()),
            access_expires_at: token.map(|(_, at)| *at),
            pending: self.pending.clone().map(PendingSignIn::from),
            expires_at: self.expires,
        }
    }
}

impl Sessions {
    /// Sessions kept in `store`; signed-in ones last `ttl` from sign-in.
    pub fn new(store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            ttl,
            created: AtomicU64::new(0),
            max_sessions: MAX_SESSIONS,
            purge_every: PURGE_EVERY,
        }
    }

    /// Smaller limits, so tests reach them.
    #[cfg(test)]
    fn with_limits(mut self, max_sessions: u64, purge_every: u64) -> Self {
        self.max_sessions = max_sessions;
        self.purge_every = purge_every;
        self
    }

    /// How long a signed-in session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Now, by the clock sessions expire by.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The live session of this id.
    pub async fn get(&self, id: &str) -> Result<Option<Session>> {
        let record = self.store.session(&id_hash(id), self.now()).await?;
        Ok(record.map(Session::from_record))
    }

    /// A new anonymous session: its id and CSRF token.
    pub async fn create(&self) -> Result<(String, Session)> {
        let now = self.now();
        if self
            .created
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(self.purge_every)
        {
            self.purge(now).await?;
        }
        if self.store.count_sessions(now).await? >= self.max_sessions {
            self.purge(now).await?;
            if self.store.count_sessions(now).await? >= self.max_sessions {
                return Err(Error::Full);
            }
        }
        let session = Session {
            csrf: random_token(),
            signed_in: None,
            pending: None,
            expires: after(now, ANONYMOUS_TTL),
        };
        let id = random_token();
        self.store
            .put_session(&session.to_record(id_hash(&id)))
            .await?;
        Ok((id, session))
    }

    async fn purge(&self, now: Timestamp) -> Result<()> {
        let purged = self.store.purge_sessions(now).await?;
        if purged > 0 {
            tracing::debug!(purged, "purged expired web sessions");
        }
        Ok(())
    }

    /// Starts an OIDC sign-in on the session; `false` when it is gone.
    pub async fn set_pending(&self, id: &str, pending: Pending) -> Result<bool> {
        let pending = PendingSignIn::from(pending);
        Ok(self
            .store
            .set_pending(&id_hash(id), &pending, self.now())
            .await?)
    }

    /// Takes the pending sign-in (it is good for one callback only, whichever instance
    /// answers it).
    pub async fn take_pending(&self, id: &str) -> Result<Option<Pending>> {
        let pending = self.store.take_pending(&id_hash(id), self.now()).await?;
        Ok(pending.map(Pending::from))
    }

    /// Signs `old` in as `who`: a new id (the old one is dropped) with a new CSRF token,
    /// lasting `ttl`, or until the access token expires if that is sooner.
    pub async fn sign_in(&self, old: Option<&str>, who: SignedIn) -> Result<(String, Session)> {
        let until = after(self.now(), self.ttl);
        let expires = match &who.access_token {
            Some((_, token_expires)) => (*token_expires).min(until),
            None => until,
        };
        let session = Session {
            csrf: random_token(),
            signed_in: Some(who),
            pending: None,
            expires,
        };
        let id = random_token();
        let old = old.map(id_hash);
        self.store
            .replace_session(old.as_deref(), &session.to_record(id_hash(&id)))
            .await?;
        Ok((id, session))
    }

    pub async fn remove(&self, id: &str) -> Result<()> {
        self.store.remove_session(&id_hash(id)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chime_store::sqlite::{SqliteOptions, SqliteStore};

    use super::*;

    /// A clock the test moves by hand.
    struct TestClock(Mutex<Timestamp>);

    impl TestClock {
        fn new() -> Arc<Self> {
            Arc::new(Self(Mutex::new(
                Timestamp::from_second(1_893_456_000).expect("instant"),
            )))
        }

        fn advance(&self, d: Duration) {
            let mut now = self.0.lock().expect("clock");
            *now = after(*now, d);
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().expect("clock")
        }
    }

    /// Sessions on a fresh SQLite store in a temporary directory (kept alive by the caller).
    fn sessions(
        clock: Arc<TestClock>,
        ttl: Duration,
    ) -> (Sessions, Arc<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("chime.sqlite"), &SqliteOptions::default())
                .expect("open the store"),
        );
        (Sessions::new(store.clone(), clock, ttl), store, dir)
    }

    fn alice(access_token: Option<(Secret, Timestamp)>) -> SignedIn {
        SignedIn {
            user: UserId::parse("alice").expect("user"),
            access_token,
        }
    }

    fn pending() -> Pending {
        Pending {
            state: "s".into(),
            nonce: "n".into(),
            verifier: Secret("v".into()),
            return_to: "/".into(),
        }
    }

    #[tokio::test]
    async fn signing_in_replaces_the_session_id_and_csrf_token() {
        let (sessions, _, _dir) = sessions(TestClock::new(), Duration::from_secs(60));
        let (old, anonymous) = sessions.create().await.expect("room");
        let (new, session) = sessions
            .sign_in(Some(&old), alice(None))
            .await
            .expect("sign in");
        assert_ne!(old, new);
        assert_ne!(anonymous.csrf, session.csrf);
        assert!(sessions.get(&old).await.expect("get").is_none());
        let stored = sessions.get(&new).await.expect("get").expect("signed in");
        assert_eq!(stored.csrf, session.csrf);
        assert_eq!(
            stored.signed_in.map(|s| s.user),
            Some(UserId::parse("alice").expect("user"))
        );
    }

    #[tokio::test]
    async fn a_pending_sign_in_is_taken_once() {
        let (sessions, _, _dir) = sessions(TestClock::new(), Duration::from_secs(60));
        let (id, _) = sessions.create().await.expect("room");
        assert!(sessions.set_pending(&id, pending()).await.expect("set"));
        let taken = sessions.take_pending(&id).await.expect("take");
        assert_eq!(taken.map(|p| p.verifier.0), Some("v".to_owned()));
        assert!(sessions.take_pending(&id).await.expect("take").is_none());
        assert!(!sessions
            .set_pending("no-such-session", pending())
            .await
            .expect("set"));
    }

    #[tokio::test]
    async fn an_anonymous_session_lasts_an_hour_and_a_signed_in_one_its_ttl_capped_by_the_token() {
        let clock = TestClock::new();
        let (sessions, _, _dir) = sessions(clock.clone(), Duration::from_secs(8 * 3600));
        let (anonymous, _) = sessions.create().await.expect("room");
        let (short, _) = sessions.create().await.expect("room");
        let token_expires = after(clock.now(), Duration::from_secs(600));
        let (short, _) = sessions
            .sign_in(
                Some(&short),
                alice(Some((Secret("t".into()), token_expires))),
            )
            .await
            .expect("sign in");
        let (long, _) = sessions.sign_in(None, alice(None)).await.expect("sign in");

        clock.advance(Duration::from_secs(599));
        assert!(sessions.get(&short).await.expect("get").is_some());
        clock.advance(Duration::from_secs(1));
        assert!(
            sessions.get(&short).await.expect("get").is_none(),
            "the token expired"
        );
        clock.advance(Duration::from_secs(3000));
        assert!(
            sessions.get(&anonymous).await.expect("get").is_none(),
            "an hour passed"
        );
        assert!(sessions.get(&long).await.expect("get").is_some());
        clock.advance(Duration::from_secs(8 * 3600));
        assert!(sessions.get(&long).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn the_store_keeps_a_hash_of_the_session_id_never_the_id() {
        let clock = TestClock::new();
        let (sessions, store, _dir) = sessions(clock.clone(), Duration::from_secs(60));
        let (id, session) = sessions.create().await.expect("room");
        assert!(store
            .session(&id, clock.now())
            .await
            .expect("read")
            .is_none());
        let stored = store
            .session(&id_hash(&id), clock.now())
            .await
            .expect("read")
            .expect("stored by its hash");
        assert_eq!(stored.csrf, session.csrf);
        assert_ne!(stored.id_hash, id);
    }

    #[tokio::test]
    async fn creating_sessions_purges_the_expired_ones_now_and_then() {
        let clock = TestClock::new();
        let (sessions, store, _dir) = sessions(clock.clone(), Duration::from_secs(60));
        let sessions = sessions.with_limits(MAX_SESSIONS, 10);
        // Every session stored, live or not.
        let stored = || store.count_sessions(Timestamp::MIN);
        let (first, _) = sessions.create().await.expect("room");
        clock.advance(ANONYMOUS_TTL);
        assert!(sessions.get(&first).await.expect("get").is_none());
        for _ in 1..10 {
            sessions.create().await.expect("room");
        }
        assert_eq!(
            stored().await.expect("count"),
            10,
            "expired, not purged yet"
        );
        sessions.create().await.expect("room");
        assert_eq!(stored().await.expect("count"), 10, "the expired one went");
    }

    #[tokio::test]
    async fn past_the_cap_new_sessions_are_refused_until_some_expire() {
        let clock = TestClock::new();
        let (sessions, _, _dir) = sessions(clock.clone(), Duration::from_secs(60));
        let sessions = sessions.with_limits(2, PURGE_EVERY);
        sessions.create().await.expect("room");
        sessions.create().await.expect("room");
        assert!(matches!(sessions.create().await, Err(Error::Full)));
        clock.advance(ANONYMOUS_TTL);
        sessions
            .create()
            .await
            .expect("room once the others expired");
    }

    #[test]
    fn tokens_compare_equal_only_when_equal_and_never_when_empty() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
