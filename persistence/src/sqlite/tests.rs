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
        let conn = lock(&backend.conn);
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

#[test]
fn one_corrupt_logbook_leaves_the_others_listed() {
    // Which table, what to set, what the error then says.
    for (table, set, reason) in [
        ("atomdetails", "state = 'EXPLODED'", "EXPLODED"),
        (
            "atomdetails",
            "body = '{\"result\": ' || replace(hex(zeroblob(100000)), '00', '[')",
            "levels deep",
        ),
        ("atomdetails", "body = X'7B7D'", "body is a blob"),
        ("flowdetails", "state = 'WEIRD'", "WEIRD"),
        ("flowdetails", "meta = substr(meta, 1, 5)", "meta"),
        ("logbooks", "meta = '{\"a\":'", "meta"),
        ("logbooks", "created_at = -5", "created_at"),
    ] {
        let store = fresh();
        let b = &store.backend;
        crate::testkit::one_corrupt_logbook_leaves_the_others_listed(b, reason, |victim| {
            let flow = victim.flow_details[0].uuid;
            let rows = match table {
                "atomdetails" => format!("flow_uuid = '{flow}'"),
                "flowdetails" => format!("uuid = '{flow}'"),
                _ => format!("uuid = '{}'", victim.uuid),
            };
            lock(&b.conn)
                .execute_batch(&format!("UPDATE {table} SET {set} WHERE {rows}"))
                .unwrap();
        });
    }
}

#[test]
fn a_row_that_cannot_be_placed_is_listed_as_an_error_after_the_others() {
    let store = fresh();
    let b = &store.backend;
    let mut healthy = crate::LogBook::new("healthy");
    healthy.created_at = 1;
    b.save_logbook(&healthy).unwrap();
    let mut book = crate::LogBook::new("b");
    book.created_at = 2;
    book.flow_details.push(crate::FlowDetail::new("f"));
    b.save_logbook(&book).unwrap();
    // A flow whose logbook id is not text: which logbook it belongs to
    // cannot be told.
    lock(&b.conn)
        .execute_batch(&format!(
            "PRAGMA foreign_keys = OFF; UPDATE flowdetails SET book_uuid = X'00' \
             WHERE uuid = '{}'; PRAGMA foreign_keys = ON",
            book.flow_details[0].uuid
        ))
        .unwrap();
    let listed = b.list_logbooks().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed[..2].iter().all(Result::is_ok), "{listed:?}");
    assert_eq!(listed[0].as_ref().unwrap(), &healthy);
    let err = listed[2].as_ref().unwrap_err();
    assert!(
        matches!(err, crate::PersistenceError::Corrupt { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("book_uuid"), "{err}");
}

#[test]
fn a_backend_error_prints_its_cause() {
    let store = fresh();
    let b = &store.backend;
    let (flow, atom) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    lock(&b.conn)
        .execute_batch("DROP TABLE atomdetails")
        .unwrap();
    let err = b
        .get_atom_detail(FlowDetailId::from(flow), AtomDetailId::from(atom))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("sqlite backend: preparing the atom query: no such table: atomdetails"),
        "{text}"
    );
    let source = std::error::Error::source(&err).expect("the SQLite error");
    assert!(source.is::<rusqlite::Error>(), "{source:?}");
}

#[test]
fn meta_updates_through_one_handle_never_undo_state_updates_through_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.db");
    let states = SqliteBackend::open(&path).unwrap();
    let metas = SqliteBackend::open(&path).unwrap();
    crate::testkit::state_and_meta_updates_race(&states, &metas);
}

#[test]
fn a_meta_update_of_a_corrupt_body_is_corrupt_and_writes_nothing() {
    let store = fresh();
    let b = &store.backend;
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let atom = AtomDetail::new("a", taskflow_patterns::AtomKind::Task);
    flow.atom_details.push(atom.clone());
    book.flow_details.push(flow.clone());
    b.save_logbook(&book).unwrap();
    let broken = "{\"version\": ";
    lock(&b.conn)
        .execute("UPDATE atomdetails SET body = ?1", [broken])
        .unwrap();
    let err = b
        .update_atom_meta(
            flow.uuid,
            atom.uuid,
            "progress",
            Some(0.5.into()),
            Epoch::ZERO,
        )
        .unwrap_err();
    assert!(
        matches!(&err, PersistenceError::Corrupt { kind: RecordKind::AtomDetail, id, reason }
            if *id == atom.uuid.to_string() && reason.contains("body")),
        "{err}"
    );
    let body: String = lock(&b.conn)
        .query_row("SELECT body FROM atomdetails", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body, broken);
}

/// A batch of atom writes is one transaction: when a write in it fails
/// (here a state change of an atom that does not exist), the writes before
/// it are rolled back too.
#[test]
fn a_batch_of_atom_writes_is_all_or_nothing() {
    let b = fresh();
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let atom = AtomDetail::new("a", taskflow_patterns::AtomKind::Task);
    flow.atom_details.push(atom.clone());
    book.flow_details.push(flow.clone());
    b.save_logbook(&book).unwrap();
    let mut done = atom.clone();
    done.state = AtomState::Success;
    done.result = Some(std::sync::Arc::new(serde_json::json!(1)));
    let missing = AtomDetailId::new();
    let err = b
        .save_atom_writes(
            flow.uuid,
            &[
                AtomWrite::Detail(&done),
                AtomWrite::State {
                    atom: missing,
                    state: AtomState::Running,
                    intention: Intention::Execute,
                },
            ],
            Epoch::ZERO,
        )
        .unwrap_err();
    assert!(
        matches!(err, PersistenceError::NotFound { kind: RecordKind::AtomDetail, id } if id == Uuid::from(missing)),
        "{err}"
    );
    assert_eq!(b.get_atom_detail(flow.uuid, atom.uuid).unwrap(), atom);
}

/// A file-backed backend leaves WAL checkpoints to its own thread: its
/// writer's connection never checkpoints (`wal_autocheckpoint` 0), yet the
/// pages its commits append to the log reach the database file while it
/// goes on writing, and reopening finds every record.
#[test]
fn the_write_ahead_log_is_copied_into_the_file_off_the_writers_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let b = SqliteBackend::open_with(&path, Durability::Normal).unwrap();
    let auto: i64 = lock(&b.conn)
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(auto, 0, "the writer's connection checkpoints itself");
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    for i in 0..200 {
        flow.atom_details.push(AtomDetail::new(
            format!("a{i}"),
            taskflow_patterns::AtomKind::Task,
        ));
    }
    book.flow_details.push(flow.clone());
    b.save_logbook(&book).unwrap();
    let opened = std::fs::metadata(&path).unwrap().len();
    // Enough commits to wake the thread several times, each growing the
    // records (a result of 2 KiB per atom), so a checkpoint grows the file.
    let big = serde_json::json!("x".repeat(2048));
    for round in 0..(3 * checkpointer::WAKE_EVERY as usize) {
        let mut done = flow.atom_details[round % 200].clone();
        done.state = AtomState::Success;
        done.result = Some(std::sync::Arc::new(serde_json::json!([round, big])));
        b.save_atom_writes(flow.uuid, &[AtomWrite::Detail(&done)], Epoch::ZERO)
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&path).unwrap().len() <= opened {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint reached {} (still {opened} bytes)",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(b);
    let again = SqliteBackend::open(&path).unwrap();
    let read = again.get_flow_detail(flow.uuid).unwrap();
    assert!(read
        .atom_details
        .iter()
        .all(|a| a.state == AtomState::Success));
}
