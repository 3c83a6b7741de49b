//! The job's store (`details.store`), on the SQLite board with a real
//! conductor and SQLite records: a conductor merges it over the store of
//! the job's flow detail when it builds the engine, as TaskFlow's jobs
//! documentation shows ("the flow global parameters are now the combined
//! store values"), and trashes a job whose `details.store` is not an
//! object. Each case runs on the serial and the parallel engine.

#![cfg(feature = "conductor")]
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use taskflow_engine::{EngineBuilder, Parallel};
use taskflow_jobboard::JobId;
use taskflow_jobboard::{
    post_flow, BoardOptions, Conductor, ConductorEvent, FlowSource, JobBoard, JobState, Outcome,
    PostFlow, SqliteBoard,
};
use taskflow_patterns::{atom, task_fn, FlowRegistry, FlowState, Linear};
use taskflow_persistence::{Backend, SqliteBackend};

/// The factory every case posts through.
const FACTORY: &str = "provision";

/// A board and records in files of a temporary directory.
struct Setup {
    board: Arc<SqliteBoard>,
    records: Arc<SqliteBackend>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let board = SqliteBoard::open(dir.path().join("jobs.db"), BoardOptions::default()).unwrap();
    let records = SqliteBackend::open(dir.path().join("flows.db")).unwrap();
    Setup {
        board: Arc::new(board),
        records: Arc::new(records),
        _dir: dir,
    }
}

/// What the task saw: the values of `region` and `size` of each run.
type Seen = Arc<Mutex<Vec<(Value, Value)>>>;

/// The flow `provision`: one task requiring `region` and `size` (the
/// latter optional, null by default), recording them.
fn registry(seen: &Seen) -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    let seen = seen.clone();
    registry.register(FACTORY, move |_| {
        let seen = seen.clone();
        Ok(Linear::new(FACTORY)
            .add(
                atom(
                    "create-volume",
                    task_fn(move |ctx| {
                        let region = ctx.value("region")?.clone();
                        let size = ctx.value("size")?.clone();
                        seen.lock().unwrap().push((region.clone(), size));
                        Ok(json!({ "region": region }))
                    }),
                )
                .requires(["region"])
                .optional("size", Value::Null)
                .provides("volume"),
            )
            .into())
    });
    registry
}

/// How a conductor configures the engines of a case.
type Configure = fn(EngineBuilder) -> EngineBuilder;

/// The engines each case runs on.
fn engines() -> [(&'static str, Configure); 2] {
    [
        ("serial", |b| b),
        ("parallel", |b| {
            b.executor(Parallel::new(2).expect("pool starts"))
        }),
    ]
}

/// Posts a `provision` job with `store` as its flow detail's store and
/// `details` as its details, through `post`.
fn post(s: &Setup, store: Value, details: Value, job_store: Option<Value>) -> JobId {
    let args = json!({});
    let mut post = PostFlow::new(
        "provision",
        FlowSource::Factory {
            name: FACTORY,
            args: &args,
        },
    )
    .store(store)
    .details(details);
    if let Some(Value::Object(values)) = job_store {
        post = post.job_store(values);
    }
    post_flow(&*s.board, &*s.records, post).unwrap().id
}

/// Runs one job with a conductor on `engine`; returns what the conductor
/// said about it.
fn run_one(s: &Setup, seen: &Seen, engine: Configure) -> Vec<ConductorEvent> {
    let events: Arc<Mutex<Vec<ConductorEvent>>> = Arc::default();
    let log = events.clone();
    let conductor = Conductor::builder("c1", s.board.clone(), s.records.clone())
        .registry(registry(seen))
        .configure_engine(engine)
        .listener(move |e: &ConductorEvent| log.lock().unwrap().push(e.clone()))
        .build();
    assert!(conductor.run_once().unwrap(), "the conductor ran no job");
    let events = events.lock().unwrap().clone();
    events
}

/// The store recorded in the flow detail of job `id`, and its state.
fn flow_detail(s: &Setup, id: JobId) -> (Value, FlowState) {
    let job = s.board.get(id).unwrap();
    let detail = s.records.get_flow_detail(job.flow_detail.unwrap()).unwrap();
    (Value::Object(detail.run.store), detail.state)
}

#[test]
fn the_job_store_gives_what_the_flow_detail_lacks() {
    for (engine, configure) in engines() {
        let s = setup();
        let seen = Seen::default();
        let id = post(
            &s,
            Value::Null,
            Value::Null,
            Some(json!({ "region": "eu-1" })),
        );
        assert_eq!(
            s.board.get(id).unwrap().details,
            json!({ "store": { "region": "eu-1" }, "factory": FACTORY })
        );
        let events = run_one(&s, &seen, configure);
        assert!(
            events.iter().any(|e| matches!(
                e,
                ConductorEvent::Consumed { job, flow_state: FlowState::Success } if *job == id
            )),
            "{engine}: {events:?}"
        );
        let job = s.board.get(id).unwrap();
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Complete, Some(Outcome::Consumed)),
            "{engine}"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [(json!("eu-1"), Value::Null)],
            "{engine}"
        );
        // The flow detail keeps its own (empty) store: the job's store is
        // merged at each claim, not recorded with the run.
        let (store, state) = flow_detail(&s, id);
        assert_eq!(state, FlowState::Success, "{engine}");
        assert!(
            store.is_null() || store.as_object().is_some_and(Map::is_empty),
            "{engine}: {store}"
        );
    }
}

#[test]
fn without_the_job_store_the_flow_cannot_run() {
    // The same job with no job store: nothing provides `region`, so the
    // conductor does not run the flow (it leaves the job unconsumed).
    let s = setup();
    let seen = Seen::default();
    let id = post(&s, Value::Null, Value::Null, None);
    let events = run_one(&s, &seen, |b| b);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ConductorEvent::Consumed { .. })),
        "{events:?}"
    );
    assert!(seen.lock().unwrap().is_empty());
    assert_ne!(
        s.board.get(id).unwrap().outcome,
        Some(Outcome::Consumed),
        "{events:?}"
    );
}

#[test]
fn a_job_store_value_overrides_the_flow_details() {
    for (engine, configure) in engines() {
        let s = setup();
        let seen = Seen::default();
        let id = post(
            &s,
            json!({ "region": "us-1", "size": 10 }),
            json!({ "owner": "ops" }),
            Some(json!({ "region": "eu-1" })),
        );
        let events = run_one(&s, &seen, configure);
        assert!(
            events.iter().any(|e| matches!(
                e,
                ConductorEvent::Consumed { job, flow_state: FlowState::Success } if *job == id
            )),
            "{engine}: {events:?}"
        );
        // `region` from the job's store, `size` from the flow detail's.
        assert_eq!(
            *seen.lock().unwrap(),
            [(json!("eu-1"), json!(10))],
            "{engine}"
        );
        let (store, _) = flow_detail(&s, id);
        assert_eq!(store, json!({ "region": "us-1", "size": 10 }), "{engine}");
    }
}

#[test]
fn a_job_store_that_is_not_an_object_trashes_the_job() {
    for (engine, configure) in engines() {
        for bad in [json!(["eu-1"]), json!("region=eu-1"), json!(7)] {
            let s = setup();
            let seen = Seen::default();
            let id = post(
                &s,
                json!({ "region": "us-1" }),
                json!({ "store": bad }),
                None,
            );
            let events = run_one(&s, &seen, configure);
            let job = s.board.get(id).unwrap();
            assert_eq!(job.state, JobState::Complete, "{engine} {bad}");
            let Some(Outcome::Trashed { reason }) = job.outcome else {
                panic!("{engine} {bad}: expected the job trashed, got {job:?}");
            };
            assert!(
                reason.contains("details.store must be a JSON object"),
                "{engine} {bad}: {reason}"
            );
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    ConductorEvent::Trashed { job, reason: r } if *job == id && *r == reason
                )),
                "{engine} {bad}: {events:?}"
            );
            assert!(seen.lock().unwrap().is_empty(), "{engine} {bad}: it ran");
            let (_, state) = flow_detail(&s, id);
            assert_eq!(state, FlowState::Pending, "{engine} {bad}");
        }
    }
}

#[test]
fn a_null_job_store_is_no_job_store() {
    let s = setup();
    let seen = Seen::default();
    let id = post(
        &s,
        json!({ "region": "us-1" }),
        json!({ "store": null }),
        None,
    );
    let events = run_one(&s, &seen, |b| b);
    assert!(
        events.iter().any(|e| matches!(
            e,
            ConductorEvent::Consumed { job, flow_state: FlowState::Success } if *job == id
        )),
        "{events:?}"
    );
    assert_eq!(*seen.lock().unwrap(), [(json!("us-1"), Value::Null)]);
}
