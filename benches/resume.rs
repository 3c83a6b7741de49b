#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W9 of shared/BENCHMARKS.md: a 100-task linear flow on SQLite, killed
//! after task 50 with task 51 left `RUNNING`, then resumed.
//!
//! The crashed file is made for real, once per variant, before the
//! measurement: this bench binary runs itself again as a child process
//! (told so by an environment variable) that runs the flow and blocks
//! inside task 51 after saying so on its stdout; the parent then SIGKILLs
//! it. Each iteration resumes a fresh copy of the files the crash left
//! (database and WAL; the copy is not timed). The timing covers opening the
//! backend, `Engine::load` / `load_with` (reading the records and
//! rebuilding the flow), compiling, preparing, and running tasks 51-100.
//! Each resume is checked: the last value is 100 and tasks 1-50 never ran
//! again.
//!
//! Variants: `load` (the flow rebuilt from its stored definition of
//! `#[typetag::serde]` tasks) and `load_with` (closures rebuilt by a
//! registered flow factory), both with `Durability::Full`, the default;
//! `load_normal` is `load` with `Durability::Normal`.
//!
//! `cargo bench --bench resume`

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::prelude::*;
use taskflow::Durability;
use taskflow::FlowDetailId;
use uuid::Uuid;

/// Tasks in the flow.
const N: usize = 100;
/// The last task finished before the kill.
const KILLED_AFTER: usize = 50;
/// Set (to `variant:path`) in the child that makes the crashed file.
const CHILD_ENV: &str = "TASKFLOW_BENCH_RESUME_CHILD";
/// What the child prints once it is blocked inside task 51.
const BLOCKED: &str = "blocked in task 51";

/// Whether this process is the child, which blocks in task 51.
static IN_CHILD: AtomicBool = AtomicBool::new(false);
/// Executions of tasks 1-50, and of tasks 51-100.
static EARLY_RUNS: AtomicUsize = AtomicUsize::new(0);
static LATE_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Task `index` (1-based): `x + 1`, counted; task 51 blocks forever in the
/// child.
fn body(index: usize, x: i64) -> Result<Value, TaskError> {
    if index <= KILLED_AFTER {
        EARLY_RUNS.fetch_add(1, Ordering::Relaxed);
    } else {
        LATE_RUNS.fetch_add(1, Ordering::Relaxed);
    }
    if index == KILLED_AFTER + 1 && IN_CHILD.load(Ordering::Relaxed) {
        println!("{BLOCKED}");
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    Ok(json!(x + 1))
}

/// A task its flow's stored definition can rebuild.
#[derive(Serialize, Deserialize)]
struct Step {
    index: usize,
}

#[typetag::serde(name = "bench::resume::Step")]
impl StoredTask for Step {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        body(self.index, ctx.input("x")?)
    }
}

/// The linear flow of tasks `s1..s100`: `si` requires `x{i-1}` (rebound to
/// `x`; `s1` takes `x` from the store) and provides `x{i}`.
fn chain<T: Task>(task: impl Fn(usize) -> T) -> Flow {
    let mut flow = Linear::new("w9");
    for i in 1..=N {
        let mut a = atom(format!("s{i}"), task(i))
            .requires(["x"])
            .provides(format!("x{i}"));
        if i > 1 {
            a = a.rebind("x", format!("x{}", i - 1));
        }
        flow = flow.add(a);
    }
    flow.into()
}

/// The registry of the `load_with` variant: the same chain of closures.
fn registry() -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register("w9", |_| {
        Ok(chain(|i| task_fn(move |ctx| body(i, ctx.input("x")?))))
    });
    registry
}

/// One way to crash and resume.
#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    factory: bool,
    durability: Durability,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        name: "load",
        factory: false,
        durability: Durability::Full,
    },
    Variant {
        name: "load_with",
        factory: true,
        durability: Durability::Full,
    },
    Variant {
        name: "load_normal",
        factory: false,
        durability: Durability::Normal,
    },
];

fn variant(name: &str) -> Variant {
    *VARIANTS
        .iter()
        .find(|v| v.name == name)
        .expect("a known variant")
}

fn open(path: &Path, variant: Variant) -> Arc<dyn Backend> {
    Arc::new(SqliteBackend::open_with(path, variant.durability).expect("sqlite opens"))
}

/// The child: runs the flow into `path`, prints its flow detail id, and
/// blocks inside task 51 until killed.
fn child(spec: &str) -> ! {
    IN_CHILD.store(true, Ordering::Relaxed);
    let (name, path) = spec.split_once(':').expect("variant:path");
    let variant = variant(name);
    let builder = if variant.factory {
        Engine::from_factory(&registry(), "w9", Value::Null).expect("factory builds")
    } else {
        Engine::builder(chain(|index| Step { index }))
    };
    let mut engine = builder
        .store(json!({ "x": 0 }))
        .persistence(open(Path::new(path), variant))
        .build()
        .expect("builds");
    engine.prepare().expect("records written");
    println!("id {}", engine.storage().flow_detail_id());
    let outcome = engine.run();
    panic!("the child was not killed in task 51: {outcome:?}");
}

/// Runs the child for `variant` in `dir` and SIGKILLs it once it blocks in
/// task 51; returns the database left behind and the flow detail id.
fn crash(dir: &Path, variant: Variant) -> (PathBuf, Uuid) {
    let db = dir.join(format!("{}.db", variant.name));
    let mut running = Command::new(std::env::current_exe().expect("bench binary"))
        .env(CHILD_ENV, format!("{}:{}", variant.name, db.display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("child starts");
    let stdout = running.stdout.take().expect("child stdout");
    let mut id = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child stdout readable");
        if let Some(uuid) = line.strip_prefix("id ") {
            id = Some(uuid.parse().expect("a uuid"));
        } else if line == BLOCKED {
            running.kill().expect("SIGKILL sent");
            break;
        }
    }
    let status = running.wait().expect("child reaped");
    assert_eq!(status.signal(), Some(9), "the child died of SIGKILL");
    (db, id.expect("the child printed its flow detail id"))
}

/// A fresh copy of the crashed database (and its WAL) in a new temp dir.
fn copy_crashed(db: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.db");
    std::fs::copy(db, &copy).expect("database copied");
    let wal = db.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, copy.with_extension("db-wal")).expect("WAL copied");
    }
    (dir, copy)
}

/// Opens, loads, builds and runs the crashed flow at `path`; checks the
/// result and that tasks 1-50 did not run again.
fn resume(path: &Path, id: Uuid, variant: Variant, registry: &FlowRegistry) -> Engine {
    let backend = open(path, variant);
    let builder = if variant.factory {
        Engine::load_with(backend, FlowDetailId::from(id), registry)
    } else {
        Engine::load(backend, FlowDetailId::from(id))
    };
    let mut engine = builder.expect("loads").build().expect("builds");
    assert_eq!(engine.run().expect("resumes"), FlowState::Success);
    assert_eq!(engine.storage().fetch("x100"), Some(&json!(N)));
    assert_eq!(
        EARLY_RUNS.load(Ordering::Relaxed),
        0,
        "tasks 1-50 ran again"
    );
    assert_eq!(
        LATE_RUNS.load(Ordering::Relaxed),
        N - KILLED_AFTER,
        "tasks 51-100 ran once each"
    );
    engine
}

fn reset_counters() {
    EARLY_RUNS.store(0, Ordering::Relaxed);
    LATE_RUNS.store(0, Ordering::Relaxed);
}

fn w9(c: &mut Criterion) {
    let crashes = tempfile::tempdir().expect("temp dir");
    let registry = registry();
    let mut group = c.benchmark_group("w9_resume_sqlite");
    group.sample_size(10);
    group.throughput(Throughput::Elements((N - KILLED_AFTER) as u64));
    for variant in VARIANTS {
        let (db, id) = crash(crashes.path(), variant);
        group.bench_function(BenchmarkId::new(variant.name, N), |b| {
            b.iter_batched(
                || {
                    reset_counters();
                    copy_crashed(&db)
                },
                |(dir, copy)| (resume(&copy, id, variant, &registry), dir),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

// `criterion_main!` with one step before: the child never reaches criterion.
fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    let mut criterion = Criterion::default().configure_from_args();
    w9(&mut criterion);
    criterion.final_summary();
}
