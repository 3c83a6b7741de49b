use taskflow_patterns::AtomState;

use super::{AtomEvent, FlowEvent, Listener};

/// Logs every transition through `tracing`: flows and successes at `INFO`,
/// failures at `WARN`, other atom transitions and progress at `DEBUG`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingListener;

impl Listener for LoggingListener {
    fn on_flow(&self, e: &FlowEvent) {
        tracing::info!(flow = %e.flow, flow_detail = %e.flow_detail, from = %e.from, to = %e.to, "flow transition");
    }

    fn on_atom(&self, e: &AtomEvent) {
        match (e.to, &e.failure) {
            (AtomState::Failure | AtomState::RevertFailure, Some(f)) => {
                tracing::warn!(atom = %e.atom, from = %e.from, to = %e.to, failure = %f, "atom transition");
            }
            (AtomState::Success, _) => {
                tracing::info!(atom = %e.atom, from = %e.from, to = %e.to, "atom transition");
            }
            _ => tracing::debug!(atom = %e.atom, from = %e.from, to = %e.to, "atom transition"),
        }
    }

    fn on_progress(&self, atom: &str, progress: f32) {
        tracing::debug!(atom, progress, "atom progress");
    }
}
