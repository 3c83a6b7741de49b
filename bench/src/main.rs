//! `taskflow-bench`: the engine comparison command.
//!
//! ```sh
//! cargo run --release -p taskflow-bench -- compare            # everything, about 7 minutes once built
//! cargo run --release -p taskflow-bench -- compare --quick    # one run per figure, N up to 1,000
//! cargo run --release -p taskflow-bench -- compare --workloads W1,W3 --no-python
//! cargo run --release -p taskflow-bench -- render target/bench-compare/comparison.json
//! cargo run --release -p taskflow-bench -- service            # W12: the job service over HTTP, 1 and 2 nodes
//! cargo run --release -p taskflow-bench -- service --jobs 500 --sample 50
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use taskflow_bench::compare::{compare, CompareOptions};
use taskflow_bench::measure::Repeats;
use taskflow_bench::{child, report};

#[derive(Parser)]
#[command(
    name = "taskflow-bench",
    about = "Compare taskflow-rs's engines with Python TaskFlow, dagx, dagrs and a bare rayon floor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the workloads of BENCHMARKS.md on every executor, back to back,
    /// print one table, and write it as Markdown with a plot and the raw
    /// figures.
    Compare(CompareArgs),
    /// Rebuild comparison.md and comparison.svg from a comparison.json.
    Render {
        /// The comparison.json of an earlier run.
        json: PathBuf,
        /// Where comparison.md, comparison.json and comparison.svg go.
        #[arg(long, default_value = "target/bench-compare")]
        out: PathBuf,
    },
    /// W12: the job service over HTTP (1 node, then 2), beside the bare
    /// jobboard on the same SQLite files and W8: jobs accepted per second,
    /// jobs drained per second, submit-to-success latency.
    Service(ServiceArgs),
    /// A child process of W9, W10 or W11 (the command runs itself).
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        child: ChildCommand,
    },
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Sizes of W1-W3 (W6 takes those up to 1,000, W4 those up to 10,000).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,1000,10000,100000,1000000"
    )]
    sizes: Vec<usize>,
    /// Workloads to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "W1,W2,W3,W4,W5,W6,W7,W8,W9,W10,W11,W12"
    )]
    workloads: Vec<String>,
    /// Leave Python TaskFlow out (no virtualenv, no PyPI).
    #[arg(long)]
    no_python: bool,
    /// Leave dagx, dagrs, the floor and apalis out.
    #[arg(long)]
    no_peers: bool,
    /// One run per figure and N up to 1,000 (unless --sizes says otherwise):
    /// a smoke run, not figures to quote.
    #[arg(long)]
    quick: bool,
    /// The virtualenv for Python TaskFlow (made, and TaskFlow installed from
    /// PyPI, if missing).
    #[arg(long, default_value = "target/taskflow-py-venv")]
    venv: PathBuf,
    /// The Python that makes the virtualenv.
    #[arg(long, default_value = "python3")]
    python3: String,
    /// Skip a Python run predicted to take longer than this many seconds.
    #[arg(long, default_value_t = 60.0)]
    python_max_run: f64,
    /// The Redis server of W8 (both sides); `none` to leave Redis out.
    #[arg(
        long,
        env = "TASKFLOW_TEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// The PostgreSQL database of W4's PostgreSQL rows (ours and Python
    /// TaskFlow's SQLAlchemy backend, a fresh schema per run) and of W8's
    /// PostgreSQL board (a fresh schema per run, dropped after it); `none`
    /// to leave them out.
    #[arg(
        long,
        env = "TASKFLOW_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// The etcd endpoints of W8's etcd board (built with `--features
    /// etcd`); `none` to leave it out.
    #[arg(
        long,
        env = "TASKFLOW_TEST_ETCD_URL",
        default_value = "http://127.0.0.1:2379"
    )]
    etcd: String,
    /// The ZooKeeper hosts of W8's ZooKeeper board; `none` to leave it out.
    #[arg(long, env = "TASKFLOW_TEST_ZK_URL", default_value = "127.0.0.1:2181")]
    zookeeper: String,
    /// The RabbitMQ broker of W11 (the worker engine, its bound, and Python
    /// TaskFlow's worker-based engine); `none` to leave W11 out.
    #[arg(
        long,
        env = "TASKFLOW_TEST_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp: String,
    /// W11's sizes (atoms per flow).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    w11_sizes: Vec<usize>,
    /// Where comparison.md, comparison.json and comparison.svg go.
    #[arg(long, default_value = "target/bench-compare")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct ServiceArgs {
    /// Jobs submitted for the accepted and drained figures.
    #[arg(long, default_value_t = 2_000)]
    jobs: usize,
    /// Client threads submitting them (each with a keep-alive client).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Jobs timed one at a time from submit to success.
    #[arg(long, default_value_t = 200)]
    sample: usize,
    /// Workers per node.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Node counts, each on a fresh board.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    nodes: Vec<usize>,
}

#[derive(Subcommand)]
enum ChildCommand {
    /// W9's first process: run until atom `t{block_at}`, then block.
    W9Run {
        db: PathBuf,
        log: PathBuf,
        n: usize,
        block_at: usize,
    },
    /// W9's resume process.
    W9Resume {
        db: PathBuf,
        n: usize,
        flow_detail: String,
    },
    /// W10: run W1 with `n` atoms and report peak memory.
    W10 { n: usize },
    /// W11: a worker process on RabbitMQ (stops when stdin closes).
    #[cfg(feature = "amqp")]
    W11Worker {
        url: String,
        prefix: String,
        name: String,
        concurrency: usize,
    },
    /// W11's bound: a bare AMQP echo process (exits when stdin closes).
    #[cfg(feature = "amqp")]
    W11Echo {
        url: String,
        prefix: String,
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compare(args) => run_compare(args),
        Command::Render { json, out } => render(&json, &out),
        Command::Service(args) => run_service(args),
        Command::Child { child } => match child {
            ChildCommand::W9Run {
                db,
                log,
                n,
                block_at,
            } => child::w9_run(&db, &log, n, block_at),
            ChildCommand::W9Resume { db, n, flow_detail } => child::w9_resume(&db, n, &flow_detail),
            ChildCommand::W10 { n } => child::w10(n),
            #[cfg(feature = "amqp")]
            ChildCommand::W11Worker {
                url,
                prefix,
                name,
                concurrency,
            } => taskflow_bench::w11::worker_child(&url, &prefix, &name, concurrency),
            #[cfg(feature = "amqp")]
            ChildCommand::W11Echo { url, prefix, name } => {
                taskflow_bench::w11::echo_child(&url, &prefix, &name)
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskflow-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn render(json: &std::path::Path, out: &std::path::Path) -> Result<(), taskflow_bench::BenchError> {
    let saved: report::Saved = serde_json::from_str(&std::fs::read_to_string(json)?)?;
    report::write_all(out, &saved.context, &saved.figures)?;
    println!("{}", report::summary_table(&saved.figures));
    Ok(())
}

fn run_service(args: ServiceArgs) -> Result<(), taskflow_bench::BenchError> {
    use taskflow_bench::service;
    let options = service::ServiceOptions {
        jobs: args.jobs,
        clients: args.clients,
        sample: args.sample,
        workers: args.workers,
        nodes: args.nodes,
        ..service::ServiceOptions::default()
    };
    let all = service::run(&options)?;
    println!("{}", taskflow_bench::machine_line());
    println!(
        "W12: {} one-task jobs from {} client threads; {} jobs submit-to-success one at a time; \
         {} workers per node; SQLite board and records (full durability).\n",
        options.jobs, options.clients, options.sample, options.workers
    );
    println!("{}", service::markdown_table(&all));
    for line in service::w8_lines(&all) {
        println!("- {line}");
    }
    Ok(())
}

fn run_compare(args: CompareArgs) -> Result<(), taskflow_bench::BenchError> {
    let quick_sizes = args.quick && args.sizes == [100, 1_000, 10_000, 100_000, 1_000_000];
    let options = CompareOptions {
        sizes: if quick_sizes {
            vec![100, 1_000]
        } else {
            args.sizes
        },
        workloads: args.workloads.iter().map(|w| w.to_uppercase()).collect(),
        python: !args.no_python,
        venv: args.venv,
        python3: args.python3,
        python_max_run: Duration::from_secs_f64(args.python_max_run),
        peers: !args.no_peers,
        repeats: if args.quick {
            Repeats::once()
        } else {
            Repeats::standard()
        },
        python_repeats: if args.quick { 1 } else { 3 },
        redis_url: (args.redis != "none").then_some(args.redis),
        postgres_url: (args.postgres != "none").then_some(args.postgres),
        etcd_url: (args.etcd != "none").then_some(args.etcd),
        zookeeper_hosts: (args.zookeeper != "none").then_some(args.zookeeper),
        amqp_url: (args.amqp != "none").then_some(args.amqp),
        w11_sizes: args.w11_sizes,
        out: args.out,
    };
    let (all, notes) = compare(&options)?;
    let mut context = vec![taskflow_bench::machine_line()];
    context.push(format!(
        "Medians of {} runs per figure (Python: up to {}; one where a run takes 10 s or more). \
         A figure covers building the engine (compile, validate), writing its records and \
         running, as Python TaskFlow's `engine.run()` does; dagx, dagrs and the floor build their \
         graph and run it. Parallel executors use {} threads. `vs Python TaskFlow` compares with \
         Python's best engine on the same row; `÷ floor` is the time over the bare rayon executor's.",
        if args.quick { "1".to_string() } else { format!("{}-{}", options.repeats.min_runs, options.repeats.max_runs) },
        options.python_repeats,
        taskflow_bench::ours::WORKERS,
    ));
    context.extend(notes.into_iter().map(|n| format!("- {n}")));
    report::print_table(&all);
    for line in &context {
        println!("{line}");
    }
    report::write_all(&options.out, &context, &all)?;
    println!(
        "\nwritten: {0}/comparison.md, {0}/comparison.json, {0}/comparison.svg",
        options.out.display()
    );
    Ok(())
}
