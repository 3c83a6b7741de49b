#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W4 of shared/BENCHMARKS.md: W1 (a linear flow of N no-op tasks, each
//! requiring the previous output) with every checkpoint in a durable
//! backend: SQLite with `Full` and `Normal` durability, and the directory
//! backend. Beside each SQLite run, the floor: a bare loop of N single-row
//! SQLite inserts (each its own transaction) with the same durability.
//!
//! `cargo bench --bench checkpoint`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::prelude::*;
use taskflow::{DirBackend, Durability};

use taskflow_bench::workloads::{step, w1_flow};

const SIZES: [usize; 2] = [100, 1_000];

/// Times `engine.run()` of W1 on a fresh backend made by `backend` in a
/// temp dir; building the engine and writing its records is not timed.
fn bench_run<B: Backend + 'static>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    flow: &Flow,
    n: usize,
    backend: impl Fn(&std::path::Path) -> B,
) {
    group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                let mut engine = Engine::builder(flow.clone())
                    .store(json!({ "x": 0 }))
                    .persistence(backend(dir.path()))
                    .build()
                    .expect("builds");
                engine.prepare().expect("records written");
                (dir, engine)
            },
            |(dir, mut engine)| {
                engine.run().expect("runs");
                (dir, engine)
            },
            BatchSize::PerIteration,
        )
    });
}

fn pragma(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    }
}

fn w4(c: &mut Criterion) {
    let mut group = c.benchmark_group("w4_linear_checkpointed");
    group.sample_size(10);
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        let flow = w1_flow(n, &step());
        for durability in [Durability::Normal, Durability::Full] {
            let name = format!("sqlite_{}", pragma(durability).to_lowercase());
            bench_run(&mut group, &name, &flow, n, |dir| {
                SqliteBackend::open_with(dir.join("w4.db"), durability).expect("opens")
            });
            // The floor: n inserts of a small row, one transaction each.
            group.bench_with_input(
                BenchmarkId::new(format!("{name}_bare_inserts"), n),
                &n,
                |b, &n| {
                    b.iter_batched(
                        || {
                            let dir = tempfile::tempdir().expect("temp dir");
                            let conn = rusqlite::Connection::open(dir.path().join("bare.db"))
                                .expect("opens");
                            conn.pragma_update(None, "journal_mode", "WAL")
                                .expect("wal");
                            conn.pragma_update(None, "synchronous", pragma(durability))
                                .expect("sync");
                            conn.execute(
                                "CREATE TABLE t (id INTEGER PRIMARY KEY, state TEXT, result TEXT)",
                                [],
                            )
                            .expect("table");
                            (dir, conn)
                        },
                        |(dir, conn)| {
                            let mut insert = conn
                                .prepare(
                                    "INSERT INTO t (id, state, result) VALUES (?1, 'SUCCESS', ?2)",
                                )
                                .expect("prepares");
                            for i in 0..n {
                                insert
                                    .execute(rusqlite::params![i as i64, i.to_string()])
                                    .expect("inserts");
                            }
                            drop(insert);
                            black_box((dir, conn))
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
        }
        bench_run(&mut group, "dir", &flow, n, |dir| {
            DirBackend::open(dir.join("records")).expect("opens")
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = w4
}
criterion_main!(benches);
