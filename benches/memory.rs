#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W10 of shared/BENCHMARKS.md, time side: W1 (a linear flow of no-op
//! tasks, each requiring the previous output) at N = 100,000 on the serial
//! engine with the memory backend: build (compile, validate, write the
//! records) + run, and the run alone. The flow itself is made outside the
//! timing.
//!
//! W10's figure, the peak resident memory, is not measured here (criterion
//! keeps several runs' data alive): the comparison command
//! (`cargo run --release -p taskflow-bench -- compare`) measures it in a
//! process of its own.
//!
//! `cargo bench --bench memory`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::prelude::*;
use taskflow::MemoryBackend;
use taskflow_bench::workloads::{step, w1_flow};

const N: usize = 100_000;

fn build(flow: Flow) -> Engine {
    let mut engine = Engine::builder(flow)
        .store(json!({ "x": 0 }))
        .persistence(MemoryBackend::new())
        .build()
        .expect("builds");
    engine.prepare().expect("prepares");
    engine
}

fn w10(c: &mut Criterion) {
    let mut group = c.benchmark_group("w10_linear_100k_serial_memory");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    let flow = w1_flow(N, &step());
    let last = format!("x{}", N - 1);
    group.bench_with_input(BenchmarkId::new("engine_build_and_run", N), &N, |b, &n| {
        b.iter_batched(
            || flow.clone(),
            |flow| {
                let mut engine = build(flow);
                engine.run().expect("runs");
                assert_eq!(engine.storage().fetch(&last), Some(&json!(n)));
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_with_input(BenchmarkId::new("engine_run", N), &N, |b, _| {
        b.iter_batched(
            || build(flow.clone()),
            |mut engine| {
                engine.run().expect("runs");
                black_box(engine)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = w10
}
criterion_main!(benches);
