//! Conformance cases for faults that must not lose or stall work: a
//! panicking listener, a task interrupted by a stop, records whose atom
//! details do not match their flow.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use taskflow_patterns::{task_fn, AtomState, FlowRegistry, FlowState, Linear, TaskError};
use taskflow_persistence::{Backend, MemoryBackend, PersistenceError};

use super::{atom, failed_state, Factory, Log};
use crate::{CapturingListener, Engine, EngineError, Listener, SuspendHandle};

/// A listener that panics on every atom's `SUCCESS`, and one that panics on
/// every progress report, are dropped after their first panic: the run
/// goes on to `SUCCESS`, the other listeners hear every event, and the
/// records are whole.
pub fn panicking_listeners_are_dropped(factory: Factory<'_>) {
    #[derive(Default)]
    struct PanicsOnSuccess(AtomicUsize);
    impl Listener for PanicsOnSuccess {
        fn on_atom(&self, e: &crate::AtomEvent) {
            if e.to == AtomState::Success {
                self.0.fetch_add(1, Ordering::SeqCst);
                panic!("listener bug on `{}`", e.atom);
            }
        }
    }
    #[derive(Default)]
    struct PanicsOnProgress(AtomicUsize);
    impl Listener for PanicsOnProgress {
        fn on_progress(&self, _: &str, _: f32) {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("progress listener bug");
        }
    }
    let log = Log::new();
    let reporting = task_fn(|ctx| {
        ctx.progress(0.5);
        ctx.progress(0.75);
        Ok(json!("p"))
    });
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("p", reporting))
        .add(atom("b", log.task("b")));
    let on_success = Arc::new(PanicsOnSuccess::default());
    let on_progress = Arc::new(PanicsOnProgress::default());
    let capture = Arc::new(CapturingListener::new());
    let backend = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .listener(on_success.clone())
        .listener(on_progress.clone())
        .listener(capture.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(
        on_success.0.load(Ordering::SeqCst),
        1,
        "dropped after one panic"
    );
    assert_eq!(
        on_progress.0.load(Ordering::SeqCst),
        1,
        "dropped after one panic"
    );
    assert_eq!(
        capture.atoms_entering(AtomState::Success),
        ["a", "p", "b"],
        "the healthy listener heard everything"
    );
    // Two reports of the task, and 0 and 1 around each of the three tasks.
    assert_eq!(capture.progress().len(), 8);
    assert_eq!(log.entries(), ["a", "b"]);
    let stored = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    assert_eq!(stored.state, FlowState::Success);
}

/// A task that returns [`TaskError::interrupted`] is not failed: it goes
/// back to `PENDING`, nothing reverts, the flow suspends, and running the
/// flow again runs that task again and finishes the rest.
pub fn an_interrupted_task_runs_again_on_resume(factory: Factory<'_>) {
    let log = Log::new();
    let interrupt_once = Arc::new(AtomicBool::new(true));
    let (l, once) = (log.clone(), interrupt_once.clone());
    let copy = task_fn(move |_| {
        l.push("copy");
        if once.swap(false, Ordering::SeqCst) {
            return Err(TaskError::interrupted("stopped at chunk 3"));
        }
        Ok(json!("copied"))
    })
    .with_revert({
        let l = log.clone();
        move |_| {
            l.push("~copy");
            Ok(())
        }
    });
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("copy", copy))
        .add(atom("b", log.task("b")));
    let backend = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(log.entries(), ["a", "copy"]);
    let stored = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    assert_eq!(stored.state, FlowState::Suspended);
    let copy = stored.atom_detail("copy").unwrap();
    assert_eq!(copy.state, AtomState::Pending);
    assert!(copy.failure().is_none(), "{:?}", copy.failure());
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "copy", "copy", "b"]);
}

/// A task that fails only because the run was asked to stop (it saw
/// `ctx.is_cancelled()` and returned an ordinary error) is an
/// interruption too: the flow suspends instead of reverting.
pub fn an_error_while_stopping_is_an_interruption(factory: Factory<'_>) {
    let log = Log::new();
    let stop = SuspendHandle::new();
    let first = Arc::new(AtomicBool::new(true));
    let (l, s, f) = (log.clone(), stop.clone(), first.clone());
    let waits = task_fn(move |ctx| {
        l.push("wait");
        if f.swap(false, Ordering::SeqCst) {
            s.suspend(); // as a conductor's stop would, from another thread
            assert!(ctx.is_cancelled());
            return Err(TaskError::new("Cancelled", "gave up: the run is stopping"));
        }
        Ok(Value::Null)
    });
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("wait", waits))
        .add(atom("b", log.task("b")));
    let mut engine = factory(Engine::builder(flow))
        .suspend_handle(stop)
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(log.entries(), ["a", "wait"], "nothing reverted");
    assert_eq!(
        engine.storage().atom_detail("wait").unwrap().state,
        AtomState::Pending
    );
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    assert_eq!(log.entries(), ["a", "wait", "wait", "b"]);
}

/// A revert that is interrupted stays `REVERTING`; the flow suspends, and
/// running it again finishes the revert with the original failure kept.
pub fn an_interrupted_revert_continues_on_resume(factory: Factory<'_>) {
    let log = Log::new();
    let interrupt_once = Arc::new(AtomicBool::new(true));
    let (l, once) = (log.clone(), interrupt_once.clone());
    let undo = task_fn(|_| Ok(json!("made"))).with_revert(move |_| {
        l.push("~undo");
        if once.swap(false, Ordering::SeqCst) {
            return Err(TaskError::interrupted("stopped half way through the undo"));
        }
        Ok(())
    });
    let flow = Linear::new("f")
        .add(atom("undo", undo))
        .add(atom("boom", log.failing("boom")));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    assert_eq!(
        engine.storage().atom_detail("undo").unwrap().state,
        AtomState::Reverting
    );
    let result = engine.run();
    assert_eq!(failed_state(&result), FlowState::Reverted);
    let err = result.unwrap_err();
    assert_eq!(err.failures().len(), 1, "{err}");
    assert_eq!(err.failures()[0].atom.as_deref(), Some("boom"));
    assert_eq!(log.entries(), ["boom", "~boom", "~undo", "~undo"]);
}

/// Records of a started flow whose atom details do not match it are
/// refused, never read as "not run yet": a duplicated atom detail and a
/// flow with none at all are corrupt, a missing one is a mismatch.
pub fn atom_details_that_do_not_match_are_refused(factory: Factory<'_>) {
    let log = Log::new();
    let mut registry = FlowRegistry::new();
    let l = log.clone();
    registry.register("flow", move |_| {
        Ok(Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .into())
    });
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let stop = SuspendHandle::new();
    stop.suspend();
    let mut engine = factory(Engine::from_factory(&registry, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .suspend_handle(stop)
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Suspended);
    let id = engine.storage().flow_detail_id();
    let book = engine.storage().logbook_id();
    let started = backend.get_flow_detail(id).unwrap();
    assert_ne!(started.state, FlowState::Pending);
    let load = || factory(Engine::load_with(backend.clone(), id, &registry).unwrap()).build();

    let mut duplicated = started.clone();
    let mut twin = duplicated.atom_details[0].clone();
    twin.uuid = taskflow_persistence::AtomDetailId::new();
    duplicated.atom_details.push(twin);
    backend.save_flow_detail(book, &duplicated).unwrap();
    match load() {
        Err(EngineError::Persistence(PersistenceError::Corrupt { reason, .. })) => {
            assert!(reason.contains("`a` has two atom details"), "{reason}")
        }
        other => panic!("expected corrupt records, got {:?}", other.err()),
    }

    let mut missing = backend.get_flow_detail(id).unwrap();
    missing.atom_details = started.atom_details[1..].to_vec();
    backend.save_flow_detail(book, &missing).unwrap();
    match load() {
        Err(EngineError::Mismatch { atom, .. }) => assert_eq!(atom, "a"),
        other => panic!("expected a mismatch, got {:?}", other.err()),
    }

    let mut none = backend.get_flow_detail(id).unwrap();
    none.atom_details.clear();
    backend.save_flow_detail(book, &none).unwrap();
    match load() {
        Err(EngineError::Persistence(PersistenceError::Corrupt { reason, .. })) => {
            assert!(reason.contains("no atom details"), "{reason}")
        }
        other => panic!("expected corrupt records, got {:?}", other.err()),
    }
    assert!(log.entries().is_empty(), "nothing ran: {:?}", log.entries());
    // A refused load took nothing: whoever runs the flow detail still owns it.
    assert_eq!(
        backend.get_flow_detail(id).unwrap().owner_epoch,
        started.owner_epoch
    );
}

/// Values as deep as records hold ([`MAX_VALUE_DEPTH`]) are results like
/// any other; a deeper result fails its atom with a failure naming the
/// depth and the limit (the flow reverts), and a deeper store is refused
/// at build, naming the symbol.
///
/// [`MAX_VALUE_DEPTH`]: taskflow_patterns::MAX_VALUE_DEPTH
pub fn values_deeper_than_records_hold_are_refused(factory: Factory<'_>) {
    use taskflow_patterns::MAX_VALUE_DEPTH;
    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |v, _| Value::Array(vec![v]))
    }
    let backend = Arc::new(MemoryBackend::new());
    let flow = Linear::new("f")
        .add(atom("deep", task_fn(|_| Ok(nested(MAX_VALUE_DEPTH)))).provides("deep"));
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let stored = backend
        .get_flow_detail(engine.storage().flow_detail_id())
        .unwrap();
    assert_eq!(
        stored.atom_detail("deep").unwrap().result.as_deref(),
        Some(&nested(MAX_VALUE_DEPTH))
    );

    let log = Log::new();
    let flow = Linear::new("f")
        .add(atom("a", log.task("a")))
        .add(atom("deeper", task_fn(|_| Ok(nested(MAX_VALUE_DEPTH + 1)))));
    let mut engine = factory(Engine::builder(flow)).build().unwrap();
    let err = engine.run().unwrap_err();
    let failure = &err.failures()[0];
    assert_eq!(
        (failure.kind.as_str(), failure.atom.as_deref()),
        ("ResultTooDeep", Some("deeper"))
    );
    assert!(
        failure
            .message
            .contains(&format!("{}", MAX_VALUE_DEPTH + 1)),
        "{failure}"
    );
    assert_eq!(log.entries(), ["a", "~a"]);

    let flow = Linear::new("f").add(atom("a", log.task("a")).requires(["x"]));
    let err = factory(Engine::builder(flow))
        .store(json!({ "x": nested(MAX_VALUE_DEPTH + 1) }))
        .build()
        .err()
        .unwrap();
    assert!(
        matches!(&err, EngineError::InvalidStore(crate::StoreError::TooDeep { symbol, .. }) if symbol == "x"),
        "{err}"
    );
}

/// A stored definition nested deeper than flows may nest (a corrupt or
/// hostile record) is refused before it is decoded, naming the depth: no
/// stack overflow on the way.
pub fn a_too_deep_stored_definition_is_refused_before_decoding(factory: Factory<'_>) {
    use taskflow_patterns::{Flow, MAX_FLOW_DEPTH};
    /// Puts `inner` where `leaf` is in `template` (a small value).
    fn graft(template: &mut Value, leaf: &Value, inner: &mut Option<Value>) {
        if template == leaf {
            if let Some(v) = inner.take() {
                *template = v;
            }
            return;
        }
        match template {
            Value::Array(items) => items.iter_mut().for_each(|v| graft(v, leaf, inner)),
            Value::Object(map) => map.values_mut().for_each(|v| graft(v, leaf, inner)),
            _ => {}
        }
    }
    let leaf = serde_json::to_value(Flow::from(Linear::new("leaf"))).unwrap();
    let parent =
        serde_json::to_value(Flow::from(Linear::new("p").add(Linear::new("leaf")))).unwrap();
    let mut deep = leaf.clone();
    for _ in 0..MAX_FLOW_DEPTH + 50 {
        let mut next = parent.clone();
        graft(&mut next, &leaf, &mut Some(deep));
        deep = next;
    }
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::builder(
        Linear::new("f").add(atom("a", task_fn(|_| Ok(Value::Null)))),
    ))
    .persistence(backend.clone())
    .build()
    .unwrap();
    engine.prepare().unwrap();
    let id = engine.storage().flow_detail_id();
    let mut records = backend.get_flow_detail(id).unwrap();
    records.run.definition = Some(taskflow_persistence::FlowDefinition::Stored(deep));
    backend
        .save_flow_detail(engine.storage().logbook_id(), &records)
        .unwrap();
    match Engine::load(backend, id) {
        Err(EngineError::Definition {
            problem: crate::DefinitionError::TooDeep { depth, limit },
            ..
        }) => assert_eq!((depth, limit), (MAX_FLOW_DEPTH + 51, MAX_FLOW_DEPTH)),
        other => panic!("expected a refused definition, got {:?}", other.err()),
    }
}

/// A flow whose task does not serialize is run (its definition is not
/// stored); loading its records later says why, naming the atom, rather
/// than guessing.
pub fn an_unstored_definition_says_which_atom_kept_it_out(factory: Factory<'_>) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let flow = Linear::new("f").add(atom("closure", task_fn(|_| Ok(Value::Null))));
    let mut engine = factory(Engine::builder(flow))
        .persistence(backend.clone())
        .build()
        .unwrap();
    engine.prepare().unwrap();
    match Engine::load(backend, engine.storage().flow_detail_id()) {
        Err(EngineError::Definition {
            problem: crate::DefinitionError::NotStored { why },
            ..
        }) => assert!(why.contains("atom `closure`"), "{why}"),
        other => panic!("expected a definition not stored, got {:?}", other.err()),
    }
}
