use std::time::Duration;

use crate::{Control, JobId};
use taskflow_patterns::FlowState;

/// What a conductor did with a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConductorEvent {
    /// It claimed the job at this epoch.
    Claimed {
        /// The job.
        job: JobId,
        /// The claim's epoch.
        epoch: u64,
    },
    /// The job's flow ran to its end (in this state) and the job was consumed.
    Consumed {
        /// The job.
        job: JobId,
        /// How the flow ended: `SUCCESS`, or `REVERTED` / `FAILURE` for a flow
        /// that failed (its failures are in its records).
        flow_state: FlowState,
    },
    /// It gave the job back for another conductor.
    Abandoned {
        /// The job.
        job: JobId,
        /// Why (shutdown, lost resources).
        reason: String,
    },
    /// It cannot run the job, though another conductor may (a flow factory
    /// or task type it lacks, records it cannot find, a flow it cannot
    /// build, an engine that panicked): it gave the job back and claims it
    /// no more for `retry_after`.
    Skipped {
        /// The job.
        job: JobId,
        /// Why it cannot run it.
        reason: String,
        /// How long it leaves the job to other conductors.
        retry_after: Duration,
    },
    /// The job can never run (its records are corrupt); it was marked
    /// complete with the reason.
    Trashed {
        /// The job.
        job: JobId,
        /// Why.
        reason: String,
    },
    /// A stop or cancel request was seen on the job (at its claim or a
    /// lease renewal): its flow suspends after the atoms in flight; a
    /// stopped job is then consumed, a cancelled one reverted first.
    Requested {
        /// The job.
        job: JobId,
        /// What was asked.
        control: Control,
    },
    /// Its claim lapsed and another owner took the job; its run stopped.
    LeaseLost {
        /// The job.
        job: JobId,
        /// The epoch of the lost claim.
        epoch: u64,
    },
    /// Retention removed complete jobs (and the logbooks of consumed ones).
    Purged {
        /// The jobs removed.
        jobs: Vec<JobId>,
    },
}

/// Hears a conductor's events. Any `Fn(&ConductorEvent) + Send + Sync` is one.
pub trait ConductorListener: Send + Sync {
    /// Something happened to a job.
    fn on_event(&self, event: &ConductorEvent);
}

impl<F: Fn(&ConductorEvent) + Send + Sync> ConductorListener for F {
    fn on_event(&self, event: &ConductorEvent) {
        self(event);
    }
}
