//! UTC timestamps for events and file names, without a date library.
//!
//! Event times are RFC 3339 in one fixed shape, `YYYY-MM-DDTHH:MM:SS.mmmZ`,
//! so that comparing two of them as strings compares the instants.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Instants before 1970 are
/// written as the epoch.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The UTC date of `t` as the number `YYYYMMDD`, used in file names.
pub(crate) fn date_stamp(t: SystemTime) -> u32 {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    (year as u32) * 10_000 + month * 100 + day
}

/// Whether `s` is a prefix of the fixed event time shape that ends at a
/// field boundary, optionally followed by `Z`: `2025-03-01`,
/// `2025-03-01T12:00`, `2025-03-01T12:00:00.250Z` and so on.
pub(crate) fn is_time_prefix(s: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.ddd";
    const ENDS: [usize; 7] = [4, 7, 10, 13, 16, 19, 23];
    let body = s.strip_suffix('Z').unwrap_or(s);
    let bytes = body.as_bytes();
    if !ENDS.contains(&bytes.len()) {
        return false;
    }
    bytes.iter().zip(SHAPE).all(|(b, want)| match want {
        b'd' => b.is_ascii_digit(),
        other => b == other,
    })
}

/// Converts a count of days since 1970-01-01 into a proleptic Gregorian
/// (year, month, day), using 400-year eras of 146 097 days that start on
/// 1 March so that the leap day falls at the end of an era year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(at(951_782_400, 7)),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(
            rfc3339_millis(at(1_709_251_199, 999)),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(at(4_102_444_800, 0)),
            "2100-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn date_stamp_follows_the_utc_day() {
        assert_eq!(date_stamp(at(1_709_251_199, 0)), 20240229);
        assert_eq!(date_stamp(at(1_709_251_200, 0)), 20240301);
    }

    #[test]
    fn time_prefixes_must_end_at_a_field() {
        for ok in [
            "2025",
            "2025-03-01",
            "2025-03-01T12:30:00Z",
            "2025-03-01T12:30:00.250Z",
        ] {
            assert!(is_time_prefix(ok), "{ok}");
        }
        for bad in [
            "",
            "2025-3-1",
            "2025-03-01 12:00",
            "2025-03-01T1",
            "yesterday",
            "2025-03-01+02:00",
        ] {
            assert!(!is_time_prefix(bad), "{bad}");
        }
    }
}
