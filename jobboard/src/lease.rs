//! Leases: the clock they are measured with, and the rules every board
//! applies to claims.
//!
//! The rules are documented on [`JobBoard`](crate::JobBoard#leases); the
//! helpers at the end of this module apply them to a job as stored, for
//! the boards that keep jobs as [`Job`] values (memory) or read them back
//! (SQLite, for refusals and views). Times are milliseconds since the Unix
//! epoch, read from the board's [`Clock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Claim, Control, Job, JobBoardError, JobState};

/// Where a board reads the time: the system clock, or a clock the caller
/// controls (tests move a [`ManualClock`] forward instead of sleeping until
/// a lease lapses).
///
/// Boards on one host that share a store (several processes on one SQLite
/// file) must all use the system clock, since they compare each other's
/// lease times. Two clocks are equal when both are the system clock or both
/// are the same custom clock (clones of one [`Clock`]).
#[derive(Clone, Default)]
pub struct Clock(ClockKind);

#[derive(Clone, Default)]
enum ClockKind {
    #[default]
    System,
    Custom(Arc<dyn Fn() -> u64 + Send + Sync>),
}

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Clock(ClockKind::System)
    }

    /// A clock reading the time from `now`, in milliseconds since the Unix
    /// epoch.
    pub fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Clock(ClockKind::Custom(Arc::new(now)))
    }

    /// The time now, in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        match &self.0 {
            ClockKind::System => system_millis(),
            ClockKind::Custom(now) => now(),
        }
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        matches!(self.0, ClockKind::System)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            ClockKind::System => "Clock::system()",
            ClockKind::Custom(_) => "Clock::from_fn(..)",
        })
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (ClockKind::System, ClockKind::System) => true,
            (ClockKind::Custom(a), ClockKind::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Clock {}

/// The system time in milliseconds since the Unix epoch (0 before it).
pub(crate) fn system_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A clock that moves only when told to, for tests.
///
/// ```
/// use std::time::Duration;
/// use taskflow_jobboard::{BoardOptions, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// let options = BoardOptions { clock: clock.clock(), ..BoardOptions::default() };
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(options.clock.now_millis(), 3_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `start` (milliseconds since the Unix epoch).
    pub fn new(start: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start)))
    }

    /// A clock starting at the system time now.
    pub fn starting_now() -> Self {
        ManualClock::new(system_millis())
    }

    /// The time it reads.
    pub fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(millis(by), Ordering::SeqCst);
    }

    /// Sets the time it reads.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// A [`Clock`] reading this clock, for [`BoardOptions`](crate::BoardOptions).
    pub fn clock(&self) -> Clock {
        let time = Arc::clone(&self.0);
        Clock::from_fn(move || time.load(Ordering::SeqCst))
    }
}

/// Whether `job` (as stored) can be claimed at `now`: not complete, not
/// under a running lease, and not waiting for its not-before time (a
/// control request lifts that wait).
pub(crate) fn claimable(job: &Job, now: u64) -> bool {
    free(job, now) && !waits(job, now)
}

/// Whether `job` (as stored) is free of claims at `now`: unclaimed, or
/// claimed with a lapsed lease.
fn free(job: &Job, now: u64) -> bool {
    match job.state {
        JobState::Unclaimed => true,
        JobState::Claimed => job.lease_expires_at.map_or(true, |at| at <= now),
        JobState::Complete => false,
    }
}

/// Whether `job` (as stored) waits for its not-before time at `now`.
pub(crate) fn waits(job: &Job, now: u64) -> bool {
    job.control.is_none() && job.not_before.is_some_and(|at| at > now)
}

/// Why `job` (as stored), which is not claimable at `now`, cannot be claimed.
pub(crate) fn refusal(job: &Job, now: u64) -> JobBoardError {
    match job.state {
        JobState::Complete => JobBoardError::Complete(job.id),
        _ if free(job, now) => JobBoardError::NotYet {
            job: job.id,
            not_before: job.not_before.unwrap_or_default(),
        },
        _ => JobBoardError::AlreadyClaimed {
            job: job.id,
            owner: job.owner.clone().unwrap_or_default(),
        },
    }
}

/// The stronger of two control requests: a job keeps the strongest made.
pub(crate) fn stronger(held: Option<Control>, asked: Control) -> Control {
    held.map_or(asked, |held| held.max(asked))
}

/// Whether `claim` is the current claim of `job` (as stored): `NotOwner`
/// otherwise.
pub(crate) fn check_current(job: &Job, claim: &Claim) -> Result<(), JobBoardError> {
    if job.state == JobState::Claimed
        && job.epoch == claim.epoch
        && job.owner.as_deref() == Some(claim.owner.as_str())
    {
        Ok(())
    } else {
        Err(not_owner(claim))
    }
}

/// The refusal of a claim that is not its job's current claim.
pub(crate) fn not_owner(claim: &Claim) -> JobBoardError {
    JobBoardError::NotOwner {
        job: claim.job,
        owner: claim.owner.clone(),
        epoch: claim.epoch.get(),
    }
}

/// `job` (as stored) as readers see it at `now`: a claim whose lease
/// lapsed shows as unclaimed.
pub(crate) fn view(mut job: Job, now: u64) -> Job {
    if job.state == JobState::Claimed && free(&job, now) {
        job.state = JobState::Unclaimed;
    }
    job
}

/// The owner of `job` (as stored) if claimed with a running lease at `now`.
pub(crate) fn running_owner(job: &Job, now: u64) -> Option<String> {
    if job.state == JobState::Claimed && !free(job, now) {
        job.owner.clone()
    } else {
        None
    }
}

/// The order of [`JobBoard::iterjobs`](crate::JobBoard::iterjobs): highest
/// priority first, then posting order.
pub(crate) fn iter_order(a: &Job, b: &Job) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.sequence.cmp(&b.sequence))
}
