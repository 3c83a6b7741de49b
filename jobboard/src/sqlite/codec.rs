//! Decoding job rows, with errors naming the job.

use std::fmt;

use rusqlite::types::ValueRef;
use rusqlite::Row;
use serde_json::Value;
use uuid::Uuid;

use super::{db_err, BOARD};
use crate::JobId;
use crate::{Control, Job, JobBoardError, JobState, Outcome};
use taskflow_persistence::Epoch;
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::LogBookId;

/// The columns [`decode`] reads, in order.
pub(super) const JOB_COLUMNS: &str =
    "sequence, id, name, details, logbook, flow_detail, priority, \
     created_at, state, owner, epoch, lease_expires_at, outcome, \
     not_before, unique_key, execution_key, control, revision";

/// How many columns [`JOB_COLUMNS`] names (a column after them is at this
/// index).
pub(super) const JOB_COLUMN_COUNT: usize = 18;

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

/// A corrupt-record error naming job `id`.
pub(super) fn corrupt(id: impl fmt::Display, reason: impl fmt::Display) -> JobBoardError {
    JobBoardError::Corrupt {
        board: BOARD,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}

/// What a stored value is, for messages.
fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

/// Reads the columns of one job row, naming the job in every error.
struct Columns<'r, 's> {
    row: &'r Row<'s>,
    /// The job, as messages name it.
    id: String,
}

impl<'r> Columns<'r, '_> {
    fn value(&self, i: usize, column: &str) -> Result<ValueRef<'r>, JobBoardError> {
        self.row
            .get_ref(i)
            .map_err(|e| db_err(e, format_args!("reading {column} of job {}", self.id)))
    }

    fn text(&self, i: usize, column: &str) -> Result<Option<&'r str>, JobBoardError> {
        match self.value(i, column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|e| corrupt(&self.id, format_args!("{column} is not UTF-8: {e}"))),
            other => Err(corrupt(
                &self.id,
                format_args!("{column} is {}, not text", type_name(other)),
            )),
        }
    }

    fn required_text(&self, i: usize, column: &str) -> Result<&'r str, JobBoardError> {
        self.text(i, column)?
            .ok_or_else(|| corrupt(&self.id, format_args!("{column} is null")))
    }

    fn integer(&self, i: usize, column: &str) -> Result<Option<i64>, JobBoardError> {
        match self.value(i, column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            other => Err(corrupt(
                &self.id,
                format_args!("{column} is {}, not an integer", type_name(other)),
            )),
        }
    }

    fn unsigned(&self, i: usize, column: &str) -> Result<Option<u64>, JobBoardError> {
        self.integer(i, column)?
            .map(|v| {
                u64::try_from(v)
                    .map_err(|_| corrupt(&self.id, format_args!("{column} is negative ({v})")))
            })
            .transpose()
    }

    fn required_unsigned(&self, i: usize, column: &str) -> Result<u64, JobBoardError> {
        self.unsigned(i, column)?
            .ok_or_else(|| corrupt(&self.id, format_args!("{column} is null")))
    }

    fn uuid(&self, i: usize, column: &str) -> Result<Option<Uuid>, JobBoardError> {
        self.text(i, column)?
            .map(|t| {
                Uuid::parse_str(t).map_err(|e| {
                    corrupt(&self.id, format_args!("{column} {t:?} is not a uuid: {e}"))
                })
            })
            .transpose()
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
        column: &str,
    ) -> Result<Option<T>, JobBoardError> {
        self.text(i, column)?
            .map(|t| {
                serde_json::from_str(t)
                    .map_err(|e| corrupt(&self.id, format_args!("{column} is not valid: {e}")))
            })
            .transpose()
    }
}

/// A job from the columns [`JOB_COLUMNS`].
pub(super) fn decode(row: &Row<'_>) -> Result<Job, JobBoardError> {
    let mut cols = Columns {
        row,
        id: "(row with an unreadable id)".to_owned(),
    };
    if let Ok(ValueRef::Integer(sequence)) = row.get_ref(0) {
        cols.id = format!("(sequence {sequence})");
    }
    let id = cols
        .uuid(1, "id")?
        .ok_or_else(|| corrupt(&cols.id, "id is null"))?;
    cols.id = id.to_string();
    let state = match cols.required_text(8, "state")? {
        "UNCLAIMED" => JobState::Unclaimed,
        "CLAIMED" => JobState::Claimed,
        "COMPLETE" => JobState::Complete,
        other => return Err(corrupt(id, format_args!("state {other:?} is not a state"))),
    };
    let owner = cols.text(9, "owner")?.map(str::to_owned);
    let lease_expires_at = cols.unsigned(11, "lease_expires_at")?;
    if state == JobState::Claimed && (owner.is_none() || lease_expires_at.is_none()) {
        return Err(corrupt(id, "claimed without an owner and a lease"));
    }
    let outcome: Option<Outcome> = cols.json(12, "outcome")?;
    if state == JobState::Complete && outcome.is_none() {
        return Err(corrupt(id, "complete without an outcome"));
    }
    let priority = cols
        .integer(6, "priority")?
        .ok_or_else(|| corrupt(id, "priority is null"))?;
    Ok(Job {
        id: JobId::from(id),
        name: cols.required_text(2, "name")?.to_owned(),
        details: cols.json::<Value>(3, "details")?.unwrap_or(Value::Null),
        logbook: (cols.uuid(4, "logbook")?).map(LogBookId::from),
        flow_detail: (cols.uuid(5, "flow_detail")?).map(FlowDetailId::from),
        priority: i32::try_from(priority)
            .map_err(|_| corrupt(id, format_args!("priority {priority} is out of range")))?,
        created_at: cols.required_unsigned(7, "created_at")?,
        sequence: cols.required_unsigned(0, "sequence")?,
        state,
        owner,
        epoch: Epoch::new(cols.required_unsigned(10, "epoch")?),
        lease_expires_at,
        outcome,
        not_before: cols.unsigned(13, "not_before")?,
        unique_key: cols.text(14, "unique_key")?.map(str::to_owned),
        key: cols.text(15, "execution_key")?.map(str::to_owned),
        control: control(cols.text(16, "control")?, id)?,
        revision: cols.required_unsigned(17, "revision")?,
    })
}
