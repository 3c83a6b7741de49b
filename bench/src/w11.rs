//! W11: W1 and W2 on the worker engine over RabbitMQ, with two worker
//! processes (this command run as `taskflow-bench child w11-worker`), and
//! the bound a bare AMQP client reaches on the same broker: one request and
//! its reply at a time (the round trip a linear flow pays per atom), and
//! requests pipelined to two echo processes (what a wide flow can reach).
//!
//! The broker is `TASKFLOW_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`, as the worker engine's tests),
//! each run under a prefix of its own, so nothing meets another run's
//! queues.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::{Deserialize, Serialize};
use taskflow::engine::worker::{
    AmqpTransport, Worker, WorkerConfig, WorkerExecutor, WorkerOptions,
};
use taskflow::prelude::*;
use taskflow::typetag;
use uuid::Uuid;

use crate::measure::{repeat, Repeats, Summary};
use crate::workloads::{self, Noop};
use crate::BenchError;

/// The environment variable naming the broker (the worker engine's tests
/// read the same one).
pub const URL_ENV: &str = "TASKFLOW_TEST_AMQP_URL";

/// How many worker processes W11 starts (and echo processes its bound).
pub const PROCESSES: usize = 2;

/// The broker's URL: [`URL_ENV`], or RabbitMQ's default on this host.
pub fn url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| AmqpTransport::DEFAULT_URL.to_owned())
}

/// W11's W1 step: the previous output plus one, as a stored task, so a
/// worker in another process rebuilds it.
#[derive(Serialize, Deserialize)]
pub struct RemoteStep;

#[typetag::serde(name = "taskflow_bench::Step")]
impl StoredTask for RemoteStep {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        Ok(json!(ctx.input::<i64>("x")? + 1))
    }
}

/// The task types W11's workers run.
pub const TASK_TYPES: [&str; 2] = ["taskflow_bench::Step", "taskflow_bench::Noop"];

/// W1 of `n` [`RemoteStep`] atoms, or W2 of `n` independent [`Noop`] atoms.
fn flow(workload: u8, n: usize) -> (Flow, Value) {
    if workload == 1 {
        (
            workloads::chain_flow("w11-w1", n, |_| RemoteStep),
            json!({ "x": 0 }),
        )
    } else {
        let flow = Unordered::new("w11-w2")
            .add_all((0..n).map(|i| atom(format!("t{i}"), Noop)))
            .into();
        (flow, json!({}))
    }
}

/// A fresh prefix for one run's exchange and queues.
pub fn fresh_prefix(what: &str) -> String {
    format!(
        "tfbench-{what}-{}",
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The child process of W11: a worker named `name` running [`TASK_TYPES`]
/// with `concurrency` threads, on the broker at `url` under `prefix`.
/// Prints `ready` once connected; stops gracefully when its stdin closes.
pub fn worker_child(
    url: &str,
    prefix: &str,
    name: &str,
    concurrency: usize,
) -> Result<(), BenchError> {
    let transport = AmqpTransport::new(url).with_prefix(prefix);
    let config = WorkerConfig::new(name, TASK_TYPES).concurrency(concurrency);
    let worker = Worker::new(&transport, config)?;
    let stop = worker.stop_handle();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.stop();
    });
    println!("ready");
    std::io::stdout().flush()?;
    worker.run()?;
    Ok(())
}

/// Child processes that print `ready` once serving and stop when their
/// stdin closes; killed if they have not stopped 5 s later.
pub struct Children {
    children: Vec<(Child, Option<ChildStdin>)>,
}

impl Children {
    /// Starts `exe` once per argument list and waits for each to say
    /// `ready`.
    pub fn start(exe: &Path, args: &[Vec<String>]) -> Result<Children, BenchError> {
        let mut started = Children {
            children: Vec::new(),
        };
        for argv in args {
            let mut child = Command::new(exe)
                .args(argv)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdin = child.stdin.take();
            let out = child.stdout.take();
            started.children.push((child, stdin));
            let lines = match out {
                Some(out) => {
                    let mut lines = Vec::new();
                    for line in BufReader::new(out).lines() {
                        let line = line?;
                        let ready = line.trim() == "ready";
                        lines.push(line);
                        if ready {
                            break;
                        }
                    }
                    lines
                }
                None => Vec::new(),
            };
            if !lines.iter().any(|l| l == "ready") {
                return Err(BenchError::Setup(format!(
                    "W11: `{} {}` did not start (it said {lines:?})",
                    exe.display(),
                    argv.join(" ")
                )));
            }
        }
        Ok(started)
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, stdin) in &mut self.children {
            stdin.take();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (child, _) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

/// Two worker processes of `exe` on the broker at `url` under `prefix`,
/// each running `concurrency` requests at once.
pub fn start_workers(
    exe: &Path,
    url: &str,
    prefix: &str,
    concurrency: usize,
) -> Result<Children, BenchError> {
    let args: Vec<Vec<String>> = (0..PROCESSES)
        .map(|i| {
            vec![
                "child".into(),
                "w11-worker".into(),
                url.into(),
                prefix.into(),
                format!("w{i}"),
                concurrency.to_string(),
            ]
        })
        .collect();
    Children::start(exe, &args)
}

/// W1 (`workload` 1) or W2 (2) with `n` atoms on the worker engine over
/// the broker at `url` under `prefix`, whose workers are running, sending
/// each worker up to `prefetch` requests beyond its threads
/// ([`WorkerOptions::prefetch`]; `None`: the default): the seconds of
/// whole runs (build, prepare, run; the executor's connection and its
/// hearing from every worker are made before the clock starts, as a pool
/// is passed in).
pub fn remote(
    workload: u8,
    n: usize,
    url: &str,
    prefix: &str,
    prefetch: Option<usize>,
    repeats: Repeats,
) -> Result<Summary, BenchError> {
    let transport = AmqpTransport::new(url).with_prefix(prefix);
    let (flow, store) = flow(workload, n);
    repeat(repeats, || {
        let mut options = WorkerOptions::with_timeout(Duration::from_secs(60));
        if let Some(prefetch) = prefetch {
            options.prefetch = prefetch;
        }
        let mut executor = WorkerExecutor::new(&transport, options)?;
        let known = executor.wait_for_workers(PROCESSES, Duration::from_secs(10));
        if known < PROCESSES {
            return Err(BenchError::Setup(format!(
                "W11: the engine heard from {known} of {PROCESSES} workers"
            )));
        }
        let start = Instant::now();
        let mut engine = Engine::builder(flow.clone())
            .executor(executor)
            .store(store.clone())
            .persistence(MemoryBackend::new())
            .build()?;
        engine.prepare()?;
        let state = engine.run()?;
        let elapsed = start.elapsed();
        if state != FlowState::Success {
            return Err(BenchError::Setup(format!("W11: the flow ended {state}")));
        }
        drop(engine);
        Ok(elapsed)
    })
}

/// A lapin failure of the bare client, as the comparison's error.
fn amqp(what: &str) -> impl FnOnce(lapin::Error) -> BenchError + '_ {
    move |e| BenchError::Setup(format!("W11 bare AMQP client: cannot {what}: {e}"))
}

/// A connection and channel with `prefix`'s topic exchange declared.
async fn open(url: &str, prefix: &str) -> Result<(Connection, Channel), BenchError> {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(amqp("connect"))?;
    let channel = conn
        .create_channel()
        .await
        .map_err(amqp("open a channel"))?;
    channel
        .exchange_declare(
            prefix,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(amqp("declare the exchange"))?;
    Ok((conn, channel))
}

/// An exclusive, auto-delete queue bound to `prefix` with `key`, consumed
/// without acks (as the worker engine's queues).
async fn own_queue(
    channel: &Channel,
    prefix: &str,
    key: &str,
) -> Result<lapin::Consumer, BenchError> {
    let queue = format!("{prefix}.{key}");
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(&queue, options, FieldTable::default())
        .await
        .map_err(amqp("declare a queue"))?;
    channel
        .queue_bind(
            &queue,
            prefix,
            key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("bind a queue"))?;
    let consume = BasicConsumeOptions {
        no_ack: true,
        exclusive: true,
        ..BasicConsumeOptions::default()
    };
    channel
        .basic_consume(&queue, key, consume, FieldTable::default())
        .await
        .map_err(amqp("consume a queue"))
}

/// Publishes without waiting for lapin's I/O thread to write the frames
/// (polled once, the frames are queued in order), as the worker engine's
/// transport does; no publisher confirms.
async fn publish(
    channel: &Channel,
    prefix: &str,
    key: &str,
    body: &[u8],
) -> Result<(), BenchError> {
    let publish = channel.basic_publish(
        prefix,
        key,
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    );
    match futures_lite::future::poll_once(publish).await {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(amqp("publish")(e)),
    }
}

/// The child process of W11's bound: a bare echo server consuming
/// `echo.<name>` under `prefix` and publishing each message back to
/// `reply` (the first 16 bytes of the body name the routing key's suffix).
/// Prints `ready` once consuming; exits when its stdin closes.
pub fn echo_child(url: &str, prefix: &str, name: &str) -> Result<(), BenchError> {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    async_global_executor::block_on(async {
        let (_conn, channel) = open(url, prefix).await?;
        channel
            .basic_qos(1_000, BasicQosOptions::default())
            .await
            .map_err(amqp("set the prefetch"))?;
        let mut consumer = own_queue(&channel, prefix, &format!("echo.{name}")).await?;
        println!("ready");
        std::io::stdout().flush()?;
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery.map_err(amqp("receive"))?;
            publish(&channel, prefix, "reply", &delivery.data).await?;
        }
        Ok(())
    })
}

/// The bound's two figures: seconds per round trip (one message out, its
/// echo back, one at a time) and messages echoed per second (pipelined to
/// [`PROCESSES`] echo processes).
#[derive(Clone, Copy, Debug)]
pub struct Bare {
    /// Seconds of `n` sequential round trips.
    pub sequential: Summary,
    /// Seconds of `n` pipelined round trips, alternating between the echo
    /// processes.
    pub pipelined: Summary,
}

/// Runs the bound with `n` messages of about the size of a W1 request,
/// against [`PROCESSES`] echo processes of `exe`.
pub fn bare(exe: &Path, url: &str, n: usize, repeats: Repeats) -> Result<Bare, BenchError> {
    let prefix = fresh_prefix("bare");
    let args: Vec<Vec<String>> = (0..PROCESSES)
        .map(|i| {
            vec![
                "child".into(),
                "w11-echo".into(),
                url.into(),
                prefix.clone(),
                format!("e{i}"),
            ]
        })
        .collect();
    // The client's reply queue exists before the echoes publish to it.
    let (conn, channel, mut replies) = async_global_executor::block_on(async {
        let (conn, channel) = open(url, &prefix).await?;
        let replies = own_queue(&channel, &prefix, "reply").await?;
        Ok::<_, BenchError>((conn, channel, replies))
    })?;
    let _echoes = Children::start(exe, &args)?;
    // About the size of a W1 request on the wire.
    let body = vec![b'x'; 400];
    let keys: Vec<String> = (0..PROCESSES).map(|i| format!("echo.e{i}")).collect();
    let sequential = repeat(repeats, || {
        async_global_executor::block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                publish(&channel, &prefix, &keys[0], &body).await?;
                match replies.next().await {
                    Some(Ok(_)) => {}
                    _ => return Err(BenchError::Setup("W11 bare client: no echo".into())),
                }
            }
            Ok(start.elapsed())
        })
    })?;
    let pipelined = repeat(repeats, || {
        async_global_executor::block_on(async {
            let start = Instant::now();
            let sending = async {
                for i in 0..n {
                    publish(&channel, &prefix, &keys[i % keys.len()], &body).await?;
                }
                Ok::<(), BenchError>(())
            };
            let receiving = async {
                for _ in 0..n {
                    match replies.next().await {
                        Some(Ok(_)) => {}
                        _ => return Err(BenchError::Setup("W11 bare client: no echo".into())),
                    }
                }
                Ok(())
            };
            let (sent, received) = futures_lite::future::zip(sending, receiving).await;
            sent?;
            received?;
            Ok::<_, BenchError>(start.elapsed())
        })
    })?;
    let _ = async_global_executor::block_on(conn.close(200, "bye"));
    Ok(Bare {
        sequential,
        pipelined,
    })
}
