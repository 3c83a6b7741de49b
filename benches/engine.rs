//! W1 of shared/BENCHMARKS.md: a linear flow of N no-op tasks, each requiring
//! the previous one's output, on the serial engine with the memory backend;
//! beside a plain loop calling the same task closures (the floor).
//!
//! `cargo bench --bench engine`

#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::prelude::*;
use taskflow::{Inputs, MemoryBackend};

use taskflow_bench::workloads::{step, w1_flow};

const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn w1(c: &mut Criterion) {
    let mut group = c.benchmark_group("w1_linear_serial_memory");
    group.sample_size(20);
    let task = step();
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let flow = w1_flow(n, &task);
        let build = || {
            let mut engine = Engine::builder(flow.clone())
                .store(json!({ "x": 0 }))
                .persistence(MemoryBackend::new())
                .build()
                .expect("builds");
            engine.prepare().expect("prepares");
            engine
        };
        // The runtime alone: the engine is built and its records written
        // outside the timing; the run (every checkpoint included) is timed.
        group.bench_with_input(BenchmarkId::new("engine_run", n), &n, |b, _| {
            b.iter_batched(
                build,
                |mut engine| {
                    engine.run().expect("runs");
                    engine
                },
                BatchSize::PerIteration,
            )
        });
        // The whole cycle a user pays: compile, validate, write the records,
        // run, drop.
        group.bench_with_input(BenchmarkId::new("engine_build_and_run", n), &n, |b, _| {
            b.iter(|| {
                let mut engine = build();
                engine.run().expect("runs");
                black_box(engine.storage().fetch("x9").cloned())
            })
        });
        // The floor: the same task closure called n times in a plain loop,
        // each call given the previous output as its input.
        group.bench_with_input(BenchmarkId::new("plain_loop", n), &n, |b, &n| {
            let name: Arc<str> = Arc::from("x");
            b.iter(|| {
                let mut x = Arc::new(json!(0));
                for _ in 0..n {
                    let mut inputs = Inputs::with_capacity(1);
                    inputs.insert(name.clone(), x);
                    let out = task.execute(&mut Context::new("t", &inputs)).expect("runs");
                    x = Arc::new(out);
                }
                black_box(x)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = w1
}
criterion_main!(benches);
