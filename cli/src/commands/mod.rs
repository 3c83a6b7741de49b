//! The verbs: one module each, a clap `Args` and an `exec`.

mod conductor;
mod graph;
mod jobs;
mod logbooks;
mod post;
mod purge;
mod run;
mod serve;
mod show;
mod trash;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use taskflow::{Backend, JobBoard};

use crate::{App, Board, CliError, FlowFile, Records, Seconds};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "taskflow",
    version,
    about = "Run, check and draw TaskFlow flows (YAML flow files or the flow factories of this program), post them as jobs and run them on conductors.",
    after_help = "Exit codes: 0 success, 1 error, 2 invalid input, 3 flow reverted, 4 flow failed, 5 flow suspended."
)]
pub(crate) struct Cli {
    /// Where the records are: `sqlite:PATH`, `dir:PATH` or
    /// `postgres://USER@HOST/DB[#SCHEMA]` [env: TASKFLOW_RECORDS; then
    /// `records` in taskflow.toml; default: sqlite:.taskflow/records.db]
    #[arg(long, global = true, value_name = "URL")]
    records: Option<String>,
    /// Where the jobboard is: `sqlite:PATH`, `redis://HOST[:PORT][/DB]`,
    /// `postgres://USER@HOST/DB[#SCHEMA]`, `etcd://HOST:PORT[/PREFIX]` (feature `etcd`) or
    /// `zookeeper://HOST:PORT[,HOST:PORT...][/ROOT]` [env: TASKFLOW_BOARD; then `board` in taskflow.toml; default:
    /// sqlite:.taskflow/board.db]
    #[arg(long, global = true, value_name = "URL")]
    board: Option<String>,
    /// How long a conductor's claim on a job lasts unless renewed (`2s`,
    /// `500ms`): a dead conductor's job is taken over after it [default: 1s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = duration)]
    lease: Option<Duration>,
    /// The configuration file (`records`, `board`, `lease`) [default:
    /// taskflow.toml in the working directory, if there is one]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a flow file: every mistake with its line and column (exit 2), or a summary.
    Validate(validate::Args),
    /// Draw a flow: DOT, Mermaid or an indented text tree.
    Graph(graph::Args),
    /// Run a flow here, with a checkpoint after every transition.
    Run(run::RunArgs),
    /// Go on with a flow that was suspended, failed or interrupted.
    Resume(run::ResumeArgs),
    /// Post a flow as a job on the board; prints the job's id.
    Post(post::Args),
    /// Run jobs from the board until SIGTERM or Ctrl-C.
    Conductor(conductor::Args),
    /// List the jobs on the board, with their flows' progress.
    Jobs(jobs::Args),
    /// Show a job's (or a flow detail's) flow, atom by atom.
    Show(show::Args),
    /// Mark a job complete without running it, recording why.
    Trash(trash::Args),
    /// Remove the complete jobs the board no longer keeps, and their records.
    Purge(purge::Args),
    /// List the logbooks of the records, with their flow details.
    Logbooks(logbooks::Args),
    /// Run a node of the job service (Harbor's jobservice REST API);
    /// `--config` names its service.yaml.
    Serve(serve::Args),
}

/// Where the records and the board are, and the board's lease: the
/// options every verb takes.
pub(crate) struct Places {
    records: Option<String>,
    board: Option<String>,
    lease: Option<Duration>,
}

impl Places {
    /// The records, chosen and opened.
    pub(crate) fn records(&self) -> Result<(Records, Arc<dyn Backend>), CliError> {
        let records = Records::choose(self.records.as_deref())?;
        let backend = records.open()?;
        Ok((records, backend))
    }

    /// The board, chosen and opened.
    pub(crate) fn board(&self) -> Result<(Board, Arc<dyn JobBoard>), CliError> {
        let board = Board::choose(self.board.as_deref())?;
        let opened = board.open(self.lease)?;
        Ok((board, opened))
    }
}

/// `--lease`: a duration as flow files write them.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    match Seconds::parse(text) {
        Some(s) if s.0 > 0.0 => Ok(s.duration()),
        _ => Err("expected a positive duration such as `2s`, `500ms` or `1m`".to_owned()),
    }
}

/// Runs the parsed command; its exit code.
pub(crate) fn exec(app: &App, cli: Cli) -> Result<u8, CliError> {
    // Flags, then the environment (read by `Records::choose` and
    // `Board::choose`), then the file, then the defaults.
    if let Command::Serve(args) = cli.command {
        // `--config` is the service's YAML here, not taskflow.toml.
        let places = Places {
            records: cli.records,
            board: cli.board,
            lease: cli.lease,
        };
        return serve::exec(app, args, cli.config.as_deref(), &places);
    }
    let config = crate::Config::load(cli.config.as_deref())?;
    let from_file = |flag: Option<String>, var: &str, file: Option<String>| {
        flag.or_else(|| match std::env::var(var) {
            Ok(url) if !url.is_empty() => None,
            _ => file,
        })
    };
    let config_path = cli
        .config
        .as_deref()
        .map_or(crate::CONFIG_FILE.to_owned(), |p| p.display().to_string());
    let lease = match cli.lease {
        Some(lease) => Some(lease),
        None => config.lease(&config_path)?,
    };
    let places = Places {
        records: from_file(cli.records, "TASKFLOW_RECORDS", config.records),
        board: from_file(cli.board, "TASKFLOW_BOARD", config.board),
        lease,
    };
    let records = places.records.as_deref();
    match cli.command {
        Command::Validate(args) => validate::exec(app, args),
        Command::Graph(args) => graph::exec(app, args),
        Command::Run(args) => run::exec(app, args, records),
        Command::Resume(args) => run::resume(app, args, records),
        Command::Post(args) => post::exec(app, args, &places),
        Command::Conductor(args) => conductor::exec(app, args, &places),
        Command::Jobs(args) => jobs::exec(args, &places),
        Command::Show(args) => show::exec(args, &places),
        Command::Trash(args) => trash::exec(args, &places),
        Command::Purge(args) => purge::exec(args, &places),
        Command::Logbooks(args) => logbooks::exec(args, &places),
        Command::Serve(_) => unreachable!("served above"),
    }
}

/// `--args`: a factory's arguments, as JSON.
pub(crate) fn factory_args(text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::StoreArg {
        arg: text.to_owned(),
        why: format!("--args is not JSON: {e}"),
    })
}

/// `--store key=value` pairs: the value as JSON when it is JSON, else text.
pub(crate) fn store_args(pairs: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut store = Map::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or_else(|| CliError::StoreArg {
            arg: pair.clone(),
            why: "expected KEY=VALUE".to_owned(),
        })?;
        if key.is_empty() {
            return Err(CliError::StoreArg {
                arg: pair.clone(),
                why: "the key is empty".to_owned(),
            });
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        store.insert(key.to_owned(), value);
    }
    Ok(store)
}

/// What `run` and `graph` were given: a flow file or a factory's name.
pub(crate) enum Source {
    File(Box<FlowFile>),
    Factory(String),
}

/// A path that exists, or looks like a flow file, is a file; else a
/// registered factory's name.
pub(crate) fn source(app: &App, given: &Path) -> Result<Source, CliError> {
    let looks_like_file =
        given.exists() || given.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if looks_like_file {
        return Ok(Source::File(Box::new(FlowFile::load(given, &app.kinds)?)));
    }
    let name = given.to_string_lossy().into_owned();
    if app.registry.contains(&name) {
        return Ok(Source::Factory(name));
    }
    Err(CliError::UnknownFlow {
        name,
        known: app.registry.names().map(str::to_owned).collect(),
    })
}

/// The path argument of a verb.
pub(crate) type FlowArg = PathBuf;
