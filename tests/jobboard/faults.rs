//! Faults that must neither lose nor stall a job: a panicking listener, a
//! panic while building the engine, a task interrupted by a graceful stop,
//! jobs a conductor cannot run (a factory it lacks, records it cannot
//! find), and records that are corrupt.

use std::sync::atomic::{AtomicUsize, Ordering};

use taskflow::jobboard::NewJob;
use taskflow::{AtomState, FlowDetail, LogBook};

use super::*;

/// Panics on every atom's `SUCCESS`.
#[derive(Default)]
struct PanicsOnSuccess(AtomicUsize);

impl Listener for PanicsOnSuccess {
    fn on_atom(&self, e: &taskflow::AtomEvent) {
        if e.to == AtomState::Success {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("listener bug on `{}`", e.atom);
        }
    }
}

/// A conductor whose engines carry a panicking listener still finishes its
/// jobs (the listener is dropped), holds none of them, and returns from
/// `run` when stopped; a second, healthy conductor beside it is never
/// starved.
#[test]
fn a_panicking_listener_neither_stalls_a_conductor_nor_holds_its_job() {
    let s = setup(BoardOptions::default());
    let ids: Vec<_> = (0..3).map(|i| post_chain(&s, &format!("job{i}"))).collect();
    let panics = Arc::new(PanicsOnSuccess::default());
    let (sick_events, healthy_events) = (Events::default(), Events::default());
    let p = panics.clone();
    let sick = Conductor::builder("sick", s.board.clone(), s.records.clone())
        .listener(sick_events.listener())
        .wait_timeout(Duration::from_millis(20))
        .configure_engine(move |b| b.listener(p.clone()))
        .build();
    let healthy = conductor(&s, "healthy", &healthy_events);
    let (stop_sick, stop_healthy) = (
        StopOnDrop(sick.stop_handle()),
        StopOnDrop(healthy.stop_handle()),
    );
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| sick.run());
        sick_events.wait_for(
            "a claim by the sick conductor",
            Duration::from_secs(10),
            |e| matches!(e, ConductorEvent::Claimed { .. }),
        );
        scope.spawn(|| healthy.run());
        let until = Instant::now() + Duration::from_secs(10);
        while ids
            .iter()
            .any(|id| s.board.get(*id).expect("job").state != JobState::Complete)
        {
            assert!(
                Instant::now() < until,
                "jobs still open: {:?} / {:?}",
                sick_events.all(),
                healthy_events.all()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stop_sick.0.stop();
        stop_healthy.0.stop();
    });
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "both conductors returned from run"
    );
    assert!(
        panics.0.load(Ordering::SeqCst) >= 1,
        "the listener did panic"
    );
    for id in ids {
        let job = s.board.get(id).expect("job");
        assert_eq!(job.outcome, Some(Outcome::Consumed), "{job:?}");
        let flow = s
            .records
            .get_flow_detail(job.flow_detail.expect("flow detail"))
            .expect("records");
        assert_eq!(flow.state, FlowState::Success);
    }
}

/// A panic while the conductor builds a job's engine gives the job back
/// (skipped, with the panic's message) for another conductor to run.
#[test]
fn a_panic_while_building_the_engine_gives_the_job_back() {
    let s = setup(BoardOptions::default());
    let id = post_chain(&s, "job");
    let events = Events::default();
    let sick = Conductor::builder("sick", s.board.clone(), s.records.clone())
        .listener(events.listener())
        .configure_engine(|_| panic!("misconfigured"))
        .build();
    assert!(sick.run_once().expect("runs"));
    let skipped = events.wait_for("a skip", Duration::from_secs(1), |e| {
        matches!(e, ConductorEvent::Skipped { .. })
    });
    assert!(
        matches!(&skipped, ConductorEvent::Skipped { job, reason, .. } if *job == id && reason.contains("misconfigured")),
        "{skipped:?}"
    );
    assert_eq!(s.board.get(id).expect("job").state, JobState::Unclaimed);
    let healthy = Events::default();
    assert!(conductor(&s, "healthy", &healthy).run_once().expect("runs"));
    assert_eq!(
        s.board.get(id).expect("job").outcome,
        Some(Outcome::Consumed)
    );
}

/// Waits, the first time it runs, until its run is asked to stop, then
/// fails with an ordinary error (as a task that honours `is_cancelled`
/// might); runs again quickly. Logs each run.
#[derive(Serialize, Deserialize)]
struct WaitsForStop {
    log: PathBuf,
}

#[typetag::serde]
impl StoredTask for WaitsForStop {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        let first = !self.log.exists();
        append(&self.log, "exec wait");
        if first {
            let until = Instant::now() + Duration::from_secs(20);
            while !ctx.is_cancelled() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(TaskError::new(
                "Cancelled",
                "gave up: the conductor is stopping",
            ));
        }
        Ok(json!("waited"))
    }

    fn revert(&self, _: &mut Context) -> Result<(), TaskError> {
        append(&self.log, "revert wait");
        Ok(())
    }
}

/// A rolling restart: the conductor running a job is stopped while a task
/// waits; the task gives up because of the stop. Nothing is failed or
/// reverted: the job is handed over, and the next conductor runs the task
/// again and the flow to `SUCCESS`.
#[test]
fn a_task_interrupted_by_a_stop_runs_again_on_the_next_conductor() {
    let s = setup(BoardOptions::default());
    let log = s.dir.path().join("wait.log");
    let flow: Flow = Linear::new("restart")
        .add(atom("wait", WaitsForStop { log: log.clone() }))
        .into();
    let id = post_flow_of(&s, "restart", &flow);
    let events = Events::default();
    let first = conductor(&s, "first", &events);
    let stop = StopOnDrop(first.stop_handle());
    std::thread::scope(|scope| {
        scope.spawn(|| first.run());
        let until = Instant::now() + Duration::from_secs(10);
        while !log.exists() {
            assert!(Instant::now() < until, "the task never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.0.stop();
    });
    assert!(
        matches!(events.all().last(), Some(ConductorEvent::Abandoned { job, .. }) if *job == id),
        "{:?}",
        events.all()
    );
    let job = s.board.get(id).expect("job");
    assert_eq!(job.state, JobState::Unclaimed);
    let records = s
        .records
        .get_flow_detail(job.flow_detail.expect("flow detail"))
        .expect("records");
    assert_eq!(records.state, FlowState::Suspended);
    let wait = records.atom_detail("wait").expect("atom detail");
    assert_eq!(wait.state, AtomState::Pending);
    assert!(wait.failure().is_none(), "{:?}", wait.failure());

    let second = Events::default();
    assert!(conductor(&s, "second", &second).run_once().expect("runs"));
    assert!(
        matches!(
            second.all().last(),
            Some(ConductorEvent::Consumed {
                flow_state: FlowState::Success,
                ..
            })
        ),
        "{:?}",
        second.all()
    );
    assert_eq!(
        read_log(&log),
        ["exec wait", "exec wait"],
        "nothing reverted"
    );
}

fn resize_registry() -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register("resize", |_| Ok(chain(None, None)));
    registry
}

/// A job built by a factory this conductor lacks is not claimed by it
/// (the job names its factory); one whose details do not name it is
/// claimed, given back and skipped for a while. Neither is trashed: a
/// conductor with the factory runs both.
#[test]
fn a_job_this_conductor_cannot_run_is_left_to_one_that_can() {
    let s = setup(BoardOptions::default());
    let args = json!({});
    let post = |details: Value| {
        post_flow(
            &*s.board,
            &*s.records,
            PostFlow::new(
                "resize",
                FlowSource::Factory {
                    name: "resize",
                    args: &args,
                },
            )
            .store(json!({"x": 0}))
            .details(details),
        )
        .expect("posted")
    };
    let named = post(json!({ "owner": "ops" }));
    assert_eq!(named.factory(), Some("resize"));
    assert_eq!(named.details["owner"], "ops");
    let events = Events::default();
    let old = conductor(&s, "old", &events);
    assert!(!old.run_once().expect("runs"), "not claimed");
    assert!(events.all().is_empty(), "{:?}", events.all());

    let unnamed = post(json!("opaque details"));
    assert_eq!(unnamed.factory(), None);
    assert!(old.run_once().expect("runs"));
    let skipped = events.all();
    assert!(
        matches!(
            skipped.last(),
            Some(ConductorEvent::Skipped { job, reason, .. })
                if *job == unnamed.id && reason.contains("`resize`")
        ),
        "{skipped:?}"
    );
    assert!(!old.run_once().expect("runs"), "skipped for a while");
    for job in [named.id, unnamed.id] {
        assert_eq!(s.board.get(job).expect("job").state, JobState::Unclaimed);
    }

    let new_events = Events::default();
    let new = Conductor::builder("new", s.board.clone(), s.records.clone())
        .listener(new_events.listener())
        .registry(resize_registry())
        .build();
    assert!(new.run_once().expect("runs"));
    assert!(new.run_once().expect("runs"));
    for job in [named.id, unnamed.id] {
        assert_eq!(
            s.board.get(job).expect("job").outcome,
            Some(Outcome::Consumed)
        );
    }
}

/// A job whose records this conductor cannot find (it points at another
/// database) is skipped, not trashed; one whose records are corrupt (no
/// flow definition, a store that is not an object) is trashed, with the
/// reason.
#[test]
fn only_corrupt_records_trash_a_job() {
    let s = setup(BoardOptions::default());
    let mut elsewhere = NewJob::new("elsewhere");
    elsewhere.flow_detail = Some(taskflow::FlowDetailId::new());
    let elsewhere = s.board.post(elsewhere).expect("posted");
    let events = Events::default();
    let c = conductor(&s, "c", &events);
    assert!(c.run_once().expect("runs"));
    assert!(
        matches!(
            events.all().last(),
            Some(ConductorEvent::Skipped { job, reason, .. })
                if *job == elsewhere.id && reason.contains("not found")
        ),
        "{:?}",
        events.all()
    );
    assert_eq!(
        s.board.get(elsewhere.id).expect("job").state,
        JobState::Unclaimed
    );

    let mut book = LogBook::new("broken");
    let undefined = FlowDetail::new("undefined");
    let mut bad_store = FlowDetail::new("bad-store");
    bad_store.meta.insert(
        "flow".into(),
        serde_json::to_value(chain(None, None)).expect("stored"),
    );
    bad_store
        .meta
        .insert("store".into(), json!("not an object"));
    let ids = [undefined.uuid, bad_store.uuid];
    book.flow_details = vec![undefined, bad_store];
    s.records.save_logbook(&book).expect("saved");
    for (flow_detail, why) in ids.into_iter().zip([
        "no flow definition",
        "its initial store is not a JSON object",
    ]) {
        let mut job = NewJob::new("broken");
        job.logbook = Some(book.uuid);
        job.flow_detail = Some(flow_detail);
        let job = s.board.post(job).expect("posted");
        assert!(c.run_once().expect("runs"));
        let job = s.board.get(job.id).expect("job");
        match job.outcome {
            Some(Outcome::Trashed { reason }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("expected trashed ({why}), got {other:?}"),
        }
    }
}
