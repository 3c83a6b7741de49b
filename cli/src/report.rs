//! What a run shows: progress while it runs (a bar per running atom on a
//! terminal, plain lines otherwise), then every atom's final state and time,
//! as a table or as JSON built from the same rows.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use comfy_table::{presets, Table};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use taskflow::{AtomDetail, AtomEvent, AtomKind, AtomState, FlowEvent, FlowState, Listener, Value};

use crate::CliError;

/// The time each atom spent running and reverting.
#[derive(Default)]
struct Clock {
    started: Option<Instant>,
    total: Duration,
}

enum Show {
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    Lines,
}

/// Shows a run as it goes, on standard error, and times its atoms.
pub(crate) struct Progress {
    start: Instant,
    show: Show,
    clocks: Mutex<HashMap<String, Clock>>,
}

impl Progress {
    /// Bars when standard error is a terminal, lines otherwise.
    pub(crate) fn new() -> Self {
        let show = if std::io::stderr().is_terminal() {
            Show::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Show::Lines
        };
        Progress {
            start: Instant::now(),
            show,
            clocks: Mutex::new(HashMap::new()),
        }
    }

    /// The time atom `name` ran (and reverted), if this run ran it.
    pub(crate) fn time_of(&self, name: &str) -> Option<Duration> {
        let clocks = self.clocks.lock().ok()?;
        let c = clocks.get(name)?;
        Some(c.total + c.started.map_or(Duration::ZERO, |s| s.elapsed()))
    }

    fn line(&self, text: String) {
        match &self.show {
            Show::Bars { multi, .. } => {
                let _ = multi.println(text);
            }
            Show::Lines => eprintln!("{text}"),
        }
    }

    fn clock(&self, atom: &str, running: bool) {
        if let Ok(mut clocks) = self.clocks.lock() {
            let c = clocks.entry(atom.to_owned()).or_default();
            match (running, c.started.take()) {
                (true, None) => c.started = Some(Instant::now()),
                (true, Some(s)) => c.started = Some(s),
                (false, Some(s)) => c.total += s.elapsed(),
                (false, None) => {}
            }
        }
    }
}

impl Listener for Progress {
    fn on_flow(&self, event: &FlowEvent) {
        if matches!(event.to, FlowState::Running) && event.from != FlowState::Running {
            self.line(format!(
                "{:>8} flow `{}` running (flow detail {})",
                stamp(self.start.elapsed()),
                event.flow,
                event.flow_detail
            ));
        }
    }

    fn on_atom(&self, event: &AtomEvent) {
        let running = matches!(event.to, AtomState::Running | AtomState::Reverting);
        self.clock(&event.atom, running);
        if let Show::Bars { multi, bars } = &self.show {
            if let Ok(mut bars) = bars.lock() {
                if running {
                    let bar = multi.add(ProgressBar::new(1000));
                    let style =
                        ProgressStyle::with_template("{spinner} {msg:30} [{bar:30}] {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> ");
                    bar.set_style(style);
                    bar.set_message(format!("{} {}", event.atom, event.to));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bars.insert(event.atom.to_string(), bar);
                } else if let Some(bar) = bars.remove(&*event.atom) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
        }
        if running && matches!(self.show, Show::Bars { .. }) {
            // The bar says it.
            return;
        }
        let detail = match &event.failure {
            Some(f) => format!(": {}: {}", f.kind, f.message),
            None => String::new(),
        };
        self.line(format!(
            "{:>8} {} {}{}",
            stamp(self.start.elapsed()),
            event.atom,
            event.to,
            detail
        ));
    }

    fn on_progress(&self, atom: &str, progress: f32) {
        if let Show::Bars { bars, .. } = &self.show {
            if let Some(bar) = bars.lock().ok().and_then(|b| b.get(atom).cloned()) {
                bar.set_position((progress.clamp(0.0, 1.0) * 1000.0) as u64);
            }
        }
    }
}

fn stamp(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// One atom at the end of a run.
#[derive(Debug, Serialize)]
pub(crate) struct AtomRow {
    name: String,
    kind: &'static str,
    state: String,
    /// Seconds it ran (and reverted) in this run; null if it did not run.
    seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revert_failure: Option<String>,
    /// For a retry controller, how many attempts it made.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<usize>,
}

/// A run's end: what `run --json` prints, and what its table shows.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) flow: String,
    pub(crate) flow_detail: String,
    pub(crate) state: String,
    pub(crate) exit_code: u8,
    pub(crate) records: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resume: Option<String>,
    pub(crate) atoms: Vec<AtomRow>,
}

/// The rows of `details`, timed by `progress`.
pub(crate) fn rows(details: &[AtomDetail], progress: &Progress) -> Vec<AtomRow> {
    details
        .iter()
        .map(|d| AtomRow {
            name: d.name.to_string(),
            kind: kind(d.kind),
            state: d.state.to_string(),
            seconds: progress
                .time_of(&d.name)
                .map(|t| (t.as_secs_f64() * 1000.0).round() / 1000.0),
            result: d.result.as_deref().cloned(),
            failure: d.failure().map(|f| format!("{}: {}", f.kind, f.message)),
            revert_failure: d
                .revert_failure()
                .map(|f| format!("{}: {}", f.kind, f.message)),
            attempts: (d.kind == AtomKind::Retry).then(|| d.history().len()),
        })
        .collect()
}

/// How tables name an atom's kind.
pub(crate) fn kind(kind: AtomKind) -> &'static str {
    match kind {
        AtomKind::Task => "task",
        AtomKind::Retry => "retry",
    }
}

/// Of a flow's atoms: how many ended `SUCCESS` or `IGNORE`, and how many
/// the records know of.
pub(crate) fn atoms_done(details: &[AtomDetail]) -> (usize, usize) {
    let done = details
        .iter()
        .filter(|a| matches!(a.state, AtomState::Success | AtomState::Ignore))
        .count();
    (done, details.len())
}

/// Prints a listing: `rows` as JSON with `json`, else `empty` when there
/// are none, else the table `table` makes of them.
pub(crate) fn print_listing<R: Serialize>(
    rows: &[R],
    json: bool,
    empty: &dyn std::fmt::Display,
    table: impl FnOnce(&[R]) -> String,
) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(rows).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else if rows.is_empty() {
        writeln!(out, "{empty}")?;
    } else {
        writeln!(out, "{}", table(rows))?;
    }
    Ok(())
}

/// The table of a summary.
pub(crate) fn table(summary: &Summary) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(["atom", "kind", "state", "time", "result / failure"]);
    for row in &summary.atoms {
        let time = row
            .seconds
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.3}s"));
        let what = match (&row.failure, &row.revert_failure, &row.result) {
            (Some(f), Some(rf), _) => format!("{f}; revert: {rf}"),
            (Some(f), None, _) => f.clone(),
            (None, Some(rf), _) => format!("revert: {rf}"),
            (None, None, Some(Value::Null)) | (None, None, None) => String::new(),
            (None, None, Some(r)) => r.to_string(),
        };
        let what = match row.attempts {
            Some(n) if n > 0 => format!("{n} attempt{}", if n == 1 { "" } else { "s" }),
            _ => shorten(&what, 70),
        };
        table.add_row([
            row.name.clone(),
            row.kind.to_owned(),
            row.state.clone(),
            time,
            what,
        ]);
    }
    format!(
        "{table}\nflow `{}` {} (flow detail {}, records {})",
        summary.flow, summary.state, summary.flow_detail, summary.records
    )
}

/// `text` on one line, cut to `max` characters (with `...`).
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let text = text.replace('\n', " ");
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max - 3).collect();
    format!("{cut}...")
}
