//! Go duration strings (`time.ParseDuration` / `Duration.String`), which nats-server uses
//! for every time option: `"2m"`, `"720h"`, `"1.5s"`, `"100ms"`, `"1h30m"`.

use std::time::Duration;

const NS: u128 = 1;
const US: u128 = 1_000;
const MS: u128 = 1_000_000;
const SEC: u128 = 1_000_000_000;
const MIN: u128 = 60 * SEC;
const HOUR: u128 = 60 * MIN;

/// Parses a Go duration. Returns the signed number of nanoseconds, or Go's error text.
///
/// Like Go: a bare `0` is allowed, any other number needs a unit (`ns us µs ms s m h`;
/// there is no `d`), several parts add up (`1h30m`), and the total must fit in an i64.
pub fn parse_go_duration_nanos(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if rest.starts_with('.') {
            rest = &rest[1..];
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            rest = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            "ns" => NS,
            "us" | "µs" | "μs" => US,
            "ms" => MS,
            "s" => SEC,
            "m" => MIN,
            "h" => HOUR,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let int: u128 =
            if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| invalid())? };
        let mut part = int.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Go keeps the fraction's precision and truncates below a nanosecond.
            let mut num: u128 = 0;
            let mut den: u128 = 1;
            for b in frac_part.bytes().take(30) {
                num = num * 10 + u128::from(b - b'0');
                den *= 10;
            }
            part += num * scale / den;
        }
        total = total.checked_add(part).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(invalid());
        }
    }
    let total = total as i128;
    Ok((if neg { -total } else { total }) as i64)
}

/// Parses a Go duration that must not be negative.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let n = parse_go_duration_nanos(s)?;
    if n < 0 {
        return Err(format!("negative duration {s:?} is not allowed"));
    }
    Ok(Duration::from_nanos(n as u64))
}

/// Formats like Go's `Duration.String()`: `0s`, `1.5s`, `100ms`, `2m0s`, `720h0m0s`.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < SEC {
        let (unit, scale) = if ns < US {
            ("ns", NS)
        } else if ns < MS {
            ("µs", US)
        } else {
            ("ms", MS)
        };
        return format!("{}{unit}", frac(ns, scale));
    }
    let h = ns / HOUR;
    let m = (ns % HOUR) / MIN;
    let s = ns % MIN;
    let secs = format!("{}s", frac(s, SEC));
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

/// `value / scale` in decimal without trailing zeros.
fn frac(value: u128, scale: u128) -> String {
    let int = value / scale;
    let rem = value % scale;
    if rem == 0 {
        return int.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let ok = [
            ("0", 0i64),
            ("2m", 120_000_000_000),
            ("720h", 720 * 3_600_000_000_000),
            ("1.5s", 1_500_000_000),
            ("100ms", 100_000_000),
            ("1h30m", 5_400_000_000_000),
            ("-1s", -1_000_000_000),
            ("+5s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("3ns", 3),
        ];
        for (s, n) in ok {
            assert_eq!(parse_go_duration_nanos(s), Ok(n), "{s}");
        }
        assert_eq!(
            parse_go_duration_nanos("1"),
            Err("time: missing unit in duration \"1\"".into())
        );
        assert_eq!(
            parse_go_duration_nanos("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        for bad in ["", "s", ".s", "-", "abc", "1.5.5s", "9999999999999999h"] {
            assert!(parse_go_duration_nanos(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(720 * 3600), "720h0m0s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_micros(5), "5µs"),
            (Duration::from_nanos(1_000_001), "1.000001ms"),
        ];
        for (d, s) in cases {
            assert_eq!(format_go_duration(d), s);
        }
    }
}
