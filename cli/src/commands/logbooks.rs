//! `taskflow logbooks`: every logbook of the records with its flow
//! details, whether run here, posted as a job, or written by a program.

use comfy_table::{presets, Table};
use serde::Serialize;
use taskflow::{FlowDetail, LogBook};

use super::jobs::now_millis;
use super::post::JOB_META;
use super::Places;
use crate::report::atoms_done;
use crate::{exit, CliError};

/// Arguments of `logbooks`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print them as JSON.
    #[arg(long)]
    json: bool,
}

/// One logbook, or why it cannot be read.
#[derive(Debug, Serialize)]
struct BookRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// When it was made (ms since the Unix epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<u64>,
    /// The job `taskflow post` made for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<String>,
    flow_details: Vec<FlowRow>,
    /// Why the logbook cannot be read (the others are still listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FlowRow {
    id: String,
    name: String,
    state: String,
    atoms_done: usize,
    atoms_total: usize,
}

pub(crate) fn exec(args: Args, places: &Places) -> Result<u8, CliError> {
    let (records, backend) = places.records()?;
    let rows: Vec<BookRow> = backend
        .list_logbooks()?
        .into_iter()
        .map(|book| match book {
            Ok(book) => row(&book),
            Err(e) => BookRow {
                id: None,
                name: None,
                created_at: None,
                job: None,
                flow_details: Vec::new(),
                error: Some(e.to_string()),
            },
        })
        .collect();
    crate::report::print_listing(
        &rows,
        args.json,
        &format_args!("no logbooks in {records}"),
        table,
    )?;
    Ok(exit::SUCCESS)
}

fn row(book: &LogBook) -> BookRow {
    BookRow {
        id: Some(book.uuid.to_string()),
        name: Some(book.name.clone()),
        created_at: Some(book.created_at),
        job: book
            .meta
            .get(JOB_META)
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        flow_details: book.flow_details.iter().map(flow).collect(),
        error: None,
    }
}

fn flow(f: &FlowDetail) -> FlowRow {
    let (done, total) = atoms_done(&f.atom_details);
    FlowRow {
        id: f.uuid.to_string(),
        name: f.name.clone(),
        state: f.state.to_string(),
        atoms_done: done,
        atoms_total: total,
    }
}

fn table(rows: &[BookRow]) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "logbook",
        "name",
        "made",
        "job",
        "flow detail",
        "flow",
        "atoms",
    ]);
    let now = now_millis();
    for b in rows {
        let dash = || "-".to_owned();
        if let Some(error) = &b.error {
            table.add_row([
                "?".to_owned(),
                error.clone(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]);
            continue;
        }
        let made = b
            .created_at
            .map_or_else(dash, |at| ago(now.saturating_sub(at)));
        let head = [
            b.id.clone().unwrap_or_else(dash),
            b.name.clone().unwrap_or_else(dash),
            made,
            b.job.clone().unwrap_or_else(dash),
        ];
        if b.flow_details.is_empty() {
            let [id, name, made, job] = head.clone();
            table.add_row([id, name, made, job, dash(), dash(), dash()]);
        }
        for (i, f) in b.flow_details.iter().enumerate() {
            let [id, name, made, job] = if i == 0 {
                head.clone()
            } else {
                Default::default()
            };
            let atoms = if f.atoms_total == 0 {
                dash()
            } else {
                format!("{}/{}", f.atoms_done, f.atoms_total)
            };
            table.add_row([
                id,
                name,
                made,
                job,
                f.id.clone(),
                format!("{} {}", f.name, f.state),
                atoms,
            ]);
        }
    }
    table.to_string()
}

/// `12s ago`, `3m ago`, `2h ago`, `4d ago`.
fn ago(millis: u64) -> String {
    let s = millis / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}
