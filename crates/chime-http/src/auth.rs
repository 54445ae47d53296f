//! Bearer-token authentication: one verification path for every issuer.
//!
//! [`Authenticator`] validates a JWT's signature, expiry (and `nbf`), issuer and audience
//! and maps its `sub` claim (or a configured one) to the user; an optional admin role is a
//! configured claim value. Where the verification keys come from is a [`KeySource`], looked up
//! by the token's `kid`: an external OpenID Connect issuer's JWKS ([`OidcKeys`], discovered and
//! refreshed so key rotation needs no restart), or the embedded default's [`LocalIssuer`] (an
//! Ed25519 key in the data directory, behind `chime token`), which also publishes its own
//! discovery document and JWKS so that it is one more OIDC issuer to the same code.
//!
//! The KEY decides the algorithm, never the token header: `alg: none`, an HS256 token
//! "signed" with a public key, or an RS256 token against an EC key all fail, because the
//! validation accepts exactly the one algorithm of the key the `kid` names.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chime_core::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::AppState;

pub mod jwk;
pub mod oidc;
mod verified;

pub use oidc::{OidcError, OidcKeys};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Verification keys by key id.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The key and algorithm for a token whose header names `kid`; the algorithm is the key's.
    async fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)>;
}

/// `[auth]`: which issuer's tokens are accepted and how they name the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The external OIDC issuer (`https://idp.example.com/realms/x`), exactly as its tokens'
    /// `iss` says. Unset: tokens of the local issuer (`chime token`) only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The `aud` tokens must carry (the local issuer signs for it too).
    pub audience: String,
    /// The claim whose value is the user id.
    pub user_claim: String,
    /// A claim (a string or an array of strings; `a.b` reaches into objects, e.g.
    /// `realm_access.roles`) that makes the caller an admin when it holds `admin_value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_value: Option<String>,
    /// How often the external issuer's JWKS is fetched again.
    pub jwks_refresh_seconds: u64,
    /// This server's public base URL: the local issuer's `iss` and the base of its discovery
    /// document. Default `http://{listen}` (`https://` with TLS on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: LocalIssuer::AUDIENCE.to_owned(),
            user_claim: "sub".to_owned(),
            admin_claim: None,
            admin_value: None,
            jwks_refresh_seconds: OidcKeys::DEFAULT_REFRESH.as_secs(),
            public_base_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.{key}: {why}")]
    Invalid { key: &'static str, why: String },
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        let invalid = |key, why: &str| {
            Err(AuthConfigError::Invalid {
                key,
                why: why.to_owned(),
            })
        };
        if let Some(issuer) = &self.issuer {
            let Ok(url) = url::Url::parse(issuer) else {
                return invalid("issuer", "not an absolute URL");
            };
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            // Keys fetched over plain HTTP could be swapped by anyone on the path.
            if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
                return invalid("issuer", "must be https (plain http only on loopback)");
            }
        }
        if self.audience.is_empty() {
            return invalid("audience", "must not be empty");
        }
        if self.user_claim.is_empty() {
            return invalid("user_claim", "must not be empty");
        }
        if self.admin_claim.is_some() != self.admin_value.is_some() {
            return invalid(
                "admin_claim",
                "admin_claim and admin_value go together (set both or neither)",
            );
        }
        if self.jwks_refresh_seconds == 0 {
            return invalid("jwks_refresh_seconds", "must be at least 1");
        }
        if let Some(base) = &self.public_base_url {
            if !url::Url::parse(base).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return invalid("public_base_url", "not an absolute http(s) URL");
            }
        }
        Ok(())
    }

    /// The local issuer's `iss`: the public base URL, else `http(s)://{listen}`.
    pub fn local_issuer_url(&self, listen: std::net::SocketAddr, https: bool) -> String {
        let scheme = if https { "https" } else { "http" };
        self.public_base_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{scheme}://{listen}"))
    }

    /// The configured admin role, when both halves are set.
    pub fn admin_role(&self) -> Option<AdminRole> {
        Some(AdminRole {
            claim: self.admin_claim.clone()?,
            value: self.admin_value.clone()?,
        })
    }
}

/// A claim value that makes the caller an admin (may read any task, audited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRole {
    pub claim: String,
    pub value: String,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub admin: bool,
}

/// The claims the local issuer signs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
}

pub struct Authenticator {
    keys: Arc<dyn KeySource>,
    issuer: String,
    audience: String,
    user_claim: String,
    admin: Option<AdminRole>,
    /// Tokens that passed every check lately (see `verified`).
    verified: verified::Verified,
}

/// Seconds since the Unix epoch, as `exp` and `nbf` count them.
fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token's `{0}` claim is not a valid user id")]
    BadSubject(String),
}

impl Authenticator {
    /// Accepts tokens of `issuer` for `audience` whose `sub` is the user.
    pub fn new(keys: Arc<dyn KeySource>, issuer: &str, audience: &str) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            user_claim: "sub".to_owned(),
            admin: None,
            verified: verified::Verified::default(),
        }
    }

    /// The user is this claim's value instead of `sub`'s.
    pub fn with_user_claim(mut self, claim: &str) -> Self {
        claim.clone_into(&mut self.user_claim);
        self
    }

    pub fn with_admin_role(mut self, admin: Option<AdminRole>) -> Self {
        self.admin = admin;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Who a bearer token speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some((principal, kid, algorithm)) =
            self.verified.get(token, now_seconds(), LEEWAY.as_secs())
        {
            // Only while the key source still has the key it was verified with.
            if matches!(self.keys.key(kid.as_deref()).await, Some((_, a)) if a == algorithm) {
                return Ok(principal);
            }
        }
        // Fails for `alg: none` and any name jsonwebtoken does not implement.
        let header = jsonwebtoken::decode_header(token)?;
        let (key, algorithm) = self
            .keys
            .key(header.kid.as_deref())
            .await
            .ok_or(AuthError::UnknownKey)?;
        // Exactly the key's algorithm: no `none`, no HS/RS confusion, no RS/PS swap.
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY.as_secs();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)?;
        let user = claim(&data.claims, &self.user_claim)
            .and_then(Value::as_str)
            .and_then(|s| UserId::parse(s).ok())
            .ok_or_else(|| AuthError::BadSubject(self.user_claim.clone()))?;
        let admin =
            self.admin
                .as_ref()
                .is_some_and(|role| match claim(&data.claims, &role.claim) {
                    Some(Value::String(s)) => *s == role.value,
                    Some(Value::Array(values)) => {
                        values.iter().any(|v| v.as_str() == Some(&role.value))
                    }
                    _ => false,
                });
        let principal = Principal { user, admin };
        // `exp` is required and numeric (the validation above checked it).
        if let Some(exp) = data.claims.get("exp").and_then(Value::as_u64) {
            let nbf = data.claims.get("nbf").and_then(Value::as_u64);
            self.verified
                .put(token, principal.clone(), (header.kid, algorithm), exp, nbf);
        }
        Ok(principal)
    }
}

/// A claim by name, or by a dotted path into nested objects when no claim has that name
/// (`realm_access.roles`); URL-named claims (`https://example.com/roles`) are found whole.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

async fn principal(parts: &mut Parts, state: &AppState) -> Result<Principal, ApiError> {
    // A middleware may have verified this request's token already.
    if let Some(principal) = parts.extensions.get::<Principal>() {
        return Ok(principal.clone());
    }
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized(AuthError::Missing.to_string()))?;
    let principal = state
        .auth
        .verify(token)
        .await
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    parts.extensions.insert(principal.clone());
    Ok(principal)
}

/// The caller, from `Authorization: Bearer …`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        principal(parts, state).await.map(|p| AuthUser(p.user))
    }
}

/// A caller with the configured admin role. Anyone else gets a 404, as if the admin
/// endpoints did not exist (a 403 would confirm they do).
#[derive(Debug, Clone)]
pub struct AdminUser(pub UserId);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if principal.admin {
            Ok(AdminUser(principal.user))
        } else {
            Err(ApiError::NotFound)
        }
    }
}

/// The embedded default's token issuer: an Ed25519 key kept in the data directory.
pub struct LocalIssuer {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
    kid: String,
    issuer: String,
    audience: String,
}

impl LocalIssuer {
    /// The `aud` the local issuer signs for by default (`auth.audience`).
    pub const AUDIENCE: &'static str = "chime";
    /// Where the discovery document and JWKS are served.
    pub const DISCOVERY_PATH: &'static str = "/.well-known/openid-configuration";
    pub const JWKS_PATH: &'static str = "/.well-known/jwks.json";
    const FILE: &'static str = "issuer-ed25519.pk8";
    /// The `iss` the last server on this data directory used, for `chime token`.
    const URL_FILE: &'static str = "issuer-url";

    /// Loads the key from `dir`, creating it (readable by the owner only) on first use. Its
    /// tokens say `iss: issuer` (the server's public base URL) and `aud: audience`.
    pub fn load_or_create(dir: &Path, issuer: &str, audience: &str) -> std::io::Result<Self> {
        let path = dir.join(Self::FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| std::io::Error::other("could not generate an Ed25519 key"))?;
                match write_private(&path, doc.as_ref()) {
                    Ok(()) => doc.as_ref().to_vec(),
                    // Another instance sharing the keys directory created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(&path)?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not an Ed25519 PKCS#8 key", path.display()),
            )
        })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, pair.public_key().as_ref());
        let kid = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            pair,
            pkcs8,
            kid,
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A token for `user`, valid for `ttl`.
    pub fn sign(&self, user: &UserId, ttl: std::time::Duration) -> Result<String, AuthError> {
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        let claims = Claims {
            sub: user.as_str().to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ed_der(&self.pkcs8),
        )?)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Records this issuer's URL in `dir`, so that `chime token` on the same data directory
    /// signs for the server that is running there, whatever port it listens on.
    pub fn remember_url(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join(Self::URL_FILE), format!("{}\n", self.issuer))
    }

    /// The URL the last server on `dir` recorded, if any.
    pub fn remembered_url(dir: &Path) -> Option<String> {
        let text = std::fs::read_to_string(dir.join(Self::URL_FILE)).ok()?;
        let url = text.trim();
        url::Url::parse(url).ok().map(|_| url.to_owned())
    }

    /// The `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The public key as a JWKS (an OKP Ed25519 JWK).
    pub fn jwks(&self) -> Value {
        use base64::Engine as _;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.pair.public_key());
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }

    /// The OpenID Provider metadata a verifier needs: who the issuer is and where its keys are.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}{}", self.issuer, Self::JWKS_PATH),
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["token"],
        })
    }
}

#[async_trait]
impl KeySource for LocalIssuer {
    async fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        (kid == Some(self.kid.as_str())).then(|| {
            (
                DecodingKey::from_ed_der(self.pair.public_key().as_ref()),
                Algorithm::EdDSA,
            )
        })
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `GET /.well-known/openid-configuration` of the local issuer; 404 when an external issuer
/// is configured (this server then issues nothing).
pub(crate) async fn local_discovery(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<Value>, ApiError> {
    let issuer = state.local_issuer.as_ref().ok_or(ApiError::NotFound)?;
    Ok(axum::Json(issuer.discovery()))
}

/// `GET /.well-known/jwks.json`: the local issuer's public key.
pub(crate) async fn local_jwks(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<Value>, ApiError> {
    let issuer = state.local_issuer.as_ref().ok_or(ApiError::NotFound)?;
    Ok(axum::Json(issuer.jwks()))
}
