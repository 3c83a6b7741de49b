//! The verbs: one module each, a clap `Args` and an `exec`.

mod graph;
mod run;
mod validate;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use crate::{App, CliError, FlowFile};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "taskflow",
    version,
    about = "Run, check and draw TaskFlow flows: YAML flow files or the flow factories of this program.",
    after_help = "Exit codes: 0 success, 1 error, 2 invalid input, 3 flow reverted, 4 flow failed, 5 flow suspended."
)]
pub(crate) struct Cli {
    /// Where the records are: `sqlite:PATH` or `dir:PATH` [env: TASKFLOW_RECORDS;
    /// default: sqlite:.taskflow/records.db]
    #[arg(long, global = true, value_name = "URL")]
    records: Option<String>,
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
}

/// Runs the parsed command; its exit code.
pub(crate) fn exec(app: &App, cli: Cli) -> Result<u8, CliError> {
    let records = cli.records.as_deref();
    match cli.command {
        Command::Validate(args) => validate::exec(app, args),
        Command::Graph(args) => graph::exec(app, args),
        Command::Run(args) => run::exec(app, args, records),
        Command::Resume(args) => run::resume(app, args, records),
    }
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
