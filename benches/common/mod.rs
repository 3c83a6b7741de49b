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
