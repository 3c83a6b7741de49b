//! `taskflow post FILE|FACTORY`: the flow posted as a job on the board (its
//! logbook and flow detail written to the records), its id printed.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use taskflow::{post_flow, Backend, FlowSource, Job, PostFlow};

use super::{source, store_args, FlowArg, Places, Source};
use crate::{exit, App, CliError};

/// The key of a logbook's meta naming the job `post` made for it: how
/// `jobs --all` finds complete jobs, which the board lists no more.
pub(super) const JOB_META: &str = "job";

/// Arguments of `post`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A flow file (stored whole: its tasks are stored tasks), or the name
    /// of a flow factory of this program (stored by name and `--args`).
    flow: FlowArg,
    /// A store value (KEY=VALUE; the value as JSON when it is JSON, else
    /// text), over the file's own `store`; recorded with the flow. Repeatable.
    #[arg(long = "store", value_name = "KEY=VALUE")]
    store: Vec<String>,
    /// A factory's arguments, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    /// Among claimable jobs, higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i32,
    /// The job's name (the flow's name when not given).
    #[arg(long)]
    name: Option<String>,
    /// Print the job as JSON rather than its id alone.
    #[arg(long)]
    json: bool,
}

/// What `post --json` prints.
#[derive(Serialize)]
struct Posted<'a> {
    job: String,
    name: &'a str,
    priority: i32,
    logbook: Option<String>,
    flow_detail: Option<String>,
    board: String,
    records: String,
}

pub(crate) fn exec(app: &App, args: Args, places: &Places) -> Result<u8, CliError> {
    let extra = store_args(&args.store)?;
    let source = source(app, &args.flow)?;
    let (records, backend) = places.records()?;
    let (board, jobs) = places.board()?;
    let posted = match source {
        Source::File(file) => {
            file.check(&extra).map_err(CliError::Invalid)?;
            let mut store = file.store().clone();
            store.extend(extra);
            let flow = file.into_flow();
            let name = args.name.unwrap_or_else(|| flow.name().to_owned());
            post_flow(
                &*jobs,
                &*backend,
                PostFlow::new(name, FlowSource::Flow(&flow))
                    .store(Value::Object(store))
                    .priority(args.priority),
            )
        }
        Source::Factory(factory) => {
            let factory_args: Value = super::factory_args(&args.args)?;
            let name = args.name.unwrap_or_else(|| factory.clone());
            post_flow(
                &*jobs,
                &*backend,
                PostFlow::new(
                    name,
                    FlowSource::Factory {
                        name: &factory,
                        args: &factory_args,
                    },
                )
                .store(Value::Object(extra))
                .priority(args.priority),
            )
        }
    }
    .map_err(|e| board.failed(e))?;
    mark(&*backend, &posted)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let shown = Posted {
            job: posted.id.to_string(),
            name: &posted.name,
            priority: posted.priority,
            logbook: posted.logbook.map(|id| id.to_string()),
            flow_detail: posted.flow_detail.map(|id| id.to_string()),
            board: board.to_string(),
            records: records.to_string(),
        };
        let text = serde_json::to_string_pretty(&shown).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(out, "{}", posted.id)?;
    }
    Ok(exit::SUCCESS)
}

/// Names the job in its logbook's meta. Only the logbook's own row is
/// written (no flow detail goes with it), so a conductor that already
/// claimed the job loses nothing.
fn mark(records: &dyn Backend, job: &Job) -> Result<(), CliError> {
    let Some(id) = job.logbook else {
        return Ok(());
    };
    let mut book = records.get_logbook(id)?;
    book.flow_details.clear();
    book.meta
        .insert(JOB_META.to_owned(), Value::from(job.id.to_string()));
    records.save_logbook(&book)?;
    Ok(())
}
