//! The conformance suite on a real Redis, plus what only this board has.
//!
//! The server is `TASKFLOW_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`); when it is unreachable the tests print
//! `skipping: ...` and pass, unless `TASKFLOW_REQUIRE_SERVICES=1`. Each
//! board gets a fresh key prefix, and its keys are deleted when it drops.

use std::time::Duration;

use serde_json::json;

use super::RedisBoard;
use crate::testkit::WithGuard;
use crate::{BoardOptions, Entity, JobBoard, JobBoardError, ManualClock, NewJob};
use taskflow_persistence::Epoch;

/// Deletes a test board's keys when dropped.
#[derive(Debug)]
pub(super) struct Cleanup(RedisBoard);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("could not delete the keys of {}: {e}", self.0.key_prefix());
        }
    }
}

fn url() -> String {
    std::env::var("TASKFLOW_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A board on a fresh prefix of the test server, or `None` (having said
/// why) when the server is unreachable and not required.
pub(super) fn board(options: BoardOptions) -> Option<WithGuard<RedisBoard, Cleanup>> {
    let url = url();
    let prefix = format!("taskflow-test:{}", uuid::Uuid::new_v4());
    match RedisBoard::connect(&url, &prefix, options.clone()) {
        Ok(board) => {
            let guard = Cleanup(RedisBoard::connect(&url, &prefix, options).ok()?);
            Some(WithGuard { board, guard })
        }
        Err(e) => {
            if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("redis at {url} unreachable: {e} (TASKFLOW_REQUIRE_SERVICES=1)");
            }
            eprintln!("skipping: redis at {url} unreachable: {e}");
            None
        }
    }
}

mod conformance {
    crate::board_conformance!(
        super::board,
        peer = |b: &crate::testkit::WithGuard<super::RedisBoard, super::Cleanup>| {
            super::RedisBoard::connect(
                &super::url(),
                b.board.key_prefix(),
                b.board.options().clone(),
            )
            .unwrap()
        }
    );
}

#[test]
fn entities_are_listed_by_name_and_updated() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    assert!(b.board.entities().unwrap().is_empty());
    let a = Entity {
        name: "conductor-b".into(),
        meta: json!({"host": "h1"}),
    };
    b.register_entity(&a).unwrap();
    b.register_entity(&Entity {
        name: "conductor-a".into(),
        meta: json!(null),
    })
    .unwrap();
    b.register_entity(&Entity {
        meta: json!({"host": "h2"}),
        ..a
    })
    .unwrap();
    let all = b.board.entities().unwrap();
    assert_eq!(
        all.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["conductor-a", "conductor-b"]
    );
    assert_eq!(all[1].meta, json!({"host": "h2"}));
}

#[test]
fn every_key_is_under_the_prefix_and_destroy_removes_them() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let claim = b.claim(job.id, "A").unwrap();
    b.consume(&claim).unwrap();
    b.post(NewJob::new("k")).unwrap();
    b.register_entity(&Entity {
        name: "e".into(),
        meta: json!(null),
    })
    .unwrap();
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let pattern = format!("{}:*", b.board.key_prefix());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
    // 2 jobs, seq, pending, leases (emptied: gone), complete, events, entities.
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert_eq!(b.board.destroy().unwrap(), 7);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn a_custom_clock_replaces_the_server_clock() {
    let clock = ManualClock::new(1_000_000);
    let options = BoardOptions {
        lease: Duration::from_secs(10),
        clock: clock.clock(),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else {
        return;
    };
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

#[test]
fn an_unreachable_server_is_a_backend_error_naming_it() {
    // Port 1 on loopback: nothing listens there.
    let err = RedisBoard::connect("redis://127.0.0.1:1", "x", BoardOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, JobBoardError::Backend { board: "redis", .. }),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
    let err = RedisBoard::connect("not a url", "x", BoardOptions::default()).unwrap_err();
    assert!(matches!(err, JobBoardError::Backend { .. }), "{err}");
    for url in [
        "redis://u:hunter2@127.0.0.1:1/0",
        "redis://u:hunter2@[bad/0",
    ] {
        let err = RedisBoard::connect(url, "x", BoardOptions::default()).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }
}

#[test]
fn corrupt_records_are_reported_not_panicked_on() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let key = format!("{}:job:{}", b.board.key_prefix(), job.id);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("details")
        .arg("{not json")
        .query(&mut conn)
        .unwrap();
    let err = b.get(job.id).unwrap_err();
    assert!(matches!(err, JobBoardError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&job.id.to_string()), "{err}");
    assert!(matches!(
        b.iterjobs(false).unwrap_err(),
        JobBoardError::Corrupt { .. }
    ));
}

/// The scripts as the pool retries them: the same op token again (the
/// reply to the first was lost) returns what the first call did, instead
/// of refusing it or doing it twice.
#[test]
fn a_retried_script_call_returns_what_the_first_did() {
    let options = BoardOptions {
        lease: Duration::from_secs(60),
        retention: crate::Retention::Last(0),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else {
        return;
    };
    let board = &b.board;
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let job = board.post(NewJob::new("j")).unwrap();
    let (key, id) = (board.keys.job(job.id), job.id.to_string());
    let claim = |owner: &str, op: &str, conn: &mut redis::Connection| -> Vec<String> {
        board
            .scripts
            .claim
            .key(&key)
            .key(board.keys.leases())
            .key(board.keys.scheduled())
            .key(board.keys.events())
            .arg("")
            .arg(&id)
            .arg(owner)
            .arg("")
            .arg(op)
            .arg(60_000)
            .arg(super::EVENTS_KEPT)
            .invoke(conn)
            .unwrap()
    };
    let first = claim("A", "op-1", &mut conn);
    assert_eq!(first[..2], ["ok", "1"]);
    assert_eq!(
        claim("A", "op-1", &mut conn),
        first,
        "a retry is the same claim"
    );
    assert_eq!(claim("B", "op-2", &mut conn), ["claimed", "A"]);
    let held = crate::Claim {
        job: job.id,
        owner: "A".into(),
        epoch: Epoch::new(1),
        expires_at: first[2].parse().unwrap(),
        control: None,
    };

    let consume = |op: &str, conn: &mut redis::Connection| -> Vec<String> {
        board
            .scripts
            .complete
            .key(&key)
            .key(board.keys.pending())
            .key(board.keys.leases())
            .key(board.keys.complete())
            .key(board.keys.unique())
            .key(board.keys.scheduled())
            .key(board.keys.events())
            .arg("")
            .arg(&id)
            .arg("A")
            .arg("1")
            .arg(op)
            .arg("\"consumed\"")
            .arg("consume")
            .arg(super::EVENTS_KEPT)
            .invoke(conn)
            .unwrap()
    };
    assert_eq!(consume("op-3", &mut conn), ["ok"]);
    assert_eq!(consume("op-3", &mut conn), ["ok"], "a retry is not refused");
    assert_eq!(
        consume("op-4", &mut conn),
        ["not_owner"],
        "a second consume is"
    );
    assert!(matches!(
        board.consume(&held).unwrap_err(),
        JobBoardError::NotOwner { .. }
    ));

    let purge = |op: &str, conn: &mut redis::Connection| -> Vec<String> {
        board
            .scripts
            .purge
            .key(board.keys.complete())
            .key(board.keys.purged(op))
            .key(board.keys.exec_keys())
            .key(board.keys.unique())
            .key(board.keys.events())
            .arg("")
            .arg(board.keys.job_prefix())
            .arg("last")
            .arg(0)
            .arg(100)
            .arg(super::EVENTS_KEPT)
            .invoke(conn)
            .unwrap()
    };
    let purged = purge("op-5", &mut conn);
    assert_eq!(purged.len(), 1);
    assert!(purged[0].contains(&id));
    assert_eq!(
        purge("op-5", &mut conn),
        purged,
        "a retry returns the same jobs"
    );
    assert!(purge("op-6", &mut conn).is_empty());
    assert!(matches!(board.get(job.id), Err(JobBoardError::NotFound(_))));
}

/// `claim_next.lua` sent again with its op token (the reply to the first
/// was lost) returns the claims the first call made, and claims no more
/// than the most asked.
#[test]
fn a_retried_claim_next_returns_the_claims_it_made() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_secs(60),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let board = &b.board;
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let jobs: Vec<_> = (0..3)
        .map(|i| board.post(NewJob::new(format!("j{i}"))).unwrap())
        .collect();
    let next = |op: &str, retry: &str, conn: &mut redis::Connection| -> Vec<String> {
        let reply: Vec<redis::Value> = board
            .scripts
            .claim_next
            .key(board.keys.pending())
            .key(board.keys.leases())
            .key(board.keys.scheduled())
            .key(board.keys.events())
            .arg("")
            .arg("A")
            .arg(op)
            .arg(60_000)
            .arg(super::EVENTS_KEPT)
            .arg(retry)
            .arg(2)
            .arg(0)
            .arg(super::LIST_PAGE)
            .arg(board.keys.job_prefix())
            .arg(-1)
            .invoke(conn)
            .unwrap();
        // The id of each claimed job, from its fields.
        reply
            .into_iter()
            .skip(2)
            .map(|entry| {
                let entry = super::items(entry, "entry").unwrap();
                let fields = super::codec::fields(entry[3].clone(), "fields").unwrap();
                fields["id"].clone()
            })
            .collect()
    };
    let first = next("op-1", "0", &mut conn);
    assert_eq!(first, [jobs[0].id.to_string(), jobs[1].id.to_string()]);
    assert_eq!(
        next("op-1", "1", &mut conn),
        first,
        "a retry is the same claims"
    );
    assert_eq!(
        next("op-2", "0", &mut conn),
        [jobs[2].id.to_string()],
        "a new call claims what is left"
    );
    for job in &jobs {
        assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("A"));
    }
}

/// A job posted before the board kept its factory as a field of its own
/// is filtered by the factory its details name; a job whose record does
/// not decode is reported (by name) when it is all `claim_next` claimed.
#[test]
fn claim_next_reads_old_jobs_factories_and_reports_corrupt_ones() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut old = NewJob::new("old");
    old.details = serde_json::json!({ crate::Job::FACTORY_KEY: "transcode" });
    let old = b.post(old).unwrap();
    let key = format!("{}:job:{}", b.board.key_prefix(), old.id);
    let _: () = redis::cmd("HDEL")
        .arg(&key)
        .arg("factory")
        .query(&mut conn)
        .unwrap();
    let resize = crate::ClaimFilter::any().factories(["resize"]);
    assert!(b.claim_next("A", 1, &resize).unwrap().is_empty());
    let transcode = crate::ClaimFilter::any().factories(["transcode"]);
    let claimed = b.claim_next("A", 1, &transcode).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].0.id, old.id);
    b.consume(&claimed[0].1).unwrap();

    let bad = b.post(NewJob::new("bad")).unwrap();
    let key = format!("{}:job:{}", b.board.key_prefix(), bad.id);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("priority")
        .arg("high")
        .query(&mut conn)
        .unwrap();
    let err = b
        .claim_next("A", 1, &crate::ClaimFilter::any())
        .unwrap_err();
    assert!(matches!(err, JobBoardError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&bad.id.to_string()), "{err}");
}

/// With more running claims than `claim_next.lua` reads from the lease
/// index at once (4 pages), it reads each member's hash instead and still
/// passes over them: the next claimer gets the jobs after them, in order.
#[test]
fn claim_next_passes_over_more_running_claims_than_it_reads() {
    let options = BoardOptions {
        lease: Duration::from_secs(600),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else {
        return;
    };
    let running = 4 * super::LIST_PAGE + 2;
    let names: Vec<String> = (0..running + 3).map(|i| format!("j{i}")).collect();
    for name in &names {
        b.post(NewJob::new(name.as_str())).unwrap();
    }
    let mut held = 0;
    while held < running {
        let claimed = b
            .claim_next("A", (running - held).min(100), &crate::ClaimFilter::any())
            .unwrap();
        assert!(!claimed.is_empty());
        held += claimed.len();
    }
    let rest = b.claim_next("B", 10, &crate::ClaimFilter::any()).unwrap();
    let got: Vec<&str> = rest.iter().map(|(j, _)| j.name.as_str()).collect();
    assert_eq!(got, &names[running..]);
}

#[test]
fn huge_leases_and_retentions_stay_exact() {
    assert_eq!(super::script_ms(Duration::from_millis(1500)), 1500);
    assert_eq!(super::script_ms(Duration::MAX), super::MAX_SCRIPT_MS);
    let options = BoardOptions {
        lease: Duration::MAX,
        retention: crate::Retention::For(Duration::MAX),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let claim = b.claim(job.id, "A").unwrap();
    assert!(claim.expires_at > job.created_at + super::MAX_SCRIPT_MS - 1);
    assert_eq!(
        b.get(job.id).unwrap().lease_expires_at,
        Some(claim.expires_at)
    );
    b.consume(&claim).unwrap();
    assert!(b.purge().unwrap().is_empty());
}

/// `iterjobs` reads long boards in pages; the order holds across pages.
#[test]
fn iterjobs_keeps_its_order_across_pages() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_secs(60),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let n = super::LIST_PAGE * 2 + 10;
    let jobs: Vec<crate::Job> = (0..n)
        .map(|i| {
            let mut new = NewJob::new(format!("j{i}"));
            new.priority = (i % 3) as i32;
            b.post(new).unwrap()
        })
        .collect();
    let mut expected = jobs.clone();
    expected.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.sequence.cmp(&b.sequence))
    });
    let ids = |jobs: &[crate::Job]| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(ids(&b.iterjobs(false).unwrap()), ids(&expected));
    // Claim every third job in the order; complete one: both pages see it.
    for job in expected.iter().step_by(3) {
        b.claim(job.id, "A").unwrap();
    }
    let done = b.claim(expected[1].id, "A").unwrap();
    b.consume(&done).unwrap();
    let open: Vec<_> = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0 && *i != 1)
        .map(|(_, j)| j.id)
        .collect();
    assert_eq!(ids(&b.iterjobs(true).unwrap()), open);
    assert_eq!(b.iterjobs(false).unwrap().len(), n - 1);
}

/// A scheduled job is stored with its time: a new board on the same
/// prefix (another host, a restart) neither loses nor advances it.
#[test]
fn a_reconnected_board_keeps_not_before() {
    let clock = ManualClock::new(1_000_000);
    let options = BoardOptions {
        lease: Duration::from_secs(10),
        clock: clock.clock(),
        ..BoardOptions::default()
    };
    let Some(b) = board(options.clone()) else {
        return;
    };
    let at = 1_000_000 + 5_000;
    let job = b.post(NewJob::new("later").not_before(at)).unwrap();
    b.board.close().unwrap();
    let again = RedisBoard::connect(&url(), b.board.key_prefix(), options).unwrap();
    assert_eq!(again.get(job.id).unwrap(), job);
    assert!(matches!(
        again.claim(job.id, "A"),
        Err(JobBoardError::NotYet { not_before, .. }) if not_before == at
    ));
    assert!(!again.wait(Duration::ZERO).unwrap());
    assert!(again.iterjobs(true).unwrap().is_empty());
    clock.advance(Duration::from_millis(4_999));
    assert!(!again.wait(Duration::ZERO).unwrap());
    clock.advance(Duration::from_millis(1));
    assert!(again.wait(Duration::ZERO).unwrap());
    assert_eq!(again.claim(job.id, "A").unwrap().epoch, 1);
    assert_eq!(again.get(job.id).unwrap().not_before, Some(at));
    // The closed board makes no more calls.
    assert!(matches!(b.get(job.id), Err(JobBoardError::Closed { .. })));
}

/// The key indexes hold only what the board needs: a uniqueness key while
/// its job is not complete, an execution key until its job is purged.
#[test]
fn key_indexes_shrink_with_the_board() {
    let options = BoardOptions {
        lease: Duration::from_secs(60),
        retention: crate::Retention::Last(0),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else {
        return;
    };
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut len = |key: String| -> u64 { redis::cmd("HLEN").arg(key).query(&mut conn).unwrap() };
    let jobs: Vec<_> = (0..3)
        .map(|i| {
            b.post(
                NewJob::new("j")
                    .unique_key(format!("u{i}"))
                    .key(format!("k{i}")),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        (len(b.board.keys.unique()), len(b.board.keys.exec_keys())),
        (3, 3)
    );
    for job in &jobs {
        let claim = b.claim(job.id, "A").unwrap();
        b.consume(&claim).unwrap();
    }
    assert_eq!(
        (len(b.board.keys.unique()), len(b.board.keys.exec_keys())),
        (0, 3)
    );
    assert_eq!(b.purge().unwrap().len(), 3);
    assert_eq!(
        (len(b.board.keys.unique()), len(b.board.keys.exec_keys())),
        (0, 0)
    );
}

/// A reopen retried with its op token (its reply lost) returns the job it
/// reopened instead of refusing it as not complete.
#[test]
fn a_retried_reopen_returns_the_reopened_job() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_secs(60),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let board = &b.board;
    let job = board.post(NewJob::new("j")).unwrap();
    let claim = board.claim(job.id, "A").unwrap();
    board.consume(&claim).unwrap();
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let reopen = |op: &str, conn: &mut redis::Connection| -> redis::Value {
        board
            .scripts
            .reopen
            .key(board.keys.job(job.id))
            .key(board.keys.pending())
            .key(board.keys.complete())
            .key(board.keys.unique())
            .key(board.keys.scheduled())
            .key(board.keys.events())
            .arg("")
            .arg(job.id.to_string())
            .arg(op)
            .arg(100)
            .arg(board.keys.job_prefix())
            .invoke(conn)
            .unwrap()
    };
    let status = |v: redis::Value| {
        super::codec::text_at(&super::codec::items(v, "k").unwrap(), 0, "k").unwrap()
    };
    assert_eq!(status(reopen("op-1", &mut conn)), "ok");
    assert_eq!(
        status(reopen("op-1", &mut conn)),
        "ok",
        "a retry is not refused"
    );
    assert_eq!(status(reopen("op-2", &mut conn)), "not_complete");
    let got = board.get(job.id).unwrap();
    assert_eq!((got.revision, got.state), (2, crate::JobState::Unclaimed));
    assert_eq!(board.iterjobs(true).unwrap().len(), 1);
}
