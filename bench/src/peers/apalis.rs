//! W8's Rust job queue: [apalis](https://docs.rs/apalis) with its Redis
//! storage (`apalis-redis`), driven through its public API on the Redis
//! server our Redis board uses: push N no-op jobs, then consume them with
//! 1 or 4 workers (each a `WorkerBuilder` on the storage, its defaults).
//! A run's keys live under a fresh queue name and are removed after it.
//!
//! Timed: from the first worker's start until the last job has run (each
//! worker stops once the N-th job is done). apalis runs no flow and writes
//! no records: each job is one function call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_redis::{Config, RedisStorage};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::measure::{repeat, Repeats, Summary};
use crate::BenchError;

/// The job: nothing to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoopJob;

/// Counts the jobs run and says when all have.
struct Done {
    ran: AtomicUsize,
    of: usize,
    all: watch::Sender<bool>,
}

async fn noop(_job: NoopJob, done: Data<Arc<Done>>) -> Result<(), BoxDynError> {
    if done.ran.fetch_add(1, Ordering::SeqCst) + 1 == done.of {
        done.all.send_replace(true);
    }
    Ok(())
}

/// W8 on apalis: jobs per second consuming `jobs` pushed no-op jobs with
/// `workers` workers on the Redis server at `url`.
pub fn consume(
    url: &str,
    jobs: usize,
    workers: usize,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let per_run = repeat(repeats, || runtime.block_on(run(url, jobs, workers)))?;
    Ok(Summary {
        median: jobs as f64 / per_run.median,
        min: jobs as f64 / per_run.max,
        max: jobs as f64 / per_run.min,
        count: per_run.count,
    })
}

fn failed(doing: &str, url: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("apalis on {url}: {doing}: {e}"))
}

/// One run in a fresh queue, whose keys are removed after it.
async fn run(url: &str, jobs: usize, workers: usize) -> Result<Duration, BenchError> {
    let queue = format!("taskflow-compare-apalis-{}", uuid::Uuid::new_v4().simple());
    let conn = apalis_redis::connect(url)
        .await
        .map_err(|e| failed("connecting", url, e))?;
    let timed = timed_run(url, &queue, conn.clone(), jobs, workers).await;
    let removed = remove_keys(conn, &queue).await;
    let elapsed = timed?;
    removed.map_err(|e| failed("removing the run's keys", url, e))?;
    Ok(elapsed)
}

async fn timed_run(
    url: &str,
    queue: &str,
    conn: apalis_redis::ConnectionManager,
    jobs: usize,
    workers: usize,
) -> Result<Duration, BenchError> {
    let mut storage =
        RedisStorage::<NoopJob>::new(conn).with_config(Config::default().queue(queue));
    for _ in 0..jobs {
        storage
            .push(NoopJob)
            .await
            .map_err(|e| failed("pushing a job", url, e))?;
    }
    let (all, all_done) = watch::channel(false);
    let done = Arc::new(Done {
        ran: AtomicUsize::new(0),
        of: jobs,
        all,
    });
    let start = Instant::now();
    let running: Vec<_> = (0..workers)
        .map(|w| {
            let mut all_done = all_done.clone();
            let worker = WorkerBuilder::new(format!("{queue}-worker-{w}"))
                .backend(storage.clone())
                .data(done.clone())
                .build(noop);
            tokio::spawn(worker.run_until(async move {
                let _ = all_done.wait_for(|all| *all).await;
                Ok::<(), WorkerError>(())
            }))
        })
        .collect();
    for worker in running {
        worker
            .await
            .map_err(|e| failed("joining a worker", url, e))?
            .map_err(|e| failed("running a worker", url, e))?;
    }
    let elapsed = start.elapsed();
    let ran = done.ran.load(Ordering::SeqCst);
    if ran != jobs {
        return Err(failed(
            "consuming",
            url,
            format!("{ran} of {jobs} jobs ran"),
        ));
    }
    Ok(elapsed)
}

/// Deletes every key under `queue`.
async fn remove_keys(
    mut conn: apalis_redis::ConnectionManager,
    queue: &str,
) -> Result<(), redis_apalis::RedisError> {
    let pattern = format!("{queue}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis_apalis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis_apalis::cmd("DEL")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
