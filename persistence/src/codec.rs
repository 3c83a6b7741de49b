//! Encoding records for storage, and decoding and validating what is read
//! back.
//!
//! Every backend that stores records as text (the SQL backends and the
//! directory backend) goes through here, so a record read back is checked the
//! same way everywhere: a truncated or corrupt JSON blob, an enum value this
//! build does not know (a state `EXPLODED` in a column), an id that is not a
//! UUID, a timestamp out of range, a record missing that another one lists,
//! all become [`PersistenceError::Corrupt`] naming the record, never a panic
//! and never a record silently skipped.
//!
//! The SQL backends keep the small, often-updated fields of an atom detail
//! (state, intention) and its identity (id, name, kind) in columns, and the
//! rest in one JSON [`AtomBody`], so a state change is an update of two small
//! columns that leaves the (possibly large) result alone.

use std::fmt::Display;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, History, Intention, Version};
use uuid::Uuid;

use crate::{AtomDetail, PersistenceError, RecordKind};

/// A `Corrupt` error for the record `kind` `id`.
pub(crate) fn corrupt(
    kind: RecordKind,
    id: impl Display,
    reason: impl Display,
) -> PersistenceError {
    PersistenceError::Corrupt {
        kind,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}

/// Decodes a JSON document belonging to the record `kind` `id`.
pub(crate) fn decode_json<T: DeserializeOwned>(
    kind: RecordKind,
    id: impl Display,
    what: &str,
    bytes: &[u8],
) -> Result<T, PersistenceError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(kind, id, format_args!("{what}: {e}")))
}

/// Encodes a value of the record `kind` `id` as JSON text.
pub(crate) fn encode_json<T: Serialize + ?Sized>(
    kind: RecordKind,
    id: Uuid,
    value: &T,
) -> Result<String, PersistenceError> {
    serde_json::to_string(value).map_err(|e| PersistenceError::Encode {
        kind,
        id,
        reason: e.to_string(),
    })
}

/// Parses the text id of a record of `kind`.
pub(crate) fn decode_uuid(kind: RecordKind, text: &str) -> Result<Uuid, PersistenceError> {
    Uuid::parse_str(text).map_err(|e| corrupt(kind, text, format_args!("bad id: {e}")))
}

/// A timestamp (ms since the epoch) as a signed 64-bit column value.
pub(crate) fn encode_millis(kind: RecordKind, id: Uuid, ms: u64) -> Result<i64, PersistenceError> {
    i64::try_from(ms).map_err(|_| PersistenceError::Encode {
        kind,
        id,
        reason: format!("timestamp {ms} does not fit a signed 64-bit column"),
    })
}

/// A timestamp column value back as ms since the epoch.
pub(crate) fn decode_millis(
    kind: RecordKind,
    id: Uuid,
    column: &str,
    value: i64,
) -> Result<u64, PersistenceError> {
    u64::try_from(value)
        .map_err(|_| corrupt(kind, id, format_args!("{column} {value} is negative")))
}

/// An owner epoch as a signed 64-bit column value.
pub(crate) fn encode_epoch(flow: Uuid, epoch: u64) -> Result<i64, PersistenceError> {
    i64::try_from(epoch).map_err(|_| PersistenceError::Encode {
        kind: RecordKind::FlowDetail,
        id: flow,
        reason: format!("owner epoch {epoch} does not fit a signed 64-bit column"),
    })
}

/// An owner epoch column value back as an epoch.
pub(crate) fn decode_epoch(flow: Uuid, value: i64) -> Result<u64, PersistenceError> {
    u64::try_from(value).map_err(|_| {
        corrupt(
            RecordKind::FlowDetail,
            flow,
            format_args!("owner_epoch {value} is negative"),
        )
    })
}

/// The stored name of an atom state (TaskFlow's, e.g. `REVERT_FAILURE`).
pub(crate) fn atom_state_str(state: AtomState) -> &'static str {
    state.as_str()
}

/// An atom state from its stored name.
pub(crate) fn decode_atom_state(id: Uuid, text: &str) -> Result<AtomState, PersistenceError> {
    AtomState::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            corrupt(
                RecordKind::AtomDetail,
                id,
                format_args!("unknown atom state {text:?}"),
            )
        })
}

/// The stored name of a flow state.
pub(crate) fn flow_state_str(state: FlowState) -> &'static str {
    state.as_str()
}

/// A flow state from its stored name.
pub(crate) fn decode_flow_state(id: Uuid, text: &str) -> Result<FlowState, PersistenceError> {
    FlowState::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            corrupt(
                RecordKind::FlowDetail,
                id,
                format_args!("unknown flow state {text:?}"),
            )
        })
}

const INTENTIONS: [(Intention, &str); 4] = [
    (Intention::Execute, "EXECUTE"),
    (Intention::Revert, "REVERT"),
    (Intention::Retry, "RETRY"),
    (Intention::Ignore, "IGNORE"),
];

/// The stored name of an intention (as serde writes it).
pub(crate) fn intention_str(intention: Intention) -> &'static str {
    match intention {
        Intention::Execute => "EXECUTE",
        Intention::Revert => "REVERT",
        Intention::Retry => "RETRY",
        Intention::Ignore => "IGNORE",
    }
}

/// An intention from its stored name.
pub(crate) fn decode_intention(id: Uuid, text: &str) -> Result<Intention, PersistenceError> {
    INTENTIONS
        .into_iter()
        .find(|(_, s)| *s == text)
        .map(|(i, _)| i)
        .ok_or_else(|| {
            corrupt(
                RecordKind::AtomDetail,
                id,
                format_args!("unknown intention {text:?}"),
            )
        })
}

/// The stored name of an atom kind.
pub(crate) fn atom_kind_str(kind: AtomKind) -> &'static str {
    match kind {
        AtomKind::Task => "TASK",
        AtomKind::Retry => "RETRY",
    }
}

/// An atom kind from its stored name.
pub(crate) fn decode_atom_kind(id: Uuid, text: &str) -> Result<AtomKind, PersistenceError> {
    match text {
        "TASK" => Ok(AtomKind::Task),
        "RETRY" => Ok(AtomKind::Retry),
        _ => Err(corrupt(
            RecordKind::AtomDetail,
            id,
            format_args!("unknown atom kind {text:?}"),
        )),
    }
}

/// The part of an atom detail that the SQL backends keep as one JSON
/// column: everything but its id, name, kind, state and intention.
#[derive(Serialize)]
pub(crate) struct AtomBodyRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    result: &'a Option<Arc<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: &'a Option<Box<Failure>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_failure: &'a Option<Box<Failure>>,
    #[serde(skip_serializing_if = "History::is_empty")]
    history: &'a History,
    version: &'a Version,
    #[serde(skip_serializing_if = "Map::is_empty")]
    meta: &'a Map<String, Value>,
}

/// [`AtomBodyRef`], read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AtomBody {
    #[serde(default)]
    result: Option<Arc<Value>>,
    #[serde(default)]
    failure: Option<Box<Failure>>,
    #[serde(default)]
    revert_failure: Option<Box<Failure>>,
    #[serde(default)]
    history: History,
    #[serde(default)]
    version: Version,
    #[serde(default)]
    meta: Map<String, Value>,
}

/// The JSON body of `atom` (see [`AtomBodyRef`]).
pub(crate) fn encode_atom_body(atom: &AtomDetail) -> Result<String, PersistenceError> {
    let body = AtomBodyRef {
        result: &atom.result,
        failure: &atom.failure,
        revert_failure: &atom.revert_failure,
        history: &atom.history,
        version: &atom.version,
        meta: &atom.meta,
    };
    encode_json(RecordKind::AtomDetail, atom.uuid, &body)
}

/// The columns of one stored atom detail, as read.
pub(crate) struct AtomColumns<'a> {
    pub(crate) uuid: Uuid,
    pub(crate) name: String,
    pub(crate) kind: &'a str,
    pub(crate) state: &'a str,
    pub(crate) intention: &'a str,
    pub(crate) body: &'a [u8],
}

/// Decodes and validates one stored atom detail.
pub(crate) fn decode_atom(columns: AtomColumns<'_>) -> Result<AtomDetail, PersistenceError> {
    let id = columns.uuid;
    let kind = decode_atom_kind(id, columns.kind)?;
    let state = decode_atom_state(id, columns.state)?;
    let intention = decode_intention(id, columns.intention)?;
    let body: AtomBody = decode_json(RecordKind::AtomDetail, id, "body", columns.body)?;
    Ok(AtomDetail {
        uuid: id,
        name: columns.name.into(),
        kind,
        state,
        intention,
        result: body.result,
        failure: body.failure,
        revert_failure: body.revert_failure,
        history: body.history,
        version: body.version,
        meta: body.meta,
    })
}

/// Decodes a JSON object column (a record's `meta`).
pub(crate) fn decode_meta(
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
) -> Result<Map<String, Value>, PersistenceError> {
    decode_json(kind, id, "meta", bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in AtomState::ALL {
            assert_eq!(
                decode_atom_state(Uuid::nil(), atom_state_str(s)).unwrap(),
                s
            );
            assert_eq!(json!(s), json!(atom_state_str(s)));
        }
        for s in FlowState::ALL {
            assert_eq!(
                decode_flow_state(Uuid::nil(), flow_state_str(s)).unwrap(),
                s
            );
            assert_eq!(json!(s), json!(flow_state_str(s)));
        }
        for (i, _) in INTENTIONS {
            assert_eq!(decode_intention(Uuid::nil(), intention_str(i)).unwrap(), i);
            assert_eq!(json!(i), json!(intention_str(i)));
        }
        for k in [AtomKind::Task, AtomKind::Retry] {
            assert_eq!(decode_atom_kind(Uuid::nil(), atom_kind_str(k)).unwrap(), k);
            assert_eq!(json!(k), json!(atom_kind_str(k)));
        }
    }

    #[test]
    fn unknown_values_name_the_record() {
        let id = Uuid::new_v4();
        let err = decode_atom_state(id, "EXPLODED").unwrap_err();
        assert!(
            matches!(&err, PersistenceError::Corrupt { kind: RecordKind::AtomDetail, id: i, reason }
                if *i == id.to_string() && reason.contains("EXPLODED")),
            "{err}"
        );
        let err = decode_flow_state(id, "").unwrap_err();
        assert!(err.to_string().contains(&id.to_string()), "{err}");
        let err = decode_uuid(RecordKind::LogBook, "nope").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn atom_body_round_trips_and_rejects_truncation() {
        let mut atom = AtomDetail::new("a", AtomKind::Retry);
        atom.result = Some(Arc::new(json!({"x": [1, 2.5, null, "\u{0}"]})));
        atom.set_failure(Some(Failure::new("Boom", "bang")));
        atom.history.push(json!(3));
        atom.meta.insert("progress".into(), json!(0.5));
        let body = encode_atom_body(&atom).unwrap();
        let columns = |body: &'static str| AtomColumns {
            uuid: atom.uuid,
            name: atom.name.to_string(),
            kind: "RETRY",
            state: "PENDING",
            intention: "EXECUTE",
            body: body.as_bytes(),
        };
        let body: &'static str = Box::leak(body.into_boxed_str());
        assert_eq!(decode_atom(columns(body)).unwrap(), atom);
        let err = decode_atom(columns(&body[..body.len() / 2])).unwrap_err();
        assert!(
            matches!(&err, PersistenceError::Corrupt { kind: RecordKind::AtomDetail, id, .. }
                if *id == atom.uuid.to_string()),
            "{err}"
        );
    }

    #[test]
    fn timestamps_out_of_range_are_errors() {
        let id = Uuid::new_v4();
        assert!(encode_millis(RecordKind::LogBook, id, u64::MAX).is_err());
        assert!(decode_millis(RecordKind::LogBook, id, "created_at", -1).is_err());
        assert_eq!(
            decode_millis(RecordKind::LogBook, id, "created_at", 7).unwrap(),
            7
        );
    }
}
