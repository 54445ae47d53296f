//! Reading an Apprise-style URL into its raw parts, for each service's module to check.
//!
//! Written by hand rather than with `url::Url`: a Telegram bot token (`123456789:AA…`) sits
//! where a host and port would, which a URL parser refuses, and a topic written where the host
//! goes (`ntfy://Alerts`) must keep its case, which a host parser would fold. Every refusal
//! here describes the problem without repeating any part of the URL: any part can hold a
//! token.

use url::Host;

/// A destination URL cut at `://`, the first `/` and the first `?`.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    /// Lowercase.
    pub(crate) scheme: String,
    /// Between `://` and the first `/` (or `?`), as written.
    pub(crate) authority: &'a str,
    /// The path's segments, percent-decoded; empty ones (`//`, a trailing `/`) left out.
    pub(crate) path: Vec<String>,
    /// The query's parameters, decoded.
    pub(crate) query: Vec<(String, String)>,
}

/// The part before `://`, lowercase.
pub(crate) fn scheme(url: &str) -> Result<String, String> {
    let (scheme, _) = url
        .trim()
        .split_once("://")
        .ok_or("a destination URL starts with its service's scheme, as in `ntfys://`")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("a destination URL starts with its service's scheme, as in `ntfys://`".into());
    }
    Ok(scheme.to_ascii_lowercase())
}

/// `url` cut into its parts.
pub(crate) fn split(url: &str) -> Result<Parts<'_>, String> {
    let url = url.trim();
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a destination URL has no spaces or control characters".into());
    }
    let scheme = scheme(url)?;
    let rest = &url[scheme.len() + 3..];
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, query),
        None => (rest, ""),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path),
        None => (rest, ""),
    };
    let path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode(s).ok_or_else(|| bad_escape("its path")))
        .collect::<Result<_, _>>()?;
    let query = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok(Parts {
        scheme,
        authority,
        path,
        query,
    })
}

impl Parts<'_> {
    /// The query's parameters by name, refusing a name outside `known` or given twice.
    /// `service` names the URL in the reason (`the ntfy URL`).
    pub(crate) fn params(
        &self,
        known: &[&'static str],
        service: &str,
    ) -> Result<Params<'_>, String> {
        let mut seen: Vec<(&'static str, &str)> = Vec::new();
        for (name, value) in &self.query {
            let Some(&name) = known.iter().find(|k| **k == name.as_str()) else {
                return Err(if known.is_empty() {
                    format!("{service} takes no parameters (`?…`)")
                } else {
                    format!(
                        "{service} takes only the parameters {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            };
            if seen.iter().any(|(n, _)| *n == name) {
                return Err(format!("{service} gives `{name}` twice"));
            }
            seen.push((name, value));
        }
        Ok(Params(seen))
    }
}

/// A URL's known parameters.
#[derive(Debug)]
pub(crate) struct Params<'a>(Vec<(&'static str, &'a str)>);

impl Params<'_> {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// An authority read as `[user[:password]@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    /// Percent-decoded.
    pub(crate) user: Option<String>,
    /// Percent-decoded.
    pub(crate) password: Option<String>,
    /// A host name (lowercase), an IPv4 address, or an IPv6 address in brackets.
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Authority {
    /// Reads `raw`; `service` names the URL in a refusal (`the Gotify URL`).
    pub(crate) fn parse(raw: &str, service: &str) -> Result<Authority, String> {
        // The last `@`: a password with an unescaped `@` still reads as one.
        let (userinfo, hostport) = match raw.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, raw),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let user = decode(user).ok_or_else(|| bad_escape("its user name"))?;
                let password = password
                    .map(|p| decode(p).ok_or_else(|| bad_escape("its password")))
                    .transpose()?;
                (Some(user), password)
            }
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (ip, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("{service} has an IPv6 address without its closing `]`"))?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| bad_port(service))?),
            };
            (format!("[{ip}]"), port)
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(format!("{service} has no server name"));
        }
        let host = Host::parse(&host)
            .map_err(|_| format!("{service}'s server is not a valid host name or address"))?
            .to_string();
        let port = port
            .map(|p| {
                Some(p)
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad_port(service))
            })
            .transpose()?;
        Ok(Authority {
            user,
            password,
            host,
            port,
        })
    }

    /// `host[:port]`.
    pub(crate) fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

fn bad_port(service: &str) -> String {
    format!("{service}'s port must be a number from 1 to 65535")
}

fn bad_escape(what: &str) -> String {
    format!("a destination URL has a broken `%` escape, or one that is not UTF-8, in {what}")
}

/// `raw` with its `%XX` escapes decoded; `None` for a broken escape or bytes that are not
/// UTF-8. (`+` stays `+`: it means a space only in a query.)
pub(crate) fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `secret` for people: at most `keep` of its first characters, and never more than half of
/// them, then `…`.
pub(crate) fn shown(secret: &str, keep: usize) -> String {
    let keep = keep.min(secret.chars().count() / 2);
    let mut shown: String = secret.chars().take(keep).collect();
    shown.push('…');
    shown
}

/// `?name=value&…` for the parameters that are set, or nothing.
pub(crate) fn query_string(params: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = params
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_at_its_scheme_path_and_query() {
        let parts = split("NTFYS://u:p@host:8080/a//b/?priority=high&tags=x,y").unwrap();
        assert_eq!(parts.scheme, "ntfys");
        assert_eq!(parts.authority, "u:p@host:8080");
        assert_eq!(parts.path, ["a", "b"]);
        assert_eq!(
            parts.query,
            [
                ("priority".to_owned(), "high".to_owned()),
                ("tags".to_owned(), "x,y".to_owned())
            ]
        );
    }

    #[test]
    fn an_authority_reads_its_user_password_host_and_port() {
        let a = Authority::parse("al%40ice:p%3Ass@w@Example.COM:8443", "the URL").unwrap();
        assert_eq!(a.user.as_deref(), Some("al@ice"));
        assert_eq!(a.password.as_deref(), Some("p:ss@w"));
        assert_eq!(a.host, "example.com");
        assert_eq!(a.port, Some(8443));
        let v6 = Authority::parse("[::1]:80", "the URL").unwrap();
        assert_eq!(v6.host_port(), "[::1]:80");
        for (raw, expected) in [
            ("host:0", "port must be a number from 1 to 65535"),
            ("host:99999", "port must be a number from 1 to 65535"),
            ("host:secret", "port must be a number from 1 to 65535"),
            ("user@", "has no server name"),
            ("[::1", "without its closing"),
            ("ho st", "not a valid host name"),
        ] {
            let err = Authority::parse(raw, "the URL").unwrap_err();
            assert!(err.contains(expected), "{raw}: {err}");
        }
    }

    #[test]
    fn broken_escapes_are_refused() {
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(decode("a%2"), None);
        assert_eq!(decode("a%+1"), None);
        assert_eq!(decode("%ff"), None);
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_without_their_values() {
        let parts = split("x://h/t?priority=1&secret=tk_abc").unwrap();
        let err = parts.params(&["priority"], "the URL").unwrap_err();
        assert_eq!(err, "the URL takes only the parameters `priority`");
        let parts = split("x://h/t?priority=1&priority=2").unwrap();
        assert!(parts.params(&["priority"], "the URL").is_err());
    }

    #[test]
    fn a_shown_secret_keeps_at_most_half_of_itself() {
        assert_eq!(shown("abcdefgh", 3), "abc…");
        assert_eq!(shown("abcd", 3), "ab…");
        assert_eq!(shown("a", 3), "…");
    }
}
