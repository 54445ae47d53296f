//! VAPID (RFC 8292): how Chime identifies itself to push services.
//!
//! The web app subscribes with Chime's public key as `applicationServerKey`; the push service
//! then accepts messages for that subscription only with a JWT signed by the matching private
//! key. So the key pair must outlive restarts (a new key orphans every subscription) and the
//! private half must stay private: it lives in the data directory as `vapid-p256.key`, PKCS#8
//! DER, created readable by the owner only, with `create_new` so that two processes starting
//! together cannot overwrite each other's key (the loser reads the winner's).
//!
//! A raw 32-octet big-endian scalar is also accepted on load, so a key made by other Web Push
//! tools (which usually print the scalar in base64url) can be imported by decoding it into
//! the file.
//!
//! The JWT (RFC 8292 §2): header `{"typ":"JWT","alg":"ES256"}`, claims `aud` (the origin of
//! the push endpoint), `exp` (12 hours ahead: RFC 8292 allows at most 24, and half leaves room
//! for clock skew) and `sub` (a `mailto:` or `https:` contact for the push service's
//! operator). The signature is JWS ES256: the raw 64-octet `r || s`, not DER.

use std::io;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::Timestamp;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use p256::SecretKey;

/// How long a VAPID JWT is valid.
pub const JWT_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(12);

/// Chime's VAPID key pair (P-256).
#[derive(Clone)]
pub struct VapidKeys {
    signing: SigningKey,
    /// The uncompressed public point, base64url without padding, computed once.
    public_b64: String,
}

impl std::fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public_key", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl VapidKeys {
    /// The key file's name inside the data directory.
    pub const FILE: &'static str = "vapid-p256.key";

    /// Loads the key from `dir`, creating it (readable by the owner only) on first use.
    pub fn load_or_create(dir: &Path) -> io::Result<Self> {
        let path = dir.join(Self::FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let secret = SecretKey::random(&mut rand::rngs::OsRng);
                let der = secret
                    .to_pkcs8_der()
                    .map_err(|e| io::Error::other(format!("could not encode a P-256 key: {e}")))?;
                match write_private(&path, der.as_bytes()) {
                    Ok(()) => return Ok(Self::from_secret(secret)),
                    // Another process created it between our read and our write: use theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::read(&path)?,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let secret = if bytes.len() == 32 {
            SecretKey::from_slice(&bytes).ok()
        } else {
            SecretKey::from_pkcs8_der(&bytes).ok()
        }
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is neither a P-256 PKCS#8 key nor a 32-octet P-256 scalar",
                    path.display()
                ),
            )
        })?;
        Ok(Self::from_secret(secret))
    }

    /// A key pair from a private key held elsewhere (tests, or keys from a secret store).
    pub fn from_secret(secret: SecretKey) -> Self {
        let public_b64 =
            URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        Self {
            signing: SigningKey::from(secret),
            public_b64,
        }
    }

    /// The uncompressed public point, base64url without padding: the `applicationServerKey`
    /// the web app passes to `pushManager.subscribe`, and the `k` of the `vapid` scheme.
    pub fn public_key_base64url(&self) -> &str {
        &self.public_b64
    }

    /// A JWT for requests to push endpoints of `audience` (an origin such as
    /// `https://fcm.googleapis.com`), valid for [`JWT_LIFETIME`] from `now`.
    pub fn sign_jwt(&self, audience: &str, subject: &str, now: Timestamp) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let exp = now.as_second().saturating_add(JWT_LIFETIME.as_secs());
        let claims = serde_json::json!({ "aud": audience, "exp": exp, "sub": subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        // ECDSA over SHA-256 with an RFC 6979 nonce; `to_bytes` is the fixed-size `r || s`.
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// The `Authorization` header value for a push to `audience` (RFC 8292 §3).
    pub fn authorization(&self, audience: &str, subject: &str, now: Timestamp) -> String {
        format!(
            "vapid t={}, k={}",
            self.sign_jwt(audience, subject, now),
            self.public_b64
        )
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
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
