//! `taskflow serve`: a node of the job service (Harbor's jobservice API on
//! the board and records), until SIGTERM or Ctrl-C stops it gracefully.
//!
//! For `serve`, `--config` names the service's YAML configuration
//! (`service.yaml`, Harbor's layout; see `taskflow_service::ServiceConfig`)
//! rather than `taskflow.toml`; `--records` and `--board` override its
//! URLs. The job types are those of the configuration's `job_types:` (flow
//! files), those given with `--job-type NAME=FILE`, and the flow
//! factories of the program (`App::flow`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use taskflow::patterns::{compile, Compilation};
use taskflow::{CompileError, Flow, FlowRegistry, TaskError};
use taskflow_service::{
    FlowFileType, InvalidParameter, JobLogs, JobType, JobTypes, Parameters, Service, ServiceConfig,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::Places;
use crate::{exit, App, Board, CliError, FlowFile, Records};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A job type written as a flow file, `NAME=FILE` (repeatable; over
    /// the configuration's `job_types:`).
    #[arg(long = "job-type", value_name = "NAME=FILE")]
    job_types: Vec<String>,
    /// The port to listen on (over the configuration and JOB_SERVICE_PORT;
    /// 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
}

pub(crate) fn exec(
    app: &App,
    args: Args,
    config_path: Option<&Path>,
    places: &Places,
) -> Result<u8, CliError> {
    let mut config = ServiceConfig::load(config_path)?;
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(records) = &places.records {
        config.records_url = records.clone();
    }
    if let Some(board) = &places.board {
        config.board_url = board.clone();
    }
    if let Some(lease) = places.lease {
        config.lease = lease;
    }
    for given in &args.job_types {
        let (name, file) = given.split_once('=').ok_or_else(|| CliError::StoreArg {
            arg: given.clone(),
            why: "--job-type takes NAME=FILE".into(),
        })?;
        config.job_types.retain(|t| t.name != name);
        config.job_types.push(FlowFileType {
            name: name.to_owned(),
            flow: PathBuf::from(file),
            max_fails: 0,
            should_retry: false,
        });
    }
    let logs = JobLogs::open(&config.job_log_dir).map_err(|source| {
        CliError::Service(taskflow_service::ServiceError::LogDir {
            path: config.job_log_dir.clone(),
            source,
        })
    })?;
    init_logging(&config, &logs);

    let records = Records::parse(&config.records_url)?;
    let backend = records.open()?;
    let board = Board::parse(&config.board_url)?;
    let jobs = board.open_in(Some(config.lease), &config.namespace)?;

    let mut types = JobTypes::new();
    for name in app.registry.names() {
        types.insert(
            name,
            FactoryJob {
                registry: app.registry.clone(),
                name: name.to_owned(),
            },
        );
    }
    for file_type in &config.job_types {
        let file = FlowFile::load(&file_type.flow, &app.kinds)?;
        // Compiled once here, not at every submission it validates.
        let compiled = compile(file.flow()).map_err(|e| e.to_string());
        types.insert(
            file_type.name.clone(),
            FileJob {
                file: Arc::new(file),
                compiled,
                max_fails: file_type.max_fails,
                should_retry: file_type.should_retry,
            },
        );
    }
    let service = Service::builder(config.clone(), jobs, backend)
        .job_types(types)
        .build()?;
    let stop = service.stop_handle();
    let node = service.node_id().to_owned();
    crate::signal::on_interrupt(move || {
        tracing::info!(
            "stopping: jobs suspend after the atoms running now and go back to the board \
             (Ctrl-C again to quit at once)"
        );
        stop.stop();
    })?;
    let (board_shown, records_shown) = (board.to_string(), records.to_string());
    let scheme = match config.protocol {
        taskflow_service::Protocol::Http => "http",
        taskflow_service::Protocol::Https { .. } => "https",
    };
    service.run_with(|address| {
        // The one line on standard output: scripts and tests read the port.
        println!("taskflow serve: node {node} listening on {scheme}://{address}");
        tracing::info!(%node, board = %board_shown, records = %records_shown, "job service running");
    })?;
    tracing::info!("job service stopped");
    Ok(exit::SUCCESS)
}

/// The service's log on standard error (`RUST_LOG`, else the configured
/// level), and every job's events into its log file.
fn init_logging(config: &ServiceConfig, logs: &JobLogs) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log_level.to_ascii_lowercase()));
    let job_level = config
        .job_log_level
        .parse()
        .unwrap_or(tracing::Level::DEBUG);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter),
        )
        .with(logs.layer(job_level))
        .try_init();
}

/// A job type built by one of the program's flow factories, its parameters
/// the factory's arguments.
struct FactoryJob {
    registry: FlowRegistry,
    name: String,
}

impl JobType for FactoryJob {
    fn flow(&self, params: &Parameters) -> Result<Flow, TaskError> {
        self.registry
            .build(&self.name, &Value::Object(params.clone()))
            .map_err(|e| TaskError::msg(e.to_string()))
    }
}

/// A job type written as a flow file: the parameters are the flow's store,
/// over the file's `store:`; a symbol the flow requires that neither gives
/// is a missing parameter.
struct FileJob {
    file: Arc<FlowFile>,
    /// The flow compiled, or why it does not compile.
    compiled: Result<Compilation, String>,
    max_fails: u32,
    should_retry: bool,
}

impl JobType for FileJob {
    fn validate(&self, params: &Parameters) -> Result<(), InvalidParameter> {
        let compilation = self
            .compiled
            .as_ref()
            .map_err(|e| InvalidParameter::new("*", format!("the flow does not compile: {e}")))?;
        let mut store = self.file.store().clone();
        store.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
        match compilation.resolve(&store) {
            Ok(_) => Ok(()),
            Err(errors) => Err(errors
                .0
                .iter()
                .find_map(|e| match e {
                    CompileError::MissingRequirement { atom, symbol, .. } => {
                        Some(InvalidParameter::new(
                            symbol.clone(),
                            format!("is required (by atom `{atom}`)"),
                        ))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| InvalidParameter::new("*", errors.to_string()))),
        }
    }

    fn store(&self, params: &Parameters) -> Parameters {
        let mut store = self.file.store().clone();
        store.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
        store
    }

    fn max_fails(&self) -> u32 {
        self.max_fails
    }

    fn should_retry(&self) -> bool {
        self.should_retry
    }

    fn flow(&self, _params: &Parameters) -> Result<Flow, TaskError> {
        // The parameters reach the flow through its store (`store`).
        Ok(self.file.flow().clone())
    }
}
