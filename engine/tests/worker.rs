//! The worker engine end to end with serializable (typetag) tasks: over the
//! in-process transport that serializes every message, and over RabbitMQ
//! (feature `amqp`; `TASKFLOW_TEST_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Without a broker the AMQP
//! tests print `skipping: ...` and pass, unless
//! `TASKFLOW_REQUIRE_SERVICES=1`, which makes them fail.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use taskflow_engine::worker::{
    kinds, InProcess, Transport, Worker, WorkerConfig, WorkerExecutor, WorkerHandle, WorkerOptions,
};
use taskflow_engine::{CapturingListener, Engine, EngineError};
use taskflow_patterns::{
    atom, Context, FlowState, Linear, StoredTask, TaskError, Unordered, Value,
};
use taskflow_persistence::AtomDetail;

/// Adds `amount` to the input `x`; reports progress and checks in;
/// returns the sum and the worker thread that ran it.
#[derive(Serialize, Deserialize)]
struct Add {
    amount: i64,
    #[serde(default)]
    sleep_ms: u64,
}

#[typetag::serde(name = "tests::Add")]
impl StoredTask for Add {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        ctx.progress(0.5);
        ctx.checkin(format!("adding {}", self.amount));
        std::thread::sleep(Duration::from_millis(self.sleep_ms));
        let x: i64 = ctx.input("x")?;
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        Ok(json!({ "sum": x + self.amount, "thread": thread }))
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let flow_failures: Vec<&str> = ctx.flow_failures().iter().map(|f| &*f.kind).collect();
        mark(&format!(
            "revert Add own_result={} flow_failures={flow_failures:?}",
            ctx.own_result()
                .map(|v| v["sum"].clone())
                .unwrap_or(Value::Null),
        ));
        Ok(())
    }
}

/// Fails with kind `Boom`; its revert records its own failure.
#[derive(Serialize, Deserialize)]
struct Explode {
    key: String,
}

#[typetag::serde(name = "tests::Explode")]
impl StoredTask for Explode {
    fn execute(&self, _ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        Err(TaskError::new("Boom", format!("{} exploded", self.key)))
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        mark(&format!(
            "{}: revert Explode own_failure={}",
            self.key,
            ctx.own_failure()
                .map(|f| f.kind.clone())
                .unwrap_or_default()
        ));
        Ok(())
    }
}

/// Marks `<key>:started`, then waits `ms` (or until cancelled).
#[derive(Serialize, Deserialize)]
struct Slow {
    key: String,
    ms: u64,
}

#[typetag::serde(name = "tests::Slow")]
impl StoredTask for Slow {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        mark(&format!("{}:started", self.key));
        let start = Instant::now();
        while !ctx.is_cancelled() && start.elapsed() < Duration::from_millis(self.ms) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if ctx.is_cancelled() {
            mark(&format!("{}:cancelled", self.key));
        }
        Ok(json!("slept"))
    }
}

const TYPES: [&str; 3] = ["tests::Add", "tests::Explode", "tests::Slow"];

static MARKS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn mark(entry: &str) {
    MARKS.lock().unwrap().push(entry.to_owned());
}

fn marks() -> Vec<String> {
    MARKS.lock().unwrap().clone()
}

fn wait_for_mark(entry: &str) {
    let start = Instant::now();
    while !marks().iter().any(|m| m == entry) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no mark `{entry}`"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn worker(transport: &dyn Transport, name: &str) -> WorkerHandle {
    let config = WorkerConfig::new(name, TYPES)
        .concurrency(2)
        .heartbeat(Duration::from_millis(100));
    Worker::new(transport, config).unwrap().spawn().unwrap()
}

fn options() -> WorkerOptions {
    WorkerOptions {
        timeout: Duration::from_secs(20),
        discovery_timeout: Duration::from_secs(3),
        ..WorkerOptions::default()
    }
}

fn failures(
    result: Result<FlowState, EngineError>,
) -> (FlowState, Vec<taskflow_patterns::Failure>) {
    match result {
        Err(EngineError::Failed {
            state, failures, ..
        }) => (state, failures),
        other => panic!("expected a failed flow, got {other:?}"),
    }
}

/// Six additions spread over two workers; returns the workers that ran them.
fn fan_out(transport: &dyn Transport) -> BTreeSet<String> {
    let mut flow = Unordered::new("fan");
    for i in 0..6 {
        flow = flow.add(
            atom(
                format!("add{i}"),
                Add {
                    amount: i,
                    sleep_ms: 150,
                },
            )
            .requires(["x"])
            .provides(format!("r{i}")),
        );
    }
    let capture = std::sync::Arc::new(CapturingListener::new());
    let mut engine = Engine::builder(flow)
        .store(json!({"x": 100}))
        .executor(WorkerExecutor::new(transport, options()).unwrap())
        .listener(capture.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let mut threads = BTreeSet::new();
    for i in 0..6 {
        let r = engine.storage().fetch(&format!("r{i}")).unwrap().clone();
        assert_eq!(r["sum"], json!(100 + i));
        let thread = r["thread"].as_str().unwrap();
        // taskflow-worker-<name>-<i>
        let name = thread
            .strip_prefix("taskflow-worker-")
            .and_then(|t| t.rsplit_once('-'))
            .map(|(name, _)| name.to_owned())
            .unwrap();
        threads.insert(name);
    }
    // Each task reports 0.5 on its worker; the engine adds 0 and 1 around.
    let progress = capture.progress();
    assert_eq!(progress.len(), 18, "{progress:?}");
    for i in 0..6 {
        let of: Vec<f32> = progress
            .iter()
            .filter(|(a, _)| *a == format!("add{i}"))
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(of, [0.0, 0.5, 1.0], "{progress:?}");
    }
    // Each check-in came back over the transport: heard, and recorded.
    let mut checkins = capture.checkins();
    checkins.sort();
    let expected: Vec<(String, String)> = (0..6)
        .map(|i| (format!("add{i}"), format!("adding {i}")))
        .collect();
    assert_eq!(checkins, expected);
    let records = engine
        .storage()
        .backend()
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    for i in 0..6 {
        let d = records.atom_detail(&format!("add{i}")).unwrap();
        assert_eq!(
            d.meta()[AtomDetail::CHECKIN_KEY]["message"],
            json!(format!("adding {i}"))
        );
    }
    threads
}

/// `Add` then `Explode`: the flow reverts; reverts see results and failures.
fn revert_round_trip(transport: &dyn Transport, key: &str) {
    let flow = Linear::new("f")
        .add(
            atom(
                "add",
                Add {
                    amount: 1,
                    sleep_ms: 0,
                },
            )
            .requires(["x"])
            .provides("y"),
        )
        .add(atom(
            "explode",
            Explode {
                key: key.to_owned(),
            },
        ));
    let result = Engine::builder(flow)
        .store(json!({"x": 41}))
        .executor(WorkerExecutor::new(transport, options()).unwrap())
        .build()
        .unwrap()
        .run();
    let (state, failures) = failures(result);
    assert_eq!(state, FlowState::Reverted);
    assert_eq!(failures[0].kind, "Boom");
    assert_eq!(failures[0].atom.as_deref(), Some("explode"));
    let marks = marks();
    assert!(
        marks.contains(&format!("{key}: revert Explode own_failure=Boom")),
        "{marks:?}"
    );
    assert!(
        marks.contains(&"revert Add own_result=42 flow_failures=[\"Boom\"]".to_owned()),
        "{marks:?}"
    );
}

#[test]
fn in_process_serializing_runs_typetag_tasks_on_two_workers() {
    let transport = InProcess::serializing();
    let (w1, w2) = (worker(&transport, "one"), worker(&transport, "two"));
    let used = fan_out(&transport);
    assert_eq!(used, BTreeSet::from(["one".to_owned(), "two".to_owned()]));
    revert_round_trip(&transport, "in-process");
    w1.stop().unwrap();
    w2.stop().unwrap();
}

#[cfg(feature = "amqp")]
mod amqp {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use taskflow_engine::worker::{AmqpTransport, Endpoint};
    use taskflow_patterns::task_fn;

    use super::*;

    fn url() -> String {
        std::env::var("TASKFLOW_TEST_AMQP_URL")
            .unwrap_or_else(|_| AmqpTransport::DEFAULT_URL.to_owned())
    }

    /// A transport with a prefix of its own, or `None` (after saying why)
    /// when the broker is unreachable and services are not required.
    fn broker(test: &str) -> Option<AmqpTransport> {
        broker_at(&url(), test)
    }

    fn broker_at(url: &str, test: &str) -> Option<AmqpTransport> {
        let prefix = format!(
            "taskflow-test.{test}.{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let transport = AmqpTransport::new(url)
            .with_prefix(prefix)
            .with_connect_timeout(Duration::from_secs(5));
        match transport.connect(Endpoint::Engine) {
            Ok(link) => {
                link.close();
                Some(transport)
            }
            Err(e) => {
                if std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                    panic!("RabbitMQ at {} unreachable: {e}", transport.url());
                }
                eprintln!("skipping: RabbitMQ at {} unreachable: {e}", transport.url());
                None
            }
        }
    }

    /// Whether the exchange of `transport` is gone from the broker.
    fn exchange_is_gone(transport: &AmqpTransport) -> bool {
        async_global_executor::block_on(async {
            let conn = lapin::Connection::connect(&url(), lapin::ConnectionProperties::default())
                .await
                .unwrap();
            let channel = conn.create_channel().await.unwrap();
            let passive = channel
                .exchange_declare(
                    transport.prefix(),
                    lapin::ExchangeKind::Topic,
                    lapin::options::ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await;
            let _ = conn.close(200, "bye").await;
            passive.is_err()
        })
    }

    fn eventually_gone(transport: &AmqpTransport) {
        let start = Instant::now();
        while !exchange_is_gone(transport) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "exchange `{}` left on the broker",
                transport.prefix()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn round_trip_on_two_workers_and_reverts() {
        let Some(transport) = broker("round-trip") else {
            return;
        };
        let (w1, w2) = (worker(&transport, "one"), worker(&transport, "two"));
        let used = fan_out(&transport);
        assert_eq!(used, BTreeSet::from(["one".to_owned(), "two".to_owned()]));
        revert_round_trip(&transport, "amqp");
        w1.stop().unwrap();
        w2.stop().unwrap();
        eventually_gone(&transport);
    }

    #[test]
    fn a_closure_is_not_serializable() {
        let Some(transport) = broker("closure") else {
            return;
        };
        let w = worker(&transport, "w");
        let flow = Linear::new("f").add(atom("closure", task_fn(|_| Ok(json!(1)))));
        let result = Engine::builder(flow)
            .executor(WorkerExecutor::new(&transport, options()).unwrap())
            .build()
            .unwrap()
            .run();
        let (_, failures) = failures(result);
        assert_eq!(failures[0].kind, kinds::NOT_SERIALIZABLE);
        assert!(
            failures[0].message.contains("atom `closure`"),
            "{}",
            failures[0]
        );
        assert!(
            failures[0].message.contains("taskflow::FnTask"),
            "{}",
            failures[0]
        );
        assert!(
            failures[0].message.contains("is not a StoredTask"),
            "{}",
            failures[0]
        );
        w.stop().unwrap();
    }

    #[test]
    fn a_hung_task_times_out_is_cancelled_and_reverted() {
        let Some(transport) = broker("timeout") else {
            return;
        };
        let w = worker(&transport, "w");
        let flow = Linear::new("f")
            .add(
                atom(
                    "add",
                    Add {
                        amount: 1,
                        sleep_ms: 0,
                    },
                )
                .requires(["x"])
                .provides("y"),
            )
            .add(atom(
                "slow",
                Slow {
                    key: "amqp-timeout".to_owned(),
                    ms: 10_000,
                },
            ));
        let options = WorkerOptions {
            timeout: Duration::from_millis(500),
            ..options()
        };
        let result = Engine::builder(flow)
            .store(json!({"x": 1}))
            .executor(WorkerExecutor::new(&transport, options).unwrap())
            .build()
            .unwrap()
            .run();
        let (state, failures) = failures(result);
        assert_eq!(state, FlowState::Reverted);
        assert_eq!(failures[0].kind, kinds::TIMEOUT);
        assert!(
            failures[0].message.contains("atom `slow`"),
            "{}",
            failures[0]
        );
        assert!(
            failures[0].message.contains("tests::Slow"),
            "{}",
            failures[0]
        );
        wait_for_mark("amqp-timeout:cancelled");
        assert!(marks().contains(&"revert Add own_result=2 flow_failures=[\"Timeout\"]".to_owned()));
        w.stop().unwrap();
    }

    #[test]
    fn an_unreachable_broker_is_a_clear_error() {
        let transport = AmqpTransport::new("amqp://guest:secret@127.0.0.1:1/%2f")
            .with_connect_timeout(Duration::from_secs(5));
        let err = WorkerExecutor::new(&transport, options()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, EngineError::Executor(_)), "{err:?}");
        assert!(
            text.contains("RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f"),
            "{text}"
        );
        assert!(text.contains("rabbitmq-server -detached"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let err = Worker::new(&transport, WorkerConfig::new("w", TYPES)).unwrap_err();
        assert!(err.to_string().contains("worker `w`"), "{err}");
    }

    #[test]
    fn an_aborted_worker_is_lost() {
        let Some(transport) = broker("abort") else {
            return;
        };
        let w = worker(&transport, "doomed");
        let flow = Linear::new("f").add(atom(
            "slow",
            Slow {
                key: "amqp-abort".to_owned(),
                ms: 10_000,
            },
        ));
        let mut engine = Engine::builder(flow)
            .executor(WorkerExecutor::new(&transport, options()).unwrap())
            .build()
            .unwrap();
        let engine_thread = std::thread::spawn(move || engine.run());
        wait_for_mark("amqp-abort:started");
        // Another worker takes the revert.
        let _other = worker(&transport, "survivor");
        w.abort();
        let (state, failures) = failures(engine_thread.join().unwrap());
        assert_eq!(state, FlowState::Reverted);
        assert_eq!(failures[0].kind, kinds::WORKER_LOST, "{failures:?}");
        assert!(
            failures[0].message.contains("worker `doomed`"),
            "{}",
            failures[0]
        );
    }

    #[test]
    fn a_worker_name_is_taken_once() {
        let Some(transport) = broker("names") else {
            return;
        };
        let _w = worker(&transport, "w");
        let err = Worker::new(&transport, WorkerConfig::new("w", TYPES)).unwrap_err();
        assert!(err.to_string().contains("already connected"), "{err}");
    }

    /// A TCP proxy whose connections can be cut, to lose the broker.
    struct Proxy {
        port: u16,
        streams: Arc<Mutex<Vec<TcpStream>>>,
        stop: Arc<AtomicBool>,
    }

    impl Proxy {
        fn start(upstream: String) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let streams = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (s, st) = (streams.clone(), stop.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !st.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((client, _)) => {
                            client.set_nonblocking(false).unwrap();
                            let server = TcpStream::connect(&upstream).unwrap();
                            let mut all = s.lock().unwrap();
                            all.push(client.try_clone().unwrap());
                            all.push(server.try_clone().unwrap());
                            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                            pipe(server, client);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => break,
                    }
                }
            });
            Proxy {
                port,
                streams,
                stop,
            }
        }

        fn cut(&self) {
            self.stop.store(true, Ordering::SeqCst);
            for s in self.streams.lock().unwrap().iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    fn pipe(mut from: TcpStream, mut to: TcpStream) {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Both);
        });
    }

    /// `amqp://user:pass@host:port/vhost` -> (`host:port`, the URL with
    /// `host:port` replaced by `proxy`).
    fn split_url(url: &str, proxy: u16) -> (String, String) {
        let scheme_end = url.find("://").unwrap() + 3;
        let rest = &url[scheme_end..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let host_start = rest[..authority_end].rfind('@').map_or(0, |i| i + 1);
        let mut host = rest[host_start..authority_end].to_owned();
        if !host.contains(':') {
            host.push_str(":5672");
        }
        let proxied = format!(
            "{}{}127.0.0.1:{proxy}{}",
            &url[..scheme_end],
            &rest[..host_start],
            &rest[authority_end..]
        );
        (host, proxied)
    }

    #[test]
    fn a_lost_broker_connection_fails_work_with_transport_lost() {
        let Some(direct) = broker("lost") else {
            return;
        };
        let probe = split_url(&url(), 0).0;
        let proxy = Proxy::start(probe);
        let (_, proxied_url) = split_url(&url(), proxy.port);
        // The engine goes through the proxy; the worker connects directly.
        let Some(proxied) = broker_at(&proxied_url, "unused") else {
            return;
        };
        let proxied = proxied.with_prefix(direct.prefix());
        let w = worker(&direct, "w");
        let flow = Linear::new("f")
            .add(
                atom(
                    "add",
                    Add {
                        amount: 1,
                        sleep_ms: 0,
                    },
                )
                .requires(["x"])
                .provides("y"),
            )
            .add(atom(
                "slow",
                Slow {
                    key: "amqp-lost".to_owned(),
                    ms: 10_000,
                },
            ));
        let mut engine = Engine::builder(flow)
            .store(json!({"x": 1}))
            .executor(WorkerExecutor::new(&proxied, options()).unwrap())
            .build()
            .unwrap();
        let engine_thread = std::thread::spawn(move || engine.run());
        wait_for_mark("amqp-lost:started");
        let cut = Instant::now();
        proxy.cut();
        let (state, failures) = failures(engine_thread.join().unwrap());
        assert!(
            cut.elapsed() < Duration::from_secs(5),
            "{:?}",
            cut.elapsed()
        );
        assert_eq!(state, FlowState::Failure);
        assert!(
            failures.iter().all(|f| f.kind == kinds::TRANSPORT_LOST),
            "{failures:?}"
        );
        assert_eq!(failures[0].atom.as_deref(), Some("slow"));
        assert!(
            failures[0].message.contains("tests::Slow"),
            "{}",
            failures[0]
        );
        w.stop().unwrap();
    }
}

/// Per-atom round trip of a linear flow of trivial tasks (each waits for the
/// one before): `cargo test -p taskflow-engine --all-features --release
/// --test worker -- --ignored --nocapture latency`.
#[test]
#[ignore = "a measurement, not a check"]
fn latency() {
    fn flow(n: i64) -> Linear {
        let mut flow = Linear::new("chain");
        for i in 0..n {
            flow = flow.add(
                atom(
                    format!("add{i}"),
                    Add {
                        amount: i,
                        sleep_ms: 0,
                    },
                )
                .requires(["x"])
                .provides(format!("r{i}")),
            );
        }
        flow
    }
    fn measure(label: &str, n: i64, builder: impl Fn(Linear) -> taskflow_engine::EngineBuilder) {
        // One warm-up run, then the measured one.
        for measured in [false, true] {
            let mut engine = builder(flow(n)).store(json!({"x": 1})).build().unwrap();
            let start = Instant::now();
            assert_eq!(engine.run().unwrap(), FlowState::Success);
            if measured {
                let per = start.elapsed() / u32::try_from(n).unwrap();
                println!("{label:<28} {n} atoms: {per:>10.1?} per atom");
            }
        }
    }
    let n = 500;
    measure("serial (no worker)", n, Engine::builder);
    let plain = InProcess::new();
    let _w = worker(&plain, "lat");
    measure("in-process", n, |f| {
        Engine::builder(f).executor(WorkerExecutor::new(&plain, options()).unwrap())
    });
    let serializing = InProcess::serializing();
    let _s = worker(&serializing, "lat");
    measure("in-process, serializing", n, |f| {
        Engine::builder(f).executor(WorkerExecutor::new(&serializing, options()).unwrap())
    });
    #[cfg(feature = "amqp")]
    {
        let url = std::env::var("TASKFLOW_TEST_AMQP_URL")
            .unwrap_or_else(|_| taskflow_engine::worker::AmqpTransport::DEFAULT_URL.to_owned());
        let amqp = taskflow_engine::worker::AmqpTransport::new(url).with_prefix(format!(
            "taskflow-test.latency.{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        match Worker::new(&amqp, WorkerConfig::new("lat", TYPES)) {
            Ok(w) => {
                let _a = w.spawn().unwrap();
                measure("amqp (RabbitMQ, loopback)", n, |f| {
                    Engine::builder(f).executor(WorkerExecutor::new(&amqp, options()).unwrap())
                });
            }
            Err(e) => println!("skipping amqp: {e}"),
        }
    }
}
