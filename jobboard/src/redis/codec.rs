//! Replies of the scripts, decoded: jobs from their hash fields, and the
//! small tuples the scripts return.

use std::collections::HashMap;

use redis::Value;
use uuid::Uuid;

use super::pool::BOARD;
use crate::JobId;
use crate::{Control, Job, JobBoardError, JobState, Outcome};
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::LogBookId;

/// The fields of a job hash, as `HGETALL` returns them.
pub(super) type Fields = HashMap<String, String>;

/// A `Corrupt` error for job (or key) `id`.
pub(super) fn corrupt(id: impl Into<String>, reason: impl Into<String>) -> JobBoardError {
    JobBoardError::Corrupt {
        board: BOARD,
        id: id.into(),
        reason: reason.into(),
    }
}

/// A reply element as text (bulk and simple strings, integers).
pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

/// A reply that must be a list.
pub(super) fn items(value: Value, what: &str) -> Result<Vec<Value>, JobBoardError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(corrupt(what, format!("expected a list, got {other:?}"))),
    }
}

/// Element `i` of a script's reply, as text.
pub(super) fn text_at(items: &[Value], i: usize, what: &str) -> Result<String, JobBoardError> {
    items
        .get(i)
        .and_then(text)
        .ok_or_else(|| corrupt(what, format!("reply element {i} missing or not text")))
}

/// Element `i` of a script's reply, as a number.
pub(super) fn u64_at(items: &[Value], i: usize, what: &str) -> Result<u64, JobBoardError> {
    let s = text_at(items, i, what)?;
    parse_u64(&s).ok_or_else(|| corrupt(what, format!("reply element {i} `{s}` is not a number")))
}

/// An unsigned integer, also from a float reply such as a sorted-set score
/// (`"1712345678901"` or `"1.712345678901e+12"`).
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().or_else(|| {
        let f = s.parse::<f64>().ok()?;
        // Scores are whole milliseconds well below 2^53: exact as f64.
        (f.is_finite() && f >= 0.0).then_some(f as u64)
    })
}

/// A flat `HGETALL` reply as a map.
pub(super) fn fields(value: Value, what: &str) -> Result<Fields, JobBoardError> {
    let items = items(value, what)?;
    fields_of(items.iter().map(text), what)
}

/// Alternating field names and values as a map.
pub(super) fn fields_of(
    mut flat: impl Iterator<Item = Option<String>>,
    what: &str,
) -> Result<Fields, JobBoardError> {
    let mut map = Fields::new();
    while let Some(name) = flat.next() {
        let value = flat.next().flatten();
        match (name, value) {
            (Some(name), Some(value)) => {
                map.insert(name, value);
            }
            _ => return Err(corrupt(what, "hash reply is not field/value text pairs")),
        }
    }
    Ok(map)
}

fn field<'a>(f: &'a Fields, id: &str, name: &str) -> Result<&'a str, JobBoardError> {
    f.get(name)
        .map(String::as_str)
        .ok_or_else(|| corrupt(id, format!("field `{name}` is missing")))
}

fn number<T: std::str::FromStr>(f: &Fields, id: &str, name: &str) -> Result<T, JobBoardError> {
    let s = field(f, id, name)?;
    s.parse()
        .map_err(|_| corrupt(id, format!("field `{name}` = `{s}` is not a number")))
}

fn optional_uuid(f: &Fields, id: &str, name: &str) -> Result<Option<Uuid>, JobBoardError> {
    match f.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(s) => Uuid::parse_str(s)
            .map(Some)
            .map_err(|e| corrupt(id, format!("field `{name}` = `{s}` is not a uuid: {e}"))),
    }
}

/// The job stored in `f`, as readers see it at `now`: a claim whose lease
/// lapsed shows as unclaimed (claimable), its last owner and lease time
/// still filled in.
pub(super) fn job(f: &Fields, now: u64, key: &str) -> Result<Job, JobBoardError> {
    let id_text = field(f, key, "id")?;
    let id = Uuid::parse_str(id_text)
        .map_err(|e| corrupt(key, format!("field `id` = `{id_text}` is not a uuid: {e}")))?;
    let id_text = id_text.to_owned();
    let id_ref = id_text.as_str();
    let details = serde_json::from_str(field(f, id_ref, "details")?)
        .map_err(|e| corrupt(id_ref, format!("field `details` is not JSON: {e}")))?;
    let stored = match field(f, id_ref, "state")? {
        "UNCLAIMED" => JobState::Unclaimed,
        "CLAIMED" => JobState::Claimed,
        "COMPLETE" => JobState::Complete,
        other => return Err(corrupt(id_ref, format!("unknown state `{other}`"))),
    };
    let lease_expires_at = match f.get("lease_expires_at") {
        Some(s) => Some(parse_u64(s).ok_or_else(|| {
            corrupt(
                id_ref,
                format!("field `lease_expires_at` = `{s}` is not a number"),
            )
        })?),
        None => None,
    };
    if stored == JobState::Claimed && (lease_expires_at.is_none() || !f.contains_key("owner")) {
        return Err(corrupt(id_ref, "claimed without an owner or a lease"));
    }
    let outcome: Option<Outcome> = match f.get("outcome") {
        Some(s) => Some(
            serde_json::from_str(s)
                .map_err(|e| corrupt(id_ref, format!("field `outcome` is not an outcome: {e}")))?,
        ),
        None => None,
    };
    if stored == JobState::Complete && outcome.is_none() {
        return Err(corrupt(id_ref, "complete without an outcome"));
    }
    let not_before = match f.get("not_before").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(parse_u64(s).ok_or_else(|| {
            corrupt(
                id_ref,
                format!("field `not_before` = `{s}` is not a number"),
            )
        })?),
    };
    let control = match f.get("control") {
        None => None,
        Some(s) => Some(Control::parse(s).ok_or_else(|| {
            corrupt(
                id_ref,
                format!("field `control` = `{s}` is not a control request"),
            )
        })?),
    };
    // Jobs posted before revisions were kept are at their first.
    let revision = match f.get("revision") {
        None => 1,
        Some(_) => number(f, id_ref, "revision")?,
    };
    let state = match (stored, lease_expires_at) {
        (JobState::Claimed, Some(at)) if at <= now => JobState::Unclaimed,
        _ => stored,
    };
    Ok(Job {
        id: JobId::from(id),
        name: field(f, id_ref, "name")?.to_owned(),
        details,
        logbook: (optional_uuid(f, id_ref, "logbook")?).map(LogBookId::from),
        flow_detail: (optional_uuid(f, id_ref, "flow_detail")?).map(FlowDetailId::from),
        priority: number(f, id_ref, "priority")?,
        created_at: number(f, id_ref, "created_at")?,
        sequence: number(f, id_ref, "sequence")?,
        state,
        owner: f.get("owner").cloned(),
        epoch: number(f, id_ref, "epoch")?,
        lease_expires_at,
        outcome,
        not_before,
        unique_key: f.get("unique_key").cloned(),
        key: f.get("key").cloned(),
        control,
        revision,
    })
}

/// The claim state of a job (`stored`) for `find_owner`: the owner if
/// claimed with a running lease at `now`.
pub(super) fn running_owner(job: &Job, now: u64) -> Option<String> {
    match (job.state, job.lease_expires_at) {
        (JobState::Claimed, Some(at)) if at > now => job.owner.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(state: &str, lease: Option<&str>) -> Fields {
        let mut f = Fields::new();
        for (k, v) in [
            ("id", "67e55044-10b1-426f-9247-bb680e5fe0c8"),
            ("name", "n"),
            ("details", "{\"a\":1}"),
            ("logbook", ""),
            ("flow_detail", "67e55044-10b1-426f-9247-bb680e5fe0c9"),
            ("priority", "-3"),
            ("created_at", "1700000000000"),
            ("sequence", "7"),
            ("state", state),
            ("epoch", "2"),
        ] {
            f.insert(k.to_owned(), v.to_owned());
        }
        if let Some(lease) = lease {
            f.insert("owner".to_owned(), "o".to_owned());
            f.insert("lease_expires_at".to_owned(), lease.to_owned());
        }
        f
    }

    #[test]
    fn a_lapsed_lease_reads_as_unclaimed_with_its_last_owner() {
        let f = stored("CLAIMED", Some("1000"));
        let running = job(&f, 999, "k").unwrap();
        assert_eq!(running.state, JobState::Claimed);
        assert_eq!(running_owner(&running, 999).as_deref(), Some("o"));
        let lapsed = job(&f, 1000, "k").unwrap();
        assert_eq!(lapsed.state, JobState::Unclaimed);
        assert_eq!(lapsed.owner.as_deref(), Some("o"));
        assert_eq!(lapsed.lease_expires_at, Some(1000));
        assert_eq!(running_owner(&lapsed, 1000), None);
        assert_eq!(lapsed.priority, -3);
        assert_eq!(lapsed.logbook, None);
        assert!(lapsed.flow_detail.is_some());
    }

    #[test]
    fn bad_records_are_corrupt_errors_naming_the_job() {
        let mut f = stored("CLAIMED", None);
        let e = job(&f, 0, "k").unwrap_err().to_string();
        assert!(e.contains("67e55044-10b1-426f-9247-bb680e5fe0c8"), "{e}");
        f.insert("state".to_owned(), "WEIRD".to_owned());
        assert!(job(&f, 0, "k").unwrap_err().to_string().contains("WEIRD"));
        let mut f = stored("UNCLAIMED", None);
        f.insert("details".to_owned(), "{".to_owned());
        assert!(matches!(
            job(&f, 0, "k"),
            Err(JobBoardError::Corrupt { .. })
        ));
        let f = stored("COMPLETE", None);
        assert!(matches!(
            job(&f, 0, "k"),
            Err(JobBoardError::Corrupt { .. })
        ));
        let mut f = stored("UNCLAIMED", None);
        f.remove("id");
        assert!(job(&f, 0, "my-key")
            .unwrap_err()
            .to_string()
            .contains("my-key"));
    }

    #[test]
    fn scores_parse_as_whole_milliseconds() {
        assert_eq!(parse_u64("1712345678901"), Some(1_712_345_678_901));
        assert_eq!(parse_u64("1.712345678901e+12"), Some(1_712_345_678_901));
        assert_eq!(parse_u64("x"), None);
        assert_eq!(parse_u64("-1"), None);
    }

    #[test]
    fn flat_hashes_decode() {
        let v = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"1".to_vec()),
        ]);
        let f = fields(v, "k").unwrap();
        assert_eq!(f.get("a").map(String::as_str), Some("1"));
        let odd = Value::Array(vec![Value::BulkString(b"a".to_vec())]);
        assert!(fields(odd, "k").is_err());
    }
}
