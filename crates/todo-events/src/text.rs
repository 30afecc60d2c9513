//! Textual forms on the wire: RFC 3339 timestamps in UTC, and UUIDs.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{truncate, ValidationError};

/// `2026-02-07T10:00:00.123456Z`: UTC with a `Z`, and exactly the sub-second digits
/// needed, so that every `DateTime<Utc>` survives a round trip.
pub(crate) fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Any RFC 3339 date-time; an offset other than `Z` is converted to UTC.
pub(crate) fn parse(field: &'static str, s: &str) -> Result<DateTime<Utc>, ValidationError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ValidationError::MalformedTimestamp {
            field,
            value: truncate(s, 100),
        })
}

/// A UUID in any of its standard textual forms.
pub(crate) fn parse_uuid(field: &'static str, s: &str) -> Result<uuid::Uuid, ValidationError> {
    uuid::Uuid::try_parse(s).map_err(|_| ValidationError::MalformedUuid {
        field,
        value: truncate(s, 100),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_utc_with_z_and_only_needed_digits() {
        let t = Utc.with_ymd_and_hms(2026, 2, 7, 10, 0, 0).unwrap();
        assert_eq!(format(&t), "2026-02-07T10:00:00Z");
        let t = t + chrono::Duration::microseconds(123_456);
        assert_eq!(format(&t), "2026-02-07T10:00:00.123456Z");
    }

    #[test]
    fn parses_offsets_into_utc_and_rejects_naive_times() {
        let t = parse("timestamp", "2026-02-07T12:00:00+02:00").unwrap();
        assert_eq!(format(&t), "2026-02-07T10:00:00Z");
        assert!(parse("timestamp", "2026-02-07T10:00:00").is_err());
        assert!(parse("timestamp", "yesterday").is_err());
    }
}
