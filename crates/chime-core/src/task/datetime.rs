//! The API's dates and times: the design's `2024-08-12 11:24:53.00+0000` and RFC 3339, read
//! by hand so that every refusal says what was expected.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::Offset;
use jiff::Timestamp;

pub(super) const EXPECTED_DATE_TIME: &str = "expected a date and time with an offset, such as \
                                  `2024-08-12 11:24:53.00+0000` or `2024-08-12T13:24:53+02:00`";
pub(super) const MISSING_OFFSET: &str = "the offset is missing";

/// Reads fixed-width ASCII fields left to right.
struct Reader<'s> {
    bytes: &'s [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.at += usize::from(hit);
        hit
    }

    fn digits(&mut self, n: usize) -> Option<i32> {
        let field = self.bytes.get(self.at..self.at + n)?;
        if !field.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(
            field
                .iter()
                .fold(0, |acc, b| acc * 10 + i32::from(b - b'0')),
        )
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// `YYYY-MM-DD`, a real date.
    fn date(&mut self) -> Option<Date> {
        let y = self.digits(4)?;
        let m = (self.eat(b'-')).then(|| self.digits(2)).flatten()?;
        let d = (self.eat(b'-')).then(|| self.digits(2)).flatten()?;
        Date::new(
            i16::try_from(y).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(d).ok()?,
        )
        .ok()
    }
}

/// A date alone: `YYYY-MM-DD`.
pub(super) fn parse_date(s: &str) -> Option<Date> {
    let mut r = Reader {
        bytes: s.as_bytes(),
        at: 0,
    };
    r.date().filter(|_| r.done())
}

/// A date and time with an offset (see the module doc), as the instant and the offset.
pub(super) fn parse_date_time(s: &str) -> Result<(Timestamp, Offset), String> {
    let s = s.trim();
    let mut r = Reader {
        bytes: s.as_bytes(),
        at: 0,
    };
    let bad = || EXPECTED_DATE_TIME.to_owned();
    let date = r.date().ok_or_else(bad)?;
    if !(r.eat(b'T') || r.eat(b't') || r.eat(b' ')) {
        return Err(bad());
    }
    let hour = r.digits(2).ok_or_else(bad)?;
    let minute = r.eat(b':').then(|| r.digits(2)).flatten().ok_or_else(bad)?;
    let (mut second, mut nanos) = (0, 0);
    if r.eat(b':') {
        second = r.digits(2).ok_or_else(bad)?;
        if r.eat(b'.') {
            let mut n = 0;
            while let Some(d) = r.peek().filter(u8::is_ascii_digit) {
                n += 1;
                if n > 9 {
                    return Err(bad());
                }
                nanos = nanos * 10 + i32::from(d - b'0');
                r.at += 1;
            }
            if n == 0 {
                return Err(bad());
            }
            nanos *= 10i32.pow(9 - n);
            // Instants are kept to the microsecond, as every store keeps them.
            nanos -= nanos % 1000;
        }
    }
    let time = Time::new(
        i8::try_from(hour).map_err(|_| bad())?,
        i8::try_from(minute).map_err(|_| bad())?,
        i8::try_from(second).map_err(|_| bad())?,
        nanos,
    )
    .map_err(|_| bad())?;
    while r.eat(b' ') {}
    let offset_seconds = match r.peek() {
        None => {
            return Err(format!(
                "{MISSING_OFFSET}: `{s}` names no instant; add an offset such as `+0000`, \
                 `+02:00` or `Z`"
            ))
        }
        Some(b'Z' | b'z') => {
            r.at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            r.at += 1;
            let h = r.digits(2).ok_or_else(bad)?;
            let colon = r.eat(b':');
            let m = match r.digits(2) {
                Some(m) => m,
                None if !colon => 0,
                None => return Err(bad()),
            };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let secs = h * 3600 + m * 60;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return Err(bad()),
    };
    if !r.done() {
        return Err(bad());
    }
    let offset = Offset::from_seconds(offset_seconds).map_err(|_| bad())?;
    let at = offset
        .to_timestamp(DateTime::from_parts(date, time))
        .map_err(|_| {
            format!(
                "`{s}` is out of range: instants from {} to {} are supported",
                Timestamp::MIN,
                Timestamp::MAX
            )
        })?;
    Ok((at, offset))
}
