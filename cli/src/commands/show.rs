//! `taskflow show JOB|FLOW_DETAIL`: a job's flow (or any flow detail of
//! the records), atom by atom, as the records have it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::{presets, Table};
use serde::Serialize;
use taskflow::{AtomDetail, AtomKind, FlowDetail, FlowDetailId, JobBoardError, JobId, Value};

use super::jobs::{row, JobRow};
use super::Places;
use crate::report::{kind, shorten};
use crate::timing::DURATION_KEY;
use crate::{exit, CliError};

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A job's id (as `post` printed it), or a flow detail's (as `run` did).
    id: String,
    /// Print it as JSON (with `--watch`, one line per change).
    #[arg(long)]
    json: bool,
    /// Redraw it as it changes, until the job is complete (or the flow
    /// ended).
    #[arg(long)]
    watch: bool,
    /// How often `--watch` reads the board and records.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = super::duration)]
    interval: Duration,
}

/// One atom of the flow.
#[derive(Debug, Clone, Serialize)]
struct AtomView {
    name: String,
    kind: &'static str,
    state: String,
    /// Seconds it ran (and reverted) in its latest run, as recorded.
    seconds: Option<f64>,
    /// A retry controller's attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_failure: Option<String>,
}

/// What `show --json` prints.
#[derive(Debug, Clone, Serialize)]
struct View {
    /// The job, when a job was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<JobRow>,
    flow: String,
    flow_detail: String,
    state: String,
    atoms: Vec<AtomView>,
}

pub(crate) fn exec(args: Args, places: &Places) -> Result<u8, CliError> {
    let uuid: uuid::Uuid = args
        .id
        .parse()
        .map_err(|_| CliError::BadJobId(args.id.clone()))?;
    let (_, backend) = places.records()?;
    let (board, jobs) = places.board()?;
    let load = || -> Result<View, CliError> {
        let (job, flow_detail) = match jobs.get(JobId::from(uuid)) {
            Ok(job) => {
                let Some(flow) = job.flow_detail else {
                    return Err(CliError::BadJobId(format!(
                        "{} (the job names no flow detail)",
                        args.id
                    )));
                };
                (Some(row(&job, &*backend)), flow)
            }
            Err(JobBoardError::NotFound(_)) => (None, FlowDetailId::from(uuid)),
            Err(e) => return Err(board.failed(e)),
        };
        let flow = backend.get_flow_detail(flow_detail)?;
        Ok(view(job, &flow))
    };
    let mut out = std::io::stdout().lock();
    if !args.watch {
        let view = load()?;
        if args.json {
            let text = serde_json::to_string_pretty(&view).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        } else {
            writeln!(out, "{}", text(&view))?;
        }
        return Ok(exit::SUCCESS);
    }
    // Redrawn on a terminal; elsewhere each change once (JSON: one line
    // each), the lease's countdown alone not counting as one.
    let redraw = !args.json && std::io::stdout().is_terminal();
    let mut last = None;
    loop {
        let view = load()?;
        let mut same = view.clone();
        if let Some(job) = &mut same.job {
            job.lease_left = None;
        }
        let key = serde_json::to_string(&same).map_err(std::io::Error::other)?;
        if redraw || last.as_ref() != Some(&key) {
            if args.json {
                let line = serde_json::to_string(&view).map_err(std::io::Error::other)?;
                writeln!(out, "{line}")?;
            } else if redraw {
                writeln!(out, "\x1b[2J\x1b[H{}", text(&view))?;
            } else {
                writeln!(out, "{}\n", text(&view))?;
            }
            out.flush()?;
            last = Some(key);
        }
        if finished(&view) {
            return Ok(exit::SUCCESS);
        }
        std::thread::sleep(args.interval);
    }
}

/// Whether a watch is over: the job is complete, or (for a flow detail
/// with no job) its flow ended.
fn finished(view: &View) -> bool {
    match &view.job {
        Some(job) => job.state == "COMPLETE",
        None => matches!(view.state.as_str(), "SUCCESS" | "REVERTED" | "FAILURE"),
    }
}

fn view(job: Option<JobRow>, flow: &FlowDetail) -> View {
    View {
        job,
        flow: flow.name.clone(),
        flow_detail: flow.uuid.to_string(),
        state: flow.state.to_string(),
        atoms: flow.atom_details.iter().map(atom).collect(),
    }
}

fn atom(d: &AtomDetail) -> AtomView {
    AtomView {
        name: d.name.to_string(),
        kind: kind(d.kind),
        state: d.state.to_string(),
        seconds: d.meta().get(DURATION_KEY).and_then(Value::as_f64),
        attempts: (d.kind == AtomKind::Retry).then(|| d.history().len()),
        result: d.result.as_deref().cloned(),
        failure: d.failure().map(|f| format!("{}: {}", f.kind, f.message)),
        revert_failure: d
            .revert_failure()
            .map(|f| format!("{}: {}", f.kind, f.message)),
    }
}

fn text(view: &View) -> String {
    let mut lines = Vec::new();
    if let Some(job) = &view.job {
        let owner = job.owner.as_deref().unwrap_or("-");
        let outcome = job
            .outcome
            .as_deref()
            .map_or_else(String::new, |o| format!(", {o}"));
        lines.push(format!(
            "job {} `{}`: {}{outcome} (owner {owner}, epoch {})",
            job.id, job.name, job.state, job.epoch
        ));
    }
    lines.push(format!(
        "flow `{}` {} (flow detail {})",
        view.flow, view.state, view.flow_detail
    ));
    if view.atoms.is_empty() {
        lines.push("no atom has run yet".to_owned());
    } else {
        let mut table = Table::new();
        table.load_style(presets::UTF8_FULL_CONDENSED);
        table.set_header(["atom", "kind", "state", "time", "result / failure"]);
        for a in &view.atoms {
            let what = match (&a.failure, &a.revert_failure, &a.result, a.attempts) {
                (_, _, _, Some(n)) => format!("{n} attempt{}", if n == 1 { "" } else { "s" }),
                (Some(f), Some(rf), _, _) => format!("{f}; revert: {rf}"),
                (Some(f), None, _, _) => f.clone(),
                (None, Some(rf), _, _) => format!("revert: {rf}"),
                (None, None, Some(Value::Null) | None, _) => String::new(),
                (None, None, Some(r), _) => r.to_string(),
            };
            table.add_row([
                a.name.clone(),
                a.kind.to_owned(),
                a.state.clone(),
                a.seconds
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.3}s")),
                shorten(&what, 70),
            ]);
        }
        lines.push(table.to_string());
    }
    lines.join("\n")
}
