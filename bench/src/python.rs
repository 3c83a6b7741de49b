//! The Python TaskFlow side: a private virtualenv with TaskFlow from PyPI,
//! made on first use, and the harness script `bench/python/taskflow_side.py`
//! (compiled into this binary and written beside the virtualenv), which
//! prints one JSON line per call.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::measure::{summarize, Summary};
use crate::BenchError;

/// The harness script, the same file whatever directory the command runs in.
const SCRIPT: &str = include_str!("../python/taskflow_side.py");

/// What is installed into the virtualenv. TaskFlow is pinned to the
/// version the figures in `shared/bench/taskflow-py/RESULTS.md` were taken
/// with, so runs on different days compare the same library.
/// `psycopg2-binary` is the driver of W4's PostgreSQL rows (TaskFlow's
/// SQLAlchemy backend on `postgresql+psycopg2://`); `kombu` is the
/// transport of W11's worker-based engine (on `amqp`, py-amqp).
pub const PACKAGES: [&str; 6] = [
    "taskflow==6.5.0",
    "SQLAlchemy",
    "alembic",
    "redis",
    "psycopg2-binary",
    "kombu",
];

/// A virtualenv with TaskFlow installed, and the harness script.
#[derive(Debug, Clone)]
pub struct PythonSide {
    python: PathBuf,
    script: PathBuf,
}

/// A run's seconds, as the harness prints them.
#[derive(Deserialize)]
struct Runs {
    seconds: Vec<f64>,
}

/// What the harness's W9 (`resume`) prints.
#[derive(Clone, Debug, Deserialize)]
pub struct PyResume {
    /// Seconds from spawning the resume process to its exit.
    pub process_s: f64,
    /// Seconds inside it to load, compile and prepare.
    pub startup_s: f64,
    /// Seconds inside it to run the remaining atoms.
    pub run_s: f64,
    /// Tasks that ran in both processes.
    pub ran_twice: Vec<String>,
}

#[derive(Deserialize)]
struct PyMemory {
    peak_rss_kib: u64,
}

/// The options of one `run` of the harness.
#[derive(Debug, Clone)]
pub struct PyRun<'a> {
    /// `W1` to `W7`.
    pub workload: &'a str,
    /// Atoms.
    pub n: usize,
    /// Threads of a parallel engine; `None` for the serial engine.
    pub workers: Option<usize>,
    /// `memory`, `sqlite`, `dir` or `postgres`.
    pub backend: &'a str,
    /// The database of the `postgres` backend (a libpq URL; its `options`
    /// carry the session settings): TaskFlow's SQLAlchemy backend on
    /// psycopg2, in a fresh schema per run.
    pub url: Option<&'a str>,
    /// W3's DAG, as a JSON file of each node's predecessors.
    pub dag: Option<&'a Path>,
    /// Runs at most (one if a run takes 10 s or more).
    pub repeat: usize,
}

impl PythonSide {
    /// Makes (or reuses) the virtualenv in `dir` with `python3`, installing
    /// [`PACKAGES`] from PyPI when TaskFlow cannot be imported yet, and
    /// writes the harness script there.
    pub fn prepare(dir: &Path, python3: &str) -> Result<Self, BenchError> {
        let python = dir.join("bin").join("python");
        if !python.exists() {
            eprintln!(
                "compare: creating a virtualenv for Python TaskFlow in {}",
                dir.display()
            );
            run_checked(
                Command::new(python3).args(["-m", "venv"]).arg(dir),
                "python3 -m venv",
            )?;
        }
        let imports = Command::new(&python)
            .args(["-c", "import taskflow, sqlalchemy, redis, psycopg2, kombu"])
            .output()?;
        if !imports.status.success() {
            eprintln!("compare: installing {} from PyPI", PACKAGES.join(" "));
            run_checked(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet"])
                    .args(PACKAGES),
                "pip install",
            )?;
        }
        let script = dir.join("taskflow_side.py");
        std::fs::write(&script, SCRIPT)?;
        Ok(PythonSide { python, script })
    }

    /// The installed TaskFlow's version.
    pub fn taskflow_version(&self) -> Result<String, BenchError> {
        let out = self.call(&[
            "-c",
            "import importlib.metadata as m; print(m.version('taskflow'))",
        ])?;
        Ok(out.trim().to_string())
    }

    /// Runs a workload and summarises the seconds of its runs.
    pub fn run(&self, run: &PyRun<'_>) -> Result<Summary, BenchError> {
        let script = self.script.to_string_lossy();
        let n = run.n.to_string();
        let repeat = run.repeat.to_string();
        let mut args: Vec<String> = vec![
            script.to_string(),
            "run".into(),
            run.workload.into(),
            "--n".into(),
            n,
            "--backend".into(),
            run.backend.into(),
            "--repeat".into(),
            repeat,
        ];
        if let Some(workers) = run.workers {
            args.extend(["--engine".into(), "parallel".into()]);
            args.extend(["--workers".into(), workers.to_string()]);
        }
        if let Some(url) = run.url {
            args.extend(["--url".into(), url.into()]);
        }
        if let Some(dag) = run.dag {
            args.extend(["--dag".into(), dag.to_string_lossy().into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let runs: Runs = last_json(&self.call(&args)?)?;
        summarize(&runs.seconds)
            .ok_or_else(|| BenchError::Python(format!("{} reported no runs", run.workload)))
    }

    /// W9: a flow of `n` atoms killed in atom `crash_at`, resumed.
    pub fn resume(&self, n: usize, crash_at: usize) -> Result<PyResume, BenchError> {
        let script = self.script.to_string_lossy();
        let (n, crash_at) = (n.to_string(), crash_at.to_string());
        last_json(&self.call(&[&script, "resume", "--n", &n, "--crash-at", &crash_at])?)
    }

    /// W10: the peak resident memory, in MiB, of W1 with `n` atoms.
    pub fn peak_memory(&self, n: usize) -> Result<f64, BenchError> {
        let script = self.script.to_string_lossy();
        let n = n.to_string();
        let report: PyMemory = last_json(&self.call(&[&script, "memory", "--n", &n])?)?;
        Ok(report.peak_rss_kib as f64 / 1024.0)
    }

    /// W8: `jobs` jobs claimed and consumed by `consumers` processes on the
    /// Redis board at `port`; jobs per second.
    pub fn jobboard(&self, jobs: usize, consumers: usize, port: u16) -> Result<f64, BenchError> {
        let script = self.script.to_string_lossy();
        let (n, c, p) = (jobs.to_string(), consumers.to_string(), port.to_string());
        let runs: Runs = last_json(&self.call(&[
            &script,
            "jobboard",
            "--n",
            &n,
            "--consumers",
            &c,
            "--port",
            &p,
        ])?)?;
        let seconds = runs.seconds.first().copied().unwrap_or(f64::INFINITY);
        Ok(jobs as f64 / seconds)
    }

    /// W11: W1 (`workload` `"W1"`) or W2 (`"W2"`) with `n` atoms on the
    /// worker-based engine over the RabbitMQ broker at `url` (kombu's
    /// URL), two worker processes of two threads each; the seconds of at
    /// most `repeat` runs.
    pub fn remote(
        &self,
        workload: &str,
        n: usize,
        url: &str,
        repeat: usize,
    ) -> Result<Summary, BenchError> {
        let script = self.script.to_string_lossy();
        let (n_text, repeat) = (n.to_string(), repeat.to_string());
        let runs: Runs = last_json(&self.call(&[
            &script, "remote", workload, "--n", &n_text, "--url", url, "--repeat", &repeat,
        ])?)?;
        summarize(&runs.seconds)
            .ok_or_else(|| BenchError::Python(format!("W11 {workload} reported no runs")))
    }

    fn call(&self, args: &[&str]) -> Result<String, BenchError> {
        let out = Command::new(&self.python).args(args).output()?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: String = stderr
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Err(BenchError::Python(format!(
                "`{}` failed ({}):\n{tail}",
                args.join(" "),
                out.status
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), BenchError> {
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Python(format!("{what} failed ({status})")))
    }
}

fn last_json<T: for<'de> Deserialize<'de>>(stdout: &str) -> Result<T, BenchError> {
    crate::child::last_json(stdout.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_is_compiled_in() {
        assert!(SCRIPT.contains("def cmd_run"));
        assert!(SCRIPT.contains("def cmd_resume"));
    }

    #[test]
    fn a_run_report_parses() {
        let runs: Runs =
            last_json("{\"workload\": \"W1\", \"n\": 5, \"seconds\": [0.5, 0.25]}\n").unwrap();
        assert_eq!(summarize(&runs.seconds).unwrap().median, 0.375);
    }
}
