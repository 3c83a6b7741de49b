//! The [`Backend`] trait every store of records implements.

use std::sync::Arc;

use taskflow_patterns::{AtomState, FlowState, Intention};
use uuid::Uuid;

use crate::{AtomDetail, FlowDetail, LogBook, PersistenceError};

/// A store of logbooks, flow details and atom details.
///
/// The engine writes through it on every transition, so the two hot
/// methods, [`update_atom_state`](Backend::update_atom_state) (a state
/// change, no data) and [`save_atom_detail`](Backend::save_atom_detail) (a
/// result or failure), must each be one cheap write. Every read validates
/// what it reads: a corrupt record is a [`PersistenceError::Corrupt`] naming
/// it, never a panic and never skipped.
///
/// The API is synchronous; a network backend may drive its own runtime inside.
pub trait Backend: Send + Sync {
    /// Saves a logbook and every flow and atom detail in it (insert or update).
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError>;

    /// Loads a logbook with its flow and atom details.
    fn get_logbook(&self, id: Uuid) -> Result<LogBook, PersistenceError>;

    /// Loads every logbook, with their flow and atom details.
    fn list_logbooks(&self) -> Result<Vec<LogBook>, PersistenceError>;

    /// Removes a logbook and everything in it.
    fn destroy_logbook(&self, id: Uuid) -> Result<(), PersistenceError>;

    /// Saves a flow detail and its atom details into the logbook `book`
    /// (which must exist).
    fn save_flow_detail(&self, book: Uuid, flow: &FlowDetail) -> Result<(), PersistenceError>;

    /// Loads a flow detail with its atom details.
    fn get_flow_detail(&self, id: Uuid) -> Result<FlowDetail, PersistenceError>;

    /// Changes the state of a flow detail.
    fn update_flow_state(&self, flow: Uuid, state: FlowState) -> Result<(), PersistenceError>;

    /// Removes a flow detail and its atom details.
    fn destroy_flow_detail(&self, id: Uuid) -> Result<(), PersistenceError>;

    /// Saves an atom detail (insert or update) into the flow detail `flow`.
    fn save_atom_detail(&self, flow: Uuid, atom: &AtomDetail) -> Result<(), PersistenceError>;

    /// Changes the state and intention of an atom detail, leaving its data alone.
    fn update_atom_state(
        &self,
        flow: Uuid,
        atom: Uuid,
        state: AtomState,
        intention: Intention,
    ) -> Result<(), PersistenceError>;

    /// Loads one atom detail.
    fn get_atom_detail(&self, flow: Uuid, atom: Uuid) -> Result<AtomDetail, PersistenceError>;
}

impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        (**self).save_logbook(book)
    }
    fn get_logbook(&self, id: Uuid) -> Result<LogBook, PersistenceError> {
        (**self).get_logbook(id)
    }
    fn list_logbooks(&self) -> Result<Vec<LogBook>, PersistenceError> {
        (**self).list_logbooks()
    }
    fn destroy_logbook(&self, id: Uuid) -> Result<(), PersistenceError> {
        (**self).destroy_logbook(id)
    }
    fn save_flow_detail(&self, book: Uuid, flow: &FlowDetail) -> Result<(), PersistenceError> {
        (**self).save_flow_detail(book, flow)
    }
    fn get_flow_detail(&self, id: Uuid) -> Result<FlowDetail, PersistenceError> {
        (**self).get_flow_detail(id)
    }
    fn update_flow_state(&self, flow: Uuid, state: FlowState) -> Result<(), PersistenceError> {
        (**self).update_flow_state(flow, state)
    }
    fn destroy_flow_detail(&self, id: Uuid) -> Result<(), PersistenceError> {
        (**self).destroy_flow_detail(id)
    }
    fn save_atom_detail(&self, flow: Uuid, atom: &AtomDetail) -> Result<(), PersistenceError> {
        (**self).save_atom_detail(flow, atom)
    }
    fn update_atom_state(
        &self,
        flow: Uuid,
        atom: Uuid,
        state: AtomState,
        intention: Intention,
    ) -> Result<(), PersistenceError> {
        (**self).update_atom_state(flow, atom, state, intention)
    }
    fn get_atom_detail(&self, flow: Uuid, atom: Uuid) -> Result<AtomDetail, PersistenceError> {
        (**self).get_atom_detail(flow, atom)
    }
}
