use std::collections::VecDeque;

use super::{AtomOutcome, AtomWork, Executor};

/// Runs each atom inline on the thread that runs the engine, one at a time.
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
        let outcome = work.run();
        self.done.push_back(outcome);
    }

    fn try_outcome(&mut self) -> Option<AtomOutcome> {
        self.done.pop_front()
    }

    fn wait_outcome(&mut self) -> Option<AtomOutcome> {
        self.done.pop_front()
    }
}
