//! What the API does, apart from HTTP: submit, read, list and act on jobs,
//! against the board and the records every node shares.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskflow::{
    post_flow, Backend, Control, FlowSource, Job, JobBoard, JobBoardError, JobId, NewJob, PostFlow,
};

use taskflow::jobboard::json_type;

use crate::clock::now_ms;
use crate::error::ApiError;
use crate::hooks::{Hooks, FINAL_PHASE};
use crate::logs::JobLogs;
use crate::meta::JobMeta;
use crate::{JobStats, JobTypes, Kind, Parameters, Status};

/// The entity metadata marking a service node on the board.
pub(crate) const NODE_MARK: &str = "service_node";

/// How often a node says it is alive on the board.
pub(crate) const HEARTBEAT_EVERY_MS: u64 = 2_000;

/// A submission: `POST /api/v1/jobs`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submission {
    pub(crate) job: SubmittedJob,
}

/// The `job` of a submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmittedJob {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) parameters: Value,
    #[serde(default)]
    pub(crate) status_hook: Option<String>,
    #[serde(default)]
    pub(crate) metadata: Option<SubmittedMeta>,
}

/// The `job.metadata` of a submission.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmittedMeta {
    #[serde(default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) schedule_delay: Option<u64>,
    #[serde(default)]
    pub(crate) cron_spec: Option<String>,
    #[serde(default)]
    pub(crate) unique: bool,
}

/// An action on a job: `POST /api/v1/jobs/{id}`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionRequest {
    pub(crate) action: String,
}

/// A node as `GET /api/v1/stats` shows it (Harbor's worker pool stats).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeStats {
    /// The node's name on the board.
    pub worker_pool_id: String,
    /// When it started (s since the epoch).
    pub started_at: u64,
    /// When it last said it was alive (s since the epoch).
    pub heartbeat_at: u64,
    /// The job types it runs.
    pub job_names: Vec<String>,
    /// How many jobs it runs at once.
    pub concurrency: usize,
    /// `healthy`, or `unhealthy` when its heartbeat is late.
    pub status: String,
}

/// Which jobs a listing wants.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) page_number: Option<usize>,
    #[serde(default)]
    pub(crate) page_size: Option<usize>,
}

/// The largest page a listing gives.
const MAX_PAGE_SIZE: usize = 1000;

/// The state every node's API shares: the board, the records, the job
/// types, the logs.
pub(crate) struct Core {
    pub(crate) board: Arc<dyn JobBoard>,
    pub(crate) records: Arc<dyn Backend>,
    pub(crate) types: JobTypes,
    pub(crate) logs: JobLogs,
    pub(crate) hooks: Hooks,
    pub(crate) node_id: String,
}

impl Core {
    /// Submits a job; returns its stats (202).
    pub(crate) fn submit(&self, body: &[u8]) -> Result<JobStats, ApiError> {
        let submission: Submission = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a submission: {e}")))?;
        let job = submission.job;
        let job_type = self.types.get(&job.name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "job.name: unknown job type `{}` (this service runs: {})",
                job.name,
                self.types.names().join(", ")
            ))
        })?;
        let parameters: Parameters = match job.parameters {
            Value::Null => Parameters::new(),
            Value::Object(map) => map,
            other => {
                return Err(ApiError::bad_request(format!(
                    "job.parameters: must be an object of parameter to value, got {}",
                    json_type(&other)
                )))
            }
        };
        job_type.validate(&parameters).map_err(|e| {
            ApiError::bad_request(format!("job.parameters.{}: {}", e.field, e.reason))
        })?;
        if let Some(hook) = &job.status_hook {
            let url = reqwest::Url::parse(hook);
            let usable = url.as_ref().is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
            if !usable {
                let why = match url {
                    Err(e) => e.to_string(),
                    Ok(_) => "expected an http:// or https:// URL with a host".into(),
                };
                return Err(ApiError::bad_request(format!(
                    "job.status_hook: `{hook}` is not an http:// or https:// URL: {why}"
                )));
            }
        }
        let metadata = job.metadata.unwrap_or_default();
        let kind = match metadata.kind.as_deref() {
            None => Kind::Generic,
            Some(name) => Kind::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "job.metadata.kind: `{name}` is not `Generic`, `Scheduled` or `Periodic`"
                ))
            })?,
        };
        let now = now_ms();
        let mut meta = JobMeta {
            name: job.name.clone(),
            kind,
            parameters,
            status_hook: job.status_hook,
            unique: metadata.unique,
            schedule_delay: None,
            cron_spec: None,
            upstream_job_id: None,
            run_at: None,
        };
        match kind {
            Kind::Generic => {}
            Kind::Scheduled => {
                let delay = metadata.schedule_delay.ok_or_else(|| {
                    ApiError::bad_request(
                        "job.metadata.schedule_delay: a Scheduled job needs its delay in seconds",
                    )
                })?;
                meta.schedule_delay = Some(delay);
                meta.run_at = Some(now.saturating_add(delay.saturating_mul(1000)));
            }
            Kind::Periodic => {
                let spec = metadata.cron_spec.ok_or_else(|| {
                    ApiError::bad_request(
                        "job.metadata.cron_spec: a Periodic job needs a 6-field cron spec \
                         (sec min hour day-of-month month day-of-week)",
                    )
                })?;
                crate::cron::parse_cron(&spec).map_err(|e| {
                    ApiError::bad_request(format!("job.metadata.cron_spec: `{spec}`: {e}"))
                })?;
                meta.cron_spec = Some(spec);
            }
        }
        // The flow is built once here, so parameters its type cannot build
        // a flow from are refused now, not found by a conductor later.
        if kind != Kind::Periodic {
            job_type.flow(&meta.parameters).map_err(|e| {
                ApiError::bad_request(format!(
                    "job.parameters: job type `{}` cannot build its flow from them: {e}",
                    meta.name
                ))
            })?;
        }
        let unique_key = meta.unique.then(|| meta.unique_key());
        let posted = match kind {
            Kind::Periodic => {
                let mut new = NewJob::new(meta.name.clone());
                new.details = meta.details();
                new.unique_key = unique_key.clone();
                self.board.post(new)
            }
            Kind::Generic | Kind::Scheduled => {
                let args = Value::Object(meta.parameters.clone());
                let mut post = PostFlow::new(
                    meta.name.clone(),
                    FlowSource::Factory {
                        name: &meta.name,
                        args: &args,
                    },
                )
                .details(meta.details())
                .store(Value::Object(job_type.store(&meta.parameters)));
                if let Some(at) = meta.run_at {
                    post = post.not_before(at);
                }
                if let Some(key) = &unique_key {
                    post = post.unique_key(key.clone());
                }
                post_flow(&*self.board, &*self.records, post)
            }
        };
        let posted = posted.map_err(|e| match e {
            JobBoardError::Duplicate { existing, .. } => ApiError::conflict(format!(
                "a unique `{}` job with these parameters is not finished: job {existing}",
                meta.name
            )),
            other => ApiError::from_board(other),
        })?;
        self.logs.append(
            posted.id,
            &format!("submitted on {} as {} (revision 1)", self.node_id, kind),
        );
        let stats = self.stats_of(&posted)?;
        self.hooks.status(&stats);
        Ok(stats)
    }

    /// Enqueues the hook event of job `id`'s status now (a transition seen
    /// by this node).
    pub(crate) fn hook_status(&self, id: JobId) {
        match self.board.get(id) {
            // A job without a hook costs no read of its records.
            Ok(job) if JobMeta::of(&job).is_none_or(|m| m.status_hook.is_none()) => {}
            Ok(job) => {
                if let Some(stats) = JobStats::read(&job, &*self.records, now_ms()) {
                    self.hooks.status(&stats);
                    if stats.status.is_final() {
                        self.hooks.finished(id);
                    }
                }
            }
            Err(e) => tracing::warn!(job = %id, error = %e, "cannot read a job for its hook"),
        }
    }

    /// Enqueues the hook event of a check-in of job `id`.
    pub(crate) fn hook_checkin(&self, id: JobId, message: &str) {
        if let Ok(job) = self.board.get(id) {
            if JobMeta::of(&job).is_none_or(|m| m.status_hook.is_none()) {
                return;
            }
            if let Some(stats) = JobStats::read(&job, &*self.records, now_ms()) {
                self.hooks.checkin(&stats, message);
            }
        }
    }

    /// Puts back the final events that a crash kept out of the outbox: for
    /// every finished job with a hook whose final event of its revision
    /// and claim was never enqueued, enqueues it.
    pub(crate) fn reconcile_hooks(&self, jobs: &[Job]) {
        let on_board = jobs.iter().map(|j| j.id.to_string()).collect();
        if let Err(e) = self.hooks.outbox.forget_gone(&on_board) {
            tracing::warn!(error = %e, "cannot trim the hook outbox");
        }
        let now = now_ms();
        for job in jobs
            .iter()
            .filter(|j| j.state == taskflow::JobState::Complete)
        {
            let Some(meta) = JobMeta::of(job) else {
                continue;
            };
            if meta.status_hook.is_none() {
                continue;
            }
            let final_seq = crate::hooks::sequence(job.revision, job.epoch.get(), FINAL_PHASE);
            match self.hooks.outbox.enqueued(job.id) {
                Ok(Some(seq)) if seq >= final_seq => {}
                Ok(_) => {
                    if let Some(stats) = JobStats::read(job, &*self.records, now) {
                        tracing::info!(job = %job.id, status = %stats.status, "re-enqueueing a final status hook");
                        self.hooks.status(&stats);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the hook outbox"),
            }
        }
    }

    /// The stats of job `id`.
    pub(crate) fn stats(&self, id: &str) -> Result<JobStats, ApiError> {
        let job = self.job(id)?;
        let mut stats = self.stats_of(&job)?;
        if stats.kind == Kind::Periodic {
            stats.executions = self.executions_of(job.id)?.iter().map(|j| j.id).collect();
        }
        Ok(stats)
    }

    /// A page of the jobs that match `query`, newest first, and how many match.
    pub(crate) fn list(&self, query: &ListQuery) -> Result<(Vec<JobStats>, usize), ApiError> {
        let status = match query.status.as_deref() {
            None => None,
            Some(name) => Some(Status::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status: `{name}` is not one of {}",
                    Status::ALL.map(Status::as_str).join(", ")
                ))
            })?),
        };
        let kind = match query.kind.as_deref() {
            None => None,
            Some(name) => Some(Kind::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "kind: `{name}` is not `Generic`, `Scheduled` or `Periodic`"
                ))
            })?),
        };
        let now = now_ms();
        let mut matching: Vec<JobStats> = self
            .board
            .all_jobs()
            .map_err(ApiError::from_board)?
            .iter()
            .filter(|job| {
                JobMeta::of(job).is_some_and(|meta| {
                    query.name.as_ref().is_none_or(|name| &meta.name == name)
                        && kind.is_none_or(|kind| meta.kind == kind)
                })
            })
            .filter_map(|job| JobStats::read(job, &*self.records, now))
            .filter(|stats| status.is_none_or(|status| stats.status == status))
            .collect();
        matching.reverse();
        let total = matching.len();
        Ok((page(matching, query)?, total))
    }

    /// A page of a periodic policy's executions, newest first, and how
    /// many it has.
    pub(crate) fn executions(
        &self,
        id: &str,
        query: &ListQuery,
    ) -> Result<(Vec<JobStats>, usize), ApiError> {
        let policy = self.job(id)?;
        let now = now_ms();
        let mut executions: Vec<JobStats> = self
            .executions_of(policy.id)?
            .iter()
            .filter_map(|job| JobStats::read(job, &*self.records, now))
            .collect();
        executions.reverse();
        let total = executions.len();
        Ok((page(executions, query)?, total))
    }

    /// Stops, cancels or retries job `id`.
    pub(crate) fn act(&self, id: &str, body: &[u8]) -> Result<(), ApiError> {
        let request: ActionRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not an action (`{{\"action\": \"stop\"|\"cancel\"|\"retry\"}}`): {e}"
            ))
        })?;
        let job = self.job(id)?;
        let stats = self.stats_of(&job)?;
        match request.action.as_str() {
            "stop" => self.control(&job, &stats, Control::Stop),
            "cancel" => self.control(&job, &stats, Control::Cancel),
            "retry" => self.retry(&job, &stats),
            other => Err(ApiError::bad_request(format!(
                "action: `{other}` is not `stop`, `cancel` or `retry`"
            ))),
        }
    }

    /// The log of job `id`.
    pub(crate) fn log(&self, id: &str) -> Result<String, ApiError> {
        let job = self.job(id)?;
        self.logs
            .read(job.id)
            .map_err(|e| ApiError::unavailable(format!("cannot read the log of job {id}: {e}")))
    }

    /// The service's nodes, from their heartbeats on the board.
    pub(crate) fn nodes(&self) -> Result<Vec<NodeStats>, ApiError> {
        let now = now_ms() / 1000;
        let late = 3 * HEARTBEAT_EVERY_MS / 1000;
        Ok(self
            .board
            .entities()
            .map_err(ApiError::from_board)?
            .into_iter()
            .filter(|entity| entity.meta.get(NODE_MARK) == Some(&Value::Bool(true)))
            .filter_map(|entity| {
                let mut stats: NodeStats =
                    serde_json::from_value(entity.meta.get("stats")?.clone()).ok()?;
                stats.status = if now.saturating_sub(stats.heartbeat_at) <= late {
                    "healthy".into()
                } else {
                    "unhealthy".into()
                };
                Some(stats)
            })
            .collect())
    }

    fn job(&self, id: &str) -> Result<Job, ApiError> {
        let parsed: JobId = id
            .parse()
            .map_err(|_| ApiError::not_found(format!("no job `{id}`: not a job id")))?;
        let job = self.board.get(parsed).map_err(ApiError::from_board)?;
        if JobMeta::of(&job).is_none() {
            return Err(ApiError::not_found(format!(
                "no job {id}: the board holds a job of that id that this service did not submit"
            )));
        }
        Ok(job)
    }

    fn stats_of(&self, job: &Job) -> Result<JobStats, ApiError> {
        JobStats::read(job, &*self.records, now_ms()).ok_or_else(|| {
            ApiError::not_found(format!("job {} was not submitted to this service", job.id))
        })
    }

    fn executions_of(&self, policy: JobId) -> Result<Vec<Job>, ApiError> {
        Ok(self
            .board
            .all_jobs()
            .map_err(ApiError::from_board)?
            .into_iter()
            .filter(|job| JobMeta::of(job).is_some_and(|m| m.upstream_job_id == Some(policy)))
            .collect())
    }

    /// Stop or cancel. The request is recorded on the board, where the
    /// job's owner sees it at its next lease renewal; a job nobody runs
    /// (pending, scheduled, a policy) is settled here at once.
    fn control(&self, job: &Job, stats: &JobStats, control: Control) -> Result<(), ApiError> {
        let refuse = || {
            ApiError::conflict(format!(
                "job {} is {}: there is nothing to {control}",
                job.id, stats.status
            ))
        };
        match (stats.status, control) {
            (Status::Stopped, Control::Cancel) => {
                // Compensation of a stopped job: a new revision that only
                // reverts what ran.
                self.board.reopen(job.id).map_err(ApiError::from_board)?;
                self.board
                    .request(job.id, Control::Cancel)
                    .map_err(ApiError::from_board)?;
                self.logs
                    .append(job.id, "cancel requested: reverting what ran");
                return Ok(());
            }
            (status, _) if status.is_final() => return Err(refuse()),
            _ => {}
        }
        match self.board.request(job.id, control) {
            Ok(_) => {}
            Err(JobBoardError::Complete(_)) => return Err(refuse()),
            Err(e) => return Err(ApiError::from_board(e)),
        }
        self.logs.append(
            job.id,
            &format!("{control} requested through {}", self.node_id),
        );
        if stats.kind == Kind::Periodic {
            // Its executions not yet started stop with it.
            self.stop_executions(job, control);
        }
        if matches!(stats.status, Status::Pending | Status::Scheduled) {
            self.settle_unstarted(job.id);
        }
        Ok(())
    }

    /// Stops (or cancels) the executions of a policy that have not finished.
    fn stop_executions(&self, policy: &Job, control: Control) {
        let Ok(executions) = self.executions_of(policy.id) else {
            return;
        };
        for execution in executions {
            if execution.state != taskflow::JobState::Complete {
                let _ = self.board.request(execution.id, control);
            }
        }
    }

    /// Claims a job that no node runs, and completes it: its request is
    /// honoured without a run. Whoever claims first settles it; a
    /// conductor that wins instead sees the request in its claim.
    fn settle_unstarted(&self, id: JobId) {
        match self.board.claim(id, &self.node_id) {
            Ok(claim) => match self.board.consume(&claim) {
                Ok(()) => self.hook_status(id),
                Err(e) => tracing::warn!(job = %id, error = %e, "cannot settle a stopped job"),
            },
            Err(e) => tracing::debug!(job = %id, error = %e, "a node settles the request"),
        }
    }

    fn retry(&self, job: &Job, stats: &JobStats) -> Result<(), ApiError> {
        if !matches!(stats.status, Status::Error | Status::Stopped) || stats.kind == Kind::Periodic
        {
            return Err(ApiError::conflict(format!(
                "job {} is {}: only a job in error or stopped can be retried",
                job.id, stats.status
            )));
        }
        let reopened = self.board.reopen(job.id).map_err(|e| match e {
            JobBoardError::Duplicate { existing, .. } => ApiError::conflict(format!(
                "a unique `{}` job with these parameters runs already: job {existing}",
                stats.name
            )),
            other => ApiError::from_board(other),
        })?;
        self.logs.append(
            job.id,
            &format!(
                "retry requested through {}: revision {}, resuming from the last checkpoint",
                self.node_id, reopened.revision
            ),
        );
        self.hook_status(job.id);
        Ok(())
    }
}

fn page(items: Vec<JobStats>, query: &ListQuery) -> Result<Vec<JobStats>, ApiError> {
    let size = query.page_size.unwrap_or(20);
    if size == 0 || size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "page_size: {size} is not between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let number = query.page_number.unwrap_or(1);
    if number == 0 {
        return Err(ApiError::bad_request("page_number: pages count from 1"));
    }
    Ok(items
        .into_iter()
        .skip((number - 1).saturating_mul(size))
        .take(size)
        .collect())
}
