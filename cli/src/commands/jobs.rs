//! `taskflow jobs`: the jobs on the board, each with its claim and how far
//! its flow got (from the records).

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use comfy_table::{presets, Table};
use serde::Serialize;
use taskflow::{Backend, Job, JobBoard, JobId, JobState, Outcome};

use super::post::JOB_META;
use super::Places;
use crate::report::atoms_done;
use crate::{exit, Board, CliError};

/// A job state to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StateArg {
    /// Waiting for a conductor (or its lease lapsed).
    Unclaimed,
    /// Claimed by a conductor whose lease runs.
    Claimed,
    /// Consumed or trashed.
    Complete,
}

impl StateArg {
    fn state(self) -> JobState {
        match self {
            StateArg::Unclaimed => JobState::Unclaimed,
            StateArg::Claimed => JobState::Claimed,
            StateArg::Complete => JobState::Complete,
        }
    }
}

/// Arguments of `jobs`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Complete jobs too (those `taskflow post` posted, until purged).
    #[arg(long)]
    all: bool,
    /// Only jobs in this state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Print the jobs as JSON.
    #[arg(long)]
    json: bool,
}

/// One job, as the table and `--json` show it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) state: String,
    /// The owner of its latest claim (its lease may have lapsed).
    pub(crate) owner: Option<String>,
    pub(crate) epoch: u64,
    /// Seconds its claim's lease still runs; null when not claimed.
    pub(crate) lease_left: Option<f64>,
    pub(crate) priority: i32,
    /// `consumed`, or `trashed: REASON`, once complete.
    pub(crate) outcome: Option<String>,
    pub(crate) flow_detail: Option<String>,
    /// The state of its flow in the records.
    pub(crate) flow_state: Option<String>,
    /// Atoms that ended `SUCCESS` or `IGNORE`.
    pub(crate) atoms_done: usize,
    /// Atoms the records know of (none before a conductor first ran it).
    pub(crate) atoms_total: usize,
}

pub(crate) fn exec(args: Args, places: &Places) -> Result<u8, CliError> {
    let (_, backend) = places.records()?;
    let (board, jobs) = places.board()?;
    let wanted = args.state.map(StateArg::state);
    let complete_too = args.all || wanted == Some(JobState::Complete);
    let listed = list(&board, &*jobs, &*backend, complete_too)?;
    let rows: Vec<JobRow> = listed
        .iter()
        .filter(|j| wanted.is_none_or(|w| j.state == w))
        .map(|j| row(j, &*backend))
        .collect();
    crate::report::print_listing(&rows, args.json, &format_args!("no jobs on {board}"), table)?;
    Ok(exit::SUCCESS)
}

/// The jobs that are not complete, in the board's order; with
/// `complete_too`, then the complete jobs `taskflow post` named in the
/// logbooks of the records (a board lists only jobs not complete).
fn list(
    url: &Board,
    board: &dyn JobBoard,
    records: &dyn Backend,
    complete_too: bool,
) -> Result<Vec<Job>, CliError> {
    let mut jobs = board.iterjobs(false).map_err(|e| url.failed(e))?;
    if !complete_too {
        return Ok(jobs);
    }
    let mut seen: HashSet<JobId> = jobs.iter().map(|j| j.id).collect();
    let mut complete = Vec::new();
    for book in records.list_logbooks()?.into_iter().flatten() {
        let Some(id) = book
            .meta
            .get(JOB_META)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<JobId>().ok())
        else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        match board.get(id) {
            Ok(job) => complete.push(job),
            // Purged, or posted on another board.
            Err(taskflow::JobBoardError::NotFound(_)) => {}
            Err(e) => return Err(url.failed(e)),
        }
    }
    complete.sort_by_key(|j| (j.created_at, j.sequence));
    jobs.extend(complete);
    Ok(jobs)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `job` with what the records say of its flow.
pub(crate) fn row(job: &Job, records: &dyn Backend) -> JobRow {
    let flow = job
        .flow_detail
        .and_then(|id| records.get_flow_detail(id).ok());
    let (done, total) = flow
        .as_ref()
        .map_or((0, 0), |f| atoms_done(&f.atom_details));
    let lease_left = match (job.state, job.lease_expires_at) {
        (JobState::Claimed, Some(at)) => Some(at.saturating_sub(now_millis()) as f64 / 1000.0),
        _ => None,
    };
    JobRow {
        id: job.id.to_string(),
        name: job.name.clone(),
        state: job.state.to_string(),
        owner: job.owner.clone(),
        epoch: job.epoch.get(),
        lease_left,
        priority: job.priority,
        outcome: job.outcome.as_ref().map(|o| match o {
            Outcome::Consumed => "consumed".to_owned(),
            Outcome::Trashed { reason } => format!("trashed: {reason}"),
        }),
        flow_detail: job.flow_detail.map(|id| id.to_string()),
        flow_state: flow.as_ref().map(|f| f.state.to_string()),
        atoms_done: done,
        atoms_total: total,
    }
}

fn table(rows: &[JobRow]) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "job", "name", "state", "owner", "epoch", "lease", "flow", "atoms",
    ]);
    for r in rows {
        let state = match &r.outcome {
            Some(outcome) => format!("{} ({outcome})", r.state),
            None => r.state.clone(),
        };
        table.add_row([
            r.id.clone(),
            r.name.clone(),
            state,
            r.owner.clone().unwrap_or_else(|| "-".to_owned()),
            r.epoch.to_string(),
            r.lease_left
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s")),
            r.flow_state.clone().unwrap_or_else(|| "-".to_owned()),
            if r.atoms_total == 0 {
                "-".to_owned()
            } else {
                format!("{}/{}", r.atoms_done, r.atoms_total)
            },
        ]);
    }
    table.to_string()
}
