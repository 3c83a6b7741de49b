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
    crate::board_conformance!(
        super::fresh,
        peer = |b: &crate::testkit::WithGuard<super::SqliteBoard, tempfile::TempDir>| {
            super::SqliteBoard::open(b.board.location(), b.board.options().clone()).unwrap()
        }
    );
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

/// A scheduled job is stored with its time: a board opened again on the
/// file (another process, a restart) neither loses nor advances it.
#[test]
fn a_reopened_board_keeps_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let (board, clock) = manual(dir.path(), 10_000);
    let at = 1_000_000 + 5_000;
    let job = board.post(NewJob::new("later").not_before(at)).unwrap();
    drop(board);
    let options = BoardOptions {
        lease: Duration::from_secs(10),
        clock: clock.clock(),
        ..BoardOptions::default()
    };
    let board = SqliteBoard::open(dir.path().join("jobs.db"), options.clone()).unwrap();
    assert_eq!(board.get(job.id).unwrap(), job);
    assert!(matches!(
        board.claim(job.id, "A"),
        Err(JobBoardError::NotYet { not_before, .. }) if not_before == at
    ));
    assert!(!board.wait(Duration::ZERO).unwrap());
    assert!(board.iterjobs(true).unwrap().is_empty());
    clock.advance(Duration::from_millis(4_999));
    assert!(!board.wait(Duration::ZERO).unwrap());
    drop(board);
    let board = SqliteBoard::open(dir.path().join("jobs.db"), options).unwrap();
    clock.advance(Duration::from_millis(1));
    assert!(board.wait(Duration::ZERO).unwrap());
    let claim = board.claim(job.id, "A").unwrap();
    assert_eq!(claim.epoch.get(), 1);
    assert_eq!(board.get(job.id).unwrap().not_before, Some(at));
}

/// `wait` wakes when a scheduled job's time comes on the board's clock,
/// even when that clock jumps (no write to notice).
#[test]
fn wait_sees_a_scheduled_job_come_due_on_a_manual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (board, clock) = manual(dir.path(), 10_000);
    board
        .post(NewJob::new("later").not_before(1_000_000 + 60_000))
        .unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(60));
        });
        let start = Instant::now();
        assert!(board.wait(Duration::from_secs(5)).unwrap());
        assert!(start.elapsed() < Duration::from_secs(1));
    });
}

/// The board's tables as schema version 1 made them.
const V1: taskflow_persistence::SqliteSchema = taskflow_persistence::SqliteSchema::new(
    "jobboard_meta",
    "jobboard_jobs",
    &[super::schema::MIGRATIONS[0]],
);

/// A file of schema version 1 (before scheduled, keyed and requested jobs)
/// is migrated on open: its jobs read as posted without a time, keys or a
/// request, at revision 1, and the new rules apply to them.
#[test]
fn a_version_1_file_migrates_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let id = JobId::new();
    {
        let mut raw = Connection::open(&path).unwrap();
        V1.prepare(&mut raw, "v1.db").unwrap();
        raw.execute(
            "INSERT INTO jobboard_jobs (id, name, details, priority, created_at, state, epoch, \
             outcome, completed_at) VALUES (?1, 'old', '{\"a\":1}', 2, 5, 'COMPLETE', 1, \
             '\"consumed\"', 6)",
            [id.to_string()],
        )
        .unwrap();
    }
    let board = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let old = board.get(id).unwrap();
    assert_eq!((old.name.as_str(), old.priority), ("old", 2));
    assert_eq!(old.details, serde_json::json!({"a": 1}));
    assert_eq!(
        (old.state, old.outcome),
        (JobState::Complete, Some(Outcome::Consumed))
    );
    assert_eq!(
        (
            old.not_before,
            old.unique_key,
            old.key,
            old.control,
            old.revision
        ),
        (None, None, None, None, 1)
    );
    let raw = Connection::open(&path).unwrap();
    let version: String = raw
        .query_row(
            "SELECT value FROM jobboard_meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(version, SqliteBoard::SCHEMA_VERSION.to_string());
    assert_eq!(SqliteBoard::SCHEMA_VERSION, 3);
    let reopened = board.reopen(id).unwrap();
    assert_eq!((reopened.revision, reopened.epoch.get()), (2, 1));
    let keyed = board.post(NewJob::new("new").unique_key("u")).unwrap();
    assert!(matches!(
        board.post(NewJob::new("again").unique_key("u")),
        Err(JobBoardError::Duplicate { existing, .. }) if existing == keyed.id
    ));
    assert_eq!(board.claim(id, "A").unwrap().epoch.get(), 2);
}

/// A control column that names no request is corrupt, naming the job.
#[test]
fn a_bad_control_request_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let board = SqliteBoard::open(&path, BoardOptions::default()).unwrap();
    let job = board.post(NewJob::new("j")).unwrap();
    let raw = Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE jobboard_jobs SET control = 'pause' WHERE id = ?1",
        [job.id.to_string()],
    )
    .unwrap();
    let err = board.get(job.id).unwrap_err();
    assert!(
        matches!(&err, JobBoardError::Corrupt { id, reason, .. } if *id == job.id.to_string() && reason.contains("pause")),
        "{err}"
    );
}

/// A board and records on one file, and on two files, in `dir`.
fn one_and_two_files(dir: &Path) -> [(SqliteBoard, SqliteBackend); 2] {
    let shared = dir.join("one.db");
    [
        (
            SqliteBoard::open(&shared, BoardOptions::default()).unwrap(),
            SqliteBackend::open(&shared).unwrap(),
        ),
        (
            SqliteBoard::open(dir.join("jobs.db"), BoardOptions::default()).unwrap(),
            SqliteBackend::open(dir.join("flows.db")).unwrap(),
        ),
    ]
}

fn post_factory(
    board: &SqliteBoard,
    records: &SqliteBackend,
    name: &str,
    key: Option<&str>,
) -> Result<Job, JobBoardError> {
    let args = Value::Null;
    let mut post = crate::PostFlow::new(
        name,
        crate::FlowSource::Factory {
            name: "f",
            args: &args,
        },
    );
    post.key = key.map(str::to_owned);
    crate::post_flow(board, records, post)
}

fn logbook_names(records: &SqliteBackend) -> Vec<String> {
    let mut names: Vec<String> = records
        .list_logbooks()
        .unwrap()
        .into_iter()
        .map(|b| b.unwrap().name)
        .collect();
    names.sort();
    names
}

#[test]
fn on_one_file_a_job_and_its_records_are_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let [(board, records), (board2, records2)] = one_and_two_files(dir.path());
    // A job insert that fails after the records were written (a trigger
    // of the file's, standing for a crash or a full disk at that point).
    for db in ["one.db", "jobs.db"] {
        Connection::open(dir.path().join(db))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON jobboard_jobs WHEN NEW.name = 'boom' \
                 BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
            )
            .unwrap();
    }

    let job = post_factory(&board, &records, "fine", None).unwrap();
    let book = records.get_logbook(job.logbook.unwrap()).unwrap();
    assert_eq!(book.flow_details[0].uuid, job.flow_detail.unwrap());
    let err = post_factory(&board, &records, "boom", None).unwrap_err();
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert_eq!(logbook_names(&records), ["fine"], "the records rolled back");
    // A refused key rolls the records back in the same transaction.
    post_factory(&board, &records, "keyed", Some("k")).unwrap();
    let err = post_factory(&board, &records, "again", Some("k")).unwrap_err();
    assert!(matches!(err, JobBoardError::AlreadyPosted { .. }), "{err}");
    assert_eq!(logbook_names(&records), ["fine", "keyed"]);
    assert_eq!(board.all_jobs().unwrap().len(), 2);

    // On two files the records are written first: the failed insert
    // leaves them, marked as a job's for the conductor's purge.
    post_factory(&board2, &records2, "fine", None).unwrap();
    post_factory(&board2, &records2, "boom", None).unwrap_err();
    assert_eq!(logbook_names(&records2), ["boom", "fine"]);
    let orphan = records2
        .list_logbooks()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .find(|b| b.name == "boom")
        .unwrap();
    assert_eq!(orphan.meta[crate::POSTED_KEY], Value::Bool(true));
}

#[test]
fn records_on_another_file_or_in_memory_are_posted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let board = SqliteBoard::open(dir.path().join("jobs.db"), BoardOptions::default()).unwrap();
    let elsewhere = SqliteBackend::open(dir.path().join("flows.db")).unwrap();
    let memory = SqliteBackend::in_memory().unwrap();
    assert!(board.same_file(&elsewhere).is_none());
    assert!(board.same_file(&memory).is_none());
    // The same file by another path is the same file.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let by_another_path =
        SqliteBackend::open(dir.path().join("sub").join("..").join("jobs.db")).unwrap();
    assert!(board.same_file(&by_another_path).is_some());
    let in_memory_board = SqliteBoard::in_memory(BoardOptions::default()).unwrap();
    assert!(in_memory_board.same_file(&by_another_path).is_none());
}
