#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W7 of shared/BENCHMARKS.md: a `Times(5)` retry around a task that fails 4
//! times then succeeds, so the scope runs 5 attempts (each failed attempt
//! reverts the task and records its failure in the controller's history).
//! Serial and parallel (`max_workers` 2) engines, memory backend; `run()` is
//! timed with the engine built and its records written outside the timing.
//! Beside it on the serial engine, the same flow whose task succeeds at once
//! (one attempt): the difference is the cost of 4 retries.
//!
//! `cargo bench --bench retry`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::prelude::*;
use taskflow::{EngineBuilder, MemoryBackend};

const ATTEMPTS: usize = 5;
const WORKERS: usize = 2;

/// How to configure a builder as one engine kind.
type Configure = fn(EngineBuilder) -> EngineBuilder;

/// W7: atom `flaky` in a scope retried by `Times(5)` (controller `r`);
/// `flaky` fails while `calls` (counted across attempts) is below
/// `succeed_at`, and returns the call number.
fn w7_flow(calls: Arc<AtomicUsize>, succeed_at: usize) -> Flow {
    let flaky = task_fn(move |_| {
        let call = calls.fetch_add(1, Ordering::Relaxed) + 1;
        if call < succeed_at {
            Err(TaskError::new("Flaky", format!("call {call} fails")))
        } else {
            Ok(json!(call))
        }
    })
    .with_revert(|_| Ok(()));
    Linear::new("w7")
        .add(atom("flaky", flaky).provides("out"))
        .with_retry(retry("r", Times::new(ATTEMPTS)).provides("attempt"))
        .into()
}

/// Asserts the run succeeded on attempt `attempts` and that the
/// controller's history holds every attempt.
fn check(engine: &Engine, result: Result<FlowState, EngineError>, attempts: usize) {
    assert_eq!(
        result.expect("the retry rescues the flow"),
        FlowState::Success
    );
    assert_eq!(engine.storage().fetch("out"), Some(&json!(attempts)));
    let history = &engine
        .storage()
        .atom_detail("r")
        .expect("retry atom")
        .history();
    assert_eq!(history.len(), attempts, "one history entry per attempt");
}

/// Once, outside the measurement: the history's attempts are numbered 1-5,
/// the first 4 each hold `flaky`'s failure, the last none.
fn check_history(configure: Configure) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut engine = configure(Engine::builder(w7_flow(calls, ATTEMPTS)))
        .build()
        .expect("builds");
    let result = engine.run();
    check(&engine, result, ATTEMPTS);
    let detail = engine.storage().atom_detail("r").expect("retry atom");
    for (i, attempt) in detail.history().attempts().iter().enumerate() {
        assert_eq!(attempt.result, json!(i + 1), "attempt numbers");
        let failed: Vec<&str> = attempt.failures.keys().map(String::as_str).collect();
        let expected: &[&str] = if i + 1 < ATTEMPTS { &["flaky"] } else { &[] };
        assert_eq!(failed, expected, "failures of attempt {}", i + 1);
    }
    assert_eq!(engine.storage().fetch("attempt"), Some(&json!(ATTEMPTS)));
}

fn w7(c: &mut Criterion) {
    let engines: [(&str, Configure); 2] = [
        ("serial", |b| b),
        ("parallel", |b| {
            b.executor(Parallel::new(WORKERS).expect("pool starts"))
        }),
    ];
    let mut group = c.benchmark_group("w7_retry_times5");
    group.sample_size(50);
    let mut cases = vec![];
    for (name, configure) in engines {
        check_history(configure);
        cases.push((format!("{name}_fail4_then_succeed"), configure, ATTEMPTS));
    }
    cases.push(("serial_first_try".to_owned(), engines[0].1, 1));
    for (name, configure, attempts) in cases {
        group.throughput(Throughput::Elements(attempts as u64));
        let calls = Arc::new(AtomicUsize::new(0));
        let flow = w7_flow(calls.clone(), attempts);
        group.bench_function(BenchmarkId::new(name, attempts), |b| {
            b.iter_batched(
                || {
                    calls.store(0, Ordering::Relaxed);
                    let mut engine = configure(Engine::builder(flow.clone()))
                        .persistence(MemoryBackend::new())
                        .build()
                        .expect("builds");
                    engine.prepare().expect("prepares");
                    engine
                },
                |mut engine| {
                    let result = engine.run();
                    check(&engine, result, attempts);
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = w7
}
criterion_main!(benches);
