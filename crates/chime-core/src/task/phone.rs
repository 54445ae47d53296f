//! Phone numbers: read leniently in the deployment's default region, kept in E.164.

use super::{InvalidValue, ParseOptions};

/// A phone number in E.164: `+`, the country calling code and the national number, at most 15
/// digits (`+14075551212`). Only [`PhoneNumber::parse_with`] makes one, so it is always a
/// number valid in its country's numbering plan, in the one form SMS providers take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Longer input is refused before the numbering plan is consulted: a number written with
    /// every separator allowed and an international prefix still fits.
    const MAX_INPUT_CHARS: usize = 40;

    /// [`PhoneNumber::parse_with`] with the default options (region US).
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        Self::parse_with(s, &ParseOptions::default())
    }

    /// Reads `s`: digits, spaces, dashes, dots and parentheses (ignored), an optional leading
    /// `+`. With the `+`, the digits are the country code and national number, and the region is
    /// not used. Without it, a number that starts with the region's international prefix
    /// (`011` in the US, `00` in most of the world) is read as international; any other as a
    /// national number of the region (`4075551212` in the US is `+14075551212`, `020 7946 0958`
    /// in GB is `+442079460958`). The number must be valid in its country's numbering plan.
    pub fn parse_with(s: &str, options: &ParseOptions) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if s.chars().count() > Self::MAX_INPUT_CHARS {
            return Err(InvalidValue(format!(
                "a phone number is at most {} characters long, this one has {}",
                Self::MAX_INPUT_CHARS,
                s.chars().count()
            )));
        }
        let (plus, rest) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(InvalidValue(format!(
                        "`{s}` is not a phone number: expected digits with an optional leading \
                         `+` (spaces, dashes, dots and parentheses are ignored), such as \
                         `+14075551212`"
                    )))
                }
            }
        }
        if digits.is_empty() {
            return Err(InvalidValue(format!(
                "`{s}` is not a phone number: it has no digits (expected one such as \
                 `+14075551212`)"
            )));
        }

        let region = options.region();
        // The port of libphonenumber strips the *default region's* national prefix from an
        // international number (with region US, `+49 151 23456789` loses the `1` after `49`).
        // So it is only given a region for national numbers; international ones (a `+`, or the
        // region's international prefix, which libphonenumber would otherwise apply itself)
        // are handed over as `+` and digits, read by their own country's plan.
        let international = if plus {
            Some(digits.as_str())
        } else {
            region.and_then(|id| strip_idd(id, &digits))
        };
        let parsed = match (international, region) {
            (Some(number), _) => phonenumber::parse(None, format!("+{number}")),
            (None, Some(region)) => phonenumber::parse(Some(region), &digits),
            (None, None) => {
                return Err(InvalidValue(format!(
                    "`{s}` has no country code, and the configured default region `{}` is not a \
                     region code; write the number with `+` and its country code, such as \
                     `+14075551212`",
                    options.default_region
                )))
            }
        };
        let valid = parsed
            .ok()
            .filter(|n| phonenumber::is_valid(n) && n.extension().is_none());
        let Some(parsed) = valid else {
            return Err(InvalidValue(match (international, region) {
                (None, Some(region)) => format!(
                    "`{s}` is not a valid phone number in the default region {} (a number \
                     without `+` and a country code is read as a national number of that \
                     region); write it with its country code, such as `+14075551212`",
                    region.as_ref()
                ),
                _ => format!(
                    "`{s}` is not a valid phone number: it matches no country's numbering plan \
                     (an international number is `+`, the country code, then the national \
                     number, such as `+14075551212`)"
                ),
            }));
        };
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        // E.164 allows 15 digits; the library's own output is trusted only as far as that.
        if e164.len() > 16 || !e164.starts_with('+') {
            return Err(InvalidValue(format!(
                "`{s}` is not a valid phone number: it has more than the 15 digits E.164 allows"
            )));
        }
        Ok(Self(e164))
    }

    /// A number as [`TaskSpec::to_stored`](super::TaskSpec::to_stored) wrote it: E.164, which
    /// is checked for its form only (numbering plans change; a stored number stays readable).
    pub(super) fn from_stored(s: String) -> Option<Self> {
        let digits = s.strip_prefix('+')?;
        let e164 = (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        e164.then_some(Self(s))
    }

    /// E.164, such as `+14075551212`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `digits` without the region's international (IDD) prefix, when it starts with one followed
/// by a country code (which never starts with `0`), as libphonenumber itself decides.
fn strip_idd(region: phonenumber::country::Id, digits: &str) -> Option<&str> {
    let idd = phonenumber::metadata::DATABASE
        .by_id(region.as_ref())?
        .international_prefix()?;
    let found = idd.find(digits).filter(|m| m.start() == 0)?;
    let rest = &digits[found.end()..];
    (!rest.is_empty() && !rest.starts_with('0')).then_some(rest)
}
