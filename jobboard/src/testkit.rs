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
//! milliseconds and sleep past them, and scheduled cases schedule jobs a
//! few hundred milliseconds ahead of the system clock, so that boards
//! keeping time on a server (on the same host) pass them too. A maker may
//! ignore [`BoardOptions::clock`].

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::lease::system_millis;
use crate::JobId;
use crate::{
    BoardEvent, BoardOptions, CapturingListener, Claim, ClaimFilter, Control, Entity, Job,
    JobBoard, JobBoardError, JobState, JobWait, ListOptions, NewJob, Outcome, Retention,
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
    new.unique_key = Some("unique \u{e9}:1".into());
    new.key = Some("policy@2024-01-01T00:00:00Z".into());
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
    assert_eq!(job.not_before, None);
    assert_eq!(job.unique_key, new.unique_key);
    assert_eq!(job.key, new.key);
    assert_eq!(job.control, None);
    assert_eq!(job.revision, 1);
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
        control: None,
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
    // A second: the renewed claim must still hold when `B` tries, and a
    // lease of 200 ms had lapsed again by then on a loaded machine.
    let board = make(with_lease(Duration::from_secs(1)));
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

/// `renew_all` gives, per claim and in order, what `renew` of that claim
/// alone gives: the renewed claim (same job, owner, epoch; a later expiry;
/// the job's control request as it is now) for a current claim,
/// `NotOwner` for a claim the job moved on from (another epoch, another
/// owner, or the job complete), `NotFound` for a job that is gone; a
/// refused claim leaves the others renewed. No claims, no results.
pub fn renew_all_renews_each_claim_as_renew<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let lease = Duration::from_millis(500);
    let board = make(with_lease(lease));
    assert!(board.renew_all(&[]).is_empty());
    let (a, b, c, d) = (
        post(&board, "a", 0),
        post(&board, "b", 0),
        post(&board, "c", 0),
        post(&board, "d", 0),
    );
    let held_a = board.claim(a.id, "A").unwrap();
    let held_b = board.claim(b.id, "A").unwrap();
    // c: claimed, abandoned and claimed again: the first claim is stale.
    let stale_c = board.claim(c.id, "A").unwrap();
    board.abandon(&stale_c).unwrap();
    let held_c = board.claim(c.id, "B").unwrap();
    // d: consumed.
    let done_d = board.claim(d.id, "A").unwrap();
    board.consume(&done_d).unwrap();
    let gone = Claim {
        job: JobId::new(),
        ..held_a.clone()
    };
    board.request(b.id, Control::Stop).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let claims = [
        held_a.clone(),
        stale_c.clone(),
        held_b.clone(),
        done_d.clone(),
        gone.clone(),
    ];
    let results = board.renew_all(&claims);
    assert_eq!(results.len(), claims.len());
    let mut results = results.into_iter();
    let renewed_a = results.next().unwrap().unwrap();
    assert_eq!(
        (
            renewed_a.job,
            &renewed_a.owner,
            renewed_a.epoch,
            renewed_a.control
        ),
        (a.id, &held_a.owner, held_a.epoch, None)
    );
    assert!(
        renewed_a.expires_at >= held_a.expires_at + 50,
        "renewed until {}, claimed until {}",
        renewed_a.expires_at,
        held_a.expires_at
    );
    assert_eq!(
        board.get(a.id).unwrap().lease_expires_at,
        Some(renewed_a.expires_at)
    );
    assert_not_owner(results.next().unwrap().unwrap_err(), &stale_c);
    let renewed_b = results.next().unwrap().unwrap();
    assert_eq!(
        (renewed_b.job, renewed_b.epoch, renewed_b.control),
        (b.id, held_b.epoch, Some(Control::Stop))
    );
    assert_eq!(
        board.get(b.id).unwrap().lease_expires_at,
        Some(renewed_b.expires_at)
    );
    assert_not_owner(results.next().unwrap().unwrap_err(), &done_d);
    assert_not_found(results.next().unwrap().unwrap_err(), gone.job);
    // The refused claims changed nothing: c is still B's, d complete.
    assert_eq!(board.find_owner(c.id).unwrap().as_deref(), Some("B"));
    assert_eq!(board.get(d.id).unwrap().state, JobState::Complete);
    // The renewed leases hold past the first ones.
    sleep_past(held_a.expires_at);
    assert_already_claimed(board.claim(a.id, "B").unwrap_err(), Uuid::from(a.id), "A");
    for claim in [&renewed_a, &renewed_b, &held_c] {
        board.consume(claim).unwrap();
    }
}

/// `claim_first` claims the first of the ids given that `claim` would
/// claim, in order, and says how many it tried; ids refused (claimed by
/// another with a running lease, complete, waiting for their time, gone)
/// are passed over and left as they were. None claimable: `None`, all
/// tried. No ids: `(0, None)`.
pub fn claim_first_takes_the_first_claimable<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    assert_eq!(board.claim_first(&[], "A").unwrap(), (0, None));
    let taken = post(&board, "taken", 0);
    let held = board.claim(taken.id, "B").unwrap();
    let done = post(&board, "done", 0);
    let done_claim = board.claim(done.id, "B").unwrap();
    board.consume(&done_claim).unwrap();
    let mut later = NewJob::new("later");
    later.not_before = Some(system_millis() + 60_000);
    let later = board.post(later).unwrap();
    let gone = JobId::new();
    let (first, second) = (post(&board, "first", 0), post(&board, "second", 0));
    let ids = [taken.id, done.id, later.id, gone, first.id, second.id];
    let (tried, claim) = board.claim_first(&ids, "A").unwrap();
    let claim = claim.expect("`first` is claimable");
    assert_eq!(tried, 5);
    assert_eq!((claim.job, claim.owner.as_str()), (first.id, "A"));
    let stored = board.get(first.id).unwrap();
    assert_eq!(
        (stored.state, stored.owner.as_deref(), stored.epoch),
        (JobState::Claimed, Some("A"), claim.epoch)
    );
    assert_eq!(stored.lease_expires_at, Some(claim.expires_at));
    // The refused ones are as they were; the one after untouched.
    assert_eq!(board.find_owner(taken.id).unwrap().as_deref(), Some("B"));
    assert_eq!(board.get(done.id).unwrap().state, JobState::Complete);
    assert_eq!(board.get(later.id).unwrap().state, JobState::Unclaimed);
    assert_eq!(board.get(second.id).unwrap().state, JobState::Unclaimed);
    // The claim is a claim like any: renewed, consumed.
    let renewed = board.renew(&claim).unwrap();
    // Nothing claimable among these: all tried, none claimed.
    let (tried, none) = board
        .claim_first(&[taken.id, first.id, done.id], "A")
        .unwrap();
    assert_eq!((tried, none), (3, None));
    // A control request rides on the claim.
    board.request(second.id, Control::Stop).unwrap();
    let (tried, claim2) = board.claim_first(&[first.id, second.id], "C").unwrap();
    let claim2 = claim2.expect("`second` is claimable");
    assert_eq!(
        (tried, claim2.job, claim2.control),
        (2, second.id, Some(Control::Stop))
    );
    board.consume(&renewed).unwrap();
    board.consume(&claim2).unwrap();
    board.consume(&held).unwrap();
}

/// `claim_many` claims, in order, up to the most asked of the ids given
/// that `claim` would claim, and says how many it tried: all of them when
/// fewer were claimable, else up to the last one claimed (those after it
/// untouched). Ids refused (claimed by another with a running lease,
/// complete, waiting for their time, gone) are passed over and left as
/// they were. No ids, or a most of 0: nothing.
pub fn claim_many_claims_up_to_max<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    assert_eq!(board.claim_many(&[], "A", 4).unwrap(), (0, Vec::new()));
    let taken = post(&board, "taken", 0);
    let held = board.claim(taken.id, "B").unwrap();
    let done = post(&board, "done", 0);
    let done_claim = board.claim(done.id, "B").unwrap();
    board.consume(&done_claim).unwrap();
    let mut later = NewJob::new("later");
    later.not_before = Some(system_millis() + 60_000);
    let later = board.post(later).unwrap();
    let gone = JobId::new();
    let (first, second, third, fourth) = (
        post(&board, "first", 0),
        post(&board, "second", 0),
        post(&board, "third", 0),
        post(&board, "fourth", 0),
    );
    board.request(third.id, Control::Stop).unwrap();
    let ids = [
        taken.id, first.id, done.id, later.id, gone, second.id, third.id, fourth.id,
    ];
    assert_eq!(board.claim_many(&ids, "A", 0).unwrap().1, Vec::new());
    assert_eq!(board.get(first.id).unwrap().state, JobState::Unclaimed);
    let (tried, claims) = board.claim_many(&ids, "A", 3).unwrap();
    assert_eq!(tried, 7, "up to `third`, the third claimed");
    let claimed: Vec<_> = claims.iter().map(|c| (c.job, c.owner.as_str())).collect();
    assert_eq!(
        claimed,
        [(first.id, "A"), (second.id, "A"), (third.id, "A")]
    );
    assert_eq!(
        claims.iter().map(|c| c.control).collect::<Vec<_>>(),
        [None, None, Some(Control::Stop)],
        "a control request rides on its claim"
    );
    for claim in &claims {
        let stored = board.get(claim.job).unwrap();
        assert_eq!(
            (stored.state, stored.owner.as_deref(), stored.epoch),
            (JobState::Claimed, Some("A"), claim.epoch)
        );
        assert_eq!(stored.lease_expires_at, Some(claim.expires_at));
    }
    // The refused ones are as they were; the one after the last untouched.
    assert_eq!(board.find_owner(taken.id).unwrap().as_deref(), Some("B"));
    assert_eq!(board.get(done.id).unwrap().state, JobState::Complete);
    assert_eq!(board.get(later.id).unwrap().state, JobState::Unclaimed);
    assert_eq!(board.get(fourth.id).unwrap().state, JobState::Unclaimed);
    // Fewer claimable than asked: all tried, those there claimed.
    let (tried, rest) = board.claim_many(&ids, "C", 5).unwrap();
    assert_eq!(tried, ids.len());
    assert_eq!(rest.iter().map(|c| c.job).collect::<Vec<_>>(), [fourth.id]);
    // None claimable: all tried, none claimed.
    let (tried, none) = board.claim_many(&ids, "C", 2).unwrap();
    assert_eq!((tried, none), (ids.len(), Vec::new()));
    // The claims are claims like any: renewed, consumed.
    for claim in claims.iter().chain(&rest) {
        let renewed = board.renew(claim).unwrap();
        board.consume(&renewed).unwrap();
    }
    board.consume(&held).unwrap();
}

/// `claim_next` claims, in board order (priority, then posting order), up
/// to the most asked of the jobs `claim` would claim, passing over the
/// jobs the filter skips and those built by a factory it does not accept
/// (a job naming no factory is anyone's), and returns each job as the
/// claim left it with its claim. Jobs claimed by another with a running
/// lease, complete or waiting for their time are passed over untouched; a
/// requested one is claimable with its request; a lapsed claim is taken
/// over with the next epoch. It reaches jobs behind more than a page of
/// held ones, and with nothing claimable (or a most of 0) claims nothing.
pub fn claim_next_claims_in_board_order<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let none = ClaimFilter::any();
    assert!(board.claim_next("A", 3, &none).unwrap().is_empty());
    let built_by = |name: &str, factory: &str, priority: i32| {
        let mut job = NewJob::new(name);
        job.priority = priority;
        job.details = json!({ Job::FACTORY_KEY: factory, "n": 1 });
        board.post(job).unwrap()
    };
    let taken = post(&board, "taken", 5);
    let held = board.claim(taken.id, "B").unwrap();
    let done = post(&board, "done", 5);
    let done_claim = board.claim(done.id, "B").unwrap();
    board.consume(&done_claim).unwrap();
    let mut later = NewJob::new("later");
    later.priority = 5;
    later.not_before = Some(system_millis() + 60_000);
    let later = board.post(later).unwrap();
    let low = post(&board, "low", -1);
    let skipped = post(&board, "skipped", 1);
    let foreign = built_by("foreign", "transcode", 1);
    let mine = built_by("mine", "resize", 0);
    let plain = post(&board, "plain", 0);
    let requested = post(&board, "requested", 3);
    board.request(requested.id, Control::Stop).unwrap();
    let filter = ClaimFilter::any()
        .skipping([skipped.id])
        .factories(["resize", "upload"]);
    assert!(board.claim_next("A", 0, &filter).unwrap().is_empty());
    assert_eq!(board.get(requested.id).unwrap().state, JobState::Unclaimed);
    let first = board.claim_next("A", 2, &filter).unwrap();
    assert_eq!(
        first
            .iter()
            .map(|(job, _)| job.name.as_str())
            .collect::<Vec<_>>(),
        ["requested", "mine"],
        "by priority, then posting order, passing over the filtered"
    );
    assert_eq!((first[0].0.id, first[1].0.id), (requested.id, mine.id));
    assert_eq!(
        first[0].1.control,
        Some(Control::Stop),
        "a request rides on its claim"
    );
    assert_eq!(first[1].1.control, None);
    for (job, claim) in &first {
        assert_eq!((claim.job, claim.owner.as_str()), (job.id, "A"));
        assert_eq!(claim.epoch, 1);
        assert_eq!(
            (job.state, job.owner.as_deref(), job.epoch),
            (JobState::Claimed, Some("A"), claim.epoch),
            "the job as the claim left it"
        );
        assert_eq!(job.lease_expires_at, Some(claim.expires_at));
        let stored = board.get(job.id).unwrap();
        assert_eq!(
            (stored.state, stored.owner.as_deref(), stored.epoch),
            (JobState::Claimed, Some("A"), claim.epoch)
        );
        assert_eq!(stored.lease_expires_at, Some(claim.expires_at));
        assert_eq!((&stored.name, &stored.details), (&job.name, &job.details));
    }
    let rest = board.claim_next("A", 5, &filter).unwrap();
    assert_eq!(
        rest.iter()
            .map(|(job, _)| job.name.as_str())
            .collect::<Vec<_>>(),
        ["plain", "low"]
    );
    assert_eq!((rest[0].0.id, rest[1].0.id), (plain.id, low.id));
    assert!(board.claim_next("A", 5, &filter).unwrap().is_empty());
    // Passed over and untouched.
    assert_eq!(board.find_owner(taken.id).unwrap().as_deref(), Some("B"));
    assert_eq!(board.get(done.id).unwrap().state, JobState::Complete);
    for id in [later.id, skipped.id, foreign.id] {
        assert_eq!(board.get(id).unwrap().state, JobState::Unclaimed);
    }
    // Another filter takes what this one left.
    let other = board.claim_next("C", 5, &none).unwrap();
    assert_eq!(
        other
            .iter()
            .map(|(job, _)| job.name.as_str())
            .collect::<Vec<_>>(),
        ["skipped", "foreign"]
    );
    for (_, claim) in first.iter().chain(&rest).chain(&other) {
        board.consume(claim).unwrap();
    }
    board.consume(&held).unwrap();

    // Behind more held jobs than a page (boards read their order in
    // pages of a few hundred at most).
    let ids: Vec<JobId> = (0..300)
        .map(|i| post(&board, &format!("deep-{i}"), 0).id)
        .collect();
    let (_, held) = board.claim_many(&ids[..280], "B", 280).unwrap();
    assert_eq!(held.len(), 280);
    let deep = board.claim_next("A", 30, &none).unwrap();
    assert_eq!(
        deep.iter().map(|(job, _)| job.id).collect::<Vec<_>>(),
        ids[280..],
        "the 20 unheld, in posting order"
    );
    for (_, claim) in &deep {
        board.consume(claim).unwrap();
    }
    for claim in &held {
        board.consume(claim).unwrap();
    }
}

/// `claim_next` takes over a claim whose lease lapsed, with the next
/// epoch; the old claim is refused from then on.
pub fn claim_next_takes_lapsed_claims<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_lease(Duration::from_millis(300)));
    let job = post(&board, "j", 0);
    let first = board.claim(job.id, "A").unwrap();
    assert!(board
        .claim_next("B", 1, &ClaimFilter::any())
        .unwrap()
        .is_empty());
    sleep_past(first.expires_at);
    let taken = board.claim_next("B", 4, &ClaimFilter::any()).unwrap();
    assert_eq!(taken.len(), 1);
    let (seen, second) = &taken[0];
    assert_eq!((seen.id, second.owner.as_str()), (job.id, "B"));
    assert_eq!(second.epoch, first.epoch + 1);
    assert_refused_everywhere(&board, &first);
    let renewed = board.renew(second).unwrap();
    board.consume(&renewed).unwrap();
}

/// `claim_next` passes over jobs whose claim runs and takes, in board
/// order, a lapsed claim before them and the unclaimed jobs after them.
pub fn claim_next_passes_over_running_claims<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_lease(Duration::from_millis(300)));
    let jobs: Vec<Job> = (0..5).map(|i| post(&board, &format!("j{i}"), 0)).collect();
    let lapsed = board.claim(jobs[0].id, "A").unwrap();
    sleep_past(lapsed.expires_at);
    let running = [1, 3].map(|i| board.claim(jobs[i].id, "A").unwrap());
    let taken = board.claim_next("B", 4, &ClaimFilter::any()).unwrap();
    let seen: Vec<&str> = taken.iter().map(|(j, _)| j.name.as_str()).collect();
    assert_eq!(seen, ["j0", "j2", "j4"]);
    assert_eq!(taken[0].1.epoch, lapsed.epoch + 1);
    assert_refused_everywhere(&board, &lapsed);
    // The running claims are still A's (a lease of 300 ms may lapse on a
    // slow machine before a renew, so only their owner is checked).
    for claim in &running {
        let job = board.get(claim.job).unwrap();
        assert_eq!(job.owner.as_deref(), Some("A"));
    }
}

/// Claimers racing through `claim_next` each get distinct jobs, and every
/// job is claimed exactly once.
pub fn racing_claim_next_each_job_once<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    const JOBS: usize = 400;
    const THREADS: usize = 4;
    let board = make(long_lease());
    for i in 0..JOBS {
        board.post(NewJob::new(format!("race-{i}"))).unwrap();
    }
    let barrier = Barrier::new(THREADS);
    let wins: Vec<Vec<(Job, Claim)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (board, barrier) = (&board, &barrier);
                s.spawn(move || {
                    let owner = format!("thread-{t}");
                    let mut won = Vec::new();
                    barrier.wait();
                    loop {
                        let batch = board.claim_next(&owner, 7, &ClaimFilter::any()).unwrap();
                        if batch.is_empty() {
                            return won;
                        }
                        won.extend(batch);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut claims: HashMap<JobId, usize> = HashMap::new();
    for (t, won) in wins.iter().enumerate() {
        for (job, claim) in won {
            assert_eq!(claim.epoch, 1, "job {} claimed twice", job.id);
            assert_eq!(claim.owner, format!("thread-{t}"));
            *claims.entry(job.id).or_default() += 1;
        }
    }
    assert_eq!(claims.len(), JOBS, "some jobs were claimed by nobody");
    assert!(claims.values().all(|n| *n == 1), "a job claimed twice");
    assert!(board.iterjobs(true).unwrap().is_empty());
}

/// `consume_all` gives, per claim and in order, what `consume` of that
/// claim alone gives: the job complete (outcome consumed) for a current
/// claim, `NotOwner` for a claim the job moved on from (another epoch,
/// another owner, or the job complete), `NotFound` for a job that is gone;
/// a refused claim leaves the others consumed and itself unchanged. No
/// claims, no results.
pub fn consume_all_consumes_each_as_consume<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    assert!(board.consume_all(&[]).is_empty());
    let (a, b, c, d) = (
        post(&board, "a", 0),
        post(&board, "b", 0),
        post(&board, "c", 0),
        post(&board, "d", 0),
    );
    let held_a = board.claim(a.id, "A").unwrap();
    let held_b = board.claim(b.id, "A").unwrap();
    // c: claimed, abandoned and claimed again: the first claim is stale.
    let stale_c = board.claim(c.id, "A").unwrap();
    board.abandon(&stale_c).unwrap();
    let held_c = board.claim(c.id, "B").unwrap();
    // d: consumed already.
    let done_d = board.claim(d.id, "A").unwrap();
    board.consume(&done_d).unwrap();
    let gone = Claim {
        job: JobId::new(),
        ..held_a.clone()
    };
    let claims = [
        held_a.clone(),
        stale_c.clone(),
        held_b.clone(),
        done_d.clone(),
        gone.clone(),
    ];
    let results = board.consume_all(&claims);
    assert_eq!(results.len(), claims.len());
    let mut results = results.into_iter();
    results.next().unwrap().unwrap();
    assert_not_owner(results.next().unwrap().unwrap_err(), &stale_c);
    results.next().unwrap().unwrap();
    assert_not_owner(results.next().unwrap().unwrap_err(), &done_d);
    assert_not_found(results.next().unwrap().unwrap_err(), gone.job);
    for id in [a.id, b.id, d.id] {
        let job = board.get(id).unwrap();
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Complete, Some(Outcome::Consumed))
        );
    }
    // The refused claim changed nothing: c is still B's.
    assert_eq!(board.find_owner(c.id).unwrap().as_deref(), Some("B"));
    assert_eq!(board.iterjobs(false).unwrap().len(), 1);
    // Consumed twice: refused, as consume refuses it.
    assert_not_owner(
        board
            .consume_all(&[held_a.clone(), held_b.clone()])
            .into_iter()
            .next()
            .unwrap()
            .unwrap_err(),
        &held_a,
    );
    board.consume(&held_c).unwrap();
    assert_eq!(board.job_count().unwrap(), 0);
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

/// How far ahead the scheduled cases schedule a job: time for a few calls
/// before it is due, short enough to sleep past.
const AHEAD: u64 = 400;

fn assert_duplicate(err: JobBoardError, want_key: &str, holder: JobId) {
    assert!(
        matches!(&err, JobBoardError::Duplicate { key, existing } if key == want_key && *existing == holder),
        "expected unique key `{want_key}` held by job {holder}, got {err}"
    );
}

fn assert_already_posted(err: JobBoardError, want_key: &str, posted: JobId) {
    assert!(
        matches!(&err, JobBoardError::AlreadyPosted { key, existing } if key == want_key && *existing == posted),
        "expected key `{want_key}` already posted as job {posted}, got {err}"
    );
}

fn assert_not_complete(err: JobBoardError, id: JobId) {
    assert!(
        matches!(err, JobBoardError::NotComplete(job) if job == id),
        "expected job {id} not complete, got {err}"
    );
}

fn assert_not_found(err: JobBoardError, id: JobId) {
    assert!(
        matches!(err, JobBoardError::NotFound(job) if job == id),
        "expected job {id} not found, got {err}"
    );
}

/// A job scheduled for later reads as unclaimed with its time, is
/// [`is_scheduled`](Job::is_scheduled), is refused with `NotYet` naming its
/// time, is listed by `iterjobs(false)` but not by `iterjobs(true)`, and
/// is claimable once its time comes; a job whose time has passed is
/// claimable at once.
pub fn scheduled_job_waits_for_its_time<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let at = system_millis() + AHEAD;
    let late = board.post(NewJob::new("late").not_before(at)).unwrap();
    let past = system_millis().saturating_sub(10_000);
    let due = board.post(NewJob::new("due").not_before(past)).unwrap();
    let plain = post(&board, "plain", 0);
    assert_eq!(late.not_before, Some(at));
    assert_eq!(late.state, JobState::Unclaimed);
    assert_eq!(board.get(late.id).unwrap(), late);
    assert!(late.is_scheduled(system_millis()));
    assert!(!late.is_scheduled(at));
    assert!(!due.is_scheduled(system_millis()));
    assert!(!plain.is_scheduled(system_millis()));
    match board.claim(late.id, "A") {
        Err(JobBoardError::NotYet { job, not_before }) if job == late.id && not_before == at => {}
        other => panic!(
            "expected job {} not claimable before {at}, got {other:?}",
            late.id
        ),
    }
    assert_eq!(
        board.get(late.id).unwrap(),
        late,
        "a refused claim changed it"
    );
    assert_eq!(board.find_owner(late.id).unwrap(), None);
    assert_eq!(
        names(&board.iterjobs(false).unwrap()),
        ["late", "due", "plain"]
    );
    assert_eq!(names(&board.iterjobs(true).unwrap()), ["due", "plain"]);
    assert_eq!(board.claim(due.id, "A").unwrap().epoch, 1);
    sleep_past(at);
    assert!(!board.get(late.id).unwrap().is_scheduled(system_millis()));
    assert_eq!(names(&board.iterjobs(true).unwrap()), ["late", "plain"]);
    let claim = board.claim(late.id, "A").unwrap();
    assert_eq!((claim.epoch, claim.control), (Epoch::new(1), None));
    assert_eq!(board.get(late.id).unwrap().not_before, Some(at));
    board.consume(&claim).unwrap();
}

/// `wait` on a board whose only job is scheduled returns false before the
/// job's time, and wakes when its time comes rather than at the timeout.
pub fn wait_wakes_when_a_scheduled_job_is_due<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let at = system_millis() + AHEAD;
    let job = board.post(NewJob::new("later").not_before(at)).unwrap();
    assert!(!board.wait(Duration::from_millis(50)).unwrap());
    let start = Instant::now();
    assert!(board.wait(Duration::from_secs(30)).unwrap());
    let woke = system_millis();
    // A few ms of slack: a board on a server's clock rounds differently.
    assert!(
        woke + 20 >= at,
        "woke at {woke}, before the job's time {at}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "woke after {:?}, long after the job's time",
        start.elapsed()
    );
    let claim = board.claim(job.id, "A").unwrap();
    board.consume(&claim).unwrap();
}

/// A control request makes a scheduled job claimable at once (so a
/// conductor can settle it) and wakes a waiter; the claim carries it.
pub fn a_requested_scheduled_job_is_claimable<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let at = system_millis() + 60_000;
    let job = board.post(NewJob::new("later").not_before(at)).unwrap();
    assert!(matches!(
        board.claim(job.id, "A"),
        Err(JobBoardError::NotYet { .. })
    ));
    assert!(!board.wait(Duration::ZERO).unwrap());
    let seen = std::thread::scope(|s| {
        let start = Instant::now();
        let requester = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            board.request(job.id, Control::Cancel).unwrap()
        });
        assert!(board.wait(Duration::from_secs(30)).unwrap());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(90), "woke after {waited:?}");
        assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
        requester.join().unwrap()
    });
    assert_eq!(seen.control, Some(Control::Cancel));
    assert_eq!(seen.not_before, Some(at));
    assert_eq!(seen.state, JobState::Unclaimed);
    assert!(!seen.is_scheduled(system_millis()));
    assert_eq!(names(&board.iterjobs(true).unwrap()), ["later"]);
    let claim = board.claim(job.id, "A").unwrap();
    assert_eq!(claim.control, Some(Control::Cancel));
    board.trash(&claim, "cancelled before it ran").unwrap();
}

/// At most one job that is not complete holds a uniqueness key: another
/// post is `Duplicate` naming the holder, and writes nothing, while the
/// holder is unclaimed, claimed or abandoned; once it is consumed or
/// trashed the key is free. Other keys and unkeyed jobs are unaffected.
pub fn unique_key_one_open_job<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let first = board.post(NewJob::new("a").unique_key("nightly")).unwrap();
    board
        .post(NewJob::new("other").unique_key("weekly"))
        .unwrap();
    post(&board, "plain", 0);
    assert_duplicate(
        board
            .post(NewJob::new("b").unique_key("nightly"))
            .unwrap_err(),
        "nightly",
        first.id,
    );
    assert_eq!(
        names(&board.all_jobs().unwrap()),
        ["a", "other", "plain"],
        "a refused post wrote a job"
    );
    let claim = board.claim(first.id, "A").unwrap();
    assert_duplicate(
        board
            .post(NewJob::new("b").unique_key("nightly"))
            .unwrap_err(),
        "nightly",
        first.id,
    );
    board.abandon(&claim).unwrap();
    assert_duplicate(
        board
            .post(NewJob::new("b").unique_key("nightly"))
            .unwrap_err(),
        "nightly",
        first.id,
    );
    let claim = board.claim(first.id, "A").unwrap();
    board.consume(&claim).unwrap();
    let second = board.post(NewJob::new("c").unique_key("nightly")).unwrap();
    assert_ne!(second.id, first.id);
    assert_duplicate(
        board
            .post(NewJob::new("d").unique_key("nightly"))
            .unwrap_err(),
        "nightly",
        second.id,
    );
    let claim = board.claim(second.id, "A").unwrap();
    board.trash(&claim, "bad").unwrap();
    let third = board.post(NewJob::new("e").unique_key("nightly")).unwrap();
    assert_eq!(
        names(&board.all_jobs().unwrap()),
        ["a", "other", "plain", "c", "e"]
    );
    assert_eq!(
        board.get(third.id).unwrap().unique_key.as_deref(),
        Some("nightly")
    );
}

/// An execution key posts once: a second post of it is `AlreadyPosted`
/// naming the first job, and writes nothing, whether that job is
/// unclaimed or complete, until purge removes that job. The execution key
/// is checked before the uniqueness key.
pub fn execution_key_posts_once_until_purged<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_retention(Retention::Last(0)));
    let key = "backup@2024-01-01T00:00:00Z";
    let run = board.post(NewJob::new("run").key(key)).unwrap();
    assert_eq!(run.key.as_deref(), Some(key));
    assert_already_posted(
        board.post(NewJob::new("again").key(key)).unwrap_err(),
        key,
        run.id,
    );
    // Both keys taken, by different jobs: the execution key answers.
    board.post(NewJob::new("holder").unique_key("u")).unwrap();
    assert_already_posted(
        board
            .post(NewJob::new("again").key(key).unique_key("u"))
            .unwrap_err(),
        key,
        run.id,
    );
    let claim = board.claim(run.id, "A").unwrap();
    board.consume(&claim).unwrap();
    assert_already_posted(
        board.post(NewJob::new("again").key(key)).unwrap_err(),
        key,
        run.id,
    );
    let next = board
        .post(NewJob::new("next").key("backup@2024-01-02T00:00:00Z"))
        .unwrap();
    assert_eq!(
        names(&board.all_jobs().unwrap()),
        ["run", "holder", "next"],
        "a refused post wrote a job"
    );
    let purged = board.purge().unwrap();
    assert_eq!(purged.iter().map(|j| j.id).collect::<Vec<_>>(), [run.id]);
    let again = board.post(NewJob::new("again").key(key)).unwrap();
    assert_ne!(again.id, run.id);
    assert_already_posted(
        board.post(NewJob::new("thrice").key(key)).unwrap_err(),
        key,
        again.id,
    );
    assert_eq!(board.get(next.id).unwrap().name, "next");
}

/// Eight threads race to post each of 20 execution keys, then each of 20
/// uniqueness keys: each key posts exactly one job, and every loser is
/// told which.
pub fn racing_posters_one_job_per_key<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    const THREADS: usize = 8;
    const KEYS: usize = 20;
    let board = make(long_lease());
    for unique in [false, true] {
        let barrier = Barrier::new(THREADS);
        let results: Vec<Vec<Result<Job, JobBoardError>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (board, barrier) = (&board, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..KEYS)
                            .map(|k| {
                                let new = NewJob::new(format!("t{t}-k{k}"));
                                let new = if unique {
                                    new.unique_key(format!("unique-{k}"))
                                } else {
                                    new.key(format!("run@{k}"))
                                };
                                board.post(new)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for k in 0..KEYS {
            let tries: Vec<&Result<Job, JobBoardError>> =
                results.iter().map(|thread| &thread[k]).collect();
            let won: Vec<&Job> = tries.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(
                won.len(),
                1,
                "key {k} (unique: {unique}) posted {} jobs",
                won.len()
            );
            let winner = won[0].id;
            for result in tries {
                match result {
                    Ok(_) => {}
                    Err(JobBoardError::AlreadyPosted { existing, .. }) if !unique => {
                        assert_eq!(*existing, winner);
                    }
                    Err(JobBoardError::Duplicate { existing, .. }) if unique => {
                        assert_eq!(*existing, winner);
                    }
                    Err(e) => panic!("posting key {k} (unique: {unique}): {e}"),
                }
            }
        }
    }
    assert_eq!(board.all_jobs().unwrap().len(), 2 * KEYS);
}

/// A control request is recorded on an unclaimed or claimed job and
/// returned with the job; the next claim, and each renewal, carries it; a
/// cancel overrides a stop and a stop after a cancel leaves the cancel;
/// the request changes no claim. A complete job is `Complete`, an unknown
/// one `NotFound`.
pub fn control_requests_reach_the_owner<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let job = post(&board, "a", 0);
    let seen = board.request(job.id, Control::Stop).unwrap();
    assert_eq!(
        (seen.id, seen.state, seen.control),
        (job.id, JobState::Unclaimed, Some(Control::Stop))
    );
    assert_eq!(board.get(job.id).unwrap(), seen);
    let claim = board.claim(job.id, "A").unwrap();
    assert_eq!(claim.control, Some(Control::Stop));
    assert_eq!(board.renew(&claim).unwrap().control, Some(Control::Stop));
    // Abandoned, the request stays for the next owner.
    board.abandon(&claim).unwrap();
    let claim = board.claim(job.id, "B").unwrap();
    assert_eq!(claim.control, Some(Control::Stop));

    let other = post(&board, "b", 0);
    let held = board.claim(other.id, "B").unwrap();
    assert_eq!(held.control, None);
    assert_eq!(board.renew(&held).unwrap().control, None);
    let seen = board.request(other.id, Control::Stop).unwrap();
    assert_eq!(seen.state, JobState::Claimed);
    assert_eq!(seen.owner.as_deref(), Some("B"));
    assert_eq!(seen.epoch, held.epoch);
    assert_eq!(seen.control, Some(Control::Stop));
    let renewed = board.renew(&held).unwrap();
    assert_eq!(
        (renewed.epoch, renewed.control),
        (held.epoch, Some(Control::Stop))
    );
    let seen = board.request(other.id, Control::Cancel).unwrap();
    assert_eq!(seen.control, Some(Control::Cancel), "cancel overrides stop");
    assert_eq!(board.renew(&held).unwrap().control, Some(Control::Cancel));
    let seen = board.request(other.id, Control::Stop).unwrap();
    assert_eq!(
        seen.control,
        Some(Control::Cancel),
        "a stop leaves a cancel"
    );
    assert_eq!(board.renew(&held).unwrap().control, Some(Control::Cancel));
    assert_eq!(board.find_owner(other.id).unwrap().as_deref(), Some("B"));

    board.trash(&held, "cancelled").unwrap();
    assert!(
        matches!(board.request(other.id, Control::Cancel), Err(JobBoardError::Complete(id)) if id == other.id)
    );
    assert_eq!(board.get(other.id).unwrap().control, Some(Control::Cancel));
    let missing = JobId::new();
    assert_not_found(board.request(missing, Control::Stop).unwrap_err(), missing);
    board.consume(&claim).unwrap();
}

/// Reopening a complete job runs it again as a new revision: same id,
/// name, details, records, priority and keys; unclaimed, with no owner,
/// lease, outcome or control request; revision + 1; epoch kept, so the
/// next claim's epoch is higher than any before and the old claim is
/// refused everywhere. A job that is not complete is `NotComplete`; an
/// unknown one `NotFound`; one whose uniqueness key another open job took
/// meanwhile `Duplicate` (and stays complete).
pub fn reopen_runs_a_complete_job_again<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let mut new = NewJob::new("retry me").unique_key("u").key("p@1");
    new.details = json!({"a": 1});
    new.logbook = Some(LogBookId::new());
    new.flow_detail = Some(FlowDetailId::new());
    new.priority = 3;
    let job = board.post(new).unwrap();
    assert_not_complete(board.reopen(job.id).unwrap_err(), job.id);
    let first = board.claim(job.id, "A").unwrap();
    assert_not_complete(board.reopen(job.id).unwrap_err(), job.id);
    board.request(job.id, Control::Stop).unwrap();
    let first = board.renew(&first).unwrap();
    board.trash(&first, "stopped").unwrap();

    let again = board.reopen(job.id).unwrap();
    assert_eq!(again.revision, 2);
    assert_eq!(again.state, JobState::Unclaimed);
    assert_eq!(
        (
            &again.owner,
            again.lease_expires_at,
            &again.outcome,
            again.control
        ),
        (&None, None, &None, None)
    );
    assert_eq!(again.epoch, first.epoch);
    assert_eq!(
        Job {
            revision: 1,
            epoch: Epoch::ZERO,
            ..again.clone()
        },
        job,
        "reopening changed more than its run"
    );
    assert_eq!(board.get(job.id).unwrap(), again);
    assert_eq!(names(&board.iterjobs(true).unwrap()), ["retry me"]);
    assert!(board.wait(Duration::ZERO).unwrap());
    // Its keys are its own again.
    assert_duplicate(
        board.post(NewJob::new("x").unique_key("u")).unwrap_err(),
        "u",
        job.id,
    );
    assert_already_posted(
        board.post(NewJob::new("x").key("p@1")).unwrap_err(),
        "p@1",
        job.id,
    );
    // Fencing holds across revisions.
    assert_refused_everywhere(&board, &first);
    let second = board.claim(job.id, "B").unwrap();
    assert!(
        second.epoch > first.epoch,
        "{} after {}",
        second.epoch,
        first.epoch
    );
    assert_eq!(second.control, None);
    assert_refused_everywhere(&board, &first);
    assert_not_complete(board.reopen(job.id).unwrap_err(), job.id);
    board.consume(&second).unwrap();
    assert_eq!(board.reopen(job.id).unwrap().revision, 3);
    let third = board.claim(job.id, "C").unwrap();
    assert!(third.epoch > second.epoch);
    board.consume(&third).unwrap();

    let holder = board.post(NewJob::new("holder").unique_key("u")).unwrap();
    assert_duplicate(board.reopen(job.id).unwrap_err(), "u", holder.id);
    let still = board.get(job.id).unwrap();
    assert_eq!((still.state, still.revision), (JobState::Complete, 3));
    let missing = JobId::new();
    assert_not_found(board.reopen(missing).unwrap_err(), missing);
}

/// `all_jobs` lists every job, complete ones included, in posting order
/// (not priority), as `get` reads them, until purge removes them.
pub fn all_jobs_lists_complete_ones_in_posting_order<B: JobBoard>(
    make: &dyn Fn(BoardOptions) -> B,
) {
    let board = make(with_retention(Retention::Last(0)));
    assert!(board.all_jobs().unwrap().is_empty());
    let a = post(&board, "a", 0);
    let b = post(&board, "b", 9);
    let c = post(&board, "c", 5);
    let d = post(&board, "d", 0);
    let claim = board.claim(b.id, "A").unwrap();
    board.consume(&claim).unwrap();
    board.claim(c.id, "A").unwrap();
    let claim = board.claim(d.id, "A").unwrap();
    board.trash(&claim, "bad").unwrap();
    let all = board.all_jobs().unwrap();
    assert_eq!(names(&all), ["a", "b", "c", "d"]);
    for job in &all {
        assert_eq!(*job, board.get(job.id).unwrap());
    }
    assert_eq!(all[1].outcome, Some(Outcome::Consumed));
    assert_eq!(all[2].state, JobState::Claimed);
    assert_eq!(all[3].state, JobState::Complete);
    assert_purged(
        &board,
        &board.purge().unwrap(),
        &[all[1].clone(), all[3].clone()],
    );
    assert_eq!(
        board
            .all_jobs()
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        [a.id, c.id]
    );
}

/// How long a listener may take to see an event (the SQLite watcher looks
/// every 5 ms, Redis pushes; this leaves room for a loaded host).
const EVENT_WAIT: Duration = Duration::from_secs(10);

fn assert_events(listener: &CapturingListener, id: JobId, want: &[BoardEvent]) {
    let seen = listener.wait_for(EVENT_WAIT, |events| {
        events.iter().filter(|e| e.job() == Some(id)).count() >= want.len()
    });
    assert!(
        seen,
        "job {id}: saw {:?}, want {want:?}",
        listener.events_of(id)
    );
    assert_eq!(listener.events_of(id), want, "events of job {id}, in order");
}

/// A listener hears of every change of a job, in the order the board
/// made them: posted, claimed, consumed; and requested, abandoned,
/// trashed, reopened and removed (purged). A renewal is no event.
pub fn events_of_a_job_arrive_in_order<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(with_retention(Retention::Last(0)));
    let listener = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(listener.clone()).unwrap();

    let a = post(&board, "a", 0);
    let claim = board.claim(a.id, "c1").unwrap();
    let claim = board.renew(&claim).unwrap();
    board.consume(&claim).unwrap();
    assert_events(
        &listener,
        a.id,
        &[
            BoardEvent::Posted(a.id),
            BoardEvent::Claimed(a.id),
            BoardEvent::Consumed(a.id),
        ],
    );

    let b = post(&board, "b", 0);
    board.request(b.id, Control::Stop).unwrap();
    let claim = board.claim(b.id, "c1").unwrap();
    board.abandon(&claim).unwrap();
    let claim = board.claim(b.id, "c2").unwrap();
    board.trash(&claim, "no factory").unwrap();
    board.reopen(b.id).unwrap();
    let claim = board.claim(b.id, "c2").unwrap();
    board.consume(&claim).unwrap();
    let purged = board.purge().unwrap();
    assert_eq!(purged.len(), 2, "both complete jobs purged");
    assert_events(
        &listener,
        b.id,
        &[
            BoardEvent::Posted(b.id),
            BoardEvent::Requested(b.id),
            BoardEvent::Claimed(b.id),
            BoardEvent::Abandoned(b.id),
            BoardEvent::Claimed(b.id),
            BoardEvent::Trashed(b.id),
            BoardEvent::Reopened(b.id),
            BoardEvent::Claimed(b.id),
            BoardEvent::Consumed(b.id),
            BoardEvent::Removed(b.id),
        ],
    );
    assert!(listener.wait_for(EVENT_WAIT, |e| e.contains(&BoardEvent::Removed(a.id))));
    // Across jobs, too, events come in the board's order.
    let events = listener.events();
    let at = |e: &BoardEvent| events.iter().position(|x| x == e).unwrap();
    assert!(at(&BoardEvent::Consumed(a.id)) < at(&BoardEvent::Posted(b.id)));
}

/// Dropping the subscription stops the listener's events; other listeners
/// go on hearing them.
pub fn unsubscribed_listeners_hear_nothing<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    let gone = Arc::new(CapturingListener::new());
    let stays = Arc::new(CapturingListener::new());
    let subscription = board.subscribe(gone.clone()).unwrap();
    let _kept = board.subscribe(stays.clone()).unwrap();
    let a = post(&board, "a", 0);
    assert_events(&gone, a.id, &[BoardEvent::Posted(a.id)]);
    drop(subscription);
    let b = post(&board, "b", 0);
    assert_events(&stays, b.id, &[BoardEvent::Posted(b.id)]);
    assert!(gone.events_of(b.id).is_empty());
}

/// A listener on one board instance hears of a job posted, claimed and
/// consumed through another instance on the same store, within a bounded
/// time; and a `wait` on the first wakes for a post on the second.
pub fn listener_sees_another_instance<B: JobBoard, P: JobBoard>(
    make: &dyn Fn(BoardOptions) -> B,
    peer: &dyn Fn(&B) -> P,
) {
    let board = make(long_lease());
    let other = peer(&board);
    let listener = Arc::new(CapturingListener::new());
    let _subscription = board.subscribe(listener.clone()).unwrap();
    let start = Instant::now();
    let job = post(&other, "elsewhere", 0);
    assert!(listener.wait_for(EVENT_WAIT, |e| e.contains(&BoardEvent::Posted(job.id))));
    let seen_after = start.elapsed();
    assert!(
        seen_after < Duration::from_secs(2),
        "seen after {seen_after:?}"
    );
    let claim = other.claim(job.id, "c1").unwrap();
    other.consume(&claim).unwrap();
    assert_events(
        &listener,
        job.id,
        &[
            BoardEvent::Posted(job.id),
            BoardEvent::Claimed(job.id),
            BoardEvent::Consumed(job.id),
        ],
    );
    std::thread::scope(|s| {
        let poster = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            post(&other, "later", 0)
        });
        let start = Instant::now();
        assert!(board.wait(Duration::from_secs(10)).unwrap());
        assert!(start.elapsed() < Duration::from_secs(3));
        poster.join().unwrap();
    });
}

fn assert_closed<T: std::fmt::Debug>(result: Result<T, JobBoardError>, what: &str) {
    match result {
        Err(JobBoardError::Closed { .. }) => {}
        other => panic!("{what} on a closed board: {other:?}, want Closed"),
    }
}

/// After `close`, every call fails at once with `Closed` (a `wait` blocked
/// at that moment too, within seconds), and `connected` says `false`.
pub fn closed_board_refuses_calls<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    assert!(board.connected());
    let job = post(&board, "a", 0);
    let claim = board.claim(job.id, "c1").unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let start = Instant::now();
            let result = board.wait(Duration::from_secs(30));
            (result, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        board.close().unwrap();
        let (result, took) = waiter.join().unwrap();
        // The wait may have been between looks and see the close as Closed,
        // or have been mid-call: either way it ends soon.
        assert!(took < Duration::from_secs(5), "wait ended after {took:?}");
        assert_closed(result, "a blocked wait");
    });
    assert!(!board.connected());
    board.close().unwrap();
    let started = Instant::now();
    assert_closed(board.post(NewJob::new("b")), "post");
    assert_closed(board.get(job.id), "get");
    assert_closed(board.claim(job.id, "c2"), "claim");
    assert_closed(board.renew(&claim), "renew");
    assert_closed(board.consume(&claim), "consume");
    assert_closed(board.abandon(&claim), "abandon");
    assert_closed(board.request(job.id, Control::Stop), "request");
    assert_closed(board.iterjobs(false), "iterjobs");
    assert_closed(
        board.iterjobs_with(ListOptions::unclaimed().fresh()),
        "iterjobs_with",
    );
    assert_closed(board.all_jobs(), "all_jobs");
    assert_closed(board.job_count(), "job_count");
    assert_closed(board.wait(Duration::from_secs(5)), "wait");
    assert_closed(
        board.wait_until_complete(job.id, Duration::from_secs(5)),
        "wait_until_complete",
    );
    assert_closed(board.find_owner(job.id), "find_owner");
    assert_closed(board.entities(), "entities");
    assert_closed(board.purge(), "purge");
    assert_closed(
        board.subscribe(Arc::new(CapturingListener::new())),
        "subscribe",
    );
    assert!(started.elapsed() < Duration::from_secs(2), "no call hung");
}

/// `job_count` counts what `iterjobs(false)` lists: unclaimed, claimed and
/// scheduled jobs, not complete ones; and `iterjobs_with` lists as
/// `iterjobs` does, fresh or not.
pub fn job_count_matches_iterjobs<B: JobBoard>(make: &dyn Fn(BoardOptions) -> B) {
    let board = make(long_lease());
    assert_eq!(board.job_count().unwrap(), 0);
    let jobs = post_many(&board, "j", 5);
    let claim = board.claim(jobs[0].id, "c1").unwrap();
    let done = board.claim(jobs[1].id, "c1").unwrap();
    board.consume(&done).unwrap();
    board
        .post(NewJob::new("later").not_before(system_millis() + 60_000))
        .unwrap();
    assert_eq!(
        board.job_count().unwrap(),
        board.iterjobs(false).unwrap().len()
    );
    assert_eq!(board.job_count().unwrap(), 5);
    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(board.iterjobs_with(ListOptions::all().fresh()).unwrap()),
        ids(board.iterjobs(false).unwrap())
    );
    assert_eq!(
        ids(board.iterjobs_with(ListOptions::unclaimed()).unwrap()),
        ids(board.iterjobs(true).unwrap())
    );
    assert_eq!(
        board
            .iterjobs_with(ListOptions::unclaimed().fresh())
            .unwrap()
            .len(),
        3
    );
    board.abandon(&claim).unwrap();
    assert_eq!(board.job_count().unwrap(), 5);
}

/// A case that needs a second instance of the board: a maker, and what
/// opens another instance on the same store as a board made.
pub type PeerCase<B, P> = fn(&dyn Fn(BoardOptions) -> B, &dyn Fn(&B) -> P);

/// Runs a case that needs a second instance of the board (`peer`), as
/// [`run`] does.
pub fn run_with_peer<A: Available, P: JobBoard>(
    case_name: &str,
    make: impl Fn(BoardOptions) -> A,
    peer: impl Fn(&A::Board) -> P,
    case: PeerCase<A::Board, P>,
) {
    match make(BoardOptions::default()).available() {
        None => {
            eprintln!("skipped {case_name}: the board is not available");
        }
        Some(probe) => {
            drop(probe);
            case(
                &|options| {
                    make(options)
                        .available()
                        .expect("the board was available a moment ago")
                },
                &peer,
            );
        }
    }
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
/// With `peer = f`, where `f` opens another instance of a board on the
/// same store (`Fn(&Board) -> OtherBoard`), it also checks that a listener
/// on one instance hears of changes made through the other.
///
/// ```ignore
/// taskflow_jobboard::board_conformance!(MemoryBoard::new);
/// taskflow_jobboard::board_conformance!(open_sqlite, peer = |b: &SqliteBoard| reopen(b));
/// ```
#[macro_export]
macro_rules! board_conformance {
    ($make:expr) => {
        $crate::board_conformance!(@cases $make;
            post_and_get_round_trip iterjobs_orders_by_priority_then_posting
            iterjobs_only_unclaimed claim_and_its_errors only_the_owner_may_release
            consume_and_trash_complete_the_job abandon_makes_it_claimable_again
            lapsed_lease_lets_another_claim lapsed_claim_holds_until_reclaimed
            renew_keeps_the_claim renew_all_renews_each_claim_as_renew
            claim_first_takes_the_first_claimable claim_many_claims_up_to_max
            claim_next_claims_in_board_order claim_next_takes_lapsed_claims
            claim_next_passes_over_running_claims
            racing_claim_next_each_job_once
            consume_all_consumes_each_as_consume wait_times_out wait_wakes_on_post
            wait_sees_lapses_and_abandons wait_until_complete_sees_completion
            wait_until_complete_times_out wait_until_complete_unknown_job
            find_owner register_entity
            purge_forever_keeps_everything purge_keeps_the_last_n
            purge_drops_jobs_completed_long_ago racing_claimers_each_job_once
            scheduled_job_waits_for_its_time wait_wakes_when_a_scheduled_job_is_due
            a_requested_scheduled_job_is_claimable unique_key_one_open_job
            execution_key_posts_once_until_purged racing_posters_one_job_per_key
            control_requests_reach_the_owner reopen_runs_a_complete_job_again
            all_jobs_lists_complete_ones_in_posting_order
            events_of_a_job_arrive_in_order unsubscribed_listeners_hear_nothing
            closed_board_refuses_calls job_count_matches_iterjobs);
    };
    ($make:expr, peer = $peer:expr) => {
        $crate::board_conformance!($make);
        #[test]
        fn listener_sees_another_instance() {
            $crate::testkit::run_with_peer(
                "listener_sees_another_instance",
                $make,
                $peer,
                $crate::testkit::listener_sees_another_instance,
            );
        }
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
    fn post_with_records(
        &self,
        job: NewJob,
        book: &taskflow_persistence::LogBook,
        records: &dyn taskflow_persistence::Backend,
    ) -> Result<Job, JobBoardError> {
        self.board.post_with_records(job, book, records)
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
    fn request(&self, id: JobId, control: Control) -> Result<Job, JobBoardError> {
        self.board.request(id, control)
    }
    fn reopen(&self, id: JobId) -> Result<Job, JobBoardError> {
        self.board.reopen(id)
    }
    fn iterjobs(&self, only_unclaimed: bool) -> Result<Vec<Job>, JobBoardError> {
        self.board.iterjobs(only_unclaimed)
    }
    fn all_jobs(&self) -> Result<Vec<Job>, JobBoardError> {
        self.board.all_jobs()
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
    fn subscribe(
        &self,
        listener: std::sync::Arc<dyn crate::BoardListener>,
    ) -> Result<crate::Subscription, JobBoardError> {
        self.board.subscribe(listener)
    }
    fn job_count(&self) -> Result<usize, JobBoardError> {
        self.board.job_count()
    }
    fn connected(&self) -> bool {
        self.board.connected()
    }
    fn iterjobs_with(&self, options: crate::ListOptions) -> Result<Vec<Job>, JobBoardError> {
        self.board.iterjobs_with(options)
    }
}
