//! How long each atom ran, written into its atom detail's meta (key
//! [`DURATION_KEY`], seconds), as TaskFlow's timing listener does, so
//! `taskflow show` gives it for flows run anywhere: by `run`, `resume` or a
//! conductor on another host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskflow::{
    AtomDetailId, AtomEvent, AtomState, Backend, Epoch, FlowDetailId, FlowEvent, FlowState,
    Listener, Value,
};

/// The key of an atom detail's meta holding the seconds it ran (and
/// reverted) in its latest run.
pub(crate) const DURATION_KEY: &str = "duration";

/// Times atoms and records each one's time when it finishes (succeeds,
/// fails, reverts or is ignored). One per engine.
pub(crate) struct RecordTimes {
    records: Arc<dyn Backend>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The flow detail, its owner epoch and its atoms' ids, read when the
    /// flow starts running.
    flow: Option<(FlowDetailId, Epoch, HashMap<String, AtomDetailId>)>,
    started: HashMap<String, Instant>,
    total: HashMap<String, Duration>,
}

impl RecordTimes {
    pub(crate) fn new(records: Arc<dyn Backend>) -> Self {
        RecordTimes {
            records,
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Listener for RecordTimes {
    fn on_flow(&self, event: &FlowEvent) {
        if event.to != FlowState::Running {
            return;
        }
        let Ok(flow) = self.records.get_flow_detail(event.flow_detail) else {
            return;
        };
        let atoms = flow
            .atom_details
            .iter()
            .map(|a| (a.name.to_string(), a.uuid))
            .collect();
        if let Ok(mut inner) = self.inner.lock() {
            inner.flow = Some((flow.uuid, flow.owner_epoch, atoms));
        }
    }

    fn on_atom(&self, event: &AtomEvent) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let name = &*event.atom;
        match event.to {
            AtomState::Running | AtomState::Reverting => {
                inner.started.insert(name.to_owned(), Instant::now());
            }
            AtomState::Success
            | AtomState::Failure
            | AtomState::Reverted
            | AtomState::RevertFailure
            | AtomState::Ignore => {
                let ran = inner
                    .started
                    .remove(name)
                    .map_or(Duration::ZERO, |s| s.elapsed());
                let total = {
                    let t = inner.total.entry(name.to_owned()).or_default();
                    *t += ran;
                    *t
                };
                let Some((flow, epoch, atoms)) = &inner.flow else {
                    return;
                };
                let Some(atom) = atoms.get(name) else {
                    return;
                };
                let seconds = (total.as_secs_f64() * 1000.0).round() / 1000.0;
                // A record that cannot take it loses only the time.
                if let Err(e) = self.records.update_atom_meta(
                    *flow,
                    *atom,
                    DURATION_KEY,
                    Some(Value::from(seconds)),
                    *epoch,
                ) {
                    tracing::debug!(atom = name, error = %e, "cannot record the atom's time");
                }
            }
            _ => {}
        }
    }
}
