//! Unit tests of the worker engine over the in-process transport: the
//! failures the executor makes (timeout, lost worker, unknown type, lost
//! transport, not serializable), stopping workers, and the wire format.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use taskflow_patterns::{
    atom, task_fn, AtomImpl, AtomIndex, AtomState, Context, Failure, FlowState, Inputs, Linear,
    StoredTask, Task, TaskError, Times, Value,
};

use super::*;
use crate::executor::{Recovery, RunShared};
use crate::testkit::Log;
use crate::{Action, AtomWork, CapturingListener, Engine, EngineError, Executor, Listeners};

const FAST: Duration = Duration::from_millis(50);

fn worker(transport: &InProcess, name: &str) -> WorkerHandle {
    let config = WorkerConfig::new(name, [CLOSURE_TASK_TYPE])
        .concurrency(2)
        .heartbeat(FAST);
    Worker::new(transport, config).unwrap().spawn().unwrap()
}

fn executor(transport: &InProcess, timeout: Duration) -> WorkerExecutor {
    WorkerExecutor::new(
        transport,
        WorkerOptions {
            timeout,
            discovery_timeout: Duration::from_millis(500),
            ..WorkerOptions::default()
        },
    )
    .unwrap()
}

fn failures(result: Result<FlowState, EngineError>) -> (FlowState, Vec<Failure>) {
    match result {
        Err(EngineError::Failed {
            state, failures, ..
        }) => (state, failures),
        other => panic!("expected a failed flow, got {other:?}"),
    }
}

/// A task that waits until its cancel flag is set (at most 10 s), then
/// records that it saw it.
fn waits_for_cancel(
    saw_cancel: Arc<AtomicBool>,
    started: Option<crossbeam_channel::Sender<()>>,
) -> taskflow_patterns::FnTask {
    task_fn(move |ctx| {
        if let Some(started) = &started {
            let _ = started.send(());
        }
        let start = Instant::now();
        while !ctx.is_cancelled() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        saw_cancel.store(ctx.is_cancelled(), Ordering::SeqCst);
        Err(TaskError::new("Cancelled", "gave up"))
    })
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_hung_task_times_out_is_cancelled_and_the_flow_reverts() {
    let transport = InProcess::new();
    let _w = worker(&transport, "w");
    let log = Log::new();
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("hang", waits_for_cancel(saw_cancel.clone(), None)));
    let started = Instant::now();
    let result = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_millis(300)))
        .build()
        .unwrap()
        .run();
    assert!(started.elapsed() < Duration::from_secs(5));
    let (state, failures) = failures(result);
    assert_eq!(state, FlowState::Reverted);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f.kind, kinds::TIMEOUT);
    assert_eq!(f.atom.as_deref(), Some("hang"));
    assert!(f.message.contains("atom `hang`"), "{f}");
    assert!(f.message.contains(CLOSURE_TASK_TYPE), "{f}");
    assert!(f.message.contains("worker `w`"), "{f}");
    assert_eq!(log.entries(), ["a", "~a"]);
    eventually("the task sees its cancel flag", || {
        saw_cancel.load(Ordering::SeqCst)
    });
}

#[test]
fn an_aborted_worker_is_lost_and_a_retry_reaches_another() {
    let transport = InProcess::new();
    let first = worker(&transport, "first");
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let hang = waits_for_cancel(saw_cancel, Some(started_tx));
    let job = task_fn(move |ctx| {
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            hang.execute(ctx)
        } else {
            Ok(json!("done"))
        }
    });
    let flow = Linear::new("f")
        .add(atom("job", job).provides("out"))
        .with_retry(Times::new(2));
    let capture = Arc::new(CapturingListener::new());
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(20)))
        .listener(capture.clone())
        .build()
        .unwrap();
    let engine_thread = std::thread::spawn(move || {
        let state = engine.run();
        (state, engine.storage().fetch("out").cloned())
    });
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let _second = worker(&transport, "second");
    let aborted = Instant::now();
    first.abort();
    let (state, out) = engine_thread.join().unwrap();
    assert_eq!(state.unwrap(), FlowState::Success);
    assert_eq!(out, Some(json!("done")));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // Three heartbeats of 50 ms plus half a second, give or take.
    assert!(aborted.elapsed() < Duration::from_secs(3));
    let lost: Vec<Failure> = capture
        .events()
        .into_iter()
        .filter_map(|e| match e {
            crate::Event::Atom(a) if a.to == AtomState::Failure => a.failure,
            _ => None,
        })
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].kind, kinds::WORKER_LOST);
    assert!(lost[0].message.contains("worker `first`"), "{}", lost[0]);
    assert!(lost[0].message.contains("atom `job`"), "{}", lost[0]);
}

#[test]
fn an_aborted_worker_without_retry_reverts_the_flow() {
    let transport = InProcess::new();
    let w = worker(&transport, "w");
    let log = Log::new();
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let flow = Linear::new("f").add(atom("a", log.task("a"))).add(atom(
        "hang",
        waits_for_cancel(Arc::new(AtomicBool::new(false)), Some(started_tx)),
    ));
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(20)))
        .build()
        .unwrap();
    let engine_thread = std::thread::spawn(move || engine.run());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // Another worker takes the reverts.
    let _second = worker(&transport, "second");
    w.abort();
    let (state, failures) = failures(engine_thread.join().unwrap());
    assert_eq!(state, FlowState::Reverted);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].kind, kinds::WORKER_LOST);
    assert!(
        failures[0].message.contains("stopped answering"),
        "{}",
        failures[0]
    );
    assert_eq!(log.entries(), ["a", "~a"]);
}

#[test]
fn a_restarted_worker_loses_what_its_last_run_held() {
    let transport = InProcess::new();
    let slow_heartbeat = |name: &str| {
        let config = WorkerConfig::new(name, [CLOSURE_TASK_TYPE]).heartbeat(Duration::from_secs(2));
        Worker::new(&transport, config).unwrap().spawn().unwrap()
    };
    let w = slow_heartbeat("w");
    let log = Log::new();
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let flow = Linear::new("f").add(atom("a", log.task("a"))).add(atom(
        "hang",
        waits_for_cancel(Arc::new(AtomicBool::new(false)), Some(started_tx)),
    ));
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(20)))
        .build()
        .unwrap();
    let engine_thread = std::thread::spawn(move || engine.run());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    w.abort();
    let restarted_at = Instant::now();
    let _again = slow_heartbeat("w");
    let (state, failures) = failures(engine_thread.join().unwrap());
    // Well before three missed heartbeats of 2 s.
    assert!(restarted_at.elapsed() < Duration::from_secs(2));
    assert_eq!(state, FlowState::Reverted);
    assert_eq!(failures[0].kind, kinds::WORKER_LOST);
    assert!(failures[0].message.contains("restarted"), "{}", failures[0]);
    assert_eq!(log.entries(), ["a", "~a"]);
}

#[test]
fn an_unknown_task_type_fails_after_discovery() {
    let transport = InProcess::new();
    let config = WorkerConfig::new("typed", ["SomethingElse"]).heartbeat(FAST);
    let _w = Worker::new(&transport, config).unwrap().spawn().unwrap();
    let flow = Linear::new("f").add(atom("a", task_fn(|_| Ok(json!(1)))));
    let options = WorkerOptions {
        timeout: Duration::from_secs(10),
        discovery_timeout: Duration::from_millis(200),
        ..WorkerOptions::default()
    };
    let started = Instant::now();
    let result = Engine::builder(flow)
        .executor(WorkerExecutor::new(&transport, options).unwrap())
        .build()
        .unwrap()
        .run();
    assert!(started.elapsed() < Duration::from_secs(3));
    let (state, failures) = failures(result);
    // The revert of `a` finds no worker either: the flow ends in FAILURE.
    assert_eq!(state, FlowState::Failure);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().all(|f| f.kind == kinds::UNKNOWN_TASK_TYPE));
    assert!(
        failures[1].message.contains("revert of task type"),
        "{}",
        failures[1]
    );
    let f = &failures[0];
    assert!(f.message.contains("atom `a`"), "{f}");
    assert!(f.message.contains(CLOSURE_TASK_TYPE), "{f}");
    assert!(
        f.message.contains("`typed` runs [\"SomethingElse\"]"),
        "{f}"
    );
}

#[test]
fn with_no_worker_at_all_the_type_is_unknown() {
    let transport = InProcess::new();
    let flow = Linear::new("f").add(atom("a", task_fn(|_| Ok(json!(1)))));
    let options = WorkerOptions {
        timeout: Duration::from_secs(10),
        discovery_timeout: Duration::from_millis(100),
        ..WorkerOptions::default()
    };
    let result = Engine::builder(flow)
        .executor(WorkerExecutor::new(&transport, options).unwrap())
        .build()
        .unwrap()
        .run();
    let (_, failures) = failures(result);
    assert_eq!(failures[0].kind, kinds::UNKNOWN_TASK_TYPE);
    assert!(
        failures[0].message.contains("no worker is known"),
        "{}",
        failures[0]
    );
}

#[test]
fn a_worker_that_starts_late_still_gets_the_request() {
    let transport = InProcess::new();
    let flow = Linear::new("f").add(atom("a", task_fn(|_| Ok(json!(1)))).provides("x"));
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(10)))
        .build()
        .unwrap();
    let t = transport.clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        worker(&t, "late")
    });
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(engine.storage().fetch("x"), Some(&json!(1)));
    late.join().unwrap().stop().unwrap();
}

#[test]
fn a_lost_transport_fails_work_in_flight_and_later_work() {
    let transport = InProcess::new();
    let _w = worker(&transport, "w");
    let log = Log::new();
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let flow = Linear::new("f").add(atom("a", log.task("a"))).add(atom(
        "hang",
        waits_for_cancel(Arc::new(AtomicBool::new(false)), Some(started_tx)),
    ));
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(20)))
        .build()
        .unwrap();
    let engine_thread = std::thread::spawn(move || engine.run());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    transport.shut_down("broker restarted");
    let (state, failures) = failures(engine_thread.join().unwrap());
    // The revert of `hang` cannot be sent either: the flow ends in FAILURE.
    assert_eq!(state, FlowState::Failure);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures.iter().all(|f| f.kind == kinds::TRANSPORT_LOST),
        "{failures:?}"
    );
    assert!(failures.iter().all(|f| f.atom.as_deref() == Some("hang")));
    assert!(
        failures[0].message.contains("broker restarted"),
        "{}",
        failures[0]
    );
    assert_eq!(log.entries(), ["a"]);
    assert!(WorkerExecutor::new(&transport, WorkerOptions::default()).is_err());
}

#[test]
fn a_serializing_transport_refuses_closures() {
    let transport = InProcess::serializing();
    let _w = worker(&transport, "w");
    let flow = Linear::new("f").add(atom("closure", task_fn(|_| Ok(json!(1)))));
    let result = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(5)))
        .build()
        .unwrap()
        .run();
    let (_, failures) = failures(result);
    let f = &failures[0];
    assert_eq!(f.kind, kinds::NOT_SERIALIZABLE);
    assert!(f.message.contains("atom `closure`"), "{f}");
    assert!(
        f.message.contains("`taskflow::FnTask` is not a StoredTask"),
        "{f}"
    );
}

#[test]
fn a_graceful_stop_lets_running_tasks_finish() {
    let transport = InProcess::new();
    let w = worker(&transport, "w");
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let flow = Linear::new("f").add(
        atom(
            "slow",
            task_fn(move |_| {
                let _ = started_tx.send(());
                std::thread::sleep(Duration::from_millis(200));
                Ok(json!("finished"))
            }),
        )
        .provides("x"),
    );
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(10)))
        .build()
        .unwrap();
    let engine_thread = std::thread::spawn(move || {
        let state = engine.run();
        (state, engine.storage().fetch("x").cloned())
    });
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    w.stop().unwrap();
    let (state, x) = engine_thread.join().unwrap();
    assert_eq!(state.unwrap(), FlowState::Success);
    assert_eq!(x, Some(json!("finished")));
    assert!(transport.workers().is_empty());
}

#[test]
fn a_graceful_stop_abandons_tasks_after_the_grace_period() {
    let transport = InProcess::new();
    let config = WorkerConfig::new("w", [CLOSURE_TASK_TYPE])
        .heartbeat(FAST)
        .stop_grace(Duration::from_millis(100));
    let w = Worker::new(&transport, config).unwrap().spawn().unwrap();
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let flow = Linear::new("f").add(atom(
        "stubborn",
        task_fn(move |_| {
            let _ = started_tx.send(());
            std::thread::sleep(Duration::from_millis(1500));
            Ok(json!("too late"))
        }),
    ));
    let mut engine = Engine::builder(flow)
        .executor(executor(&transport, Duration::from_secs(10)))
        .build()
        .unwrap();
    let engine_thread = std::thread::spawn(move || engine.run());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let stopping = Instant::now();
    w.stop().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(1));
    let (_, failures) = failures(engine_thread.join().unwrap());
    assert_eq!(failures[0].kind, kinds::WORKER_LOST);
    assert!(
        failures[0].message.contains("grace period"),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].message.contains("atom `stubborn`"),
        "{}",
        failures[0]
    );
}

#[test]
fn worker_names_are_checked_and_unique() {
    let transport = InProcess::new();
    let _w = worker(&transport, "w");
    let err = Worker::new(&transport, WorkerConfig::new("w", ["T"])).unwrap_err();
    assert!(err.to_string().contains("already connected"), "{err}");
    let err = Worker::new(&transport, WorkerConfig::new("bad name*", ["T"])).unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
}

#[test]
fn retry_controllers_run_in_the_engine() {
    // No worker at all: a retry controller's work never needs one.
    let transport = InProcess::new();
    let mut executor = executor(&transport, Duration::from_secs(1));
    assert!(executor.wait_outcome().is_none());
    let work = AtomWork {
        atom: AtomIndex::new(3),
        name: "r".into(),
        action: Action::Execute,
        imp: AtomImpl::Retry(Arc::new(Times::new(2))),
        inputs: Inputs::new(),
        recovery: None,
        shared: RunShared::without_span(Listeners::default(), Arc::new(AtomicBool::new(false))),
        detail: None,
        timer: None,
    };
    executor.submit(work);
    let outcome = executor.try_outcome().unwrap();
    assert_eq!(outcome.atom, AtomIndex::new(3));
    assert!(outcome.result.is_ok());
    assert!(executor.wait_outcome().is_none());
}

/// A serializable task for the wire tests.
#[derive(Serialize, Deserialize)]
struct Scale {
    by: i64,
}

#[typetag::serde(name = "worker_tests::Scale")]
impl StoredTask for Scale {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        Ok(json!(ctx.input::<i64>("x")? * self.by))
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let seen = json!({
            "own_result": ctx.own_result(),
            "flow_failures": ctx.flow_failures().len(),
        });
        Err(TaskError::new("Seen", seen.to_string()))
    }
}

#[test]
fn work_data_round_trips_a_revert() {
    let inputs: Inputs = [("x", json!(7))].into_iter().collect();
    let work = AtomWork {
        atom: AtomIndex::new(1),
        name: "scale".into(),
        action: Action::Revert,
        imp: AtomImpl::Task(Arc::new(Scale { by: 3 })),
        inputs,
        recovery: Recovery::boxed(
            None,
            Some(Arc::new(json!(21))),
            None,
            Arc::new([Failure::new("Boom", "x").with_atom("other")]),
        ),
        shared: RunShared::without_span(Listeners::default(), Arc::new(AtomicBool::new(false))),
        detail: None,
        timer: None,
    };
    let data = WorkData::from_work(&work).unwrap();
    assert_eq!(data.task, json!({"worker_tests::Scale": {"by": 3}}));
    let request = Message::Request(Request {
        id: uuid::Uuid::new_v4(),
        reply_to: "engine-1".into(),
        atom: "scale".into(),
        task_type: "worker_tests::Scale".into(),
        action: Action::Revert,
        progress: false,
        payload: Payload::Data(Box::new(data)),
    });
    let bytes = serde_json::to_vec(&request).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(r#""type":"request""#), "{text}");
    assert!(text.contains(r#""action":"revert""#), "{text}");
    let Message::Request(back) = serde_json::from_slice(&bytes).unwrap() else {
        panic!("not a request: {text}");
    };
    let Payload::Data(data) = back.payload else {
        panic!("not data");
    };
    let work = data
        .into_work(
            "scale",
            back.action,
            Listeners::default(),
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
    let failure = work.run().unwrap().result.unwrap_err();
    assert_eq!(failure.kind, "Seen");
    assert_eq!(
        failure.message,
        json!({"own_result": 21, "flow_failures": 1}).to_string()
    );
}

#[test]
fn in_process_work_refuses_to_serialize() {
    let work = AtomWork {
        atom: AtomIndex::new(0),
        name: "a".into(),
        action: Action::Execute,
        imp: AtomImpl::Task(Arc::new(Scale { by: 1 })),
        inputs: Inputs::new(),
        recovery: None,
        shared: RunShared::without_span(Listeners::default(), Arc::new(AtomicBool::new(false))),
        detail: None,
        timer: None,
    };
    let err = serde_json::to_string(&Payload::Work(Box::new(work))).unwrap_err();
    assert!(err.to_string().contains("in-process"), "{err}");
}

#[test]
fn the_closure_type_name_is_the_advertised_one() {
    let task: Arc<dyn Task> = Arc::new(task_fn(|_| Ok(Value::Null)));
    assert_eq!(task.type_name(), CLOSURE_TASK_TYPE);
}

#[test]
fn a_serializing_transport_runs_typetag_tasks() {
    let transport = InProcess::serializing();
    let config = WorkerConfig::new("w", ["worker_tests::Scale"]).heartbeat(FAST);
    let w = Worker::new(&transport, config).unwrap().spawn().unwrap();
    let flow = Linear::new("f").add(atom("scale", Scale { by: 6 }).requires(["x"]).provides("y"));
    let mut engine = Engine::builder(flow)
        .store(json!({"x": 7}))
        .executor(executor(&transport, Duration::from_secs(5)))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(engine.storage().fetch("y"), Some(&json!(42)));
    w.stop().unwrap();
}

/// A stored async task: sent to a worker as data and run there.
#[derive(Serialize, Deserialize)]
struct AsyncScale {
    by: i64,
}

#[taskflow_patterns::async_trait]
#[typetag::serde(name = "worker_tests::AsyncScale")]
impl taskflow_patterns::StoredAsyncTask for AsyncScale {
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        std::future::ready(()).await;
        Ok(json!(ctx.input::<i64>("x")? * self.by))
    }
}

#[test]
fn a_stored_async_task_crosses_a_serializing_transport() {
    let transport = InProcess::serializing();
    let config = WorkerConfig::new("w", ["worker_tests::AsyncScale"]).heartbeat(FAST);
    let _w = Worker::new(&transport, config).unwrap().spawn().unwrap();
    let flow = Linear::new("f").add(
        taskflow_patterns::async_atom("scale", AsyncScale { by: 3 })
            .requires(["x"])
            .provides("y"),
    );
    let mut engine = Engine::builder(flow)
        .store(json!({ "x": 7 }))
        .executor(executor(&transport, Duration::from_secs(5)))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(engine.storage().fetch("y"), Some(&json!(21)));
}
