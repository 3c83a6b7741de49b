use std::collections::VecDeque;

use super::{AtomOutcome, AtomWork, Executor};

/// Runs each atom inline on the thread that runs the engine, one at a time.
///
/// An atom with a timeout (`Atom::timeout`) runs on a helper thread
/// instead, which the engine's thread waits for at most that long (still
/// one atom at a time): a blocking task cannot be stopped on the thread it
/// runs on, and this way one that never returns does not hold the flow.
/// Past its timeout the atom fails with `Timeout` and the flow goes on
/// (its retry controller decides, else it reverts); the task sees
/// `ctx.is_cancelled()` and should return, and if it does not, its helper
/// thread goes on until it does, its outcome dropped.
#[derive(Debug, Default)]
pub struct Serial {
    done: VecDeque<AtomOutcome>,
}

impl Serial {
    /// A serial executor.
    pub fn new() -> Self {
        Serial::default()
    }
}

impl Executor for Serial {
    fn submit(&mut self, work: AtomWork) {
        let outcome = match work.timeout_handle() {
            Some(handle) => Some(super::run_with_timeout(work, &handle)),
            None => work.run(),
        };
        self.done.extend(outcome);
    }

    fn try_outcome(&mut self) -> Option<AtomOutcome> {
        self.done.pop_front()
    }

    fn wait_outcome(&mut self) -> Option<AtomOutcome> {
        self.done.pop_front()
    }
}
