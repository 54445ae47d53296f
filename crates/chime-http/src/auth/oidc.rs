//! [`OidcKeys`]: the verification keys of an external OpenID Connect issuer.
//!
//! The issuer's discovery document (`{issuer}/.well-known/openid-configuration`) names its
//! `jwks_uri`; the JWKS is fetched on first use, cached, and fetched again
//!
//! - when it is older than the refresh period (10 minutes by default), so keys the provider
//!   dropped stop verifying and keys it added start to, with no restart;
//! - when a token names a `kid` the cache lacks (the provider rotated its key), but at most
//!   once per [`OidcKeys::UNKNOWN_KID_WINDOW`], so a flood of tokens with made-up kids costs
//!   the provider one request per window, not one per token.
//!
//! Fetches are serialised: many requests that miss at once wait for one fetch. A failed fetch
//! keeps the keys already cached (an outage at the provider does not sign everyone out) and
//! is not retried for the same window. Which keys are usable, and with which algorithm, is
//! [`super::jwk`]'s decision.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::time::Instant;

use super::jwk::{self, Jwk};
use super::KeySource;

/// A discovery document or JWKS larger than this is refused.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the issuer `{0}` is not an absolute http(s) URL")]
    BadIssuer(String),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("cannot fetch {url}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} is not the expected JSON document")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the discovery document names issuer `{found}`, not the configured `{expected}`")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document's jwks_uri `{0}` is not an http(s) URL")]
    BadJwksUri(String),
    #[error("the JWKS at {url} has no usable signing key")]
    NoUsableKey {
        url: String,
        #[source]
        source: Option<jwk::Rejected>,
    },
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The cached keys, swapped whole on every successful fetch.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

/// When fetches happened; held across a fetch, so fetches never overlap.
#[derive(Default)]
struct FetchState {
    jwks_uri: Option<url::Url>,
    /// The last fetch of any kind, and whether it failed.
    last_attempt: Option<(Instant, bool)>,
    /// The last fetch caused by an unknown `kid`.
    last_unknown_kid: Option<Instant>,
}

/// The verification keys of one external OIDC issuer.
pub struct OidcKeys {
    issuer: String,
    discovery_url: String,
    http: reqwest::Client,
    refresh_every: Duration,
    window: Duration,
    cache: RwLock<Arc<KeySet>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl OidcKeys {
    /// Tokens with kids the cache lacks cause at most one JWKS fetch per this window.
    pub const UNKNOWN_KID_WINDOW: Duration = Duration::from_secs(30);
    /// How long a fetched JWKS is used before it is fetched again, by default.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(600);

    /// Keys of `issuer` (exactly as its tokens' `iss` and its discovery document say it),
    /// fetched when first needed, refreshed every `refresh_every`.
    pub fn new(issuer: &str, refresh_every: Duration) -> Result<Self, OidcError> {
        let parsed = url::Url::parse(issuer).map_err(|_| OidcError::BadIssuer(issuer.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(OidcError::BadIssuer(issuer.into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("chime/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(OidcError::Client)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            // OIDC Discovery 1.0 section 4: a trailing `/` of the issuer is dropped first.
            discovery_url: format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            http,
            refresh_every: refresh_every.max(Duration::from_secs(1)),
            window: Self::UNKNOWN_KID_WINDOW,
            cache: RwLock::new(Arc::new(KeySet::default())),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn cached(&self) -> Arc<KeySet> {
        match self.cache.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, set: KeySet) {
        let set = Arc::new(set);
        match self.cache.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    fn fresh(&self, set: &KeySet, now: Instant) -> bool {
        set.fetched_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.refresh_every)
    }

    /// Fetches the JWKS now if the rules allow, and answers `kid` from what is then cached.
    async fn refresh_for(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let mut state = self.fetch.lock().await;
        // Another request may have fetched while this one waited for the lock.
        let now = Instant::now();
        let set = self.cached();
        let hit = set.keys.get(kid).cloned();
        let fresh = self.fresh(&set, now);
        if hit.is_some() && fresh {
            return hit;
        }
        let within = |at: Option<Instant>| {
            at.is_some_and(|at| now.saturating_duration_since(at) < self.window)
        };
        let failed_recently = matches!(state.last_attempt, Some((at, true)) if within(Some(at)));
        let allowed = if failed_recently {
            false
        } else if !fresh {
            true // first use, or the periodic refresh
        } else {
            !within(state.last_unknown_kid) // a rotation, at most once per window
        };
        if !allowed {
            if hit.is_none() {
                tracing::debug!(
                    kid,
                    "unknown kid; the JWKS was fetched too recently to refetch"
                );
            }
            return hit;
        }
        if fresh {
            state.last_unknown_kid = Some(now);
        }
        match self.fetch_keys(&mut state).await {
            Ok(keys) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the issuer's JWKS");
                state.last_attempt = Some((now, false));
                let hit = keys.get(kid).cloned();
                self.store(KeySet {
                    keys,
                    fetched_at: Some(now),
                });
                hit
            }
            Err(error) => {
                tracing::warn!(
                    issuer = %self.issuer,
                    error = %error,
                    source = ?std::error::Error::source(&error),
                    "cannot refresh the issuer's JWKS; keeping the keys already known"
                );
                state.last_attempt = Some((now, true));
                // The jwks_uri is discovered again next time, in case it moved.
                state.jwks_uri = None;
                hit
            }
        }
    }

    async fn fetch_keys(
        &self,
        state: &mut FetchState,
    ) -> Result<HashMap<String, (DecodingKey, Algorithm)>, OidcError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = self.get_json(jwks_uri.as_str()).await?;
        let (usable, refused) = jwk::parse_set(&document).map_err(|e| OidcError::NoUsableKey {
            url: jwks_uri.to_string(),
            source: Some(e),
        })?;
        for why in &refused {
            tracing::debug!(issuer = %self.issuer, reason = %why, "a JWKS key is not used");
        }
        if usable.is_empty() {
            return Err(OidcError::NoUsableKey {
                url: jwks_uri.to_string(),
                source: refused.into_iter().next(),
            });
        }
        Ok(usable
            .into_iter()
            .map(
                |Jwk {
                     kid,
                     key,
                     algorithm,
                 }| (kid, (key, algorithm)),
            )
            .collect())
    }

    /// Fetches the discovery document and the JWKS now, past the cache, and returns how many
    /// usable signing keys it holds: `chime doctor`'s check of the issuer.
    pub async fn check(&self) -> Result<usize, OidcError> {
        let mut state = FetchState::default();
        Ok(self.fetch_keys(&mut state).await?.len())
    }

    async fn discover(&self) -> Result<url::Url, OidcError> {
        let value = self.get_json(&self.discovery_url).await?;
        let discovery: Discovery =
            serde_json::from_value(value).map_err(|source| OidcError::Json {
                url: self.discovery_url.clone(),
                source,
            })?;
        // OIDC Discovery 1.0 section 4.3: the document must be the configured issuer's own.
        if discovery.issuer != self.issuer {
            return Err(OidcError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: discovery.issuer,
            });
        }
        let uri = url::Url::parse(&discovery.jwks_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(OidcError::BadJwksUri(discovery.jwks_uri))?;
        Ok(uri)
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, OidcError> {
        let fetch_error = |source| OidcError::Fetch {
            url: url.to_owned(),
            source,
        };
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(fetch_error)?;
        if !response.status().is_success() {
            return Err(OidcError::Status {
                url: url.to_owned(),
                status: response.status(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(OidcError::TooLarge {
                    url: url.to_owned(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|source| OidcError::Json {
            url: url.to_owned(),
            source,
        })
    }
}

#[async_trait]
impl KeySource for OidcKeys {
    async fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        // Every key of a JWKS has a kid (jwk.rs refuses those without), so a token must too.
        let kid = kid?;
        let set = self.cached();
        if self.fresh(&set, Instant::now()) {
            if let Some(hit) = set.keys.get(kid) {
                return Some(hit.clone());
            }
        }
        self.refresh_for(kid).await
    }
}
