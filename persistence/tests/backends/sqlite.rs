//! The SQLite backend: several handles and processes on one file, corrupt
//! rows, schema versions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use taskflow_patterns::{AtomKind, AtomState, Intention};
use taskflow_persistence::{
    AtomDetail, Backend, Durability, FlowDetail, LogBook, PersistenceError, RecordKind,
    SqliteBackend,
};

use crate::support::{assert_corrupt, listed_error, one_atom_book};
use taskflow_persistence::Epoch;

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.db");
    (dir, path)
}

/// Runs raw SQL on the file, as a person or a bug might.
fn raw(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

#[test]
fn two_handles_on_one_file_see_each_others_writes() {
    let (_dir, path) = temp_db();
    let a = SqliteBackend::open(&path).unwrap();
    let b = SqliteBackend::open_with(&path, Durability::Normal).unwrap();
    let book = LogBook::new("shared");
    a.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    let flow = FlowDetail::new("f");
    b.save_flow_detail(book.uuid, &flow).unwrap();
    assert_eq!(a.get_flow_detail(flow.uuid).unwrap(), flow);

    // Both write into the same flow at once, each from its own threads.
    std::thread::scope(|s| {
        for (h, backend) in [&a, &b].into_iter().enumerate() {
            for t in 0..2 {
                s.spawn(move || {
                    for i in 0..50 {
                        let mut atom = AtomDetail::new(format!("h{h}-t{t}-{i}"), AtomKind::Task);
                        backend
                            .save_atom_detail(flow.uuid, &atom, Epoch::ZERO)
                            .unwrap();
                        backend
                            .update_atom_state(
                                flow.uuid,
                                atom.uuid,
                                AtomState::Running,
                                Intention::Execute,
                                Epoch::ZERO,
                            )
                            .unwrap();
                        atom.state = AtomState::Success;
                        backend
                            .save_atom_detail(flow.uuid, &atom, Epoch::ZERO)
                            .unwrap();
                    }
                });
            }
        }
    });
    for backend in [&a, &b] {
        let got = backend.get_flow_detail(flow.uuid).unwrap();
        assert_eq!(got.atom_details.len(), 200);
        assert!(got
            .atom_details
            .iter()
            .all(|x| x.state == AtomState::Success));
    }
    b.destroy_logbook(book.uuid).unwrap();
    assert!(a.get_logbook(book.uuid).unwrap_err().is_not_found());
}

#[test]
fn takes_through_two_handles_on_one_file_get_distinct_epochs() {
    let (_dir, path) = temp_db();
    let a = SqliteBackend::open(&path).unwrap();
    let b = SqliteBackend::open(&path).unwrap();
    let (book, flow, atom) = one_atom_book();
    a.save_logbook(&book).unwrap();
    let mut taken: Vec<u64> = std::thread::scope(|s| {
        let takers: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .map(|backend| {
                s.spawn(move || {
                    (0..25)
                        .map(|_| backend.take_flow_detail(flow.uuid).unwrap())
                        .map(Epoch::get)
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        takers.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    taken.sort_unstable();
    assert_eq!(taken, (1..=100).collect::<Vec<u64>>());
    let err = b
        .update_atom_state(
            flow.uuid,
            atom.uuid,
            AtomState::Running,
            Intention::Execute,
            Epoch::new(99),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            PersistenceError::Fenced { held, presented, .. } if held == 100 && presented == 99
        ),
        "{err}"
    );
}

/// The checkpoints of a flow (batches of atom writes) along its run, by
/// one handle at one epoch, until the flow is taken over from elsewhere:
/// by a second handle on the file, or by a raw connection (another
/// process). The batch after it at the old epoch is fenced, however many
/// batches at that epoch landed before.
#[test]
fn a_takeover_by_another_connection_fences_the_next_batch() {
    use taskflow_persistence::AtomWrite;
    for by_raw_sql in [false, true] {
        let (_dir, path) = temp_db();
        let a = SqliteBackend::open_with(&path, Durability::Normal).unwrap();
        let b = SqliteBackend::open(&path).unwrap();
        let (book, flow, atom) = one_atom_book();
        a.save_logbook(&book).unwrap();
        let epoch = a.take_flow_detail(flow.uuid).unwrap();
        let mut detail = atom.clone();
        fn batch(detail: &AtomDetail) -> [AtomWrite<'_>; 2] {
            [
                AtomWrite::Detail(detail),
                AtomWrite::State {
                    atom: detail.uuid,
                    state: AtomState::Running,
                    intention: Intention::Execute,
                },
            ]
        }
        for _ in 0..3 {
            a.save_atom_writes(flow.uuid, &batch(&detail), epoch)
                .unwrap();
        }
        let held = if by_raw_sql {
            raw(
                &path,
                &format!(
                    "UPDATE flowdetails SET owner_epoch = owner_epoch + 5 WHERE uuid = '{}'",
                    flow.uuid
                ),
            );
            epoch.get() + 5
        } else {
            b.take_flow_detail(flow.uuid).unwrap().get()
        };
        detail.state = AtomState::Success;
        let err = a
            .save_atom_writes(flow.uuid, &batch(&detail), epoch)
            .unwrap_err();
        assert!(
            matches!(
                err,
                PersistenceError::Fenced { held: h, presented, .. }
                    if h == held && presented == epoch
            ),
            "by raw SQL {by_raw_sql}: {err}"
        );
        assert_eq!(
            b.get_atom_detail(flow.uuid, atom.uuid).unwrap().state,
            AtomState::Running,
            "the fenced batch changed nothing"
        );
    }
}

#[test]
fn a_take_at_the_largest_epoch_is_refused_and_changes_nothing() {
    let (_dir, path) = temp_db();
    let backend = SqliteBackend::open(&path).unwrap();
    let (book, flow, _) = one_atom_book();
    backend.save_logbook(&book).unwrap();
    raw(
        &path,
        &format!("UPDATE flowdetails SET owner_epoch = {}", i64::MAX),
    );
    let err = backend.take_flow_detail(flow.uuid).unwrap_err();
    assert!(
        matches!(&err, PersistenceError::Encode { kind: RecordKind::FlowDetail, id, .. }
            if *id == flow.uuid),
        "{err}"
    );
    assert!(err.to_string().contains(&i64::MAX.to_string()), "{err}");
    assert_eq!(
        backend.get_flow_detail(flow.uuid).unwrap().owner_epoch,
        i64::MAX.unsigned_abs()
    );
}

const CHILD_DB: &str = "TASKFLOW_TEST_CHILD_DB";
const CHILD_FLOW: &str = "TASKFLOW_TEST_CHILD_FLOW";
const CHILD_NAME: &str = "TASKFLOW_TEST_CHILD_NAME";

/// The writer run in child processes by `processes_share_one_file` (does
/// nothing when run directly).
#[test]
#[ignore = "run by processes_share_one_file in a child process"]
fn child_process_writer() {
    let (Ok(path), Ok(flow), Ok(name)) = (
        std::env::var(CHILD_DB),
        std::env::var(CHILD_FLOW),
        std::env::var(CHILD_NAME),
    ) else {
        return;
    };
    let flow = flow.parse().unwrap();
    let backend = SqliteBackend::open(path).unwrap();
    for i in 0..50 {
        let mut atom = AtomDetail::new(format!("{name}-{i}"), AtomKind::Task);
        backend.save_atom_detail(flow, &atom, Epoch::ZERO).unwrap();
        atom.state = AtomState::Success;
        backend.save_atom_detail(flow, &atom, Epoch::ZERO).unwrap();
    }
}

#[test]
fn processes_share_one_file() {
    let (_dir, path) = temp_db();
    let parent = SqliteBackend::open(&path).unwrap();
    let book = LogBook::new("shared");
    let flow = FlowDetail::new("f");
    parent.save_logbook(&book).unwrap();
    parent.save_flow_detail(book.uuid, &flow).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|c| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "sqlite::child_process_writer",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_DB, &path)
                .env(CHILD_FLOW, flow.uuid.to_string())
                .env(CHILD_NAME, format!("child{c}"))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for i in 0..50 {
        let atom = AtomDetail::new(format!("parent-{i}"), AtomKind::Task);
        parent
            .save_atom_detail(flow.uuid, &atom, Epoch::ZERO)
            .unwrap();
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let got = parent.get_flow_detail(flow.uuid).unwrap();
    assert_eq!(got.atom_details.len(), 150);
    for c in 0..2 {
        let prefix = format!("child{c}-");
        let theirs: Vec<_> = got
            .atom_details
            .iter()
            .filter(|a| a.name.starts_with(&prefix))
            .collect();
        assert_eq!(theirs.len(), 50);
        assert!(theirs.iter().all(|a| a.state == AtomState::Success));
    }
}

#[test]
fn schema_too_new_is_refused_and_left_alone() {
    let (_dir, path) = temp_db();
    drop(SqliteBackend::open(&path).unwrap());
    raw(
        &path,
        "UPDATE meta SET value = '7' WHERE key = 'schema_version'",
    );
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            PersistenceError::SchemaTooNew {
                backend: "sqlite",
                found: 7,
                supported: SqliteBackend::SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("version 7")
            && text.contains(&format!("({})", SqliteBackend::SCHEMA_VERSION)),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    let version: String = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "7");
}

#[test]
fn lost_or_garbled_schema_version_is_refused() {
    let (_dir, path) = temp_db();
    drop(SqliteBackend::open(&path).unwrap());
    raw(
        &path,
        "UPDATE meta SET value = 'one' WHERE key = 'schema_version'",
    );
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(err.to_string().contains("\"one\""), "{err}");
    raw(&path, "DELETE FROM meta");
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(err.to_string().contains("no schema_version"), "{err}");
}

#[test]
fn not_a_database_is_a_backend_error() {
    let (_dir, path) = temp_db();
    std::fs::write(
        &path,
        b"this is not a database, just some text that is long enough",
    )
    .unwrap();
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            PersistenceError::Backend {
                backend: "sqlite",
                ..
            }
        ),
        "{err}"
    );
}

/// A store with one record of each kind, and the raw file beside it.
fn corruptible() -> (
    tempfile::TempDir,
    PathBuf,
    SqliteBackend,
    LogBook,
    FlowDetail,
    AtomDetail,
) {
    let (dir, path) = temp_db();
    let backend = SqliteBackend::open(&path).unwrap();
    let (book, flow, atom) = one_atom_book();
    backend.save_logbook(&book).unwrap();
    (dir, path, backend, book, flow, atom)
}

/// Every read that reaches the atom fails naming it.
fn atom_reads_fail(
    b: &SqliteBackend,
    book: &LogBook,
    flow: &FlowDetail,
    atom: &AtomDetail,
    reason: &str,
) {
    let id = atom.uuid.to_string();
    let kind = RecordKind::AtomDetail;
    assert_corrupt(
        b.get_atom_detail(flow.uuid, atom.uuid).unwrap_err(),
        kind,
        &id,
        reason,
    );
    assert_corrupt(b.get_flow_detail(flow.uuid).unwrap_err(), kind, &id, reason);
    assert_corrupt(b.get_logbook(book.uuid).unwrap_err(), kind, &id, reason);
    assert_corrupt(listed_error(b), kind, &id, reason);
}

#[test]
fn unknown_atom_state_is_corrupt_naming_the_atom() {
    let (_dir, path, b, book, flow, atom) = corruptible();
    raw(&path, "UPDATE atomdetails SET state = 'EXPLODED'");
    atom_reads_fail(&b, &book, &flow, &atom, "EXPLODED");
    // The state can still be repaired through the API.
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Success,
        Intention::Execute,
        Epoch::ZERO,
    )
    .unwrap();
    assert_eq!(b.get_atom_detail(flow.uuid, atom.uuid).unwrap(), atom);
}

#[test]
fn unknown_intention_and_kind_are_corrupt() {
    let (_dir, path, b, book, flow, atom) = corruptible();
    raw(&path, "UPDATE atomdetails SET intention = 'SOMEDAY'");
    atom_reads_fail(&b, &book, &flow, &atom, "SOMEDAY");
    raw(
        &path,
        "UPDATE atomdetails SET intention = 'EXECUTE', kind = 'WIDGET'",
    );
    atom_reads_fail(&b, &book, &flow, &atom, "WIDGET");
}

#[test]
fn truncated_atom_body_is_corrupt() {
    let (_dir, path, b, book, flow, atom) = corruptible();
    raw(
        &path,
        "UPDATE atomdetails SET body = substr(body, 1, length(body) / 2)",
    );
    atom_reads_fail(&b, &book, &flow, &atom, "body");
}

#[test]
fn body_of_the_wrong_shape_is_corrupt() {
    let (_dir, path, b, book, flow, atom) = corruptible();
    raw(&path, "UPDATE atomdetails SET body = '{\"resultt\": 1}'");
    atom_reads_fail(&b, &book, &flow, &atom, "resultt");
    raw(&path, "UPDATE atomdetails SET body = '[1, 2]'");
    atom_reads_fail(&b, &book, &flow, &atom, "body");
}

#[test]
fn wrong_column_types_are_corrupt() {
    let (_dir, path, b, book, flow, atom) = corruptible();
    raw(&path, "UPDATE atomdetails SET name = X'FF00'");
    atom_reads_fail(&b, &book, &flow, &atom, "name is a blob");
    raw(&path, "UPDATE atomdetails SET name = 'a', body = X'7B7D'");
    atom_reads_fail(&b, &book, &flow, &atom, "body is a blob");
}

#[test]
fn unknown_flow_state_is_corrupt_naming_the_flow() {
    let (_dir, path, b, book, flow, _) = corruptible();
    raw(&path, "UPDATE flowdetails SET state = 'WEIRD'");
    let id = flow.uuid.to_string();
    let kind = RecordKind::FlowDetail;
    assert_corrupt(
        b.get_flow_detail(flow.uuid).unwrap_err(),
        kind,
        &id,
        "WEIRD",
    );
    assert_corrupt(b.get_logbook(book.uuid).unwrap_err(), kind, &id, "WEIRD");
    assert_corrupt(listed_error(&b), kind, &id, "WEIRD");
}

#[test]
fn corrupt_logbook_columns_name_the_logbook() {
    let (_dir, path, b, book, _, _) = corruptible();
    let id = book.uuid.to_string();
    let kind = RecordKind::LogBook;
    raw(&path, "UPDATE logbooks SET meta = '{\"owner\": \"tes'");
    assert_corrupt(b.get_logbook(book.uuid).unwrap_err(), kind, &id, "meta");
    assert_corrupt(listed_error(&b), kind, &id, "meta");
    raw(&path, "UPDATE logbooks SET meta = '{}', created_at = -5");
    assert_corrupt(
        b.get_logbook(book.uuid).unwrap_err(),
        kind,
        &id,
        "created_at -5",
    );
    raw(&path, "UPDATE logbooks SET created_at = 'yesterday'");
    assert_corrupt(
        b.get_logbook(book.uuid).unwrap_err(),
        kind,
        &id,
        "created_at is text",
    );
}

#[test]
fn malformed_ids_are_corrupt_naming_the_raw_id() {
    let (_dir, path, b, _, _, _) = corruptible();
    // With foreign keys off the flows are orphaned.
    raw(
        &path,
        "PRAGMA foreign_keys = OFF; UPDATE logbooks SET uuid = 'not-a-uuid'",
    );
    assert_corrupt(
        listed_error(&b),
        RecordKind::LogBook,
        "not-a-uuid",
        "bad id",
    );
}

#[test]
fn corrupt_records_do_not_hide_healthy_ones() {
    let (_dir, path, b, _, _, _) = corruptible();
    let healthy = LogBook::new("healthy");
    b.save_logbook(&healthy).unwrap();
    raw(&path, "UPDATE atomdetails SET state = 'EXPLODED'");
    assert_eq!(b.get_logbook(healthy.uuid).unwrap(), healthy);
}

#[test]
fn a_record_nested_100_000_levels_deep_is_corrupt_not_an_abort() {
    let (_dir, path, b, book, flow, atom) = corruptible();
    // 100,000 `[`: hex(zeroblob(n)) is 2n zeros.
    let brackets = "replace(hex(zeroblob(100000)), '00', '[')";
    raw(
        &path,
        &format!("UPDATE atomdetails SET body = '{{\"result\": ' || {brackets}"),
    );
    atom_reads_fail(&b, &book, &flow, &atom, "nested 100001 levels deep");
    raw(
        &path,
        &format!("DELETE FROM atomdetails; UPDATE flowdetails SET meta = {brackets}"),
    );
    assert_corrupt(
        b.get_flow_detail(flow.uuid).unwrap_err(),
        RecordKind::FlowDetail,
        &flow.uuid.to_string(),
        "meta: nested 100000 levels deep",
    );
    raw(&path, &format!("UPDATE logbooks SET meta = {brackets}"));
    assert_corrupt(
        b.get_logbook(book.uuid).unwrap_err(),
        RecordKind::LogBook,
        &book.uuid.to_string(),
        "meta: nested 100000 levels deep",
    );
}
