//! The child processes of W9 and W10: the comparison command runs itself
//! (`taskflow-bench child ...`) so a crash is a real SIGKILL, a resume is a
//! real new process, and peak memory is one process's own.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use taskflow::prelude::*;
use taskflow::Durability;
use uuid::Uuid;

use crate::workloads::{self, BLOCK_AT_ENV};
use crate::BenchError;
use taskflow::FlowDetailId;

/// What W9's resume process prints (one JSON line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResumeInner {
    /// Seconds to open the backend, load the flow detail, compile and prepare.
    pub startup_s: f64,
    /// Seconds to run the remaining atoms.
    pub run_s: f64,
    /// The flow's final value.
    pub result: i64,
}

/// What W10's child prints (one JSON line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The atoms run.
    pub n: usize,
    /// The process's peak resident set (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
}

/// W9, first process: writes the records of a W9 flow of `n` atoms to the
/// SQLite file `db`, prints `flow-detail <id>`, and runs it; atom
/// `t{block_at}` prints `blocked` and waits to be killed.
pub fn w9_run(db: &Path, log: &Path, n: usize, block_at: usize) -> Result<(), BenchError> {
    std::env::set_var(BLOCK_AT_ENV, format!("t{block_at}"));
    let backend = SqliteBackend::open_with(db, Durability::Normal)?;
    let mut engine = Engine::builder(workloads::w9_flow(n, log))
        .store(json!({ "x": 0 }))
        .persistence(backend)
        .build()?;
    engine.prepare()?;
    println!("flow-detail {}", engine.storage().flow_detail_id());
    engine.run()?;
    Err(BenchError::Setup(format!(
        "W9: the flow finished without reaching atom t{block_at}"
    )))
}

/// W9, resume process: loads flow detail `flow_detail` from `db`, runs what
/// is left, and prints a [`ResumeInner`].
pub fn w9_resume(db: &Path, n: usize, flow_detail: &str) -> Result<(), BenchError> {
    let id: Uuid = flow_detail
        .parse()
        .map_err(|e| BenchError::Setup(format!("W9: flow detail {flow_detail:?}: {e}")))?;
    let start = Instant::now();
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open_with(db, Durability::Normal)?);
    let mut engine = Engine::load(backend, FlowDetailId::from(id))?.build()?;
    engine.prepare()?;
    let loaded = Instant::now();
    let state = engine.run()?;
    let ran = Instant::now();
    if state != FlowState::Success {
        return Err(BenchError::Setup(format!(
            "W9: the resumed flow ended {state}"
        )));
    }
    let result = engine
        .storage()
        .fetch(&format!("x{}", n - 1))
        .and_then(Value::as_i64)
        .ok_or_else(|| BenchError::Setup("W9: the last atom left no value".into()))?;
    let report = ResumeInner {
        startup_s: (loaded - start).as_secs_f64(),
        run_s: (ran - loaded).as_secs_f64(),
        result,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// W10: builds and runs W1 with `n` atoms (serial engine, memory backend)
/// and prints a [`MemoryReport`].
pub fn w10(n: usize) -> Result<(), BenchError> {
    let flow = workloads::w1_flow(n, &workloads::step());
    let mut engine = Engine::builder(flow)
        .store(json!({ "x": 0 }))
        .persistence(MemoryBackend::new())
        .build()?;
    let state = engine.run()?;
    if state != FlowState::Success {
        return Err(BenchError::Setup(format!("W10: the flow ended {state}")));
    }
    let report = MemoryReport {
        n,
        peak_rss_kib: peak_rss_kib()?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// This process's peak resident set (`VmHWM` of `/proc/self/status`), KiB.
pub fn peak_rss_kib() -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BenchError::Setup("no VmHWM in /proc/self/status".into()))
}

/// Reads `out` line by line up to and including a line equal to `last`;
/// returns the lines read (fewer if `out` ended first).
pub fn lines_until(out: impl Read, last: &str) -> Result<Vec<String>, BenchError> {
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        let done = line.trim() == last;
        lines.push(line);
        if done {
            break;
        }
    }
    Ok(lines)
}

/// The last line of `stdout` that parses as a `T`.
pub fn last_json<T: for<'de> Deserialize<'de>>(stdout: &[u8]) -> Result<T, BenchError> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| BenchError::Setup(format!("no JSON line in the output: {text:?}")))?;
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_kib().unwrap() > 0);
    }

    #[test]
    fn last_json_skips_other_lines() {
        let out = b"noise\n{\"n\": 3, \"peak_rss_kib\": 7}\ntrailer\n";
        let report: MemoryReport = last_json(out).unwrap();
        assert_eq!((report.n, report.peak_rss_kib), (3, 7));
        assert!(last_json::<MemoryReport>(b"nothing").is_err());
    }

    #[test]
    fn lines_until_stops_at_the_marker() {
        let lines = lines_until(&b"a\nblocked\nb\n"[..], "blocked").unwrap();
        assert_eq!(lines, ["a", "blocked"]);
    }
}
