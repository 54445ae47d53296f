//! Where a webhook may go: URL rules, the public-address classifier, and a client pinned to
//! the addresses that were checked.
//!
//! A webhook URL is chosen by a user, and Chime's server makes the request, so without care a
//! user could make Chime call its own admin port, a database on the private network or the
//! cloud metadata service (`169.254.169.254`): server-side request forgery. The defence has
//! three parts:
//!
//! 1. The URL must be `http` or `https` and carry no user name or password.
//! 2. The host is resolved here, and unless private addresses are allowed, the delivery is
//!    refused if ANY resolved address is not public ([`is_public`]). "Any" rather than "all":
//!    the HTTP client may try every address, so one inward address is enough to be refused.
//! 3. The request then goes through a client built for this one delivery whose DNS is
//!    overridden with exactly those checked addresses, and whose own resolver refuses every
//!    other name, so a second lookup (DNS rebinding: public at check time, `127.0.0.1` at
//!    connect time) cannot happen. Redirects are not followed, since a redirect could point
//!    inward, and system proxy settings are ignored, since a proxy would do its own lookup.
//!
//! A client per delivery costs a TLS configuration and gives up connection reuse; at reminder
//! rates that is cheap, and it keeps the pinning obvious.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

/// How a webhook refusal tells the operator to lift it.
const HOW_TO_ALLOW: &str =
    "webhooks go to public addresses only unless `channels.webhook.allow_private = true`";

/// Which non-public addresses a channel's requests may reach: none (the default), all
/// (`allow_private`, development), or those an operator listed for the channel (an ntfy or
/// Gotify server on the LAN is the normal case), by network (`192.168.0.0/16`, `10.1.2.3`)
/// or by host name as written in the URL (`ntfy.lan`: every address it resolves to).
#[derive(Debug, Clone)]
pub struct Reach {
    allow_private: bool,
    allow: Vec<Allowed>,
    /// How a refusal tells the operator to lift it.
    hint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Net(IpAddr, u8),
    Host(String),
}

impl Reach {
    /// The webhook channel's: public addresses, or every address with `allow_private`.
    pub fn webhook(allow_private: bool) -> Reach {
        Reach {
            allow_private,
            allow: Vec::new(),
            hint: HOW_TO_ALLOW.to_owned(),
        }
    }

    /// Public addresses and those `entries` list (CIDRs, addresses or host names); `setting`
    /// names the configuration key a refusal points to (`channels.ntfy.allow`).
    pub fn allowing(entries: &[String], setting: &str) -> Result<Reach, String> {
        let allow = entries
            .iter()
            .map(|entry| parse_allowed(entry).ok_or_else(|| format!("{setting}: {entry:?} is not a CIDR (`192.168.0.0/16`), an address or a host name")))
            .collect::<Result<_, _>>()?;
        Ok(Reach {
            allow_private: false,
            allow,
            hint: format!("private addresses are reached only when listed in `{setting}`"),
        })
    }

    /// Every address (development only, like `channels.webhook.allow_private`).
    pub fn with_private(mut self, allow_private: bool) -> Reach {
        self.allow_private |= allow_private;
        self
    }

    fn permits(&self, host: &str, ip: IpAddr) -> bool {
        self.allow_private
            || self.allow.iter().any(|allowed| match allowed {
                Allowed::Host(name) => name.eq_ignore_ascii_case(host),
                Allowed::Net(net, bits) => in_network(ip, *net, *bits),
            })
    }
}

fn parse_allowed(entry: &str) -> Option<Allowed> {
    let entry = entry.trim();
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    if let Ok(ip) = addr.parse::<IpAddr>() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        return (bits <= max).then_some(Allowed::Net(ip, bits));
    }
    let name = entry.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (bits.is_none() && !name.is_empty() && name.split('.').all(label_ok))
        .then_some(Allowed::Host(name))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        // An IPv4-mapped IPv6 address is the IPv4 address a listed network names.
        (IpAddr::V6(ip), IpAddr::V4(_)) => ip
            .to_ipv4_mapped()
            .is_some_and(|v4| in_network(IpAddr::V4(v4), net, bits)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// A URL that passed the checks, with the addresses it may be delivered to.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) url: Url,
    /// The host as written in the URL (for logs and reasons; never the path or query).
    pub(crate) host: String,
    /// For a host name: the name and its checked addresses. `None` for an IP literal, which
    /// the client connects to without any lookup.
    pinned: Option<(String, Vec<SocketAddr>)>,
}

/// Why a URL cannot be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetError {
    /// The URL itself is unacceptable; retrying cannot help.
    Invalid(String),
    /// It resolves to an address that is not public and private ones are not allowed.
    Refused(String),
    /// The host could not be resolved now; it may resolve later.
    Unresolved(String),
}

impl TargetError {
    pub(crate) fn into_reason(self) -> String {
        match self {
            TargetError::Invalid(r) | TargetError::Refused(r) | TargetError::Unresolved(r) => r,
        }
    }
}

/// Parses the URL and applies the rules of points 1 and 2 above.
pub(crate) async fn resolve(url: &str, reach: &Reach, noun: &str) -> Result<Target, TargetError> {
    let url = Url::parse(url)
        .map_err(|e| TargetError::Invalid(format!("{noun} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Invalid(format!(
            "{noun} must use http or https, not `{}`",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Invalid(format!(
            "{noun} must not contain a user name or password; receivers authenticate Chime by \
             the `webhook-signature` header"
        )));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| TargetError::Invalid(format!("{noun} has no port")))?;
    let (host, pinned, addrs) = match url.host() {
        Some(Host::Ipv4(ip)) => (ip.to_string(), None, vec![IpAddr::V4(ip)]),
        Some(Host::Ipv6(ip)) => (ip.to_string(), None, vec![IpAddr::V6(ip)]),
        Some(Host::Domain(name)) => {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| TargetError::Unresolved(format!("could not resolve {name}: {e}")))?
                .collect();
            if resolved.is_empty() {
                return Err(TargetError::Unresolved(format!(
                    "{name} resolves to no address"
                )));
            }
            let ips = resolved.iter().map(SocketAddr::ip).collect();
            (name.to_owned(), Some((name.to_owned(), resolved)), ips)
        }
        None => return Err(TargetError::Invalid(format!("{noun} has no host"))),
    };
    for ip in &addrs {
        if reach.permits(&host, *ip) {
            continue;
        }
        if let Some(kind) = non_public_kind(*ip) {
            let what = if pinned.is_some() {
                format!("{host}, which resolves to {ip}, {kind}")
            } else {
                format!("{ip}, {kind}")
            };
            return Err(TargetError::Refused(format!(
                "refusing to deliver to {what}: {}",
                reach.hint
            )));
        }
    }
    Ok(Target { url, host, pinned })
}

/// For the API when a user configures an endpoint: `Err` says, for people, why Chime would
/// refuse to deliver there (bad URL, non-public address, or a host that does not resolve).
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    check_url_as(url, allow_private, "the webhook URL").await
}

/// [`check_url`] for another URL Chime will call (a push endpoint): `noun` names it in the
/// reason.
pub async fn check_url_as(url: &str, allow_private: bool, noun: &str) -> Result<(), String> {
    resolve(url, &Reach::webhook(allow_private), noun)
        .await
        .map(|_| ())
        .map_err(TargetError::into_reason)
}

impl Target {
    /// A client that can reach only this target's checked addresses (point 3 above).
    pub(crate) fn client(
        &self,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<reqwest::Client, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(user_agent)
            .dns_resolver(Arc::new(NoUncheckedLookups));
        if let Some((name, addrs)) = &self.pinned {
            builder = builder.resolve_to_addrs(name, addrs);
        }
        builder.build()
    }
}

/// The resolver behind the pinned overrides: any name that reaches it was not checked, so it
/// fails the connection instead of resolving.
struct NoUncheckedLookups;

impl reqwest::dns::Resolve for NoUncheckedLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reason = format!("{} was not among the checked hosts", name.as_str());
        Box::pin(async move { Err(reason.into()) })
    }
}

/// Whether `ip` is an ordinary public unicast address. False for loopback, unspecified,
/// private, shared (CGNAT), link-local, unique-local, site-local, multicast, broadcast,
/// documentation, benchmarking and reserved ranges, for the IPv4-mapped, IPv4-compatible and
/// NAT64 forms of non-public IPv4 addresses, and for transition ranges (6to4, Teredo) whose
/// real destination is hidden.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_kind(ip).is_none()
}

/// What kind of non-public address `ip` is, for people (`a loopback address`), or `None`.
pub(crate) fn non_public_kind(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4).map(str::to_owned),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip.is_unspecified() => "an unspecified address",
        (0, _, _) => "a \"this network\" address (0.0.0.0/8)",
        (10, _, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address",
        (172, 16..=31, _) => "a private address",
        (192, 0, 0) => "an IETF protocol assignment address (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (192, 88, 99) => "a 6to4 relay anycast address",
        (192, 168, _) => "a private address",
        (198, 18..=19, _) => "a benchmarking address",
        _ if ip.is_broadcast() => "the broadcast address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address (240.0.0.0/4)",
        _ => return None,
    };
    Some(kind)
}

fn v6_kind(ip: Ipv6Addr) -> Option<String> {
    let segments = ip.segments();
    let embedded = |form: &str| {
        let [_, _, _, _, _, _, hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        v4_kind(v4).map(|kind| format!("the {form} form of {v4}, {kind}"))
    };
    let kind = match segments {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        // ::ffff:0:0/96: the IPv4 address itself, as a dual-stack socket sees it.
        [0, 0, 0, 0, 0, 0xffff, _, _] => return embedded("IPv4-mapped"),
        // ::/96, deprecated IPv4-compatible addresses: nothing legitimate uses them.
        [0, 0, 0, 0, 0, 0, _, _] => "a deprecated IPv4-compatible address",
        // 64:ff9b::/96: a NAT64 gateway forwards to the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return embedded("NAT64"),
        [0x64, 0xff9b, 1, ..] => "a local-use NAT64 address",
        [0x2001, 0x0db8, ..] => "a documentation address",
        [0x3fff, s1, ..] if s1 < 0x1000 => "a documentation address",
        // 2001::/32 is Teredo and the rest of 2001::/23 IETF assignments.
        [0x2001, s1, ..] if s1 < 0x0200 => "an IETF protocol assignment address (2001::/23)",
        [0x2002, ..] => "a 6to4 address",
        [s0, ..] if s0 & 0xfe00 == 0xfc00 => "a unique-local address",
        [s0, ..] if s0 & 0xffc0 == 0xfe80 => "a link-local address",
        [s0, ..] if s0 & 0xffc0 == 0xfec0 => "a site-local address",
        [s0, ..] if s0 & 0xff00 == 0xff00 => "a multicast address",
        // Global unicast is 2000::/3; everything else is reserved or special-purpose.
        [s0, ..] if s0 & 0xe000 != 0x2000 => "a reserved address (outside 2000::/3)",
        _ => return None,
    };
    Some(kind.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_list_admits_its_networks_and_hosts_only() {
        let reach = Reach::allowing(
            &[
                "192.168.0.0/16".to_owned(),
                "10.1.2.3".to_owned(),
                "fd00::/8".to_owned(),
                "NTFY.lan.".to_owned(),
            ],
            "channels.ntfy.allow",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(reach.permits("x", ip("192.168.7.9")));
        assert!(reach.permits("x", ip("::ffff:192.168.7.9")));
        assert!(reach.permits("x", ip("10.1.2.3")));
        assert!(!reach.permits("x", ip("10.1.2.4")));
        assert!(reach.permits("x", ip("fd12::1")));
        assert!(!reach.permits("x", ip("fe80::1")));
        assert!(reach.permits("ntfy.lan", ip("10.9.9.9")));
        assert!(!reach.permits("other.lan", ip("10.9.9.9")));
        assert!(!Reach::webhook(false).permits("x", ip("127.0.0.1")));
        assert!(Reach::webhook(true).permits("x", ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "host/8", "", "a b", "::/129"] {
            assert!(
                Reach::allowing(&[bad.to_owned()], "channels.ntfy.allow").is_err(),
                "{bad:?}"
            );
        }
    }

    fn kind(s: &str) -> Option<String> {
        non_public_kind(s.parse().unwrap())
    }

    #[test]
    fn embedded_ipv4_forms_take_the_kind_of_their_ipv4_address() {
        assert_eq!(
            kind("::ffff:10.0.0.1").as_deref(),
            Some("the IPv4-mapped form of 10.0.0.1, a private address")
        );
        assert_eq!(kind("::ffff:8.8.8.8"), None);
        assert!(kind("64:ff9b::7f00:1").is_some());
        assert_eq!(kind("64:ff9b::808:808"), None);
        assert!(kind("::8.8.8.8").is_some());
    }

    #[test]
    fn special_purpose_ipv6_ranges_are_not_public() {
        for ip in [
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "2002:7f00:1::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "5f00::1",
        ] {
            assert!(kind(ip).is_some(), "{ip}");
        }
        assert_eq!(kind("2a00:1450:4001:82a::200e"), None);
    }

    #[test]
    fn special_purpose_ipv4_ranges_are_not_public() {
        for ip in [
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "0.1.2.3",
        ] {
            assert!(kind(ip).is_some(), "{ip}");
        }
        assert_eq!(kind("172.32.0.1"), None);
        assert_eq!(kind("100.128.0.1"), None);
        assert_eq!(
            kind("255.255.255.255").as_deref(),
            Some("the broadcast address")
        );
    }
}
