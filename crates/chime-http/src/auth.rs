//! Bearer-token authentication.
//!
//! [`Authenticator`] validates a JWT's signature, expiry, issuer and audience and maps its
//! `sub` claim to the user. Where the verification keys come from is a [`KeySource`]: today the
//! local issuer of the embedded default ([`LocalIssuer`], an Ed25519 key in the data
//! directory); an OIDC issuer's JWKS is one more `KeySource`, looked up by the token's `kid`.

use std::path::Path;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chime_core::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::AppState;

/// Verification keys by key id.
pub trait KeySource: Send + Sync + 'static {
    /// The key and algorithm for a token whose header names `kid`.
    fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)>;
}

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
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token's subject is not a valid user id")]
    BadSubject,
}

impl Authenticator {
    pub fn new(keys: Arc<dyn KeySource>, issuer: &str, audience: &str) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// The user a bearer token speaks for.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let (key, algorithm) = self
            .keys
            .key(header.kid.as_deref())
            .ok_or(AuthError::UnknownKey)?;
        // The key decides the algorithm, never the token (no `alg: none`, no HS/RS confusion).
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)?;
        UserId::parse(&data.claims.sub).map_err(|_| AuthError::BadSubject)
    }
}

/// The caller, from `Authorization: Bearer …`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
        state
            .auth
            .verify(token)
            .map(AuthUser)
            .map_err(|e| ApiError::Unauthorized(e.to_string()))
    }
}

/// The embedded default's token issuer: an Ed25519 key kept in the data directory.
pub struct LocalIssuer {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
    kid: String,
}

impl LocalIssuer {
    /// The `iss` of tokens the local issuer signs.
    pub const ISSUER: &'static str = "chime-local";
    /// The `aud` the local issuer signs for and the server expects.
    pub const AUDIENCE: &'static str = "chime";
    const FILE: &'static str = "issuer-ed25519.pk8";

    /// Loads the key from `dir`, creating it (readable by the owner only) on first use.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(Self::FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| std::io::Error::other("could not generate an Ed25519 key"))?;
                write_private(&path, doc.as_ref())?;
                doc.as_ref().to_vec()
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
        Ok(Self { pair, pkcs8, kid })
    }

    /// A token for `user`, valid for `ttl`.
    pub fn sign(&self, user: &UserId, ttl: std::time::Duration) -> Result<String, AuthError> {
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        let claims = Claims {
            sub: user.as_str().to_owned(),
            iss: Self::ISSUER.to_owned(),
            aud: Self::AUDIENCE.to_owned(),
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
}

impl KeySource for LocalIssuer {
    fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
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
