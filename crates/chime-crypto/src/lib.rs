//! Field-level encryption of personal data, at the ports: whatever adapter stores or carries
//! Chime's data (SQLite and the embedded log, or PostgreSQL and Kafka) only ever holds
//! ciphertext of email addresses, phone numbers, push subscriptions and webhook endpoints.
//!
//! How it is built, and why:
//! - **Decorators, not adapter code.** [`EncryptedStore`] implements every store trait around
//!   any [`chime_store::Store`], and [`EncryptedBus`] the bus around any [`chime_bus::Bus`].
//!   Adapters stay unaware of keys and need nothing to be covered; roles stay unaware of
//!   encryption. The binary wraps its adapters once; the same contract suites pass on the
//!   decorated adapters (so encryption cannot change what the ports promise).
//! - **Field by field.** Only the personal-data fields listed in [`fields`] are encrypted, in
//!   place: documents keep their shape, ids, instants and names stay queryable and readable in
//!   a debugger, and a ciphertext names its key ([`keyring`]).
//! - **AES-256-GCM with key ids.** The newest configured key encrypts; every configured key
//!   decrypts; `chime keys rotate` ([`rotate`]) moves stored fields to the newest key through
//!   the store's small [`chime_store::Reencrypt`] capability. Each ciphertext is bound to its
//!   field (associated data), so it cannot be moved to another field.
//! - **Tolerant of what came before.** Plaintext is read as it is (data written before
//!   encryption keeps working and is encrypted by the next rotation); encrypting an already
//!   encrypted value leaves it as it is, so applying a decorator twice is harmless.
//! - [`scan`] searches stored bytes for plaintext: the test that proves the above, reusable
//!   on any adapter's files or dumps.

pub mod bus;
pub mod fields;
pub mod json;
pub mod keyring;
pub mod rotate;
pub mod scan;
pub mod store;

pub use bus::EncryptedBus;
pub use keyring::Keyring;
pub use store::EncryptedStore;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong. No variant carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no encryption key is configured")]
    NoKeys,
    #[error("encryption key `{id}` is not valid: {reason}")]
    InvalidKey { id: String, reason: &'static str },
    #[error(
        "data is encrypted with key `{0}`, which is not configured: add it to encryption.keys"
    )]
    UnknownKey(String),
    #[error("a field encrypted with key `{key_id}` does not decrypt: wrong key material for that id, a field moved, or tampered data")]
    Decrypt { key_id: String },
    #[error("a ciphertext is malformed: {0}")]
    Malformed(&'static str),
    #[error("encryption failed")]
    Encrypt,
}
