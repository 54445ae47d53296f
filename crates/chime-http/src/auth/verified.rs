//! Tokens verified recently, so a client that sends the same bearer token with every request
//! (every client does) pays for the signature check once a minute, not once per request.
//!
//! Why: checking an Ed25519 or ECDSA signature costs tens of microseconds of CPU, the largest
//! share of a create's CPU apart from the store. The cache is keyed by the whole token (no
//! hash that two tokens could share), keeps only tokens that passed every check, and applies
//! the time checks (`exp`, `nbf`, with the same leeway) again on every hit, so a cached token
//! expires exactly when it would have. A hit also asks the key source for the token's key
//! (a lookup in memory): once the identity provider's key set no longer has it, the token is
//! checked in full again, and refused. An entry is trusted for at most [`MAX_AGE`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;

use super::Principal;

/// How long a verified token is trusted without checking its signature again.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Tokens kept at most; past that, the expired and aged ones go, or else all of them.
const CAPACITY: usize = 4096;

struct Entry {
    principal: Principal,
    /// The key the signature was checked with, and its algorithm.
    kid: Option<String>,
    algorithm: Algorithm,
    exp: u64,
    nbf: Option<u64>,
    at: Instant,
}

#[derive(Default)]
pub(super) struct Verified {
    tokens: Mutex<HashMap<String, Entry>>,
}

impl Verified {
    /// The principal of `token`, with the key id and algorithm it was verified with, if it was
    /// verified within [`MAX_AGE`] and is still within its validity at `now` (seconds since the
    /// epoch), with `leeway` seconds either side.
    pub(super) fn get(
        &self,
        token: &str,
        now: u64,
        leeway: u64,
    ) -> Option<(Principal, Option<String>, Algorithm)> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = tokens.get(token)?;
        let fresh = entry.at.elapsed() < MAX_AGE;
        let unexpired = entry.exp.saturating_add(leeway) >= now;
        let started = entry
            .nbf
            .is_none_or(|nbf| nbf <= now.saturating_add(leeway));
        (fresh && unexpired && started)
            .then(|| (entry.principal.clone(), entry.kid.clone(), entry.algorithm))
    }

    /// Remembers that `token` passed every check with the key `kid` (`algorithm`), for
    /// `principal`, valid until `exp`.
    pub(super) fn put(
        &self,
        token: &str,
        principal: Principal,
        key: (Option<String>, Algorithm),
        exp: u64,
        nbf: Option<u64>,
    ) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= CAPACITY {
            let now = super::now_seconds();
            tokens.retain(|_, e| e.at.elapsed() < MAX_AGE && e.exp >= now);
            if tokens.len() >= CAPACITY {
                tokens.clear();
            }
        }
        tokens.insert(
            token.to_owned(),
            Entry {
                principal,
                kid: key.0,
                algorithm: key.1,
                exp,
                nbf,
                at: Instant::now(),
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chime_core::UserId;

    fn alice() -> Principal {
        Principal {
            user: UserId::parse("alice").unwrap(),
            admin: false,
        }
    }

    const KEY: (Option<String>, Algorithm) = (None, Algorithm::EdDSA);

    fn hit(cache: &Verified, token: &str, now: u64, leeway: u64) -> Option<Principal> {
        cache.get(token, now, leeway).map(|(p, _, _)| p)
    }

    #[test]
    fn a_verified_token_is_answered_from_the_cache_within_its_validity() {
        let cache = Verified::default();
        cache.put("t", alice(), KEY, 1_000, None);
        assert_eq!(hit(&cache, "t", 999, 0), Some(alice()));
        assert_eq!(hit(&cache, "t", 1_000, 0), Some(alice()));
        assert_eq!(hit(&cache, "other", 999, 0), None);
    }

    #[test]
    fn a_cached_token_expires_when_it_would_have_with_the_same_leeway() {
        let cache = Verified::default();
        cache.put("t", alice(), KEY, 1_000, None);
        assert_eq!(hit(&cache, "t", 1_001, 0), None);
        assert_eq!(hit(&cache, "t", 1_030, 30), Some(alice()));
        assert_eq!(hit(&cache, "t", 1_031, 30), None);
    }

    #[test]
    fn a_cached_token_is_not_accepted_before_its_nbf() {
        let cache = Verified::default();
        cache.put("t", alice(), KEY, 2_000, Some(1_500));
        assert_eq!(hit(&cache, "t", 1_000, 30), None);
        assert_eq!(hit(&cache, "t", 1_470, 30), Some(alice()));
    }

    #[test]
    fn a_full_cache_makes_room_instead_of_growing() {
        let cache = Verified::default();
        let far = super::super::now_seconds() + 3_600;
        for i in 0..CAPACITY + 10 {
            cache.put(&format!("t{i}"), alice(), KEY, far, None);
        }
        assert!(cache.len() <= CAPACITY, "{} entries", cache.len());
        assert_eq!(
            hit(&cache, &format!("t{}", CAPACITY + 9), 0, 0),
            Some(alice())
        );
    }
}
