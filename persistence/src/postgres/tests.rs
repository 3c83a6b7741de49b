//! Tests against a real server: `TASKFLOW_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in a fresh
//! random schema, dropped at the end. When the server is unreachable a test
//! says so and passes, unless `TASKFLOW_REQUIRE_SERVICES=1`.

use std::sync::Arc;

use postgres::{Client, NoTls};
use serde_json::json;
use taskflow_patterns::AtomKind;

use super::*;
use crate::testkit::{listed, WithGuard};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("TASKFLOW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Drops its schema when dropped (after the backend's connections close).
#[derive(Debug)]
pub(crate) struct DropSchema {
    url: String,
    schema: String,
}

impl DropSchema {
    fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }

    /// Runs raw SQL in the schema, as a person or a bug might.
    fn raw(&self, sql: &str) {
        let mut client = self.client();
        client
            .batch_execute(&format!(
                "SET search_path TO {}; {sql}",
                quote_ident(&self.schema)
            ))
            .unwrap();
    }
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&self.url, NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(&self.schema)
            ));
        }
    }
}

type TestBackend = WithGuard<PostgresBackend, DropSchema>;

fn skip_or_panic(url: &str, error: &dyn std::error::Error) -> Option<TestBackend> {
    let mut message = format!("postgres at {url} unreachable: {error}");
    let mut cause = error.source();
    while let Some(e) = cause {
        message.push_str(&format!(": {e}"));
        cause = e.source();
    }
    if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message} (TASKFLOW_REQUIRE_SERVICES=1)");
    }
    eprintln!("skipping: {message}");
    None
}

/// A backend in a fresh schema, or `None` (having said why) when the
/// server is unreachable.
fn fresh_with_url(url: String) -> Option<TestBackend> {
    let schema = format!("taskflow_test_{}", Uuid::new_v4().simple());
    match PostgresBackend::connect_in_schema(&url, &schema) {
        Ok(backend) => Some(WithGuard {
            backend,
            guard: DropSchema { url, schema },
        }),
        Err(e) => skip_or_panic(&url, &e),
    }
}

fn fresh() -> Option<TestBackend> {
    fresh_with_url(url())
}

crate::backend_conformance!(fresh());

fn saved_flow(b: &dyn Backend) -> (LogBook, FlowDetail, AtomDetail) {
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let mut atom = AtomDetail::new("a", AtomKind::Task);
    atom.result = Some(Arc::new(json!({"n": 1})));
    flow.atom_details.push(atom.clone());
    book.flow_details.push(flow.clone());
    b.save_logbook(&book).unwrap();
    (book, flow, atom)
}

/// The one entry of a listing, which is an error.
fn only_error(listed: Vec<Result<LogBook, PersistenceError>>) -> PersistenceError {
    let mut listed = listed.into_iter();
    match (listed.next(), listed.next()) {
        (Some(Err(e)), None) => e,
        (first, second) => panic!("one error listed, got {first:?} then {second:?}"),
    }
}

fn assert_corrupt(err: PersistenceError, kind: RecordKind, id: Uuid, reason: &str) {
    assert!(
        matches!(&err, PersistenceError::Corrupt { kind: k, id: i, reason: r }
            if *k == kind && *i == id.to_string() && r.contains(reason)),
        "expected {kind} {id} corrupt ({reason}), got {err}"
    );
}

#[test]
fn unknown_atom_state_is_corrupt_naming_the_atom() {
    let Some(t) = fresh() else { return };
    let (book, flow, atom) = saved_flow(&t.backend);
    t.guard.raw("UPDATE atomdetails SET state = 'EXPLODED'");
    assert_corrupt(
        t.backend.get_atom_detail(flow.uuid, atom.uuid).unwrap_err(),
        RecordKind::AtomDetail,
        Uuid::from(atom.uuid),
        "EXPLODED",
    );
    for err in [
        t.backend.get_flow_detail(flow.uuid).unwrap_err(),
        t.backend.get_logbook(book.uuid).unwrap_err(),
        only_error(t.backend.list_logbooks().unwrap()),
    ] {
        assert_corrupt(
            err,
            RecordKind::AtomDetail,
            Uuid::from(atom.uuid),
            "EXPLODED",
        );
    }
}

#[test]
fn meta_updates_through_one_backend_never_undo_state_updates_through_another() {
    let Some(t) = fresh() else { return };
    let other = PostgresBackend::connect_in_schema(&t.guard.url, &t.guard.schema).unwrap();
    crate::testkit::state_and_meta_updates_race(&t.backend, &other);
}

#[test]
fn a_meta_update_of_a_corrupt_body_is_corrupt_and_writes_nothing() {
    let Some(t) = fresh() else { return };
    let (_, flow, atom) = saved_flow(&t.backend);
    t.guard
        .raw("UPDATE atomdetails SET body = left(body, length(body) / 2)");
    let err = t
        .backend
        .update_atom_meta(
            flow.uuid,
            atom.uuid,
            "progress",
            Some(json!(0.5)),
            Epoch::ZERO,
        )
        .unwrap_err();
    assert_corrupt(err, RecordKind::AtomDetail, Uuid::from(atom.uuid), "body");
    // Still the same broken body: nothing was written.
    assert_corrupt(
        t.backend.get_atom_detail(flow.uuid, atom.uuid).unwrap_err(),
        RecordKind::AtomDetail,
        Uuid::from(atom.uuid),
        "body",
    );
}

#[test]
fn truncated_body_and_meta_are_corrupt_naming_the_record() {
    let Some(t) = fresh() else { return };
    let (book, flow, atom) = saved_flow(&t.backend);
    t.guard
        .raw("UPDATE atomdetails SET body = left(body, length(body) / 2)");
    assert_corrupt(
        t.backend.get_atom_detail(flow.uuid, atom.uuid).unwrap_err(),
        RecordKind::AtomDetail,
        Uuid::from(atom.uuid),
        "body",
    );
    t.guard
        .raw("DELETE FROM atomdetails; UPDATE flowdetails SET state = 'WEIRD'");
    assert_corrupt(
        t.backend.get_flow_detail(flow.uuid).unwrap_err(),
        RecordKind::FlowDetail,
        Uuid::from(flow.uuid),
        "WEIRD",
    );
    t.guard.raw("UPDATE logbooks SET meta = '{\"a\":'");
    assert_corrupt(
        t.backend.get_logbook(book.uuid).unwrap_err(),
        RecordKind::LogBook,
        Uuid::from(book.uuid),
        "meta",
    );
    t.guard
        .raw("UPDATE logbooks SET meta = '{}', created_at = -5");
    assert_corrupt(
        t.backend.get_logbook(book.uuid).unwrap_err(),
        RecordKind::LogBook,
        Uuid::from(book.uuid),
        "created_at",
    );
}

#[test]
fn schema_too_new_is_refused() {
    let Some(t) = fresh() else { return };
    t.guard
        .raw("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    let err = PostgresBackend::connect_in_schema(&t.guard.url, &t.guard.schema).unwrap_err();
    assert!(
        matches!(
            err,
            PersistenceError::SchemaTooNew {
                found: 99,
                supported: PostgresBackend::SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("99") && text.contains(&t.guard.schema),
        "{text}"
    );
}

#[test]
fn schemas_are_separate_stores() {
    let (Some(a), Some(b)) = (fresh(), fresh()) else {
        return;
    };
    let (book, _, _) = saved_flow(&a.backend);
    assert!(b.backend.list_logbooks().unwrap().is_empty());
    assert!(b.backend.get_logbook(book.uuid).unwrap_err().is_not_found());
    // A second backend on the same schema sees the same records.
    let again = PostgresBackend::connect_in_schema(&a.guard.url, &a.guard.schema).unwrap();
    assert_eq!(again.get_logbook(book.uuid).unwrap(), book);
}

#[test]
fn many_backends_connecting_at_once_prepare_the_schema_once() {
    let Some(t) = fresh() else { return };
    // A schema no one created yet, connected to by four backends at once.
    let schema = format!("{}_x", t.guard.schema);
    let _drop = DropSchema {
        url: t.guard.url.clone(),
        schema: schema.clone(),
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PostgresBackend::connect_in_schema(&t.guard.url, &schema)))
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
}

#[test]
fn reconnects_after_its_connections_are_killed() {
    let app = format!("taskflow-test-{}", Uuid::new_v4().simple());
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let Some(t) = fresh_with_url(format!("{base}{sep}application_name={app}")) else {
        return;
    };
    let (book, flow, atom) = saved_flow(&t.backend);
    // Warm several pooled connections, then kill them all, as a server
    // restart does.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| t.backend.get_logbook(book.uuid).unwrap());
        }
    });
    let mut admin = Client::connect(&base, NoTls).unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&app],
        )
        .unwrap();
    assert!(!killed.is_empty());
    for _ in 0..5 {
        t.backend
            .update_atom_state(
                flow.uuid,
                atom.uuid,
                AtomState::Running,
                Intention::Execute,
                Epoch::ZERO,
            )
            .unwrap();
        assert_eq!(
            t.backend
                .get_atom_detail(flow.uuid, atom.uuid)
                .unwrap()
                .state,
            AtomState::Running
        );
    }
    assert_eq!(t.backend.list_logbooks().unwrap().len(), 1);
}

#[test]
fn unreachable_server_is_a_backend_error_naming_it() {
    // Port 1 on loopback: nothing listens there.
    let err = PostgresBackend::connect("postgres://postgres@127.0.0.1:1/test?connect_timeout=2")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PersistenceError::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn bad_schema_names_are_refused() {
    for name in ["", "a\0b", &"x".repeat(64)] {
        assert!(PostgresBackend::connect_in_schema(&url(), name).is_err());
    }
}

#[test]
fn odd_schema_names_are_quoted() {
    let Some(t) = fresh() else { return };
    let schema = format!("{} Odd \"Name\"", &t.guard.schema[..30]);
    let _drop = DropSchema {
        url: t.guard.url.clone(),
        schema: schema.clone(),
    };
    let b = PostgresBackend::connect_in_schema(&t.guard.url, &schema).unwrap();
    let (book, _, _) = saved_flow(&b);
    assert_eq!(listed(&b), vec![book]);
}

#[test]
fn a_version_1_schema_is_migrated_and_fenced() {
    let Some(t) = fresh() else { return };
    let (book, flow, atom) = saved_flow(&t.backend);
    // Back to version 1, as an older build left it.
    t.guard.raw(
        "ALTER TABLE flowdetails DROP COLUMN owner_epoch; \
         UPDATE meta SET value = '1' WHERE key = 'schema_version'",
    );
    let b = PostgresBackend::connect_in_schema(&t.guard.url, &t.guard.schema).unwrap();
    let mut client = t.guard.client();
    let version: String = client
        .query_one(
            &format!(
                "SELECT value FROM {}.meta WHERE key = 'schema_version'",
                quote_ident(&t.guard.schema)
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, PostgresBackend::SCHEMA_VERSION.to_string());
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert_eq!(b.fence_flow_detail(flow.uuid, Epoch::new(2)).unwrap(), 2);
    let err = b
        .update_atom_state(
            flow.uuid,
            atom.uuid,
            AtomState::Running,
            Intention::Execute,
            Epoch::new(1),
        )
        .unwrap_err();
    assert!(err.is_fenced(), "{err}");
}

#[test]
fn a_write_waits_for_a_fence_in_flight_and_is_then_refused() {
    let Some(t) = fresh() else { return };
    let (_, flow, atom) = saved_flow(&t.backend);
    // A fence in flight: the flow row is updated by an open transaction.
    let mut fencer = t.guard.client();
    let mut tx = fencer.transaction().unwrap();
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {}; \
         UPDATE flowdetails SET owner_epoch = 5 WHERE uuid = '{}'",
        quote_ident(&t.guard.schema),
        flow.uuid
    ))
    .unwrap();
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            t.backend.update_atom_state(
                flow.uuid,
                atom.uuid,
                AtomState::Running,
                Intention::Execute,
                Epoch::new(4),
            )
        });
        // The writer blocks on the row lock until the fence commits.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!writer.is_finished());
        tx.commit().unwrap();
        let err = writer.join().unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                PersistenceError::Fenced { held, presented, .. }
                    if held == 5 && presented == 4
            ),
            "{err}"
        );
    });
    assert_eq!(
        t.backend.get_atom_detail(flow.uuid, atom.uuid).unwrap(),
        atom
    );
}

#[test]
fn a_take_at_the_largest_epoch_is_refused_and_changes_nothing() {
    let Some(t) = fresh() else { return };
    let (_, flow, _) = saved_flow(&t.backend);
    t.guard.raw(&format!(
        "UPDATE flowdetails SET owner_epoch = {}",
        i64::MAX
    ));
    let err = t.backend.take_flow_detail(flow.uuid).unwrap_err();
    assert!(
        matches!(&err, PersistenceError::Encode { kind: RecordKind::FlowDetail, id, .. }
            if *id == flow.uuid),
        "{err}"
    );
    assert!(err.to_string().contains(&i64::MAX.to_string()), "{err}");
    assert_eq!(
        t.backend.get_flow_detail(flow.uuid).unwrap().owner_epoch,
        i64::MAX.unsigned_abs()
    );
}

#[test]
fn a_record_nested_100_000_levels_deep_is_corrupt_not_an_abort() {
    let Some(t) = fresh() else { return };
    let (book, flow, atom) = saved_flow(&t.backend);
    t.guard
        .raw("UPDATE atomdetails SET body = '{\"result\": ' || repeat('[', 100000)");
    assert_corrupt(
        t.backend.get_atom_detail(flow.uuid, atom.uuid).unwrap_err(),
        RecordKind::AtomDetail,
        Uuid::from(atom.uuid),
        "body: nested 100001 levels deep",
    );
    for err in [
        t.backend.get_flow_detail(flow.uuid).unwrap_err(),
        t.backend.get_logbook(book.uuid).unwrap_err(),
    ] {
        assert_corrupt(
            err,
            RecordKind::AtomDetail,
            Uuid::from(atom.uuid),
            "levels deep",
        );
    }
    t.guard
        .raw("DELETE FROM atomdetails; UPDATE flowdetails SET meta = repeat('[', 100000)");
    assert_corrupt(
        t.backend.get_flow_detail(flow.uuid).unwrap_err(),
        RecordKind::FlowDetail,
        Uuid::from(flow.uuid),
        "meta: nested 100000 levels deep",
    );
    t.guard
        .raw("UPDATE logbooks SET meta = repeat('[', 100000)");
    assert_corrupt(
        t.backend.get_logbook(book.uuid).unwrap_err(),
        RecordKind::LogBook,
        Uuid::from(book.uuid),
        "meta: nested 100000 levels deep",
    );
}

#[test]
fn one_corrupt_logbook_leaves_the_others_listed() {
    // Which table, what to set, what the error then says.
    for (table, set, reason) in [
        ("atomdetails", "state = 'EXPLODED'", "EXPLODED"),
        (
            "atomdetails",
            "body = '{\"result\": ' || repeat('[', 100000)",
            "levels deep",
        ),
        ("flowdetails", "state = 'WEIRD'", "WEIRD"),
        ("flowdetails", "meta = left(meta, 5)", "meta"),
        ("logbooks", "meta = '{\"a\":'", "meta"),
        ("logbooks", "created_at = -5", "created_at"),
    ] {
        let Some(t) = fresh() else { return };
        crate::testkit::one_corrupt_logbook_leaves_the_others_listed(
            &t.backend,
            reason,
            |victim| {
                let flow = victim.flow_details[0].uuid;
                let rows = match table {
                    "atomdetails" => format!("flow_uuid = '{flow}'"),
                    "flowdetails" => format!("uuid = '{flow}'"),
                    _ => format!("uuid = '{}'", victim.uuid),
                };
                t.guard
                    .raw(&format!("UPDATE {table} SET {set} WHERE {rows}"));
            },
        );
    }
}
