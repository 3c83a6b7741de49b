//! Reading rows of the SQLite backend into records: each column checked
//! (a value of the wrong type, bad UTF-8 or a bad id is
//! [`PersistenceError::Corrupt`] naming the record, never a panic), and the
//! rows of one query grouped under their parents, so that a corrupt record
//! spoils its own flow or logbook and not the others.

use std::fmt;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use uuid::Uuid;

use super::db_err;
use crate::codec::{self, AtomColumns};
use crate::grouped::Grouped;
use crate::{AtomDetail, FlowDetail, LogBook, PersistenceError, RecordKind};

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

/// A text column of a row of record `kind` `id`: anything else is corrupt.
pub(super) fn text<'r>(
    row: &'r Row<'_>,
    i: usize,
    kind: RecordKind,
    id: &dyn fmt::Display,
    column: &str,
) -> Result<&'r str, PersistenceError> {
    std::str::from_utf8(bytes(row, i, kind, id, column)?)
        .map_err(|e| codec::corrupt(kind, id, format_args!("{column} is not UTF-8: {e}")))
}

/// The bytes of a text column (JSON is parsed from them directly).
pub(super) fn bytes<'r>(
    row: &'r Row<'_>,
    i: usize,
    kind: RecordKind,
    id: &dyn fmt::Display,
    column: &str,
) -> Result<&'r [u8], PersistenceError> {
    match row.get_ref(i) {
        Ok(ValueRef::Text(b)) => Ok(b),
        Ok(other) => Err(codec::corrupt(
            kind,
            id,
            format_args!("{column} is {}, not text", type_name(other)),
        )),
        Err(e) => Err(db_err(e, format_args!("reading {column} of {kind} {id}"))),
    }
}

fn integer(
    row: &Row<'_>,
    i: usize,
    kind: RecordKind,
    id: Uuid,
    column: &str,
) -> Result<i64, PersistenceError> {
    match row.get_ref(i) {
        Ok(ValueRef::Integer(v)) => Ok(v),
        Ok(other) => Err(codec::corrupt(
            kind,
            id,
            format_args!("{column} is {}, not an integer", type_name(other)),
        )),
        Err(e) => Err(db_err(e, format_args!("reading {column} of {kind} {id}"))),
    }
}

/// The id column (0) of a row of record `kind`.
fn row_id(row: &Row<'_>, i: usize, kind: RecordKind) -> Result<Uuid, PersistenceError> {
    let raw = text(row, i, kind, &"(unreadable id)", "uuid")?;
    codec::decode_uuid(kind, raw)
}

pub(super) const BOOK_COLUMNS: &str = "uuid, name, created_at, updated_at, meta";

/// A logbook header (no flows) from columns [`BOOK_COLUMNS`].
pub(super) fn decode_book(row: &Row<'_>) -> Result<LogBook, PersistenceError> {
    let kind = RecordKind::LogBook;
    let id = row_id(row, 0, kind)?;
    Ok(LogBook {
        uuid: id.into(),
        name: text(row, 1, kind, &id, "name")?.to_owned(),
        created_at: codec::decode_millis(
            kind,
            id,
            "created_at",
            integer(row, 2, kind, id, "created_at")?,
        )?,
        updated_at: codec::decode_millis(
            kind,
            id,
            "updated_at",
            integer(row, 3, kind, id, "updated_at")?,
        )?,
        meta: codec::decode_meta(kind, id, bytes(row, 4, kind, &id, "meta")?)?,
        flow_details: Vec::new(),
    })
}

/// A flow detail (no atoms) from columns `uuid, name, state, meta,
/// owner_epoch` at `at`.
fn decode_flow(row: &Row<'_>, at: usize) -> Result<FlowDetail, PersistenceError> {
    let kind = RecordKind::FlowDetail;
    let id = row_id(row, at, kind)?;
    let stored = codec::decode_meta(kind, id, bytes(row, at + 3, kind, &id, "meta")?)?;
    let (meta, run) = FlowDetail::split_stored_meta(id.into(), stored)?;
    Ok(FlowDetail {
        uuid: id.into(),
        name: text(row, at + 1, kind, &id, "name")?.to_owned(),
        state: codec::decode_flow_state(id, text(row, at + 2, kind, &id, "state")?)?,
        meta,
        run,
        atom_details: Vec::new(),
        owner_epoch: codec::decode_epoch(id, integer(row, at + 4, kind, id, "owner_epoch")?)?,
    })
}

pub(super) const ATOM_COLUMNS: &str = "uuid, name, kind, state, intention, body";

/// An atom detail from columns [`ATOM_COLUMNS`] at `at`.
pub(super) fn decode_atom(row: &Row<'_>, at: usize) -> Result<AtomDetail, PersistenceError> {
    let kind = RecordKind::AtomDetail;
    let id = row_id(row, at, kind)?;
    codec::decode_atom(AtomColumns {
        uuid: id,
        name: text(row, at + 1, kind, &id, "name")?.to_owned(),
        kind: text(row, at + 2, kind, &id, "kind")?,
        state: text(row, at + 3, kind, &id, "state")?,
        intention: text(row, at + 4, kind, &id, "intention")?,
        body: bytes(row, at + 5, kind, &id, "body")?,
    })
}

/// The raw text of a parent-id column, used only to group children.
fn parent_key(
    row: &Row<'_>,
    i: usize,
    kind: RecordKind,
    column: &str,
) -> Result<String, PersistenceError> {
    Ok(text(
        row,
        i,
        kind,
        &format_args!("(row with bad {column})"),
        column,
    )?
    .to_owned())
}

/// The atoms of the flows selected by `sql` (first column the flow id, then
/// [`ATOM_COLUMNS`]), grouped by the text of the flow id, in saved order.
pub(super) fn atoms_by_flow(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Grouped<String, AtomDetail>, PersistenceError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| db_err(e, "preparing an atom query"))?;
    let mut rows = stmt
        .query(params)
        .map_err(|e| db_err(e, "reading atom details"))?;
    let mut atoms = Grouped::new();
    while let Some(row) = rows.next().map_err(|e| db_err(e, "reading atom details"))? {
        match parent_key(row, 0, RecordKind::AtomDetail, "flow_uuid") {
            Ok(flow) => atoms.push(flow, decode_atom(row, 1)),
            Err(e) => atoms.orphans.push(e),
        }
    }
    Ok(atoms)
}

/// Flow details (with atoms) of the flows selected by `sql` (first column
/// the logbook id, then `uuid, name, state, meta, owner_epoch`), grouped by
/// logbook id.
pub(super) fn flows_by_book(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut atoms: Grouped<String, AtomDetail>,
) -> Result<Grouped<String, FlowDetail>, PersistenceError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| db_err(e, "preparing a flow query"))?;
    let mut rows = stmt
        .query(params)
        .map_err(|e| db_err(e, "reading flow details"))?;
    let mut flows = Grouped::new();
    flows.orphans = std::mem::take(&mut atoms.orphans);
    while let Some(row) = rows.next().map_err(|e| db_err(e, "reading flow details"))? {
        let book = match parent_key(row, 0, RecordKind::FlowDetail, "book_uuid") {
            Ok(book) => book,
            Err(e) => {
                flows.orphans.push(e);
                continue;
            }
        };
        let flow = decode_flow(row, 1).and_then(|mut flow| {
            let key = text(row, 1, RecordKind::FlowDetail, &flow.uuid, "uuid")?;
            flow.atom_details = atoms.remove(key)?;
            Ok(flow)
        });
        flows.push(book, flow);
    }
    Ok(flows)
}
