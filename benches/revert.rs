#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W6 of shared/BENCHMARKS.md: a linear flow of N tasks (each requiring the
//! previous output, each with a no-op revert) whose last task fails, so the
//! flow reverts every atom, dependents first, and `run()` returns
//! `EngineError::Failed` with state `REVERTED`. Serial and parallel
//! (`max_workers` 2) engines, memory backend; `run()` is timed with the
//! engine built and its records written outside the timing, and on the
//! serial engine also the whole build + run.
//!
//! `cargo bench --bench revert`

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::prelude::*;
use taskflow::{EngineBuilder, FnTask, MemoryBackend};
use taskflow_bench::workloads::chain_flow;

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const WORKERS: usize = 2;

/// How to configure a builder as one engine kind.
type Configure = fn(EngineBuilder) -> EngineBuilder;

fn engines() -> [(&'static str, Configure); 2] {
    [
        ("serial", |b| b),
        ("parallel", |b| {
            b.executor(Parallel::new(WORKERS).expect("pool starts"))
        }),
    ]
}

/// W6: `n` atoms `t0..t{n-1}`; `ti` requires `x{i-1}` (rebound to `x`) and
/// provides `x{i}`; the last one fails. Every revert calls `on_revert(i)`.
fn w6_flow(n: usize, on_revert: Arc<dyn Fn(usize) + Send + Sync>) -> Flow {
    chain_flow("w6", n, |i| {
        let hook = on_revert.clone();
        let task: FnTask = if i + 1 == n {
            task_fn(|_| Err(TaskError::new("Planned", "the last step fails")))
        } else {
            task_fn(|ctx| Ok(json!(ctx.input::<i64>("x")? + 1)))
        };
        task.with_revert(move |_| {
            hook(i);
            Ok(())
        })
    })
}

/// Asserts that `run` reported the flow reverted, not a success or
/// another error.
fn expect_reverted(result: Result<FlowState, EngineError>) -> EngineError {
    let err = result.expect_err("the last task fails, so the run fails");
    assert!(
        matches!(
            err,
            EngineError::Failed {
                state: FlowState::Reverted,
                ..
            }
        ),
        "the flow ends REVERTED: {err}"
    );
    err
}

/// Once, outside the measurement: every atom (the failed one included)
/// reverts exactly once, in reverse order, on each engine.
fn check_semantics() {
    let n = 100;
    for (name, configure) in engines() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let log = order.clone();
        let flow = w6_flow(
            n,
            Arc::new(move |i| log.lock().expect("revert log").push(i)),
        );
        let mut engine = configure(Engine::builder(flow))
            .store(json!({ "x": 0 }))
            .build()
            .expect("builds");
        let err = expect_reverted(engine.run());
        assert_eq!(err.failures().len(), 1, "{name}: one failure: {err}");
        assert_eq!(engine.storage().flow_state(), FlowState::Reverted);
        let order = order.lock().expect("revert log").clone();
        let expected: Vec<usize> = (0..n).rev().collect();
        assert_eq!(order, expected, "{name}: all revert, dependents first");
    }
}

fn w6(c: &mut Criterion) {
    check_semantics();
    let mut group = c.benchmark_group("w6_all_revert");
    group.sample_size(20);
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let reverts = Arc::new(AtomicUsize::new(0));
        let counter = reverts.clone();
        let flow = w6_flow(
            n,
            Arc::new(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            }),
        );
        for (name, configure) in engines() {
            let build = || {
                reverts.store(0, Ordering::Relaxed);
                let mut engine = configure(Engine::builder(flow.clone()))
                    .store(json!({ "x": 0 }))
                    .persistence(MemoryBackend::new())
                    .build()
                    .expect("builds");
                engine.prepare().expect("prepares");
                engine
            };
            // The run alone: execute n atoms, fail, revert all n.
            group.bench_with_input(BenchmarkId::new(format!("{name}_run"), n), &n, |b, &n| {
                b.iter_batched(
                    build,
                    |mut engine| {
                        let err = expect_reverted(engine.run());
                        assert_eq!(reverts.load(Ordering::Relaxed), n, "every atom reverted");
                        (engine, err)
                    },
                    BatchSize::PerIteration,
                )
            });
            if name == "serial" {
                // The whole cycle: compile, validate, write records, run, drop.
                group.bench_with_input(BenchmarkId::new("serial_build_and_run", n), &n, |b, _| {
                    b.iter(|| {
                        let mut engine = build();
                        let err = expect_reverted(engine.run());
                        black_box(err.failures().len())
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = w6
}
criterion_main!(benches);
