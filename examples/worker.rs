//! The worker engine over RabbitMQ: tasks run on worker processes, the
//! engine only schedules and checkpoints.
//!
//! ```text
//! cargo run --example worker --features taskflow-engine/amqp               # two workers and an engine in one process
//! cargo run --example worker --features taskflow-engine/amqp -- worker w1  # a worker process (runs until killed)
//! cargo run --example worker --features taskflow-engine/amqp -- engine     # an engine, using workers started as above
//! ```
//!
//! The broker is `TASKFLOW_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) and the exchange and queues are
//! named after `TASKFLOW_AMQP_PREFIX` (default `taskflow-example`). When
//! RabbitMQ cannot be reached, the example says how to start it and exits 0.

use std::time::Duration;

use taskflow::prelude::*;
use taskflow_engine::worker::{AmqpTransport, Worker, WorkerConfig, WorkerExecutor, WorkerOptions};

/// Creates a volume; its revert deletes it.
#[derive(Serialize, Deserialize)]
struct CreateVolume {
    size_gb: u32,
}

#[typetag::serde]
impl StoredTask for CreateVolume {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        let region: String = ctx.input("region")?;
        ctx.progress(0.5);
        std::thread::sleep(Duration::from_millis(100));
        Ok(json!({ "id": format!("{region}-vol-{}", self.size_gb), "by": worker_thread() }))
    }

    fn revert(&self, ctx: &mut Context) -> Result<(), TaskError> {
        if let Some(volume) = ctx.own_result() {
            println!("deleting volume {}", volume["id"]);
        }
        Ok(())
    }
}

/// Attaches the volume to a server.
#[derive(Serialize, Deserialize)]
struct Attach {
    server: String,
}

#[typetag::serde]
impl StoredTask for Attach {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        let volume: Value = ctx.input("volume")?;
        std::thread::sleep(Duration::from_millis(100));
        Ok(json!({
            "attached": format!("{} -> {}", volume["id"].as_str().unwrap_or("?"), self.server),
            "by": worker_thread(),
        }))
    }
}

const TASK_TYPES: [&str; 2] = ["CreateVolume", "Attach"];

/// The worker that runs this task (its threads are `taskflow-worker-<name>-<i>`).
fn worker_thread() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

fn transport() -> AmqpTransport {
    let url = std::env::var("TASKFLOW_AMQP_URL")
        .unwrap_or_else(|_| AmqpTransport::DEFAULT_URL.to_owned());
    let prefix =
        std::env::var("TASKFLOW_AMQP_PREFIX").unwrap_or_else(|_| "taskflow-example".to_owned());
    AmqpTransport::new(url)
        .with_prefix(prefix)
        .with_connect_timeout(Duration::from_secs(5))
}

fn run_flow(transport: &AmqpTransport) -> Result<(), EngineError> {
    let flow = Linear::new("provision")
        .add(
            atom("volume", CreateVolume { size_gb: 10 })
                .requires(["region"])
                .provides("volume"),
        )
        .add(
            Unordered::new("attach")
                .add(
                    atom(
                        "attach_web",
                        Attach {
                            server: "web-1".into(),
                        },
                    )
                    .requires(["volume"])
                    .provides("web"),
                )
                .add(
                    atom(
                        "attach_db",
                        Attach {
                            server: "db-1".into(),
                        },
                    )
                    .requires(["volume"])
                    .provides("db"),
                ),
        );
    let executor = WorkerExecutor::new(
        transport,
        WorkerOptions {
            timeout: Duration::from_secs(30),
            discovery_timeout: Duration::from_secs(5),
            ..WorkerOptions::default()
        },
    )?;
    let mut engine = Engine::builder(flow)
        .store(json!({ "region": "eu-1" }))
        .executor(executor)
        .build()?;
    let state = engine.run()?;
    for name in ["volume", "web", "db"] {
        let value = engine.storage().fetch(name).cloned().unwrap_or(Value::Null);
        println!("{name}: {value}");
    }
    println!("flow ended {state}");
    Ok(())
}

fn unreachable(transport: &AmqpTransport, err: &EngineError) {
    println!("RabbitMQ at {} is unreachable: {err}", transport.url());
    println!();
    println!("This example needs a RabbitMQ broker. To start one on this machine:");
    println!("  apt-get install rabbitmq-server   # Debian / Ubuntu, once");
    println!("  rabbitmq-server -detached         # start it in the background");
    println!("  rabbitmqctl await_startup         # wait until it accepts connections");
    println!("or point TASKFLOW_AMQP_URL at a broker (amqp://user:password@host:5672/%2f).");
}

fn main() -> Result<(), EngineError> {
    let transport = transport();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => {
            let name = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "worker-1".to_owned());
            let worker = match Worker::new(&transport, WorkerConfig::new(name.clone(), TASK_TYPES))
            {
                Ok(worker) => worker,
                Err(err) => {
                    unreachable(&transport, &err);
                    return Ok(());
                }
            };
            println!(
                "worker `{name}` serving {TASK_TYPES:?} on `{}`",
                transport.prefix()
            );
            worker.run()
        }
        Some("engine") => match run_flow(&transport) {
            Err(err @ EngineError::Executor(_)) => {
                unreachable(&transport, &err);
                Ok(())
            }
            other => other,
        },
        _ => {
            let pid = std::process::id();
            let mut workers = Vec::new();
            for i in 1..=2 {
                let config =
                    WorkerConfig::new(format!("example-{pid}-{i}"), TASK_TYPES).concurrency(2);
                match Worker::new(&transport, config) {
                    Ok(worker) => workers.push(worker.spawn()?),
                    Err(err) => {
                        unreachable(&transport, &err);
                        return Ok(());
                    }
                }
            }
            println!(
                "started workers {}",
                workers
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            run_flow(&transport)?;
            for worker in workers {
                worker.stop()?;
            }
            println!("workers stopped");
            Ok(())
        }
    }
}
