//! Running: suspending, run_iter, bad input, build errors, records of every transition, progress, check-ins.

use super::*;

/// A listener (or another thread) suspends the flow; running again resumes
/// where it stopped, without re-running finished atoms.
pub fn suspend_and_resume(factory: Factory<'_>) {
    struct SuspendAfter(String, crate::SuspendHandle);
    impl Listener for SuspendAfter {
        fn on_atom(&self, e: &crate::AtomEvent) {
            if *e.atom == *self.0 && e.to == AtomState::Success {
                self.1.suspend();
            }
        }
    }
    let log = Log::new();
    let flow =
        Linear::new("f").add_all((0..5).map(|i| atom(format!("a{i}"), log.task(&format!("a{i}")))));
    let handle = crate::SuspendHandle::new();
    let mut engine = factory(Engine::builder(flow))
        .suspend_handle(handle.clone())
        .listener(SuspendAfter("a1".into(), handle))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(log.entries(), ["a0", "a1"]);
    assert_eq!(engine.storage().flow_state(), FlowState::Suspended);
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a0", "a1", "a2", "a3", "a4"]);
}

/// `run_iter` yields every transition, flow and atoms, then ends.
pub fn run_iter_yields_state_changes(factory: Factory<'_>) {
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("b", log.failing("b")));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    let items: Vec<Result<Event, EngineError>> = engine.run_iter().collect();
    let (last, events) = items.split_last().unwrap();
    assert!(matches!(
        last,
        Err(EngineError::Failed {
            state: FlowState::Reverted,
            ..
        })
    ));
    let phases: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(Event::Engine(phase)) => Some(phase.to_string()),
            _ => None,
        })
        .collect();
    // The loop's phases, as TaskFlow's run_iter yields them: RESUMING
    // first, rounds of scheduling and analyzing (waiting where the
    // executor runs elsewhere), GAME_OVER right before the flow's end.
    assert_eq!(phases.first().map(String::as_str), Some("RESUMING"));
    assert_eq!(phases.last().map(String::as_str), Some("GAME_OVER"));
    assert!(phases.iter().any(|p| p == "SCHEDULING"), "{phases:?}");
    assert!(phases.iter().any(|p| p == "ANALYZING"), "{phases:?}");
    assert!(matches!(
        events[events.len() - 2],
        Ok(Event::Engine(crate::EngineState::GameOver))
    ));
    let summary: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, Ok(Event::Engine(_))))
        .map(|e| match e {
            Ok(Event::Flow(f)) => format!("flow:{}", f.to),
            Ok(Event::Atom(a)) => format!("{}:{}", a.atom, a.to),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("error:{e}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "flow:RUNNING",
            "a:RUNNING",
            "a:SUCCESS",
            "b:RUNNING",
            "b:FAILURE",
            "b:REVERTING",
            "b:REVERTED",
            "a:REVERTING",
            "a:REVERTED",
            "flow:REVERTED"
        ]
    );
}

/// Bad input at run time never panics: a panicking task, a missing input
/// and an input of the wrong type each become a failure naming the atom.
pub fn bad_input_becomes_failures(factory: Factory<'_>) {
    let flow = Linear::new("f").add(atom("p", task_fn(|_| panic!("kaboom {}", 7))));
    let err = run(factory, flow).0.unwrap_err();
    let f = &err.failures()[0];
    assert_eq!(
        (f.kind.as_str(), f.message.as_str(), f.atom.as_deref()),
        ("panic", "kaboom 7", Some("p"))
    );

    let flow = Linear::new("f")
        .add(atom("n", task_fn(|_| Ok(json!("not a number")))).provides("n"))
        .add(atom("use", task_fn(|ctx| Ok(json!(ctx.input::<u32>("n")? + 1)))).requires(["n"]));
    let err = run(factory, flow).0.unwrap_err();
    let f = &err.failures()[0];
    assert_eq!(f.kind, TaskError::INVALID_INPUT);
    assert!(
        f.message.contains("input `n` of atom `use`") && f.message.contains("u32"),
        "{f}"
    );

    let flow = Graph::new("g")
        .add(atom("check", task_fn(|_| Ok(json!(0)))))
        .add(atom("skipped", task_fn(|_| Ok(json!(1)))).provides("x"))
        .add(atom("needs", task_fn(|_| Ok(Value::Null))).requires(["x"]))
        .link_if("check", "skipped", decider_fn(|_| false), Depth::Atom);
    let err = run(factory, flow).0.unwrap_err();
    let f = &err.failures()[0];
    assert_eq!(f.kind, TaskError::MISSING_INPUT);
    assert_eq!(f.atom.as_deref(), Some("needs"));
    assert!(
        f.message.contains("requires `x`")
            && f.message.contains("`skipped` provides it, but is IGNORE"),
        "{f}"
    );
}

/// `build` reports every compile and validation error, naming culprits.
pub fn build_reports_every_error(factory: Factory<'_>) {
    let flow = Linear::new("f")
        .add(atom("a", task_fn(|_| Ok(Value::Null))).requires(["nowhere"]))
        .add(atom("b", task_fn(|_| Ok(Value::Null))).requires(["also_nowhere"]));
    let Err(EngineError::Compile(errors)) = factory(Engine::builder(flow)).build() else {
        panic!("should not build")
    };
    assert_eq!(errors.errors().len(), 2);
    assert!(
        matches!(&errors.errors()[1], CompileError::MissingRequirement { atom, symbol, .. } if atom == "b" && symbol == "also_nowhere")
    );
    let err = factory(Engine::builder(Linear::new("f")))
        .store(json!([1]))
        .build()
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::InvalidStore(_)));
}

/// Every transition is in the records: after a run the backend's flow
/// detail matches the engine's.
pub fn records_hold_every_transition(factory: Factory<'_>) {
    let backend = Arc::new(MemoryBackend::new());
    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")).provides("x"))
        .add(
            Linear::new("s")
                .add(atom("b", log.flaky("b", 1)))
                .with_retry(Times::new(2)),
        );
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .build()
        .unwrap();
    engine.run().unwrap();
    let stored = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    assert_eq!(stored.state, FlowState::Success);
    assert_eq!(stored.atom_details, engine.storage().atom_details());
    assert_eq!(
        stored.atom_detail("a").unwrap().result.as_deref(),
        Some(&json!("a"))
    );
    assert_eq!(stored.atom_detail("s_retry").unwrap().history().len(), 2);
    assert!(stored.run.store.is_empty());
    let book = backend.get_logbook(engine.storage().logbook_id()).unwrap();
    assert_eq!(book.flow_details.len(), 1);
}

/// Tasks report progress to listeners.
pub fn progress_reaches_listeners(factory: Factory<'_>) {
    let backend = Arc::new(MemoryBackend::new());
    let seen_in_records = Arc::new(Mutex::new(None));
    let (reader, seen) = (backend.clone(), seen_in_records.clone());
    let flow = Linear::new("f").add(atom(
        "p",
        task_fn(move |ctx| {
            ctx.progress(0.5);
            // Another reader of the records sees the report while the task
            // runs (the worker engine records it when the report arrives).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let progress = reader
                    .list_logbooks()
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .flat_map(|b| b.flow_details)
                    .flat_map(|f| f.atom_details)
                    .find(|d| &*d.name == "p")
                    .map(|d| d.progress());
                if progress == Some(0.5) || std::time::Instant::now() > deadline {
                    *seen.lock().unwrap() = progress;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            ctx.progress(2.0);
            Ok(Value::Null)
        }),
    ));
    let capture = Arc::new(CapturingListener::new());
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .listener(capture.clone())
        .build()
        .unwrap();
    engine.run().unwrap();
    // The engine reports 0 when the task starts and 1 when it ends, around
    // what the task reports (clamped), as TaskFlow does.
    assert_eq!(
        capture.progress(),
        [
            ("p".to_owned(), 0.0),
            ("p".to_owned(), 0.5),
            ("p".to_owned(), 1.0),
            ("p".to_owned(), 1.0)
        ]
    );
    assert_eq!(*seen_in_records.lock().unwrap(), Some(0.5));
    let records = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    let p = records.atom_detail("p").unwrap();
    assert_eq!(p.progress(), 1.0);
    assert!(!p
        .meta()
        .contains_key(taskflow_persistence::AtomDetail::PROGRESS_KEY));
}

/// The check-in of the atom named `atom` in the records of `backend`
/// (its message and time), read as another process would.
fn recorded_checkin(backend: &dyn Backend, atom: &str) -> Option<(String, u64)> {
    let checkin = backend
        .list_logbooks()
        .unwrap()
        .into_iter()
        .flatten()
        .flat_map(|b| b.flow_details)
        .flat_map(|f| f.atom_details)
        .find(|d| &*d.name == atom)?
        .meta()
        .get(taskflow_persistence::AtomDetail::CHECKIN_KEY)?
        .clone();
    Some((
        checkin["message"].as_str()?.to_owned(),
        checkin["at"].as_u64()?,
    ))
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// A task's check-ins are in its record while it runs (another reader
/// sees them), reach listeners, and the last one stays in the record when
/// the task ends; a revert's check-ins too; the atom's next run starts
/// with none.
pub fn checkins_are_recorded_and_heard(factory: Factory<'_>) {
    let backend = Arc::new(MemoryBackend::new());
    let seen_in_records = Arc::new(Mutex::new(None));
    let (reader, seen) = (backend.clone(), seen_in_records.clone());
    let runs = Arc::new(AtomicUsize::new(0));
    let flow = Linear::new("f").add(atom(
        "copy",
        task_fn(move |ctx| {
            if runs.fetch_add(1, Ordering::SeqCst) > 0 {
                return Ok(Value::Null); // A later run says nothing.
            }
            ctx.checkin("copied 12 of 40 blobs");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let checkin = recorded_checkin(&*reader, "copy").map(|(m, _)| m);
                if checkin.is_some() || std::time::Instant::now() > deadline {
                    *seen.lock().unwrap() = checkin;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            ctx.checkin(String::from("copied 40 of 40 blobs"));
            Ok(json!(40))
        })
        .with_revert(|ctx| {
            ctx.checkin("deleted 40 blobs");
            Ok(())
        }),
    ));
    let capture = Arc::new(CapturingListener::new());
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .listener(capture.clone())
        .build()
        .unwrap();
    let before = now_ms();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let after = now_ms();
    assert_eq!(
        seen_in_records.lock().unwrap().as_deref(),
        Some("copied 12 of 40 blobs")
    );
    let checkins = |c: &CapturingListener| -> Vec<String> {
        c.checkins()
            .into_iter()
            .map(|(a, m)| format!("{a}: {m}"))
            .collect()
    };
    assert_eq!(
        checkins(&capture),
        ["copy: copied 12 of 40 blobs", "copy: copied 40 of 40 blobs"]
    );
    let (message, at) = recorded_checkin(&*backend, "copy").unwrap();
    assert_eq!(message, "copied 40 of 40 blobs");
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    let in_engine = engine.storage().atom_detail("copy").unwrap();
    assert_eq!(
        in_engine.meta()[taskflow_persistence::AtomDetail::CHECKIN_KEY]["message"],
        "copied 40 of 40 blobs"
    );

    assert_eq!(engine.revert().unwrap(), FlowState::Reverted);
    assert_eq!(checkins(&capture)[2..], ["copy: deleted 40 blobs"]);
    let (message, _) = recorded_checkin(&*backend, "copy").unwrap();
    assert_eq!(message, "deleted 40 blobs");

    // Run again: the task starts with nothing said, and says nothing.
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(recorded_checkin(&*backend, "copy"), None);
    assert_eq!(checkins(&capture).len(), 3);
}

/// A builder told contradictory things refuses to build, saying which: an
/// executor or a backend given twice, a backend, a store or a logbook name
/// for a flow loaded from its records.
pub fn contradictory_configuration_is_refused(factory: Factory<'_>) {
    use crate::{ConfigError, Serial};
    let flow = || Linear::new("f").add(atom("a", task_fn(|_| Ok(Value::Null))));
    let refused = |b: EngineBuilder| match b.build() {
        Err(EngineError::Config(e)) => e,
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("expected a configuration error, got an engine"),
    };
    assert_eq!(
        refused(
            factory(Engine::builder(flow()))
                .executor(Serial::new())
                .executor(Serial::new())
        ),
        ConfigError::Twice("executor")
    );
    assert_eq!(
        refused(
            factory(Engine::builder(flow()))
                .persistence(MemoryBackend::new())
                .persistence(MemoryBackend::new())
        ),
        ConfigError::Twice("persistence")
    );
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let registry = registry_of(move || flow().into());
    let mut first = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .build()
        .unwrap();
    first.prepare().unwrap();
    let id = first.storage().flow_detail_id();
    let load = || factory(Engine::load_with(backend.clone(), id, &registry).unwrap());
    assert_eq!(
        refused(load().persistence(MemoryBackend::new())),
        ConfigError::PersistenceOfLoadedFlow
    );
    assert_eq!(
        refused(load().store(json!({}))),
        ConfigError::StoreOfLoadedFlow
    );
    assert_eq!(
        refused(load().logbook_name("other")),
        ConfigError::LogbookOfLoadedFlow
    );
    assert_eq!(load().build().unwrap().run().unwrap(), FlowState::Success);
}

/// The type name the conformance suite's [`Client`] task advertises, for
/// workers on an in-process transport to run it.
pub const CLIENT_TASK_TYPE: &str = "taskflow::testkit::Client";

/// A task holding what does not serialize (a client, here a lock around
/// what it has sent): a plain [`Task`](taskflow_patterns::Task), not a
/// stored one.
pub struct Client {
    sent: Arc<Mutex<Vec<String>>>,
}

impl taskflow_patterns::Task for Client {
    fn execute(&self, ctx: &mut taskflow_patterns::Context<'_>) -> Result<Value, TaskError> {
        let message: String = ctx.input("message")?;
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| TaskError::new("Poisoned", "the client's lock"))?;
        sent.push(format!("{}:{message}", ctx.atom_name()));
        Ok(json!(sent.len()))
    }

    fn type_name(&self) -> &'static str {
        CLIENT_TASK_TYPE
    }
}

/// A task type that holds a client (it is not serializable) runs on the
/// engine when the flow comes from a registered factory: built by the
/// factory and run; then a run suspended after its first atom is rebuilt
/// by the factory from its records by a load, which runs only the rest.
pub fn a_task_holding_a_client_runs_through_a_factory(factory: Factory<'_>) {
    struct SuspendAfterFirst(crate::SuspendHandle);
    impl Listener for SuspendAfterFirst {
        fn on_atom(&self, e: &crate::AtomEvent) {
            if &*e.atom == "first" && e.to == AtomState::Success {
                self.0.suspend();
            }
        }
    }
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut registry = FlowRegistry::new();
    let client = sent.clone();
    registry.register("notify", move |_| {
        let client = |name: &str| {
            atom(
                name,
                Client {
                    sent: client.clone(),
                },
            )
        };
        Ok(Linear::new("notify")
            .add(client("first").requires(["message"]).provides("one"))
            .add(
                client("second")
                    .requires(["one", "message"])
                    .provides("two"),
            )
            .into())
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::from_factory(&registry, "notify", Value::Null).unwrap())
        .store(json!({ "message": "hello" }))
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(engine.storage().fetch("two"), Some(&json!(2)));
    assert_eq!(*sent.lock().unwrap(), ["first:hello", "second:hello"]);

    let handle = crate::SuspendHandle::new();
    let mut engine = factory(Engine::from_factory(&registry, "notify", Value::Null).unwrap())
        .store(json!({ "message": "again" }))
        .persistence(backend.clone())
        .suspend_handle(handle.clone())
        .listener(SuspendAfterFirst(handle))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    let id = engine.storage().flow_detail_id();
    drop(engine);
    let mut resumed = factory(Engine::load_with(backend, id, &registry).unwrap())
        .build()
        .unwrap();
    assert_eq!(resumed.run().unwrap(), FlowState::Success);
    assert_eq!(
        *sent.lock().unwrap(),
        ["first:hello", "second:hello", "first:again", "second:again"],
        "the load ran only the atom left, with the store of the records"
    );
}
