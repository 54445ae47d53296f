//! Browser sessions, the BFF way: the browser holds only an opaque, random session id in an
//! `HttpOnly`, `SameSite=Lax` (and, unless configured off for plain-HTTP development,
//! `Secure`) cookie; whatever proves who the user is (the OIDC access token, or nothing at all
//! for the local issuer, which signs a short-lived token per call) stays here.
//!
//! Every browser gets a session on its first `GET /bff/session`, signed in or not, because
//! the CSRF token and a pending OIDC sign-in (PKCE verifier, state, nonce) need one. Signing
//! in replaces the session id (no session fixation). Sessions live in this process's memory:
//! a restart signs everyone out, and several `web` instances need sticky sessions (see the
//! notes for the shared store this would grow into).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chime_core::UserId;
use ring::rand::SecureRandom;

/// The cookie's name.
pub const COOKIE: &str = "chime_session";

/// Sessions kept at most; past this, new anonymous ones are refused until some expire.
const MAX_SESSIONS: usize = 100_000;

/// How long a session nobody signed into lives.
const ANONYMOUS_TTL: Duration = Duration::from_secs(3600);

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
    pub access_token: Option<(Secret, Instant)>,
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
    expires: Instant,
}

pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("too many sessions")]
pub struct Full;

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

impl Sessions {
    /// Signed-in sessions last `ttl` from sign-in.
    pub fn new(ttl: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// How long a signed-in session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live session of this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// A new anonymous session: its id and CSRF token.
    pub fn create(&self) -> Result<(String, Session), Full> {
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                return Err(Full);
            }
        }
        let session = Session {
            csrf: random_token(),
            signed_in: None,
            pending: None,
            expires: Instant::now() + ANONYMOUS_TTL,
        };
        let id = random_token();
        map.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    pub fn set_pending(&self, id: &str, pending: Pending) -> bool {
        match self.lock().get_mut(id) {
            Some(s) => {
                s.pending = Some(pending);
                true
            }
            None => false,
        }
    }

    /// Takes the pending sign-in (it is good for one callback only).
    pub fn take_pending(&self, id: &str) -> Option<Pending> {
        self.lock().get_mut(id).and_then(|s| s.pending.take())
    }

    /// Signs `old` in as `who`: a new id (the old one is dropped) with a new CSRF token.
    pub fn sign_in(&self, old: Option<&str>, who: SignedIn) -> (String, Session) {
        let mut map = self.lock();
        if let Some(old) = old {
            map.remove(old);
        }
        let expires = match &who.access_token {
            Some((_, token_expires)) => (*token_expires).min(Instant::now() + self.ttl),
            None => Instant::now() + self.ttl,
        };
        let session = Session {
            csrf: random_token(),
            signed_in: Some(who),
            pending: None,
            expires,
        };
        let id = random_token();
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_in_replaces_the_session_id_and_csrf_token() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (old, anonymous) = sessions.create().expect("room");
        let who = SignedIn {
            user: UserId::parse("alice").expect("user"),
            access_token: None,
        };
        let (new, session) = sessions.sign_in(Some(&old), who);
        assert_ne!(old, new);
        assert_ne!(anonymous.csrf, session.csrf);
        assert!(sessions.get(&old).is_none());
        assert!(sessions.get(&new).is_some_and(|s| s.signed_in.is_some()));
    }

    #[test]
    fn a_pending_sign_in_is_taken_once() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (id, _) = sessions.create().expect("room");
        assert!(sessions.set_pending(
            &id,
            Pending {
                state: "s".into(),
                nonce: "n".into(),
                verifier: Secret("v".into()),
                return_to: "/".into(),
            }
        ));
        assert!(sessions.take_pending(&id).is_some());
        assert!(sessions.take_pending(&id).is_none());
    }

    #[test]
    fn tokens_compare_equal_only_when_equal_and_never_when_empty() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
