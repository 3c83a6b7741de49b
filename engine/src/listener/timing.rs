use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use taskflow_patterns::AtomState;

use super::{AtomEvent, Listener};

/// Measures how long each atom's execution took (RUNNING to SUCCESS or
/// FAILURE); the last run counts when an atom runs several times.
///
/// ```
/// use taskflow_engine::TimingListener;
/// let timing = TimingListener::new();
/// assert!(timing.duration("anything").is_none());
/// ```
#[derive(Debug, Default)]
pub struct TimingListener {
    inner: Mutex<Timings>,
}

#[derive(Debug, Default)]
struct Timings {
    started: HashMap<String, Instant>,
    durations: HashMap<String, Duration>,
}

impl TimingListener {
    /// A listener with nothing measured yet.
    pub fn new() -> Self {
        TimingListener::default()
    }

    /// How long the atom's last execution took.
    pub fn duration(&self, atom: &str) -> Option<Duration> {
        self.lock().durations.get(atom).copied()
    }

    /// Every atom measured, with its duration.
    pub fn durations(&self) -> HashMap<String, Duration> {
        self.lock().durations.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timings> {
        crate::sync::lock(&self.inner)
    }
}

impl Listener for TimingListener {
    fn on_atom(&self, e: &AtomEvent) {
        let mut t = self.lock();
        match e.to {
            AtomState::Running => {
                t.started.insert(e.atom.to_string(), Instant::now());
            }
            AtomState::Success | AtomState::Failure => {
                if let Some(start) = t.started.remove(&*e.atom) {
                    t.durations.insert(e.atom.to_string(), start.elapsed());
                }
            }
            _ => {}
        }
    }
}
