//! Periodic policies: each fire time of a policy's cron spec becomes one
//! execution job, exactly once however many nodes run.
//!
//! Every node looks at the policies every [`TICK`] and posts the
//! executions due within the next [`HORIZON`] as jobs that are not
//! claimable before their fire time (the board's not-before time), each
//! with the execution key `policy@fire-time-ms`. The board keeps one job
//! per key (complete or not, until retention purges it), so when several
//! nodes post the same execution all but one are refused: duplicates are
//! impossible at the board, not made unlikely by a lock. Fire times are
//! posted only from [`CATCH_UP`] before now, far inside any retention, so
//! a purged execution is never posted again; fire times missed while no
//! node ran are skipped (as Harbor does).
//!
//! Cron specs have Harbor's six fields (robfig/cron's order and
//! numbering): `second minute hour day-of-month month day-of-week`, Sunday
//! = 0 (7 also), read in UTC; a day-of-month and a day-of-week that are
//! both restricted match either (vixie cron's rule, as robfig's).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use taskflow::{post_flow, FlowSource, Job, JobBoardError, JobId, JobState, PostFlow};

use crate::clock::now_ms;
use crate::core::Core;
use crate::cron::{next_fire, parse_fields};
use crate::meta::JobMeta;
use crate::Kind;

/// How often a node posts the executions coming due.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// How far ahead executions are posted.
pub(crate) const HORIZON: Duration = Duration::from_secs(5);

/// How far back a fire time not yet posted is still posted (a node that
/// was busy or paused).
pub(crate) const CATCH_UP: Duration = Duration::from_secs(10);

/// The execution key of `policy`'s run at `fire_ms`.
pub(crate) fn execution_key(policy: &Job, fire_ms: u64) -> String {
    format!("{}@{fire_ms}", policy.id)
}

/// A node's enqueuer: the next fire time of each policy it has seen, so
/// a cron spec is searched once per fire time, not once per tick.
#[derive(Default)]
pub(crate) struct Enqueuer {
    next: HashMap<JobId, Option<u64>>,
}

impl Enqueuer {
    /// Posts the executions of every live policy due up to the horizon;
    /// returns how many this node posted.
    pub(crate) fn tick(&mut self, core: &Core) -> Result<usize, JobBoardError> {
        let jobs = core.board.all_jobs()?;
        let posted_keys: HashSet<&str> = jobs.iter().filter_map(|j| j.key.as_deref()).collect();
        let now = now_ms();
        let until = now + HORIZON.as_millis() as u64;
        let mut live = HashSet::new();
        let mut posted = 0;
        for policy in &jobs {
            if policy.state == JobState::Complete || policy.control.is_some() {
                continue;
            }
            let Some(meta) = JobMeta::of(policy).filter(|m| m.kind == Kind::Periodic) else {
                continue;
            };
            let Some(cron) = meta.cron_spec.as_deref().and_then(|s| parse_fields(s).ok()) else {
                continue;
            };
            live.insert(policy.id);
            let from = policy
                .created_at
                .max(now.saturating_sub(CATCH_UP.as_millis() as u64));
            let next = self
                .next
                .entry(policy.id)
                .or_insert_with(|| next_fire(&cron, from.saturating_sub(1)));
            // A node that was paused skips what is older than the catch-up.
            while next.is_some_and(|at| at < from) {
                *next = next.and_then(|at| next_fire(&cron, at));
            }
            while let Some(fire) = next.filter(|&at| at <= until) {
                let key = execution_key(policy, fire);
                if !posted_keys.contains(key.as_str())
                    && post_execution(core, policy, &meta, fire, key)?
                {
                    posted += 1;
                }
                *next = next_fire(&cron, fire);
            }
        }
        self.next.retain(|id, _| live.contains(id));
        Ok(posted)
    }
}

/// Posts one execution; false when another node posted it first.
fn post_execution(
    core: &Core,
    policy: &Job,
    meta: &JobMeta,
    fire: u64,
    key: String,
) -> Result<bool, JobBoardError> {
    let execution = JobMeta {
        name: meta.name.clone(),
        kind: Kind::Generic,
        parameters: meta.parameters.clone(),
        status_hook: meta.status_hook.clone(),
        unique: false,
        schedule_delay: None,
        cron_spec: None,
        upstream_job_id: Some(policy.id),
        run_at: Some(fire),
    };
    let args = Value::Object(meta.parameters.clone());
    let store = match core.types.get(&meta.name) {
        Some(job_type) => job_type.store(&meta.parameters),
        None => meta.parameters.clone(),
    };
    let post = PostFlow::new(
        meta.name.clone(),
        FlowSource::Factory {
            name: &meta.name,
            args: &args,
        },
    )
    .details(execution.details())
    .store(Value::Object(store))
    .not_before(fire)
    .key(key);
    match post_flow(&*core.board, &*core.records, post) {
        Ok(job) => {
            core.logs.append(
                job.id,
                &format!(
                    "execution of periodic policy {} for {} posted by {}",
                    policy.id,
                    humantime::format_rfc3339_millis(
                        std::time::UNIX_EPOCH + Duration::from_millis(fire)
                    ),
                    core.node_id
                ),
            );
            Ok(true)
        }
        Err(JobBoardError::AlreadyPosted { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
