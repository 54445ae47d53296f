//! Action tokens: what a link in an email or a button on a push notification carries to
//! acknowledge or snooze one occurrence without a session (a mail client, a service worker).
//!
//! A token is `base64url(claims) "." base64url(HMAC-SHA256(key, claims))`: the claims name the
//! user, the occurrence, the action and an expiry, so a token does exactly one thing to one
//! occurrence of one user until it expires, and changing any byte of it breaks the MAC. The key
//! is the server's (`action-token.key` in the keys directory, shared by every instance like
//! the issuer key). Tokens are capabilities: never logged (the HTTP layer redacts `/act/…`).

use base64::Engine as _;
use chime_core::event::{Channel, OccurrenceKey};
use chime_core::UserId;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long an action link works after it was sent.
pub const TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A short token's fields (task, due, action, expiry) and the part of its tag it keeps.
const SHORT_BODY: usize = 16 + 8 + 2 + 4;
const SHORT_TAG: usize = 12;

/// What a token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Done,
    Snooze { minutes: u32 },
}

impl Action {
    fn code(self) -> String {
        match self {
            Action::Done => "done".to_owned(),
            Action::Snooze { minutes } => format!("snooze:{minutes}"),
        }
    }

    fn parse(code: &str) -> Option<Self> {
        match code {
            "done" => Some(Action::Done),
            _ => {
                let minutes: u32 = code.strip_prefix("snooze:")?.parse().ok()?;
                (1..=crate::occurrence::MAX_SNOOZE.as_mins() as u32)
                    .contains(&minutes)
                    .then_some(Action::Snooze { minutes })
            }
        }
    }

    /// For people: "Done", "Snooze 1 hour", "Snooze 10 minutes".
    pub fn label(self) -> String {
        match self {
            Action::Done => "Done".to_owned(),
            Action::Snooze { minutes: 60 } => "Snooze 1 hour".to_owned(),
            Action::Snooze { minutes } if minutes % 60 == 0 => {
                format!("Snooze {} hours", minutes / 60)
            }
            Action::Snooze { minutes: 1 } => "Snooze 1 minute".to_owned(),
            Action::Snooze { minutes } => format!("Snooze {minutes} minutes"),
        }
    }
}

/// A verified token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionToken {
    pub user: UserId,
    pub occurrence: OccurrenceKey,
    pub action: Action,
    /// The channel whose message carried it (what an acknowledgement is counted under).
    pub via: Channel,
    pub expires: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The user.
    u: String,
    /// The occurrence's task id.
    t: String,
    /// Its due instant, microseconds since the epoch.
    d: i64,
    /// The action.
    a: String,
    /// The channel that carried it.
    c: String,
    /// Expiry, seconds since the epoch.
    e: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this link is not one Chime made")]
    Invalid,
    #[error("this link has expired")]
    Expired,
}

/// The server's token key.
#[derive(Clone)]
pub struct ActionKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for ActionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActionKeys([redacted])")
    }
}

type HmacSha256 = Hmac<Sha256>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl ActionKeys {
    /// The key file's name in the keys directory.
    pub const FILE: &'static str = "action-token.key";

    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A fresh random key, as the key file holds it (base64url, 32 bytes).
    pub fn generate_encoded() -> String {
        B64.encode(rand::random::<[u8; 32]>())
    }

    /// Reads a key file's content.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = B64.decode(text.trim()).ok()?;
        Some(Self::new(bytes.try_into().ok()?))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length.
        HmacSha256::new_from_slice(&self.key).expect("an HMAC key of 32 bytes")
    }

    /// A token that does `action` to `user`'s `occurrence` until `expires`.
    pub fn mint(
        &self,
        user: &UserId,
        occurrence: &OccurrenceKey,
        action: Action,
        via: Channel,
        expires: Timestamp,
    ) -> String {
        let claims = Claims {
            u: user.to_string(),
            t: occurrence.task_id.to_string(),
            d: occurrence.due_at.as_microsecond(),
            a: action.code(),
            c: via.as_str().to_owned(),
            e: expires.as_second(),
        };
        let body = B64.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The same capability as [`ActionKeys::mint`] in 56 characters, for a button that calls
    /// back with at most 64 bytes (Telegram's `callback_data`): base64url of the task id (16
    /// bytes), the due instant (8, microseconds), the action (2: 0 for done, else snooze
    /// minutes), the expiry (4, seconds) and the first 12 bytes of an HMAC over those, the
    /// user and the channel. The user and the channel are not in it: the callback supplies
    /// them (the destination's owner, its channel), so a short token works only where it was
    /// sent.
    pub fn mint_short(
        &self,
        user: &UserId,
        occurrence: &OccurrenceKey,
        action: Action,
        via: Channel,
        expires: Timestamp,
    ) -> String {
        let mut body = Vec::with_capacity(SHORT_BODY + SHORT_TAG);
        body.extend_from_slice(occurrence.task_id.as_uuid().as_bytes());
        body.extend_from_slice(&occurrence.due_at.as_microsecond().to_be_bytes());
        let code = match action {
            Action::Done => 0,
            Action::Snooze { minutes } => u16::try_from(minutes).unwrap_or(u16::MAX),
        };
        body.extend_from_slice(&code.to_be_bytes());
        let expires = u32::try_from(expires.as_second()).unwrap_or(u32::MAX);
        body.extend_from_slice(&expires.to_be_bytes());
        let tag = self.short_mac(&body, user, via).finalize().into_bytes();
        body.extend_from_slice(&tag[..SHORT_TAG]);
        B64.encode(body)
    }

    /// The claims of a short token minted for `user` on `via`, if it has not expired at `now`.
    pub fn verify_short(
        &self,
        short: &str,
        user: &UserId,
        via: Channel,
        now: Timestamp,
    ) -> Result<ActionToken, TokenError> {
        let bytes = B64.decode(short).map_err(|_| TokenError::Invalid)?;
        if bytes.len() != SHORT_BODY + SHORT_TAG {
            return Err(TokenError::Invalid);
        }
        let (body, tag) = bytes.split_at(SHORT_BODY);
        // Constant time, on the truncated tag.
        self.short_mac(body, user, via)
            .verify_truncated_left(tag)
            .map_err(|_| TokenError::Invalid)?;
        let field = |from: usize, to: usize| &body[from..to];
        let task = uuid::Uuid::from_slice(field(0, 16)).map_err(|_| TokenError::Invalid)?;
        let due = i64::from_be_bytes(field(16, 24).try_into().map_err(|_| TokenError::Invalid)?);
        let code = u16::from_be_bytes(field(24, 26).try_into().map_err(|_| TokenError::Invalid)?);
        let expires =
            u32::from_be_bytes(field(26, 30).try_into().map_err(|_| TokenError::Invalid)?);
        let action = match code {
            0 => Action::Done,
            minutes => Action::parse(&format!("snooze:{minutes}")).ok_or(TokenError::Invalid)?,
        };
        let token = ActionToken {
            user: user.clone(),
            occurrence: OccurrenceKey {
                task_id: chime_core::TaskId::from_uuid(task),
                due_at: Timestamp::from_microsecond(due).map_err(|_| TokenError::Invalid)?,
            },
            action,
            via,
            expires: Timestamp::from_second(i64::from(expires)).map_err(|_| TokenError::Invalid)?,
        };
        if token.expires <= now {
            return Err(TokenError::Expired);
        }
        Ok(token)
    }

    fn short_mac(&self, body: &[u8], user: &UserId, via: Channel) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(b"short-action\0");
        mac.update(body);
        mac.update(user.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(via.as_str().as_bytes());
        mac
    }

    /// A keyed hash of `value` for `purpose` (base64url HMAC-SHA256): what a store keeps
    /// to find a phone number again without keeping the number.
    pub fn blind(&self, purpose: &str, value: &str) -> String {
        let mut mac = self.mac();
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    /// The HMAC of a calendar feed's URL: the user and the feed's generation, under a
    /// purpose no action token or blind hash shares.
    fn feed_mac(&self, user: &str, generation: u32) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(b"calendar-feed\0");
        mac.update(user.as_bytes());
        mac.update(b"\0");
        mac.update(generation.to_string().as_bytes());
        mac
    }

    /// The secret of `user`'s calendar feed URL at `generation`: `base64url(user) "."
    /// base64url(HMAC)`. Rotating the feed (a new generation) changes it; nothing stores it.
    pub fn feed_token(&self, user: &UserId, generation: u32) -> String {
        let tag = self
            .feed_mac(user.as_str(), generation)
            .finalize()
            .into_bytes();
        format!("{}.{}", B64.encode(user.as_str()), B64.encode(tag))
    }

    /// The user a feed token claims to be for (unverified: check it with
    /// [`ActionKeys::verify_feed_token`] against that user's current generation).
    pub fn feed_token_user(token: &str) -> Option<UserId> {
        let (user, _) = token.split_once('.')?;
        let user = String::from_utf8(B64.decode(user).ok()?).ok()?;
        UserId::parse(&user).ok()
    }

    /// Whether `token` is the feed URL of its user at `generation` (constant time).
    pub fn verify_feed_token(&self, token: &str, generation: u32) -> bool {
        let Some((user, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(user), Ok(tag)) = (B64.decode(user), B64.decode(tag)) else {
            return false;
        };
        let Ok(user) = String::from_utf8(user) else {
            return false;
        };
        self.feed_mac(&user, generation).verify_slice(&tag).is_ok()
    }

    /// The keyed hash an SMS recipient's number is found by (see [`ActionKeys::blind`]).
    pub fn sms_number(&self, e164: &str) -> String {
        self.blind("sms-reply-number", e164)
    }

    /// The claims of a token this key minted, if it has not expired at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<ActionToken, TokenError> {
        let (body, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        // Constant time.
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = B64
            .decode(body)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Invalid)?;
        let parsed = (|| {
            Some(ActionToken {
                user: UserId::parse(&claims.u).ok()?,
                occurrence: OccurrenceKey {
                    task_id: claims.t.parse().ok()?,
                    due_at: Timestamp::from_microsecond(claims.d).ok()?,
                },
                action: Action::parse(&claims.a)?,
                via: Channel::parse(&claims.c)?,
                expires: Timestamp::from_second(claims.e).ok()?,
            })
        })()
        .ok_or(TokenError::Invalid)?;
        if parsed.expires <= now {
            return Err(TokenError::Expired);
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use chime_core::TaskId;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("instant")
    }

    #[test]
    fn a_short_token_fits_a_callback_and_works_only_for_its_user_and_channel() {
        let keys = ActionKeys::new([7; 32]);
        let alice = UserId::parse("alice").expect("user");
        let bob = UserId::parse("bob").expect("user");
        let occurrence = OccurrenceKey {
            task_id: TaskId::new(),
            due_at: at("2026-12-05T09:00:00.5Z"),
        };
        let expires = at("2026-12-12T09:00:00Z");
        let now = at("2026-12-05T09:01:00Z");
        for action in [Action::Done, Action::Snooze { minutes: 10 }] {
            let short = keys.mint_short(&alice, &occurrence, action, Channel::Telegram, expires);
            assert!(short.len() <= 64, "{} bytes", short.len());
            assert_eq!(
                keys.verify_short(&short, &alice, Channel::Telegram, now),
                Ok(ActionToken {
                    user: alice.clone(),
                    occurrence,
                    action,
                    via: Channel::Telegram,
                    expires
                })
            );
            assert_eq!(
                keys.verify_short(&short, &alice, Channel::Telegram, expires),
                Err(TokenError::Expired)
            );
            for (user, via) in [(&bob, Channel::Telegram), (&alice, Channel::Ntfy)] {
                assert_eq!(
                    keys.verify_short(&short, user, via, now),
                    Err(TokenError::Invalid)
                );
            }
            for i in 0..short.len() {
                let mut bytes = short.clone().into_bytes();
                bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                let forged = String::from_utf8(bytes).expect("ascii");
                if forged != short {
                    assert!(
                        keys.verify_short(&forged, &alice, Channel::Telegram, now)
                            .is_err(),
                        "byte {i} changed and still accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn a_token_does_one_thing_to_one_occurrence_of_one_user_until_it_expires() {
        let keys = ActionKeys::new([7; 32]);
        let alice = UserId::parse("alice").expect("user");
        let occurrence = OccurrenceKey {
            task_id: TaskId::new(),
            due_at: at("2026-12-05T09:00:00.5Z"),
        };
        let expires = at("2026-12-12T09:00:00Z");
        for action in [Action::Done, Action::Snooze { minutes: 60 }] {
            let token = keys.mint(&alice, &occurrence, action, Channel::Email, expires);
            let claims = keys
                .verify(&token, at("2026-12-05T09:01:00Z"))
                .expect("valid");
            assert_eq!(
                claims,
                ActionToken {
                    user: alice.clone(),
                    occurrence,
                    action,
                    via: Channel::Email,
                    expires
                }
            );
            assert_eq!(keys.verify(&token, expires), Err(TokenError::Expired));
            // Another server's key, or any byte changed, and it is refused.
            let other = ActionKeys::new([8; 32]);
            assert_eq!(
                other.verify(&token, at("2026-12-05T09:01:00Z")),
                Err(TokenError::Invalid)
            );
            for i in 0..token.len() {
                let mut bytes = token.clone().into_bytes();
                bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                let forged = String::from_utf8(bytes).expect("ascii");
                if forged != token {
                    assert!(
                        keys.verify(&forged, at("2026-12-05T09:01:00Z")).is_err(),
                        "byte {i} changed and still accepted"
                    );
                }
            }
        }
        assert_eq!(
            keys.verify("not-a-token", at("2026-12-05T09:01:00Z")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_key_file_reads_back_as_the_key_that_wrote_it() {
        let text = ActionKeys::generate_encoded();
        let keys = ActionKeys::decode(&format!("{text}\n")).expect("decodes");
        let alice = UserId::parse("alice").expect("user");
        let occurrence = OccurrenceKey {
            task_id: TaskId::new(),
            due_at: at("2026-12-05T09:00:00Z"),
        };
        let token = keys.mint(
            &alice,
            &occurrence,
            Action::Done,
            Channel::Push,
            at("2027-01-01T00:00:00Z"),
        );
        let again = ActionKeys::decode(&text).expect("decodes");
        assert!(again.verify(&token, at("2026-12-05T09:00:00Z")).is_ok());
        assert!(ActionKeys::decode("short").is_none());
    }

    #[test]
    fn a_feed_token_works_for_its_user_and_generation_only() {
        let keys = ActionKeys::new([7; 32]);
        let alice = UserId::parse("alice").expect("user");
        let token = keys.feed_token(&alice, 2);
        assert_eq!(ActionKeys::feed_token_user(&token), Some(alice.clone()));
        assert!(keys.verify_feed_token(&token, 2));
        assert!(!keys.verify_feed_token(&token, 1), "an earlier generation");
        assert!(!keys.verify_feed_token(&token, 3), "a later generation");
        assert!(
            !ActionKeys::new([8; 32]).verify_feed_token(&token, 2),
            "another key"
        );
        // Another user's name in front of alice's tag.
        let (_, tag) = token.split_once('.').expect("two parts");
        let forged = format!("{}.{tag}", B64.encode("bob"));
        assert!(!keys.verify_feed_token(&forged, 2));
        assert!(!keys.verify_feed_token("nonsense", 1));
    }
}
