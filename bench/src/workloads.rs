//! The workloads of `shared/BENCHMARKS.md` as flows of this library, shared
//! by the criterion benches and the comparison command, so both measure the
//! same flows. The peers ([`crate::peers`], [`crate::floor`]) run the same
//! shapes: W3's DAG comes from [`layered_dag`] for every executor.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use taskflow::jobboard::{post_flow, Conductor, ConductorEvent, FlowSource, JobBoard, PostFlow};
use taskflow::prelude::*;
use taskflow::{typetag, FnTask};

use crate::BenchError;

/// The task of W1: the previous output plus one.
pub fn step() -> FnTask {
    task_fn(|ctx| Ok(json!(ctx.input::<i64>("x")? + 1)))
}

/// A linear flow named `name` of `n` atoms `t0..t{n-1}`, atom `i` running
/// `task(i)`: `t0` takes `x` from the store, `ti` requires `x{i-1}`
/// (rebound to `x`) and provides `x{i}`. W1, W6 and W9 are this chain with
/// different tasks.
pub fn chain_flow<T: Task>(name: &str, n: usize, mut task: impl FnMut(usize) -> T) -> Flow {
    let mut flow = Linear::new(name);
    for i in 0..n {
        let mut a = atom(format!("t{i}"), task(i))
            .requires(["x"])
            .provides(format!("x{i}"));
        if i > 0 {
            a = a.rebind("x", format!("x{}", i - 1));
        }
        flow = flow.add(a);
    }
    flow.into()
}

/// W1: the chain of [`chain_flow`] with every atom running `task`.
pub fn w1_flow(n: usize, task: &FnTask) -> Flow {
    chain_flow("w1", n, |_| task.clone())
}

/// A fixed stream of numbers drawn from `seed` (xorshift64*, with no
/// dependency): each call gives one below its bound.
pub fn draws(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |bound: usize| {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    }
}

/// W3's DAG: `n` nodes in layers of 10; each node after the first layer
/// depends on 1 to 3 distinct nodes of the layer before, drawn from a fixed
/// seed. Returns each node's predecessors.
pub fn layered_dag(n: usize) -> Vec<Vec<usize>> {
    const WIDTH: usize = 10;
    let mut next = draws(0x5eed_1234_abcd_ef01);
    (0..n)
        .map(|i| {
            let layer = i / WIDTH;
            if layer == 0 {
                return Vec::new();
            }
            let start = (layer - 1) * WIDTH;
            let mut preds: Vec<usize> = Vec::new();
            let want = 1 + next(3);
            while preds.len() < want {
                let p = start + next(WIDTH);
                if !preds.contains(&p) {
                    preds.push(p);
                }
            }
            preds
        })
        .collect()
}

/// W3 as a graph flow: node `i` provides `v{i}` and requires its
/// predecessors' values (arguments `p0`, `p1`, ... rebound to `v{pred}`);
/// links are inferred from that data. Each task returns the sum of its
/// inputs plus one.
pub fn w3_flow(preds: &[Vec<usize>]) -> Flow {
    let task = task_fn(|ctx| {
        let mut sum = 1;
        for (_, v) in ctx.inputs().iter() {
            sum += v.as_i64().unwrap_or(0);
        }
        Ok(json!(sum))
    });
    let mut flow = Graph::new("w3");
    for (i, ps) in preds.iter().enumerate() {
        let mut a = atom(format!("n{i}"), task.clone()).provides(format!("v{i}"));
        for (k, p) in ps.iter().enumerate() {
            a = a
                .requires([format!("p{k}")])
                .rebind(format!("p{k}"), format!("v{p}"));
        }
        flow = flow.add(a);
    }
    flow.into()
}

/// W2: an unordered flow of `n` independent no-op tasks.
pub fn w2_flow(n: usize) -> Flow {
    let task = task_fn(|_| Ok(json!(1)));
    Unordered::new("w2")
        .add_all((0..n).map(|i| atom(format!("t{i}"), task.clone())))
        .into()
}

/// W1-W3 with async tasks ([`AsyncTask`](taskflow::AsyncTask)) that do what
/// the blocking ones do, without awaiting anything: what the engine costs
/// per atom when atoms are tokio tasks.
pub mod asynchronous {
    use taskflow::prelude::*;
    use taskflow::{async_atom, async_trait, AsyncTask};

    /// W1's step: `x + 1`.
    pub struct Step;

    #[async_trait]
    impl AsyncTask for Step {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            Ok(json!(ctx.input::<i64>("x")? + 1))
        }
    }

    /// W2's no-op.
    pub struct Noop;

    #[async_trait]
    impl AsyncTask for Noop {
        async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
            Ok(json!(1))
        }
    }

    /// W3's node: 1 + the sum of its inputs.
    pub struct Sum;

    #[async_trait]
    impl AsyncTask for Sum {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            let mut sum = 1;
            for (_, v) in ctx.inputs().iter() {
                sum += v.as_i64().unwrap_or(0);
            }
            Ok(json!(sum))
        }
    }

    /// W1 with the async [`Step`].
    pub fn w1_flow(n: usize) -> Flow {
        super::chain_flow("w1", n, |_| taskflow::Async(Step))
    }

    /// W2 with the async [`Noop`].
    pub fn w2_flow(n: usize) -> Flow {
        Unordered::new("w2")
            .add_all((0..n).map(|i| async_atom(format!("t{i}"), Noop)))
            .into()
    }

    /// W3 with the async [`Sum`].
    pub fn w3_flow(preds: &[Vec<usize>]) -> Flow {
        let mut flow = Graph::new("w3");
        for (i, ps) in preds.iter().enumerate() {
            let mut a = async_atom(format!("n{i}"), Sum).provides(format!("v{i}"));
            for (k, p) in ps.iter().enumerate() {
                a = a
                    .requires([format!("p{k}")])
                    .rebind(format!("p{k}"), format!("v{p}"));
            }
            flow = flow.add(a);
        }
        flow.into()
    }
}

/// W6: W1 with `n` atoms whose last one fails, so every atom before it
/// reverts (each revert is a no-op).
pub fn w6_flow(n: usize) -> Flow {
    let step = step();
    let boom = task_fn(|_| Err(TaskError::msg("the last atom of W6 fails")));
    chain_flow("w6", n, |i| {
        if i + 1 == n {
            boom.clone()
        } else {
            step.clone()
        }
    })
}

/// The one-atom flow of W8's jobs: a serializable no-op task, so a
/// conductor rebuilds it from the job's records.
#[derive(Serialize, Deserialize)]
pub struct Noop;

#[typetag::serde(name = "taskflow_bench::Noop")]
impl StoredTask for Noop {
    fn execute(&self, _: &mut Context) -> Result<Value, TaskError> {
        Ok(Value::Null)
    }
}

/// W8: posts `jobs` jobs, each a one-atom [`Noop`] flow whose records go
/// to `records`.
pub fn post_noop_jobs(
    board: &dyn JobBoard,
    records: &dyn Backend,
    jobs: usize,
) -> Result<(), BenchError> {
    let flow: Flow = Linear::new("noop").add(atom("noop", Noop)).into();
    for i in 0..jobs {
        post_flow(
            board,
            records,
            PostFlow::new(format!("job{i}"), FlowSource::Flow(&flow)),
        )?;
    }
    Ok(())
}

/// How many jobs each W8 conductor claims ahead of its free slot
/// ([`ConductorBuilder::prefetch_jobs`](taskflow::jobboard::ConductorBuilder::prefetch_jobs)):
/// claims and consumes then go to the board in batches.
pub const W8_PREFETCH: usize = 16;

/// W8: runs every job on the board with `conductors` conductors, each
/// [`Conductor::run`] on its own thread (one job at a time, claiming
/// [`W8_PREFETCH`] ahead), until every job posted before is complete;
/// returns the moment the last one completed (the conductors' shutdown
/// after it is no part of their throughput).
pub fn drain_board(
    board: Arc<dyn JobBoard>,
    records: Arc<dyn Backend>,
    conductors: usize,
) -> Result<std::time::Instant, BenchError> {
    /// How many jobs the conductors completed, and a wake-up for each.
    #[derive(Default)]
    struct Completed {
        count: Mutex<usize>,
        changed: Condvar,
    }
    let jobs = board.job_count()?;
    let completed = Arc::new(Completed::default());
    let running: Vec<Conductor> = (0..conductors)
        .map(|c| {
            let completed = completed.clone();
            Conductor::builder(format!("c{c}"), board.clone(), records.clone())
                .wait_timeout(Duration::from_millis(1))
                .prefetch_jobs(W8_PREFETCH)
                .listener(move |event: &ConductorEvent| {
                    if matches!(
                        event,
                        ConductorEvent::Consumed { .. } | ConductorEvent::Trashed { .. }
                    ) {
                        *completed.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        completed.changed.notify_all();
                    }
                })
                .build()
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    std::thread::scope(|scope| {
        for conductor in &running {
            scope.spawn(|| conductor.run());
        }
        let stop_all = || running.iter().for_each(|c| c.stop_handle().stop());
        let mut count = completed.count.lock().unwrap_or_else(|e| e.into_inner());
        let done_at = loop {
            if *count >= jobs {
                break std::time::Instant::now();
            }
            if std::time::Instant::now() >= deadline {
                drop(count);
                stop_all();
                return Err(BenchError::Setup(format!(
                    "W8: {conductors} conductor(s) left jobs on the board after 600 s"
                )));
            }
            count = completed
                .changed
                .wait_timeout(count, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(count);
        stop_all();
        Ok(done_at)
    })
}

/// The environment variable naming the atom at which [`LoggedStep`] blocks.
pub const BLOCK_AT_ENV: &str = "TASKFLOW_BENCH_BLOCK_AT";

/// W9's task: the previous value plus one, appending its atom's name to a
/// log file first, so the comparison sees which atoms ran in which
/// process. In a process whose [`BLOCK_AT_ENV`] names its atom, it prints
/// `blocked` and waits to be killed instead.
#[derive(Serialize, Deserialize)]
pub struct LoggedStep {
    /// The file each execution appends its atom's name to.
    pub log: std::path::PathBuf,
}

#[typetag::serde(name = "taskflow_bench::LoggedStep")]
impl StoredTask for LoggedStep {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        use std::io::Write as _;
        let name = ctx.atom_name();
        if std::env::var(BLOCK_AT_ENV).ok().as_deref() == Some(name) {
            println!("blocked");
            let _ = std::io::stdout().flush();
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| TaskError::msg(format!("{}: {e}", self.log.display())))?;
        writeln!(log, "{name}").map_err(|e| TaskError::msg(e.to_string()))?;
        Ok(json!(ctx.input::<i64>("x")? + 1))
    }
}

/// W9: the chain of [`chain_flow`] with [`LoggedStep`] atoms logging to `log`.
pub fn w9_flow(n: usize, log: &std::path::Path) -> Flow {
    chain_flow("w9", n, |_| LoggedStep {
        log: log.to_path_buf(),
    })
}
