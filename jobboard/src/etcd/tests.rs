//! The conformance suite on a real etcd, plus what only this board has.
//!
//! The server is `TASKFLOW_TEST_ETCD_URL` (default
//! `http://127.0.0.1:2379`); when it is unreachable the tests print
//! `skipping: ...` and pass, unless `TASKFLOW_REQUIRE_SERVICES=1`. Each
//! board gets a fresh key prefix, and its keys are deleted when it drops.
//!
//! The lease cases of the suite ask for leases of 200-500 ms; this board
//! rounds them up to the server's minimum TTL (2 s on a default server),
//! and every claim says so in its `expires_at`, which is what the cases
//! sleep past: they pass unchanged, each lapse taking about 2 s.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{parse_url, ttl_for, EtcdBoard};
use crate::testkit::WithGuard;
use crate::{BoardOptions, Entity, JobBoard, JobBoardError, JobState, ManualClock, NewJob};

/// Deletes a test board's keys when dropped.
#[derive(Debug)]
pub(super) struct Cleanup(EtcdBoard);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("could not delete the keys of {}: {e}", self.0.key_prefix());
        }
    }
}

pub(super) fn url() -> String {
    std::env::var("TASKFLOW_TEST_ETCD_URL").unwrap_or_else(|_| "http://127.0.0.1:2379".into())
}

/// A board on a fresh prefix of the test server, or `None` (having said
/// why) when the server is unreachable and not required.
pub(super) fn board(options: BoardOptions) -> Option<WithGuard<EtcdBoard, Cleanup>> {
    let url = url();
    let prefix = format!("taskflow-test/{}", uuid::Uuid::new_v4());
    match EtcdBoard::connect(&url, &prefix, options.clone()) {
        Ok(board) => {
            let guard = Cleanup(EtcdBoard::connect(&url, &prefix, options).ok()?);
            Some(WithGuard { board, guard })
        }
        Err(e) => {
            if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("etcd at {url} unreachable: {e} (TASKFLOW_REQUIRE_SERVICES=1)");
            }
            eprintln!("skipping: etcd at {url} unreachable: {e}");
            None
        }
    }
}

mod conformance {
    crate::board_conformance!(
        super::board,
        peer = |b: &crate::testkit::WithGuard<super::EtcdBoard, super::Cleanup>| {
            super::EtcdBoard::connect(
                &super::url(),
                b.board.key_prefix(),
                b.board.options().clone(),
            )
            .unwrap()
        }
    );
}

#[test]
fn urls_name_endpoints_and_a_prefix() {
    assert_eq!(
        parse_url("etcd://127.0.0.1:2379").unwrap(),
        ("http://127.0.0.1:2379".into(), "taskflow".into())
    );
    assert_eq!(
        parse_url("etcd://a:1,b:2/jobs/eu/").unwrap(),
        ("http://a:1,http://b:2".into(), "jobs/eu".into())
    );
    for bad in ["etcd://", "etcd:///p", "redis://h", "h:1"] {
        let err = parse_url(bad).unwrap_err().to_string();
        assert!(err.contains(bad), "{err}");
    }
}

#[test]
fn leases_round_up_to_whole_seconds() {
    assert_eq!(ttl_for(Duration::from_millis(1)), 1);
    assert_eq!(ttl_for(Duration::from_millis(300)), 1);
    assert_eq!(ttl_for(Duration::from_secs(1)), 1);
    assert_eq!(ttl_for(Duration::from_millis(1001)), 2);
    assert_eq!(ttl_for(Duration::from_secs(60)), 60);
    assert_eq!(ttl_for(Duration::MAX), 9_000_000_000);
}

#[test]
fn a_short_lease_is_the_servers_minimum_ttl() {
    let Some(b) = board(BoardOptions {
        lease: Duration::from_millis(300),
        ..BoardOptions::default()
    }) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let before = crate::lease::system_millis();
    let claim = b.claim(job.id, "A").unwrap();
    let granted = claim.expires_at.saturating_sub(before);
    // A default etcd's minimum TTL is 2 s (1.5 election timeouts of 1 s,
    // rounded up); a server configured otherwise grants at least 1 s.
    assert!(
        granted >= 1000 && granted % 1000 < 100,
        "granted {granted} ms: not whole seconds"
    );
    eprintln!("a 300 ms lease was granted as {granted} ms");
    b.consume(&claim).unwrap();
}

#[test]
fn a_dead_owners_marker_vanishes_on_etcds_clock() {
    // The board's clock stands still: only etcd's revoke of the lease can
    // end the claim.
    let clock = ManualClock::starting_now();
    let options = BoardOptions {
        lease: Duration::from_secs(1),
        clock: clock.clock(),
        ..BoardOptions::default()
    };
    let Some(b) = board(options) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    let claim = b.claim(job.id, "A").unwrap();
    let start = Instant::now();
    // Nobody renews: etcd revokes the lease and the marker goes with it.
    loop {
        let seen = b.get(job.id).unwrap();
        if seen.state == JobState::Unclaimed {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still claimed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = start.elapsed();
    eprintln!("the marker of a 1 s lease vanished after {gone:?}");
    assert!(gone >= Duration::from_millis(900), "after {gone:?}");
    let second = b.claim(job.id, "B").unwrap();
    assert_eq!(second.epoch, claim.epoch + 1);
    assert!(matches!(
        b.renew(&claim).unwrap_err(),
        JobBoardError::NotOwner { .. }
    ));
    b.consume(&second).unwrap();
}

#[test]
fn entities_are_listed_by_name_and_updated() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    assert!(b.entities().unwrap().is_empty());
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
    let all = b.entities().unwrap();
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
    let job = b.post(NewJob::new("j").unique_key("u").key("k")).unwrap();
    let claim = b.claim(job.id, "A").unwrap();
    b.post(NewJob::new("open").unique_key("v")).unwrap();
    b.register_entity(&Entity {
        name: "e".into(),
        meta: json!(null),
    })
    .unwrap();
    // 2 jobs, 1 claim marker, 2 unique keys, 1 execution key, 1 entity.
    let before_consume = b.board.destroy_count_for_tests();
    assert_eq!(before_consume, 7);
    b.consume(&claim).unwrap();
    // The consumed job's marker and unique key are gone.
    assert_eq!(b.board.destroy_count_for_tests(), 5);
    assert_eq!(b.board.destroy().unwrap(), 5);
    assert_eq!(b.board.destroy_count_for_tests(), 0);
}

#[test]
fn an_unreachable_server_is_a_backend_error_naming_it() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let err = EtcdBoard::connect(&endpoint, "p", BoardOptions::default()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, JobBoardError::Backend { .. }), "{err}");
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[test]
fn corrupt_records_are_reported_not_panicked_on() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    let job = b.post(NewJob::new("j")).unwrap();
    b.board
        .put_raw_for_tests(&b.board.keys.job(job.id), b"{not json");
    let err = b.get(job.id).unwrap_err();
    assert!(
        matches!(&err, JobBoardError::Corrupt { board: "etcd", id, .. } if id.contains(&job.id.to_string())),
        "{err}"
    );
    assert!(matches!(
        b.iterjobs(false).unwrap_err(),
        JobBoardError::Corrupt { .. }
    ));
}

#[test]
fn listings_read_past_one_page() {
    let Some(b) = board(BoardOptions::default()) else {
        return;
    };
    let n = usize::try_from(super::PAGE).unwrap() * 2 + 7;
    let posted: Vec<crate::JobId> = (0..n)
        .map(|i| b.post(NewJob::new(format!("j{i}"))).unwrap().id)
        .collect();
    let listed: Vec<crate::JobId> = b.iterjobs(false).unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed, posted, "every job, in posting order");
    assert_eq!(b.all_jobs().unwrap().len(), n);
    assert_eq!(b.job_count().unwrap(), n);
}
