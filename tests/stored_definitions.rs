//! A flow whose every part is stored (a `StoredTask`, a `StoredRetry`, a
//! `StoredDecider`, a built-in controller) is written whole into its
//! records by one process and rebuilt from them alone by another, which
//! has no factory: the child process (this test binary run again on the
//! ignored test `writer_process`) builds the flow and writes its records to
//! a SQLite file without running it; the test loads and runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use taskflow::prelude::*;
use taskflow::{Graph, StoredDecider};

/// `x + amount`.
#[derive(Serialize, Deserialize)]
struct Add {
    amount: i64,
}

#[typetag::serde(name = "stored_definitions::Add")]
impl StoredTask for Add {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        Ok(json!(ctx.input::<i64>("x")? + self.amount))
    }
}

/// Fails on its first `failures` attempts (the attempt number comes from
/// the retry controller's result).
#[derive(Serialize, Deserialize)]
struct FailsUntil {
    failures: i64,
}

#[typetag::serde(name = "stored_definitions::FailsUntil")]
impl StoredTask for FailsUntil {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        let attempt: i64 = ctx.input("attempt")?;
        if attempt < self.failures {
            return Err(TaskError::new("NotYet", format!("attempt {attempt}")));
        }
        Ok(json!(attempt))
    }
}

/// Retries up to `limit` times; provides the attempt number.
#[derive(Serialize, Deserialize)]
struct UpTo {
    limit: usize,
}

#[typetag::serde(name = "stored_definitions::UpTo")]
impl StoredRetry for UpTo {
    fn execute(&self, history: &History, _: &mut Context) -> Result<Value, TaskError> {
        Ok(json!(history.len()))
    }

    fn on_failure(&self, history: &History, _: &Context) -> Decision {
        if history.len() < self.limit {
            Decision::Retry
        } else {
            Decision::Revert
        }
    }
}

/// Lets the target run when some result of the source exceeds `limit`.
#[derive(Serialize, Deserialize)]
struct Above {
    limit: i64,
}

#[typetag::serde(name = "stored_definitions::Above")]
impl StoredDecider for Above {
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool {
        history.values().any(|v| v.as_i64() > Some(self.limit))
    }
}

/// `add` (x + 1), then `big` only if that is above 100, `small` only if it
/// is above 0; and a retried subflow whose task fails twice.
fn flow() -> Flow {
    Linear::new("stored")
        .add(
            Graph::new("choose")
                .add(atom("add", Add { amount: 1 }).requires(["x"]).provides("y"))
                .add(
                    atom("big", Add { amount: 100 })
                        .requires(["x"])
                        .rebind("x", "y")
                        .provides("big"),
                )
                .add(
                    atom("small", Add { amount: 10 })
                        .requires(["x"])
                        .rebind("x", "y")
                        .provides("small"),
                )
                .link_if("add", "big", Above { limit: 100 }, Depth::Atom)
                .link_if("add", "small", Above { limit: 0 }, Depth::Atom),
        )
        .add(
            Linear::new("retried")
                .add(
                    atom("flaky", FailsUntil { failures: 2 })
                        .requires(["attempt"])
                        .provides("done"),
                )
                .with_retry(retry("up_to", UpTo { limit: 5 }).provides("attempt")),
        )
        .add(
            Linear::new("each")
                .add(
                    atom("echo", Add { amount: 0 })
                        .requires(["x"])
                        .rebind("x", "value")
                        .provides("echoed"),
                )
                .with_retry(retry("values", ForEach::new([json!(7)])).provides("value")),
        )
        .into()
}

/// The writer (ignored in normal runs): builds the flow, writes its records
/// to `STORED_DB` without running it, and writes the flow detail's id to
/// `STORED_ID`.
#[test]
#[ignore = "entry point of the writer process of the stored-definition test"]
fn writer_process() {
    let db = std::env::var("STORED_DB").expect("run by the stored-definition test");
    let mut engine = Engine::builder(flow())
        .store(json!({ "x": 41 }))
        .persistence(SqliteBackend::open(&db).expect("records open"))
        .build()
        .expect("builds");
    engine.prepare().expect("records written");
    let id_file = std::env::var("STORED_ID").expect("STORED_ID");
    std::fs::write(id_file, engine.storage().flow_detail_id().to_string()).expect("id written");
}

#[test]
fn a_flow_of_stored_parts_is_rebuilt_from_its_records_in_another_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db: PathBuf = dir.path().join("records.sqlite");
    let id_file = dir.path().join("id");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "writer_process", "--ignored", "--nocapture"])
        .env("STORED_DB", &db)
        .env("STORED_ID", &id_file)
        .status()
        .expect("writer runs");
    assert!(status.success(), "the writer failed: {status}");

    let id = std::fs::read_to_string(&id_file)
        .expect("id file")
        .parse()
        .expect("a uuid");
    // No factory: the flow comes from the records alone.
    let mut engine = Engine::load(SqliteBackend::open(&db).expect("records open"), id)
        .expect("loads")
        .build()
        .expect("builds");
    assert_eq!(engine.run().expect("runs"), FlowState::Success);
    let storage = engine.storage();
    assert_eq!(storage.fetch("y"), Some(&json!(42)));
    assert_eq!(
        storage.fetch("small"),
        Some(&json!(52)),
        "the stored decider let `small` run"
    );
    assert_eq!(
        storage.fetch("big"),
        None,
        "the stored decider kept `big` out"
    );
    assert_eq!(
        storage.fetch("done"),
        Some(&json!(2)),
        "the stored controller retried twice"
    );
    assert_eq!(storage.fetch("echoed"), Some(&json!(7)));
}
