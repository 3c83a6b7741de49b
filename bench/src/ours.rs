//! Our side of the comparison: each workload of `shared/BENCHMARKS.md` on
//! this library's engines, timed as a user pays it.
//!
//! A figure covers building the engine from a flow (compile, validate),
//! writing its records and running it, as Python TaskFlow's `engine.run()`
//! covers compile, prepare and run; building the flow value itself is left
//! out on both sides. W9 and W10 run in child processes (see
//! [`crate::child`]), so process start, a real SIGKILL and peak memory are
//! measured as they are.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use taskflow::engine::worker::{
    InProcess, Worker, WorkerConfig, WorkerExecutor, WorkerHandle, WorkerOptions, CLOSURE_TASK_TYPE,
};
use taskflow::engine::Parallel;
#[cfg(feature = "etcd")]
use taskflow::jobboard::EtcdBoard;
#[cfg(feature = "postgres")]
use taskflow::jobboard::PostgresBoard;
#[cfg(feature = "redis")]
use taskflow::jobboard::RedisBoard;
#[cfg(feature = "zookeeper")]
use taskflow::jobboard::ZookeeperBoard;
use taskflow::jobboard::{BoardOptions, JobBoard, SqliteBoard};
use taskflow::prelude::*;
use taskflow::{DirBackend, Durability, EngineBuilder, FnTask};

use crate::measure::{repeat, Repeats, Summary};
use crate::workloads;
use crate::BenchError;

/// The parallel engines run with this many workers (the machine class has
/// two cores), as the Python side's parallel runs and the peers' runtime.
pub const WORKERS: usize = 2;

/// One of this library's engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OurEngine {
    /// The serial engine: atoms run on the caller's thread.
    Serial,
    /// The parallel engine on a rayon pool of [`WORKERS`] threads, made
    /// once and passed in (as the Python side passes its executor in), so
    /// starting threads is not inside every run.
    Parallel,
    /// The worker engine over the in-process transport, two workers of
    /// [`WORKERS`] threads: requests, replies and routing as over a broker,
    /// without the network.
    Worker,
}

impl OurEngine {
    /// Every engine, in table order.
    pub const ALL: [OurEngine; 3] = [OurEngine::Serial, OurEngine::Parallel, OurEngine::Worker];

    /// The name the table gives it.
    pub fn name(self) -> &'static str {
        match self {
            OurEngine::Serial => "taskflow-rs serial",
            OurEngine::Parallel => "taskflow-rs parallel",
            OurEngine::Worker => "taskflow-rs worker",
        }
    }

    /// `builder` configured as this engine.
    pub fn configure(self, builder: EngineBuilder) -> Result<EngineBuilder, BenchError> {
        Ok(match self {
            OurEngine::Serial => builder,
            OurEngine::Parallel => builder.executor(Parallel::with_pool(shared_pool()?)),
            OurEngine::Worker => {
                let options = WorkerOptions::with_timeout(Duration::from_secs(60));
                builder.executor(WorkerExecutor::new(worker_transport()?, options)?)
            }
        })
    }
}

/// The rayon pool of [`WORKERS`] threads every parallel-engine run shares.
pub(crate) fn shared_pool() -> Result<Arc<rayon::ThreadPool>, BenchError> {
    static POOL: OnceLock<Result<Arc<rayon::ThreadPool>, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(WORKERS)
            .build()
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| BenchError::Setup(format!("rayon pool: {e}")))
}

/// One in-process transport with two workers, started on first use and
/// shared by every worker-engine run.
fn worker_transport() -> Result<&'static InProcess, BenchError> {
    static SHARED: OnceLock<Result<(InProcess, Vec<WorkerHandle>), String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let transport = InProcess::new();
        let workers = ["compare-1", "compare-2"]
            .into_iter()
            .map(|name| {
                let config = WorkerConfig::new(name, [CLOSURE_TASK_TYPE]).concurrency(WORKERS);
                Worker::new(&transport, config).and_then(Worker::spawn)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok((transport, workers))
    });
    match shared {
        Ok((transport, _)) => Ok(transport),
        Err(e) => Err(BenchError::Setup(format!("in-process workers: {e}"))),
    }
}

/// Builds `flow` on `engine` with `store` and a memory backend, writes its
/// records and runs it; returns the time that took.
fn build_and_run(
    engine: OurEngine,
    flow: &Flow,
    store: Value,
    backend: impl Backend + 'static,
) -> Result<(Duration, Result<FlowState, EngineError>), BenchError> {
    let start = Instant::now();
    let mut built = engine
        .configure(Engine::builder(flow.clone()))?
        .store(store)
        .persistence(backend)
        .build()?;
    built.prepare()?;
    let outcome = built.run();
    let elapsed = start.elapsed();
    drop(built);
    Ok((elapsed, outcome))
}

fn expect_success(outcome: Result<FlowState, EngineError>) -> Result<(), BenchError> {
    match outcome? {
        FlowState::Success => Ok(()),
        other => Err(BenchError::Setup(format!("the flow ended {other}"))),
    }
}

/// W1, W2 or W3 (`workload` 1, 2 or 3) with `n` atoms on `engine`, memory
/// backend: the median seconds of whole runs.
pub fn in_memory(
    workload: u8,
    n: usize,
    engine: OurEngine,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    let (flow, store) = match workload {
        1 => (workloads::w1_flow(n, &workloads::step()), json!({ "x": 0 })),
        2 => (workloads::w2_flow(n), json!({})),
        3 => (workloads::w3_flow(&workloads::layered_dag(n)), json!({})),
        other => {
            return Err(BenchError::Setup(format!(
                "W{other} is not an in-memory DAG"
            )))
        }
    };
    repeat(repeats, || {
        let (elapsed, outcome) = build_and_run(engine, &flow, store.clone(), MemoryBackend::new())?;
        expect_success(outcome)?;
        Ok(elapsed)
    })
}

/// A durable backend of W4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurableBackend {
    /// SQLite file, `Durability::Normal` (WAL, no fsync per commit).
    SqliteNormal,
    /// SQLite file, `Durability::Full` (fsync per commit).
    SqliteFull,
    /// One file per record, written with fsync and rename.
    Dir,
}

impl DurableBackend {
    /// Every durable backend, in table order.
    pub const ALL: [DurableBackend; 3] = [
        DurableBackend::SqliteNormal,
        DurableBackend::SqliteFull,
        DurableBackend::Dir,
    ];

    /// The setting the table shows.
    pub fn name(self) -> &'static str {
        match self {
            DurableBackend::SqliteNormal => "sqlite (Normal)",
            DurableBackend::SqliteFull => "sqlite (Full)",
            DurableBackend::Dir => "dir",
        }
    }
}

/// W4: W1 with `n` atoms on the serial engine, every checkpoint in `backend`
/// in a fresh temp dir.
pub fn checkpointed(
    n: usize,
    backend: DurableBackend,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    let flow = workloads::w1_flow(n, &workloads::step());
    repeat(repeats, || {
        let dir = tempfile::tempdir()?;
        let (elapsed, outcome) = match backend {
            DurableBackend::SqliteNormal | DurableBackend::SqliteFull => {
                let durability = if backend == DurableBackend::SqliteFull {
                    Durability::Full
                } else {
                    Durability::Normal
                };
                let sqlite = SqliteBackend::open_with(dir.path().join("tf.db"), durability)?;
                build_and_run(OurEngine::Serial, &flow, json!({ "x": 0 }), sqlite)?
            }
            DurableBackend::Dir => {
                let records = DirBackend::open(dir.path().join("records"))?;
                build_and_run(OurEngine::Serial, &flow, json!({ "x": 0 }), records)?
            }
        };
        expect_success(outcome)?;
        Ok(elapsed)
    })
}

/// W4 on PostgreSQL: W1 with `n` atoms on the serial engine, every
/// checkpoint in a [`PostgresBackend`](taskflow::PostgresBackend) on the
/// database at `url` (its `options` carry the session settings, e.g.
/// `synchronous_commit`), in a fresh schema per run, dropped after it.
#[cfg(feature = "postgres")]
pub fn checkpointed_postgres(n: usize, url: &str, repeats: Repeats) -> Result<Summary, BenchError> {
    /// Drops the run's schema when dropped.
    struct DropSchema<'a> {
        url: &'a str,
        schema: String,
    }
    impl Drop for DropSchema<'_> {
        fn drop(&mut self) {
            if let Ok(mut client) = postgres::Client::connect(self.url, postgres::NoTls) {
                let _ = client.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    self.schema
                ));
            }
        }
    }
    let flow = workloads::w1_flow(n, &workloads::step());
    repeat(repeats, || {
        let guard = DropSchema {
            url,
            schema: format!("taskflow_compare_{}", uuid::Uuid::new_v4().simple()),
        };
        let records = taskflow::PostgresBackend::connect_in_schema(url, &guard.schema)?;
        let (elapsed, outcome) =
            build_and_run(OurEngine::Serial, &flow, json!({ "x": 0 }), records)?;
        expect_success(outcome)?;
        Ok(elapsed)
    })
}

/// W5: `n` atoms that each sleep 10 ms, on the parallel engine with
/// `workers` threads; the whole run in seconds.
pub fn sleeping(n: usize, workers: usize, repeats: Repeats) -> Result<Summary, BenchError> {
    let sleeper = task_fn(|_| {
        std::thread::sleep(Duration::from_millis(10));
        Ok(json!(1))
    });
    let flow: Flow = Unordered::new("w5")
        .add_all((0..n).map(|i| atom(format!("t{i}"), sleeper.clone())))
        .into();
    repeat(repeats, || {
        let start = Instant::now();
        let mut engine = Engine::builder(flow.clone())
            .executor(Parallel::new(workers)?)
            .build()?;
        expect_success(engine.run())?;
        Ok(start.elapsed())
    })
}

/// The name the table gives the tokio executor's rows.
#[cfg(feature = "peers")]
pub const TOKIO: &str = "taskflow-rs tokio";

/// The tokio runtime of [`WORKERS`] worker threads every tokio-executor
/// run shares (made once, as the rayon pool is).
#[cfg(feature = "peers")]
pub fn shared_runtime() -> Result<&'static tokio::runtime::Runtime, BenchError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| BenchError::Setup(format!("tokio runtime: {e}")))
}

/// Builds `flow` on the tokio executor (the shared runtime) with `store`
/// and a memory backend, writes its records and awaits `run_async`;
/// returns the time that took.
#[cfg(feature = "peers")]
fn build_and_run_async(
    flow: &Flow,
    store: Value,
) -> Result<(Duration, Result<FlowState, EngineError>), BenchError> {
    let runtime = shared_runtime()?;
    let start = Instant::now();
    let mut built = Engine::builder(flow.clone())
        .executor(taskflow::Tokio::with_handle(runtime.handle().clone()))
        .store(store)
        .persistence(MemoryBackend::new())
        .build()?;
    built.prepare()?;
    let outcome = runtime.block_on(built.run_async());
    let elapsed = start.elapsed();
    drop(built);
    Ok((elapsed, outcome))
}

/// W1, W2 or W3 with `n` async no-op tasks on the tokio executor
/// (`run_async` on a runtime of [`WORKERS`] threads), memory backend.
#[cfg(feature = "peers")]
pub fn in_memory_async(workload: u8, n: usize, repeats: Repeats) -> Result<Summary, BenchError> {
    use workloads::asynchronous;
    let (flow, store) = match workload {
        1 => (asynchronous::w1_flow(n), json!({ "x": 0 })),
        2 => (asynchronous::w2_flow(n), json!({})),
        3 => (asynchronous::w3_flow(&workloads::layered_dag(n)), json!({})),
        other => {
            return Err(BenchError::Setup(format!(
                "W{other} is not an in-memory DAG"
            )))
        }
    };
    repeat(repeats, || {
        let (elapsed, outcome) = build_and_run_async(&flow, store.clone())?;
        expect_success(outcome)?;
        Ok(elapsed)
    })
}

/// An async task that sleeps 10 ms on tokio's timer.
#[cfg(feature = "peers")]
struct Nap;

#[cfg(feature = "peers")]
#[taskflow::async_trait]
impl taskflow::AsyncTask for Nap {
    async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(json!(1))
    }
}

/// W5 widened: `n` async tasks that each sleep 10 ms, unordered, on the
/// tokio executor (a runtime of [`WORKERS`] threads); the whole run in
/// seconds.
#[cfg(feature = "peers")]
pub fn sleeping_async(n: usize, repeats: Repeats) -> Result<Summary, BenchError> {
    let flow: Flow = Unordered::new("w5")
        .add_all((0..n).map(|i| taskflow::async_atom(format!("t{i}"), Nap)))
        .into();
    repeat(repeats, || {
        let (elapsed, outcome) = build_and_run_async(&flow, json!({}))?;
        expect_success(outcome)?;
        Ok(elapsed)
    })
}

/// W6: a linear flow of `n` atoms whose last one fails, so every atom
/// before it reverts; serial engine, memory backend.
pub fn all_revert(n: usize, repeats: Repeats) -> Result<Summary, BenchError> {
    let flow = workloads::w6_flow(n);
    repeat(repeats, || {
        let (elapsed, outcome) = build_and_run(
            OurEngine::Serial,
            &flow,
            json!({ "x": 0 }),
            MemoryBackend::new(),
        )?;
        match outcome {
            Err(EngineError::Failed {
                state: FlowState::Reverted,
                ..
            }) => Ok(elapsed),
            Err(e) => Err(e.into()),
            Ok(state) => Err(BenchError::Setup(format!(
                "W6 should end REVERTED, it ended {state}"
            ))),
        }
    })
}

/// W7: a `Times(5)` retry around a task that fails 4 times, then succeeds;
/// serial engine, memory backend; the whole run in seconds.
pub fn retried(repeats: Repeats) -> Result<Summary, BenchError> {
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky: FnTask = {
        let calls = calls.clone();
        task_fn(move |_| {
            let call = calls.fetch_add(1, Ordering::Relaxed) + 1;
            if call < 5 {
                Err(TaskError::msg(format!("flaky {call}")))
            } else {
                Ok(json!(call))
            }
        })
    };
    let flow: Flow = Linear::new("w7")
        .add(atom("flaky", flaky))
        .with_retry(Times::new(5))
        .into();
    repeat(repeats, || {
        calls.store(0, Ordering::Relaxed);
        let (elapsed, outcome) =
            build_and_run(OurEngine::Serial, &flow, json!({}), MemoryBackend::new())?;
        expect_success(outcome)?;
        Ok(elapsed)
    })
}

/// W8: `jobs` jobs posted to a SQLite board (`Normal` durability), then
/// claimed, run and consumed by `conductors` conductors; jobs per second.
pub fn jobboard_sqlite(
    jobs: usize,
    conductors: usize,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    jobboard(jobs, conductors, repeats, || {
        let dir = tempfile::tempdir()?;
        let board = SqliteBoard::open_with(
            dir.path().join("jobs.db"),
            BoardOptions::default(),
            Durability::Normal,
        )?;
        Ok((Arc::new(board), Box::new(dir)))
    })
}

#[cfg(feature = "redis")]
/// W8 on the Redis board at `url`, under a fresh key prefix per run
/// (removed after it).
pub fn jobboard_redis(
    url: &str,
    jobs: usize,
    conductors: usize,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    /// Removes the run's keys when dropped.
    struct Cleanup(Arc<RedisBoard>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.destroy();
        }
    }
    jobboard(jobs, conductors, repeats, || {
        let prefix = format!("taskflow-compare-{}", uuid::Uuid::new_v4().simple());
        let board = Arc::new(RedisBoard::connect(url, &prefix, BoardOptions::default())?);
        Ok((board.clone(), Box::new(Cleanup(board))))
    })
}

#[cfg(feature = "postgres")]
/// W8 on a PostgreSQL board in the database at `url`, in a fresh schema per
/// run (its tables dropped after it), with `synchronous_commit` off for the
/// board's sessions: as the SQLite row's `Normal` durability, a crash of
/// the server may forget the last commits but never corrupts the board.
/// (With it on, the figure is the server's fsync rate over the two or three
/// commits a job takes: 120-160 jobs/s on the 2-core machine, where a bare
/// `pgbench` update loop commits about 315 times a second.)
pub fn jobboard_postgres(
    url: &str,
    jobs: usize,
    conductors: usize,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    /// Drops the run's board when dropped.
    struct Cleanup(Arc<PostgresBoard>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.destroy();
        }
    }
    jobboard(jobs, conductors, repeats, || {
        let schema = format!("taskflow_compare_{}", uuid::Uuid::new_v4().simple());
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20synchronous_commit%3Doff");
        let board = Arc::new(PostgresBoard::connect_in_schema(
            &url,
            &schema,
            BoardOptions::default(),
        )?);
        Ok((board.clone(), Box::new(Cleanup(board))))
    })
}

#[cfg(feature = "etcd")]
/// W8 on the etcd board at `endpoints`, under a fresh key prefix per run
/// (removed after it).
pub fn jobboard_etcd(
    endpoints: &str,
    jobs: usize,
    conductors: usize,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    /// Removes the run's keys when dropped.
    struct Cleanup(Arc<EtcdBoard>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.destroy();
        }
    }
    jobboard(jobs, conductors, repeats, || {
        let prefix = format!("taskflow-compare/{}", uuid::Uuid::new_v4().simple());
        let board = Arc::new(EtcdBoard::connect(
            endpoints,
            &prefix,
            BoardOptions::default(),
        )?);
        Ok((board.clone(), Box::new(Cleanup(board))))
    })
}

#[cfg(feature = "zookeeper")]
/// W8 on the ZooKeeper board at `hosts`, under a fresh root node per run
/// (removed after it).
pub fn jobboard_zookeeper(
    hosts: &str,
    jobs: usize,
    conductors: usize,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    /// Removes the run's nodes when dropped.
    struct Cleanup(Arc<ZookeeperBoard>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.destroy();
        }
    }
    jobboard(jobs, conductors, repeats, || {
        let root = format!("/taskflow-compare/{}", uuid::Uuid::new_v4().simple());
        let board = Arc::new(ZookeeperBoard::connect(
            hosts,
            &root,
            BoardOptions::default(),
        )?);
        Ok((board.clone(), Box::new(Cleanup(board))))
    })
}

/// A board for one W8 run, and what must live as long as it.
type BoardAndGuard = (Arc<dyn JobBoard>, Box<dyn std::any::Any>);

fn jobboard(
    jobs: usize,
    conductors: usize,
    repeats: Repeats,
    make: impl Fn() -> Result<BoardAndGuard, BenchError>,
) -> Result<Summary, BenchError> {
    let per_run = repeat(repeats, || {
        let (board, _guard) = make()?;
        let records: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        workloads::post_noop_jobs(&*board, &*records, jobs)?;
        let start = Instant::now();
        let done_at = workloads::drain_board(board.clone(), records, conductors)?;
        let elapsed = done_at.duration_since(start);
        if !board.iterjobs(false)?.is_empty() {
            return Err(BenchError::Setup("W8: jobs left on the board".into()));
        }
        Ok(elapsed)
    })?;
    // Seconds per run become jobs per second (the median of a monotone map
    // is the map of the median; min and max swap).
    Ok(Summary {
        median: jobs as f64 / per_run.median,
        min: jobs as f64 / per_run.max,
        max: jobs as f64 / per_run.min,
        count: per_run.count,
    })
}

/// What W9's resume process reported.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ResumeReport {
    /// Seconds from spawning the resume process to its exit.
    pub process_s: f64,
    /// Seconds inside it to open the backend, load, compile and prepare.
    pub startup_s: f64,
    /// Seconds inside it to run the remaining atoms.
    pub run_s: f64,
    /// Tasks that ran in both processes (only the interrupted one may).
    pub ran_twice: Vec<String>,
    /// The flow's final value.
    pub result: i64,
}

/// W9: a 100-atom linear flow on SQLite is SIGKILLed inside atom
/// `crash_at`, then resumed by a new process; `exe` is this command's
/// binary (it runs itself as both children).
pub fn resume(exe: &Path, n: usize, crash_at: usize) -> Result<ResumeReport, BenchError> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("w9.db");
    let log = dir.path().join("ran.log");
    let mut first = Command::new(exe)
        .args(["child", "w9-run"])
        .arg(&db)
        .arg(&log)
        .args([n.to_string(), crash_at.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let lines = match first.stdout.take() {
        Some(out) => crate::child::lines_until(out, "blocked")?,
        None => Vec::new(),
    };
    let flow_detail = lines
        .iter()
        .find_map(|l| l.strip_prefix("flow-detail "))
        .map(str::to_string);
    let (Some(flow_detail), true) = (flow_detail, lines.iter().any(|l| l == "blocked")) else {
        let _ = first.kill();
        return Err(BenchError::Setup(format!(
            "W9: the first process did not reach atom t{crash_at} (it said {lines:?})"
        )));
    };
    first.kill()?; // SIGKILL, mid-atom
    first.wait()?;
    let start = Instant::now();
    let second = Command::new(exe)
        .args(["child", "w9-resume"])
        .arg(&db)
        .args([n.to_string(), flow_detail])
        .stderr(Stdio::inherit())
        .output()?;
    let process_s = start.elapsed().as_secs_f64();
    if !second.status.success() {
        return Err(BenchError::Setup(format!(
            "W9: the resume process failed ({})",
            second.status
        )));
    }
    let inner: crate::child::ResumeInner = crate::child::last_json(&second.stdout)?;
    let ran = std::fs::read_to_string(&log)?;
    let mut seen = std::collections::HashSet::new();
    let mut ran_twice: Vec<String> = ran
        .lines()
        .filter(|name| !seen.insert(*name))
        .map(str::to_string)
        .collect();
    ran_twice.sort();
    ran_twice.dedup();
    Ok(ResumeReport {
        process_s,
        startup_s: inner.startup_s,
        run_s: inner.run_s,
        ran_twice,
        result: inner.result,
    })
}

/// W10: the peak resident memory, in MiB, of a process that builds and
/// runs W1 with `n` atoms on the serial engine (memory backend).
pub fn peak_memory(exe: &Path, n: usize) -> Result<f64, BenchError> {
    let out = Command::new(exe)
        .args(["child", "w10"])
        .arg(n.to_string())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "W10: the child failed ({})",
            out.status
        )));
    }
    let report: crate::child::MemoryReport = crate::child::last_json(&out.stdout)?;
    Ok(report.peak_rss_kib as f64 / 1024.0)
}
