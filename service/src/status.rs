//! A job's kind and status, and how the status is read off the board and
//! the records.
//!
//! The status is not a field that nodes write: it is what the board (the
//! job's state, outcome, claim, not-before time and control request, all
//! changed atomically and fenced by the claim's epoch) and the flow's
//! records (its state) say. So a node that lost its claim cannot move a
//! job's status back, a status never sticks at `running` when its node
//! dies (the board hands the job to another node when the lease lapses),
//! and within one revision a job's status only moves forward:
//!
//! ```text
//! scheduled -> pending -> running -> stopped | cancelled | error | success
//! ```
//!
//! A retry is a new revision of the job (same id), which starts again
//! from `pending` and resumes the flow from its last checkpoint.

use std::fmt;

use serde::{Deserialize, Serialize};
use taskflow::{Control, FlowState, Job, JobState, Outcome};

/// How a job is started (Harbor's `metadata.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Runs as soon as a worker is free.
    Generic,
    /// Runs after its `schedule_delay`.
    Scheduled,
    /// A policy: every fire time of its `cron_spec` becomes one execution,
    /// a job of its own linked to the policy by `upstream_job_id`.
    Periodic,
}

impl Kind {
    /// The kind named `name` (`Generic`, `Scheduled`, `Periodic`).
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "Generic" => Some(Kind::Generic),
            "Scheduled" => Some(Kind::Scheduled),
            "Periodic" => Some(Kind::Periodic),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Generic => "Generic",
            Kind::Scheduled => "Scheduled",
            Kind::Periodic => "Periodic",
        })
    }
}

/// Where a job is (Harbor's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a worker.
    Pending,
    /// Waiting for its time (a scheduled job), or a periodic policy that
    /// is firing.
    Scheduled,
    /// A node runs it (or is about to take it over from a node that died).
    Running,
    /// Stopped on request at an atom boundary: retry resumes it.
    Stopped,
    /// Cancelled on request: what it had done was reverted.
    Cancelled,
    /// Its flow failed (and reverted, as its flow says), or it could not
    /// run at all: retry runs it again from its checkpoint.
    Error,
    /// Its flow ran to its end.
    Success,
}

impl Status {
    /// Every status, in order.
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Scheduled,
        Status::Running,
        Status::Stopped,
        Status::Cancelled,
        Status::Error,
        Status::Success,
    ];

    /// Its name in the API (`pending`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Scheduled => "scheduled",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Cancelled => "cancelled",
            Status::Error => "error",
            Status::Success => "success",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the job is over (until a retry).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Stopped | Status::Cancelled | Status::Error | Status::Success
        )
    }

    /// A job's status at `now` (ms since the epoch), from its board entry
    /// and, once complete, the state its flow ended in (None when the
    /// records are gone or it has none).
    pub fn of(job: &Job, kind: Kind, flow: Option<FlowState>, now: u64) -> Status {
        match job.state {
            JobState::Complete => match (&job.outcome, flow, job.control) {
                (Some(Outcome::Trashed { .. }), _, _) => Status::Error,
                (_, Some(FlowState::Success), _) => Status::Success,
                (_, _, Some(Control::Cancel)) => Status::Cancelled,
                (_, _, Some(Control::Stop)) => Status::Stopped,
                (_, Some(FlowState::Suspended), None) => Status::Stopped,
                _ => Status::Error,
            },
            _ if kind == Kind::Periodic => Status::Scheduled,
            JobState::Claimed => Status::Running,
            // A lapsed lease keeps its owner: the job is being taken over.
            JobState::Unclaimed if job.owner.is_some() => Status::Running,
            JobState::Unclaimed if job.is_scheduled(now) => Status::Scheduled,
            JobState::Unclaimed => Status::Pending,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
