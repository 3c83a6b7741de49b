//! The engine comparison of taskflow-rs.
//!
//! One command runs the workloads of `shared/BENCHMARKS.md` back to back on
//! this library's engines, on Python TaskFlow (from PyPI, in a private
//! virtualenv the command makes itself), on the Rust DAG executors `dagx`
//! and `dagrs`, and on a bare rayon DAG executor (the floor), then prints one
//! table and writes it as Markdown beside a plot:
//!
//! ```sh
//! cargo run --release -p taskflow-bench -- compare
//! ```
//!
//! The modules hold the pieces: [`workloads`] (the flows, shared with the
//! criterion benches), [`floor`] and [`peers`] (the same shapes on the other
//! executors), [`measure`] (medians of repeated runs), [`python`] (the
//! Python TaskFlow side) and [`report`] (table, Markdown and plot).

pub mod child;
#[cfg(feature = "peers")]
pub mod compare;
pub mod floor;
pub mod measure;
pub mod ours;
#[cfg(feature = "peers")]
pub mod peers;
pub mod python;
pub mod report;
#[cfg(feature = "service")]
pub mod service;
pub mod sqlite_floor;
#[cfg(feature = "amqp")]
pub mod w11;
pub mod workloads;

use taskflow::jobboard::JobBoardError;
use taskflow::{EngineError, PersistenceError};

/// What can go wrong while comparing.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// One of our engines failed to build or run.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A backend failed.
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
    /// A jobboard failed.
    #[error(transparent)]
    JobBoard(#[from] JobBoardError),
    /// A file, pipe or child process failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A child's report was not the JSON expected.
    #[error("a child's report is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A peer (dagx, dagrs) failed.
    #[cfg(feature = "peers")]
    #[error(transparent)]
    Peer(#[from] peers::PeerError),
    /// A workload could not be set up, or ended other than it must.
    #[error("{0}")]
    Setup(String),
    /// A job service node failed to start.
    #[cfg(feature = "service")]
    #[error(transparent)]
    Service(#[from] taskflow_service::ServiceError),
    /// The Python TaskFlow side failed.
    #[error("Python TaskFlow: {0}")]
    Python(String),
}

/// One line saying when and where the comparison ran: the UTC date, the
/// CPU model, the cores this process may use, and the kernel.
pub fn machine_line() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    format!(
        "Taken on {} (UTC) on {cpu}, {cores} cores, {kernel}.",
        utc_date(std::time::SystemTime::now())
    )
}

/// `YYYY-MM-DD` of `time` in UTC (days since the epoch to a civil date).
pub fn utc_date(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_dates() {
        assert_eq!(super::utc_date(UNIX_EPOCH), "1970-01-01");
        // 2026-11-23 00:00:00 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_392_000);
        assert_eq!(super::utc_date(t), "2026-11-23");
        // 2024-02-29, a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_164_800);
        assert_eq!(super::utc_date(t), "2024-02-29");
    }
}
