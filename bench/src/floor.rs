//! The floor: a bare DAG executor on rayon, the least a rayon-based engine
//! can do to run W1-W3 (shared/BENCHMARKS.md).
//!
//! Each node has an in-degree counter ([`AtomicUsize`]); a node that
//! finishes stores its value ([`AtomicI64`]) and decrements its successors'
//! counters, spawning into a rayon scope every successor whose counter
//! reaches zero. No state is tracked and nothing is recorded: no names, no
//! failures, no checkpoints. Our engines do all of that, so this is the
//! bound they approach, never a peer they can pass.
//!
//! Every node computes what the peers ([`crate::peers`]) compute: one plus
//! the sum of its predecessors' values.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use rayon::{Scope, ThreadPool};

/// Runs the DAG `preds` (node `i`'s predecessors, all earlier nodes) on
/// `pool` and returns the sum of all node values, each node's value being
/// one plus the sum of its predecessors' values.
///
/// Building the successor lists and counters is part of the call, as a
/// user would pay it. Sums wrap on overflow (W3's values grow geometrically
/// with depth). A predecessor index out of range is ignored; a node on a
/// cycle never becomes ready, so it never runs and counts as 0.
///
/// ```
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
/// // 0 -> 1 -> 2: values 1, 2, 3.
/// let total = taskflow_bench::floor::run(&pool, &[vec![], vec![0], vec![1]]);
/// assert_eq!(total, 6);
/// # Ok::<(), rayon::ThreadPoolBuildError>(())
/// ```
pub fn run(pool: &ThreadPool, preds: &[Vec<usize>]) -> i64 {
    let n = preds.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = Vec::with_capacity(n);
    for (i, ps) in preds.iter().enumerate() {
        let mut count = 0;
        for &p in ps {
            if let Some(s) = succ.get_mut(p) {
                s.push(i);
                count += 1;
            }
        }
        waiting.push(AtomicUsize::new(count));
    }
    let dag = Bare {
        preds,
        succ: &succ,
        waiting,
        values: (0..n).map(|_| AtomicI64::new(0)).collect(),
    };
    // The roots are found before any runs: once one runs, counters reach
    // zero under a scan, and a node seen there would run twice.
    let roots: Vec<usize> = (0..n)
        .filter(|&i| dag.waiting[i].load(Ordering::Relaxed) == 0)
        .collect();
    pool.scope(|scope| {
        for i in roots {
            let dag = &dag;
            scope.spawn(move |scope| dag.visit(scope, i));
        }
    });
    dag.values
        .iter()
        .fold(0i64, |acc, v| acc.wrapping_add(v.load(Ordering::Relaxed)))
}

/// One run's shared state: the graph both ways, the counters and values.
struct Bare<'a> {
    preds: &'a [Vec<usize>],
    succ: &'a [Vec<usize>],
    waiting: Vec<AtomicUsize>,
    values: Vec<AtomicI64>,
}

impl Bare<'_> {
    /// Computes node `i` (all its predecessors are done), then spawns every
    /// successor it made ready.
    fn visit<'s>(&'s self, scope: &Scope<'s>, i: usize) {
        let value = self.preds[i]
            .iter()
            .filter_map(|&p| self.values.get(p))
            .fold(1i64, |acc, v| acc.wrapping_add(v.load(Ordering::Acquire)));
        self.values[i].store(value, Ordering::Release);
        for &s in &self.succ[i] {
            if self.waiting[s].fetch_sub(1, Ordering::AcqRel) == 1 {
                scope.spawn(move |scope| self.visit(scope, s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool")
    }

    #[test]
    fn empty_dag_sums_to_zero() {
        assert_eq!(run(&pool(), &[]), 0);
    }

    #[test]
    fn diamond_sums_its_values() {
        // 0; 1 <- 0; 2 <- 0; 3 <- 1, 2: values 1, 2, 2, 5.
        let preds = [vec![], vec![0], vec![0], vec![1, 2]];
        assert_eq!(run(&pool(), &preds), 10);
    }

    /// Each node's value in index order (predecessors come first).
    fn serial(preds: &[Vec<usize>]) -> i64 {
        let mut values = vec![0i64; preds.len()];
        for (i, ps) in preds.iter().enumerate() {
            values[i] = ps.iter().fold(1i64, |acc, &p| acc.wrapping_add(values[p]));
        }
        values.iter().fold(0i64, |acc, v| acc.wrapping_add(*v))
    }

    #[test]
    fn nodes_made_ready_while_the_roots_are_spawned_run_once() {
        // Root 0, 30,000 more roots, then a fan of 20,000 nodes on node 0
        // (ready, once node 0 ran, while the roots before them are still
        // being spawned), and a last node on every fan node. A fan node
        // run twice would count the last node down twice and run it early.
        let mut preds: Vec<Vec<usize>> = vec![vec![]; 30_001];
        preds.extend((0..20_000).map(|_| vec![0]));
        preds.push((30_001..50_001).collect());
        let expected = serial(&preds);
        let pool = pool();
        for _ in 0..20 {
            assert_eq!(run(&pool, &preds), expected);
        }
    }

    #[test]
    fn cycle_and_out_of_range_nodes_do_not_hang() {
        // 1 and 2 wait on each other; 3 names a node that does not exist.
        let preds = [vec![], vec![2], vec![1], vec![99]];
        assert_eq!(run(&pool(), &preds), 1 + 1);
    }
}
