//! Timestamps as Python's `datetime.now(timezone.utc).isoformat()` writes them,
//! and as blockhost-common reads them (`Z` or an offset, with or without fraction).

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, the fraction omitted when it is zero.
pub fn format(ts: &Timestamp) -> String {
    let ts = ts.with_nanosecond(ts.nanosecond() / 1000 * 1000).unwrap_or(*ts);
    if ts.nanosecond() == 0 {
        ts.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        ts.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// Accepts `Z`, `+HH:MM` offsets, a space separator, any fraction, or no offset
/// at all (taken as UTC).
pub fn parse(text: &str) -> Option<Timestamp> {
    let text = text.trim().replacen(' ', "T", 1);
    let normalized = match text.strip_suffix('Z') {
        Some(head) => format!("{head}+00:00"),
        None => text,
    };
    if let Ok(ts) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(ts.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| Utc.from_utc_datetime(&naive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_isoformat() {
        let ts = Utc.with_ymd_and_hms(2026, 2, 9, 13, 4, 5).unwrap();
        assert_eq!(format(&ts), "2026-02-09T13:04:05+00:00");
        let ts = ts.with_nanosecond(123_456_789).unwrap();
        assert_eq!(format(&ts), "2026-02-09T13:04:05.123456+00:00");
        let ts = ts.with_nanosecond(999).unwrap();
        assert_eq!(format(&ts), "2026-02-09T13:04:05+00:00");
    }

    #[test]
    fn parses_every_python_and_js_variant() {
        let base = Utc.with_ymd_and_hms(2026, 2, 9, 13, 4, 5).unwrap();
        for text in [
            "2026-02-09T13:04:05+00:00",
            "2026-02-09T13:04:05Z",
            "2026-02-09T13:04:05",
            "2026-02-09 13:04:05+00:00",
            "2026-02-09T15:04:05+02:00",
        ] {
            assert_eq!(parse(text), Some(base), "{text}");
        }
        let frac = parse("2026-02-09T13:04:05.5Z").unwrap();
        assert_eq!(frac.nanosecond(), 500_000_000);
        assert_eq!(parse("2026-02-09T13:04:05.123456+00:00").unwrap().nanosecond(), 123_456_000);
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn round_trips() {
        let ts = now();
        assert_eq!(parse(&format(&ts)).map(|t| format(&t)), Some(format(&ts)));
    }
}
