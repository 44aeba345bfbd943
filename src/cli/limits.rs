//! The values of the `--limit-*` options: whole numbers of bytes, seconds or things, and for
//! byte sizes a K, M or G suffix (1024-based).

use std::ffi::OsStr;

use crate::error::Error;
use crate::policy::{Limit, Unit};

/// Parses the value of `--limit-KEY` for `limit`; the error says what was expected.
pub(crate) fn parse(limit: Limit, value: &OsStr) -> Result<u64, Error> {
    let unit = limit.unit();
    let expected = match unit {
        Unit::Bytes => "a size (bytes, or a number with K, M or G)",
        Unit::Seconds => "a number of seconds (a whole number from 1)",
        Unit::Count => "a count (a whole number)",
        Unit::Cpus => "a number of cpus (like 0.5 or 2, at most three decimals)",
    };
    let invalid = || Error::InvalidInput(format!("{value:?} is not {expected}"));
    let text = value.to_str().ok_or_else(invalid)?;
    if unit == Unit::Cpus {
        return crate::sandbox::parse_cpus(text).ok_or_else(invalid);
    }
    let (digits, shift) = match (unit, text.as_bytes().last()) {
        (Unit::Bytes, Some(b'K' | b'k')) => (&text[..text.len() - 1], 10),
        (Unit::Bytes, Some(b'M' | b'm')) => (&text[..text.len() - 1], 20),
        (Unit::Bytes, Some(b'G' | b'g')) => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    // Digits only: no sign, no spaces, nothing empty (str::parse would take a "+").
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| {
            Error::InvalidInput(format!("{value:?} is too large (at most {})", u64::MAX))
        })?;
    if number < limit.min() {
        return Err(invalid());
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(limit: Limit, value: &str) -> u64 {
        parse(limit, OsStr::new(value)).unwrap_or_else(|e| panic!("{value:?}: {e}"))
    }

    fn err(limit: Limit, value: &str) -> String {
        match parse(limit, OsStr::new(value)) {
            Ok(n) => panic!("{value:?} parsed as {n}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(ok(Limit::As, "0"), 0);
        assert_eq!(ok(Limit::As, "12"), 12);
        assert_eq!(ok(Limit::As, "12K"), 12 * 1024);
        assert_eq!(ok(Limit::Fsize, "3m"), 3 << 20);
        assert_eq!(ok(Limit::Stack, "8M"), 8 << 20);
        assert_eq!(ok(Limit::Core, "2G"), 2 << 30);
        assert_eq!(ok(Limit::As, "007"), 7);
        assert_eq!(ok(Limit::As, &u64::MAX.to_string()), u64::MAX);
        assert_eq!(ok(Limit::As, "17179869183G"), 17_179_869_183 << 30);
    }

    #[test]
    fn counts_and_seconds_are_plain_numbers() {
        assert_eq!(ok(Limit::Nofile, "0"), 0);
        assert_eq!(ok(Limit::Nproc, "64"), 64);
        assert_eq!(ok(Limit::Cpu, "1"), 1);
        assert_eq!(ok(Limit::Walltime, "86400"), 86400);
        let count = "\"5K\" is not a count (a whole number)";
        assert_eq!(err(Limit::Nofile, "5K"), count);
        let seconds = "\"1G\" is not a number of seconds (a whole number from 1)";
        assert_eq!(err(Limit::Walltime, "1G"), seconds);
        // Zero seconds would kill before anything ran.
        let zero = "\"0\" is not a number of seconds (a whole number from 1)";
        assert_eq!(err(Limit::Cpu, "0"), zero);
        assert_eq!(err(Limit::Walltime, "0"), zero.replace("cpu", "walltime"));
    }

    #[test]
    fn garbage_negative_empty_and_overflow_are_refused() {
        let size = "is not a size (bytes, or a number with K, M or G)";
        for bad in [
            "", "12X", "-1", "+1", " 1", "1 ", "K", "1.5K", "1KB", "1e3", "0x10", "١",
        ] {
            assert_eq!(err(Limit::As, bad), format!("{bad:?} {size}"));
        }
        let too_large = format!("is too large (at most {})", u64::MAX);
        for big in [
            "18446744073709551616",
            "17179869184G",
            "99999999999999999999999K",
        ] {
            assert_eq!(err(Limit::As, big), format!("{big:?} {too_large}"));
        }
        assert_eq!(
            err(Limit::Cpu, "18446744073709551616"),
            format!("\"18446744073709551616\" {too_large}")
        );
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = parse(Limit::Nproc, OsStr::from_bytes(b"\xff1"));
        assert!(not_utf8.is_err());
    }
}
