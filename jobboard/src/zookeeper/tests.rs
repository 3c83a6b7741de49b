//! The conformance suite on a real ZooKeeper, plus what only this board
//! has.
//!
//! The server is `TASKFLOW_TEST_ZK_URL` (`HOST:PORT[,HOST:PORT...]`,
//! default `127.0.0.1:2181`); when it is unreachable the tests print
//! `skipping: ...` and pass, unless `TASKFLOW_REQUIRE_SERVICES=1`. Each
//! board gets a fresh root node, deleted with everything under it when the
//! board drops.

use std::time::Duration;

use serde_json::json;

use super::ZookeeperBoard;
use crate::testkit::WithGuard;
use crate::{BoardOptions, Entity, JobBoard, JobBoardError, JobState, ManualClock, NewJob};

/// Deletes a test board's root node when dropped.
#[derive(Debug)]
pub(super) struct Cleanup(ZookeeperBoard);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("could not delete {}: {e}", self.0.root());
        }
    }
}

pub(super) fn hosts() -> String {
    std::env::var("TASKFLOW_TEST_ZK_URL").unwrap_or_else(|_| "127.0.0.1:2181".into())
}

/// A board on a fresh root of the test server, or `None` (having said
/// why) when the server is unreachable and not required.
pub(super) fn board(options: BoardOptions) -> Option<WithGuard<ZookeeperBoard, Cleanup>> {
    let hosts = hosts();
    let root = format!("/taskflow-test/{}", uuid::Uuid::new_v4());
    match ZookeeperBoard::connect(&hosts, &root, options.clone()) {
        Ok(board) => {
            let guard = Cleanup(ZookeeperBoard::connect(&hosts, &root, options).ok()?);
            Some(WithGuard { board, guard })
        }
        Err(e) => {
            if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("zookeeper at {hosts} unreachable: {e} (TASKFLOW_REQUIRE_SERVICES=1)");
            }
            eprintln!("skipping: zookeeper at {hosts} unreachable: {e}");
            None
        }
    }
}

mod conformance {
    crate::board_conformance!(
        super::board,
        peer = |b: &crate::testkit::WithGuard<super::ZookeeperBoard, super::Cleanup>| {
            super::ZookeeperBoard::connect(
                &super::hosts(),
                b.board.root(),
                b.board.options().clone(),
            )
            .unwrap()
        }
    );
}

#[test]
fn urls_name_hosts_and_root() {
    let (hosts, root) = super::parse_url("zookeeper://a:1,b:2/x/y/").unwrap();
    assert_eq!((hosts.as_str(), root.as_str()), ("a:1,b:2", "/x/y"));
    let (_, root) = super::parse_url("zookeeper://a:1").unwrap();
    assert_eq!(root, super::DEFAULT_ROOT);
    assert!(super::parse_url("redis://a:1").is_err());
    let (hosts, root) = super::parse_url("zk://a:1/j").unwrap();
    assert_eq!((hosts.as_str(), root.as_str()), ("a:1", "/j"));
    assert!(super::parse_url("zookeeper:///x").is_err());
}

#[test]
fn an_unreachable_server_is_a_backend_error_naming_it() {
    // Port 1 on loopback: nothing listens there.
    let err = ZookeeperBoard::connect("127.0.0.1:1", "/x", BoardOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            JobBoardError::Backend {
                board: "zookeeper",
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
}

/// The layout is TaskFlow's: `job0000000001` nodes under the root, a
/// `.lock` sibling while claimed (ephemeral, holding the owner), entities
/// under `.entity`; destroy removes everything.
#[test]
fn jobs_are_sequential_nodes_with_ephemeral_locks() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_secs(60),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let first = b.post(NewJob::new("a")).unwrap();
    let second = b.post(NewJob::new("b")).unwrap();
    assert_eq!((first.sequence, second.sequence), (1, 2));
    let claim = b.claim(second.id, "conductor-1").unwrap();
    b.register_entity(&Entity {
        name: "conductor-1".into(),
        meta: json!({"host": "h"}),
    })
    .unwrap();
    let root = b.board.root().to_owned();
    let (children, lock, lock_stat) = b.board.runtime().unwrap().block_on(async {
        let c = zookeeper_client::Client::connect(&hosts()).await.unwrap();
        let mut children = c.list_children(&root).await.unwrap();
        children.sort();
        let (lock, stat) = c
            .get_data(&format!("{root}/job0000000002.lock"))
            .await
            .unwrap();
        (children, lock, stat)
    });
    assert_eq!(
        children,
        [
            ".clock",
            ".entity",
            ".events",
            ".ids",
            ".keys",
            ".seq",
            ".unique",
            "job0000000001",
            "job0000000002",
            "job0000000002.lock"
        ]
    );
    let lock: serde_json::Value = serde_json::from_slice(&lock).unwrap();
    assert_eq!(lock, json!({"owner": "conductor-1", "epoch": 1}));
    assert_ne!(lock_stat.ephemeral_owner, 0, "the lock is ephemeral");
    b.consume(&claim).unwrap();
    assert!(b.board.destroy().unwrap() >= 10);
}

/// A claim whose board's session ends (the board closed, its process
/// died) loses its lock node at once, and the job is claimable at once,
/// with a higher epoch, though its lease has long to run.
#[test]
fn a_claim_lapses_with_its_session() {
    let options = BoardOptions {
        lease: Duration::from_secs(600),
        ..BoardOptions::default()
    };
    let Some(b) = board(options.clone()) else {
        return;
    };
    let owner = ZookeeperBoard::connect(&hosts(), b.board.root(), options).unwrap();
    let job = b.post(NewJob::new("j")).unwrap();
    let claim = owner.claim(job.id, "A").unwrap();
    // A watcher holds the session too, until close stops it.
    let _heard = owner
        .subscribe(std::sync::Arc::new(crate::CapturingListener::new()))
        .unwrap();
    assert!(matches!(
        b.claim(job.id, "B"),
        Err(JobBoardError::AlreadyClaimed { .. })
    ));
    // Close waits until the server closed the session (not for its
    // second of patience): the lock is gone when it returns.
    let closing = std::time::Instant::now();
    owner.close().unwrap();
    assert!(
        closing.elapsed() < Duration::from_millis(900),
        "{:?}",
        closing.elapsed()
    );
    let seen = b.get(job.id).unwrap();
    assert_eq!(seen.state, JobState::Unclaimed);
    assert_eq!(seen.lease_expires_at, Some(claim.expires_at));
    assert!(b.wait(Duration::from_secs(5)).unwrap());
    let second = b.claim(job.id, "B").unwrap();
    assert_eq!(second.epoch, claim.epoch + 1);
    assert!(matches!(
        b.renew(&claim),
        Err(JobBoardError::NotOwner { .. })
    ));
    b.consume(&second).unwrap();
}

/// An owner that renews after its session was replaced (a new session:
/// its lock went with the old one) takes its lock back, if nobody claimed
/// the job meanwhile.
#[test]
fn a_renewal_takes_a_lost_lock_back() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_secs(600),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let claim = b.claim(job.id, "A").unwrap();
    let inner = &b.board.inner;
    // End the session under the board, as an expiry does.
    let old = super::lock(&inner.client).take().unwrap();
    drop(old);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.find_owner(job.id).unwrap(), None, "the lock went");
    let renewed = b.renew(&claim).unwrap();
    assert_eq!(renewed.epoch, claim.epoch);
    assert_eq!(b.find_owner(job.id).unwrap().as_deref(), Some("A"));
    b.consume(&renewed).unwrap();
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
fn corrupt_records_are_reported_not_panicked_on() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let path = format!("{}/job{:010}", b.board.root(), job.sequence);
    b.board.runtime().unwrap().block_on(async {
        let c = zookeeper_client::Client::connect(&hosts()).await.unwrap();
        c.set_data(&path, b"{not json", None).await.unwrap();
    });
    let err = b.get(job.id).unwrap_err();
    assert!(matches!(err, JobBoardError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&path), "{err}");
    assert!(matches!(
        b.iterjobs(false).unwrap_err(),
        JobBoardError::Corrupt { .. }
    ));
}

/// A change retried with its token (its reply lost) returns what the
/// first try did instead of refusing itself.
#[test]
fn a_retried_change_returns_what_the_first_did() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_secs(60),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let inner = &b.board.inner;
    let job = b.post(NewJob::new("j")).unwrap();
    let (first, again, other) = b.board.runtime().unwrap().block_on(async {
        let c = inner.client().await.ok().unwrap();
        let first = inner
            .claim_once(&c, job.id, "A", "op-1")
            .await
            .ok()
            .unwrap();
        let again = inner
            .claim_once(&c, job.id, "A", "op-1")
            .await
            .ok()
            .unwrap();
        let other = matches!(
            inner.claim_once(&c, job.id, "B", "op-2").await,
            Err(super::Fail::Board(JobBoardError::AlreadyClaimed { .. }))
        );
        (first, again, other)
    });
    assert_eq!(first, again, "a retry is the same claim");
    assert!(other, "another claim is refused");
    b.board.runtime().unwrap().block_on(async {
        let c = inner.client().await.ok().unwrap();
        let outcome = crate::Outcome::Consumed;
        assert!(inner
            .release_once(&c, &first, Some(&outcome), "op-3")
            .await
            .is_ok());
        assert!(
            inner
                .release_once(&c, &first, Some(&outcome), "op-3")
                .await
                .is_ok(),
            "a retry is not refused"
        );
        assert!(
            matches!(
                inner.release_once(&c, &first, Some(&outcome), "op-4").await,
                Err(super::Fail::Board(JobBoardError::NotOwner { .. }))
            ),
            "a second consume is"
        );
    });
}
