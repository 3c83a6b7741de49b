//! The `taskflow` command, as a library: a program builds its own command
//! with its own flow factories and task types, as jobrunner's
//! `register_job`, and the stock `taskflow` binary is [`App::new`] with
//! nothing added.
//!
//! ```no_run
//! use taskflow::prelude::*;
//! use taskflow_cli::App;
//!
//! fn main() -> std::process::ExitCode {
//!     App::new()
//!         .flow("backup", |args| {
//!             let target: String = serde_json::from_value(args["target"].clone())
//!                 .map_err(|e| TaskError::new("BadArgs", e.to_string()))?;
//!             Ok(Linear::new("backup")
//!                 .add(taskflow::atom("copy", task_fn(move |_| Ok(json!(target.clone())))))
//!                 .into())
//!         })
//!         .run()
//! }
//! ```
//!
//! Flows are also written as YAML files (see the crate's README and
//! `flow.schema.json`) of the built-in task types ([`Shell`], [`Sleep`])
//! and those added with [`App::task_type`]: `taskflow validate`, `graph`
//! and `run` read them, and a flow file is stored whole in its records, so
//! `taskflow resume` (or any process with the same task types) rebuilds it.
//! `taskflow post` puts a flow on a jobboard (`--board`: SQLite, Redis,
//! PostgreSQL or ZooKeeper)
//! as a job, `taskflow conductor` runs jobs (with this program's factories)
//! until SIGTERM, and `jobs`, `show`, `logbooks`, `trash` and `purge` look
//! after them.
//!
//! Exit codes say how a command ended: see [`exit`].

mod board;
mod commands;
mod config;
mod decider;
mod error;
pub mod exit;
mod file;
mod records;
mod report;
mod signal;
mod tasks;
mod timing;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use taskflow::{Flow, FlowRegistry, TaskError, Value};

pub use board::{Board, DEFAULT_BOARD, REDIS_KEY_PREFIX};
pub use config::{Config, CONFIG_FILE};
pub use decider::{Test, When};
pub use error::CliError;
pub use file::{document_json, FileErrors, FlowFile, Located, Pos};
pub use records::{Records, DEFAULT_RECORDS};
pub use tasks::{FileTask, Seconds, Shell, Sleep, TaskKinds};
#[cfg(feature = "http")]
pub use tasks::{Http, Request};

/// A `taskflow` command: the stock verbs over the flow factories and task
/// types a program adds.
pub struct App {
    registry: FlowRegistry,
    kinds: TaskKinds,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("flows", &self.registry.names().collect::<Vec<_>>())
            .field("task_types", &self.kinds)
            .finish()
    }
}

impl App {
    /// The stock command: no factories, the built-in task types.
    pub fn new() -> Self {
        App {
            registry: FlowRegistry::new(),
            kinds: TaskKinds::builtin(),
        }
    }

    /// Adds the flow factory `name`: `taskflow run NAME --args JSON`
    /// builds the flow with it, and `resume` rebuilds it by name;
    /// `taskflow post NAME` posts a job built by it, which this program's
    /// `taskflow conductor` runs (conductors that lack it leave it alone).
    pub fn flow<F>(mut self, name: impl Into<String>, factory: F) -> Self
    where
        F: Fn(&Value) -> Result<Flow, TaskError> + Send + Sync + 'static,
    {
        self.registry.register(name, factory);
        self
    }

    /// Adds the task type `T`: flow files may name it by its
    /// [`FileTask::KIND`].
    pub fn task_type<T: FileTask>(mut self) -> Self {
        self.kinds.add::<T>();
        self
    }

    /// Runs the command the process's arguments say; the exit code says
    /// how it ended.
    pub fn run(self) -> ExitCode {
        ExitCode::from(self.execute(std::env::args_os()))
    }

    /// Runs the command `args` say (the first is the program's name), as
    /// [`run`](Self::run) does; the exit code (see [`exit`]).
    pub fn execute<I, T>(self, args: I) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = match commands::Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    exit::INVALID
                } else {
                    exit::SUCCESS
                };
            }
        };
        match commands::exec(&self, cli) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                exit::code_of(&e)
            }
        }
    }
}
