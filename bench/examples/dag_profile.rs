//! One of W1-W3 on one of our engines, repeated, for a profiler to watch
//! (`perf record`, `perf stat`, callgrind): what the comparison command
//! times for that row, without the rest of the comparison around it.
//!
//! ```sh
//! cargo build --release -p taskflow-bench --example dag_profile
//! perf stat -e cache-misses,instructions target/release/examples/dag_profile 1 1000000 serial 3
//! ```
//!
//! Arguments: workload (1, 2 or 3), N, engine (`serial`, `parallel`,
//! `worker`), runs. Prints the median µs per atom.
//!
//! Workload 4 is W4 on SQLite with `Normal` durability: engine `serial` is
//! ours, `floor` the bare SQLite loop beside it in the table.

use taskflow_bench::measure::Repeats;
use taskflow_bench::ours::{self, OurEngine};
use taskflow_bench::BenchError;

fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let parse = |s: String| -> Result<usize, BenchError> {
        s.parse()
            .map_err(|_| BenchError::Setup(format!("not a number: {s}")))
    };
    let workload = parse(arg(0, "1"))?;
    let n = parse(arg(1, "100000"))?;
    let runs = parse(arg(3, "5"))?;
    if workload == 4 {
        return w4(n, &arg(2, "serial"), runs);
    }
    let engine = match arg(2, "serial").as_str() {
        "serial" => OurEngine::Serial,
        "parallel" => OurEngine::Parallel,
        "worker" => OurEngine::Worker,
        other => return Err(BenchError::Setup(format!("unknown engine {other}"))),
    };
    let repeats = Repeats {
        min_runs: runs,
        max_runs: runs,
        budget: std::time::Duration::ZERO,
    };
    let workload = u8::try_from(workload).map_err(|_| BenchError::Setup("workload".into()))?;
    if std::env::var_os("PHASES").is_some() {
        return phases(workload, n);
    }
    let s = ours::in_memory(workload, n, engine, repeats)?;
    println!(
        "W{workload} N={n} {}: median {:.3} µs/atom (min {:.3}, max {:.3}, {} runs)",
        engine.name(),
        s.median * 1e6 / n as f64,
        s.min * 1e6 / n as f64,
        s.max * 1e6 / n as f64,
        s.count
    );
    Ok(())
}

/// W4 on SQLite (`Normal`), ours (`serial`) or the bare floor (`floor`),
/// `runs` times: prints the median µs per atom.
fn w4(n: usize, engine: &str, runs: usize) -> Result<(), BenchError> {
    use taskflow::persistence::Durability;
    use taskflow_bench::ours::DurableBackend;
    let repeats = Repeats {
        min_runs: runs,
        max_runs: runs,
        budget: std::time::Duration::ZERO,
    };
    let s = match engine {
        "serial" => ours::checkpointed(n, DurableBackend::SqliteNormal, repeats)?,
        "floor" => taskflow_bench::measure::repeat(repeats, || {
            let dir = tempfile::tempdir()?;
            taskflow_bench::sqlite_floor::checkpoints(
                &dir.path().join("floor.db"),
                n,
                Durability::Normal,
            )
        })?,
        other => return Err(BenchError::Setup(format!("W4 has no engine {other}"))),
    };
    println!(
        "W4 N={n} sqlite (Normal) {engine}: median {:.3} µs/atom (min {:.3}, max {:.3}, {} runs)",
        s.median * 1e6 / n as f64,
        s.min * 1e6 / n as f64,
        s.max * 1e6 / n as f64,
        s.count
    );
    Ok(())
}

/// Times the phases of one serial build and run (`PHASES=1`): clone of the
/// flow, compile, resolve, the whole build, writing the records, the run,
/// and dropping the engine.
fn phases(workload: u8, n: usize) -> Result<(), BenchError> {
    use std::time::Instant;
    use taskflow::prelude::*;
    use taskflow_bench::workloads;
    let (flow, store) = match workload {
        1 => (workloads::w1_flow(n, &workloads::step()), json!({ "x": 0 })),
        2 => (workloads::w2_flow(n), json!({})),
        _ => (workloads::w3_flow(&workloads::layered_dag(n)), json!({})),
    };
    let per = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    let copy = flow.clone();
    let clone = per(t);
    let t = Instant::now();
    let comp = taskflow::patterns::compile(&copy).map_err(|e| BenchError::Setup(e.to_string()))?;
    let compile = per(t);
    let t = Instant::now();
    let res = comp
        .resolve(
            store
                .as_object()
                .ok_or_else(|| BenchError::Setup("store".into()))?,
        )
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let resolve = per(t);
    drop((comp, res, copy));
    let t = Instant::now();
    let mut engine = Engine::builder(flow.clone())
        .store(store)
        .persistence(MemoryBackend::new())
        .build()?;
    let build = per(t);
    let t = Instant::now();
    engine.prepare()?;
    let prepare = per(t);
    let t = Instant::now();
    engine.run()?;
    let run = per(t);
    let t = Instant::now();
    drop(engine);
    let dropped = per(t);
    println!(
        "W{workload} N={n} µs/atom: clone {clone:.3}, compile {compile:.3}, resolve {resolve:.3}, \
         build (clone+compile+resolve+storage) {build:.3}, prepare {prepare:.3}, run {run:.3}, drop {dropped:.3}"
    );
    Ok(())
}
