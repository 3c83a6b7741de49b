//! Ready queues: the atoms ready to start, in the order they start.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use taskflow_patterns::{AtomIndex, Compilation};

/// Atoms ready to execute (or to revert), in the order they are to start:
/// first in, first out, or, when some atom of the flow has a priority
/// (TaskFlow's `Atom.priority`), highest priority first and first in,
/// first out among equals. A flow without priorities pays nothing for
/// them.
pub(crate) enum ReadyQueue {
    Fifo(VecDeque<AtomIndex>),
    ByPriority {
        heap: BinaryHeap<(i32, Reverse<u64>, AtomIndex)>,
        pushed: u64,
    },
}

impl ReadyQueue {
    pub(crate) fn new(prioritized: bool) -> Self {
        if prioritized {
            ReadyQueue::ByPriority {
                heap: BinaryHeap::new(),
                pushed: 0,
            }
        } else {
            ReadyQueue::Fifo(VecDeque::new())
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, comp: &Compilation, atom: AtomIndex) {
        match self {
            ReadyQueue::Fifo(queue) => queue.push_back(atom),
            ReadyQueue::ByPriority { heap, pushed } => {
                heap.push((comp.atom(atom).priority(), Reverse(*pushed), atom));
                *pushed += 1;
            }
        }
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<AtomIndex> {
        match self {
            ReadyQueue::Fifo(queue) => queue.pop_front(),
            ReadyQueue::ByPriority { heap, .. } => heap.pop().map(|(_, _, atom)| atom),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            ReadyQueue::Fifo(queue) => queue.is_empty(),
            ReadyQueue::ByPriority { heap, .. } => heap.is_empty(),
        }
    }
}
