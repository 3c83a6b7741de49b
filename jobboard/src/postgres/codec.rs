//! Decoding job rows, with errors naming the job.

use std::fmt;

use postgres::types::FromSql;
use postgres::Row;
use serde_json::Value;
use uuid::Uuid;

use super::BOARD;
use crate::{Control, Job, JobBoardError, JobId, JobState, Outcome};
use taskflow_persistence::{Epoch, FlowDetailId, LogBookId};

/// A corrupt-record error naming job (or entity) `id`.
pub(super) fn corrupt(id: impl fmt::Display, reason: impl fmt::Display) -> JobBoardError {
    JobBoardError::Corrupt {
        board: BOARD,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}

/// A control request from its column (`"stop"`, `"cancel"` or null).
pub(super) fn control(
    text: Option<&str>,
    id: impl fmt::Display,
) -> Result<Option<Control>, JobBoardError> {
    text.map(|t| {
        Control::parse(t)
            .ok_or_else(|| corrupt(id, format_args!("control {t:?} is not a control request")))
    })
    .transpose()
}

/// Column `i` of `row`, named `column` in errors about `id`.
pub(super) fn col<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    id: &dyn fmt::Display,
    column: &str,
) -> Result<T, JobBoardError> {
    row.try_get(i)
        .map_err(|e| corrupt(id, format_args!("{column} cannot be read: {e}")))
}

/// A stored count, time or epoch, which is never negative.
pub(super) fn unsigned(v: i64, id: &dyn fmt::Display, column: &str) -> Result<u64, JobBoardError> {
    u64::try_from(v).map_err(|_| corrupt(id, format_args!("{column} is negative ({v})")))
}

fn opt_unsigned(
    row: &Row,
    i: usize,
    id: &dyn fmt::Display,
    column: &str,
) -> Result<Option<u64>, JobBoardError> {
    col::<Option<i64>>(row, i, id, column)?
        .map(|v| unsigned(v, id, column))
        .transpose()
}

fn json<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    id: &dyn fmt::Display,
    column: &str,
) -> Result<Option<T>, JobBoardError> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| corrupt(id, format_args!("{column} is not valid: {e}")))
    })
    .transpose()
}

/// A job from the columns of `cols!` (then, at index
/// [`COLUMN_COUNT`](super::sql::COLUMN_COUNT), whatever the statement adds).
pub(super) fn decode(row: &Row) -> Result<Job, JobBoardError> {
    let sequence: i64 = col(row, 0, &"(a job row)", "sequence")?;
    let at = format!("(sequence {sequence})");
    let id: Uuid = col(row, 1, &at, "id")?;
    let who: &dyn fmt::Display = &id;
    let state = match col::<&str>(row, 8, who, "state")? {
        "UNCLAIMED" => JobState::Unclaimed,
        "CLAIMED" => JobState::Claimed,
        "COMPLETE" => JobState::Complete,
        other => return Err(corrupt(id, format_args!("state {other:?} is not a state"))),
    };
    let owner: Option<String> = col(row, 9, who, "owner")?;
    let lease_expires_at = opt_unsigned(row, 11, who, "lease_expires_at")?;
    if state == JobState::Claimed && (owner.is_none() || lease_expires_at.is_none()) {
        return Err(corrupt(id, "claimed without an owner and a lease"));
    }
    let outcome: Option<Outcome> = json(col(row, 12, who, "outcome")?, who, "outcome")?;
    if state == JobState::Complete && outcome.is_none() {
        return Err(corrupt(id, "complete without an outcome"));
    }
    let details: Option<Value> = json(Some(col(row, 3, who, "details")?), who, "details")?;
    Ok(Job {
        id: JobId::from(id),
        name: col(row, 2, who, "name")?,
        details: details.unwrap_or(Value::Null),
        logbook: col::<Option<Uuid>>(row, 4, who, "logbook")?.map(LogBookId::from),
        flow_detail: col::<Option<Uuid>>(row, 5, who, "flow_detail")?.map(FlowDetailId::from),
        priority: col(row, 6, who, "priority")?,
        created_at: unsigned(col(row, 7, who, "created_at")?, who, "created_at")?,
        sequence: unsigned(sequence, who, "sequence")?,
        state,
        owner,
        epoch: Epoch::new(unsigned(col(row, 10, who, "epoch")?, who, "epoch")?),
        lease_expires_at,
        outcome,
        not_before: opt_unsigned(row, 13, who, "not_before")?,
        unique_key: col(row, 14, who, "unique_key")?,
        key: col(row, 15, who, "execution_key")?,
        control: control(col(row, 16, who, "control")?, id)?,
        revision: unsigned(col(row, 17, who, "revision")?, who, "revision")?,
    })
}
