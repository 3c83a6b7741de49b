//! Harbor's cron specs: six fields (robfig/cron's order and numbering),
//! `second minute hour day-of-month month day-of-week`, Sunday = 0 (7
//! also), read in UTC.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Reads a 6-field cron spec.
pub(crate) fn parse_cron(spec: &str) -> Result<Cron, String> {
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
