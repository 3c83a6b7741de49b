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
use taskflow_patterns::{
    value_depth, AtomKind, AtomState, Failure, FlowState, History, Intention, Version,
};
use uuid::Uuid;

use crate::{Epoch, FlowDetailId};

use crate::model::RareDetail;
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

/// The deepest a value held in a record may nest, in levels of JSON
/// arrays and objects (as [`value_depth`] counts them): a task's result,
/// what its revert returned, a retry controller's attempt, an entry of a
/// logbook's, flow detail's or atom detail's `meta` (the stored flow
/// definition and the initial store are entries of a flow detail's `meta`).
///
/// Every backend that encodes records refuses, when writing, a record
/// holding a deeper value ([`PersistenceError::TooDeep`]: nothing is
/// written), and reads back every record it wrote: the reader accepts a
/// document nesting this many levels plus the few a record's own structure
/// adds, and refuses anything deeper, before parsing it, as
/// [`PersistenceError::Corrupt`] (a hostile or corrupt record of 100,000
/// `[` is an error naming it, never a stack overflow).
///
/// Why 768: it is above all the engine writes. A value the engine accepts
/// (a result, a store entry) nests at most
/// [`MAX_VALUE_DEPTH`](taskflow_patterns::MAX_VALUE_DEPTH) (256) levels; a
/// stored definition nests 4 levels of JSON per level of flows (a child
/// `{"flow": {"linear": {"children": [...]}}}`), so a flow
/// [`MAX_FLOW_DEPTH`](taskflow_patterns::MAX_FLOW_DEPTH) (100) levels
/// deep is about 400 levels, 658 with a task at the bottom holding a value
/// of 256 levels. And it is well below what the threads reading a record
/// can follow afterwards: cloning, comparing, serializing and dropping a
/// value recurse once per level (a few hundred bytes of stack each in a
/// debug build; a 2 MiB thread stack takes about 1,500 levels).
///
/// ```
/// use taskflow_patterns::{MAX_FLOW_DEPTH, MAX_VALUE_DEPTH};
/// use taskflow_persistence::MAX_RECORD_DEPTH;
/// assert!(MAX_RECORD_DEPTH >= 4 * (MAX_FLOW_DEPTH - 1) + 6 + MAX_VALUE_DEPTH);
/// ```
pub const MAX_RECORD_DEPTH: usize = 768;

/// The most levels a record's own structure puts around the values it
/// holds (an attempt's failure: body, history, attempt, failures, failure,
/// causes, cause is 7): a document read may nest [`MAX_RECORD_DEPTH`] plus
/// this many levels.
const RECORD_FRAME: usize = 8;

/// Documents at most this deep are parsed directly (serde_json's own limit
/// is 128); deeper ones on a stack grown as needed.
const SHALLOW: usize = 100;

/// How deeply the JSON text `bytes` nests: the most arrays and objects
/// open at once, counted by one scan of the bytes (brackets inside strings
/// do not count), without parsing it. Malformed text gets a count too; the
/// parser then says what is wrong with it.
pub(crate) fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Decodes a JSON document belonging to the record `kind` `id`. A
/// document nested deeper than a record may be is `Corrupt`, refused
/// before it is parsed; a deep one is parsed on a stack grown as needed.
pub(crate) fn decode_json<T: DeserializeOwned>(
    kind: RecordKind,
    id: impl Display,
    what: &str,
    bytes: &[u8],
) -> Result<T, PersistenceError> {
    let depth = json_depth(bytes);
    let limit = MAX_RECORD_DEPTH + RECORD_FRAME;
    if depth > limit {
        return Err(corrupt(
            kind,
            id,
            format_args!(
                "{what}: nested {depth} levels deep, deeper than any record is written \
                 ({limit} levels)"
            ),
        ));
    }
    let decoded = if depth <= SHALLOW {
        serde_json::from_slice(bytes)
    } else {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.disable_recursion_limit();
        T::deserialize(serde_stacker::Deserializer::new(&mut de)).and_then(|value| {
            de.end()?;
            Ok(value)
        })
    };
    decoded.map_err(|e| corrupt(kind, id, format_args!("{what}: {e}")))
}

/// A part of a record that holds a value, named in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    /// An atom detail's result.
    Result,
    /// What an atom detail's revert returned.
    RevertResult,
    /// A result in a retry controller's history.
    History,
    /// The `meta` entry under this key.
    Meta(&'a str),
}

impl Display for Part<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Result => f.write_str("result"),
            Part::RevertResult => f.write_str("revert result"),
            Part::History => f.write_str("retry history"),
            Part::Meta(key) => write!(f, "meta entry {key:?}"),
        }
    }
}

/// The values an entry map holds, as parts of a record.
pub(crate) fn meta_parts(meta: &Map<String, Value>) -> impl Iterator<Item = (Part<'_>, &Value)> {
    meta.iter().map(|(key, value)| (Part::Meta(key), value))
}

/// Refuses `flow` (its meta and its atoms) if it holds a value nested
/// deeper than a record may ([`MAX_RECORD_DEPTH`]), before anything of it
/// is written: the memory backend checks what the encoding backends do, so
/// a flow that runs on one runs on the others too.
pub(crate) fn check_flow(flow: &crate::FlowDetail) -> Result<(), PersistenceError> {
    check_parts(
        RecordKind::FlowDetail,
        flow.uuid,
        meta_parts(&flow.stored_meta()),
    )?;
    flow.atom_details.iter().try_for_each(check_atom)
}

/// Refuses an atom detail holding a value nested deeper than a record may
/// ([`check_parts`] over [`atom_parts`]). The common record (a scalar or
/// flat result, nothing else) is passed without walking its parts: this
/// runs on every checkpoint of the memory backend.
#[inline]
pub(crate) fn check_atom(atom: &AtomDetail) -> Result<(), PersistenceError> {
    let shallow =
        |v: &Value| !matches!(v, Value::Array(_) | Value::Object(_)) || value_depth(v) <= 1;
    if atom.meta().is_empty()
        && atom.history().is_empty()
        && atom.revert_result().is_none()
        && atom.result.as_deref().map_or(true, shallow)
    {
        return Ok(());
    }
    check_parts(RecordKind::AtomDetail, atom.uuid, atom_parts(atom))
}

/// The values an atom detail holds, as parts of its record.
pub(crate) fn atom_parts(atom: &AtomDetail) -> impl Iterator<Item = (Part<'_>, &Value)> {
    let result = atom.result.as_deref().map(|v| (Part::Result, v));
    let revert_result = atom.revert_result().map(|v| (Part::RevertResult, &**v));
    let history = atom.history().results().map(|v| (Part::History, v));
    result
        .into_iter()
        .chain(revert_result)
        .chain(history)
        .chain(meta_parts(atom.meta()))
}

/// Sets the entry `key` of `meta` to `value` (with `None`, removes it).
pub(crate) fn set_meta_entry(meta: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            meta.insert(key.to_owned(), value);
        }
        None => {
            meta.remove(key);
        }
    }
}

/// Refuses an entry `key` = `value` of the `meta` of atom detail `id` if
/// it nests deeper than [`MAX_RECORD_DEPTH`].
pub(crate) fn check_meta_entry(
    id: impl Into<Uuid>,
    key: &str,
    value: Option<&Value>,
) -> Result<(), PersistenceError> {
    let id: Uuid = id.into();
    check_parts(
        RecordKind::AtomDetail,
        id,
        value.map(|value| (Part::Meta(key), value)),
    )
}

/// `value`, a new entry `key` of the `meta` of atom detail `id`, once
/// checked as [`check_meta_entry`] does; a value refused is dropped
/// without recursion (it may nest deep enough to overflow the stack of a
/// recursive drop).
pub(crate) fn checked_meta_entry(
    id: impl Into<Uuid>,
    key: &str,
    value: Option<Value>,
) -> Result<Option<Value>, PersistenceError> {
    let id: Uuid = id.into();
    match check_meta_entry(id, key, value.as_ref()) {
        Ok(()) => Ok(value),
        Err(e) => {
            if let Some(value) = value {
                drop_deep(value);
            }
            Err(e)
        }
    }
}

/// Drops a value without recursion (dropping a value of 100,000 levels
/// whole would overflow the stack).
pub(crate) fn drop_deep(value: Value) {
    let mut stack = vec![value];
    while let Some(mut value) = stack.pop() {
        match &mut value {
            Value::Array(items) => stack.append(items),
            Value::Object(entries) => {
                let entries = std::mem::take(entries);
                stack.extend(entries.into_iter().map(|(_, v)| v));
            }
            _ => {}
        }
    }
}

/// Refuses the record `kind` `id` if a value it holds nests deeper than
/// [`MAX_RECORD_DEPTH`], before anything serializes it (serializing
/// recurses once per level).
pub(crate) fn check_parts<'a>(
    kind: RecordKind,
    id: impl Into<Uuid>,
    parts: impl IntoIterator<Item = (Part<'a>, &'a Value)>,
) -> Result<(), PersistenceError> {
    let id: Uuid = id.into();
    for (part, value) in parts {
        let depth = value_depth(value);
        if depth > MAX_RECORD_DEPTH {
            return Err(PersistenceError::TooDeep {
                kind,
                id,
                part: part.to_string(),
                depth,
                limit: MAX_RECORD_DEPTH,
            });
        }
    }
    Ok(())
}

/// Encodes a value of the record `kind` `id` as JSON text (pretty-printed
/// if `pretty`), once checked that the values it holds (`parts`) nest no
/// deeper than a record may, and that the document as a whole reads back.
pub(crate) fn encode<'a, T: Serialize + ?Sized>(
    kind: RecordKind,
    id: impl Into<Uuid>,
    value: &T,
    parts: impl IntoIterator<Item = (Part<'a>, &'a Value)>,
    pretty: bool,
) -> Result<Vec<u8>, PersistenceError> {
    let id: Uuid = id.into();
    check_parts(kind, id, parts)?;
    let encoded = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    let bytes = encoded.map_err(|e| PersistenceError::Encode {
        kind,
        id,
        reason: e.to_string(),
    })?;
    // What the reader will check, so that what is written reads back.
    let depth = json_depth(&bytes);
    if depth > MAX_RECORD_DEPTH + RECORD_FRAME {
        return Err(PersistenceError::TooDeep {
            kind,
            id,
            part: "record".to_owned(),
            depth,
            limit: MAX_RECORD_DEPTH + RECORD_FRAME,
        });
    }
    Ok(bytes)
}

/// Encodes a value of the record `kind` `id` as compact JSON text (see
/// [`encode`]).
pub(crate) fn encode_json<'a, T: Serialize + ?Sized>(
    kind: RecordKind,
    id: impl Into<Uuid>,
    value: &T,
    parts: impl IntoIterator<Item = (Part<'a>, &'a Value)>,
) -> Result<String, PersistenceError> {
    let id: Uuid = id.into();
    let bytes = encode(kind, id, value, parts, false)?;
    // serde_json writes UTF-8 only.
    String::from_utf8(bytes).map_err(|e| PersistenceError::Encode {
        kind,
        id,
        reason: e.to_string(),
    })
}

/// Encodes a `meta` map of the record `kind` `id` (a column of the SQL
/// backends).
pub(crate) fn encode_meta(
    kind: RecordKind,
    id: impl Into<Uuid>,
    meta: &Map<String, Value>,
) -> Result<String, PersistenceError> {
    let id: Uuid = id.into();
    encode_json(kind, id, meta, meta_parts(meta))
}

/// Parses the text id of a record of `kind`.
pub(crate) fn decode_uuid(kind: RecordKind, text: &str) -> Result<Uuid, PersistenceError> {
    Uuid::parse_str(text).map_err(|e| corrupt(kind, text, format_args!("bad id: {e}")))
}

/// A timestamp (ms since the epoch) as a signed 64-bit column value.
pub(crate) fn encode_millis(
    kind: RecordKind,
    id: impl Into<Uuid>,
    ms: u64,
) -> Result<i64, PersistenceError> {
    let id: Uuid = id.into();
    i64::try_from(ms).map_err(|_| PersistenceError::Encode {
        kind,
        id,
        reason: format!("timestamp {ms} does not fit a signed 64-bit column"),
    })
}

/// A timestamp column value back as ms since the epoch.
pub(crate) fn decode_millis(
    kind: RecordKind,
    id: impl Into<Uuid>,
    column: &str,
    value: i64,
) -> Result<u64, PersistenceError> {
    let id: Uuid = id.into();
    u64::try_from(value)
        .map_err(|_| corrupt(kind, id, format_args!("{column} {value} is negative")))
}

/// An owner epoch as a signed 64-bit column value.
pub(crate) fn encode_epoch(flow: FlowDetailId, epoch: Epoch) -> Result<i64, PersistenceError> {
    i64::try_from(epoch.get()).map_err(|_| PersistenceError::Encode {
        kind: RecordKind::FlowDetail,
        id: flow.into(),
        reason: format!("owner epoch {epoch} does not fit a signed 64-bit column"),
    })
}

/// An owner epoch column value back as an epoch.
pub(crate) fn decode_epoch(flow: impl Into<Uuid>, value: i64) -> Result<Epoch, PersistenceError> {
    let flow: Uuid = flow.into();
    u64::try_from(value).map(Epoch::new).map_err(|_| {
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
pub(crate) fn decode_atom_state(
    id: impl Into<Uuid>,
    text: &str,
) -> Result<AtomState, PersistenceError> {
    let id: Uuid = id.into();
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
pub(crate) fn decode_flow_state(
    id: impl Into<Uuid>,
    text: &str,
) -> Result<FlowState, PersistenceError> {
    let id: Uuid = id.into();
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
pub(crate) fn decode_intention(
    id: impl Into<Uuid>,
    text: &str,
) -> Result<Intention, PersistenceError> {
    let id: Uuid = id.into();
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
pub(crate) fn decode_atom_kind(
    id: impl Into<Uuid>,
    text: &str,
) -> Result<AtomKind, PersistenceError> {
    let id: Uuid = id.into();
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
    result: Option<&'a Arc<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a Failure>,
    /// Absent in bodies written before revert results were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_result: Option<&'a Arc<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_failure: Option<&'a Failure>,
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
    failure: Option<Failure>,
    #[serde(default)]
    revert_result: Option<Arc<Value>>,
    #[serde(default)]
    revert_failure: Option<Failure>,
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
        result: atom.result.as_ref(),
        failure: atom.failure(),
        revert_result: atom.revert_result(),
        revert_failure: atom.revert_failure(),
        history: atom.history(),
        version: &atom.version,
        meta: atom.meta(),
    };
    encode_json(RecordKind::AtomDetail, atom.uuid, &body, atom_parts(atom))
}

impl AtomBody {
    /// The body as it is encoded.
    fn as_ref(&self) -> AtomBodyRef<'_> {
        AtomBodyRef {
            result: self.result.as_ref(),
            failure: self.failure.as_ref(),
            revert_result: self.revert_result.as_ref(),
            revert_failure: self.revert_failure.as_ref(),
            history: &self.history,
            version: &self.version,
            meta: &self.meta,
        }
    }
}

/// The stored JSON body `bytes` of the atom detail `id` with the entry
/// `key` of its `meta` set to `value` (with `None`, removed), the rest as
/// read: what [`Backend::update_atom_meta`](crate::Backend::update_atom_meta)
/// writes back, `value` once checked by [`checked_meta_entry`]. A body
/// that does not decode is `Corrupt`, and nothing should be written.
pub(crate) fn body_with_meta_entry(
    id: impl Into<Uuid>,
    bytes: &[u8],
    key: &str,
    value: Option<&Value>,
) -> Result<String, PersistenceError> {
    let id: Uuid = id.into();
    let mut body: AtomBody = decode_json(RecordKind::AtomDetail, id, "body", bytes)?;
    set_meta_entry(&mut body.meta, key, value.cloned());
    // The values read were checked when written and the new one by the
    // caller; the document as a whole is checked as it is encoded.
    encode_json(RecordKind::AtomDetail, id, &body.as_ref(), [])
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
        uuid: id.into(),
        name: columns.name.into(),
        kind,
        state,
        intention,
        result: body.result,
        version: body.version,
        rare: RareDetail {
            failure: body.failure,
            revert_result: body.revert_result,
            revert_failure: body.revert_failure,
            history: body.history,
            meta: body.meta,
        }
        .boxed(),
    })
}

/// Decodes a JSON object column (a record's `meta`).
pub(crate) fn decode_meta(
    kind: RecordKind,
    id: impl Into<Uuid>,
    bytes: &[u8],
) -> Result<Map<String, Value>, PersistenceError> {
    let id: Uuid = id.into();
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
        atom.set_revert_result(Some(Arc::new(json!({"undone": [1, 2.5]}))));
        atom.set_failure(Some(Failure::new("Boom", "bang")));
        atom.history_mut().push(json!(3));
        atom.meta_mut().insert("progress".into(), json!(0.5));
        let body = encode_atom_body(&atom).unwrap();
        let columns = |body: &'static str| AtomColumns {
            uuid: Uuid::from(atom.uuid),
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
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(b"[]"), 1);
        assert_eq!(json_depth(br#"{"a": [1, {"b": []}], "c": {}}"#), 4);
        assert_eq!(json_depth(br#"["[[[", "\"[[", "\\", ["]]]"]]"#), 2);
        assert_eq!(json_depth(&b"[".repeat(100_000)), 100_000);
    }

    #[test]
    fn documents_are_read_up_to_the_limit_and_refused_past_it() {
        let limit = MAX_RECORD_DEPTH + RECORD_FRAME;
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        for n in [SHALLOW, SHALLOW + 1, 128, limit] {
            let value: Value =
                decode_json(RecordKind::LogBook, "b", "meta", nested(n).as_bytes()).unwrap();
            assert_eq!(taskflow_patterns::value_depth(&value), n);
        }
        let err = decode_json::<Value>(
            RecordKind::LogBook,
            "b",
            "meta",
            nested(limit + 1).as_bytes(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, PersistenceError::Corrupt { kind: RecordKind::LogBook, id, reason }
                if id == "b" && reason.contains(&format!("nested {} levels deep", limit + 1))),
            "{err}"
        );
        // Trailing garbage after a deep document is still refused.
        let mut text = nested(SHALLOW + 1);
        text.push_str(" x");
        assert!(decode_json::<Value>(RecordKind::LogBook, "b", "meta", text.as_bytes()).is_err());
    }

    #[test]
    fn what_is_encoded_reads_back() {
        let mut atom = AtomDetail::new("a", AtomKind::Retry);
        let mut deep = json!(1);
        for _ in 0..MAX_RECORD_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        atom.result = Some(Arc::new(deep.clone()));
        atom.set_revert_result(Some(Arc::new(deep.clone())));
        atom.history_mut().push(deep.clone());
        atom.history_mut()
            .record_failure("x", Failure::new("Boom", "bang"));
        atom.meta_mut().insert("m".into(), deep);
        let body = encode_atom_body(&atom).unwrap();
        assert!(json_depth(body.as_bytes()) <= MAX_RECORD_DEPTH + RECORD_FRAME);
        let columns = AtomColumns {
            uuid: Uuid::from(atom.uuid),
            name: atom.name.to_string(),
            kind: "RETRY",
            state: "PENDING",
            intention: "EXECUTE",
            body: body.as_bytes(),
        };
        assert_eq!(decode_atom(columns).unwrap(), atom);
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
