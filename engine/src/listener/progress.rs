use std::collections::HashMap;
use std::sync::Mutex;

use taskflow_patterns::AtomState;

use super::{AtomEvent, Listener};

/// Keeps the latest progress of each atom: what tasks reported, 1.0 once an
/// atom succeeded.
#[derive(Debug, Default)]
pub struct ProgressListener {
    latest: Mutex<HashMap<String, f32>>,
}

impl ProgressListener {
    /// A listener with no progress seen yet.
    pub fn new() -> Self {
        ProgressListener::default()
    }

    /// The latest progress of `atom`.
    pub fn progress(&self, atom: &str) -> Option<f32> {
        self.lock().get(atom).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, f32>> {
        crate::sync::lock(&self.latest)
    }
}

impl Listener for ProgressListener {
    fn on_atom(&self, e: &AtomEvent) {
        match e.to {
            AtomState::Running => {
                self.lock().insert(e.atom.to_string(), 0.0);
            }
            AtomState::Success => {
                self.lock().insert(e.atom.to_string(), 1.0);
            }
            _ => {}
        }
    }

    fn on_progress(&self, atom: &str, progress: f32) {
        self.lock().insert(atom.to_owned(), progress);
    }
}
