//! Reading rows of the PostgreSQL backend into records: each column
//! checked (a value of the wrong type is [`PersistenceError::Corrupt`]
//! naming the record, never a panic), and the rows of one query grouped
//! under their parents, so that a corrupt record spoils its own flow or
//! logbook and not the others.

use std::fmt;

use postgres::types::FromSql;
use postgres::Row;
use uuid::Uuid;

use crate::codec::{self, AtomColumns};
use crate::grouped::Grouped;
use crate::{
    AtomDetail, FlowDetail, FlowDetailId, LogBook, LogBookId, PersistenceError, RecordKind,
};

/// Column `i` of a row of record `kind` `id`; a value of the wrong type is
/// corrupt.
pub(super) fn col<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    kind: RecordKind,
    id: &dyn fmt::Display,
    column: &str,
) -> Result<T, PersistenceError> {
    row.try_get(i)
        .map_err(|e| codec::corrupt(kind, id, format_args!("{column}: {e}")))
}

/// The id column `i` of a row of record `kind`.
fn row_id(row: &Row, i: usize, kind: RecordKind) -> Result<Uuid, PersistenceError> {
    col(row, i, kind, &"(unreadable id)", "uuid")
}

/// A logbook header (no flows) from `uuid, name, created_at, updated_at, meta`.
pub(super) fn decode_book(row: &Row) -> Result<LogBook, PersistenceError> {
    let kind = RecordKind::LogBook;
    let id = row_id(row, 0, kind)?;
    let created: i64 = col(row, 2, kind, &id, "created_at")?;
    let updated: i64 = col(row, 3, kind, &id, "updated_at")?;
    let meta: &str = col(row, 4, kind, &id, "meta")?;
    Ok(LogBook {
        uuid: LogBookId::from(id),
        name: col(row, 1, kind, &id, "name")?,
        created_at: codec::decode_millis(kind, id, "created_at", created)?,
        updated_at: codec::decode_millis(kind, id, "updated_at", updated)?,
        meta: codec::decode_meta(kind, id, meta.as_bytes())?,
        flow_details: Vec::new(),
    })
}

/// A flow detail (no atoms) from `book_uuid, uuid, name, state, meta,
/// owner_epoch`, with the id of its logbook (or the error reading that id).
pub(super) fn decode_flow(
    row: &Row,
) -> Result<(Uuid, Result<FlowDetail, PersistenceError>), PersistenceError> {
    let kind = RecordKind::FlowDetail;
    let id = row_id(row, 1, kind)?;
    let book: Uuid = col(row, 0, kind, &id, "book_uuid")?;
    let flow = (|| {
        let state: &str = col(row, 3, kind, &id, "state")?;
        let meta: &str = col(row, 4, kind, &id, "meta")?;
        let epoch: i64 = col(row, 5, kind, &id, "owner_epoch")?;
        let (meta, run) = FlowDetail::split_stored_meta(
            FlowDetailId::from(id),
            codec::decode_meta(kind, id, meta.as_bytes())?,
        )?;
        Ok(FlowDetail {
            uuid: FlowDetailId::from(id),
            name: col(row, 2, kind, &id, "name")?,
            state: codec::decode_flow_state(id, state)?,
            meta,
            run,
            atom_details: Vec::new(),
            owner_epoch: codec::decode_epoch(id, epoch)?,
        })
    })();
    Ok((book, flow))
}

/// An atom detail from `flow_uuid, uuid, name, kind, state, intention,
/// body`, with the id of its flow (or the error reading that id).
pub(super) fn decode_atom(
    row: &Row,
) -> Result<(Uuid, Result<AtomDetail, PersistenceError>), PersistenceError> {
    let kind = RecordKind::AtomDetail;
    let id = row_id(row, 1, kind)?;
    let flow: Uuid = col(row, 0, kind, &id, "flow_uuid")?;
    let atom = col::<&str>(row, 6, kind, &id, "body").and_then(|body| {
        codec::decode_atom(AtomColumns {
            uuid: id,
            name: col(row, 2, kind, &id, "name")?,
            kind: col(row, 3, kind, &id, "kind")?,
            state: col(row, 4, kind, &id, "state")?,
            intention: col(row, 5, kind, &id, "intention")?,
            body: body.as_bytes(),
        })
    });
    Ok((flow, atom))
}

/// Atoms of `rows`, grouped by flow id, in row order.
pub(super) fn atoms_by_flow(rows: &[Row]) -> Grouped<Uuid, AtomDetail> {
    let mut atoms = Grouped::new();
    for row in rows {
        match decode_atom(row) {
            Ok((flow, atom)) => atoms.push(flow, atom),
            Err(e) => atoms.orphans.push(e),
        }
    }
    atoms
}

/// Flows of `rows` with their atoms, grouped by logbook id, in row order.
pub(super) fn flows_by_book(
    rows: &[Row],
    mut atoms: Grouped<Uuid, AtomDetail>,
) -> Grouped<Uuid, FlowDetail> {
    let mut flows = Grouped::new();
    flows.orphans = std::mem::take(&mut atoms.orphans);
    for row in rows {
        match decode_flow(row) {
            Ok((book, flow)) => {
                let flow = flow.and_then(|mut flow| {
                    flow.atom_details = atoms.remove(&flow.uuid.as_uuid())?;
                    Ok(flow)
                });
                flows.push(book, flow);
            }
            Err(e) => flows.orphans.push(e),
        }
    }
    flows
}
