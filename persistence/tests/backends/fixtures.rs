//! Records written by earlier versions, read by this one.
//!
//! `tests/fixtures/v<N>/` holds the logbook of [`fixture_book`] as the
//! version with record format `N` wrote it: `sqlite/flows.db` (a SQLite
//! database) and `dir/` (a directory store). Every later version must read
//! them back equal. When a format changes, bump its version, add a
//! migration, and record the new fixtures with
//! `TASKFLOW_WRITE_FIXTURES=1 cargo test -p taskflow-persistence --test backends write_fixtures -- --ignored`
//! (it writes `v<current>/` only if that folder does not exist yet).

use std::path::{Path, PathBuf};

use taskflow_patterns::{AtomState, FlowState, Intention};
use taskflow_persistence::{Backend, DirBackend, LogBook, SqliteBackend};

use crate::support::{copy_tree, fixture_book, listed};
use taskflow_persistence::Epoch;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture versions present (`v1`, `v2`, ...).
fn versions() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('v'))
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no fixtures in {}", fixtures().display());
    found
}

/// The number `N` of a fixture folder `v<N>`.
fn number(version: &Path) -> u32 {
    version
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix('v'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{} is not a v<N> folder", version.display()))
}

/// What the fixture of `version` reads back as: [`fixture_book`], less what
/// its format did not record yet.
fn expected(version: &Path) -> LogBook {
    let mut book = fixture_book();
    if number(version) < 2 {
        // Format 1 had no owner epochs: they read as 0 (never claimed).
        for flow in &mut book.flow_details {
            flow.owner_epoch = Epoch::ZERO;
        }
    }
    book
}

/// Reads, then writes, through a backend opened on a copy of a fixture.
fn check(backend: &dyn Backend, version: &Path) {
    let expected = expected(version);
    let got = backend.get_logbook(expected.uuid).unwrap_or_else(|e| {
        panic!("{}: {e}", version.display());
    });
    assert_eq!(got, expected, "{}", version.display());
    // No format recorded revert results before they existed: they read as none.
    assert!(got
        .flow_details
        .iter()
        .flat_map(|f| &f.atom_details)
        .all(|a| a.revert_result().is_none()));
    assert_eq!(listed(backend), vec![expected.clone()]);
    // Still writable after any migration.
    let flow = &expected.flow_details[1];
    let atom = &flow.atom_details[0];
    backend
        .update_atom_state(
            flow.uuid,
            atom.uuid,
            AtomState::Pending,
            Intention::Execute,
            Epoch::ZERO,
        )
        .unwrap();
    assert_eq!(
        backend.get_atom_detail(flow.uuid, atom.uuid).unwrap().state,
        AtomState::Pending
    );
    // And fenced: the stored epochs hold against stale writers, and a fence
    // raises them.
    let first = &expected.flow_details[0];
    if first.owner_epoch > Epoch::ZERO {
        let err = backend
            .update_flow_state(
                first.uuid,
                FlowState::Running,
                Epoch::new(first.owner_epoch.get() - 1),
            )
            .unwrap_err();
        assert!(err.is_fenced(), "{}: {err}", version.display());
    }
    backend.fence_flow_detail(flow.uuid, Epoch::new(3)).unwrap();
    let err = backend
        .update_atom_state(
            flow.uuid,
            atom.uuid,
            AtomState::Running,
            Intention::Execute,
            Epoch::new(2),
        )
        .unwrap_err();
    assert!(err.is_fenced(), "{}: {err}", version.display());
    assert_eq!(backend.get_flow_detail(flow.uuid).unwrap().owner_epoch, 3);
}

#[test]
fn sqlite_reads_every_recorded_version() {
    for version in versions() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("flows.db");
        std::fs::copy(version.join("sqlite/flows.db"), &db).unwrap();
        let backend = SqliteBackend::open(&db).unwrap();
        check(&backend, &version);
        drop(backend);
        let migrated: String = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(migrated, SqliteBackend::SCHEMA_VERSION.to_string());
    }
}

#[test]
fn dir_reads_every_recorded_version() {
    for version in versions() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&version.join("dir"), dir.path());
        let backend = DirBackend::open(dir.path()).unwrap();
        check(&backend, &version);
        let format: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("FORMAT.json")).unwrap())
                .unwrap();
        assert_eq!(format["version"], DirBackend::FORMAT_VERSION);
    }
}

/// Records the fixtures of the current formats (see the module docs).
#[test]
#[ignore = "records fixtures; run by hand when a record format changes"]
fn write_fixtures() {
    if std::env::var("TASKFLOW_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    assert_eq!(
        SqliteBackend::SCHEMA_VERSION,
        DirBackend::FORMAT_VERSION,
        "the fixture folders assume one version number for both formats"
    );
    let target = fixtures().join(format!("v{}", SqliteBackend::SCHEMA_VERSION));
    assert!(!target.exists(), "{} already recorded", target.display());
    let book = fixture_book();

    std::fs::create_dir_all(target.join("sqlite")).unwrap();
    let db = target.join("sqlite/flows.db");
    {
        let backend = SqliteBackend::open(&db).unwrap();
        backend.save_logbook(&book).unwrap();
    }
    // Closing the last connection checkpoints the log into the file; compact it.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();

    let backend = DirBackend::open(target.join("dir")).unwrap();
    backend.save_logbook(&book).unwrap();
}
