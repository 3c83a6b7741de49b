use std::sync::Mutex;

use taskflow_patterns::{AtomState, FlowState};

use crate::sync::lock;

use super::{AtomEvent, Event, FlowEvent, Listener};

/// Records every event, in order: the tool for tests.
///
/// ```
/// use taskflow_engine::CapturingListener;
/// let capture = CapturingListener::new();
/// assert!(capture.events().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct CapturingListener {
    events: Mutex<Vec<Event>>,
    progress: Mutex<Vec<(String, f32)>>,
    checkins: Mutex<Vec<(String, String)>>,
}

impl CapturingListener {
    /// A listener with nothing captured yet.
    pub fn new() -> Self {
        CapturingListener::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// Every atom transition so far as `(atom, state entered)`.
    pub fn atom_transitions(&self) -> Vec<(String, AtomState)> {
        lock(&self.events)
            .iter()
            .filter_map(|e| match e {
                Event::Atom(a) => Some((a.atom.to_string(), a.to)),
                _ => None,
            })
            .collect()
    }

    /// The atoms that entered `state`, in order.
    pub fn atoms_entering(&self, state: AtomState) -> Vec<String> {
        self.atom_transitions()
            .into_iter()
            .filter(|(_, s)| *s == state)
            .map(|(a, _)| a)
            .collect()
    }

    /// The states `atom` entered, in order.
    pub fn states_of(&self, atom: &str) -> Vec<AtomState> {
        self.atom_transitions()
            .into_iter()
            .filter(|(a, _)| a == atom)
            .map(|(_, s)| s)
            .collect()
    }

    /// The flow states entered, in order.
    pub fn flow_states(&self) -> Vec<FlowState> {
        lock(&self.events)
            .iter()
            .filter_map(|e| match e {
                Event::Flow(f) => Some(f.to),
                _ => None,
            })
            .collect()
    }

    /// Every progress report so far.
    pub fn progress(&self) -> Vec<(String, f32)> {
        lock(&self.progress).clone()
    }

    /// Every check-in so far, as `(atom, message)`.
    pub fn checkins(&self) -> Vec<(String, String)> {
        lock(&self.checkins).clone()
    }

    /// Forgets everything captured.
    pub fn clear(&self) {
        lock(&self.events).clear();
        lock(&self.progress).clear();
        lock(&self.checkins).clear();
    }
}

impl Listener for CapturingListener {
    fn on_flow(&self, event: &FlowEvent) {
        lock(&self.events).push(Event::Flow(event.clone()));
    }

    fn on_atom(&self, event: &AtomEvent) {
        lock(&self.events).push(Event::Atom(event.clone()));
    }

    fn on_progress(&self, atom: &str, progress: f32) {
        lock(&self.progress).push((atom.to_owned(), progress));
    }

    fn on_checkin(&self, atom: &str, message: &str) {
        lock(&self.checkins).push((atom.to_owned(), message.to_owned()));
    }
}
