#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W10 of shared/BENCHMARKS.md, time side: W1 (a linear flow of no-op
//! tasks, each requiring the previous output) at N = 100,000 on the serial
//! engine with the memory backend: build (compile, validate, write the
//! records) + run, and the run alone. The flow itself is made outside the
//! timing.
//!
//! Beside it, what one checkpoint costs the memory backend on a flow
//! detail of N atoms, by the order the writes come in: in order (a linear
//! flow), shuffled within layers of 10 and of 100 (a graph run layer by
//! layer), and at random.
//!
//! W10's figure, the peak resident memory, is not measured here (criterion
//! keeps several runs' data alive): the comparison command
//! (`cargo run --release -p taskflow-bench -- compare`) measures it in a
//! process of its own.
//!
//! `cargo bench --bench memory`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::persistence::AtomWrite;
use taskflow::prelude::*;
use taskflow::{
    AtomDetail, AtomDetailId, AtomKind, AtomState, Epoch, FlowDetail, Intention, LogBook,
    MemoryBackend,
};
use taskflow_bench::workloads::{draws, step, w1_flow};

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

/// `order` shuffled within chunks of `chunk` by a fixed xorshift stream.
fn shuffled(mut order: Vec<usize>, chunk: usize) -> Vec<usize> {
    let mut next = draws(0x1234_5678_9abc_def1);
    for part in order.chunks_mut(chunk) {
        for i in (1..part.len()).rev() {
            part.swap(i, next(i + 1));
        }
    }
    order
}

fn state_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_backend_state_writes_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    let backend = MemoryBackend::new();
    let mut book = LogBook::new("writes");
    let mut flow = FlowDetail::new("f");
    flow.atom_details = (0..N)
        .map(|i| AtomDetail::new(format!("t{i}"), AtomKind::Task))
        .collect();
    let ids: Vec<AtomDetailId> = flow.atom_details.iter().map(|a| a.uuid).collect();
    let flow_id = flow.uuid;
    book.flow_details.push(flow);
    backend.save_logbook(&book).expect("saved");
    let in_order: Vec<usize> = (0..N).collect();
    let orders = [
        ("in_order", in_order.clone()),
        ("layers_of_10", shuffled(in_order.clone(), 10)),
        ("layers_of_100", shuffled(in_order.clone(), 100)),
        ("random", shuffled(in_order, N)),
    ];
    for (name, order) in orders {
        group.bench_function(name, |b| {
            b.iter(|| {
                for &i in &order {
                    let write = AtomWrite::State {
                        atom: ids[i],
                        state: AtomState::Running,
                        intention: Intention::Execute,
                    };
                    backend
                        .save_atom_writes(flow_id, &[write], Epoch::ZERO)
                        .expect("written");
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = w10, state_writes
}
criterion_main!(benches);
