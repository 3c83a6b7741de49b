//! How deep flows and values may nest, end to end: a flow nested deeper
//! than `MAX_FLOW_DEPTH` is an error naming it (never a stack overflow),
//! one exactly that deep runs and its stored definition reads back, and
//! values as deep as the engine accepts are checkpointed and read back
//! from SQLite. Every test runs on the test harness's thread (2 MiB of
//! stack by default).

// Test code: a failed step should panic (clippy's test allowance covers only
// `#[test]` functions, not these helpers).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use taskflow::patterns::{compile, definition_depth, value_depth};
use taskflow::persistence::FlowDefinition;
use taskflow::prelude::*;
use taskflow::{CompileError, MAX_FLOW_DEPTH, MAX_VALUE_DEPTH};

/// Returns a value nesting `levels` arrays; may be given a value to inject
/// (its `payload` argument), which it checks is there.
#[derive(Serialize, Deserialize)]
struct Deep {
    levels: usize,
}

#[typetag::serde]
impl StoredTask for Deep {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        if let Ok(payload) = ctx.value("payload") {
            assert!(value_depth(payload) <= MAX_VALUE_DEPTH);
        }
        Ok(nested(self.levels))
    }
}

fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

/// `levels` linear flows, one inside the next, the innermost holding `task`.
fn chain(levels: usize, task: impl Into<taskflow::TaskAtom>) -> Flow {
    let mut flow = Linear::new(format!("f{}", levels - 1)).add(task.into());
    for i in (0..levels - 1).rev() {
        flow = Linear::new(format!("f{i}")).add(flow);
    }
    flow.into()
}

fn sqlite() -> (tempfile::TempDir, Arc<dyn Backend>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path().join("flows.db")).unwrap();
    (dir, Arc::new(backend))
}

#[test]
fn a_flow_nested_too_deep_is_a_named_error_not_an_abort() {
    for levels in [MAX_FLOW_DEPTH + 1, 2_000, 5_000] {
        let flow = chain(levels, atom("t", Deep { levels: 1 }));
        let Err(err) = Engine::builder(flow).build() else {
            panic!("{levels} levels built");
        };
        let EngineError::Compile(errors) = &err else {
            panic!("{levels} levels: {err}");
        };
        assert_eq!(
            errors.errors(),
            [CompileError::TooDeep {
                flow: format!("f{MAX_FLOW_DEPTH}"),
                depth: levels,
                limit: MAX_FLOW_DEPTH,
            }]
        );
    }
}

#[test]
fn a_flow_as_deep_as_allowed_runs_and_its_definition_reads_back_from_sqlite() {
    let (_dir, backend) = sqlite();
    // The deepest stored definition the engine writes: the deepest flow,
    // its task holding a value as deep as allowed.
    let task = atom(
        "t",
        Deep {
            levels: MAX_VALUE_DEPTH,
        },
    )
    .inject("payload", nested(MAX_VALUE_DEPTH))
    .provides("out");
    let mut engine = Engine::builder(chain(MAX_FLOW_DEPTH, task))
        .persistence(backend.clone())
        .build()
        .unwrap();
    assert_eq!(engine.run().unwrap(), FlowState::Success);
    let id = engine.storage().flow_detail_id();
    drop(engine);

    let detail = backend.get_flow_detail(id).unwrap();
    assert_eq!(detail.state, FlowState::Success);
    let result = detail.atom_detail("t").unwrap().result.clone().unwrap();
    assert_eq!(*result, nested(MAX_VALUE_DEPTH));
    let Some(FlowDefinition::Stored(stored)) = detail.run.definition.clone() else {
        panic!("a stored definition");
    };
    assert_eq!(definition_depth(&stored), MAX_FLOW_DEPTH);
    assert_eq!(
        value_depth(&stored),
        4 * (MAX_FLOW_DEPTH - 1) + 6 + MAX_VALUE_DEPTH
    );
    let flow: Flow = serde_json::from_value(stored).unwrap();
    assert_eq!(compile(&flow).unwrap().len(), 1);

    // The logbook and the listing read it back too.
    let book = backend.get_logbook(detail.run.logbook.unwrap()).unwrap();
    assert_eq!(book.flow_details, vec![detail.clone()]);
    let listed = backend.list_logbooks().unwrap();
    assert!(listed.iter().any(|b| b.as_ref().is_ok_and(|b| *b == book)));

    // And another engine resumes it from the records alone.
    let mut resumed = Engine::load(backend.clone(), id).unwrap().build().unwrap();
    assert_eq!(resumed.run().unwrap(), FlowState::Success);
}

#[test]
fn results_and_store_values_past_serde_json_s_default_limit_read_back_from_sqlite() {
    for levels in [127, 128, MAX_VALUE_DEPTH] {
        let (_dir, backend) = sqlite();
        let flow = Linear::new("f").add(atom("t", Deep { levels }).provides("out"));
        let mut engine = Engine::builder(flow)
            .store(json!({ "input": nested(levels - 1) }))
            .persistence(backend.clone())
            .build()
            .unwrap();
        assert_eq!(engine.run().unwrap(), FlowState::Success, "{levels}");
        let id = engine.storage().flow_detail_id();
        let detail = backend.get_flow_detail(id).unwrap();
        let result = detail.atom_detail("t").unwrap().result.clone().unwrap();
        assert_eq!(value_depth(&result), levels);
        assert_eq!(
            value_depth(&Value::Object(detail.run.store.clone())),
            levels
        );
        let book = backend.get_logbook(detail.run.logbook.unwrap()).unwrap();
        assert_eq!(book.flow_details, vec![detail]);
        assert!(backend.list_logbooks().unwrap().iter().all(Result::is_ok));
    }
}
