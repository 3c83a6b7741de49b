//! W1-W3 of shared/BENCHMARKS.md on every in-memory executor, side by side,
//! each timed as a user pays it (the graph or engine built, run and dropped
//! in one timed call):
//!
//! * `floor_rayon`: the bare rayon DAG executor ([`taskflow_bench::floor`]),
//!   2 threads: the floor;
//! * `dagx_inline`, `dagx_parallel`: dagx on the calling thread and on a
//!   2-worker Tokio runtime ([`taskflow_bench::peers::dagx::DagxMode`]);
//! * `dagrs`: dagrs on the same 2-worker runtime;
//! * `serial`, `parallel`: our engines (parallel on a 2-thread pool made
//!   once and passed in, as [`taskflow_bench::ours::OurEngine`] does) on
//!   the flows of [`taskflow_bench::workloads`], memory backend, every
//!   checkpoint included: `Engine::builder`, `build`, `prepare`, `run`.
//!
//! Groups `w1_chain` (each node needs the previous one), `w2_independent`
//! and `w3_layered_dag` (width 10, 1-3 inputs from the layer before), for
//! N = 100, 1,000 and 10,000; throughput is in atoms.
//!
//! `cargo bench -p taskflow-bench --bench peers` (add `-- --quick` for a
//! fast pass).

#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use taskflow::prelude::*;
use taskflow::MemoryBackend;
use taskflow_bench::floor;
use taskflow_bench::ours::OurEngine;
use taskflow_bench::peers::{self, dagrs, dagx, dagx::DagxMode, WORKERS};
use taskflow_bench::workloads::{layered_dag, step, w1_flow, w2_flow, w3_flow};

const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// One workload: its shape for the peers and its flow for our engines.
struct Workload {
    group: &'static str,
    shape: fn(usize) -> Vec<Vec<usize>>,
    flow: fn(&[Vec<usize>]) -> Flow,
    /// W1's first task takes `x` from the store.
    seeded: bool,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        group: "w1_chain",
        shape: peers::chain,
        flow: |preds| w1_flow(preds.len(), &step()),
        seeded: true,
    },
    Workload {
        group: "w2_independent",
        shape: peers::independent,
        flow: |preds| w2_flow(preds.len()),
        seeded: false,
    },
    Workload {
        group: "w3_layered_dag",
        shape: layered_dag,
        flow: w3_flow,
        seeded: false,
    },
];

fn bench_workload(c: &mut Criterion, w: &Workload) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("pool");
    let rt = peers::runtime().expect("runtime");
    let mut group = c.benchmark_group(w.group);
    // Ten samples of equal iteration counts: the slowest entry (dagrs at
    // N = 10,000, about 0.5 s an iteration here) then costs seconds, not a
    // minute; no entry takes over 2 s an iteration, so none is skipped.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let preds = (w.shape)(n);
        let id = |name| BenchmarkId::new(name, n);

        group.bench_function(id("floor_rayon"), |b| {
            b.iter(|| black_box(floor::run(&pool, &preds)))
        });
        for (name, mode) in [
            ("dagx_inline", DagxMode::Inline),
            ("dagx_parallel", DagxMode::Parallel),
        ] {
            group.bench_function(id(name), |b| {
                b.iter(|| black_box(dagx::run(&preds, mode).expect("dagx runs")))
            });
        }
        group.bench_function(id("dagrs"), |b| {
            b.iter(|| black_box(dagrs::run(rt, &preds).expect("dagrs runs")))
        });

        let flow = (w.flow)(&preds);
        ours(&mut group, "serial", &flow, n, w.seeded, OurEngine::Serial);
        ours(
            &mut group,
            "parallel",
            &flow,
            n,
            w.seeded,
            OurEngine::Parallel,
        );
    }
    group.finish();
}

/// Times one of our engines on `flow`: builder, build, prepare and run in
/// one call, as the peers are timed.
fn ours(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    flow: &Flow,
    n: usize,
    seeded: bool,
    engine: OurEngine,
) {
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter(|| {
            let mut builder = engine
                .configure(Engine::builder(flow.clone()))
                .expect("engine configured");
            if seeded {
                builder = builder.store(json!({ "x": 0 }));
            }
            let mut engine = builder
                .persistence(MemoryBackend::new())
                .build()
                .expect("builds");
            engine.prepare().expect("records written");
            engine.run().expect("runs");
            engine
        })
    });
}

fn peers_w1_w3(c: &mut Criterion) {
    for w in &WORKLOADS {
        bench_workload(c, w);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .nresamples(10_000);
    targets = peers_w1_w3
}
criterion_main!(benches);
