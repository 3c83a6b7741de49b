//! A job's stats: what `GET /api/v1/jobs/{id}` answers (Harbor's body,
//! with the owner, epoch and revision added).

use serde::Serialize;
use serde_json::Value;
use taskflow::{AtomDetail, Backend, FlowDetail, FlowState, Job, JobId};

use crate::meta::JobMeta;
use crate::{Kind, Parameters, Status};

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStats {
    /// Its id.
    pub id: JobId,
    /// Its status.
    pub status: Status,
    /// Its job type.
    pub name: String,
    /// How it is started.
    pub kind: Kind,
    /// Whether it was submitted as unique.
    pub unique: bool,
    /// Its parameters.
    pub parameters: Parameters,
    /// Where to read it: `/api/v1/jobs/{id}`.
    pub ref_link: String,
    /// When it was submitted (s since the epoch).
    pub enqueue_time: u64,
    /// When it last changed, as far as the records tell (s since the epoch).
    pub update_time: u64,
    /// When it is due (s since the epoch): a scheduled job's time, an
    /// execution's fire time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<u64>,
    /// A periodic policy's cron spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron_spec: Option<String>,
    /// The latest check-in of its tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_in: Option<String>,
    /// When that check-in was made (s since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_in_at: Option<u64>,
    /// Harbor's `die_at`: always 0 (finished jobs are kept by the board's
    /// retention).
    pub die_at: u64,
    /// Its status hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_status: Option<String>,
    /// An execution's periodic policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_job_id: Option<JobId>,
    /// A policy's executions (filled by the caller that lists them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<JobId>,
    /// Whether it has executions (a periodic policy).
    pub multiple_executions: bool,
    /// The node that runs it (or ran it last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The epoch of its latest claim (0 before the first).
    pub epoch: u64,
    /// Its revision: 1, plus one per retry.
    pub revision: u64,
    /// Why it could not run, when the board trashed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobStats {
    /// The stats of a service job, reading its flow detail from `records`
    /// (the flow state, check-ins); None for a board job the service did
    /// not post.
    pub fn read(job: &Job, records: &dyn Backend, now_ms: u64) -> Option<JobStats> {
        let meta = JobMeta::of(job)?;
        let flow = job
            .flow_detail
            .and_then(|id| match records.get_flow_detail(id) {
                Ok(flow) => Some(flow),
                Err(e) => {
                    if !e.is_not_found() {
                        tracing::warn!(job = %job.id, error = %e, "cannot read the job's records");
                    }
                    None
                }
            });
        let state = flow.as_ref().map(|f| f.state);
        let status = Status::of(job, meta.kind, state, now_ms);
        let (check_in, check_in_at) = flow.as_ref().and_then(latest_checkin).unzip();
        // The board keeps no change time of its own; the latest check-in
        // is the latest change the records date.
        let update_ms = check_in_at.map_or(job.created_at, |at| at.max(job.created_at));
        let error = match &job.outcome {
            Some(taskflow::Outcome::Trashed { reason }) => Some(reason.clone()),
            _ => failure_of(flow.as_ref(), state),
        };
        Some(JobStats {
            id: job.id,
            status,
            name: meta.name,
            kind: meta.kind,
            unique: meta.unique,
            parameters: meta.parameters,
            ref_link: format!("/api/v1/jobs/{}", job.id),
            enqueue_time: job.created_at / 1000,
            update_time: update_ms / 1000,
            run_at: meta.run_at.map(|ms| ms / 1000),
            cron_spec: meta.cron_spec,
            check_in,
            check_in_at: check_in_at.map(|ms| ms / 1000),
            die_at: 0,
            hook_status: meta.status_hook,
            upstream_job_id: meta.upstream_job_id,
            executions: Vec::new(),
            multiple_executions: meta.kind == Kind::Periodic,
            owner: job.owner.clone(),
            epoch: job.epoch.get(),
            revision: job.revision,
            error,
        })
    }

    /// The body of a one-job answer: `{"job": stats}`.
    pub fn body(&self) -> Value {
        serde_json::json!({ "job": self })
    }
}

/// The latest check-in among a flow's atoms: its message and time (ms).
fn latest_checkin(flow: &FlowDetail) -> Option<(String, u64)> {
    flow.atom_details
        .iter()
        .filter_map(|atom| {
            let checkin = atom.meta().get(AtomDetail::CHECKIN_KEY)?;
            let message = checkin.get("message")?.as_str()?.to_owned();
            let at = checkin.get("at")?.as_u64()?;
            Some((message, at))
        })
        .max_by_key(|(_, at)| *at)
}

/// The first failure of a flow that did not succeed, for people.
fn failure_of(flow: Option<&FlowDetail>, state: Option<FlowState>) -> Option<String> {
    if matches!(state, Some(FlowState::Success) | None) {
        return None;
    }
    flow?.atom_details.iter().find_map(|atom| {
        atom.failure()
            .as_ref()
            .map(|f| format!("atom `{}`: {}", atom.name, f.message))
    })
}
