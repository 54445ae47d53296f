//! Web Push payload encryption: `aes128gcm` (RFC 8188) keyed per RFC 8291.
//!
//! A push message travels through the browser vendor's push service, so it is encrypted for
//! the browser alone: an ephemeral P-256 key pair per message is combined (ECDH) with the
//! subscription's `p256dh` key, and the subscription's `auth` secret is mixed in, so that
//! neither the push service nor anyone who learned only the public key can read or forge it.
//!
//! The key schedule, exactly as RFC 8291 §3.3 and §3.4 give it (all HKDF with SHA-256):
//!
//! ```text
//! ecdh_secret = ECDH(as_private, ua_public)
//! PRK_key     = HMAC-SHA-256(auth_secret, ecdh_secret)                  (HKDF-Extract)
//! key_info    = "WebPush: info" || 0x00 || ua_public || as_public
//! IKM         = HKDF-Expand(PRK_key, key_info, 32)
//! PRK         = HMAC-SHA-256(salt, IKM)                                 (RFC 8188 §2.2)
//! CEK         = HKDF-Expand(PRK, "Content-Encoding: aes128gcm" || 0x00, 16)
//! NONCE       = HKDF-Expand(PRK, "Content-Encoding: nonce" || 0x00, 12)
//! ```
//!
//! The body is one RFC 8188 record: `salt(16) || rs(u32 BE) || idlen(1) = 65 || as_public(65)`
//! followed by `AES-128-GCM(CEK, NONCE, plaintext || 0x02)`. One record is all RFC 8291 §4
//! allows, the `0x02` delimiter marks it as the last record, and no padding is added beyond
//! it (the payload's length leaks roughly what kind of reminder it is, which is acceptable
//! here). With a single record the sequence number is 0, so the nonce is used as derived.
//!
//! [`encrypt_with`] is the deterministic core (ephemeral key and salt passed in) so that the
//! RFC 8291 §5 example can be checked byte for byte; [`encrypt`] draws both at random.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;

use crate::PushSubscription;

/// The record size written in the header. RFC 8291 §4 caps a push message at 4096 octets of
/// payload, so one record of this size always holds the whole message.
pub const RECORD_SIZE: u32 = 4096;

/// Header: salt (16), rs (4), idlen (1), keyid (65-octet uncompressed point).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// AES-GCM tag.
const TAG_LEN: usize = 16;

/// The largest plaintext that fits: the encrypted body (header, plaintext, the `0x02`
/// delimiter and the tag) must stay within the 4096 octets every push service accepts.
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - HEADER_LEN - 1 - TAG_LEN;

/// A browser subscription's keys, decoded and checked: a point on P-256 and a 16-octet secret.
#[derive(Clone)]
pub struct SubscriptionKeys {
    /// `p256dh`: the user agent's public key (`ua_public`).
    pub ua_public: PublicKey,
    /// `auth`: the 16-octet authentication secret.
    pub auth_secret: [u8; 16],
}

impl std::fmt::Debug for SubscriptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The auth secret is what keeps third parties from forging messages: never print it.
        f.debug_struct("SubscriptionKeys")
            .field("ua_public", &self.ua_public)
            .finish_non_exhaustive()
    }
}

/// A subscription whose keys cannot be used; the reason names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSubscription(pub String);

impl SubscriptionKeys {
    /// Decodes `p256dh` and `auth` (base64url; padding tolerated, since some browsers and
    /// libraries add it).
    pub fn parse(subscription: &PushSubscription) -> Result<Self, InvalidSubscription> {
        let p256dh = decode_b64url(&subscription.p256dh)
            .ok_or_else(|| InvalidSubscription("p256dh is not base64url".to_owned()))?;
        // RFC 8291 §3.1: the key is an uncompressed point (65 octets, leading 0x04).
        if p256dh.len() != 65 || p256dh[0] != 0x04 {
            return Err(InvalidSubscription(
                "p256dh is not an uncompressed P-256 point (65 octets)".to_owned(),
            ));
        }
        let ua_public = PublicKey::from_sec1_bytes(&p256dh)
            .map_err(|_| InvalidSubscription("p256dh is not a point on P-256".to_owned()))?;
        let auth = decode_b64url(&subscription.auth)
            .ok_or_else(|| InvalidSubscription("auth is not base64url".to_owned()))?;
        let auth_secret: [u8; 16] = auth
            .try_into()
            .map_err(|_| InvalidSubscription("auth is not 16 octets".to_owned()))?;
        Ok(Self {
            ua_public,
            auth_secret,
        })
    }
}

/// The plaintext is longer than [`MAX_PLAINTEXT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("push payload of {len} octets exceeds the {max}-octet limit", max = MAX_PLAINTEXT)]
pub struct PayloadTooLarge {
    pub len: usize,
}

/// Encrypts `plaintext` for `keys` with a fresh ephemeral key pair and a random salt.
pub fn encrypt(plaintext: &[u8], keys: &SubscriptionKeys) -> Result<Vec<u8>, PayloadTooLarge> {
    let mut rng = rand::rngs::OsRng;
    let as_private = SecretKey::random(&mut rng);
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    encrypt_with(
        plaintext,
        &keys.ua_public,
        &keys.auth_secret,
        &as_private,
        &salt,
    )
}

/// The deterministic core of [`encrypt`]: the application server's ephemeral key and the salt
/// are given. Only for known-answer tests; reusing either in production breaks the scheme.
#[doc(hidden)]
pub fn encrypt_with(
    plaintext: &[u8],
    ua_public: &PublicKey,
    auth_secret: &[u8; 16],
    as_private: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, PayloadTooLarge> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(PayloadTooLarge {
            len: plaintext.len(),
        });
    }
    let ua_point = ua_public.to_encoded_point(false);
    let as_point = as_private.public_key().to_encoded_point(false);

    let ecdh_secret =
        p256::ecdh::diffie_hellman(as_private.to_nonzero_scalar(), ua_public.as_affine());

    // RFC 8291 §3.3/§3.4: PRK_key = HKDF-Extract(auth_secret, ecdh_secret); IKM = Expand(…).
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_point.as_bytes());
    key_info.extend_from_slice(as_point.as_bytes());
    let mut ikm = [0u8; 32];
    expand(
        Some(auth_secret),
        ecdh_secret.raw_secret_bytes(),
        &key_info,
        &mut ikm,
    );

    // RFC 8188 §2.2 and §2.3.
    let mut cek = [0u8; 16];
    expand(Some(salt), &ikm, b"Content-Encoding: aes128gcm\0", &mut cek);
    let mut nonce = [0u8; 12];
    expand(Some(salt), &ikm, b"Content-Encoding: nonce\0", &mut nonce);

    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(0x02);
    let cipher = Aes128Gcm::new(&cek.into());
    // AES-GCM fails only past 2^36 octets; the length check above keeps us far below.
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| PayloadTooLarge {
            len: plaintext.len(),
        })?;

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_point.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// HKDF-SHA-256 Extract then Expand. Every output here is at most 32 octets, far below
/// HKDF's 255 × 32 limit, so expansion cannot fail.
fn expand(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    if hk.expand(info, out).is_err() {
        unreachable!(
            "HKDF-SHA-256 output of {} octets is within its limit",
            out.len()
        );
    }
}

/// Base64url, with or without padding (browsers' `toJSON()` omits it; some libraries add it).
pub(crate) fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_plaintext_fills_exactly_4096_octets() {
        let keys = SubscriptionKeys {
            ua_public: SecretKey::random(&mut rand::rngs::OsRng).public_key(),
            auth_secret: [7; 16],
        };
        let body = encrypt(&vec![b'x'; MAX_PLAINTEXT], &keys).expect("fits");
        assert_eq!(body.len(), 4096);
        assert_eq!(
            encrypt(&vec![b'x'; MAX_PLAINTEXT + 1], &keys),
            Err(PayloadTooLarge {
                len: MAX_PLAINTEXT + 1
            })
        );
    }

    #[test]
    fn a_subscription_with_a_short_auth_secret_is_refused() {
        let key = SecretKey::random(&mut rand::rngs::OsRng).public_key();
        let sub = PushSubscription {
            id: "psub_1".into(),
            endpoint: "https://push.example/x".into(),
            p256dh: URL_SAFE_NO_PAD.encode(key.to_encoded_point(false).as_bytes()),
            auth: URL_SAFE_NO_PAD.encode([1u8; 8]),
        };
        assert_eq!(
            SubscriptionKeys::parse(&sub).map(|_| ()),
            Err(InvalidSubscription("auth is not 16 octets".into()))
        );
    }
}
