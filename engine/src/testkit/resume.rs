//! Resuming from records, changed flows, and owner fencing.

use super::*;
use taskflow_persistence::Epoch;

/// Runs `factory_name` of `registry` on `backend` until `atom` enters
/// `state`, as a process that stops there would; returns the flow detail id.
fn run_until(
    factory: Factory<'_>,
    registry: &FlowRegistry,
    backend: &Arc<dyn Backend>,
    atom: &'static str,
    state: AtomState,
) -> FlowDetailId {
    let handle = crate::SuspendHandle::new();
    let builder = Engine::from_factory(registry, "flow", Value::Null).unwrap();
    let mut engine = factory(builder)
        .persistence(backend.clone())
        .suspend_handle(handle.clone())
        .listener(SuspendOn(atom, state, handle))
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    engine.storage().flow_detail_id()
}

fn resume(
    factory: Factory<'_>,
    registry: &FlowRegistry,
    backend: &Arc<dyn Backend>,
    id: FlowDetailId,
) -> crate::Engine {
    factory(Engine::load_with(backend.clone(), id, registry).unwrap())
        .build()
        .unwrap()
}

/// A flow resumed from its records in a new engine skips atoms already
/// `SUCCESS` and runs again an atom found `RUNNING`.
pub fn resume_skips_finished_atoms(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry =
        registry_of(move || {
            Linear::new("f")
                .add_all((0..5).map(|i| {
                    atom(format!("a{i}"), l.task(&format!("a{i}"))).provides(format!("x{i}"))
                }))
                .into()
        });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let id = run_until(factory, &registry, &backend, "a1", AtomState::Success);
    // As if the process had died while a2 ran.
    let a2 = backend
        .get_flow_detail(id)
        .unwrap()
        .atom_detail("a2")
        .unwrap()
        .uuid;
    backend
        .update_atom_state(
            id,
            a2,
            AtomState::Running,
            taskflow_patterns::Intention::Execute,
            Epoch::ZERO,
        )
        .unwrap();
    let mut engine = resume(factory, &registry, &backend, id);
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a0", "a1", "a2", "a3", "a4"]);
    assert_eq!(engine.storage().fetch("x0"), Some(&json!("a0")));
    assert_eq!(
        backend.get_flow_detail(id).unwrap().state,
        FlowState::Success
    );
}

/// A revert in progress continues after a resume; nothing runs forward again.
pub fn resume_continues_a_revert(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .add(atom("c", l.task("c")))
            .add(atom("boom", l.failing("boom")))
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let id = run_until(factory, &registry, &backend, "c", AtomState::Reverted);
    assert_eq!(log.entries(), ["a", "b", "c", "boom", "~boom", "~c"]);
    let mut engine = resume(factory, &registry, &backend, id);
    let err = engine.run().unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Failed {
                state: FlowState::Reverted,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.failures()[0].atom.as_deref(), Some("boom"));
    assert_eq!(
        log.entries(),
        ["a", "b", "c", "boom", "~boom", "~c", "~b", "~a"]
    );
}

/// A retry controller's history carries on after a resume.
pub fn resume_keeps_retry_history(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let flaky = log.flaky("flaky", 2);
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(
                Linear::new("s")
                    .add(atom("flaky", flaky.clone()))
                    .with_retry(retry("r", Times::new(3))),
            )
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let id = run_until(factory, &registry, &backend, "r", AtomState::Retrying);
    let mut engine = resume(factory, &registry, &backend, id);
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(
        log.entries(),
        ["a", "flaky", "~flaky", "flaky", "~flaky", "flaky"]
    );
    assert_eq!(
        engine.storage().atom_detail("r").unwrap().history().len(),
        3
    );
}

/// Records of a flow that changed incompatibly are refused, naming the
/// atom, unless the user accepts the change.
pub fn resume_refuses_a_changed_flow(factory: Factory<'_>) {
    let log = Log::new();
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let l = log.clone();
    let v1 = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .into()
    });
    let id = run_until(factory, &v1, &backend, "a", AtomState::Success);
    for (flow, atom, reason) in [
        (
            Linear::new("f")
                .add(atom("a", log.task("a")))
                .add(atom("b2", log.task("b"))),
            "b2",
            "is in the flow but not in its records",
        ),
        (
            Linear::new("f").add(atom("a", log.task("a"))),
            "b",
            "is in the records but not in the flow",
        ),
        (
            Linear::new("f")
                .add(atom("a", log.task("a")).version(2, 0))
                .add(atom("b", log.task("b"))),
            "a",
            "is version 2.0 in the flow but its records were written by version 1.0",
        ),
    ] {
        let flow: Flow = flow.into();
        let v2 = registry_of(move || flow.clone());
        let err = factory(Engine::load_with(backend.clone(), id, &v2).unwrap())
            .build()
            .err()
            .unwrap();
        let EngineError::Mismatch {
            atom: culprit,
            reason: why,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(culprit, atom);
        assert!(why.starts_with(reason), "{err}");
        assert!(err.to_string().contains("accept_changed_flow"), "{err}");
    }
    let l = log.clone();
    let v3 = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("c", l.task("c")))
            .into()
    });
    let mut engine = factory(Engine::load_with(backend.clone(), id, &v3).unwrap())
        .accept_changed_flow()
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "c"]);
    let err = Engine::load(backend, id).err().unwrap();
    assert!(
        err.to_string().contains("flow factory named `flow`"),
        "{err}"
    );
}

/// Whether `err` is the `Fenced` refusal of a write at `presented` to the
/// flow detail `flow` owned at `held`.
fn is_fenced(err: &EngineError, flow: FlowDetailId, held: u64, presented: u64) -> bool {
    matches!(
        err,
        EngineError::Persistence(PersistenceError::Fenced { flow: f, held: h, presented: p })
            if *f == flow && *h == held && *p == presented
    )
}

/// Two engines on one flow detail, as two conductors whose claims
/// overlapped: while the first (epoch 1) runs, the second is loaded with
/// epoch 2 and fences the records. The first engine's next checkpoint is
/// refused, and its run returns that `Fenced` error without running more
/// atoms; the second resumes from the first's last checkpoint and
/// completes the flow.
pub fn stale_owner_is_fenced_out(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry =
        registry_of(move || {
            Linear::new("f")
                .add_all((0..4).map(|i| {
                    atom(format!("a{i}"), l.task(&format!("a{i}"))).provides(format!("x{i}"))
                }))
                .into()
        });
    // When a1 has succeeded (and is checkpointed), the second owner claims
    // the flow: it is loaded, and fences the records at build.
    struct TakeOver {
        second: Mutex<Option<EngineBuilder>>,
        built: Mutex<Option<Engine>>,
    }
    impl Listener for TakeOver {
        fn on_atom(&self, e: &crate::AtomEvent) {
            if &*e.atom == "a1" && e.to == AtomState::Success {
                let second = self.second.lock().unwrap().take();
                if let Some(second) = second {
                    *self.built.lock().unwrap() = Some(second.build().unwrap());
                }
            }
        }
    }
    let take_over = Arc::new(TakeOver {
        second: Mutex::new(None),
        built: Mutex::new(None),
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let builder = Engine::from_factory(&registry, "flow", Value::Null).unwrap();
    let mut first = factory(builder)
        .persistence(backend.clone())
        .owner_epoch(1)
        .listener(take_over.clone())
        .build()
        .unwrap();
    assert_eq!(first.storage().owner_epoch(), 1);
    first.prepare().unwrap();
    let id = first.storage().flow_detail_id();
    assert_eq!(backend.get_flow_detail(id).unwrap().owner_epoch, 1);
    *take_over.second.lock().unwrap() =
        Some(factory(Engine::load_with(backend.clone(), id, &registry).unwrap()).owner_epoch(2));

    let err = first.run().unwrap_err();
    assert!(is_fenced(&err, id, 2, 1), "{err}");
    assert!(err.to_string().contains("lost its claim"), "{err}");
    // Nothing ran after the refused checkpoint (a2 RUNNING).
    assert_eq!(log.entries(), ["a0", "a1"]);
    let stored = backend.get_flow_detail(id).unwrap();
    assert_eq!(stored.owner_epoch, 2);
    assert_eq!(stored.atom_detail("a2").unwrap().state, AtomState::Pending);
    // Running the stale engine again is refused at once, too.
    let err = first.run().unwrap_err();
    assert!(is_fenced(&err, id, 2, 1), "{err}");
    assert_eq!(log.entries(), ["a0", "a1"]);

    let mut second = take_over
        .built
        .lock()
        .unwrap()
        .take()
        .expect("the second engine was built");
    assert_eq!(second.storage().owner_epoch(), 2);
    assert_eq!(second.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a0", "a1", "a2", "a3"]);
    assert_eq!(second.storage().fetch("x1"), Some(&json!("a1")));
    let stored = backend.get_flow_detail(id).unwrap();
    assert_eq!(stored.state, FlowState::Success);
    assert_eq!(stored.owner_epoch, 2);
}

/// Loading records owned at a higher epoch than the one given is refused
/// at build, naming both epochs; loading at the same or a higher epoch
/// fences them there; loading without an epoch takes the next one.
pub fn load_below_the_stored_epoch_is_refused(factory: Factory<'_>) {
    let log = Log::new();
    let registry = linear_ab(&log);
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let builder = Engine::from_factory(&registry, "flow", Value::Null).unwrap();
    let mut engine = factory(builder)
        .persistence(backend.clone())
        .owner_epoch(5)
        .build()
        .unwrap();
    engine.prepare().unwrap();
    let id = engine.storage().flow_detail_id();
    let load = || factory(Engine::load_with(backend.clone(), id, &registry).unwrap());

    let err = load().owner_epoch(4).build().err().unwrap();
    assert!(is_fenced(&err, id, 5, 4), "{err}");
    assert!(err.to_string().contains("epoch 5"), "{err}");
    assert_eq!(backend.get_flow_detail(id).unwrap().owner_epoch, 5);

    assert_eq!(
        load()
            .owner_epoch(5)
            .build()
            .unwrap()
            .storage()
            .owner_epoch(),
        5
    );
    let mut newer = load().owner_epoch(6).build().unwrap();
    assert_eq!(backend.get_flow_detail(id).unwrap().owner_epoch, 6);
    // The first engine lost its claim: its first checkpoint is refused.
    let err = engine.run().unwrap_err();
    assert!(is_fenced(&err, id, 6, 5), "{err}");
    assert!(log.entries().is_empty());
    // Without an epoch, a load takes the next one, fencing the claim at 6.
    let mut taker = load().build().unwrap();
    assert_eq!(taker.storage().owner_epoch(), 7);
    let err = newer.run().unwrap_err();
    assert!(is_fenced(&err, id, 7, 6), "{err}");
    assert_eq!(taker.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b"]);
}

/// Two engines that load the same flow detail without an epoch (two
/// processes resuming one crashed run) never both record it: the later
/// load takes it at the next epoch, and the earlier engine is fenced out
/// at its next checkpoint, having recorded nothing since.
pub fn two_loads_of_one_flow_detail_never_both_run_it(factory: Factory<'_>) {
    let log = Log::new();
    let registry = linear_ab(&log);
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut first = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .build()
        .unwrap();
    first.prepare().unwrap();
    let id = first.storage().flow_detail_id();
    let load = || {
        factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
            .build()
            .unwrap()
    };
    let (mut one, mut two) = (load(), load());
    assert!(two.storage().owner_epoch() > one.storage().owner_epoch());
    let err = one.run().unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Persistence(PersistenceError::Fenced { .. })
        ),
        "{err}"
    );
    let err = first.run().unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Persistence(PersistenceError::Fenced { .. })
        ),
        "{err}"
    );
    assert!(log.entries().is_empty(), "{:?}", log.entries());
    assert_eq!(two.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b"]);
}

/// A flow detail posted with no atom details (as a job board posts one:
/// the flow's definition and store, nothing run) is loaded as a fresh run:
/// every atom runs once, and the records get every atom's detail.
pub fn load_of_a_posted_flow_detail_runs_it(factory: Factory<'_>) {
    let log = Log::new();
    let l = log.clone();
    let registry = registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")).provides("x"))
            .add(atom("b", l.task("b")).requires(["x"]))
            .into()
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut book = taskflow_persistence::LogBook::new("posted");
    let definition = taskflow_persistence::FlowDefinition::Factory {
        name: "flow".into(),
        args: Value::Null,
    };
    let posted = taskflow_persistence::FlowDetail::for_run(
        "f",
        Some(definition),
        serde_json::Map::new(),
        book.uuid,
    );
    let id = posted.uuid;
    book.flow_details.push(posted);
    backend.save_logbook(&book).unwrap();
    let mut engine = factory(Engine::load_with(backend.clone(), id, &registry).unwrap())
        .owner_epoch(1)
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "b"]);
    let stored = backend.get_flow_detail(id).unwrap();
    assert_eq!(stored.owner_epoch, 1);
    assert_eq!(stored.atom_details, engine.storage().atom_details());
    assert!(stored
        .atom_details
        .iter()
        .all(|d| d.state == AtomState::Success));
}
