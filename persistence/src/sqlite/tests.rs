use rusqlite::Connection;

use super::*;
use crate::testkit::WithGuard;

fn fresh() -> WithGuard<SqliteBackend, tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path().join("flows.db")).unwrap();
    WithGuard {
        backend,
        guard: dir,
    }
}

mod file {
    crate::backend_conformance!(super::fresh());
}

mod memory {
    crate::backend_conformance!(super::SqliteBackend::in_memory().unwrap());
}

mod normal_durability {
    crate::backend_conformance!({
        let dir = tempfile::tempdir().unwrap();
        let backend =
            super::SqliteBackend::open_with(dir.path().join("n.db"), super::Durability::Normal)
                .unwrap();
        crate::testkit::WithGuard {
            backend,
            guard: dir,
        }
    });
}

#[test]
fn opens_in_wal_mode_with_the_durability_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (durability, level) in [(Durability::Full, 2), (Durability::Normal, 1)] {
        let backend = SqliteBackend::open_with(dir.path().join("d.db"), durability).unwrap();
        let conn = backend.lock();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, level, "{durability:?}");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }
}

#[test]
fn records_its_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    drop(SqliteBackend::open(&path).unwrap());
    // Opening again is a no-op for the schema.
    drop(SqliteBackend::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let v: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, SqliteBackend::SCHEMA_VERSION.to_string());
}
