//! The parallel engine really runs independent atoms at the same time, and
//! never runs an atom before what it depends on has finished.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskflow::prelude::*;

/// Counts atoms running at once and the most seen.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

fn busy(gauge: &Arc<Gauge>) -> taskflow::FnTask {
    let g = gauge.clone();
    task_fn(move |_| {
        let running = g.now.fetch_add(1, Ordering::SeqCst) + 1;
        g.max.fetch_max(running, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        g.now.fetch_sub(1, Ordering::SeqCst);
        Ok(Value::Null)
    })
}

#[test]
fn independent_atoms_overlap() {
    let gauge = Arc::new(Gauge::default());
    let flow = Unordered::new("wide").add_all((0..8).map(|i| atom(format!("a{i}"), busy(&gauge))));
    Engine::builder(flow)
        .executor(Parallel::new(4).expect("pool starts"))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(
        gauge.max.load(Ordering::SeqCst),
        4,
        "four workers, eight independent atoms"
    );
}

#[test]
fn dependent_atoms_never_overlap() {
    let gauge = Arc::new(Gauge::default());
    let flow = Linear::new("chain").add_all((0..6).map(|i| atom(format!("a{i}"), busy(&gauge))));
    Engine::builder(flow)
        .executor(Parallel::new(4).expect("pool starts"))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(gauge.max.load(Ordering::SeqCst), 1);
}

#[test]
fn a_diamond_runs_its_middle_in_parallel_and_joins_after() {
    let gauge = Arc::new(Gauge::default());
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let o = order.clone();
    let flow = Graph::new("diamond")
        .add(atom("top", busy(&gauge)).provides("t"))
        .add(atom("left", busy(&gauge)).requires(["t"]).provides("l"))
        .add(atom("right", busy(&gauge)).requires(["t"]).provides("r"))
        .add(
            atom(
                "join",
                task_fn(move |ctx| {
                    o.lock().unwrap().push(format!(
                        "join saw {} {}",
                        ctx.value("l")?,
                        ctx.value("r")?
                    ));
                    Ok(Value::Null)
                }),
            )
            .requires(["l", "r"]),
        );
    Engine::builder(flow)
        .executor(Parallel::new(4).expect("pool starts"))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(gauge.max.load(Ordering::SeqCst), 2);
    assert_eq!(*order.lock().unwrap(), ["join saw null null"]);
}

#[test]
fn reverts_of_independent_atoms_overlap_too() {
    let gauge = Arc::new(Gauge::default());
    let g = gauge.clone();
    let undo = move || {
        let g = g.clone();
        task_fn(|_| Ok(Value::Null)).with_revert(move |_| {
            let running = g.now.fetch_add(1, Ordering::SeqCst) + 1;
            g.max.fetch_max(running, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            g.now.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    };
    let flow = Linear::new("f")
        .add(Unordered::new("wide").add_all((0..4).map(|i| atom(format!("a{i}"), undo()))))
        .add(atom(
            "boom",
            task_fn(|_| Err(TaskError::new("Boom", "fails"))),
        ));
    let err = Engine::builder(flow)
        .executor(Parallel::new(4).expect("pool starts"))
        .build()
        .unwrap()
        .run()
        .unwrap_err();
    assert!(matches!(
        err,
        EngineError::Failed {
            state: FlowState::Reverted,
            ..
        }
    ));
    assert_eq!(gauge.max.load(Ordering::SeqCst), 4);
}
