//! dagrs 0.9 (<https://docs.rs/dagrs>): a flow-based graph of nodes joined
//! by channels, driven as its `compute_dag` example and `run_overhead`
//! bench drive it.
//!
//! Each node is a `DefaultNode` whose [`Action`] receives its
//! predecessors' values on its in-channels, broadcasts one plus their sum on
//! its out-channels and returns it as its output; `Graph::add_edge` joins
//! each node to its successors (one bounded channel per edge). The graph
//! runs with `Graph::async_start` on the runtime given (dagrs leaves the
//! runtime to the application), and the values are read back with
//! `Graph::get_results`.

use std::sync::Arc;

use ::dagrs::async_trait::async_trait;
use ::dagrs::{
    Action, Content, DefaultNode, EnvVar, Graph, InChannels, Node, NodeId, NodeTable, OutChannels,
    Output,
};
use tokio::runtime::Runtime;

use super::{check_order, PeerError};

/// Builds the dagrs graph of `preds` and runs it on `rt` (the comparison
/// passes [`super::runtime`]); returns the sum of all node values (see
/// [`super`]).
///
/// # Errors
///
/// [`PeerError::BadPredecessor`] if a predecessor is not an earlier node,
/// [`PeerError::Dagrs`] if dagrs refuses the graph or fails to run it,
/// [`PeerError::MissingValue`] if a node finished without a value.
pub fn run(rt: &Runtime, preds: &[Vec<usize>]) -> Result<i64, PeerError> {
    check_order(preds)?;
    rt.block_on(async {
        let mut table = NodeTable::new();
        let mut graph = Graph::new();
        let mut ids: Vec<NodeId> = Vec::with_capacity(preds.len());
        for i in 0..preds.len() {
            let node = DefaultNode::with_action(format!("n{i}"), Sum, &mut table);
            ids.push(node.id());
            graph.add_node(node)?;
        }
        let mut succ: Vec<Vec<NodeId>> = vec![Vec::new(); preds.len()];
        for (i, ps) in preds.iter().enumerate() {
            for &p in ps {
                succ[p].push(ids[i]);
            }
        }
        for (from, to) in ids.iter().zip(succ) {
            if !to.is_empty() {
                graph.add_edge(*from, to)?;
            }
        }
        graph.set_env(EnvVar::new(table));
        graph.async_start().await?;
        let results = graph.get_results::<i64>();
        ids.iter().enumerate().try_fold(0i64, |acc, (node, id)| {
            match results.get(id).and_then(Option::as_ref) {
                Some(v) => Ok(acc.wrapping_add(**v)),
                None => Err(PeerError::MissingValue {
                    peer: "dagrs",
                    node,
                }),
            }
        })
    })
}

/// Every node's action: one plus the sum of the values received.
struct Sum;

#[async_trait]
impl Action for Sum {
    async fn run(
        &self,
        input: &mut InChannels,
        output: &mut OutChannels,
        _env: Arc<EnvVar>,
    ) -> Output {
        let inputs = input
            .map(|content| content.ok().and_then(|c| c.into_inner::<i64>()).map(|v| *v))
            .await;
        let mut sum = 1i64;
        for v in inputs {
            match v {
                Some(v) => sum = sum.wrapping_add(v),
                // A missing input leaves this node without a value, which
                // `run` reports.
                None => return Output::empty(),
            }
        }
        output.broadcast(Content::new(sum)).await;
        Output::new(sum)
    }
}
