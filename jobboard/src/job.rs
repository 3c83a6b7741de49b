//! Jobs, their states, and the claims on them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskflow_persistence::{Epoch, FlowDetailId, LogBookId};

use crate::Clock;

taskflow_persistence::uuid_id!(
    /// The id of a [`Job`].
    JobId
);

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Posted, waiting for a conductor.
    Unclaimed,
    /// Claimed by an owner whose lease has not lapsed.
    Claimed,
    /// Consumed (done) or trashed (can never run).
    Complete,
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Unclaimed => "UNCLAIMED",
            JobState::Claimed => "CLAIMED",
            JobState::Complete => "COMPLETE",
        })
    }
}

/// How a complete job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its flow ran to its end and the owner consumed it.
    Consumed,
    /// It can never run (unknown flow factory, undecodable records, ...).
    Trashed {
        /// Why, as the owner recorded it.
        reason: String,
    },
}

/// A request to the owner of a job, recorded on the board with
/// [`JobBoard::request`](crate::JobBoard::request) and seen by the owner in
/// its [`Claim`] when it claims the job or renews its lease.
///
/// The two are ordered by strength (`Stop < Cancel`): a job keeps the
/// strongest request made, so a cancel overrides a stop and a stop after a
/// cancel leaves the cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Stop the job: suspend its flow at the next atom boundary, keeping
    /// what ran (a later retry resumes it).
    Stop,
    /// Cancel the job: stop it and revert what ran (compensation).
    Cancel,
}

impl Control {
    /// The name used in records and messages (`"stop"`, `"cancel"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Stop => "stop",
            Control::Cancel => "cancel",
        }
    }

    /// The control named `name` (`"stop"` or `"cancel"`, as
    /// [`as_str`](Control::as_str) gives), if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "stop" => Some(Control::Stop),
            "cancel" => Some(Control::Cancel),
            _ => None,
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is posted: a name, free-form details, the records of the flow to
/// run, a priority, and optionally a time before which it does not run and
/// keys the board enforces (see [`JobBoard`](crate::JobBoard#scheduled-unique-and-keyed-jobs)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// A name for people (need not be unique).
    pub name: String,
    /// Free-form details (JSON).
    #[serde(default)]
    pub details: Value,
    /// The logbook holding the flow to run.
    pub logbook: Option<LogBookId>,
    /// The flow detail to run, in that logbook.
    pub flow_detail: Option<FlowDetailId>,
    /// Higher runs first; equal priorities run in posting order.
    #[serde(default)]
    pub priority: i32,
    /// Not claimable before this time (ms since the Unix epoch, on the
    /// board's clock); `None`: at once.
    #[serde(default)]
    pub not_before: Option<u64>,
    /// At most one job that is not complete holds this key on a board:
    /// posting another while one does fails with
    /// [`Duplicate`](crate::JobBoardError::Duplicate).
    #[serde(default)]
    pub unique_key: Option<String>,
    /// An idempotency key (a periodic run's `policy@fire-time`): a board
    /// holds at most one job with it, complete or not, until
    /// [`purge`](crate::JobBoard::purge) removes that job; posting another
    /// fails with [`AlreadyPosted`](crate::JobBoardError::AlreadyPosted).
    #[serde(default)]
    pub key: Option<String>,
}

/// The flow factory `details` name (`details.factory`, when a string).
fn factory_in(details: &Value) -> Option<&str> {
    details.get(Job::FACTORY_KEY)?.as_str()
}

impl NewJob {
    /// A job named `name` with no records, details `null`, priority 0,
    /// claimable at once, with no keys.
    pub fn new(name: impl Into<String>) -> Self {
        NewJob {
            name: name.into(),
            details: Value::Null,
            logbook: None,
            flow_detail: None,
            priority: 0,
            not_before: None,
            unique_key: None,
            key: None,
        }
    }

    /// The flow factory its details name, as [`Job::factory`] reads it
    /// once posted.
    pub fn factory(&self) -> Option<&str> {
        factory_in(&self.details)
    }

    /// Makes it not claimable before `ms` (ms since the Unix epoch, on the
    /// board's clock).
    pub fn not_before(mut self, ms: u64) -> Self {
        self.not_before = Some(ms);
        self
    }

    /// Gives it a uniqueness key (see [`NewJob::unique_key`](NewJob#structfield.unique_key)).
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Gives it an execution (idempotency) key (see [`NewJob::key`](NewJob#structfield.key)).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// The revision of a job as posted (for records written before revisions).
fn first_revision() -> u64 {
    1
}

/// A job on a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// A name for people.
    pub name: String,
    /// Free-form details.
    #[serde(default)]
    pub details: Value,
    /// The logbook holding the flow to run.
    pub logbook: Option<LogBookId>,
    /// The flow detail to run.
    pub flow_detail: Option<FlowDetailId>,
    /// Higher runs first.
    pub priority: i32,
    /// When it was posted (ms since the epoch).
    pub created_at: u64,
    /// Its place in posting order on its board.
    pub sequence: u64,
    /// Its state.
    pub state: JobState,
    /// Its current owner, while claimed.
    pub owner: Option<String>,
    /// The epoch of its latest claim (0 before the first).
    pub epoch: Epoch,
    /// When the current lease lapses (ms since the epoch), while claimed.
    pub lease_expires_at: Option<u64>,
    /// How it ended, once complete.
    pub outcome: Option<Outcome>,
    /// Not claimable before this time (ms since the Unix epoch, on the
    /// board's clock), unless a control request was made; `None`: at once.
    #[serde(default)]
    pub not_before: Option<u64>,
    /// Its uniqueness key, if posted with one.
    #[serde(default)]
    pub unique_key: Option<String>,
    /// Its execution (idempotency) key, if posted with one.
    #[serde(default)]
    pub key: Option<String>,
    /// The strongest control request made since it was posted (or last
    /// reopened).
    #[serde(default)]
    pub control: Option<Control>,
    /// 1 when posted; each [`reopen`](crate::JobBoard::reopen) (a retry)
    /// adds one.
    #[serde(default = "first_revision")]
    pub revision: u64,
}

impl Job {
    /// The key of [`details`](Job::details) naming the flow factory that
    /// builds the job's flow, written by [`post_flow`](crate::post_flow).
    pub const FACTORY_KEY: &'static str = "factory";

    /// The key of [`details`](Job::details) holding the job's store (a JSON
    /// object of symbol to value), which a conductor merges over the store
    /// of the job's flow detail when it claims the job (see
    /// [`PostFlow::job_store`](crate::PostFlow::job_store)).
    pub const STORE_KEY: &'static str = "store";

    /// The flow factory that builds this job's flow, if its details name
    /// one (`details.factory`, as [`post_flow`](crate::post_flow) writes
    /// it). A conductor that has not registered it does not claim the job.
    pub fn factory(&self) -> Option<&str> {
        factory_in(&self.details)
    }

    /// Whether it waits for its [`not_before`](Job::not_before) time at
    /// `now` (ms since the Unix epoch, on the board's clock): unclaimed,
    /// with a not-before time after `now` and no control request. Such a
    /// job reads as [`Unclaimed`](JobState::Unclaimed) but is not
    /// claimable yet.
    pub fn is_scheduled(&self, now: u64) -> bool {
        self.state == JobState::Unclaimed
            && self.control.is_none()
            && self.not_before.is_some_and(|at| at > now)
    }
}

/// A claim on a job: proof of ownership until its lease lapses.
///
/// Every claim of a job has a higher `epoch` than the one before, so a
/// claim whose lease lapsed (its owner paused, partitioned, or dead) is
/// recognisably stale: the board refuses it, and so does persistence when
/// the engine writes checkpoints with it (fencing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The job.
    pub job: JobId,
    /// The owner.
    pub owner: String,
    /// The claim's epoch (fencing token).
    pub epoch: Epoch,
    /// When the lease lapses unless renewed (ms since the epoch).
    pub expires_at: u64,
    /// The control request made on the job, as the board held it when it
    /// gave this claim (at the claim, and again at each renewal): the owner
    /// should stop (or cancel) the job's run and settle it.
    #[serde(default)]
    pub control: Option<Control>,
}

/// A party using a board (a conductor), registered so others can see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Its name (the owner name it claims with).
    pub name: String,
    /// Free-form metadata (host, pid, version, ...).
    #[serde(default)]
    pub meta: Value,
}

/// How long claims last and how finished jobs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardOptions {
    /// How long a claim lasts unless renewed (default 1 s: a dead owner's
    /// job is taken over within about that time).
    pub lease: Duration,
    /// How finished jobs are removed.
    pub retention: Retention,
    /// Where lease and completion times are read (default: the system
    /// clock). Tests pass a [`ManualClock`](crate::ManualClock) to lapse
    /// leases without sleeping. Boards that keep time on a server may
    /// use the server's clock instead (their documentation says so).
    pub clock: Clock,
}

impl Default for BoardOptions {
    fn default() -> Self {
        BoardOptions {
            lease: Duration::from_secs(1),
            retention: Retention::default(),
            clock: Clock::system(),
        }
    }
}

/// How long complete jobs (consumed or trashed) are kept before
/// [`JobBoard::purge`](crate::JobBoard::purge) removes them (and, through
/// the conductor, the logbooks of consumed jobs). A claimed job is never
/// removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    /// Keep each complete job for this long after it completed (default: 7 days).
    For(Duration),
    /// Keep only the `n` most recently completed jobs.
    Last(usize),
    /// Keep everything.
    Forever,
}

impl Default for Retention {
    fn default() -> Self {
        Retention::For(Duration::from_secs(7 * 24 * 3600))
    }
}
