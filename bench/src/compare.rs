//! The comparison run: every workload on every executor, back to back, in
//! one process (and its children), then one table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::measure::{repeat, Measurement, Repeats, Summary, Unit};
use crate::ours::{self, DurableBackend, OurEngine};
use crate::peers::{self, dagx::DagxMode};
use crate::python::{PyRun, PythonSide};
use crate::report::{FLOOR, PYTHON};
use crate::{floor, sqlite_floor, workloads, BenchError};
use taskflow::persistence::Durability;

/// What to compare, and where to write the results.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The sizes of W1-W3 (W6 uses those up to 1,000, W4 those up to
    /// 10,000).
    pub sizes: Vec<usize>,
    /// The workloads to run, `W1` to `W10` and `W12`.
    pub workloads: Vec<String>,
    /// Run Python TaskFlow too.
    pub python: bool,
    /// The virtualenv for Python TaskFlow (made if missing).
    pub venv: PathBuf,
    /// The interpreter that makes the virtualenv.
    pub python3: String,
    /// Python runs predicted to take longer than this are skipped (its
    /// per-atom cost grows with N).
    pub python_max_run: Duration,
    /// Run dagx, dagrs and the floor on W1-W3, and apalis on W8.
    pub peers: bool,
    /// How often to repeat a figure of ours or a peer's.
    pub repeats: Repeats,
    /// How often to repeat a Python run (at most; long runs run once).
    pub python_repeats: usize,
    /// The Redis server for W8's Redis board, `None` to leave it out.
    pub redis_url: Option<String>,
    /// The PostgreSQL database for W8's PostgreSQL board (a fresh schema
    /// per run), `None` to leave it out.
    pub postgres_url: Option<String>,
    /// The etcd endpoints for W8's etcd board (feature `etcd`), `None` to
    /// leave it out.
    pub etcd_url: Option<String>,
    /// The ZooKeeper hosts for W8's ZooKeeper board (feature `zookeeper`),
    /// `None` to leave it out.
    pub zookeeper_hosts: Option<String>,
    /// The RabbitMQ broker of W11 (feature `amqp`), `None` to leave W11
    /// out.
    pub amqp_url: Option<String>,
    /// W11's sizes.
    pub w11_sizes: Vec<usize>,
    /// Where the Markdown, JSON and SVG go.
    pub out: PathBuf,
}

/// Runs the comparison; returns every figure and notes on what was left out.
pub fn compare(options: &CompareOptions) -> Result<(Vec<Measurement>, Vec<String>), BenchError> {
    let mut run = Comparison {
        options,
        python: None,
        all: Vec::new(),
        notes: Vec::new(),
        exe: std::env::current_exe()?,
    };
    if options.python {
        let side = PythonSide::prepare(&options.venv, &options.python3)?;
        run.notes.push(format!(
            "Python TaskFlow {} (from PyPI, in {})",
            side.taskflow_version()?,
            options.venv.display()
        ));
        run.python = Some(side);
    }
    for workload in &options.workloads {
        let started = Instant::now();
        match workload.as_str() {
            "W1" | "W2" | "W3" => run.dag_workload(workload)?,
            "W4" => run.w4()?,
            "W5" => run.w5()?,
            "W6" => run.w6()?,
            "W7" => run.w7()?,
            "W8" => run.w8()?,
            "W9" => run.w9()?,
            "W10" => run.w10()?,
            #[cfg(feature = "amqp")]
            "W11" => run.w11()?,
            #[cfg(feature = "service")]
            "W12" => run.w12()?,
            other => return Err(BenchError::Setup(format!("unknown workload {other}"))),
        }
        eprintln!(
            "compare: {workload} done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok((run.all, run.notes))
}

struct Comparison<'a> {
    options: &'a CompareOptions,
    python: Option<PythonSide>,
    all: Vec<Measurement>,
    notes: Vec<String>,
    exe: PathBuf,
}

impl Comparison<'_> {
    /// A Python run of `workload` with `n` atoms on the serial engine and
    /// the memory backend, repeated as the options say.
    fn py_run(&self, workload: &'static str, n: usize) -> PyRun<'static> {
        PyRun {
            workload,
            n,
            workers: None,
            backend: "memory",
            url: None,
            dag: None,
            repeat: self.options.python_repeats,
        }
    }

    /// Records `summary` (seconds per run) as µs per atom of `n` atoms.
    fn per_atom(&mut self, workload: &str, n: usize, setting: &str, executor: &str, s: Summary) {
        let scale = 1e6 / n as f64;
        self.push(
            workload,
            n,
            setting,
            executor,
            s,
            scale,
            Unit::MicrosPerAtom,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        workload: &str,
        n: usize,
        setting: &str,
        executor: &str,
        s: Summary,
        scale: f64,
        unit: Unit,
    ) {
        let m = Measurement {
            workload: workload.into(),
            n,
            setting: setting.into(),
            executor: executor.into(),
            value: s.median * scale,
            min: s.min * scale,
            max: s.max * scale,
            runs: s.count,
            unit,
        };
        eprintln!(
            "compare: {workload} N={n} {setting} {executor}: {:.3} {}",
            m.value,
            unit.label()
        );
        self.all.push(m);
    }

    /// Runs a Python workload unless its run is predicted to be too long
    /// from the last size it ran (TaskFlow's cost per atom grows with N, so
    /// the prediction is quadratic).
    fn python_run(
        &mut self,
        run: &PyRun<'_>,
        last: &mut Option<(usize, f64)>,
    ) -> Result<Option<Summary>, BenchError> {
        let Some(side) = &self.python else {
            return Ok(None);
        };
        if let Some((prev_n, prev_s)) = *last {
            let ratio = run.n as f64 / prev_n as f64;
            let predicted = prev_s * ratio * ratio;
            if predicted > self.options.python_max_run.as_secs_f64() {
                self.notes.push(format!(
                    "Python TaskFlow was not run on {} N={} {}: a run would take about {:.0} s \
                     (N={} took {:.1} s, and its cost per atom grows with N).",
                    run.workload,
                    run.n,
                    run.workers
                        .map(|w| format!("parallel ({w} threads)"))
                        .unwrap_or_default(),
                    predicted,
                    prev_n,
                    prev_s
                ));
                return Ok(None);
            }
        }
        let summary = side.run(run)?;
        *last = Some((run.n, summary.median));
        Ok(Some(summary))
    }

    fn dag_workload(&mut self, workload: &str) -> Result<(), BenchError> {
        let number: u8 = workload[1..].parse().unwrap_or(0);
        let dag_file = tempfile::NamedTempFile::new()?;
        let mut python_serial = None;
        let mut python_parallel = None;
        for &n in &self.options.sizes {
            let preds = match number {
                1 => peers::chain(n),
                2 => peers::independent(n),
                _ => workloads::layered_dag(n),
            };
            std::fs::write(dag_file.path(), serde_json::to_string(&preds)?)?;
            let base = PyRun {
                workload,
                dag: (number == 3).then(|| dag_file.path()),
                ..self.py_run("", n)
            };
            if let Some(s) = self.python_run(&base, &mut python_serial)? {
                self.per_atom(workload, n, "memory", PYTHON, s);
            }
            if number != 1 {
                let parallel = PyRun {
                    workers: Some(ours::WORKERS),
                    ..base
                };
                if let Some(s) = self.python_run(&parallel, &mut python_parallel)? {
                    self.per_atom(workload, n, "memory", &format!("{PYTHON} parallel"), s);
                }
            }
            for engine in OurEngine::ALL {
                // Tens of µs per atom over the in-process transport.
                if engine == OurEngine::Worker && n > 10_000 {
                    continue;
                }
                let s = ours::in_memory(number, n, engine, self.options.repeats)?;
                self.per_atom(workload, n, "memory", engine.name(), s);
            }
            let s = ours::in_memory_async(number, n, self.options.repeats)?;
            let tokio = format!("{} (async tasks)", ours::TOKIO);
            self.per_atom(workload, n, "memory", &tokio, s);
            if self.options.peers {
                self.peers(workload, n, &preds)?;
            }
        }
        Ok(())
    }

    fn peers(&mut self, workload: &str, n: usize, preds: &[Vec<usize>]) -> Result<(), BenchError> {
        let pool = ours::shared_pool()?;
        let rt = peers::runtime()?;
        let expected = floor::run(&pool, preds);
        type Peer<'p> = (&'static str, Box<dyn Fn() -> Result<i64, BenchError> + 'p>);
        let executors: [Peer<'_>; 4] = [
            (FLOOR, Box::new(|| Ok(floor::run(&pool, preds)))),
            (
                "dagx inline",
                Box::new(|| Ok(peers::dagx::run(preds, DagxMode::Inline)?)),
            ),
            (
                "dagx parallel",
                Box::new(|| Ok(peers::dagx::run(preds, DagxMode::Parallel)?)),
            ),
            ("dagrs", Box::new(|| Ok(peers::dagrs::run(rt, preds)?))),
        ];
        for (name, run) in executors {
            let s = repeat::<BenchError>(self.options.repeats, || {
                let start = Instant::now();
                let got = run()?;
                let elapsed = start.elapsed();
                if got != expected {
                    return Err(BenchError::Setup(format!(
                        "{name} computed {got} on {workload} N={n}, the floor {expected}"
                    )));
                }
                Ok(elapsed)
            })?;
            self.per_atom(workload, n, "memory", name, s);
        }
        Ok(())
    }

    fn small_sizes(&self) -> Vec<usize> {
        self.options
            .sizes
            .iter()
            .copied()
            .filter(|&n| n <= 1_000)
            .collect()
    }

    /// W4: W1 with checkpoints, per backend and durability setting, ours
    /// and Python TaskFlow's side by side (Python up to N=1,000, ours on
    /// SQLite `Normal` and PostgreSQL with `synchronous_commit` off up to
    /// N=10,000, to show the cost is flat; the fsync-bound settings at
    /// N=100). On PostgreSQL both sides run on the same database with the
    /// same session setting, from the same URL.
    fn w4(&mut self) -> Result<(), BenchError> {
        let pg = self.w4_postgres_urls();
        let mut last: Vec<Option<(usize, f64)>> = vec![None; 2 + pg.len()];
        let sizes: Vec<usize> = self
            .options
            .sizes
            .iter()
            .copied()
            .filter(|&n| n <= 10_000)
            .collect();
        for n in sizes {
            if n <= 1_000 {
                let python_backends = [("sqlite", "sqlite", None), ("dir", "dir", None)]
                    .into_iter()
                    .chain(
                        pg.iter()
                            .map(|(name, url, _)| ("postgres", *name, Some(url.as_str()))),
                    );
                for (i, (backend, setting, url)) in python_backends.enumerate() {
                    let run = PyRun {
                        backend,
                        url,
                        ..self.py_run("W4", n)
                    };
                    if let Some(s) = self.python_run(&run, &mut last[i])? {
                        self.per_atom("W4", n, setting, PYTHON, s);
                    }
                }
            }
            for backend in DurableBackend::ALL {
                // fsync-bound: about 0.5-2 ms per atom, so N=100 tells it.
                if backend != DurableBackend::SqliteNormal && n > 100 {
                    continue;
                }
                let s = ours::checkpointed(n, backend, self.options.repeats)?;
                self.per_atom("W4", n, backend.name(), OurEngine::Serial.name(), s);
                if self.options.peers {
                    self.w4_floor(n, backend)?;
                }
            }
            #[cfg(feature = "postgres")]
            for (name, url, fsync_bound) in &pg {
                if *fsync_bound && n > 100 {
                    continue;
                }
                let s = ours::checkpointed_postgres(n, url, self.options.repeats)?;
                self.per_atom("W4", n, name, OurEngine::Serial.name(), s);
            }
        }
        Ok(())
    }

    /// W4's floor on SQLite (`sqlite_floor`), on the row of `backend` if
    /// it is a SQLite one.
    fn w4_floor(&mut self, n: usize, backend: DurableBackend) -> Result<(), BenchError> {
        let durability = match backend {
            DurableBackend::SqliteNormal => Durability::Normal,
            DurableBackend::SqliteFull => Durability::Full,
            DurableBackend::Dir => return Ok(()),
        };
        let s = repeat::<BenchError>(self.options.repeats, || {
            let dir = tempfile::tempdir()?;
            sqlite_floor::checkpoints(&dir.path().join("floor.db"), n, durability)
        })?;
        self.per_atom("W4", n, backend.name(), sqlite_floor::SQLITE_FLOOR, s);
        Ok(())
    }

    /// W4's PostgreSQL settings: the row's name, the URL (the session
    /// setting in its `options`), and whether a commit waits for the
    /// server's fsync. Empty without a PostgreSQL server.
    fn w4_postgres_urls(&self) -> Vec<(&'static str, String, bool)> {
        let Some(url) = &self.options.postgres_url else {
            return Vec::new();
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        [
            ("postgres (synchronous_commit on)", "on", true),
            ("postgres (synchronous_commit off)", "off", false),
        ]
        .into_iter()
        .map(|(name, setting, fsync_bound)| {
            (
                name,
                format!("{url}{sep}options=-c%20synchronous_commit%3D{setting}"),
                fsync_bound,
            )
        })
        .collect()
    }

    fn w5(&mut self) -> Result<(), BenchError> {
        for workers in [1, 2, 8, 32] {
            let setting = format!("max_workers {workers}");
            if let Some(side) = &self.python {
                let s = side.run(&PyRun {
                    workers: Some(workers),
                    ..self.py_run("W5", 100)
                })?;
                self.push("W5", 100, &setting, PYTHON, s, 1.0, Unit::Seconds);
            }
            let s = ours::sleeping(100, workers, self.options.repeats)?;
            let name = OurEngine::Parallel.name();
            self.push("W5", 100, &setting, name, s, 1.0, Unit::Seconds);
        }
        // Widened: 10,000 sleeps, as async tasks on a 2-thread tokio
        // runtime, beside the parallel engine with a thread per waiting
        // task it can afford.
        const WIDE: usize = 10_000;
        for workers in [32, 256] {
            let s = ours::sleeping(WIDE, workers, self.options.repeats)?;
            let setting = format!("max_workers {workers}");
            let name = OurEngine::Parallel.name();
            self.push("W5", WIDE, &setting, name, s, 1.0, Unit::Seconds);
        }
        let s = ours::sleeping_async(WIDE, self.options.repeats)?;
        let setting = format!("tokio, {} threads", ours::WORKERS);
        let name = format!("{} (async tasks)", ours::TOKIO);
        self.push("W5", WIDE, &setting, &name, s, 1.0, Unit::Seconds);
        Ok(())
    }

    fn w6(&mut self) -> Result<(), BenchError> {
        let mut last = None;
        for n in self.small_sizes() {
            let run = self.py_run("W6", n);
            if let Some(s) = self.python_run(&run, &mut last)? {
                self.per_atom("W6", n, "memory", PYTHON, s);
            }
            let s = ours::all_revert(n, self.options.repeats)?;
            self.per_atom("W6", n, "memory", OurEngine::Serial.name(), s);
        }
        Ok(())
    }

    fn w7(&mut self) -> Result<(), BenchError> {
        if let Some(side) = &self.python {
            let s = side.run(&self.py_run("W7", 1))?;
            self.push("W7", 1, "memory", PYTHON, s, 1e6, Unit::MicrosPerAtom);
        }
        let s = ours::retried(self.options.repeats)?;
        let name = OurEngine::Serial.name();
        self.push("W7", 1, "memory", name, s, 1e6, Unit::MicrosPerAtom);
        Ok(())
    }

    fn w8(&mut self) -> Result<(), BenchError> {
        const JOBS: usize = 1_000;
        let once = Repeats {
            min_runs: 1,
            max_runs: 3,
            ..self.options.repeats
        };
        for conductors in [1, 4] {
            let setting = format!("{conductors} conductor(s)");
            if let (Some(side), Some(port)) = (&self.python, self.redis_port()) {
                let jobs_per_s = side.jobboard(JOBS, conductors, port)?;
                let s = one(jobs_per_s);
                let name = format!("{PYTHON} (redis, claim + consume only)");
                self.push("W8", JOBS, &setting, &name, s, 1.0, Unit::JobsPerSecond);
            }
            let s = ours::jobboard_sqlite(JOBS, conductors, once)?;
            let name = "taskflow-rs conductor (sqlite board)";
            self.push("W8", JOBS, &setting, name, s, 1.0, Unit::JobsPerSecond);
            #[cfg(feature = "redis")]
            if let Some(url) = self.options.redis_url.clone() {
                match ours::jobboard_redis(&url, JOBS, conductors, once) {
                    Ok(s) => {
                        let name = "taskflow-rs conductor (redis board)";
                        self.push("W8", JOBS, &setting, name, s, 1.0, Unit::JobsPerSecond);
                    }
                    Err(e) => self.notes.push(format!("W8 on Redis left out: {e}")),
                }
                if self.options.peers {
                    match peers::apalis::consume(&url, JOBS, conductors, once) {
                        Ok(s) => {
                            let name = "apalis 1.0 (redis storage, defaults; no flow)";
                            self.push("W8", JOBS, &setting, name, s, 1.0, Unit::JobsPerSecond);
                        }
                        Err(e) => self.notes.push(format!("W8 on apalis left out: {e}")),
                    }
                }
            }
            #[cfg(feature = "postgres")]
            if let Some(url) = self.options.postgres_url.clone() {
                match ours::jobboard_postgres(&url, JOBS, conductors, once) {
                    Ok(s) => {
                        let name = "taskflow-rs conductor (postgres board, synchronous_commit off)";
                        self.push("W8", JOBS, &setting, name, s, 1.0, Unit::JobsPerSecond);
                    }
                    Err(e) => self.notes.push(format!("W8 on PostgreSQL left out: {e}")),
                }
            }
            #[cfg(feature = "etcd")]
            if let Some(url) = self.options.etcd_url.clone() {
                match ours::jobboard_etcd(&url, JOBS, conductors, once) {
                    Ok(s) => {
                        let name = "taskflow-rs conductor (etcd board)";
                        self.push("W8", JOBS, &setting, name, s, 1.0, Unit::JobsPerSecond);
                    }
                    Err(e) => self.notes.push(format!("W8 on etcd left out: {e}")),
                }
            }
            #[cfg(feature = "zookeeper")]
            if let Some(hosts) = self.options.zookeeper_hosts.clone() {
                match ours::jobboard_zookeeper(&hosts, JOBS, conductors, once) {
                    Ok(s) => {
                        let name = "taskflow-rs conductor (zookeeper board)";
                        self.push("W8", JOBS, &setting, name, s, 1.0, Unit::JobsPerSecond);
                    }
                    Err(e) => self.notes.push(format!("W8 on ZooKeeper left out: {e}")),
                }
            }
        }
        self.notes.push(
            "W8: our conductors (Conductor::run, one job at a time, prefetch_jobs(16): claims \
             and consumes in batches) claim, run a one-atom flow (records in memory) and consume; \
             the Python consumers only claim and consume, running no flow; apalis (its Redis \
             storage, defaults, on the same Redis, a fresh queue per run) is pushed the jobs \
             and consumes them with 1 or 4 workers, each job a no-op function. The SQLite board \
             runs with Normal durability and the PostgreSQL board with synchronous_commit \
             off: a crash may forget the last commits, never corrupts the board."
                .into(),
        );
        Ok(())
    }

    fn redis_port(&self) -> Option<u16> {
        let url = self.options.redis_url.as_deref()?;
        let port = url.rsplit(':').next()?.trim_end_matches('/');
        port.parse().ok()
    }

    fn w9(&mut self) -> Result<(), BenchError> {
        const N: usize = 100;
        const CRASH_AT: usize = 50;
        if let Some(side) = &self.python {
            let py = side.resume(N, CRASH_AT)?;
            if !py.ran_twice.is_empty() {
                self.notes
                    .push(format!("W9: Python TaskFlow ran {:?} twice", py.ran_twice));
            }
            self.push(
                "W9",
                N,
                "resume process",
                PYTHON,
                one(py.process_s),
                1.0,
                Unit::Seconds,
            );
            let s = one(py.startup_s);
            self.push(
                "W9",
                N,
                "load + compile + prepare",
                PYTHON,
                s,
                1.0,
                Unit::Seconds,
            );
        }
        let mut process = Vec::new();
        let mut startup = Vec::new();
        for _ in 0..self.options.repeats.min_runs.max(1) {
            let report = ours::resume(&self.exe, N, CRASH_AT)?;
            if !report.ran_twice.is_empty() || report.result != N as i64 {
                return Err(BenchError::Setup(format!(
                    "W9: after the resume, {:?} ran twice and the result is {} (expected none, {N})",
                    report.ran_twice, report.result
                )));
            }
            process.push(report.process_s);
            startup.push(report.startup_s);
        }
        let name = OurEngine::Serial.name();
        if let Some(s) = crate::measure::summarize(&process) {
            self.push("W9", N, "resume process", name, s, 1.0, Unit::Seconds);
        }
        if let Some(s) = crate::measure::summarize(&startup) {
            self.push(
                "W9",
                N,
                "load + compile + prepare",
                name,
                s,
                1.0,
                Unit::Seconds,
            );
        }
        Ok(())
    }

    /// W12: the job service over HTTP, 1 and 2 nodes, beside the bare
    /// board (see [`crate::service`]); one run per figure (about 40 s at
    /// the default sizes, 10 s with `--quick`).
    #[cfg(feature = "service")]
    fn w12(&mut self) -> Result<(), BenchError> {
        use crate::service::{self, ServiceOptions};
        let quick = self.options.repeats.max_runs <= 1;
        let options = ServiceOptions {
            jobs: if quick { 500 } else { 2_000 },
            sample: if quick { 50 } else { 200 },
            ..ServiceOptions::default()
        };
        let all = service::run(&options)?;
        for m in service::measurements(&options, &all) {
            eprintln!(
                "compare: W12 N={} {} {}: {:.3} {}",
                m.n,
                m.setting,
                m.executor,
                m.value,
                m.unit.label()
            );
            self.all.push(m);
        }
        self.notes.push(format!(
            "W12: {} one-task jobs submitted over HTTP by {} client threads, {} workers per node, \
             SQLite board and records (full durability); submit→success of {} jobs one at a \
             time; the bare board does the same with post_flow and a conductor per node, no \
             HTTP. One run per figure. Service ÷ bare: {}.",
            options.jobs,
            options.clients,
            options.workers,
            options.sample,
            all.iter()
                .map(|f| format!(
                    "{} node(s): accepted {}×, drained {}×, p50 submit→success {}×",
                    f.nodes,
                    crate::report::figure(f.service.accepted_per_s / f.bare.accepted_per_s),
                    crate::report::figure(f.service.drained_per_s / f.bare.drained_per_s),
                    crate::report::figure(f.service.success_p50_ms / f.bare.success_p50_ms),
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        self.notes.extend(service::w8_lines(&all));
        Ok(())
    }

    fn w10(&mut self) -> Result<(), BenchError> {
        if let Some(side) = &self.python {
            let mib = side.peak_memory(1_000)?;
            self.push(
                "W10",
                1_000,
                "memory",
                PYTHON,
                one(mib),
                1.0,
                Unit::MebiBytes,
            );
        }
        // The target is at N=100,000; N=1,000,000 shows how it grows.
        for n in [1_000, 100_000, 1_000_000] {
            let mib = ours::peak_memory(&self.exe, n)?;
            let name = OurEngine::Serial.name();
            self.push("W10", n, "memory", name, one(mib), 1.0, Unit::MebiBytes);
        }
        Ok(())
    }
}

#[cfg(feature = "amqp")]
impl Comparison<'_> {
    /// W11: W1 and W2 on the worker engine over RabbitMQ with two worker
    /// processes (see [`crate::w11`]), Python TaskFlow's worker-based
    /// engine on the same broker, and the bound: a bare lapin client's
    /// round trip (one at a time) and pipelined throughput against two
    /// echo processes.
    fn w11(&mut self) -> Result<(), BenchError> {
        use crate::w11;
        let Some(url) = self.options.amqp_url.clone() else {
            self.notes
                .push("W11 left out: no RabbitMQ broker (--amqp none)".into());
            return Ok(());
        };
        const W1: &str = "W1 linear, 2 worker processes";
        const W2: &str = "W2 unordered, 2 worker processes";
        const OURS: &str = "taskflow-rs worker (amqp)";
        // W2's atoms are short: more requests waiting in each worker hide
        // the broker's round trip between one and the next.
        const PREFETCH: usize = 32;
        const OURS_PREFETCH: &str = "taskflow-rs worker (amqp, prefetch 32)";
        let prefix = w11::fresh_prefix("w11");
        let workers = match w11::start_workers(&self.exe, &url, &prefix, ours::WORKERS) {
            Ok(workers) => workers,
            Err(e) => {
                self.notes.push(format!("W11 left out: {e}"));
                return Ok(());
            }
        };
        let sizes = self.options.w11_sizes.clone();
        for &n in &sizes {
            let s = w11::remote(1, n, &url, &prefix, None, self.options.repeats)?;
            self.per_atom("W11", n, W1, OURS, s);
            let s = w11::remote(2, n, &url, &prefix, None, self.options.repeats)?;
            self.rate("W11", n, W2, OURS, s);
            let s = w11::remote(2, n, &url, &prefix, Some(PREFETCH), self.options.repeats)?;
            self.rate("W11", n, W2, OURS_PREFETCH, s);
        }
        drop(workers);
        const BARE_N: usize = 1_000;
        let bare = w11::bare(&self.exe, &url, BARE_N, self.options.repeats)?;
        let name = "bound: bare lapin, one round trip at a time";
        self.per_atom("W11", BARE_N, W1, name, bare.sequential);
        let name = "bound: bare lapin, pipelined to 2 echo processes";
        self.rate("W11", BARE_N, W2, name, bare.pipelined);
        if let Some(side) = self.python.clone() {
            // About 44 ms per atom on W1 and 53 atoms/s on W2, plus about
            // 2 s per run: N=1,000 is the largest that fits a few minutes.
            for n in sizes.iter().copied().filter(|&n| n <= 1_000) {
                let repeat = if n <= 100 {
                    self.options.python_repeats
                } else {
                    1
                };
                let s = side.remote("W1", n, &url, repeat)?;
                self.per_atom("W11", n, W1, PYTHON, s);
                let s = side.remote("W2", n, &url, repeat)?;
                self.rate("W11", n, W2, PYTHON, s);
            }
        }
        self.notes.push(format!(
            "W11: RabbitMQ at {}; two worker processes of {} threads each (ours: this command \
             as `child w11-worker`; Python: TaskFlow's worker-based engine, kombu's amqp \
             transport). A figure covers build, prepare and run; our executor connects and \
             hears from both workers before the clock starts, Python's engine connects and \
             finds its workers inside engine.run(). The bound is a bare lapin client on the \
             same broker and topic exchange (messages of 400 bytes, exclusive auto-delete \
             queues, no acks), against two echo processes (`child w11-echo`). Our engine sends \
             each worker up to 2 requests beyond its threads (`WorkerOptions::prefetch`'s \
             default), 32 in the `prefetch 32` row.",
            taskflow::engine::worker::AmqpTransport::new(url.as_str()).url(),
            ours::WORKERS,
        ));
        Ok(())
    }

    /// Records `summary` (seconds per run of `n` atoms) as atoms per
    /// second.
    fn rate(&mut self, workload: &str, n: usize, setting: &str, executor: &str, s: Summary) {
        let per_s = |seconds: f64| n as f64 / seconds;
        let rates = Summary {
            median: per_s(s.median),
            min: per_s(s.max),
            max: per_s(s.min),
            count: s.count,
        };
        self.push(
            workload,
            n,
            setting,
            executor,
            rates,
            1.0,
            Unit::AtomsPerSecond,
        );
    }
}

/// A single figure as a summary of one run.
fn one(value: f64) -> Summary {
    Summary {
        median: value,
        min: value,
        max: value,
        count: 1,
    }
}
