//! W12: the job service (`taskflow-service`) over real HTTP, beside the
//! bare jobboard it runs on.
//!
//! Each figure is taken on 1 node, then (on a fresh folder) on 2 nodes,
//! started in this process on a SQLite board and SQLite records in a
//! temporary folder, as `taskflow serve` opens them (full durability), each
//! node with [`ServiceOptions::workers`] workers and one job type whose
//! flow is one no-op task:
//!
//! - **accepted**: [`ServiceOptions::jobs`] jobs submitted (`POST
//!   /api/v1/jobs`, `Authorization: Harbor-Secret ...`) by
//!   [`ServiceOptions::clients`] threads, each with its own keep-alive
//!   blocking client, the threads spread over the nodes: jobs accepted
//!   (202) per second from the first submit to the last answer, and the
//!   p50 / p99 of one submit's round trip;
//! - **drained**: from the first submit until every job is complete on
//!   the board (read from the board file directly, less often while many
//!   are left, every 2 ms near the end, so the count costs the nodes no
//!   request and little CPU; the list endpoint's
//!   `X-Total-Count` of `status=success` is checked once at the end):
//!   jobs completed per second;
//! - **submit to success**: [`ServiceOptions::sample`] jobs submitted one
//!   at a time, a pause before each so the queue is empty, from just
//!   before the POST until `GET /api/v1/jobs/{id}` (on the node it was
//!   submitted to) first says `success`, polled every 2 ms: p50 and p99.
//!
//! The bare board does the same with no HTTP and no service: the same
//! client threads call `post_flow` on the nodes' board and records
//! handles, and per node one [`Conductor`] with the service's settings
//! (as many concurrent jobs as its workers, the same wait and renewal)
//! claims, runs and consumes; success is the job complete on the board,
//! polled every 2 ms. The ratios service ÷ bare are the service's cost.
//! Beside them, W8 as `compare` measures it (posts untimed, Normal
//! durability, records in memory, conductors of one job at a time).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;
use taskflow::{
    atom, post_flow, task_fn, Backend, BoardOptions, Conductor, Flow, FlowRegistry, FlowSource,
    JobBoard, JobId, JobState, Linear, PostFlow, SqliteBackend, SqliteBoard, StopHandle, TaskError,
    Value,
};
use taskflow_service::{
    HookOptions, JobLogs, JobType, Parameters, Service, ServiceConfig, ServiceHandle,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::measure::{Measurement, Repeats, Summary, Unit};
use crate::report::figure;
use crate::BenchError;

/// The secret the nodes ask for.
const SECRET: &str = "taskflow-bench-secret";

/// The job type's name.
const JOB_TYPE: &str = "noop";

/// How long a run may take before the workload gives up.
const GIVE_UP: Duration = Duration::from_secs(300);

/// What W12 runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Jobs submitted for the accepted and drained figures.
    pub jobs: usize,
    /// Client threads submitting them.
    pub clients: usize,
    /// Jobs timed one at a time from submit to success.
    pub sample: usize,
    /// The pause before each of those.
    pub pause: Duration,
    /// How often a sampled job's status is read.
    pub poll: Duration,
    /// Workers per node.
    pub workers: usize,
    /// The node counts, each on a fresh board.
    pub nodes: Vec<usize>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            jobs: 2_000,
            clients: 8,
            sample: 200,
            pause: Duration::from_millis(10),
            poll: Duration::from_millis(2),
            workers: 4,
            nodes: vec![1, 2],
        }
    }
}

/// The figures of one side (the service, or the bare board) on some nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideFigures {
    /// Jobs accepted (posted) per second.
    pub accepted_per_s: f64,
    /// The median round trip of one submit, ms.
    pub submit_p50_ms: f64,
    /// Its 99th percentile, ms.
    pub submit_p99_ms: f64,
    /// Jobs completed per second, from the first submit to the last success.
    pub drained_per_s: f64,
    /// The median time from submit to success of one job alone, ms.
    pub success_p50_ms: f64,
    /// Its 99th percentile, ms.
    pub success_p99_ms: f64,
}

/// Every figure for one node count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodesFigures {
    /// How many nodes (conductors, on the bare board).
    pub nodes: usize,
    /// The service over HTTP.
    pub service: SideFigures,
    /// The bare board and conductors.
    pub bare: SideFigures,
    /// W8 as `compare` measures it, with as many conductors.
    pub w8: Summary,
}

/// Runs W12 for every node count of `options`.
pub fn run(options: &ServiceOptions) -> Result<Vec<NodesFigures>, BenchError> {
    if options.jobs == 0 || options.clients == 0 || options.nodes.contains(&0) {
        return Err(BenchError::Setup(
            "W12 needs at least one job, one client and one node".into(),
        ));
    }
    let logs = job_logs()?;
    let result = options
        .nodes
        .iter()
        .map(|&nodes| {
            let service = service_side(options, nodes, &logs)?;
            let bare = bare_side(options, nodes)?;
            let w8 = crate::ours::jobboard_sqlite(
                1_000,
                nodes,
                Repeats {
                    min_runs: 1,
                    max_runs: 3,
                    ..Repeats::standard()
                },
            )?;
            Ok(NodesFigures {
                nodes,
                service,
                bare,
                w8,
            })
        })
        .collect();
    let _ = std::fs::remove_dir_all(logs.dir());
    result
}

/// The jobs' logs of every node this process starts, and the `tracing`
/// layer writing the jobs' events to them, as `taskflow serve` installs
/// it (installed once; the folder is this process's, removed after a run).
fn job_logs() -> Result<JobLogs, BenchError> {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    let dir = INSTALLED.get_or_init(|| {
        std::env::temp_dir().join(format!("taskflow-bench-job-logs-{}", std::process::id()))
    });
    let logs = JobLogs::open(dir)?;
    static LAYER: OnceLock<()> = OnceLock::new();
    LAYER.get_or_init(|| {
        let _ = tracing_subscriber::registry()
            .with(logs.layer(tracing::Level::INFO))
            .try_init();
    });
    Ok(logs)
}

/// The job type: one task that does nothing.
struct Noop;

impl JobType for Noop {
    fn flow(&self, _: &Parameters) -> Result<Flow, TaskError> {
        Ok(noop_flow())
    }
}

fn noop_flow() -> Flow {
    Linear::new(JOB_TYPE)
        .add(atom("noop", task_fn(|_| Ok(Value::Null))))
        .into()
}

/// A node of the service in this process, stopped when dropped.
struct Node {
    handle: ServiceHandle,
    thread: Option<JoinHandle<Result<(), taskflow_service::ServiceError>>>,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The board and records in `dir`, as `taskflow serve` opens them.
fn open_files(dir: &Path, lease: Duration) -> Result<(SqliteBoard, SqliteBackend), BenchError> {
    let options = BoardOptions {
        lease,
        ..BoardOptions::default()
    };
    let board = SqliteBoard::open(dir.join("board.db"), options)?;
    let records = SqliteBackend::open(dir.join("records.db"))?;
    Ok((board, records))
}

fn start_node(
    dir: &Path,
    index: usize,
    workers: usize,
    logs: &JobLogs,
) -> Result<Node, BenchError> {
    let config = ServiceConfig {
        host: "127.0.0.1".into(),
        port: 0,
        node_id: Some(format!("node-{index}")),
        job_log_dir: logs.dir().to_owned(),
        workers,
        hooks: HookOptions {
            outbox: dir.join("hooks.db"),
            ..HookOptions::default()
        },
        ..ServiceConfig::default()
    };
    let (board, records) = open_files(dir, config.lease)?;
    let service = Service::builder(config, Arc::new(board), Arc::new(records))
        .job_type(JOB_TYPE, Noop)
        .secret(SECRET)
        .build()?;
    let handle = service.stop_handle();
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let thread = std::thread::spawn(move || {
        service.run_with(move |address| {
            let _ = tx.send(address);
        })
    });
    let address = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| BenchError::Setup("W12: a node did not listen within 10 s".into()))?;
    Ok(Node {
        handle,
        thread: Some(thread),
        url: format!("http://{address}"),
    })
}

fn http_client() -> Result<Client, BenchError> {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| BenchError::Setup(format!("W12: HTTP client: {e}")))
}

fn http_err(e: reqwest::Error) -> BenchError {
    BenchError::Setup(format!("W12: HTTP: {e}"))
}

/// Where jobs are submitted and how their success is seen.
trait Target: Sync {
    /// A client's connection.
    type Client;
    /// A job's id.
    type Id;
    /// Client `index`'s connection (clients are spread over the nodes).
    fn client(&self, index: usize) -> Result<Self::Client, BenchError>;
    /// Submits one job.
    fn submit(&self, client: &mut Self::Client) -> Result<Self::Id, BenchError>;
    /// Whether the job has succeeded.
    fn succeeded(&self, client: &mut Self::Client, id: &Self::Id) -> Result<bool, BenchError>;
    /// How many jobs are not complete.
    fn pending(&self) -> Result<usize, BenchError>;
}

struct Http<'a> {
    nodes: &'a [Node],
    /// The board file, read directly to count what is left.
    monitor: SqliteBoard,
    auth: String,
}

impl Target for Http<'_> {
    type Client = (Client, usize);
    type Id = String;

    fn client(&self, index: usize) -> Result<Self::Client, BenchError> {
        Ok((http_client()?, index % self.nodes.len()))
    }

    fn submit(&self, (client, node): &mut Self::Client) -> Result<String, BenchError> {
        let body = json!({ "job": { "name": JOB_TYPE, "parameters": {}, "metadata": { "kind": "Generic" } } });
        let response = client
            .post(format!("{}/api/v1/jobs", self.nodes[*node].url))
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .map_err(http_err)?;
        let status = response.status();
        let body: Value = response.json().map_err(http_err)?;
        if status != reqwest::StatusCode::ACCEPTED {
            return Err(BenchError::Setup(format!(
                "W12: a submit was answered {status}: {body}"
            )));
        }
        body["job"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| BenchError::Setup(format!("W12: a 202 without a job id: {body}")))
    }

    fn succeeded(
        &self,
        (client, node): &mut Self::Client,
        id: &String,
    ) -> Result<bool, BenchError> {
        let response = client
            .get(format!("{}/api/v1/jobs/{id}", self.nodes[*node].url))
            .header("Authorization", &self.auth)
            .send()
            .map_err(http_err)?;
        let body: Value = response.json().map_err(http_err)?;
        match body["job"]["status"].as_str() {
            Some("success") => Ok(true),
            Some("pending" | "running" | "scheduled") => Ok(false),
            _ => Err(BenchError::Setup(format!(
                "W12: job {id} did not succeed: {body}"
            ))),
        }
    }

    fn pending(&self) -> Result<usize, BenchError> {
        Ok(self.monitor.iterjobs(false)?.len())
    }
}

impl Http<'_> {
    /// `X-Total-Count` of `GET /api/v1/jobs?status=success&page_size=1`.
    fn successes(&self) -> Result<usize, BenchError> {
        let response = http_client()?
            .get(format!(
                "{}/api/v1/jobs?status=success&page_size=1",
                self.nodes[0].url
            ))
            .header("Authorization", &self.auth)
            .send()
            .map_err(http_err)?;
        response
            .headers()
            .get("X-Total-Count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BenchError::Setup("W12: the list has no X-Total-Count".into()))
    }
}

/// The bare board: per node a board and records handle on the same files,
/// and a conductor running on them.
struct Bare {
    handles: Vec<(Arc<SqliteBoard>, Arc<SqliteBackend>)>,
    monitor: SqliteBoard,
}

impl Target for Bare {
    type Client = usize;
    type Id = JobId;

    fn client(&self, index: usize) -> Result<usize, BenchError> {
        Ok(index % self.handles.len())
    }

    fn submit(&self, node: &mut usize) -> Result<JobId, BenchError> {
        let (board, records) = &self.handles[*node];
        let args = json!({});
        let post = PostFlow::new(
            JOB_TYPE,
            FlowSource::Factory {
                name: JOB_TYPE,
                args: &args,
            },
        );
        Ok(post_flow(&**board, &**records, post)?.id)
    }

    fn succeeded(&self, node: &mut usize, id: &JobId) -> Result<bool, BenchError> {
        Ok(self.handles[*node].0.get(*id)?.state == JobState::Complete)
    }

    fn pending(&self) -> Result<usize, BenchError> {
        Ok(self.monitor.iterjobs(false)?.len())
    }
}

fn service_side(
    options: &ServiceOptions,
    nodes: usize,
    logs: &JobLogs,
) -> Result<SideFigures, BenchError> {
    let dir = tempfile::tempdir()?;
    let running = (0..nodes)
        .map(|i| start_node(dir.path(), i, options.workers, logs))
        .collect::<Result<Vec<_>, _>>()?;
    let target = Http {
        nodes: &running,
        monitor: open_files(dir.path(), ServiceConfig::default().lease)?.0,
        auth: format!("Harbor-Secret {SECRET}"),
    };
    let figures = measure_side(&target, options, nodes)?;
    let warm_up = warm_up_count(options);
    let successes = target.successes()?;
    let expected = warm_up + options.jobs + options.sample;
    if successes != expected {
        return Err(BenchError::Setup(format!(
            "W12: the service lists {successes} successful jobs, {expected} were submitted"
        )));
    }
    drop(running);
    Ok(figures)
}

fn bare_side(options: &ServiceOptions, nodes: usize) -> Result<SideFigures, BenchError> {
    let dir = tempfile::tempdir()?;
    let lease = ServiceConfig::default().lease;
    let mut handles = Vec::new();
    let mut stops: Vec<StopHandle> = Vec::new();
    let mut conductors = Vec::new();
    for i in 0..nodes {
        let (board, records) = open_files(dir.path(), lease)?;
        let (board, records) = (Arc::new(board), Arc::new(records));
        let mut registry = FlowRegistry::new();
        registry.register(JOB_TYPE, |_: &Value| Ok(noop_flow()));
        // The service's conductor settings (taskflow_service::Service::build).
        let conductor = Conductor::builder(
            format!("node-{i}"),
            Arc::clone(&board) as Arc<dyn JobBoard>,
            Arc::clone(&records) as Arc<dyn Backend>,
        )
        .registry(registry)
        .max_concurrent_jobs(options.workers)
        .renew_every(lease / 4)
        .wait_timeout(Duration::from_millis(200))
        .build();
        stops.push(conductor.stop_handle());
        conductors.push(std::thread::spawn(move || conductor.run()));
        handles.push((board, records));
    }
    let target = Bare {
        handles,
        monitor: open_files(dir.path(), lease)?.0,
    };
    let figures = measure_side(&target, options, nodes);
    for stop in &stops {
        stop.stop();
    }
    for conductor in conductors {
        let _ = conductor.join();
    }
    figures
}

fn warm_up_count(options: &ServiceOptions) -> usize {
    options.sample.min(20)
}

/// A short warm-up, then the accepted and drained figures, then the
/// submit-to-success sample.
fn measure_side<T: Target>(
    target: &T,
    options: &ServiceOptions,
    nodes: usize,
) -> Result<SideFigures, BenchError> {
    latencies(target, options, nodes, warm_up_count(options))?;
    let (accepted, submits, drained) = throughput(target, options)?;
    let sample = latencies(target, options, nodes, options.sample)?;
    Ok(SideFigures {
        accepted_per_s: options.jobs as f64 / accepted.as_secs_f64(),
        submit_p50_ms: percentile_ms(&submits, 0.50),
        submit_p99_ms: percentile_ms(&submits, 0.99),
        drained_per_s: options.jobs as f64 / drained.as_secs_f64(),
        success_p50_ms: percentile_ms(&sample, 0.50),
        success_p99_ms: percentile_ms(&sample, 0.99),
    })
}

/// `options.jobs` jobs from `options.clients` threads: the time until the
/// last is accepted, every submit's round trip, and the time until none
/// is left to run.
fn throughput<T: Target>(
    target: &T,
    options: &ServiceOptions,
) -> Result<(Duration, Vec<Duration>, Duration), BenchError> {
    let next = AtomicUsize::new(0);
    let ready = Barrier::new(options.clients + 1);
    let (start, submits) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..options.clients)
            .map(|c| {
                let (next, ready) = (&next, &ready);
                scope.spawn(move || -> Result<Vec<Duration>, BenchError> {
                    let client = target.client(c);
                    ready.wait();
                    let mut client = client?;
                    let mut trips = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < options.jobs {
                        let at = Instant::now();
                        target.submit(&mut client)?;
                        trips.push(at.elapsed());
                    }
                    Ok(trips)
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let mut all = Vec::with_capacity(options.jobs);
        for thread in threads {
            let trips = thread
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("W12: a client panicked".into())))?;
            all.extend(trips);
        }
        Ok::<_, BenchError>((start, all))
    })?;
    let accepted = start.elapsed();
    loop {
        let pending = target.pending()?;
        if pending == 0 {
            break;
        }
        if start.elapsed() > GIVE_UP {
            return Err(BenchError::Setup(format!(
                "W12: jobs still not run after {GIVE_UP:?}"
            )));
        }
        // Reading the pending jobs decodes each: read seldom while many
        // are left (on two cores a tight poll would take a share of the
        // CPU the nodes need), often near the end (the last wait is short).
        let wait = Duration::from_micros(pending as u64 * 250);
        std::thread::sleep(wait.clamp(Duration::from_millis(2), Duration::from_millis(250)));
    }
    Ok((accepted, submits, start.elapsed()))
}

/// `count` jobs one at a time, each after a pause, alternating over the
/// nodes: from before its submit until it is seen to succeed.
fn latencies<T: Target>(
    target: &T,
    options: &ServiceOptions,
    nodes: usize,
    count: usize,
) -> Result<Vec<Duration>, BenchError> {
    let mut clients = (0..nodes)
        .map(|n| target.client(n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let client = &mut clients[i % nodes];
        std::thread::sleep(options.pause);
        let at = Instant::now();
        let id = target.submit(client)?;
        while !target.succeeded(client, &id)? {
            if at.elapsed() > GIVE_UP {
                return Err(BenchError::Setup(format!(
                    "W12: a job did not succeed within {GIVE_UP:?}"
                )));
            }
            std::thread::sleep(options.poll);
        }
        times.push(at.elapsed());
    }
    Ok(times)
}

/// The `p` quantile (nearest rank) of `times`, in ms.
fn percentile_ms(times: &[Duration], p: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// The table: per node count, a row for the service, one for the bare
/// board and one of their ratios (service ÷ bare: below 1 is slower for
/// rates, above 1 slower for times).
pub fn markdown_table(all: &[NodesFigures]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "| nodes | side | accepted jobs/s | submit p50 ms | submit p99 ms | drained jobs/s | \
         submit→success p50 ms | submit→success p99 ms |\n|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in all {
        let row = |side: &str, s: &SideFigures| {
            format!(
                "| {} | {side} | {} | {} | {} | {} | {} | {} |\n",
                f.nodes,
                figure(s.accepted_per_s),
                figure(s.submit_p50_ms),
                figure(s.submit_p99_ms),
                figure(s.drained_per_s),
                figure(s.success_p50_ms),
                figure(s.success_p99_ms),
            )
        };
        out.push_str(&row("service (HTTP)", &f.service));
        out.push_str(&row("bare board", &f.bare));
        let x = |a: f64, b: f64| format!("{}×", figure(a / b));
        let (s, b) = (&f.service, &f.bare);
        let _ = writeln!(
            out,
            "| {} | service ÷ bare | {} | {} | {} | {} | {} | {} |",
            f.nodes,
            x(s.accepted_per_s, b.accepted_per_s),
            x(s.submit_p50_ms, b.submit_p50_ms),
            x(s.submit_p99_ms, b.submit_p99_ms),
            x(s.drained_per_s, b.drained_per_s),
            x(s.success_p50_ms, b.success_p50_ms),
            x(s.success_p99_ms, b.success_p99_ms),
        );
    }
    out
}

/// The W8 figures taken beside, one line per node count.
pub fn w8_lines(all: &[NodesFigures]) -> Vec<String> {
    all.iter()
        .map(|f| {
            format!(
                "W8 as `compare` measures it, {} conductor(s) (1,000 jobs posted untimed, Normal \
                 durability, records in memory): {} jobs/s; service drained ÷ W8: {}×",
                f.nodes,
                figure(f.w8.median),
                figure(f.service.drained_per_s / f.w8.median),
            )
        })
        .collect()
}

/// The figures as rows of the comparison (workload `W12`).
pub fn measurements(options: &ServiceOptions, all: &[NodesFigures]) -> Vec<Measurement> {
    let mut rows = Vec::new();
    for f in all {
        for (executor, s) in [
            ("taskflow-rs service (HTTP, sqlite)", &f.service),
            ("taskflow-rs conductor (bare sqlite board)", &f.bare),
        ] {
            let nodes = format!("{} node{}", f.nodes, if f.nodes == 1 { "" } else { "s" });
            let mut push = |what: &str, value: f64, unit: Unit| {
                rows.push(Measurement {
                    workload: "W12".into(),
                    n: if what.contains("success") {
                        options.sample
                    } else {
                        options.jobs
                    },
                    setting: format!("{nodes}, {what}"),
                    executor: executor.into(),
                    value,
                    min: value,
                    max: value,
                    runs: 1,
                    unit,
                });
            };
            push("accepted", s.accepted_per_s, Unit::JobsPerSecond);
            push("drained", s.drained_per_s, Unit::JobsPerSecond);
            push("submit p99", s.submit_p99_ms, Unit::Millis);
            push("submit→success p50", s.success_p50_ms, Unit::Millis);
            push("submit→success p99", s.success_p99_ms, Unit::Millis);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&times, 0.50), 50.0);
        assert_eq!(percentile_ms(&times, 0.99), 99.0);
        assert_eq!(percentile_ms(&times[..1], 0.99), 1.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }
}
