//! `taskflow conductor`: a [`Conductor`] on the board and records, running
//! jobs until SIGTERM or Ctrl-C stops it gracefully (flows suspend after
//! the atoms in flight; their jobs are abandoned, for other conductors).
//! Logs through `tracing` on standard error (`RUST_LOG`, default `info`).

use std::io::IsTerminal;
use std::time::Duration;

use taskflow::{Conductor, LoggingListener, Parallel};
use tracing_subscriber::EnvFilter;

use super::Places;
use crate::timing::RecordTimes;
use crate::{exit, App, CliError};

/// Arguments of `conductor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The conductor's name, the owner of its claims [default: HOST-PID]
    #[arg(long)]
    name: Option<String>,
    /// How many jobs it runs at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// Run each job's atoms on a parallel engine of N threads (serial when
    /// not given).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Run the claimable jobs one at a time, then exit (0) when none is
    /// left, rather than wait for more: for scripts and batch hosts.
    #[arg(long)]
    drain: bool,
}

pub(crate) fn exec(app: &App, args: Args, places: &Places) -> Result<u8, CliError> {
    init_logging();
    let (records, backend) = places.records()?;
    let (board, jobs) = places.board()?;
    if let Some(workers) = args.workers {
        // A pool that cannot be made is an error now, not one per job.
        Parallel::new(workers)?;
    }
    let name = args.name.unwrap_or_else(Conductor::default_name);
    let workers = args.workers;
    let timed = backend.clone();
    let mut builder = Conductor::builder(name.clone(), jobs, backend)
        .registry(app.registry.clone())
        .max_concurrent_jobs(args.jobs)
        .configure_engine(move |engine| {
            let engine = engine
                .listener(LoggingListener)
                .listener(RecordTimes::new(timed.clone()));
            match workers.map(Parallel::new) {
                Some(Ok(pool)) => engine.executor(pool),
                _ => engine,
            }
        });
    if let Some(lease) = places.lease {
        // Renewed four times a lease, so one slow renewal loses nothing.
        builder = builder.renew_every((lease / 4).max(Duration::from_millis(10)));
    }
    let conductor = builder.build();
    let stop = conductor.stop_handle();
    let stopping = name.clone();
    crate::signal::on_interrupt(move || {
        tracing::info!(
            conductor = %stopping,
            "stopping: flows suspend after the atoms running now, their jobs are abandoned \
             (Ctrl-C again to quit at once)"
        );
        stop.stop();
    })?;
    tracing::info!(
        conductor = %name,
        board = %board,
        records = %records,
        jobs = args.jobs,
        "conductor running"
    );
    if args.drain {
        let stop = conductor.stop_handle();
        while !stop.is_stopped() {
            match conductor.run_once() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(board.failed(e)),
            }
        }
    } else {
        conductor.run();
    }
    tracing::info!(conductor = %name, "conductor stopped");
    Ok(exit::SUCCESS)
}

/// `tracing` to standard error, filtered by `RUST_LOG` (default `info`);
/// a program that set its own subscriber keeps it.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
