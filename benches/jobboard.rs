#![allow(missing_docs)] // criterion_group! makes an undocumented public fn

//! W8 of shared/BENCHMARKS.md: N jobs are posted, then claimed, run (a
//! one-task flow) and consumed by 1 and by 4 conductors, on the SQLite
//! board (`Normal` durability) and, with `--features redis`, the Redis
//! board. Flow records go to a shared memory backend, so the figures are
//! the board's. Throughput is reported in jobs per second.
//!
//! `cargo bench --bench jobboard [--features redis]`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use taskflow::jobboard::{BoardOptions, JobBoard, SqliteBoard};
use taskflow::prelude::*;
use taskflow_bench::workloads::{drain_board, post_noop_jobs};

const JOBS: usize = 200;

fn bench_board(
    c: &mut Criterion,
    name: &str,
    make: &dyn Fn() -> (Arc<dyn JobBoard>, Box<dyn std::any::Any>),
) {
    let mut group = c.benchmark_group("w8_jobboard");
    group.sample_size(10);
    group.throughput(Throughput::Elements(JOBS as u64));
    for conductors in [1, 4] {
        group.bench_with_input(
            BenchmarkId::new(format!("{name}_conductors"), conductors),
            &conductors,
            |b, &n| {
                b.iter_batched(
                    || {
                        let (board, guard) = make();
                        let records: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
                        post_noop_jobs(&*board, &*records, JOBS).expect("posted");
                        (board, records, guard)
                    },
                    |(board, records, guard)| {
                        drain_board(board.clone(), records, n).expect("drained");
                        assert!(board.iterjobs(false).expect("lists").is_empty());
                        guard
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    group.finish();
}

fn w8(c: &mut Criterion) {
    bench_board(c, "sqlite", &|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let board = SqliteBoard::open_with(
            dir.path().join("jobs.db"),
            BoardOptions::default(),
            taskflow::Durability::Normal,
        )
        .expect("board");
        (Arc::new(board), Box::new(dir))
    });
    #[cfg(feature = "redis")]
    bench_board(c, "redis", &|| {
        let url = std::env::var("TASKFLOW_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("taskflow-bench-{}", uuid::Uuid::new_v4().simple());
        let board = Arc::new(
            taskflow::jobboard::RedisBoard::connect(&url, &prefix, BoardOptions::default())
                .expect("redis answers"),
        );
        struct Cleanup(Arc<taskflow::jobboard::RedisBoard>);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = self.0.destroy();
            }
        }
        (board.clone(), Box::new(Cleanup(board)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = w8
}
criterion_main!(benches);
