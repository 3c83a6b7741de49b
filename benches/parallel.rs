#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W2, W3 and W5 of shared/BENCHMARKS.md on every engine, so engines can be
//! compared on the same flows (memory backend, checkpoints included):
//!
//! * W2: an unordered flow of N independent no-op tasks;
//! * W3: a layered random DAG (width 10, 1-3 dependencies on the layer
//!   before);
//! * W5: 100 tasks that each sleep 10 ms, on the serial and worker engines
//!   and on the parallel engine with `max_workers` 1, 2, 8 and 32.
//!
//! The worker engine runs over the in-process transport with two workers
//! of 2 threads each, and only up to N = 1,000.
//!
//! The floor (a bare rayon DAG executor) and the peers (dagx, dagrs) run
//! W1-W3 beside our serial and parallel engines in
//! `cargo bench -p taskflow-bench --bench peers`.
//!
//! `cargo bench --bench parallel`

use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::engine::worker::{
    InProcess, Worker, WorkerConfig, WorkerExecutor, WorkerHandle, WorkerOptions, CLOSURE_TASK_TYPE,
};
use taskflow::prelude::*;
use taskflow::{EngineBuilder, MemoryBackend};

use taskflow_bench::workloads::{layered_dag, w2_flow, w3_flow};

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const WORKERS: usize = 2;

/// How to configure a builder as one engine kind.
type Configure = fn(EngineBuilder) -> EngineBuilder;

/// One in-process transport with two workers of `WORKERS` threads each,
/// shared by every worker-engine run.
fn worker_transport() -> &'static InProcess {
    static SHARED: OnceLock<(InProcess, Vec<WorkerHandle>)> = OnceLock::new();
    &SHARED
        .get_or_init(|| {
            let transport = InProcess::new();
            let workers = ["bench-1", "bench-2"]
                .into_iter()
                .map(|name| {
                    let config = WorkerConfig::new(name, [CLOSURE_TASK_TYPE]).concurrency(WORKERS);
                    Worker::new(&transport, config)
                        .and_then(Worker::spawn)
                        .expect("worker starts")
                })
                .collect();
            (transport, workers)
        })
        .0
}

/// The engines compared: a name and how to configure a builder. The worker
/// engine runs over the in-process transport (requests, replies and
/// routing as over a broker, without the network).
fn engines() -> Vec<(&'static str, Configure)> {
    vec![
        ("serial", |b| b),
        ("parallel", |b| {
            b.executor(Parallel::new(WORKERS).expect("pool starts"))
        }),
        ("worker_in_process", |b| {
            let options = WorkerOptions::with_timeout(Duration::from_secs(60));
            b.executor(WorkerExecutor::new(worker_transport(), options).expect("executor"))
        }),
    ]
}

/// Times `run()` of `flow` on each engine; building is not timed.
fn run_on_engines(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    flow: &Flow,
    n: usize,
) {
    for (name, configure) in engines() {
        // Tens of µs per atom: 10,000 atoms would take seconds per sample.
        if name == "worker_in_process" && n > 1_000 {
            continue;
        }
        group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
            b.iter_batched(
                || {
                    let mut engine = configure(Engine::builder(flow.clone()))
                        .persistence(MemoryBackend::new())
                        .build()
                        .expect("builds");
                    engine.prepare().expect("records written");
                    engine
                },
                |mut engine| {
                    engine.run().expect("runs");
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
}

fn w2(c: &mut Criterion) {
    let mut group = c.benchmark_group("w2_unordered");
    group.sample_size(10);
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        run_on_engines(&mut group, &w2_flow(n), n);
    }
    group.finish();
}

fn w3(c: &mut Criterion) {
    let mut group = c.benchmark_group("w3_layered_dag");
    group.sample_size(10);
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        run_on_engines(&mut group, &w3_flow(&layered_dag(n)), n);
    }
    group.finish();
}

fn w5(c: &mut Criterion) {
    let mut group = c.benchmark_group("w5_sleeping_tasks");
    group.sample_size(10);
    let sleeper = task_fn(|_| {
        std::thread::sleep(Duration::from_millis(10));
        Ok(json!(1))
    });
    let flow: Flow = Unordered::new("w5")
        .add_all((0..100).map(|i| atom(format!("t{i}"), sleeper.clone())))
        .into();
    for (name, configure) in engines()
        .into_iter()
        .filter(|(name, _)| *name != "parallel")
    {
        group.bench_function(BenchmarkId::new(name, 100), |b| {
            b.iter_batched(
                || {
                    configure(Engine::builder(flow.clone()))
                        .build()
                        .expect("builds")
                },
                |mut engine| {
                    engine.run().expect("runs");
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
    for workers in [1, 2, 8, 32] {
        group.bench_with_input(
            BenchmarkId::new("parallel_max_workers", workers),
            &workers,
            |b, &workers| {
                b.iter_batched(
                    || {
                        Engine::builder(flow.clone())
                            .executor(Parallel::new(workers).expect("pool starts"))
                            .build()
                            .expect("builds")
                    },
                    |mut engine| {
                        engine.run().expect("runs");
                        engine
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = w2, w3, w5
}
criterion_main!(benches);
