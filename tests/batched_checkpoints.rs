//! The engine batches the checkpoints it takes between two hand-offs of work
//! (an atom's `SUCCESS` with its result and its successor's `RUNNING`, in
//! one SQLite transaction), yet what a task depends on is still in the
//! records before it runs: a task reading the file through a connection of
//! its own (as another process would) finds itself `RUNNING` and its
//! predecessor `SUCCESS` with its result.

// The helpers below are test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use taskflow::prelude::*;
use taskflow::{AtomState, Backend, Durability, EngineBuilder};

/// What each task saw in the records when it ran: its own state, its
/// predecessor's state and result.
type Seen = Arc<Mutex<Vec<(String, AtomState, Option<(AtomState, Option<Value>)>)>>>;

fn reader_task(db: PathBuf, seen: Seen) -> taskflow::FnTask {
    task_fn(move |ctx| {
        let name = ctx.atom_name().to_owned();
        // Another connection to the file: it sees only what was committed.
        let records = SqliteBackend::open_with(&db, Durability::Normal)
            .map_err(|e| TaskError::msg(e.to_string()))?;
        let books = records
            .list_logbooks()
            .map_err(|e| TaskError::msg(e.to_string()))?;
        let flow = books
            .into_iter()
            .flatten()
            .flat_map(|b| b.flow_details)
            .next()
            .ok_or_else(|| TaskError::msg("no flow detail in the records"))?;
        let find = |n: &str| flow.atom_details.iter().find(|d| &*d.name == n).cloned();
        let own = find(&name).ok_or_else(|| TaskError::msg("no record of the task"))?;
        let index: usize = name[1..].parse().unwrap_or(0);
        let before = (index > 0)
            .then(|| find(&format!("t{}", index - 1)))
            .flatten()
            .map(|d| (d.state, d.result.as_deref().cloned()));
        seen.lock().unwrap().push((name, own.state, before));
        Ok(Value::from(index as i64))
    })
}

fn check(engine: impl FnOnce(EngineBuilder) -> EngineBuilder) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flows.db");
    let seen: Seen = Arc::default();
    let flow = Linear::new("chain").add_all((0..6).map(|i| {
        atom(format!("t{i}"), reader_task(db.clone(), seen.clone())).provides(format!("v{i}"))
    }));
    let backend = SqliteBackend::open_with(&db, Durability::Normal).unwrap();
    let mut built = engine(Engine::builder(flow))
        .persistence(backend)
        .build()
        .unwrap();
    assert_eq!(built.run().unwrap(), FlowState::Success);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 6);
    for (i, (name, own, before)) in seen.iter().enumerate() {
        assert_eq!(*own, AtomState::Running, "{name} is RUNNING in the records");
        if i == 0 {
            assert!(before.is_none());
        } else {
            assert_eq!(
                before.as_ref(),
                Some(&(AtomState::Success, Some(Value::from(i as i64 - 1)))),
                "{name}'s predecessor is SUCCESS with its result in the records"
            );
        }
    }
    // And the last one's SUCCESS is written by the end of the run.
    let records = SqliteBackend::open_with(&db, Durability::Normal).unwrap();
    let stored = records
        .get_flow_detail(built.storage().flow_detail_id())
        .unwrap();
    assert!(stored
        .atom_details
        .iter()
        .all(|d| d.state == AtomState::Success));
    assert_eq!(stored.state, FlowState::Success);
}

#[test]
fn serial_engine_writes_what_a_task_depends_on_before_it_runs() {
    check(|b| b);
}

#[test]
fn parallel_engine_writes_what_a_task_depends_on_before_it_runs() {
    check(|b| b.executor(Parallel::new(2).unwrap()));
}
