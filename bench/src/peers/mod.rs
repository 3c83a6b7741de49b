//! The Rust DAG executors we compare against, on the shapes of W1-W3
//! (shared/BENCHMARKS.md), in memory, each driven through its own public API
//! as its documentation shows: [`dagx`] (two modes, see [`dagx::DagxMode`])
//! and [`dagrs`].
//!
//! Every executor, [`crate::floor`] included, runs a DAG given as `preds`
//! (node `i`'s predecessors, all earlier nodes): node `i` computes one plus
//! the sum of its predecessors' values (a source returns 1; on a chain that
//! is "previous + 1"), and a run returns the sum of all node values
//! (wrapping), so the same `preds` give the same number everywhere. Each
//! call builds the peer's graph and runs it: construction is timed with
//! the run, as a user pays it.
//!
//! The shapes: W1 is [`chain`], W2 [`independent`], W3
//! [`crate::workloads::layered_dag`].

#[cfg(feature = "redis")]
pub mod apalis;
pub mod dagrs;
pub mod dagx;

use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// Worker threads of the shared multi-thread runtime ([`runtime`]), as our
/// parallel engine's `max_workers` in the comparison.
pub const WORKERS: usize = crate::ours::WORKERS;

/// What went wrong running a peer; names the node at fault where there is
/// one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// A predecessor is not an earlier node (the shapes are topologically
    /// ordered: `preds[i]` holds indices below `i`).
    #[error("node {node}: predecessor {pred} is not an earlier node")]
    BadPredecessor {
        /// The node whose predecessor list is wrong.
        node: usize,
        /// The offending predecessor index.
        pred: usize,
    },
    /// A node has more inputs than the peer's task types take.
    #[error("node {node} has {count} predecessors; the {peer} peer takes at most {max}")]
    TooManyInputs {
        /// The peer that cannot express the node.
        peer: &'static str,
        /// The node with too many inputs.
        node: usize,
        /// How many predecessors it has.
        count: usize,
        /// The most the peer takes.
        max: usize,
    },
    /// A node finished without a value the peer could hand back.
    #[error("{peer}: node {node} produced no value")]
    MissingValue {
        /// The peer that ran the node.
        peer: &'static str,
        /// The node without a value.
        node: usize,
    },
    /// dagx failed to run the graph.
    #[error("dagx: {0}")]
    Dagx(#[from] ::dagx::DagError),
    /// dagrs failed to build or run the graph.
    #[error("dagrs: {0}")]
    Dagrs(#[from] ::dagrs::DagrsError),
    /// A Tokio runtime could not be built.
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// W1's shape: a chain of `n` nodes, each after the previous one.
pub fn chain(n: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|i| if i == 0 { Vec::new() } else { vec![i - 1] })
        .collect()
}

/// W2's shape: `n` independent nodes.
pub fn independent(n: usize) -> Vec<Vec<usize>> {
    vec![Vec::new(); n]
}

/// The shared multi-thread Tokio runtime with [`WORKERS`] worker threads,
/// built on first use (so never inside a timed call once warmed up). dagx
/// runs on it in [`dagx::DagxMode::Parallel`]; the comparison passes it to
/// [`dagrs::run`].
///
/// # Errors
///
/// [`PeerError::Runtime`] if the runtime cannot be built.
pub fn runtime() -> Result<&'static Runtime, PeerError> {
    static SHARED: OnceLock<std::io::Result<Runtime>> = OnceLock::new();
    shared(&SHARED, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .build()
    })
}

/// The runtime in `cell`, built by `build` on first use; a build error is
/// kept and reported to every caller.
fn shared(
    cell: &'static OnceLock<std::io::Result<Runtime>>,
    build: impl FnOnce() -> std::io::Result<Runtime>,
) -> Result<&'static Runtime, PeerError> {
    cell.get_or_init(build)
        .as_ref()
        .map_err(|e| PeerError::Runtime(std::io::Error::new(e.kind(), e.to_string())))
}

/// Checks that every predecessor of every node is an earlier node.
fn check_order(preds: &[Vec<usize>]) -> Result<(), PeerError> {
    for (node, ps) in preds.iter().enumerate() {
        if let Some(&pred) = ps.iter().find(|&&p| p >= node) {
            return Err(PeerError::BadPredecessor { node, pred });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::layered_dag;

    /// Every executor returns the same sum on the same shape.
    #[test]
    fn all_executors_agree() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(WORKERS)
            .build()
            .expect("pool");
        let rt = runtime().expect("runtime");
        let shapes = [
            ("chain(50)", chain(50), Some(50 * 51 / 2)),
            ("independent(50)", independent(50), Some(50)),
            ("layered_dag(200)", layered_dag(200), None),
        ];
        for (name, preds, expected) in shapes {
            let floor = crate::floor::run(&pool, &preds);
            if let Some(expected) = expected {
                assert_eq!(floor, expected, "floor on {name}");
            }
            let inline = dagx::run(&preds, dagx::DagxMode::Inline).expect("dagx inline");
            let parallel = dagx::run(&preds, dagx::DagxMode::Parallel).expect("dagx parallel");
            let dagrs = dagrs::run(rt, &preds).expect("dagrs");
            assert_eq!(inline, floor, "dagx inline on {name}");
            assert_eq!(parallel, floor, "dagx parallel on {name}");
            assert_eq!(dagrs, floor, "dagrs on {name}");
        }
    }

    #[test]
    fn empty_dag_sums_to_zero_everywhere() {
        assert_eq!(dagx::run(&[], dagx::DagxMode::Inline).expect("dagx"), 0);
        assert_eq!(dagx::run(&[], dagx::DagxMode::Parallel).expect("dagx"), 0);
        let rt = runtime().expect("runtime");
        assert_eq!(dagrs::run(rt, &[]).expect("dagrs"), 0);
    }

    #[test]
    fn a_later_predecessor_is_refused() {
        let preds = [vec![1], vec![]];
        assert!(matches!(
            dagx::run(&preds, dagx::DagxMode::Inline),
            Err(PeerError::BadPredecessor { node: 0, pred: 1 })
        ));
        let rt = runtime().expect("runtime");
        assert!(matches!(
            dagrs::run(rt, &preds),
            Err(PeerError::BadPredecessor { node: 0, pred: 1 })
        ));
    }

    #[test]
    fn dagx_refuses_four_inputs() {
        let preds = [vec![], vec![], vec![], vec![], vec![0, 1, 2, 3]];
        assert!(matches!(
            dagx::run(&preds, dagx::DagxMode::Parallel),
            Err(PeerError::TooManyInputs {
                node: 4,
                count: 4,
                ..
            })
        ));
    }
}
