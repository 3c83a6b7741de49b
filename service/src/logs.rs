//! Each job's log: a file per job (`<base_dir>/<job id>.log`) holding its
//! transitions and what its tasks log through `tracing`, readable while
//! the job runs and after, and swept when it is older than the retention.
//!
//! A task's log lines reach the file through [`JobLogLayer`]: the
//! conductor runs every job inside a `job` span carrying its id, the
//! engine runs every task inside the span its run was started in, and the
//! layer writes each event of such a span to that job's file. Nodes on one
//! host share the folder; nodes on several hosts need it on a shared
//! volume (Harbor's FILE logger has the same rule).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use taskflow::JobId;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The name of the span a conductor runs a job in (see
/// `taskflow::Conductor`).
pub const JOB_SPAN: &str = "job";

/// The field of [`JOB_SPAN`] holding the job's id.
pub const JOB_FIELD: &str = "job_id";

/// The jobs' log files.
#[derive(Debug, Clone)]
pub struct JobLogs {
    dir: Arc<PathBuf>,
    /// The files of the jobs logging now, kept open (a job logs a line per
    /// transition; opening its file for each one cost most of the service's
    /// own time).
    open: Arc<Mutex<HashMap<JobId, File>>>,
}

/// How many job log files stay open at once; past it all are closed.
const OPEN_FILES: usize = 128;

impl JobLogs {
    /// The logs under `dir` (made if missing).
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<JobLogs> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(JobLogs {
            dir: Arc::new(dir),
            open: Arc::default(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, job: JobId) -> PathBuf {
        self.dir.join(format!("{job}.log"))
    }

    /// Appends a line (a transition) to `job`'s log. A log that cannot be
    /// written is reported on the service's own log, never a failed job.
    pub fn append(&self, job: JobId, line: &str) {
        self.write(job, &format!("{} INFO  {line}\n", timestamp()));
    }

    fn write(&self, job: JobId, text: &str) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !open.contains_key(&job) {
            if open.len() >= OPEN_FILES {
                open.clear();
            }
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(job))
            {
                Ok(file) => {
                    open.insert(job, file);
                }
                Err(e) => {
                    eprintln!("taskflow-service: cannot open the log of job {job}: {e}");
                    return;
                }
            }
        }
        let written = match open.get_mut(&job) {
            Some(file) => file.write_all(text.as_bytes()),
            None => Ok(()),
        };
        if let Err(e) = written {
            open.remove(&job);
            // Not through `tracing` inside a job's span: that would loop.
            eprintln!("taskflow-service: cannot write the log of job {job}: {e}");
        }
    }

    /// Closes `job`'s log file, if open (its run on this node ended).
    pub fn close(&self, job: JobId) {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&job);
    }

    /// `job`'s log so far (empty if it has logged nothing yet).
    pub fn read(&self, job: JobId) -> std::io::Result<String> {
        match fs::read_to_string(self.path(job)) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// Removes the logs last written more than `retention` ago; returns
    /// how many.
    pub fn sweep(&self, retention: Duration) -> std::io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&*self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "log") {
                continue;
            }
            let modified = entry.metadata()?.modified()?;
            if now.duration_since(modified).unwrap_or_default() > retention {
                if let Some(job) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<JobId>().ok())
                {
                    self.open
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&job);
                }
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    /// The `tracing` layer that writes the events of job spans to these
    /// logs, at `level` and above.
    pub fn layer(&self, level: Level) -> JobLogLayer {
        JobLogLayer {
            logs: self.clone(),
            level,
        }
    }
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Writes every event inside a [`JOB_SPAN`] span to that job's log.
#[derive(Debug, Clone)]
pub struct JobLogLayer {
    logs: JobLogs,
    level: Level,
}

/// The job a span belongs to, kept in the span's extensions.
struct JobOfSpan(JobId);

#[derive(Default)]
struct JobIdVisitor(Option<JobId>);

impl Visit for JobIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == JOB_FIELD {
            self.0 = value.parse().ok();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == JOB_FIELD {
            self.0 = format!("{value:?}").trim_matches('"').parse().ok();
        }
    }
}

/// An event as one log line: its message, then its other fields.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S> Layer<S> for JobLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != JOB_SPAN {
            return;
        }
        let mut visitor = JobIdVisitor::default();
        attrs.record(&mut visitor);
        if let (Some(job), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(JobOfSpan(job));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.level {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(job) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<JobOfSpan>().map(|j| j.0))
        else {
            return;
        };
        let mut line = LineVisitor::default();
        event.record(&mut line);
        self.logs.write(
            job,
            &format!(
                "{} {:<5} {}{}\n",
                timestamp(),
                level,
                line.message,
                line.fields
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_of_a_job_span_reach_its_log_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::open(dir.path()).unwrap();
        let job = JobId::new();
        let subscriber = tracing_subscriber::registry().with(logs.layer(Level::DEBUG));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any job");
            let span = tracing::info_span!(JOB_SPAN, job_id = %job);
            let _entered = span.enter();
            tracing::info!(blobs = 12, "copied");
            tracing::trace!("too fine for the level");
            tracing::info_span!("inner").in_scope(|| tracing::warn!("nested"));
        });
        let text = logs.read(job).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("INFO  copied blobs=12"), "{text}");
        assert!(lines[1].ends_with("WARN  nested"), "{text}");
        assert_eq!(logs.read(JobId::new()).unwrap(), "");
    }

    #[test]
    fn the_sweeper_removes_only_old_logs() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::open(dir.path()).unwrap();
        let job = JobId::new();
        logs.append(job, "hello");
        assert_eq!(logs.sweep(Duration::from_secs(3600)).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(logs.sweep(Duration::from_millis(1)).unwrap(), 1);
        assert_eq!(logs.read(job).unwrap(), "");
    }
}
