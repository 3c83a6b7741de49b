use std::sync::Barrier;

use rusqlite::Connection;
use serde_json::Value;

use super::*;
use crate::testkit::WithGuard;
use crate::ManualClock;

fn fresh(options: BoardOptions) -> WithGuard<SqliteBoard, tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let board = SqliteBoard::open(dir.path().join("jobs.db"), options).unwrap();
    WithGuard { board, guard: dir }
}

mod file {
    crate::board_conformance!(super::fresh);
}

mod memory {
    crate::board_conformance!(|options| super::SqliteBoard::in_memory(options).unwrap());
}

mod normal_durability {
    crate::board_conformance!(|options| {
        let dir = tempfile::tempdir().unwrap();
        let board = super::SqliteBoard::open_with(
            dir.path().join("n.db"),
            options,
            super::Durability::Normal,
        )
        .unwrap();
        crate::testkit::WithGuard { board, guard: dir }
    });
}

fn manual(dir: &Path, lease_ms: u64) -> (SqliteBoard, ManualClock) {
    let clock = ManualClock::new(1_000_000);
    let board = SqliteBoard::open(
        dir.join("jobs.db"),
        BoardOptions {
            lease: Duration::from_millis(lease_ms),
            clock: clock.clock(),
            ..BoardOptions::default()
        },
    )
    .unwrap();
    (board, clock)
}

#[test]
fn leases_lapse_on_the_boards_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (board, clock) = manual(dir.path(), 10_000);
    let job = board.post(NewJob::new("j")).unwrap();
    assert_eq!(job.created_at, 1_000_000);
    let first = board.claim(job.id, "A").unwrap();
    assert_eq!(first.expires_at, 1_010_000);
    clock.advance(Duration::from_millis(9_999));
    assert!(matches!(
        board.claim(job.id, "B"),
        Err(JobBoardError::AlreadyClaimed { .. })
    ));
    assert!(!board.wait(Duration::ZERO).unwrap());
    clock.advance(Duration::from_millis(1));
    assert!(board.wait(Duration::ZERO).unwrap());
    assert_eq!(board.find_owner(job.id).unwrap(), None);
    let second = board.claim(job.id, "B").unwrap();
    assert_eq!((second.epoch.get(), second.expires_at), (2, 1_020_000));
    assert!(matches!(
        board.consume(&first),
        Err(JobBoardError::NotOwner { epoch: 1, .. })
    ));
}

#[test]
fn purge_by_age_uses_completion_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let board = SqliteBoard::open(
        dir.path().join("jobs.db"),
        BoardOptions {
            lease: Duration::from_secs(60),
            retention: Retention::For(Duration::from_secs(3600)),
            clock: clock.clock(),
        },
    )
    .unwrap();
    let job = board.post(NewJob::new("j")).unwrap();
    clock.advance(Duration::from_secs(7200));
    let claim = board.claim(job.id, "A").unwrap();
    board.consume(&claim).unwrap();
    assert!(board.purge().unwrap().is_empty());
    clock.advance(Duration::from_secs(3600));
    assert!(board.purge().unwrap().is_empty(), "exactly the retention");
    clock.advance(Duration::from_millis(1));
    let purged = board.purge().unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].outcome, Some(Outcome::Consumed));
}

#[test]
fn entities_are_shared_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let a = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let b = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    a.register_entity(&Entity {
        name: "c2".into(),
        meta: serde_json::json!({"host": "h", "pid": 7}),
    })
    .unwrap();
    b.register_entity(&Entity {
        name: "c1".into(),
        meta: Value::Null,
    })
    .unwrap();
    a.register_entity(&Entity {
        name: "c1".into(),
        meta: serde_json::json!("again"),
    })
    .unwrap();
    let got = b.entities().unwrap();
    assert_eq!(
        got.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(got[0].meta, serde_json::json!("again"));
    assert_eq!(got[1].meta, serde_json::json!({"host": "h", "pid": 7}));
}

#[test]
fn wait_sees_posts_by_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let waiter = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let poster = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    assert!(!waiter.wait(Duration::from_millis(100)).unwrap());
    std::thread::scope(|s| {
        let start = Instant::now();
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(150));
            poster.post(NewJob::new("j")).unwrap();
        });
        assert!(waiter.wait(Duration::from_secs(10)).unwrap());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(140), "{waited:?}");
        assert!(waited < Duration::from_millis(1000), "{waited:?}");
    });
}

/// A completion through another connection to the file (another process)
/// ends `wait_until_complete` within a few poll intervals.
#[test]
fn wait_until_complete_sees_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let waiter = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let owner = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let job = waiter.post(NewJob::new("j")).unwrap();
    let claim = owner.claim(job.id, "A").unwrap();
    std::thread::scope(|s| {
        let start = Instant::now();
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(150));
            owner.consume(&claim).unwrap();
        });
        let waited = waiter
            .wait_until_complete(job.id, Duration::from_secs(10))
            .unwrap();
        let took = start.elapsed();
        assert!(waited.is_complete(), "{waited:?}");
        assert_eq!(waited.job().outcome, Some(Outcome::Consumed));
        assert!(took >= Duration::from_millis(140), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
    });
}

/// Eight boards (eight connections) on one file race for 500 jobs: each job
/// is won once, none is lost to `database is locked`.
#[test]
fn racing_connections_each_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let options = BoardOptions {
        lease: Duration::from_secs(600),
        ..BoardOptions::default()
    };
    let ids: Vec<JobId> = {
        let board = SqliteBoard::open(&path, options.clone()).unwrap();
        (0..500)
            .map(|i| board.post(NewJob::new(format!("j{i}"))).unwrap().id)
            .collect()
    };
    let barrier = Barrier::new(8);
    let wins: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (path, ids, barrier, options) = (&path, &ids, &barrier, options.clone());
                s.spawn(move || {
                    let board = SqliteBoard::open(path, options).unwrap();
                    barrier.wait();
                    let mut won = Vec::new();
                    for id in ids {
                        match board.claim(*id, &format!("t{t}")) {
                            Ok(_) => won.push(*id),
                            Err(JobBoardError::AlreadyClaimed { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<JobId> = wins.into_iter().flatten().collect();
    all.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(all, expected);
}

#[test]
fn corrupt_rows_name_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let board = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let job = board.post(NewJob::new("j")).unwrap();
    let other = board.post(NewJob::new("ok")).unwrap();
    let raw = Connection::open(&path).unwrap();
    for (sql, expect) in [
        (
            "UPDATE jobboard_jobs SET state = 'PAUSED' WHERE id = ?1",
            "state",
        ),
        (
            "UPDATE jobboard_jobs SET details = '{nope' WHERE id = ?1",
            "details",
        ),
        ("UPDATE jobboard_jobs SET epoch = -3 WHERE id = ?1", "epoch"),
        (
            "UPDATE jobboard_jobs SET logbook = 'xyz' WHERE id = ?1",
            "logbook",
        ),
        (
            "UPDATE jobboard_jobs SET priority = 'high' WHERE id = ?1",
            "priority",
        ),
        (
            "UPDATE jobboard_jobs SET state = 'CLAIMED', owner = NULL WHERE id = ?1",
            "owner",
        ),
    ] {
        raw.execute(sql, [job.id.to_string()]).unwrap();
        let err = board.get(job.id).unwrap_err();
        match &err {
            JobBoardError::Corrupt { board, id, reason } => {
                assert_eq!(*board, "sqlite");
                assert_eq!(*id, job.id.to_string());
                assert!(reason.contains(expect), "{reason}");
            }
            other => panic!("expected corrupt, got {other}"),
        }
        assert!(matches!(
            board.iterjobs(false),
            Err(JobBoardError::Corrupt { .. })
        ));
        assert_eq!(board.get(other.id).unwrap().name, "ok");
        // Put the row back.
        raw.execute(
            "UPDATE jobboard_jobs SET state = 'UNCLAIMED', owner = NULL, details = 'null', \
             epoch = 0, logbook = NULL, priority = 0 WHERE id = ?1",
            [job.id.to_string()],
        )
        .unwrap();
        assert_eq!(board.get(job.id).unwrap(), job);
    }
    raw.execute(
        "UPDATE jobboard_jobs SET id = 'not-a-uuid' WHERE id = ?1",
        [job.id.to_string()],
    )
    .unwrap();
    let err = board.iterjobs(false).unwrap_err();
    assert!(err.to_string().contains("sequence 1"), "{err}");
}

#[test]
fn newer_schemas_are_refused_and_files_are_shared_with_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.db");
    let records = taskflow_persistence::SqliteBackend::open(&path).unwrap();
    let board = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let job = board.post(NewJob::new("j")).unwrap();
    drop(board);
    let board = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    assert_eq!(board.get(job.id).unwrap(), job);
    drop(records);
    let raw = Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE jobboard_meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    let err = SqliteBoard::open(&path, BoardOptions::default()).unwrap_err();
    assert!(err.to_string().contains("99"), "{err}");
    assert!(
        matches!(
            err,
            JobBoardError::SchemaTooNew {
                found: 99,
                supported: SqliteBoard::SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    raw.execute("DELETE FROM jobboard_meta", []).unwrap();
    let err = SqliteBoard::open(&path, BoardOptions::default()).unwrap_err();
    assert!(err.to_string().contains("refusing to guess"), "{err}");
}
