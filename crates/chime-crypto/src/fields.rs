//! Which fields are personal data, where, and under which context (associated data) each is
//! encrypted: the one catalogue the store and bus decorators and the rotation share.
//!
//! | record | fields | context |
//! |---|---|---|
//! | task body (`tasks`) | `/notify/email`, `/notify/sms` | `tasks.body<pointer>` |
//! | schedule body | the same | `schedule.body<pointer>` |
//! | delivery message | the task's, and the recipient's address, number, url, secret, push endpoint, p256dh, auth | `deliveries.message<pointer>` |
//! | event payload (outbox and bus) | `/task/notify/email`, `/task/notify/sms` (`task_*`, `execute_task`) | `event<pointer>` |
//! | push subscription | endpoint (deterministic), p256dh, auth | `push.endpoint`, … |
//! | webhook endpoint | url, secret | `webhook.url`, `webhook.secret` |
//! | destination | name, url (with the service's token) | `destination.name`, `destination.url` |
//! | browser session | access token, PKCE verifier | `sessions.access_token`, `sessions.verifier` |
//!
//! Not encrypted, deliberately: ids, instants, task names and descriptions (the reminder's
//! text: not contact data, and the inbox must list it), and delivery details (`detail`,
//! `provider_id`), which the channel adapters keep free of addresses.

use chime_store::PiiColumn;
use serde_json::Value;

use crate::json::{map_bytes, map_value};
use crate::{Keyring, Result};

/// Personal data in a task body (the API shape, `TaskSpec::to_json`).
pub const TASK_BODY: &[&str] = &["/notify/email", "/notify/sms"];

/// Personal data in an event payload: the task the event carries.
pub const EVENT: &[&str] = &["/task/notify/email", "/task/notify/sms"];

/// Personal data in a pending delivery's message (`{late, task, recipient}`).
pub const DELIVERY_MESSAGE: &[&str] = &[
    "/task/notify/email",
    "/task/notify/sms",
    "/recipient/address",
    "/recipient/number",
    "/recipient/url",
    "/recipient/secret",
    "/recipient/subscription/endpoint",
    "/recipient/subscription/p256dh",
    "/recipient/subscription/auth",
];

/// A JSON document kind: its context prefix and its personal-data pointers.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub context: &'static str,
    pub pointers: &'static [&'static str],
}

pub const TASK: Doc = Doc {
    context: "tasks.body",
    pointers: TASK_BODY,
};
pub const SCHEDULE: Doc = Doc {
    context: "schedule.body",
    pointers: TASK_BODY,
};
pub const MESSAGE: Doc = Doc {
    context: "deliveries.message",
    pointers: DELIVERY_MESSAGE,
};
pub const EVENT_PAYLOAD: Doc = Doc {
    context: "event",
    pointers: EVENT,
};

pub const PUSH_ENDPOINT: &str = "push.endpoint";
pub const PUSH_P256DH: &str = "push.p256dh";
pub const PUSH_AUTH: &str = "push.auth";
pub const WEBHOOK_URL: &str = "webhook.url";
pub const WEBHOOK_SECRET: &str = "webhook.secret";
/// A destination's name is the user's own text ("Mum's phone"); its URL holds the service's
/// token.
pub const DESTINATION_NAME: &str = "destination.name";
pub const DESTINATION_URL: &str = "destination.url";
/// A profile's stored JSON, encrypted whole.
pub const PROFILE_BODY: &str = "profile.body";
/// A browser session's OIDC access token, and its pending sign-in's PKCE verifier. Not in a
/// key rotation: sessions live hours, and one sealed with a retired key reads as signed out.
pub const SESSION_ACCESS_TOKEN: &str = "sessions.access_token";
pub const SESSION_VERIFIER: &str = "sessions.verifier";

impl Doc {
    fn context_of(&self, pointer: &str) -> String {
        format!("{}{pointer}", self.context)
    }

    /// Encrypts the document's personal data in place (values already encrypted stay).
    pub fn encrypt_value(&self, keys: &Keyring, doc: &mut Value) -> Result<()> {
        map_value(doc, self.pointers, &mut |p, s| {
            encrypt_changed(keys, s, &self.context_of(p))
        })
        .map(drop)
    }

    /// Decrypts the document's personal data in place (plaintext stays).
    pub fn decrypt_value(&self, keys: &Keyring, doc: &mut Value) -> Result<()> {
        map_value(doc, self.pointers, &mut |p, s| {
            decrypt_changed(keys, s, &self.context_of(p))
        })
        .map(drop)
    }

    /// [`encrypt_value`](Self::encrypt_value) on JSON bytes; bytes that are not JSON, or hold
    /// nothing to encrypt, come back unchanged.
    pub fn encrypt_bytes(&self, keys: &Keyring, bytes: Vec<u8>) -> Result<Vec<u8>> {
        if !self.may_hold_fields(&bytes) {
            return Ok(bytes);
        }
        Ok(map_bytes(&bytes, self.pointers, &mut |p, s| {
            encrypt_changed(keys, s, &self.context_of(p))
        })?
        .unwrap_or(bytes))
    }

    /// [`decrypt_value`](Self::decrypt_value) on JSON bytes; the inverse of
    /// [`encrypt_bytes`](Self::encrypt_bytes), byte for byte, for documents serde_json wrote.
    pub fn decrypt_bytes(&self, keys: &Keyring, bytes: Vec<u8>) -> Result<Vec<u8>> {
        // Every ciphertext starts with the prefix: without it there is nothing to open.
        if !contains(&bytes, crate::keyring::PREFIX.as_bytes()) {
            return Ok(bytes);
        }
        Ok(map_bytes(&bytes, self.pointers, &mut |p, s| {
            decrypt_changed(keys, s, &self.context_of(p))
        })?
        .unwrap_or(bytes))
    }

    /// Moves every field not on the newest key (an older key's ciphertext, or plaintext) to
    /// it. `None` when every field already is.
    pub fn reencrypt_bytes(&self, keys: &Keyring, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        map_bytes(bytes, self.pointers, &mut |p, s| {
            reencrypt_changed(keys, s, &self.context_of(p), false)
        })
    }
}

impl Doc {
    /// Whether `bytes` may hold one of the document's fields with a string value: one's name
    /// (its pointer's last token, as a JSON key) followed by a string appears in them, or a
    /// `\u` escape could spell one. Most events carry no personal data at all (an in-app
    /// reminder's has `"email":null`), and this check spares them a JSON parse and
    /// re-serialisation on every hop.
    fn may_hold_fields(&self, bytes: &[u8]) -> bool {
        find(bytes, b"\\u").is_some()
            || self.pointers.iter().any(|pointer| {
                let name = pointer.rsplit('/').next().unwrap_or(pointer);
                key_with_string_value(bytes, format!("\"{name}\"").as_bytes())
            })
    }
}

/// Whether `key` (quoted) appears followed by `:` and a string, whitespace allowed between.
fn key_with_string_value(bytes: &[u8], key: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = find(rest, key) {
        rest = &rest[at + key.len()..];
        let mut after = rest.iter().copied().skip_while(u8::is_ascii_whitespace);
        if after.next() == Some(b':') && after.find(|b| !b.is_ascii_whitespace()) == Some(b'"') {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn encrypt_changed(keys: &Keyring, value: &str, context: &str) -> Result<Option<String>> {
    if crate::keyring::is_ciphertext(value) {
        return Ok(None);
    }
    keys.encrypt(value, context).map(Some)
}

fn decrypt_changed(keys: &Keyring, value: &str, context: &str) -> Result<Option<String>> {
    if !crate::keyring::is_ciphertext(value) {
        return Ok(None);
    }
    keys.decrypt(value, context).map(Some)
}

/// The value on the newest key, or `None` when it already is.
fn reencrypt_changed(
    keys: &Keyring,
    value: &str,
    context: &str,
    deterministic: bool,
) -> Result<Option<String>> {
    if keys.is_current(value) {
        return Ok(None);
    }
    let plain = keys.decrypt(value, context)?;
    if deterministic {
        keys.encrypt_deterministic(&plain, context).map(Some)
    } else {
        keys.encrypt(&plain, context).map(Some)
    }
}

/// Re-encrypts one stored value of `column` to the newest key: what `chime keys rotate`
/// applies to every row. `Ok(None)` when the value is already there.
pub fn reencrypt_column(
    keys: &Keyring,
    column: PiiColumn,
    value: &[u8],
) -> Result<Option<Vec<u8>>> {
    let doc = match column {
        PiiColumn::TaskBody => TASK,
        PiiColumn::ScheduleBody => SCHEDULE,
        PiiColumn::DeliveryMessage => MESSAGE,
        PiiColumn::OutboxPayload => EVENT_PAYLOAD,
        PiiColumn::PushEndpoint
        | PiiColumn::PushP256dh
        | PiiColumn::PushAuth
        | PiiColumn::WebhookUrl
        | PiiColumn::WebhookSecret
        | PiiColumn::DestinationName
        | PiiColumn::DestinationUrl
        | PiiColumn::ProfileBody => {
            let (context, deterministic) = match column {
                PiiColumn::PushEndpoint => (PUSH_ENDPOINT, true),
                PiiColumn::PushP256dh => (PUSH_P256DH, false),
                PiiColumn::PushAuth => (PUSH_AUTH, false),
                PiiColumn::WebhookUrl => (WEBHOOK_URL, false),
                PiiColumn::DestinationName => (DESTINATION_NAME, false),
                PiiColumn::DestinationUrl => (DESTINATION_URL, false),
                PiiColumn::ProfileBody => (PROFILE_BODY, false),
                _ => (WEBHOOK_SECRET, false),
            };
            let text = std::str::from_utf8(value)
                .map_err(|_| crate::Error::Malformed("a stored field is not UTF-8"))?;
            return Ok(
                reencrypt_changed(keys, text, context, deterministic)?.map(String::into_bytes)
            );
        }
    };
    doc.reencrypt_bytes(keys, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keyring {
        Keyring::new(vec![("k1".to_owned(), [7; 32])]).expect("keyring")
    }

    fn event(notify: &str) -> Vec<u8> {
        format!(r#"{{"type":"execute_task","task":{{"name":"Tea","notify":{notify}}}}}"#)
            .into_bytes()
    }

    #[test]
    fn an_event_without_personal_data_passes_through_byte_for_byte() {
        let keys = keys();
        let plain = event(r#"{"email":null,"sms":null,"inApp":true}"#);
        let sealed = EVENT_PAYLOAD
            .encrypt_bytes(&keys, plain.clone())
            .expect("seal");
        assert_eq!(sealed, plain);
        assert_eq!(
            EVENT_PAYLOAD.decrypt_bytes(&keys, sealed).expect("open"),
            plain
        );
    }

    #[test]
    fn an_email_is_encrypted_however_the_json_is_spaced_or_escaped() {
        let keys = keys();
        for notify in [
            r#"{"email":"ada@example.com","sms":null}"#,
            r#"{"email" :  "ada@example.com"}"#,
            r#"{"em\u0061il":"ada@example.com"}"#,
        ] {
            let plain = event(notify);
            let sealed = EVENT_PAYLOAD
                .encrypt_bytes(&keys, plain.clone())
                .expect("seal");
            let text = String::from_utf8(sealed.clone()).expect("utf-8");
            assert!(!text.contains("ada@example.com"), "{notify}: {text}");
            let opened = EVENT_PAYLOAD.decrypt_bytes(&keys, sealed).expect("open");
            let opened: serde_json::Value = serde_json::from_slice(&opened).expect("json");
            assert_eq!(
                opened["task"]["notify"]["email"], "ada@example.com",
                "{notify}"
            );
        }
    }
}
