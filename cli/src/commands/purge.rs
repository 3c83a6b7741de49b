//! `taskflow purge`: the complete jobs the board's retention no longer
//! keeps are removed, with the logbooks of those that ran.

use std::io::Write;

use taskflow::Outcome;

use super::Places;
use crate::{exit, CliError};

/// Arguments of `purge`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the removed jobs' ids as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn exec(args: Args, places: &Places) -> Result<u8, CliError> {
    let (_, backend) = places.records()?;
    let (board, jobs) = places.board()?;
    let purged = jobs.purge().map_err(|e| board.failed(e))?;
    for job in &purged {
        if let (Some(Outcome::Consumed), Some(book)) = (&job.outcome, job.logbook) {
            match backend.destroy_logbook(book) {
                Err(e) if !e.is_not_found() => return Err(e.into()),
                _ => {}
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let ids: Vec<String> = purged.iter().map(|j| j.id.to_string()).collect();
        let text = serde_json::to_string_pretty(&ids).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(out, "purged {} job(s) from {board}", purged.len())?;
    }
    Ok(exit::SUCCESS)
}
