//! Keys by id, and the ciphertext format.
//!
//! A ciphertext is one string, `enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, so it
//! fits wherever the plaintext did (a JSON string, a TEXT column) and says which key opens it:
//! several keys can be live at once, the newest encrypts, the older ones only decrypt until
//! `chime keys rotate` has moved everything off them.
//!
//! - AES-256-GCM with a random 96-bit nonce (at our volumes, far below the 2^32 messages per
//!   key where random nonces start to matter).
//! - The *context* (which field of which record, e.g. `tasks.body/notify/email`) is the
//!   associated data: a ciphertext copied into another field does not decrypt.
//! - [`Keyring::encrypt_deterministic`] derives the nonce from an HMAC-SHA256 of the context
//!   and plaintext under a key derived from the AES key (the construction Rails' deterministic
//!   Active Record encryption uses): equal plaintexts give equal ciphertexts under one key, so
//!   a unique column (push endpoints) still enforces uniqueness. It reveals equality and
//!   nothing else; it is used only where uniqueness needs it.
//! - Plaintext that does not start with `enc:v1:` is returned as it is by
//!   [`Keyring::decrypt`]: data written before encryption was turned on keeps working until a
//!   rotation encrypts it. (No personal-data field can start with `enc:`: emails, E.164 numbers,
//!   `https:` URLs, base64url keys and `whsec_` secrets never do.)

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

/// What every ciphertext starts with.
pub const PREFIX: &str = "enc:v1:";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// One key: its id, the cipher, and the HMAC key for deterministic nonces.
struct Key {
    id: String,
    cipher: Aes256Gcm,
    nonce_key: [u8; 32],
}

/// The configured keys; the last one given is the newest and encrypts.
///
/// `Debug` shows key ids only, never key material.
pub struct Keyring {
    /// Never empty; the newest last.
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .field("current", &self.current_id())
            .finish()
    }
}

/// A key id: 1 to 32 of `A-Z a-z 0-9 _ -` (no `:`, which separates the parts of a ciphertext).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Keyring {
    /// A keyring of `(id, 32-byte key)` pairs, the newest last.
    pub fn new(keys: Vec<(String, [u8; 32])>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::NoKeys);
        }
        let mut out: Vec<Key> = Vec::with_capacity(keys.len());
        for (id, material) in keys {
            if !valid_id(&id) {
                return Err(Error::InvalidKey {
                    id,
                    reason: "a key id is 1 to 32 of A-Z, a-z, 0-9, `_` and `-`",
                });
            }
            if out.iter().any(|k| k.id == id) {
                return Err(Error::InvalidKey {
                    id,
                    reason: "the key id is given twice",
                });
            }
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&material).map_err(|_| {
                Error::InvalidKey {
                    id: id.clone(),
                    reason: "the key cannot key HMAC-SHA256",
                }
            })?;
            mac.update(b"chime deterministic nonce v1");
            let nonce_key: [u8; 32] = mac.finalize().into_bytes().into();
            out.push(Key {
                cipher: Aes256Gcm::new(&material.into()),
                nonce_key,
                id,
            });
        }
        Ok(Self { keys: out })
    }

    /// Parses `id:<base64 of 32 bytes>` specs (the config's `encryption.keys`), newest last.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self> {
        let keys = specs
            .iter()
            .map(|spec| parse_spec(spec.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Self::new(keys)
    }

    /// A new random key as a spec (`id:<base64>`), for `encryption.keys` or a key file.
    pub fn generate_spec(id: &str) -> Result<String> {
        if !valid_id(id) {
            return Err(Error::InvalidKey {
                id: id.to_owned(),
                reason: "a key id is 1 to 32 of A-Z, a-z, 0-9, `_` and `-`",
            });
        }
        let mut material = [0u8; 32];
        OsRng.fill_bytes(&mut material);
        Ok(format!("{id}:{}", STANDARD.encode(material)))
    }

    /// The id of the key that encrypts.
    pub fn current_id(&self) -> &str {
        self.current().id.as_str()
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    fn current(&self) -> &Key {
        // `new` refuses an empty list, so there is a last key; index 0 is the same one then.
        &self.keys[self.keys.len() - 1]
    }

    fn key(&self, id: &str) -> Result<&Key> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::UnknownKey(id.to_owned()))
    }

    /// Encrypts `plaintext` for the field `context` with the newest key and a random nonce.
    /// A value that is already a ciphertext is returned as it is.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> Result<String> {
        if is_ciphertext(plaintext) {
            return Ok(plaintext.to_owned());
        }
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        seal(self.current(), nonce, plaintext, context)
    }

    /// Like [`encrypt`](Self::encrypt), but equal `(plaintext, context)` give equal
    /// ciphertexts under one key: for values a store must compare (unique push endpoints).
    pub fn encrypt_deterministic(&self, plaintext: &str, context: &str) -> Result<String> {
        if is_ciphertext(plaintext) {
            return Ok(plaintext.to_owned());
        }
        let key = self.current();
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.nonce_key).map_err(|_| Error::Encrypt)?;
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context.as_bytes());
        mac.update(plaintext.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&digest[..NONCE_LEN]);
        seal(key, nonce, plaintext, context)
    }

    /// Decrypts a ciphertext of the field `context`, with whichever key it names. A value
    /// that is not a ciphertext (plaintext written before encryption) is returned as it is.
    pub fn decrypt(&self, value: &str, context: &str) -> Result<String> {
        let Some(rest) = value.strip_prefix(PREFIX) else {
            return Ok(value.to_owned());
        };
        let (id, data) = rest.split_once(':').ok_or(Error::Malformed("no key id"))?;
        let key = self.key(id)?;
        let data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| Error::Malformed("not base64url"))?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Malformed("too short"));
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Decrypt {
                key_id: id.to_owned(),
            })?;
        String::from_utf8(plain).map_err(|_| Error::Malformed("plaintext is not UTF-8"))
    }

    /// Whether `value` is a ciphertext under the newest key (nothing for a rotation to do).
    pub fn is_current(&self, value: &str) -> bool {
        key_id_of(value) == Some(self.current_id())
    }
}

/// Whether `value` has the ciphertext format's prefix.
pub fn is_ciphertext(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// The key id a ciphertext names, if `value` is one.
pub fn key_id_of(value: &str) -> Option<&str> {
    value
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id)
}

fn seal(key: &Key, nonce: [u8; NONCE_LEN], plaintext: &str, context: &str) -> Result<String> {
    let sealed = key
        .cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| Error::Encrypt)?;
    let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
    data.extend_from_slice(&nonce);
    data.extend_from_slice(&sealed);
    Ok(format!(
        "{PREFIX}{}:{}",
        key.id,
        URL_SAFE_NO_PAD.encode(data)
    ))
}

/// `id:<base64>` to an id and 32 bytes. Errors name the id, never the material.
fn parse_spec(spec: &str) -> Result<(String, [u8; 32])> {
    let (id, material) = spec
        .trim()
        .split_once(':')
        .ok_or_else(|| Error::InvalidKey {
            id: String::new(),
            reason: "a key is `id:<base64 of 32 bytes>`",
        })?;
    let bytes = STANDARD
        .decode(material.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(material.trim()))
        .map_err(|_| Error::InvalidKey {
            id: id.to_owned(),
            reason: "the key material is not base64",
        })?;
    let material: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidKey {
        id: id.to_owned(),
        reason: "the key material is not 32 bytes (AES-256)",
    })?;
    Ok((id.to_owned(), material))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[&str]) -> Keyring {
        Keyring::new(
            ids.iter()
                .enumerate()
                .map(|(i, id)| ((*id).to_owned(), [i as u8 + 1; 32]))
                .collect(),
        )
        .expect("a valid keyring")
    }

    const CTX: &str = "tasks.body/notify/email";

    #[test]
    fn a_value_round_trips_and_names_the_newest_key() {
        let keys = ring(&["k1", "k2"]);
        let sealed = keys.encrypt("alice@example.com", CTX).expect("encrypt");
        assert!(sealed.starts_with("enc:v1:k2:"), "{sealed}");
        assert!(!sealed.contains("alice"));
        assert_eq!(
            keys.decrypt(&sealed, CTX).expect("decrypt"),
            "alice@example.com"
        );
        assert!(keys.is_current(&sealed));
    }

    #[test]
    fn random_nonces_make_two_encryptions_of_one_value_differ() {
        let keys = ring(&["k1"]);
        let a = keys.encrypt("+14075551212", CTX).expect("encrypt");
        let b = keys.encrypt("+14075551212", CTX).expect("encrypt");
        assert_ne!(a, b);
    }

    #[test]
    fn deterministic_encryption_is_equal_for_equal_values_and_still_decrypts() {
        let keys = ring(&["k1"]);
        let a = keys
            .encrypt_deterministic("https://push.example/1", "push.endpoint")
            .expect("encrypt");
        let b = keys
            .encrypt_deterministic("https://push.example/1", "push.endpoint")
            .expect("encrypt");
        let c = keys
            .encrypt_deterministic("https://push.example/2", "push.endpoint")
            .expect("encrypt");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            keys.decrypt(&a, "push.endpoint").expect("decrypt"),
            "https://push.example/1"
        );
    }

    #[test]
    fn a_ciphertext_under_an_unknown_key_id_is_refused_naming_the_id() {
        let sealed = ring(&["k1"]).encrypt("secret", CTX).expect("encrypt");
        match ring(&["k2"]).decrypt(&sealed, CTX) {
            Err(Error::UnknownKey(id)) => assert_eq!(id, "k1"),
            other => panic!("expected an unknown key, got {other:?}"),
        }
    }

    #[test]
    fn a_ciphertext_under_the_same_id_but_another_key_does_not_decrypt() {
        let sealed = ring(&["k1"]).encrypt("secret", CTX).expect("encrypt");
        let impostor = Keyring::new(vec![("k1".to_owned(), [9; 32])]).expect("keyring");
        assert!(matches!(
            impostor.decrypt(&sealed, CTX),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn a_tampered_ciphertext_does_not_decrypt() {
        let keys = ring(&["k1"]);
        let sealed = keys.encrypt("alice@example.com", CTX).expect("encrypt");
        let (head, data) = sealed.rsplit_once(':').expect("format");
        let mut bytes = URL_SAFE_NO_PAD.decode(data).expect("base64");
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 0x01;
            let tampered = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(
                matches!(keys.decrypt(&tampered, CTX), Err(Error::Decrypt { .. })),
                "flipping byte {i} went unnoticed"
            );
            bytes[i] ^= 0x01;
        }
        let truncated = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes[..20]));
        assert!(keys.decrypt(&truncated, CTX).is_err());
        assert!(keys.decrypt("enc:v1:k1", CTX).is_err());
        assert!(keys.decrypt("enc:v1:k1:%%%", CTX).is_err());
    }

    #[test]
    fn a_ciphertext_moved_to_another_field_does_not_decrypt() {
        let keys = ring(&["k1"]);
        let sealed = keys.encrypt("alice@example.com", CTX).expect("encrypt");
        assert!(matches!(
            keys.decrypt(&sealed, "tasks.body/notify/sms"),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn after_a_rotation_old_ciphertexts_still_decrypt_and_new_ones_use_the_new_key() {
        let old = ring(&["k1"]);
        let sealed = old.encrypt("alice@example.com", CTX).expect("encrypt");
        let rotated = ring(&["k1", "k2"]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(
            rotated.decrypt(&sealed, CTX).expect("decrypt"),
            "alice@example.com"
        );
        let resealed = rotated.encrypt("alice@example.com", CTX).expect("encrypt");
        assert_eq!(key_id_of(&resealed), Some("k2"));
    }

    #[test]
    fn plaintext_passes_through_decrypt_and_ciphertext_through_encrypt() {
        let keys = ring(&["k1"]);
        assert_eq!(
            keys.decrypt("bob@example.com", CTX).expect("plaintext"),
            "bob@example.com"
        );
        let sealed = keys.encrypt("bob@example.com", CTX).expect("encrypt");
        assert_eq!(keys.encrypt(&sealed, CTX).expect("again"), sealed);
    }

    #[test]
    fn specs_parse_and_bad_ones_are_refused_without_showing_key_material() {
        let spec = Keyring::generate_spec("k7").expect("spec");
        let keys = Keyring::parse(&[spec.as_str()]).expect("parse");
        assert_eq!(keys.current_id(), "k7");
        let short = format!("k1:{}", STANDARD.encode([1u8; 16]));
        let error = Keyring::parse(&[short.as_str()]).expect_err("16 bytes");
        assert!(!error.to_string().contains(&STANDARD.encode([1u8; 16])));
        assert!(Keyring::parse(&["k:1:nope"]).is_err());
        assert!(Keyring::parse(&["no-colon"]).is_err());
        assert!(matches!(Keyring::parse::<&str>(&[]), Err(Error::NoKeys)));
        let twice = [spec.as_str(), spec.as_str()];
        assert!(Keyring::parse(&twice).is_err());
        let debug = format!("{keys:?}");
        let material = spec.split_once(':').expect("spec").1;
        assert!(!debug.contains(material), "{debug}");
        assert!(debug.contains("k7"));
    }
}
