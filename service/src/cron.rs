//! Harbor's cron specs: six fields (robfig/cron's order and numbering),
//! `second minute hour day-of-month month day-of-week`, Sunday = 0 (7
//! also), read in UTC.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Reads a 6-field cron spec that fires at some time after now (a spec
/// such as `0 0 0 30 2 *`, 30 February, is refused).
pub(crate) fn parse_cron(spec: &str) -> Result<Cron, String> {
    let cron = parse_fields(spec)?;
    let now = chrono::Utc::now();
    match cron.find_next_occurrence(&now, false) {
        Ok(_) => Ok(cron),
        Err(_) => Err("it never fires (no date matches it)".into()),
    }
}

/// The fire time of `cron` next after `after` (ms since the epoch), if any.
pub(crate) fn next_fire(cron: &Cron, after: u64) -> Option<u64> {
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(i64::try_from(after).ok()?)?;
    let next = cron.find_next_occurrence(&start, false).ok()?;
    u64::try_from(next.timestamp_millis()).ok()
}

/// Reads the six fields of a cron spec (whether it ever fires is not
/// checked).
pub(crate) fn parse_fields(spec: &str) -> Result<Cron, String> {
    let fields = spec.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "expected 6 fields (second minute hour day-of-month month day-of-week), got {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build()
        .parse(spec)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbors_six_fields_with_sunday_zero() {
        // 2026-12-06 is a Sunday.
        let sunday = chrono::DateTime::parse_from_rfc3339("2026-12-06T00:00:00Z")
            .unwrap()
            .timestamp_millis() as u64;
        let cron = parse_fields("30 0 12 * * 0").unwrap();
        let first = next_fire(&cron, sunday - 1).unwrap();
        assert_eq!(first, sunday + 12 * 3600 * 1000 + 30 * 1000);
        assert_eq!(
            next_fire(&cron, first).unwrap(),
            first + 7 * 24 * 3600 * 1000
        );
        let every_second = parse_cron("* * * * * *").unwrap();
        assert_eq!(next_fire(&every_second, 1000), Some(2000));
        assert_eq!(next_fire(&every_second, 1500), Some(2000));
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        assert!(parse_cron("* * * * *").unwrap_err().contains("6 fields"));
        assert!(parse_cron("* * * * * * 2026")
            .unwrap_err()
            .contains("6 fields"));
        assert!(parse_cron("61 * * * * *").is_err());
        assert!(parse_cron("* * 25 * * *").is_err());
        assert!(parse_cron("0 0 0 30 2 *")
            .unwrap_err()
            .contains("never fires"));
        assert!(parse_cron("* * * * * mon-fri").is_ok());
    }
}
