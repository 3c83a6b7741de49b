//! `taskflow trash JOB --reason TEXT`: a job marked complete without
//! running, with the reason recorded; refused while a conductor holds it.

use taskflow::JobId;

use super::Places;
use crate::{exit, CliError};

/// The owner name of the claim `trash` takes to trash a job.
const OWNER: &str = "taskflow-trash";

/// Arguments of `trash`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The job's id.
    job: String,
    /// Why it must not run (recorded as its outcome).
    #[arg(long)]
    reason: String,
}

pub(crate) fn exec(args: Args, places: &Places) -> Result<u8, CliError> {
    let id: JobId = args
        .job
        .parse()
        .map_err(|_| CliError::BadJobId(args.job.clone()))?;
    let (board, jobs) = places.board()?;
    // A board trashes only what its caller claimed: claiming also refuses
    // a job a conductor runs now (and one already complete).
    let claim = jobs.claim(id, OWNER).map_err(|e| board.failed(e))?;
    jobs.trash(&claim, &args.reason)
        .map_err(|e| board.failed(e))?;
    eprintln!("trashed job {id}: {}", args.reason);
    Ok(exit::SUCCESS)
}
