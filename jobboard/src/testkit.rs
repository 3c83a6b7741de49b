//! The conformance suite every [`JobBoard`] passes.
//!
//! Each case takes a *maker*: a closure building a fresh, empty board from
//! [`BoardOptions`] (cases choose their own lease and retention), and
//! [`board_conformance!`](crate::board_conformance) makes one `#[test]` per
//! case for a maker:
//!
//! ```ignore
//! mod conformance {
//!     taskflow_jobboard::board_conformance!(MemoryBoard::new);
//! }
//! // A server-backed board: `None` (having said why) skips every case.
//! mod redis_conformance {
//!     taskflow_jobboard::board_conformance!(|options| RedisBoard::for_tests("redis://127.0.0.1/", options));
//! }
//! ```
//!
//! Cases run on real time: lease cases use leases of a few hundred
//! milliseconds and sleep past them, so that boards keeping time on a
//! server pass them too. A maker may ignore [`BoardOptions::clock`].

use std::collections::HashMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::lease::system_millis;
use crate::JobId;
use crate::{
    BoardOptions, Claim, Entity, Job, JobBoard, JobBoardError, JobState, JobWait, NewJob, Outcome,
    Retention,
};
use taskflow_persistence::Epoch;
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::LogBookId;

/// The lease of cases that do not let leases lapse: long enough never to
/// lapse during a test.
const LONG: Duration = Duration::from_secs(60);

fn long_lease() -> BoardOptions {
    with_lease(LONG)
}

fn with_lease(lease: Duration) -> BoardOptions {
    BoardOptions {
        lease,
        ..BoardOptions::default()
    }
}

fn with_retention(retention: Retention) -> BoardOptions {
    BoardOptions {
        lease: LONG,
        retention,
        ..BoardOptions::default()
    }
}

/// Sleeps until the system clock is past `at` (ms since the epoch), plus a
/// margin.
fn sleep_past(at: u64) {
    let target = at + 30;
    loop {
        let now = system_millis();
        if now > target {
            return;
        }
        std::thread::sleep(Duration::from_millis(target - now + 1));
    }
}

fn post(board: &dyn JobBoard, name: &str, priority: i32) -> Job {
    let mut job = NewJob::new(name);
    job.priority = priority;
    board.post(job).unwrap()
}

fn names(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.name.as_str()).collect()
}

fn assert_not_owner(err: JobBoardError, claim: &Claim) {
    assert!(
        matches!(
            &err,
            JobBoardError::NotOwner { job, owner, epoch }
                if *job == claim.job && *owner == claim.owner && *epoch == claim.epoch
        ),
        "expected NotOwner naming job {}, `{}`, epoch {}; got {err}",
        claim.job,
        claim.owner,
        claim.epoch
    );
}

fn assert_already_claimed(err: JobBoardError, id: Uuid, by: &str) {
    assert!(
        matches!(&err, JobBoardError::AlreadyClaimed { job, owner } if *job == id && owner == by),
        "expected job {id} already claimed by `{by}`, got {err}"
    );
}

/// Every way of using `claim` that is not the job's current claim is
/// refused with `NotOwner`, and leaves the job as it was.
fn assert_refused_everywhere(board: &dyn JobBoard, claim: &Claim) {
    let before = board.get(claim.job).unwrap();
    assert_not_owner(board.renew(claim).unwrap_err(), claim);
    assert_not_owner(board.consume(claim).unwrap_err(), claim);
    assert_not_owner(board.abandon(claim).unwrap_err(), claim);
    assert_not_owner(board.trash(claim, "stale").unwrap_err(), claim);
    let after = board.get(claim.job).unwrap();
    assert_eq!(
        (after.state, after.owner, after.epoch, after.outcome),
        (before.state, before.owner, before.epoch, before.outcome),
        "a refused call changed job {}",
        claim.job
    );
}

/// A posted job reads back as posted: fields kept, a fresh id, increasing
/// sequences, a creation time of now, unclaimed at epoch 0. An unknown id
/// is `NotFound`.
pub fn post_and_get_round_trip<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let before = system_millis();
    let mut new = NewJob::new("provision \u{e9}\u{1f600}");
    new.details = json!({"region": "eu-1", "sizes": [1, 2.5, null], "nested": {"a": ""}});
    new.logbook = Some(LogBookId::new());
    new.flow_detail = Some(FlowDetailId::new());
    new.priority = -7;
    let job = board.post(new.clone()).unwrap();
    let after = system_millis();
    assert_eq!(job.name, new.name);
    assert_eq!(job.details, new.details);
    assert_eq!(job.logbook, new.logbook);
    assert_eq!(job.flow_detail, new.flow_detail);
    assert_eq!(job.priority, -7);
    assert_eq!(job.state, JobState::Unclaimed);
    assert_eq!(job.owner, None);
    assert_eq!(job.epoch, 0);
    assert_eq!(job.lease_expires_at, None);
    assert_eq!(job.outcome, None);
    assert!(
        job.created_at + 1000 >= before && job.created_at <= after + 1000,
        "created_at {} is not about now ({before}..{after})",
        job.created_at
    );
    assert_eq!(board.get(job.id).unwrap(), job);

    let second = board.post(NewJob::new("second")).unwrap();
    let third = board.post(NewJob::new("third")).unwrap();
    assert_ne!(second.id, job.id);
    assert!(job.sequence < second.sequence && second.sequence < third.sequence);
    assert_eq!(board.get(second.id).unwrap(), second);

    let missing = Uuid::new_v4();
    let err = board.get(JobId::from(missing)).unwrap_err();
    assert!(
        matches!(err, JobBoardError::NotFound(id) if id == missing),
        "{err}"
    );
}

/// `iterjobs` lists jobs that are not complete, highest priority first,
/// then in posting order.
pub fn iterjobs_orders_by_priority_then_posting<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    assert!(board.iterjobs(false).unwrap().is_empty());
    for (name, priority) in [
        ("a0", 0),
        ("b5", 5),
        ("c0", 0),
        ("d-1", -1),
        ("e5", 5),
        ("f9", 9),
        ("g0", 0),
    ] {
        post(&board, name, priority);
    }
    let jobs = board.iterjobs(false).unwrap();
    assert_eq!(names(&jobs), ["f9", "b5", "e5", "a0", "c0", "g0", "d-1"]);
    assert_eq!(board.iterjobs(true).unwrap(), jobs);
    // Complete jobs are not listed; claimed ones are, unless only_unclaimed.
    let claim = board.claim(jobs[1].id, "A").unwrap();
    board.consume(&claim).unwrap();
    board.claim(jobs[3].id, "A").unwrap();
    let all = board.iterjobs(false).unwrap();
    assert_eq!(names(&all), ["f9", "e5", "a0", "c0", "g0", "d-1"]);
    assert_eq!(all[2].state, JobState::Claimed);
    assert_eq!(all[2].owner.as_deref(), Some("A"));
    assert_eq!(
        names(&board.iterjobs(true).unwrap()),
        ["f9", "e5", "c0", "g0", "d-1"]
    );
}

/// `iterjobs(true)` lists only jobs claimable now: unclaimed, abandoned,
/// or claimed with a lapsed lease.
pub fn iterjobs_only_unclaimed<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_lease(Duration::from_millis(300)));
    let jobs: Vec<Job> = (0..4).map(|i| post(&board, &format!("j{i}"), 0)).collect();
    let short = board.claim(jobs[0].id, "A").unwrap();
    let abandoned = board.claim(jobs[1].id, "A").unwrap();
    board.abandon(&abandoned).unwrap();
    let done = board.claim(jobs[2].id, "A").unwrap();
    board.trash(&done, "no").unwrap();
    assert_eq!(names(&board.iterjobs(true).unwrap()), ["j1", "j3"]);
    assert_eq!(names(&board.iterjobs(false).unwrap()), ["j0", "j1", "j3"]);
    sleep_past(short.expires_at);
    let open = board.iterjobs(true).unwrap();
    assert_eq!(names(&open), ["j0", "j1", "j3"]);
    assert_eq!(
        open[0].state,
        JobState::Unclaimed,
        "a lapsed claim reads as unclaimed"
    );
}

/// Claiming: the first claim wins (epoch 1, lease from now); a second claim
/// (by anyone, the owner too) is `AlreadyClaimed` naming the owner; an
/// unknown job is `NotFound`, a complete one `Complete`.
pub fn claim_and_its_errors<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let job = post(&board, "j", 0);
    let before = system_millis();
    let claim = board.claim(job.id, "A").unwrap();
    assert_eq!(claim.job, job.id);
    assert_eq!(claim.owner, "A");
    assert_eq!(claim.epoch, 1);
    assert!(
        claim.expires_at + 1000 >= before + 60_000 && claim.expires_at <= system_millis() + 61_000,
        "expires_at {} is not now + the lease",
        claim.expires_at
    );
    let got = board.get(job.id).unwrap();
    assert_eq!(got.state, JobState::Claimed);
    assert_eq!(got.owner.as_deref(), Some("A"));
    assert_eq!(got.epoch, 1);
    assert_eq!(got.lease_expires_at, Some(claim.expires_at));

    assert_already_claimed(
        board.claim(job.id, "B").unwrap_err(),
        Uuid::from(job.id),
        "A",
    );
    assert_already_claimed(
        board.claim(job.id, "A").unwrap_err(),
        Uuid::from(job.id),
        "A",
    );
    assert_eq!(board.get(job.id).unwrap().epoch, 1);

    let missing = Uuid::new_v4();
    let err = board.claim(JobId::from(missing), "A").unwrap_err();
    assert!(
        matches!(err, JobBoardError::NotFound(id) if id == missing),
        "{err}"
    );

    board.consume(&claim).unwrap();
    let err = board.claim(job.id, "B").unwrap_err();
    assert!(
        matches!(err, JobBoardError::Complete(id) if id == job.id),
        "{err}"
    );
}

/// Only the current claim renews, consumes, abandons or trashes a job:
/// another owner, another epoch, or a claim on a complete job is
/// `NotOwner` naming the job, owner and epoch presented; a claim on an
/// unknown job is `NotFound`.
pub fn only_the_owner_may_release<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let job = post(&board, "j", 0);
    let claim = board.claim(job.id, "A").unwrap();
    let other_owner = Claim {
        owner: "B".into(),
        ..claim.clone()
    };
    assert_refused_everywhere(&board, &other_owner);
    let other_epoch = Claim {
        epoch: claim.epoch + 1,
        ..claim.clone()
    };
    assert_refused_everywhere(&board, &other_epoch);
    let earlier_epoch = Claim {
        epoch: Epoch::ZERO,
        ..claim.clone()
    };
    assert_refused_everywhere(&board, &earlier_epoch);

    // The real claim still works after all that.
    let renewed = board.renew(&claim).unwrap();
    assert_eq!(renewed.epoch, claim.epoch);
    board.consume(&renewed).unwrap();
    // Once complete, even the owner's claim is refused.
    assert_refused_everywhere(&board, &renewed);

    let ghost = Claim {
        job: JobId::new(),
        owner: "A".into(),
        epoch: Epoch::new(1),
        expires_at: u64::MAX,
    };
    for err in [
        board.renew(&ghost).unwrap_err(),
        board.consume(&ghost).unwrap_err(),
        board.abandon(&ghost).unwrap_err(),
        board.trash(&ghost, "x").unwrap_err(),
    ] {
        assert!(
            matches!(err, JobBoardError::NotFound(id) if id == ghost.job),
            "{err}"
        );
    }
}

/// Consuming completes the job (outcome `Consumed`); trashing completes it
/// with the reason given. Neither is listed any more.
pub fn consume_and_trash_complete_the_job<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let a = post(&board, "a", 0);
    let b = post(&board, "b", 0);
    let ca = board.claim(a.id, "A").unwrap();
    let cb = board.claim(b.id, "A").unwrap();
    board.consume(&ca).unwrap();
    board.trash(&cb, "unknown flow factory `x`").unwrap();
    let a = board.get(a.id).unwrap();
    assert_eq!(a.state, JobState::Complete);
    assert_eq!(a.outcome, Some(Outcome::Consumed));
    let b = board.get(b.id).unwrap();
    assert_eq!(b.state, JobState::Complete);
    assert_eq!(
        b.outcome,
        Some(Outcome::Trashed {
            reason: "unknown flow factory `x`".into()
        })
    );
    assert_eq!(board.find_owner(a.id).unwrap(), None);
    assert!(board.iterjobs(false).unwrap().is_empty());
    assert!(board.iterjobs(true).unwrap().is_empty());
}

/// Abandoning gives the job back unclaimed (no owner, epoch kept); the next
/// claim gets a higher epoch, and the abandoned claim is refused.
pub fn abandon_makes_it_claimable_again<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let job = post(&board, "j", 0);
    let first = board.claim(job.id, "A").unwrap();
    board.abandon(&first).unwrap();
    let got = board.get(job.id).unwrap();
    assert_eq!(got.state, JobState::Unclaimed);
    assert_eq!(got.owner, None);
    assert_eq!(got.epoch, first.epoch);
    assert_eq!(board.find_owner(job.id).unwrap(), None);
    assert_eq!(names(&board.iterjobs(true).unwrap()), ["j"]);
    assert_refused_everywhere(&board, &first);

    let second = board.claim(job.id, "B").unwrap();
    assert_eq!(second.epoch, first.epoch + 1);
    assert_refused_everywhere(&board, &first);
    board.abandon(&second).unwrap();
    let third = board.claim(job.id, "A").unwrap();
    assert_eq!(third.epoch, first.epoch + 2);
    assert_refused_everywhere(&board, &first);
    board.consume(&third).unwrap();
}

/// When a lease lapses another owner may claim the job, with the next
/// epoch; the first owner's claim is then refused everywhere while the new
/// one works.
pub fn lapsed_lease_lets_another_claim<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_lease(Duration::from_millis(300)));
    let job = post(&board, "j", 0);
    let first = board.claim(job.id, "A").unwrap();
    assert_already_claimed(
        board.claim(job.id, "B").unwrap_err(),
        Uuid::from(job.id),
        "A",
    );
    sleep_past(first.expires_at);
    assert_eq!(board.find_owner(job.id).unwrap(), None);
    assert_eq!(board.get(job.id).unwrap().state, JobState::Unclaimed);
    let second = board.claim(job.id, "B").unwrap();
    assert_eq!(second.epoch, first.epoch + 1);
    assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("B"));
    assert_refused_everywhere(&board, &first);
    let renewed = board.renew(&second).unwrap();
    assert_refused_everywhere(&board, &first);
    board.consume(&renewed).unwrap();
    assert_eq!(board.get(job.id).unwrap().outcome, Some(Outcome::Consumed));
}

/// A lapsed claim nobody re-claimed is still the job's claim: its owner may
/// renew it (taking the lease back) and then consume the job.
pub fn lapsed_claim_holds_until_reclaimed<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_lease(Duration::from_millis(200)));
    let a = post(&board, "a", 0);
    let b = post(&board, "b", 0);
    let ca = board.claim(a.id, "A").unwrap();
    let cb = board.claim(b.id, "A").unwrap();
    sleep_past(ca.expires_at.max(cb.expires_at));
    let renewed = board.renew(&ca).unwrap();
    assert_eq!(renewed.epoch, ca.epoch);
    assert!(renewed.expires_at > ca.expires_at);
    assert_already_claimed(board.claim(a.id, "B").unwrap_err(), Uuid::from(a.id), "A");
    board.consume(&renewed).unwrap();
    // Consuming straight away, lease lapsed, works too.
    board.consume(&cb).unwrap();
    assert_eq!(board.get(b.id).unwrap().state, JobState::Complete);
}

/// Renewing keeps the claim past its first lease; the renewed claim has the
/// same epoch and a later expiry.
pub fn renew_keeps_the_claim<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let lease = Duration::from_millis(500);
    let board = make(with_lease(lease));
    let job = post(&board, "j", 0);
    let claim = board.claim(job.id, "A").unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let renewed = board.renew(&claim).unwrap();
    assert_eq!((renewed.job, &renewed.owner), (claim.job, &claim.owner));
    assert_eq!(renewed.epoch, claim.epoch);
    assert!(
        renewed.expires_at >= claim.expires_at + 200,
        "renewed until {}, first until {}",
        renewed.expires_at,
        claim.expires_at
    );
    assert_eq!(
        board.get(job.id).unwrap().lease_expires_at,
        Some(renewed.expires_at)
    );
    sleep_past(claim.expires_at);
    assert_already_claimed(
        board.claim(job.id, "B").unwrap_err(),
        Uuid::from(job.id),
        "A",
    );
    assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("A"));
    // The claim as first returned is still the job's claim (same epoch).
    board.renew(&claim).unwrap();
    board.consume(&renewed).unwrap();
}

/// `wait` returns false when nothing becomes claimable before the timeout
/// (an empty board; a board whose only job is claimed), and true at once
/// when a job is claimable.
pub fn wait_times_out<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let start = Instant::now();
    assert!(!board.wait(Duration::from_millis(200)).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert!(start.elapsed() < Duration::from_secs(5));
    let job = post(&board, "j", 0);
    let start = Instant::now();
    assert!(board.wait(Duration::from_secs(5)).unwrap());
    assert!(start.elapsed() < Duration::from_secs(1));
    let claim = board.claim(job.id, "A").unwrap();
    assert!(!board.wait(Duration::from_millis(150)).unwrap());
    board.abandon(&claim).unwrap();
    assert!(board.wait(Duration::ZERO).unwrap());
}

/// `wait` wakes up soon after another thread posts a job.
pub fn wait_wakes_on_post<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    std::thread::scope(|s| {
        let start = Instant::now();
        let poster = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            post(&board, "late", 0)
        });
        assert!(board.wait(Duration::from_secs(10)).unwrap());
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(150),
            "woke after {waited:?}, before the post"
        );
        assert!(
            waited < Duration::from_secs(3),
            "woke after {waited:?}, long after the post"
        );
        poster.join().unwrap();
    });
}

/// `wait` wakes up when a claimed job's lease lapses, and when another
/// thread abandons a job.
pub fn wait_sees_lapses_and_abandons<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_lease(Duration::from_millis(300)));
    let job = post(&board, "j", 0);
    let claim = board.claim(job.id, "A").unwrap();
    let start = Instant::now();
    assert!(board.wait(Duration::from_secs(10)).unwrap());
    assert!(system_millis() >= claim.expires_at);
    assert!(start.elapsed() < Duration::from_secs(3));

    // A lease that will not lapse during the test: only the abandon can
    // wake the waiter.
    let board = make(long_lease());
    let job = post(&board, "j", 0);
    let claim = board.claim(job.id, "B").unwrap();
    std::thread::scope(|s| {
        let start = Instant::now();
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            board.abandon(&claim).unwrap();
        });
        assert!(board.wait(Duration::from_secs(30)).unwrap());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(90), "woke after {waited:?}");
        assert!(waited < Duration::from_secs(10), "woke after {waited:?}");
    });
}

/// `wait_until_complete` returns soon after another thread consumes (or
/// trashes) the job, with the job as completed; on a job already complete
/// it returns at once.
pub fn wait_until_complete_sees_completion<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    for trash in [false, true] {
        let job = post(&board, "j", 0);
        let claim = board.claim(job.id, "A").unwrap();
        let waited = std::thread::scope(|s| {
            let start = Instant::now();
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                if trash {
                    board.trash(&claim, "cannot run").unwrap();
                } else {
                    board.consume(&claim).unwrap();
                }
            });
            let waited = board
                .wait_until_complete(job.id, Duration::from_secs(30))
                .unwrap();
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(150),
                "returned after {took:?}, before the job completed"
            );
            assert!(
                took < Duration::from_secs(3),
                "returned after {took:?}, long after the job completed"
            );
            waited
        });
        let JobWait::Complete(done) = waited else {
            panic!("expected job {} complete, got {waited:?}", job.id);
        };
        assert_eq!(done.id, job.id);
        assert_eq!(done.state, JobState::Complete);
        let expected = if trash {
            Outcome::Trashed {
                reason: "cannot run".into(),
            }
        } else {
            Outcome::Consumed
        };
        assert_eq!(done.outcome, Some(expected));
        let start = Instant::now();
        let again = board
            .wait_until_complete(job.id, Duration::from_secs(30))
            .unwrap();
        assert!(again.is_complete(), "{again:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(again.into_job().outcome, done.outcome);
    }
}

/// `wait_until_complete` on a job nobody completes returns `TimedOut`
/// within a bounded margin of the timeout, with the job as it is
/// (unclaimed, or claimed and its owner); a zero timeout returns at once.
pub fn wait_until_complete_times_out<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let job = post(&board, "j", 0);
    for timeout in [Duration::from_millis(300), Duration::from_millis(1)] {
        let start = Instant::now();
        let waited = board.wait_until_complete(job.id, timeout).unwrap();
        let took = start.elapsed();
        assert!(
            took >= timeout,
            "timed out after {took:?}, before {timeout:?}"
        );
        assert!(
            took < timeout + Duration::from_secs(1),
            "timed out after {took:?}, long after {timeout:?}"
        );
        let JobWait::TimedOut(seen) = waited else {
            panic!("expected a timeout, got {waited:?}");
        };
        assert_eq!((seen.id, seen.state), (job.id, JobState::Unclaimed));
    }
    let start = Instant::now();
    let waited = board.wait_until_complete(job.id, Duration::ZERO).unwrap();
    assert!(!waited.is_complete());
    assert!(start.elapsed() < Duration::from_secs(1));

    let claim = board.claim(job.id, "A").unwrap();
    let start = Instant::now();
    let waited = board
        .wait_until_complete(job.id, Duration::from_millis(200))
        .unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200), "after {took:?}");
    assert!(took < Duration::from_millis(1200), "after {took:?}");
    assert!(!waited.is_complete(), "{waited:?}");
    let seen = waited.job();
    assert_eq!(seen.state, JobState::Claimed);
    assert_eq!(seen.owner.as_deref(), Some("A"));
    assert_eq!(seen.epoch, claim.epoch);
    // An abandon is not a completion: the wait goes on to its timeout.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            board.abandon(&claim).unwrap();
        });
        let waited = board
            .wait_until_complete(job.id, Duration::from_millis(300))
            .unwrap();
        assert_eq!(waited.job().state, JobState::Unclaimed, "{waited:?}");
        assert!(!waited.is_complete());
    });
}

/// `wait_until_complete` on an unknown job is `NotFound` at once.
pub fn wait_until_complete_unknown_job<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    post(&board, "other", 0);
    let missing = Uuid::new_v4();
    let start = Instant::now();
    let err = board
        .wait_until_complete(JobId::from(missing), Duration::from_secs(30))
        .unwrap_err();
    assert!(
        matches!(err, JobBoardError::NotFound(id) if id == missing),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// `find_owner` names the owner of a claimed job and nobody for unclaimed,
/// abandoned and complete jobs; an unknown job is `NotFound`.
pub fn find_owner<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let job = post(&board, "j", 0);
    assert_eq!(board.find_owner(job.id).unwrap(), None);
    let claim = board.claim(job.id, "conductor-1@host").unwrap();
    assert_eq!(
        board.find_owner(job.id).unwrap().as_deref(),
        Some("conductor-1@host")
    );
    board.abandon(&claim).unwrap();
    assert_eq!(board.find_owner(job.id).unwrap(), None);
    let claim = board.claim(job.id, "B").unwrap();
    assert_eq!(board.find_owner(job.id).unwrap().as_deref(), Some("B"));
    board.consume(&claim).unwrap();
    assert_eq!(board.find_owner(job.id).unwrap(), None);
    let missing = Uuid::new_v4();
    let err = board.find_owner(JobId::from(missing)).unwrap_err();
    assert!(
        matches!(err, JobBoardError::NotFound(id) if id == missing),
        "{err}"
    );
}

/// Entities register, and register again (updating their metadata).
pub fn register_entity<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let a = Entity {
        name: "conductor-a".into(),
        meta: json!({"host": "h1", "pid": 42}),
    };
    let b = Entity {
        name: "conductor-b".into(),
        meta: serde_json::Value::Null,
    };
    board.register_entity(&a).unwrap();
    board.register_entity(&b).unwrap();
    board
        .register_entity(&Entity {
            meta: json!({"host": "h2"}),
            ..a.clone()
        })
        .unwrap();
    // What another party (a `taskflow jobs` view, the service) sees: each
    // entity once, by name, with the metadata it registered last.
    let seen = board.entities().unwrap();
    assert_eq!(
        seen,
        [
            Entity {
                name: "conductor-a".into(),
                meta: json!({"host": "h2"}),
            },
            b
        ]
    );
}

/// Completes `jobs` in order, a few milliseconds apart (so their
/// completion times differ).
fn complete_in_order(board: &dyn JobBoard, jobs: &[Job]) {
    for (i, job) in jobs.iter().enumerate() {
        let claim = board.claim(job.id, "A").unwrap();
        if i % 2 == 0 {
            board.consume(&claim).unwrap();
        } else {
            board.trash(&claim, "bad").unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Posts `n` jobs named `{prefix}{i}`.
fn post_many(board: &dyn JobBoard, prefix: &str, n: usize) -> Vec<Job> {
    (0..n)
        .map(|i| post(board, &format!("{prefix}{i}"), 0))
        .collect()
}

/// Posts one unclaimed and one claimed job, which purge must never remove.
fn open_jobs(board: &dyn JobBoard) -> (Job, Job) {
    let unclaimed = post(board, "open-unclaimed", 0);
    let claimed = post(board, "open-claimed", 0);
    board.claim(claimed.id, "A").unwrap();
    (unclaimed, claimed)
}

fn assert_still_there(board: &dyn JobBoard, jobs: &[&Job]) {
    for job in jobs {
        board
            .get(job.id)
            .unwrap_or_else(|e| panic!("{} ({}) was purged: {e}", job.name, job.id));
    }
}

fn assert_purged(board: &dyn JobBoard, purged: &[Job], expected: &[Job]) {
    let mut got: Vec<JobId> = purged.iter().map(|j| j.id).collect();
    let mut want: Vec<JobId> = expected.iter().map(|j| j.id).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "purged {:?}", names(purged));
    for job in purged {
        assert_eq!(job.state, JobState::Complete);
        assert!(job.outcome.is_some());
        assert!(
            matches!(board.get(job.id).unwrap_err(), JobBoardError::NotFound(id) if id == job.id)
        );
    }
}

/// `Retention::Forever`: purge removes nothing.
pub fn purge_forever_keeps_everything<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_retention(Retention::Forever));
    let done = post_many(&board, "done", 3);
    complete_in_order(&board, &done);
    let (unclaimed, claimed) = open_jobs(&board);
    assert!(board.purge().unwrap().is_empty());
    assert_still_there(
        &board,
        &[&done[0], &done[1], &done[2], &unclaimed, &claimed],
    );
}

/// `Retention::Last(n)`: purge keeps the `n` most recently completed jobs,
/// returns the others, and never touches claimed or unclaimed jobs.
pub fn purge_keeps_the_last_n<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_retention(Retention::Last(2)));
    let (unclaimed, claimed) = open_jobs(&board);
    assert!(board.purge().unwrap().is_empty());
    let done = post_many(&board, "done", 5);
    // Completed in the order 4, 0, 3, 1, 2 (not posting order).
    let order = [4, 0, 3, 1, 2].map(|i| done[i].clone());
    complete_in_order(&board, &order);
    let purged = board.purge().unwrap();
    assert_purged(&board, &purged, &order[..3]);
    assert_still_there(&board, &[&order[3], &order[4], &unclaimed, &claimed]);
    assert!(board.purge().unwrap().is_empty());
    let zero = make(with_retention(Retention::Last(0)));
    let (u, c) = open_jobs(&zero);
    let gone = post_many(&zero, "gone", 2);
    complete_in_order(&zero, &gone);
    assert_purged(&zero, &zero.purge().unwrap(), &gone);
    assert_still_there(&zero, &[&u, &c]);
}

/// `Retention::For(d)`: purge removes jobs completed more than `d` ago,
/// returns them, and never touches claimed or unclaimed jobs (however old).
pub fn purge_drops_jobs_completed_long_ago<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_retention(Retention::For(Duration::from_millis(300))));
    let (unclaimed, claimed) = open_jobs(&board);
    let old = post_many(&board, "old", 2);
    let recent = post_many(&board, "recent", 2);
    complete_in_order(&board, &old);
    assert!(board.purge().unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(450));
    complete_in_order(&board, &recent);
    let purged = board.purge().unwrap();
    assert_purged(&board, &purged, &old);
    assert_still_there(&board, &[&recent[0], &recent[1], &unclaimed, &claimed]);
    assert!(board.purge().unwrap().is_empty());
}

/// 1,000 jobs raced by 8 threads that all try to claim every job: each job
/// is claimed by exactly one thread, the losers see `AlreadyClaimed`.
pub fn racing_claimers_each_job_once<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    const JOBS: usize = 1000;
    const THREADS: usize = 8;
    let board = make(long_lease());
    let ids: Vec<JobId> = (0..JOBS)
        .map(|i| board.post(NewJob::new(format!("race-{i}"))).unwrap().id)
        .collect();
    let barrier = Barrier::new(THREADS);
    let wins: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (board, ids, barrier) = (&board, &ids, &barrier);
                s.spawn(move || {
                    let owner = format!("thread-{t}");
                    let mut won = Vec::new();
                    barrier.wait();
                    // Half the threads go forwards, half backwards: every
                    // job is contended at the start, middle or end.
                    let order: Vec<&JobId> = if t % 2 == 0 {
                        ids.iter().collect()
                    } else {
                        ids.iter().rev().collect()
                    };
                    for &id in order {
                        match board.claim(id, &owner) {
                            Ok(claim) => {
                                assert_eq!(claim.epoch, 1, "job {id} claimed twice");
                                won.push(id);
                            }
                            Err(JobBoardError::AlreadyClaimed { .. }) => {}
                            Err(e) => panic!("{owner} claiming {id}: {e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut claims: HashMap<JobId, usize> = HashMap::new();
    for id in wins.iter().flatten() {
        *claims.entry(*id).or_default() += 1;
    }
    assert_eq!(claims.len(), JOBS, "some jobs were claimed by nobody");
    let twice: Vec<_> = claims.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    for (t, won) in wins.iter().enumerate() {
        for id in won {
            assert_eq!(
                board.find_owner(*id).unwrap(),
                Some(format!("thread-{t}")),
                "owner of {id}"
            );
        }
    }
    assert!(board.iterjobs(true).unwrap().is_empty());
}

/// Runs `case` on boards built by `make`; if `make` gives `None` (its
/// server is unreachable), the case is skipped, having said so. This is
/// what each test of [`board_conformance!`](crate::board_conformance) does.
pub fn run<A: Available>(
    case_name: &str,
    make: impl Fn(BoardOptions) -> A,
    case: fn(&dyn Fn(BoardOptions) -> A::Board),
) {
    match make(BoardOptions::default()).available() {
        None => {
            eprintln!("skipped {case_name}: the board is not available");
        }
        Some(probe) => {
            drop(probe);
            case(&|options| {
                make(options)
                    .available()
                    .expect("the board was available a moment ago")
            });
        }
    }
}

/// Makes one `#[test]` per conformance case, each building fresh boards
/// with the maker given: a closure (or function) from
/// [`BoardOptions`](crate::BoardOptions) to a board, or to `Option<board>`
/// (`None` when its server is unreachable: the tests are then skipped).
/// A maker is called once per board a case needs, plus once more to probe.
///
/// ```ignore
/// taskflow_jobboard::board_conformance!(MemoryBoard::new);
/// ```
#[macro_export]
macro_rules! board_conformance {
    ($make:expr) => {
        $crate::board_conformance!(@cases $make;
            post_and_get_round_trip iterjobs_orders_by_priority_then_posting
            iterjobs_only_unclaimed claim_and_its_errors only_the_owner_may_release
            consume_and_trash_complete_the_job abandon_makes_it_claimable_again
            lapsed_lease_lets_another_claim lapsed_claim_holds_until_reclaimed
            renew_keeps_the_claim wait_times_out wait_wakes_on_post
            wait_sees_lapses_and_abandons wait_until_complete_sees_completion
            wait_until_complete_times_out wait_until_complete_unknown_job
            find_owner register_entity
            purge_forever_keeps_everything purge_keeps_the_last_n
            purge_drops_jobs_completed_long_ago racing_claimers_each_job_once);
    };
    (@cases $make:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run(stringify!($case), $make, $crate::testkit::$case);
            }
        )*
    };
}

/// What a maker in [`board_conformance!`](crate::board_conformance) may
/// give: a board, or `None` when its server is unreachable (the test is
/// then skipped; the maker says why).
pub trait Available {
    /// The board type.
    type Board: JobBoard;
    /// The board, if there is one to test.
    fn available(self) -> Option<Self::Board>;
}

impl<B: JobBoard> Available for B {
    type Board = B;
    fn available(self) -> Option<B> {
        Some(self)
    }
}

/// `None` stands for a board whose server is unreachable: the test is
/// skipped.
impl<B: JobBoard> Available for Option<B> {
    type Board = B;
    fn available(self) -> Option<B> {
        self
    }
}

/// A board together with what must live as long as it in a test: the
/// temporary directory holding its file, or a guard that cleans up its
/// keys. The board is dropped first, then the guard.
#[derive(Debug)]
pub struct WithGuard<B, G> {
    /// The board under test.
    pub board: B,
    /// Kept alive until after the board is dropped.
    pub guard: G,
}

impl<B: JobBoard, G: Send + Sync> JobBoard for WithGuard<B, G> {
    fn post(&self, job: NewJob) -> Result<Job, JobBoardError> {
        self.board.post(job)
    }
    fn get(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.board.get(id)
    }
    fn claim(&self, id: JobId, owner: &str) -> Result<Claim, JobBoardError> {
        self.board.claim(id, owner)
    }
    fn renew(&self, claim: &Claim) -> Result<Claim, JobBoardError> {
        self.board.renew(claim)
    }
    fn consume(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.board.consume(claim)
    }
    fn abandon(&self, claim: &Claim) -> Result<(), JobBoardError> {
        self.board.abandon(claim)
    }
    fn trash(&self, claim: &Claim, reason: &str) -> Result<(), JobBoardError> {
        self.board.trash(claim, reason)
    }
    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        self.board.iterjobs(only_unclaimed)
    }
    fn wait(&self, timeout: Duration) -> Result<bool, JobBoardError> {
        self.board.wait(timeout)
    }
    fn wait_until_complete(&self, id: JobId, timeout: Duration) -> Result<JobWait, JobBoardError> {
        self.board.wait_until_complete(id, timeout)
    }
    fn find_owner(&self, id: JobId) -> Result<Option<String>, JobBoardError> {
        self.board.find_owner(id)
    }
    fn register_entity(&self, entity: &Entity) -> Result<(), JobBoardError> {
        self.board.register_entity(entity)
    }
    fn entities(&self) -> Result<Vec<Entity>, JobBoardError> {
        self.board.entities()
    }
    fn purge(&self) -> Result<Vec<Job>, JobBoardError> {
        self.board.purge()
    }
    fn close(&self) -> Result<(), JobBoardError> {
        self.board.close()
    }
}
