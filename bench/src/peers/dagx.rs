//! dagx 0.3 (<https://docs.rs/dagx>): a typed async DAG, driven as its README
//! and benches drive it.
//!
//! Each node is a task of arity 0 to 3 (W3's nodes take 1-3 inputs; a dagx
//! task's inputs are a typed tuple, so each arity is its own type) made with
//! `dagx::task_fn`, wired with `depends_on` on the predecessors' handles;
//! the graph runs with `DagRunner::run(|fut| { tokio::spawn(fut); })` inside
//! `block_on`, and the values are read back with `DagRunner::get`. That is
//! how dagx's own benches (`benches/comparisons/*.rs`, the source of its
//! published figures) drive it. Its README's `#[task]` macro expands to
//! paths into the `futures` crate, which this crate does not depend on.
//!
//! dagx runs a graph layer by layer (topological layers of nodes whose
//! inputs are all in earlier layers): a layer of one task runs inline in the
//! `run` future, its "inline fast path" (published at about 0.79 µs per task
//! on a 100-task chain); every task of a wider layer is handed to the
//! spawner and the layer is awaited (published at about 1.3 µs per task on
//! 10,000 independent tasks). Which path a node takes depends on the graph,
//! not on a setting; [`DagxMode`] picks the runtime the spawner feeds.

use ::dagx::{task_fn, DagRunner, TaskHandle};
use tokio::runtime::Runtime;

use super::{check_order, PeerError};

/// The runtime dagx's spawner feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagxMode {
    /// On the calling thread only (a current-thread Tokio runtime): layers
    /// of one task run inline, as always, and wider layers' tasks are
    /// spawned onto the same thread, so nothing crosses threads. A chain
    /// (W1) runs entirely on dagx's inline fast path.
    Inline,
    /// On the shared multi-thread runtime of [`super::WORKERS`] workers
    /// ([`super::runtime`]), as dagx's benches run: wider layers' tasks are
    /// spawned across the workers. On a chain this is the inline path too.
    Parallel,
}

/// The most inputs a node may have here (W3 needs 3; dagx itself takes 8).
pub const MAX_INPUTS: usize = 3;

/// Builds the dagx graph of `preds` and runs it in `mode`; returns the sum
/// of all node values (see [`super`]).
///
/// # Errors
///
/// [`PeerError::BadPredecessor`] if a predecessor is not an earlier node,
/// [`PeerError::TooManyInputs`] if a node has more than [`MAX_INPUTS`],
/// [`PeerError::Runtime`] if the runtime cannot be built (first call only),
/// [`PeerError::Dagx`] if dagx fails to run or read back a value.
pub fn run(preds: &[Vec<usize>], mode: DagxMode) -> Result<i64, PeerError> {
    check_order(preds)?;
    if let Some((node, ps)) = preds
        .iter()
        .enumerate()
        .find(|(_, ps)| ps.len() > MAX_INPUTS)
    {
        return Err(PeerError::TooManyInputs {
            peer: "dagx",
            node,
            count: ps.len(),
            max: MAX_INPUTS,
        });
    }
    let rt = match mode {
        DagxMode::Inline => inline_runtime()?,
        DagxMode::Parallel => super::runtime()?,
    };
    rt.block_on(async {
        let dag = DagRunner::new();
        let mut handles: Vec<TaskHandle<i64>> = Vec::with_capacity(preds.len());
        for ps in preds {
            let h = match *ps.as_slice() {
                [] => dag.add_task(task_fn(|()| async { 1i64 })).into(),
                [a] => dag
                    .add_task(task_fn(|a: i64| async move { a.wrapping_add(1) }))
                    .depends_on(handles[a]),
                [a, b] => dag
                    .add_task(task_fn(|(a, b): (i64, i64)| async move {
                        a.wrapping_add(b).wrapping_add(1)
                    }))
                    .depends_on((&handles[a], &handles[b])),
                [a, b, c] => dag
                    .add_task(task_fn(|(a, b, c): (i64, i64, i64)| async move {
                        a.wrapping_add(b).wrapping_add(c).wrapping_add(1)
                    }))
                    .depends_on((&handles[a], &handles[b], &handles[c])),
                // Refused above.
                _ => {
                    return Err(PeerError::TooManyInputs {
                        peer: "dagx",
                        node: handles.len(),
                        count: ps.len(),
                        max: MAX_INPUTS,
                    })
                }
            };
            handles.push(h);
        }
        dag.run(|fut| {
            tokio::spawn(fut);
        })
        .await?;
        handles
            .iter()
            .try_fold(0i64, |acc, &h| Ok(acc.wrapping_add(dag.get::<i64, _>(h)?)))
    })
}

/// The current-thread runtime of [`DagxMode::Inline`], built on first use.
fn inline_runtime() -> Result<&'static Runtime, PeerError> {
    static SHARED: std::sync::OnceLock<std::io::Result<Runtime>> = std::sync::OnceLock::new();
    super::shared(&SHARED, || {
        tokio::runtime::Builder::new_current_thread().build()
    })
}
