//! Standard Webhooks signatures, symmetric flavour (`v1`, HMAC-SHA256).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes of the
//! secret after `whsec_` (base64), and sent as `v1,` + base64 of the MAC. The header may carry
//! several space-separated signatures (secret rotation), so [`verify`] accepts any `v1` one that
//! matches, compared in constant time (`Mac::verify_slice`).
//!
//! The message id ([`message_id`]) is derived from the delivery's idempotency key rather than
//! drawn at random: every attempt of one delivery carries the same `webhook-id`, which is what
//! the spec asks receivers to deduplicate on, and nothing has to be stored to achieve it.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix that marks a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The spec's minimum key length (192 bits). Longer keys are accepted: HMAC takes any length.
pub const MIN_KEY_BYTES: usize = 24;

/// How far a `webhook-timestamp` may be from the verifier's clock, in seconds (the reference
/// libraries' five minutes).
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

const GENERATED_KEY_BYTES: usize = 32;

/// Decodes with or without `=` padding: secrets pasted by people lose it now and then.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret, a signature or a timestamp was refused. No variant carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the webhook secret is not valid: {0}")]
    InvalidSecret(&'static str),
    #[error("the webhook id must be non-empty and must not contain `.`")]
    InvalidId,
    #[error(
        "the webhook timestamp {timestamp} is more than {TIMESTAMP_TOLERANCE_SECONDS} seconds \
         from now ({now})"
    )]
    TimestampOutOfTolerance { timestamp: i64, now: i64 },
    #[error("no `v1` signature in the header matches")]
    NoMatchingSignature,
}

/// A parsed signing secret: the HMAC key, ready to use. Its `Debug` does not show the key.
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Parses `whsec_` + base64 of at least [`MIN_KEY_BYTES`] bytes. A secret without the
    /// prefix is accepted too, as the reference libraries do.
    pub fn parse(secret: &str) -> Result<SigningKey, SignatureError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let key = LENIENT_BASE64
            .decode(encoded.trim())
            .map_err(|_| SignatureError::InvalidSecret("the part after `whsec_` is not base64"))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(SignatureError::InvalidSecret(
                "the key is shorter than 24 bytes; generate a new secret",
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| SignatureError::InvalidSecret("the key cannot key HMAC-SHA256"))?;
        Ok(SigningKey(mac))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignatureError> {
        // A `.` in the id would make `{id}.{timestamp}.{body}` ambiguous.
        if id.is_empty() || id.contains('.') {
            return Err(SignatureError::InvalidId);
        }
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        Ok(mac)
    }

    /// The `webhook-signature` header value: `v1,` + base64 of the MAC.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
        let tag = self.mac(id, timestamp, body)?.finalize().into_bytes();
        Ok(format!("v1,{}", STANDARD.encode(tag)))
    }

    /// Accepts when any `v1,` signature in the space-separated `signatures` header matches.
    /// Does not look at the clock; [`verify`] does.
    pub fn verify_signature(
        &self,
        id: &str,
        timestamp: i64,
        body: &[u8],
        signatures: &str,
    ) -> Result<(), SignatureError> {
        let mac = self.mac(id, timestamp, body)?;
        let matches = signatures
            .split_ascii_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|tag| mac.clone().verify_slice(&tag).is_ok());
        if matches {
            Ok(())
        } else {
            Err(SignatureError::NoMatchingSignature)
        }
    }
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut key = [0u8; GENERATED_KEY_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` value for one attempt (`timestamp` in unix seconds).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    SigningKey::parse(secret)?.sign(id, timestamp, body)
}

/// What a receiver does: checks that `timestamp` is within
/// [`TIMESTAMP_TOLERANCE_SECONDS`] of `now`, then that one of the `v1` signatures in the
/// `webhook-signature` header value matches. `body` must be the raw bytes received.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    signatures: &str,
    now: jiff::Timestamp,
) -> Result<(), SignatureError> {
    let now = now.as_second();
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(SignatureError::TimestampOutOfTolerance { timestamp, now });
    }
    SigningKey::parse(secret)?.verify_signature(id, timestamp, body, signatures)
}

/// The `webhook-id` for a delivery: `msg_` + the first 128 bits of SHA-256 of its idempotency
/// key, in hex. Stable across attempts, distinct per occurrence and target, free of `.`.
pub fn message_id(idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let mut id = String::with_capacity(4 + 32);
    id.push_str("msg_");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn signing_reproduces_the_reference_libraries_test_vector() {
        let sig = sign(SECRET, ID, 1649367553, BODY).unwrap();
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn verification_accepts_any_matching_v1_signature_in_the_header() {
        let sig = sign(SECRET, ID, 1649367553, BODY).unwrap();
        let now = jiff::Timestamp::from_second(1649367600).unwrap();
        verify(
            SECRET,
            ID,
            1649367553,
            BODY,
            &format!("v1a,xyz v1,AAAA {sig}"),
            now,
        )
        .unwrap();
        assert_eq!(
            verify(SECRET, ID, 1649367553, b"{}", &sig, now),
            Err(SignatureError::NoMatchingSignature)
        );
        let later = jiff::Timestamp::from_second(1649367553 + 301).unwrap();
        assert!(matches!(
            verify(SECRET, ID, 1649367553, BODY, &sig, later),
            Err(SignatureError::TimestampOutOfTolerance { .. })
        ));
    }

    #[test]
    fn a_short_or_non_base64_secret_is_refused() {
        assert!(matches!(
            SigningKey::parse("whsec_c2hvcnQ="),
            Err(SignatureError::InvalidSecret(_))
        ));
        assert!(matches!(
            SigningKey::parse("whsec_not base64!"),
            Err(SignatureError::InvalidSecret(_))
        ));
    }

    #[test]
    fn an_id_with_a_dot_is_refused() {
        assert_eq!(
            sign(SECRET, "msg.1", 1, b"{}"),
            Err(SignatureError::InvalidId)
        );
    }

    #[test]
    fn the_message_id_is_stable_and_prefixed() {
        let a = message_id("tsk_1@2026-01-01T00:00:00Z/webhook");
        assert_eq!(a, message_id("tsk_1@2026-01-01T00:00:00Z/webhook"));
        assert_ne!(a, message_id("tsk_1@2026-01-02T00:00:00Z/webhook"));
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("msg_"));
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_key_does_not_show_in_debug() {
        let key = SigningKey::parse(SECRET).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(..)");
    }
}
