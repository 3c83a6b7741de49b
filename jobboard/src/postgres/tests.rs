//! The conformance suite on a real PostgreSQL, plus what only this board
//! has: boards on separate pools racing, connections killed mid-run, the
//! schema's version, notifications between boards.
//!
//! The server is `TASKFLOW_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, as the records' tests). Each
//! board works in a fresh random schema, dropped at the end. When the
//! server is unreachable a test says so and passes, unless
//! `TASKFLOW_REQUIRE_SERVICES=1`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::*;
use crate::testkit::WithGuard;
use crate::ManualClock;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("TASKFLOW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Drops its schema when dropped (after the board's connections close).
#[derive(Debug)]
pub(super) struct DropSchema {
    url: String,
    schema: String,
}

impl DropSchema {
    fn raw(&self, sql: &str) {
        let mut client = Client::connect(&self.url, NoTls).unwrap();
        client
            .batch_execute(&format!(
                "SET search_path TO {}; {sql}",
                quote_ident(&self.schema)
            ))
            .unwrap();
    }

    /// Another board on the same schema (its own pool and listener).
    fn board(&self, options: BoardOptions) -> PostgresBoard {
        PostgresBoard::connect_in_schema(&self.url, &self.schema, options).unwrap()
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

type TestBoard = WithGuard<PostgresBoard, DropSchema>;

fn board_at(url: String, options: BoardOptions) -> Option<TestBoard> {
    let schema = format!("taskflow_board_test_{}", Uuid::new_v4().simple());
    match PostgresBoard::connect_in_schema(&url, &schema, options) {
        Ok(board) => Some(WithGuard {
            board,
            guard: DropSchema { url, schema },
        }),
        Err(e) => {
            let message = format!("postgres at {url} unreachable: {e}");
            if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{message} (TASKFLOW_REQUIRE_SERVICES=1)");
            }
            eprintln!("skipping: {message}");
            None
        }
    }
}

/// A board in a fresh schema of the test server, or `None` (having said
/// why) when the server is unreachable and not required.
pub(super) fn board(options: BoardOptions) -> Option<TestBoard> {
    board_at(url(), options)
}

mod conformance {
    crate::board_conformance!(
        super::board,
        peer = |b: &super::TestBoard| b.guard.board(b.board.options().clone())
    );
}

fn long_lease() -> BoardOptions {
    BoardOptions {
        lease: Duration::from_secs(60),
        ..BoardOptions::default()
    }
}

#[test]
fn four_boards_race_for_1000_jobs_and_each_is_won_once() {
    const JOBS: usize = 1000;
    const BOARDS: usize = 4;
    let Some(t) = board(long_lease()) else { return };
    let ids: Vec<JobId> = (0..JOBS)
        .map(|i| t.board.post(NewJob::new(format!("race-{i}"))).unwrap().id)
        .collect();
    // Each racer has its own pool, as a process of its own would.
    let boards: Vec<PostgresBoard> = (0..BOARDS).map(|_| t.guard.board(long_lease())).collect();
    let barrier = Barrier::new(BOARDS);
    let started = Instant::now();
    let wins: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = boards
            .iter()
            .enumerate()
            .map(|(n, b)| {
                let (ids, barrier) = (&ids, &barrier);
                s.spawn(move || {
                    let owner = format!("racer-{n}");
                    barrier.wait();
                    let mut won = Vec::new();
                    // Two racers go forwards, two backwards: every job is
                    // contended by two at once.
                    for i in 0..JOBS {
                        let id = if n % 2 == 0 {
                            ids[i]
                        } else {
                            ids[JOBS - 1 - i]
                        };
                        match b.claim(id, &owner) {
                            Ok(claim) => {
                                assert_eq!(claim.epoch, 1, "job {id} claimed twice");
                                b.consume(&claim).unwrap();
                                won.push(id);
                            }
                            Err(
                                JobBoardError::AlreadyClaimed { .. } | JobBoardError::Complete(_),
                            ) => {}
                            Err(e) => panic!("{owner} claiming {id}: {e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut won: HashMap<JobId, usize> = HashMap::new();
    for id in wins.iter().flatten() {
        *won.entry(*id).or_default() += 1;
    }
    assert_eq!(won.len(), JOBS, "some jobs were won by nobody");
    assert!(won.values().all(|n| *n == 1), "a job was won twice");
    let per: Vec<usize> = wins.iter().map(Vec::len).collect();
    eprintln!(
        "1000 jobs raced by 4 boards: won {per:?} in {:?}",
        started.elapsed()
    );
    let all = t.board.all_jobs().unwrap();
    assert!(all
        .iter()
        .all(|j| j.state == JobState::Complete && j.outcome == Some(Outcome::Consumed)));
}

#[test]
fn the_board_reconnects_after_its_connections_are_killed_and_loses_no_job() {
    const JOBS: usize = 200;
    let app = format!("taskflow-board-test-{}", Uuid::new_v4().simple());
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let Some(t) = board_at(format!("{base}{sep}application_name={app}"), long_lease()) else {
        return;
    };
    let board = &t.board;
    let mut admin = Client::connect(&base, NoTls).unwrap();
    let kill = |admin: &mut Client| -> usize {
        admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&app],
            )
            .unwrap()
            .len()
    };
    let done = AtomicBool::new(false);
    let (posted, consumed, errors, kills) = std::thread::scope(|s| {
        // A poster, a conductor-like consumer that waits, and the killer.
        let poster = s.spawn(|| {
            let mut posted = Vec::new();
            let mut errors = 0;
            while posted.len() < JOBS {
                match board.post(NewJob::new(format!("job-{}", posted.len()))) {
                    Ok(job) => posted.push(job.id),
                    Err(e) => {
                        errors += 1;
                        eprintln!("post failed (retried): {e}");
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (posted, errors)
        });
        let consumer = s.spawn(|| {
            let mut consumed: Vec<JobId> = Vec::new();
            let mut errors = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let open = match board
                    .wait(Duration::from_millis(500))
                    .and_then(|_| board.iterjobs(true))
                {
                    Ok(open) => open,
                    Err(e) => {
                        errors += 1;
                        eprintln!("wait or list failed (retried): {e}");
                        continue;
                    }
                };
                if open.is_empty() && done.load(Ordering::SeqCst) {
                    break;
                }
                for job in open {
                    match board
                        .claim(job.id, "consumer")
                        .and_then(|c| board.consume(&c))
                    {
                        Ok(()) => consumed.push(job.id),
                        Err(e) => {
                            errors += 1;
                            eprintln!("claim or consume of {} failed: {e}", job.id);
                        }
                    }
                }
            }
            (consumed, errors)
        });
        let mut kills = 0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(80));
            kills += kill(&mut admin);
        }
        let (posted, post_errors) = poster.join().unwrap();
        done.store(true, Ordering::SeqCst);
        let (consumed, consume_errors) = consumer.join().unwrap();
        (posted, consumed, post_errors + consume_errors, kills)
    });
    eprintln!(
        "killed {kills} connections in 5 rounds; {} posted, {} consumed, {errors} calls failed",
        posted.len(),
        consumed.len()
    );
    assert!(kills >= 5, "the board's connections were not all found");
    assert_eq!(posted.len(), JOBS);
    let mut seen: HashMap<JobId, usize> = HashMap::new();
    for id in &consumed {
        *seen.entry(*id).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "a job was consumed twice");
    // No job lost: every one posted is on the board, consumed, once.
    let all = board.all_jobs().unwrap();
    assert_eq!(
        all.len(),
        JOBS,
        "the board holds a job not posted, or lost one"
    );
    for id in &posted {
        let job = board.get(*id).unwrap();
        assert_eq!(job.outcome, Some(Outcome::Consumed), "job {id}: {job:?}");
        assert_eq!(job.epoch, 1, "job {id} was claimed more than once");
    }
    // And the listener is back: a post from another board wakes a wait.
    kill(&mut admin);
    let other = t.guard.board(long_lease());
    std::thread::scope(|s| {
        let waiter = s.spawn(|| board.wait(Duration::from_secs(10)).unwrap());
        std::thread::sleep(Duration::from_millis(300));
        other.post(NewJob::new("after")).unwrap();
        assert!(waiter.join().unwrap());
    });
}

#[test]
fn a_wait_is_woken_by_a_post_of_another_board() {
    let Some(t) = board(long_lease()) else { return };
    let other = t.guard.board(long_lease());
    // Start listening first, so the wait below measures the wake-up.
    assert!(!t.board.wait(Duration::from_millis(10)).unwrap());
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let started = Instant::now();
            let woken = t.board.wait(Duration::from_secs(20)).unwrap();
            (woken, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        other.post(NewJob::new("j")).unwrap();
        let (woken, after) = waiter.join().unwrap();
        assert!(woken);
        // Woken by the notification, not by the 5 s safety net.
        assert!(after < Duration::from_secs(2), "woken after {after:?}");
    });
}

#[test]
fn wait_until_complete_is_woken_by_a_consume_on_another_board() {
    let Some(t) = board(long_lease()) else { return };
    let other = t.guard.board(long_lease());
    let job = t.board.post(NewJob::new("j")).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| t.board.wait_until_complete(job.id, Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(200));
        let claim = other.claim(job.id, "B").unwrap();
        other.consume(&claim).unwrap();
        let waited = waiter.join().unwrap().unwrap();
        assert!(waited.is_complete());
    });
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let Some(t) = board(long_lease()) else { return };
    assert_eq!(PostgresBoard::SCHEMA_VERSION, 3);
    let mut client = Client::connect(&t.guard.url, NoTls).unwrap();
    let version: String = client
        .query_one(
            &format!(
                "SELECT value FROM {}.jobboard_meta WHERE key = 'schema_version'",
                quote_ident(&t.guard.schema)
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, "3");
    // Connecting again finds it at its version and changes nothing.
    let job = t.board.post(NewJob::new("kept")).unwrap();
    let again = t.guard.board(long_lease());
    assert_eq!(again.get(job.id).unwrap().name, "kept");
    t.guard
        .raw("UPDATE jobboard_meta SET value = '99' WHERE key = 'schema_version'");
    let err =
        PostgresBoard::connect_in_schema(&t.guard.url, &t.guard.schema, long_lease()).unwrap_err();
    assert!(
        matches!(
            err,
            JobBoardError::SchemaTooNew {
                board: "postgres",
                found: 99,
                supported: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn boards_in_two_schemas_are_separate_and_records_may_share_one() {
    let Some(a) = board(long_lease()) else { return };
    let b = board(long_lease()).unwrap();
    a.board.post(NewJob::new("in a")).unwrap();
    assert!(b.board.all_jobs().unwrap().is_empty());
    // The records of a backend sit beside the board in its schema.
    let records =
        taskflow_persistence::PostgresBackend::connect_in_schema(&a.guard.url, &a.guard.schema)
            .unwrap();
    use taskflow_persistence::Backend as _;
    records
        .save_logbook(&taskflow_persistence::LogBook::new("book"))
        .unwrap();
    assert_eq!(records.list_logbooks().unwrap().len(), 1);
    assert_eq!(a.board.all_jobs().unwrap().len(), 1);
    let again = a.guard.board(long_lease());
    assert_eq!(again.all_jobs().unwrap().len(), 1);
}

#[test]
fn a_custom_clock_replaces_the_server_clock() {
    let clock = ManualClock::new(1_000_000);
    let options = BoardOptions {
        lease: Duration::from_secs(10),
        clock: clock.clock(),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else { return };
    let job = b.post(NewJob::new("j")).unwrap();
    assert_eq!(job.created_at, 1_000_000);
    let first = b.claim(job.id, "A").unwrap();
    assert_eq!(first.expires_at, 1_010_000);
    assert!(!b.wait(Duration::from_millis(100)).unwrap());
    clock.advance(Duration::from_secs(10));
    assert!(b.wait(Duration::from_secs(5)).unwrap());
    let second = b.claim(job.id, "B").unwrap();
    assert_eq!(second.epoch, 2);
    assert!(matches!(
        b.renew(&first).unwrap_err(),
        JobBoardError::NotOwner { .. }
    ));
}

/// Migrating a version 2 board gives its jobs their factory from their
/// details, so `claim_next` filters them as the jobs posted since; a job
/// whose details are not JSON keeps none, and claiming it reports it.
#[test]
fn the_v3_migration_reads_old_jobs_factories() {
    let Some(t) = board(long_lease()) else { return };
    let post = |name: &str, factory: Option<&str>| {
        let mut job = NewJob::new(name);
        if let Some(factory) = factory {
            job.details = serde_json::json!({ crate::Job::FACTORY_KEY: factory, "n": 1 });
        }
        t.board.post(job).unwrap()
    };
    let broken = post("broken", None);
    let transcode = post("transcode", Some("transcode"));
    let plain = post("plain", None);
    // As a version 2 board left them.
    t.guard.raw(&format!(
        "ALTER TABLE jobboard_jobs DROP COLUMN factory; \
         UPDATE jobboard_jobs SET details = '{{\"a\":' WHERE id = '{}'; \
         UPDATE jobboard_meta SET value = '2' WHERE key = 'schema_version'",
        broken.id
    ));
    let migrated = t.guard.board(long_lease());
    let resize = crate::ClaimFilter::any().factories(["resize"]);
    let err = migrated.claim_next("A", 1, &resize).unwrap_err();
    assert!(
        matches!(&err, JobBoardError::Corrupt { id, .. } if *id == broken.id.to_string()),
        "{err}"
    );
    t.guard.raw(&format!(
        "UPDATE jobboard_jobs SET state = 'COMPLETE', lease_expires_at = NULL WHERE id = '{}'",
        broken.id
    ));
    let claimed = migrated.claim_next("A", 5, &resize).unwrap();
    assert_eq!(
        claimed.iter().map(|(job, _)| job.id).collect::<Vec<_>>(),
        [plain.id],
        "the job naming `transcode` is passed over"
    );
    let any = migrated
        .claim_next("B", 5, &crate::ClaimFilter::any().factories(["transcode"]))
        .unwrap();
    assert_eq!(
        any.iter().map(|(job, _)| job.id).collect::<Vec<_>>(),
        [transcode.id]
    );
}

#[test]
fn corrupt_rows_are_reported_naming_the_job() {
    let Some(t) = board(long_lease()) else { return };
    let job = t.board.post(NewJob::new("j")).unwrap();
    t.guard.raw("UPDATE jobboard_jobs SET state = 'EXPLODED'");
    let err = t.board.get(job.id).unwrap_err();
    assert!(
        matches!(&err, JobBoardError::Corrupt { board: "postgres", id, reason }
            if *id == job.id.to_string() && reason.contains("EXPLODED")),
        "{err}"
    );
    t.guard
        .raw("UPDATE jobboard_jobs SET state = 'UNCLAIMED', details = '{\"a\":'");
    assert!(matches!(
        t.board.iterjobs(false).unwrap_err(),
        JobBoardError::Corrupt { .. }
    ));
}

#[test]
fn an_unreachable_server_is_a_backend_error_naming_it() {
    let err = PostgresBoard::connect(
        "postgres://postgres@127.0.0.1:1/test?connect_timeout=2",
        BoardOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            JobBoardError::Backend {
                board: "postgres",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn bad_schema_names_are_refused() {
    for name in ["", &"x".repeat(64), "a\0b"] {
        let err =
            PostgresBoard::connect_in_schema(&url(), name, BoardOptions::default()).unwrap_err();
        assert!(err.to_string().contains("schema name"), "{err}");
    }
}

/// Records in a fresh schema of the board's database, dropped with the
/// guard.
fn records_beside(t: &TestBoard) -> (taskflow_persistence::PostgresBackend, DropSchema) {
    let schema = format!("taskflow_records_test_{}", Uuid::new_v4().simple());
    let records =
        taskflow_persistence::PostgresBackend::connect_in_schema(&t.guard.url, &schema).unwrap();
    (
        records,
        DropSchema {
            url: t.guard.url.clone(),
            schema,
        },
    )
}

fn post_factory(
    board: &dyn JobBoard,
    records: &dyn Backend,
    name: &str,
    key: Option<&str>,
) -> Result<Job, JobBoardError> {
    let args = serde_json::Value::Null;
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

fn logbook_names(records: &dyn Backend) -> Vec<String> {
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
fn in_one_database_a_job_and_its_records_are_one_transaction() {
    let Some(t) = board(long_lease()) else { return };
    let (records, _records_schema) = records_beside(&t);
    // A job insert that fails after the records were written.
    t.guard.raw(
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'the disk is full'; END $$; \
         CREATE TRIGGER boom BEFORE INSERT ON jobboard_jobs FOR EACH ROW \
         WHEN (NEW.name = 'boom') EXECUTE FUNCTION boom();",
    );
    let peer = t.guard.board(long_lease());

    let job = post_factory(&t.board, &records, "fine", None).unwrap();
    let book = records.get_logbook(job.logbook.unwrap()).unwrap();
    assert_eq!(book.flow_details[0].uuid, job.flow_detail.unwrap());
    assert!(
        peer.wait(Duration::from_secs(5)).unwrap(),
        "notified at the commit"
    );
    assert_eq!(peer.get(job.id).unwrap().name, "fine");

    let err = post_factory(&t.board, &records, "boom", None).unwrap_err();
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert_eq!(logbook_names(&records), ["fine"], "the records rolled back");
    post_factory(&t.board, &records, "keyed", Some("k")).unwrap();
    let err = post_factory(&t.board, &records, "again", Some("k")).unwrap_err();
    assert!(matches!(err, JobBoardError::AlreadyPosted { .. }), "{err}");
    assert_eq!(logbook_names(&records), ["fine", "keyed"]);
    assert_eq!(t.board.all_jobs().unwrap().len(), 2);
    // The records' own connections still work in their schema.
    records
        .save_logbook(&taskflow_persistence::LogBook::new("later"))
        .unwrap();
    assert_eq!(logbook_names(&records), ["fine", "keyed", "later"]);

    // Records elsewhere (here: in memory) are written first, then the job:
    // the failed insert leaves them, marked for the conductor's purge.
    let memory = taskflow_persistence::MemoryBackend::new();
    post_factory(&t.board, &memory, "boom", None).unwrap_err();
    assert_eq!(logbook_names(&memory), ["boom"]);
}

#[test]
fn records_and_board_in_one_schema_post_in_one_transaction() {
    let Some(t) = board(long_lease()) else { return };
    let records =
        taskflow_persistence::PostgresBackend::connect_in_schema(&t.guard.url, &t.guard.schema)
            .unwrap();
    let job = post_factory(&t.board, &records, "together", Some("k")).unwrap();
    assert!(records.get_logbook(job.logbook.unwrap()).is_ok());
    post_factory(&t.board, &records, "again", Some("k")).unwrap_err();
    assert_eq!(logbook_names(&records), ["together"]);
}

#[test]
fn destroy_drops_the_board_and_leaves_records_beside_it() {
    let Some(t) = board(long_lease()) else { return };
    let records =
        taskflow_persistence::PostgresBackend::connect_in_schema(&t.guard.url, &t.guard.schema)
            .unwrap();
    post_factory(&t.board, &records, "kept", None).unwrap();
    t.board.destroy().unwrap();
    assert_eq!(logbook_names(&records), ["kept"], "the records stay");
    let again = t.guard.board(long_lease());
    assert!(again.all_jobs().unwrap().is_empty(), "a new board is empty");
}
