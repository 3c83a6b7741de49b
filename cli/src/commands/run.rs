//! `taskflow run FILE|FACTORY` and `taskflow resume FLOW_DETAIL`: an engine
//! with checkpoints, progress shown, Ctrl-C suspending at the next atom
//! boundary, and every atom's end in a table.

use std::io::Write;
use std::sync::Arc;

use clap::ValueEnum;
use taskflow::{
    Engine, EngineBuilder, EngineError, FlowDetailId, FlowState, Parallel, SuspendHandle,
};

use super::{source, store_args, FlowArg, Source};
use crate::report::{rows, table, Progress, Summary};
use crate::timing::RecordTimes;
use crate::{exit, App, CliError, Records};

/// Which executor runs the atoms.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineKind {
    /// One atom at a time, on this thread.
    Serial,
    /// Atoms ready together run together, on `--workers` threads.
    Parallel,
}

/// How to run: shared by `run` and `resume`.
#[derive(Debug, clap::Args)]
struct RunOptions {
    /// The executor.
    #[arg(long, value_enum, default_value = "serial")]
    engine: EngineKind,
    /// Threads of the parallel engine (the number of CPUs when not given).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Print the final states as JSON on standard output (progress still
    /// goes to standard error).
    #[arg(long)]
    json: bool,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// A flow file, or the name of a flow factory of this program.
    flow: FlowArg,
    /// A store value (KEY=VALUE; the value as JSON when it is JSON, else
    /// text), over the file's own `store`. Repeatable.
    #[arg(long = "store", value_name = "KEY=VALUE")]
    store: Vec<String>,
    /// A factory's arguments, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    #[command(flatten)]
    options: RunOptions,
}

/// Arguments of `resume`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// The flow detail's id, as `run` printed it.
    flow_detail: String,
    #[command(flatten)]
    options: RunOptions,
}

pub(crate) fn exec(app: &App, args: RunArgs, records: Option<&str>) -> Result<u8, CliError> {
    let extra = store_args(&args.store)?;
    let records = Records::choose(records)?;
    let builder = match source(app, &args.flow)? {
        Source::File(file) => {
            file.check(&extra).map_err(CliError::Invalid)?;
            let mut store = file.store().clone();
            store.extend(extra);
            Engine::builder(file.into_flow()).store(store.into())
        }
        Source::Factory(name) => {
            let factory_args = super::factory_args(&args.args)?;
            Engine::from_factory(&app.registry, &name, factory_args)?.store(extra.into())
        }
    };
    let backend = records.open()?;
    let builder = builder
        .persistence(backend.clone())
        .listener(RecordTimes::new(backend));
    go(builder, &args.options, &records)
}

pub(crate) fn resume(app: &App, args: ResumeArgs, records: Option<&str>) -> Result<u8, CliError> {
    let id: FlowDetailId = args
        .flow_detail
        .parse()
        .map_err(|_| CliError::BadFlowDetailId(args.flow_detail.clone()))?;
    let records = Records::choose(records)?;
    let backend = records.open()?;
    let builder =
        Engine::load_with(backend.clone(), id, &app.registry)?.listener(RecordTimes::new(backend));
    go(builder, &args.options, &records)
}

/// Builds and runs the engine, then reports how it ended.
fn go(builder: EngineBuilder, options: &RunOptions, records: &Records) -> Result<u8, CliError> {
    let builder = match options.engine {
        EngineKind::Serial => builder,
        EngineKind::Parallel => {
            let workers = options
                .workers
                .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                .unwrap_or(2);
            builder.executor(Parallel::new(workers)?)
        }
    };
    let progress = Arc::new(Progress::new());
    let suspend = SuspendHandle::new();
    let mut engine = builder
        .listener(progress.clone())
        .suspend_handle(suspend.clone())
        .build()?;
    crate::signal::on_interrupt(move || {
        eprintln!("suspending after the atoms running now finish (Ctrl-C again to quit at once)");
        suspend.suspend();
    })?;
    let outcome = engine.run();
    let (state, failed) = match outcome {
        Ok(state) => (state, None),
        Err(EngineError::Failed {
            state, failures, ..
        }) => (state, Some(failures)),
        Err(other) => return Err(other.into()),
    };
    let storage = engine.storage();
    let flow_detail = storage.flow_detail_id().to_string();
    let code = exit::of_state(state);
    let resume = (state == FlowState::Suspended).then(|| {
        let flag = match records {
            r if r.to_string() == crate::records::DEFAULT_RECORDS => String::new(),
            r => format!(" --records {r}"),
        };
        format!("taskflow resume {flow_detail}{flag}")
    });
    let summary = Summary {
        flow: engine.compilation().name().to_owned(),
        flow_detail,
        state: state.to_string(),
        exit_code: code,
        records: records.to_string(),
        resume: resume.clone(),
        atoms: rows(storage.atom_details(), &progress),
    };
    let mut out = std::io::stdout().lock();
    if options.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?
        )?;
    } else {
        writeln!(out, "{}", table(&summary))?;
    }
    if let Some(failures) = failed {
        for f in failures {
            eprintln!("failed: {f}");
        }
    }
    if let Some(command) = resume {
        eprintln!("suspended; to go on: {command}");
    }
    Ok(code)
}
