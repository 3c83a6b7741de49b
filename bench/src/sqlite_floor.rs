//! W4's floor on SQLite: the least a checkpoint per atom costs in a SQLite
//! file, the bound the SQLite backend approaches (shared/BENCHMARKS.md).
//!
//! Bare rusqlite on a file opened as the backend opens it (WAL, the same
//! `synchronous`), one table with the backend's keys (a row per atom, unique
//! on flow and atom ids as text), every atom's row inserted first (as an
//! engine's `prepare` saves every atom detail), then per atom what the
//! engine's serial checkpoints write: one transaction that sets the atom's
//! state and a small result body and its successor's state, and commits.
//! Cached statements, no epoch check, no JSON encoding, no engine, and no
//! WAL checkpoint at all (the log only grows), so nothing here is work the
//! backend could skip except its fencing and its records' encoding.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::params;
use taskflow::persistence::{open_sqlite, Durability};

use crate::BenchError;

/// The table shows this as the floor's executor on W4's SQLite rows.
pub const SQLITE_FLOOR: &str = "floor (bare SQLite)";

/// Writes W4's checkpoints for `n` atoms into a new database at `path`
/// with `durability`, as described in the module doc; the time of the
/// inserts and the `n` commits.
pub fn checkpoints(path: &Path, n: usize, durability: Durability) -> Result<Duration, BenchError> {
    let err =
        |e: rusqlite::Error| BenchError::Setup(format!("bare SQLite at {}: {e}", path.display()));
    let conn = open_sqlite(path, durability)?;
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE atoms (seq INTEGER PRIMARY KEY, flow TEXT NOT NULL, uuid TEXT NOT NULL,
             state TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (flow, uuid));",
    )
    .map_err(err)?;
    let flow = uuid::Uuid::new_v4().to_string();
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let start = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    {
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO atoms (flow, uuid, state, body) VALUES (?1, ?2, 'PENDING', '{}')",
            )
            .map_err(err)?;
        for id in &ids {
            insert.execute(params![flow, id]).map_err(err)?;
        }
    }
    conn.execute_batch("COMMIT").map_err(err)?;
    let mut begin = conn.prepare("BEGIN IMMEDIATE").map_err(err)?;
    let mut done = conn
        .prepare("UPDATE atoms SET state = 'SUCCESS', body = ?3 WHERE flow = ?1 AND uuid = ?2")
        .map_err(err)?;
    let mut running = conn
        .prepare("UPDATE atoms SET state = 'RUNNING' WHERE flow = ?1 AND uuid = ?2")
        .map_err(err)?;
    let mut commit = conn.prepare("COMMIT").map_err(err)?;
    for (i, id) in ids.iter().enumerate() {
        begin.execute([]).map_err(err)?;
        let body = format!("{{\"result\":{i}}}");
        done.execute(params![flow, id, body]).map_err(err)?;
        if let Some(next) = ids.get(i + 1) {
            running.execute(params![flow, next]).map_err(err)?;
        }
        commit.execute([]).map_err(err)?;
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_atom_once_per_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.db");
        checkpoints(&path, 50, Durability::Normal).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (done, last): (i64, String) = conn
            .query_row(
                "SELECT count(*), max(body) FROM atoms WHERE state = 'SUCCESS'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(done, 50);
        assert_eq!(last, "{\"result\":9}");
    }
}
