//! A conductor runs jobs on the tokio executor: a job's flow of async tasks
//! (a stored async task type, rebuilt from the job's records) and a
//! blocking one, with its atoms as tokio tasks on the program's runtime.
#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskflow::jobboard::{post_flow, BoardOptions, Conductor, FlowSource, JobBoard, PostFlow};
use taskflow::prelude::*;
use taskflow::{Durability, MemoryBoard, Tokio};

/// Sleeps on tokio's timer, then adds one to its input.
#[derive(Serialize, Deserialize)]
struct Nap {
    ms: u64,
}

#[async_trait]
#[typetag::serde]
impl StoredAsyncTask for Nap {
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        Ok(json!(ctx.input::<i64>("x")? + 1))
    }
}

/// A blocking step beside them (on the runtime's blocking pool).
#[derive(Serialize, Deserialize)]
struct Total;

#[typetag::serde]
impl StoredTask for Total {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        let sum: i64 = ctx.inputs().iter().filter_map(|(_, v)| v.as_i64()).sum();
        Ok(json!(sum))
    }
}

/// 200 naps of 20 ms side by side (4 s one after another), then their total.
fn naps() -> Flow {
    let mut naps = Unordered::new("naps");
    let mut total = atom("total", Total).provides("total");
    for i in 0..200 {
        naps = naps.add(
            async_atom(format!("nap{i}"), Nap { ms: 20 })
                .requires(["x"])
                .provides(format!("n{i}")),
        );
        total = total.requires([format!("n{i}")]);
    }
    Linear::new("job").add(naps).add(total).into()
}

#[test]
fn a_conductor_runs_jobs_of_async_tasks_on_the_tokio_executor() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let board = Arc::new(MemoryBoard::new(BoardOptions::default()));
    // Normal durability: with an fsync per transition (Full), the 400
    // checkpoints of a job, not its naps, would set its time.
    let records = Arc::new(
        SqliteBackend::open_with(dir.path().join("flows.db"), Durability::Normal).expect("records"),
    );
    let jobs: Vec<_> = (0..2)
        .map(|i| {
            post_flow(
                &*board,
                &*records,
                PostFlow::new(format!("naps-{i}"), FlowSource::Flow(&naps()))
                    .store(json!({"x": 1})),
            )
            .expect("posted")
        })
        .collect();
    let handle = runtime.handle().clone();
    let conductor = Conductor::builder("tokio-conductor", board.clone(), records.clone())
        .configure_engine(move |engine| engine.executor(Tokio::with_handle(handle.clone())))
        .build();
    for _ in &jobs {
        let started = Instant::now();
        assert!(conductor.run_once().expect("runs a job"));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "a job took {took:?}");
    }
    for job in &jobs {
        let (Some(book), Some(flow)) = (job.logbook, job.flow_detail) else {
            panic!("job {} names no records", job.id);
        };
        let detail = records
            .get_logbook(book)
            .expect("the job's logbook")
            .flow_detail(flow)
            .cloned()
            .expect("the job's flow detail");
        assert_eq!(detail.state, FlowState::Success, "job {}", job.id);
        let total = detail.atom_detail("total").expect("the total");
        assert_eq!(total.result.as_deref(), Some(&json!(400)));
    }
    assert!(board.iterjobs(true).expect("lists").is_empty());
}
