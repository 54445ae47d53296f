//! Matrix: a reminder sent as a message into a room, through the homeserver's client-server
//! API (v3).
//!
//! The URL is Apprise's: `matrix://user:password@host[:port]/#alias:server` or
//! `…/!roomid:server`, `matrixs://…` for https, and `matrixs://token@host/…` or
//! `matrixs://host/…?token=…` with an access token. As in Apprise, a user without a password
//! is an access token, and a user with a password logs in (the user as a localpart, `alice`,
//! or a full id, `%40alice%3Aexample.org`). A `#` starts a URL's fragment, so the room is
//! read from the fragment or from the path (`/%23alias:server`, `/!roomid:server`, or a bare
//! `/alias:server`, which Apprise reads as an alias); `?to=` names it too. An alias without a
//! server gets the URL's host (`#reminders` on `matrix.example.org` is
//! `#reminders:matrix.example.org`), as Apprise does; a room id is used as written, since the
//! ids of newer rooms (room version 12) have no server part. `?msgtype=notice` sends an
//! `m.notice` (what bots send) instead of an `m.text`. Refused, with a reason: more than one
//! room (one destination is one room), direct messages (`/@user`), Apprise's webhook modes
//! (`?mode=…`), and a URL with neither credentials nor a token (Apprise would register a
//! guest). The host is the homeserver's client API host as written: `.well-known` discovery
//! is not done, since it would send the credentials to a second address.
//!
//! One attempt:
//!
//! 1. With a password, an access token from the adapter's cache, or `POST /login`
//!    (`m.login.password` with a `device_id` that is stable per account and server,
//!    `CHIME` + 10 hex digits of a hash, and `initial_device_display_name: "Chime"`). A
//!    cached token that the server no longer knows (401 `M_UNKNOWN_TOKEN`) is dropped and
//!    the attempt logs in again once.
//! 2. An alias is resolved with `GET /directory/room/{alias}` (every attempt: an alias can be
//!    moved to another room).
//! 3. `PUT /rooms/{roomId}/send/m.room.message/{txnId}` with `Authorization: Bearer`, the body
//!    `{"msgtype", "body": plain text, "format": "org.matrix.custom.html", "formatted_body":
//!    HTML with every user string escaped, "m.mentions": {}}` (the empty `m.mentions` keeps
//!    an `@room` in a task's text from notifying the room). `txnId` is `chime` + 32 hex digits
//!    of the SHA-256 of the delivery's idempotency key: the same on every retry, so the
//!    homeserver answers a repeat with the first event instead of posting again. Homeservers
//!    keep transaction ids per device (per access token before spec v1.7); the fixed
//!    `device_id` keeps that memory across logins, a restart of Chime included. Synapse
//!    keeps it even across a sign-out of that session (both checked against Synapse
//!    1.163); a server that forgets a deleted device's transactions could post a retry
//!    twice after such a sign-out.
//! 4. A 403 to the send (`M_FORBIDDEN`: most often, the account is not in the room) is
//!    answered with one `POST /join/{alias or roomId}` (which accepts an invitation, or joins
//!    a public room) and the same send again; a refused join is permanent.
//!
//! The whole attempt is bounded by the channel's timeout. How answers map to outcomes: 2xx
//! sent, the `event_id` as provider id; 429 (`M_LIMIT_EXCEEDED` with `retry_after_ms`, or
//! `Retry-After`) and 5xx transient; 401 after a fresh login or with a token from the URL,
//! 403 (a refused login, a room the account cannot join) and 404 (`M_NOT_FOUND`: an unknown
//! alias) permanent, each with the server's `errcode` and `error`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chime_core::event::Channel;
use chime_core::html::escape as escape_html;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::{Answer, Secrets, Service, Settings};
use crate::{local_due_time, Reminder, SendError, Sent};

/// How many logged-in sessions the adapter keeps before it forgets them all (each is a few
/// bytes; an edited password leaves its old session behind).
const MAX_SESSIONS: usize = 1024;

/// A Matrix room on a homeserver, and how to act there, read from a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct MatrixUrl {
    /// The homeserver's client API: `http(s)://host[:port]`.
    base: Url,
    /// The host as written, for aliases without a server.
    host: String,
    secure: bool,
    auth: Auth,
    room: Room,
    notice: bool,
}

#[derive(Clone, PartialEq, Eq)]
enum Auth {
    Password { user: String, password: String },
    Token(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Room {
    /// `!opaque[:server]`.
    Id(String),
    /// `#name:server`.
    Alias(String),
}

impl Room {
    fn as_str(&self) -> &str {
        match self {
            Room::Id(id) | Room::Alias(id) => id,
        }
    }
}

impl std::fmt::Debug for MatrixUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl MatrixUrl {
    /// `matrix[s]://user:password@host[:port]/#alias:server`, `…/!roomid[:server]`,
    /// `matrix[s]://token@host/…`, `matrix[s]://host/…?token=…`.
    pub fn parse(url: &Url) -> Result<MatrixUrl, String> {
        let secure = match url.scheme() {
            "matrix" => false,
            "matrixs" => true,
            _ => return Err("a Matrix URL starts with matrix:// or matrixs://".to_owned()),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("a Matrix URL names the homeserver: matrixs://user:password@host/#room:server")?
            .to_owned();
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let scheme = if secure { "https" } else { "http" };
        let base = Url::parse(&format!("{scheme}://{host}{port}"))
            .ok()
            .filter(|u| u.host().is_some())
            .ok_or("the Matrix homeserver is not a host name or an address")?;

        // Apprise reads a `#` as part of the path, so its users write the query after the
        // alias, where a URL parser sees it inside the fragment.
        let (fragment, fragment_query) = match url.fragment() {
            Some(fragment) => match fragment.split_once('?') {
                Some((room, query)) => (Some(room), query),
                None => (Some(fragment), ""),
            },
            None => (None, ""),
        };
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .chain(url::form_urlencoded::parse(fragment_query.as_bytes()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let query = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        if let Some(mode) = query("mode").filter(|m| !m.eq_ignore_ascii_case("off")) {
            return Err(format!(
                "Apprise's Matrix webhook modes (mode={mode}) are not supported: use the \
                 client API form, matrixs://user:password@host/#room:server"
            ));
        }
        let notice = match query("msgtype").as_deref() {
            None | Some("text") => false,
            Some("notice") => true,
            Some(_) => return Err("msgtype is text or notice".to_owned()),
        };

        let user = decode(url.username());
        let password = url.password().map(decode).unwrap_or_default();
        let auth = match query("token").filter(|t| !t.is_empty()) {
            Some(_) if !user.is_empty() => {
                return Err(
                    "give either user:password@ or an access token in a Matrix URL, not both"
                        .to_owned(),
                )
            }
            Some(token) => Auth::Token(token),
            None if user.is_empty() => {
                return Err("a Matrix URL needs user:password@ or an access token: \
                            matrixs://user:password@host/#room:server or \
                            matrixs://token@host/#room:server"
                    .to_owned())
            }
            None if password.is_empty() => Auth::Token(user),
            None => Auth::Password { user, password },
        };

        let mut targets: Vec<String> = Vec::new();
        if let Some(fragment) = fragment {
            // The `#` that opened the fragment was the alias's own.
            for (i, part) in fragment.split('/').enumerate() {
                let part = decode(part);
                if part.is_empty() {
                    continue;
                }
                let marked = part.starts_with(['#', '!', '@']);
                targets.push(if i == 0 && !marked {
                    format!("#{part}")
                } else {
                    part
                });
            }
        }
        if let Some(path) = url.path_segments() {
            targets.extend(path.filter(|s| !s.is_empty()).map(decode));
        }
        if let Some(to) = query("to") {
            targets.extend(
                to.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        let room = match targets.as_slice() {
            [] => {
                return Err(
                    "a Matrix URL names the room: matrixs://…@host/#alias:server or \
                     matrixs://…@host/!roomid:server"
                        .to_owned(),
                )
            }
            [target] => room(target, &host)?,
            _ => {
                return Err(
                    "a Matrix destination is one room: add a destination for each room".to_owned(),
                )
            }
        };
        Ok(MatrixUrl {
            base,
            host,
            secure,
            auth,
            room,
            notice,
        })
    }

    /// `matrixs://alice:…@host/#room:server` (a password hidden whole), or
    /// `matrixs://syt_…@host/!room` (a token cut to a hint).
    pub fn masked(&self) -> String {
        let scheme = if self.secure { "matrixs" } else { "matrix" };
        let auth = match &self.auth {
            Auth::Password { user, .. } => format!("{}:…", encode(user)),
            Auth::Token(token) => hint(token),
        };
        let port = self
            .base
            .port()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let room = match &self.room {
            Room::Alias(alias) => format!("%23{}", &alias[1..]),
            Room::Id(id) => id.clone(),
        };
        let notice = if self.notice { "?msgtype=notice" } else { "" };
        format!("{scheme}://{auth}@{}{port}/{room}{notice}", self.host)
    }

    pub(crate) fn secrets(&self) -> Secrets {
        match &self.auth {
            Auth::Password { password, .. } => Secrets::new([password.as_str()]),
            Auth::Token(token) => Secrets::new([token.as_str()]),
        }
    }

    /// The URL's secrets and the session's access token.
    fn secrets_with(&self, access_token: &str) -> Secrets {
        match &self.auth {
            Auth::Password { password, .. } => Secrets::new([password.as_str(), access_token]),
            Auth::Token(token) => Secrets::new([token.as_str(), access_token]),
        }
    }

    /// Where requests go: `{homeserver}/_matrix/client/v3/`.
    pub fn endpoint(&self, _settings: &Settings) -> Url {
        self.api(&[""])
    }

    /// `{homeserver}/_matrix/client/v3/{segments…}`, each segment percent-encoded.
    fn api(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear()
                .extend(["_matrix", "client", "v3"])
                .extend(segments);
        }
        url
    }

    /// The adapter's key for this account's session: a hash of server, user and password,
    /// so a changed password is a new session.
    fn session_key(&self) -> Option<String> {
        let Auth::Password { user, password } = &self.auth else {
            return None;
        };
        Some(hex(&Sha256::digest(
            format!("{}\n{user}\n{password}", self.base).as_bytes(),
        )))
    }

    /// The same for every login of this account on this server.
    fn device_id(&self, user: &str) -> String {
        let hash = hex(&Sha256::digest(
            format!("chime-device\n{}\n{user}", self.base).as_bytes(),
        ));
        format!("CHIME{}", hash[..10].to_ascii_uppercase())
    }
}

/// One room target: `!id`, `#alias[:server]` or a bare alias.
fn room(target: &str, host: &str) -> Result<Room, String> {
    if target.chars().any(char::is_whitespace) {
        return Err("a Matrix room id or alias has no spaces".to_owned());
    }
    if target.starts_with('@') {
        return Err(
            "direct messages (@user) are not supported: create a room with them and \
             use its alias or id"
                .to_owned(),
        );
    }
    if let Some(id) = target.strip_prefix('!') {
        if id.is_empty() || id.starts_with(':') {
            return Err("a Matrix room id is !opaque or !opaque:server".to_owned());
        }
        return Ok(Room::Id(target.to_owned()));
    }
    let alias = target.strip_prefix('#').unwrap_or(target);
    match alias.split_once(':') {
        Some((name, server)) if !name.is_empty() && !server.is_empty() => {
            Ok(Room::Alias(format!("#{alias}")))
        }
        None if !alias.is_empty() => Ok(Room::Alias(format!("#{alias}:{host}"))),
        _ => Err("a Matrix room alias is #name:server".to_owned()),
    }
}

/// The Matrix [`ChannelAdapter`].
pub struct MatrixChannel {
    settings: Settings,
    /// Access tokens of password logins, by [`MatrixUrl::session_key`].
    sessions: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for MatrixChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixChannel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A failed step, and whether the server did not know the access token.
struct Refused {
    error: SendError,
    unknown_token: bool,
}

impl From<SendError> for Refused {
    fn from(error: SendError) -> Refused {
        Refused {
            error,
            unknown_token: false,
        }
    }
}

impl MatrixChannel {
    pub fn new(settings: Settings) -> MatrixChannel {
        MatrixChannel {
            settings,
            sessions: Mutex::default(),
        }
    }

    async fn deliver(&self, url: &MatrixUrl, message: &Reminder) -> Result<Sent, SendError> {
        let (token, cached) = match &url.auth {
            Auth::Token(token) => (token.clone(), false),
            Auth::Password { .. } => match self.cached(url) {
                Some(token) => (token, true),
                None => (self.login(url).await?, false),
            },
        };
        match self.post(url, &token, message).await {
            Err(refused) if refused.unknown_token && cached => {
                self.forget(url);
                let token = self.login(url).await?;
                self.post(url, &token, message).await.map_err(|r| r.error)
            }
            result => result.map_err(|r| r.error),
        }
    }

    /// Resolves the room, sends, and joins once if the account is not in the room.
    async fn post(
        &self,
        url: &MatrixUrl,
        token: &str,
        message: &Reminder,
    ) -> Result<Sent, Refused> {
        let secrets = url.secrets_with(token);
        let room_id = match &url.room {
            Room::Id(id) => id.clone(),
            Room::Alias(alias) => self.resolve(url, token, alias, &secrets).await?,
        };
        let txn = txn_id(&message.idempotency_key);
        let send = url.api(&["rooms", &room_id, "send", "m.room.message", &txn]);
        let body = payload(message, url.notice, &self.settings)
            .to_string()
            .into_bytes();
        let answer = self
            .call(Method::PUT, &send, token, Some(body.clone()), &secrets)
            .await?;
        if answer.status.is_success() {
            return Ok(sent(&answer));
        }
        if answer.status != StatusCode::FORBIDDEN {
            return Err(refusal(&answer, "sending", &secrets));
        }
        let forbidden = refusal(&answer, "sending", &secrets).error;
        let join = url.api(&["join", url.room.as_str()]);
        let joined = self
            .call(Method::POST, &join, token, Some(b"{}".to_vec()), &secrets)
            .await?;
        if !joined.status.is_success() {
            let refused = refusal(&joined, "joining the room", &secrets);
            // A join that may work later (rate limit, 5xx) stays transient.
            return Err(match refused.error {
                SendError::Permanent { reason } => Refused {
                    error: SendError::permanent(format!("{forbidden}; {reason}")),
                    ..refused
                },
                _ => refused,
            });
        }
        let answer = self
            .call(Method::PUT, &send, token, Some(body), &secrets)
            .await?;
        if answer.status.is_success() {
            Ok(sent(&answer))
        } else {
            Err(refusal(&answer, "sending after joining the room", &secrets))
        }
    }

    async fn resolve(
        &self,
        url: &MatrixUrl,
        token: &str,
        alias: &str,
        secrets: &Secrets,
    ) -> Result<String, Refused> {
        let lookup = url.api(&["directory", "room", alias]);
        let answer = self
            .call(Method::GET, &lookup, token, None, secrets)
            .await?;
        if !answer.status.is_success() {
            return Err(refusal(&answer, &format!("looking up {alias}"), secrets));
        }
        answer
            .json()
            .and_then(|j| j.get("room_id")?.as_str().map(str::to_owned))
            .filter(|id| id.starts_with('!'))
            .ok_or_else(|| {
                Refused::from(SendError::transient(format!(
                    "{} answered the lookup of {alias} without a room id",
                    answer.host
                )))
            })
    }

    /// `POST /login`; the token is kept for the next attempts.
    async fn login(&self, url: &MatrixUrl) -> Result<String, SendError> {
        let Auth::Password { user, password } = &url.auth else {
            return Err(SendError::permanent("no password to log in with"));
        };
        let secrets = url.secrets();
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "device_id": url.device_id(user),
            "initial_device_display_name": "Chime",
        });
        let answer = self
            .settings
            .call_json(
                Method::POST,
                &url.api(&["login"]),
                HeaderMap::new(),
                &body,
                &secrets,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(refusal(&answer, &format!("logging in as {user}"), &secrets).error);
        }
        let token = answer
            .json()
            .and_then(|j| j.get("access_token")?.as_str().map(str::to_owned))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                SendError::transient(format!(
                    "{} answered the login without an access token",
                    answer.host
                ))
            })?;
        if let Some(key) = url.session_key() {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() >= MAX_SESSIONS {
                sessions.clear();
            }
            sessions.insert(key, token.clone());
        }
        Ok(token)
    }

    fn cached(&self, url: &MatrixUrl) -> Option<String> {
        let key = url.session_key()?;
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(&key).cloned()
    }

    fn forget(&self, url: &MatrixUrl) {
        if let Some(key) = url.session_key() {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.remove(&key);
        }
    }

    async fn call(
        &self,
        method: Method,
        url: &Url,
        token: &str,
        body: Option<Vec<u8>>,
        secrets: &Secrets,
    ) -> Result<Answer, SendError> {
        let mut headers = HeaderMap::new();
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| SendError::permanent("the access token is not a header value"))?;
        headers.insert(AUTHORIZATION, bearer);
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        self.settings
            .call(method, url, headers, body, secrets)
            .await
    }
}

#[async_trait]
impl Service for MatrixChannel {
    const CHANNEL: Channel = Channel::Matrix;
    type Url = MatrixUrl;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(url: &str) -> Result<MatrixUrl, String> {
        Url::parse(url)
            .map_err(|_| "the destination's URL is not a URL".to_owned())
            .and_then(|u| MatrixUrl::parse(&u))
    }

    async fn attempt(&self, message: &Reminder, url: &MatrixUrl) -> Result<Sent, SendError> {
        // A login, a lookup, a send, a join and a second send: the shared send bounds them
        // all by the channel's timeout.
        self.deliver(url, message).await
    }
}

fn sent(answer: &Answer) -> Sent {
    Sent {
        provider_id: answer
            .json()
            .and_then(|j| j.get("event_id")?.as_str().map(str::to_owned)),
    }
}

/// A failing answer read as Matrix's `{"errcode", "error", "retry_after_ms"}`; `doing` says
/// which step failed.
fn refusal(answer: &Answer, doing: &str, secrets: &Secrets) -> Refused {
    let json = answer.json();
    let field = |key: &str| json.as_ref().and_then(|j| j.get(key));
    let errcode = field("errcode").and_then(Value::as_str);
    let error = field("error").and_then(Value::as_str);
    let retry_after = field("retry_after_ms")
        .and_then(Value::as_u64)
        .map(Duration::from_millis);
    let detail = match (errcode, error) {
        (Some(code), Some(error)) => Some(format!("{code}: {error}")),
        (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
        (None, None) => None,
    };
    let error = match answer.failure(retry_after, detail.as_deref(), secrets) {
        SendError::Transient {
            reason,
            retry_after,
        } => SendError::Transient {
            reason: format!("{doing}: {reason}"),
            retry_after,
        },
        SendError::Permanent { reason } => SendError::permanent(format!("{doing}: {reason}")),
        SendError::Gone { reason } => SendError::Gone {
            reason: format!("{doing}: {reason}"),
        },
    };
    Refused {
        error,
        unknown_token: answer.status == StatusCode::UNAUTHORIZED
            && errcode == Some("M_UNKNOWN_TOKEN"),
    }
}

/// The transaction id of a delivery: the same on every attempt, safe in a path segment.
fn txn_id(idempotency_key: &str) -> String {
    let hash = hex(&Sha256::digest(idempotency_key.as_bytes()));
    format!("chime{}", &hash[..32])
}

/// The message's content.
fn payload(message: &Reminder, notice: bool, settings: &Settings) -> Value {
    let name = message.task.name.as_str();
    let due = local_due_time(message);
    let lead = if message.late {
        "Late reminder"
    } else {
        "Reminder"
    };
    const LATE_NOTE: &str = "Late: Chime could not send this reminder at its due time.";
    let actions: Vec<(&str, String)> = message
        .actions
        .iter()
        .filter_map(|a| Some((a.label.as_str(), settings.action_url(&a.token)?)))
        .collect();

    let mut text = format!("{lead}: {name}\n");
    let mut html = format!(
        "<p><strong>{}</strong></p>",
        escape_html(&format!("{lead}: {name}"))
    );
    if message.late {
        text.push_str(LATE_NOTE);
        text.push('\n');
        html.push_str(&format!("<p><em>{LATE_NOTE}</em></p>"));
    }
    if let Some(description) = &message.task.description {
        text.push_str(description);
        text.push('\n');
        html.push_str(&format!(
            "<p>{}</p>",
            escape_html(description).replace('\n', "<br>")
        ));
    }
    text.push_str(&format!("Due {due}"));
    html.push_str(&format!("<p>Due {}</p>", escape_html(&due)));
    if !actions.is_empty() {
        let links: Vec<String> = actions
            .iter()
            .map(|(label, url)| {
                text.push_str(&format!("\n{label}: {url}"));
                format!(
                    "<a href=\"{}\">{}</a>",
                    escape_html(url),
                    escape_html(label)
                )
            })
            .collect();
        html.push_str(&format!("<p>{}</p>", links.join(" · ")));
    }
    json!({
        "msgtype": if notice { "m.notice" } else { "m.text" },
        "body": text,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "m.mentions": {},
    })
}

/// The start of a secret, enough to tell two apart: `syt_…`.
fn hint(secret: &str) -> String {
    let start: String = secret.chars().take(4).collect();
    format!("{start}…")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<MatrixUrl, String> {
        MatrixUrl::parse(&Url::parse(url).unwrap())
    }

    fn password(user: &str) -> Auth {
        Auth::Password {
            user: user.to_owned(),
            password: "s3cret pw".to_owned(),
        }
    }

    #[test]
    fn a_password_url_with_an_alias_in_the_fragment() {
        let url =
            parse("matrixs://alice:s3cret%20pw@matrix.example.org/#reminders:example.org").unwrap();
        assert_eq!(url.base.as_str(), "https://matrix.example.org/");
        assert!(url.auth == password("alice"));
        assert_eq!(url.room, Room::Alias("#reminders:example.org".to_owned()));
        assert!(!url.notice);
    }

    #[test]
    fn the_room_can_be_an_encoded_alias_a_bare_alias_or_a_room_id_in_the_path() {
        for (path, room) in [
            (
                "/%23reminders:example.org",
                Room::Alias("#reminders:example.org".into()),
            ),
            (
                "/reminders:example.org",
                Room::Alias("#reminders:example.org".into()),
            ),
            (
                "/!AbC123:example.org",
                Room::Id("!AbC123:example.org".into()),
            ),
            ("/!AbC123", Room::Id("!AbC123".into())),
            (
                "/?to=%23reminders:example.org",
                Room::Alias("#reminders:example.org".into()),
            ),
        ] {
            let url = parse(&format!("matrix://alice:pw@localhost:8008{path}")).unwrap();
            assert_eq!(url.room, room, "{path}");
            assert_eq!(url.base.as_str(), "http://localhost:8008/");
        }
    }

    #[test]
    fn an_alias_without_a_server_gets_the_urls_host() {
        let url = parse("matrixs://tok@Matrix.Example.org:8448/#reminders").unwrap();
        assert_eq!(
            url.room,
            Room::Alias("#reminders:Matrix.Example.org".into())
        );
        assert_eq!(url.base.as_str(), "https://matrix.example.org:8448/");
    }

    #[test]
    fn a_user_without_a_password_is_an_access_token_as_in_apprise() {
        let url = parse("matrixs://syt_YWxpY2U_abcdef@matrix.org/!room:matrix.org").unwrap();
        assert!(url.auth == Auth::Token("syt_YWxpY2U_abcdef".into()));
        let url = parse("matrixs://matrix.org/!room:matrix.org?token=syt_abc").unwrap();
        assert!(url.auth == Auth::Token("syt_abc".into()));
        let url = parse("matrixs://%40alice%3Aexample.org:pw@matrix.example.org/!r").unwrap();
        assert!(
            url.auth
                == Auth::Password {
                    user: "@alice:example.org".into(),
                    password: "pw".into()
                }
        );
    }

    #[test]
    fn msgtype_notice_is_kept_also_after_an_alias_as_apprise_users_write_it() {
        let url = parse("matrixs://tok@matrix.org/!r:matrix.org?msgtype=notice").unwrap();
        assert!(url.notice);
        let url = parse("matrixs://tok@matrix.org/#r:matrix.org?msgtype=notice").unwrap();
        assert!(url.notice);
        assert_eq!(url.room, Room::Alias("#r:matrix.org".into()));
    }

    #[test]
    fn other_forms_are_refused_with_a_reason_that_does_not_repeat_a_secret() {
        for (url, says) in [
            (
                "https://alice:s3cretpw@matrix.org/#r:matrix.org",
                "matrix://",
            ),
            (
                "matrixs://matrix.org/#r:matrix.org",
                "user:password@ or an access token",
            ),
            ("matrixs://alice:s3cretpw@matrix.org/", "names the room"),
            ("matrixs://alice:s3cretpw@matrix.org/#a:x/#b:x", "one room"),
            ("matrixs://alice:s3cretpw@matrix.org/!a:x/!b:x", "one room"),
            (
                "matrixs://alice:s3cretpw@matrix.org/@bob:x",
                "direct messages",
            ),
            ("matrixs://alice:s3cretpw@matrix.org/!:x", "room id"),
            ("matrixs://alice:s3cretpw@matrix.org/%23:x", "alias"),
            (
                "matrixs://alice:s3cretpw@matrix.org/#r:x?mode=slack",
                "webhook modes",
            ),
            (
                "matrixs://alice:s3cretpw@matrix.org/!r?msgtype=emote",
                "msgtype",
            ),
            ("matrixs://alice@matrix.org/!r?token=s3cretpw", "not both"),
        ] {
            let reason = parse(url).unwrap_err();
            assert!(reason.contains(says), "{url}: {reason}");
            assert!(!reason.contains("s3cret"), "{url}: {reason}");
        }
    }

    #[test]
    fn masking_hides_a_password_whole_and_hints_at_a_token() {
        let url =
            parse("matrixs://alice:s3cret%20pw@matrix.example.org/#reminders:example.org").unwrap();
        assert_eq!(
            url.masked(),
            "matrixs://alice:…@matrix.example.org/%23reminders:example.org"
        );
        assert_eq!(format!("{url:?}"), url.masked());
        let url = parse("matrix://syt_YWxpY2U_abcdef@127.0.0.1:8008/!AbC?msgtype=notice").unwrap();
        assert_eq!(
            url.masked(),
            "matrix://syt_…@127.0.0.1:8008/!AbC?msgtype=notice"
        );
        assert_eq!(url.secrets().scrub("token syt_YWxpY2U_abcdef"), "token …");
    }

    #[test]
    fn the_endpoint_and_api_paths_percent_encode_room_ids_and_aliases() {
        let config = super::super::DestinationConfig::default();
        let settings = Settings::new(Channel::Matrix, &config, false, None).unwrap();
        let url = parse("matrix://tok@127.0.0.1:8008/#r:example.org").unwrap();
        assert_eq!(
            url.endpoint(&settings).as_str(),
            "http://127.0.0.1:8008/_matrix/client/v3/"
        );
        assert_eq!(
            url.api(&["directory", "room", "#r:example.org"]).as_str(),
            "http://127.0.0.1:8008/_matrix/client/v3/directory/room/%23r:example.org"
        );
        assert_eq!(
            url.api(&["rooms", "!a/b:x", "send"]).as_str(),
            "http://127.0.0.1:8008/_matrix/client/v3/rooms/!a%2Fb:x/send"
        );
    }

    #[test]
    fn transaction_and_device_ids_are_stable_and_path_safe() {
        let txn = txn_id("tsk_1@2026-12-07T08:00:00Z/matrix/dst_1");
        assert_eq!(txn, txn_id("tsk_1@2026-12-07T08:00:00Z/matrix/dst_1"));
        assert_ne!(txn, txn_id("tsk_1@2026-12-08T08:00:00Z/matrix/dst_1"));
        assert_eq!(txn.len(), 5 + 32);
        assert!(txn.chars().all(|c| c.is_ascii_alphanumeric()));
        let a = parse("matrix://alice:one@h/!r").unwrap();
        let b = parse("matrix://alice:two@h/!other").unwrap();
        assert_eq!(a.device_id("alice"), b.device_id("alice"));
        assert!(a.device_id("alice").starts_with("CHIME"));
        assert_eq!(a.device_id("alice").len(), 15);
        assert_ne!(a.session_key(), b.session_key());
    }
}
