#![allow(dead_code)] // each bench uses only the workloads it measures

//! Workloads shared by the benches (shared/BENCHMARKS.md).

use taskflow::prelude::*;

/// The task of W1: the previous output plus one.
pub(crate) fn step() -> taskflow::FnTask {
    task_fn(|ctx| Ok(json!(ctx.input::<i64>("x")? + 1)))
}

/// W1: a linear flow of `n` atoms running `task`; `t0` takes `x` from the
/// store, `ti` requires `x{i-1}` (rebound to `x`) and provides `x{i}`.
pub(crate) fn w1_flow(n: usize, task: &taskflow::FnTask) -> Flow {
    let mut flow = Linear::new("w1");
    for i in 0..n {
        let mut a = atom(format!("t{i}"), task.clone())
            .requires(["x"])
            .provides(format!("x{i}"));
        if i > 0 {
            a = a.rebind("x", format!("x{}", i - 1));
        }
        flow = flow.add(a);
    }
    flow.into()
}

/// W3's DAG: `n` nodes in layers of 10; each node after the first layer
/// depends on 1 to 3 distinct nodes of the layer before, drawn from a fixed
/// seed. Returns each node's predecessors.
pub(crate) fn layered_dag(n: usize) -> Vec<Vec<usize>> {
    const WIDTH: usize = 10;
    let mut seed: u64 = 0x5eed_1234_abcd_ef01;
    let mut next = move |bound: usize| {
        // xorshift64*: a fixed, dependency-free stream.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    };
    (0..n)
        .map(|i| {
            let layer = i / WIDTH;
            if layer == 0 {
                return Vec::new();
            }
            let start = (layer - 1) * WIDTH;
            let mut preds: Vec<usize> = Vec::new();
            let want = 1 + next(3);
            while preds.len() < want {
                let p = start + next(WIDTH);
                if !preds.contains(&p) {
                    preds.push(p);
                }
            }
            preds
        })
        .collect()
}

/// W3 as a graph flow: node `i` provides `v{i}` and requires its
/// predecessors' values (arguments `p0`, `p1`, ... rebound to `v{pred}`);
/// links are inferred from that data. Each task returns the sum of its
/// inputs plus one.
pub(crate) fn w3_flow(preds: &[Vec<usize>]) -> Flow {
    let task = task_fn(|ctx| {
        let mut sum = 1;
        for (_, v) in ctx.inputs().iter() {
            sum += v.as_i64().unwrap_or(0);
        }
        Ok(json!(sum))
    });
    let mut flow = Graph::new("w3");
    for (i, ps) in preds.iter().enumerate() {
        let mut a = atom(format!("n{i}"), task.clone()).provides(format!("v{i}"));
        for (k, p) in ps.iter().enumerate() {
            a = a
                .requires([format!("p{k}")])
                .rebind(format!("p{k}"), format!("v{p}"));
        }
        flow = flow.add(a);
    }
    flow.into()
}

/// W2: an unordered flow of `n` independent no-op tasks.
pub(crate) fn w2_flow(n: usize) -> Flow {
    let task = task_fn(|_| Ok(json!(1)));
    Unordered::new("w2")
        .add_all((0..n).map(|i| atom(format!("t{i}"), task.clone())))
        .into()
}
