//! The main job: a flow that checkpoints every step into an embedded SQLite
//! file crashes part way (the process really dies), then is resumed from
//! the file. Run with `cargo run --example crash_resume`.
//!
//! The example runs itself twice: first as a child process that executes
//! the flow and aborts in the middle of step 6, then (in this process) it
//! rebuilds the flow from the records alone and resumes it, printing which
//! steps were skipped (already done), re-run (caught mid-flight) and
//! finished.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use taskflow::prelude::*;
use taskflow::AtomState;

/// One step of an order pipeline. Serializable, so the flow is stored in
/// the records and rebuilt from them by the resuming process.
#[derive(Serialize, Deserialize)]
struct Step {
    what: String,
}

#[typetag::serde]
impl StoredTask for Step {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        println!("  [pid {}] {} ...", std::process::id(), self.what);
        if self.what == "charge card" && std::env::var_os("CRASH_NOW").is_some() {
            println!(
                "  [pid {}] *** the process crashes here ***",
                std::process::id()
            );
            std::process::abort();
        }
        let done: i64 = ctx.input("done")?;
        Ok(json!(done + 1))
    }
}

fn flow() -> Flow {
    let steps = [
        "validate order",
        "reserve stock",
        "price order",
        "apply coupon",
        "compute tax",
        "charge card",
        "print label",
        "book courier",
        "email customer",
    ];
    let mut flow = Linear::new("order-pipeline");
    for (i, what) in steps.iter().enumerate() {
        let mut a = atom(
            what.replace(' ', "_"),
            Step {
                what: (*what).into(),
            },
        )
        .requires(["done"])
        .provides(format!("done_{i}"));
        if i > 0 {
            a = a.rebind("done", format!("done_{}", i - 1));
        }
        flow = flow.add(a);
    }
    flow.into()
}

fn crash(db: &Path, id_file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let backend = SqliteBackend::open(db)?;
    let mut engine = Engine::builder(flow())
        .store(json!({ "done": 0 }))
        .persistence(backend)
        .build()?;
    engine.prepare()?;
    std::fs::write(id_file, engine.storage().flow_detail_id().to_string())
        .map_err(|e| format!("cannot write {}: {e}", id_file.display()))?;
    engine.run()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("taskflow-crash-resume-{}", std::process::id()));
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let dir = PathBuf::from(&args[2]);
        crash(&dir.join("flows.db"), &dir.join("flow.id"))?;
        return Ok(());
    }

    std::fs::create_dir_all(&dir)?;
    let db = dir.join("flows.db");
    println!(
        "1. running the flow in a child process, checkpointing into {}",
        db.display()
    );
    let status = Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(&dir)
        .env("CRASH_NOW", "1")
        .status()?;
    println!("   child process ended: {status}");

    println!(
        "2. resuming in this process (pid {}) from the records alone",
        std::process::id()
    );
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&db)?);
    let id = std::fs::read_to_string(dir.join("flow.id"))?.parse()?;
    let before = backend.get_flow_detail(id)?;
    println!("   the records say the flow is {}", before.state);
    let mut engine = Engine::load(backend.clone(), id)?.build()?;
    let state = engine.run()?;

    println!("3. flow ended {state}; what happened to each step:");
    for found in &before.atom_details {
        let what = match found.state {
            AtomState::Success => "skipped: done before the crash",
            AtomState::Running => "re-run: it was running when the process died",
            _ => "finished: run after the resume",
        };
        println!(
            "   {:15} {:8} -> {}",
            found.name,
            found.state.to_string(),
            what
        );
    }
    println!(
        "   result: {} steps done",
        engine.storage().fetch("done_8").unwrap_or(&Value::Null)
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
