//! The in-memory backend: records live as long as the value does.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use taskflow_patterns::{AtomState, FlowState, Intention};
use uuid::Uuid;

use crate::error::check_epoch;
use crate::{AtomDetail, Backend, FlowDetail, LogBook, PersistenceError, RecordKind};

/// Keeps records in memory, for tests and for flows that need no durability.
/// Cheap to share: wrap it in an `Arc`.
///
/// ```
/// use taskflow_persistence::{Backend, LogBook, MemoryBackend};
/// let backend = MemoryBackend::new();
/// let book = LogBook::new("b");
/// backend.save_logbook(&book).unwrap();
/// assert_eq!(backend.get_logbook(book.uuid).unwrap().name, "b");
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    inner: Mutex<Inner>,
}

/// Hashes a random (v4) uuid by folding its bytes: they are random
/// already, so SipHash's cost buys nothing on this hot path.
#[derive(Default)]
struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

type UuidMap<V> = HashMap<Uuid, V, BuildHasherDefault<UuidHasher>>;

#[derive(Debug, Default)]
struct Inner {
    /// Logbook headers (no flow details) and the ids of their flows, in order.
    books: UuidMap<(LogBook, Vec<Uuid>)>,
    flows: UuidMap<FlowRecord>,
}

#[derive(Debug)]
struct FlowRecord {
    book: Uuid,
    detail: FlowDetail,
    /// Atom id to its position in `detail.atom_details`.
    positions: UuidMap<usize>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a record half-written
        // (every write is a single assignment), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(kind: RecordKind, id: Uuid) -> PersistenceError {
    PersistenceError::NotFound { kind, id }
}

impl Inner {
    /// The flow `id`, for a write at `epoch`: `Fenced` if it is owned at a
    /// higher one.
    fn writable(&mut self, id: Uuid, epoch: u64) -> Result<&mut FlowRecord, PersistenceError> {
        let record = self
            .flows
            .get_mut(&id)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, id))?;
        check_epoch(id, record.detail.owner_epoch, epoch)?;
        Ok(record)
    }

    /// Refuses to save `flow` (a write at its own epoch) over a stored flow
    /// detail owned at a higher epoch.
    fn check_put(&self, flow: &FlowDetail) -> Result<(), PersistenceError> {
        match self.flows.get(&flow.uuid) {
            Some(stored) => check_epoch(flow.uuid, stored.detail.owner_epoch, flow.owner_epoch),
            None => Ok(()),
        }
    }

    fn put_flow(&mut self, book: Uuid, flow: &FlowDetail) -> Result<(), PersistenceError> {
        self.check_put(flow)?;
        let (_, order) = self
            .books
            .get_mut(&book)
            .ok_or_else(|| not_found(RecordKind::LogBook, book))?;
        if !order.contains(&flow.uuid) {
            order.push(flow.uuid);
        }
        let positions = flow
            .atom_details
            .iter()
            .enumerate()
            .map(|(i, a)| (a.uuid, i))
            .collect();
        self.flows.insert(
            flow.uuid,
            FlowRecord {
                book,
                detail: flow.clone(),
                positions,
            },
        );
        Ok(())
    }

    fn book(&self, id: Uuid) -> Result<LogBook, PersistenceError> {
        let (header, order) = self
            .books
            .get(&id)
            .ok_or_else(|| not_found(RecordKind::LogBook, id))?;
        let mut book = header.clone();
        book.flow_details = order
            .iter()
            .filter_map(|f| self.flows.get(f).map(|r| r.detail.clone()))
            .collect();
        Ok(book)
    }
}

impl Backend for MemoryBackend {
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        let mut inner = self.lock();
        // Nothing is saved if one flow detail is fenced.
        for flow in &book.flow_details {
            inner.check_put(flow)?;
        }
        let header = header_of(book);
        let order = inner
            .books
            .remove(&book.uuid)
            .map(|(_, order)| order)
            .unwrap_or_default();
        inner.books.insert(book.uuid, (header, order));
        for flow in &book.flow_details {
            inner.put_flow(book.uuid, flow)?;
        }
        Ok(())
    }

    fn get_logbook(&self, id: Uuid) -> Result<LogBook, PersistenceError> {
        self.lock().book(id)
    }

    fn list_logbooks(&self) -> Result<Vec<LogBook>, PersistenceError> {
        let inner = self.lock();
        let mut books = inner
            .books
            .keys()
            .map(|id| inner.book(*id))
            .collect::<Result<Vec<_>, _>>()?;
        books.sort_by_key(|b| (b.created_at, b.uuid));
        Ok(books)
    }

    fn destroy_logbook(&self, id: Uuid) -> Result<(), PersistenceError> {
        let mut inner = self.lock();
        let (_, order) = inner
            .books
            .remove(&id)
            .ok_or_else(|| not_found(RecordKind::LogBook, id))?;
        for flow in order {
            inner.flows.remove(&flow);
        }
        Ok(())
    }

    fn save_flow_detail(&self, book: Uuid, flow: &FlowDetail) -> Result<(), PersistenceError> {
        self.lock().put_flow(book, flow)
    }

    fn get_flow_detail(&self, id: Uuid) -> Result<FlowDetail, PersistenceError> {
        let inner = self.lock();
        inner
            .flows
            .get(&id)
            .map(|r| r.detail.clone())
            .ok_or_else(|| not_found(RecordKind::FlowDetail, id))
    }

    fn update_flow_state(
        &self,
        flow: Uuid,
        state: FlowState,
        epoch: u64,
    ) -> Result<(), PersistenceError> {
        self.lock().writable(flow, epoch)?.detail.state = state;
        Ok(())
    }

    fn fence_flow_detail(&self, flow: Uuid, epoch: u64) -> Result<u64, PersistenceError> {
        let mut inner = self.lock();
        let record = inner.writable(flow, epoch)?;
        record.detail.owner_epoch = epoch;
        Ok(epoch)
    }

    fn destroy_flow_detail(&self, id: Uuid) -> Result<(), PersistenceError> {
        let mut inner = self.lock();
        let record = inner
            .flows
            .remove(&id)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, id))?;
        if let Some((_, order)) = inner.books.get_mut(&record.book) {
            order.retain(|f| *f != id);
        }
        Ok(())
    }

    fn save_atom_detail(
        &self,
        flow: Uuid,
        atom: &AtomDetail,
        epoch: u64,
    ) -> Result<(), PersistenceError> {
        let mut inner = self.lock();
        let record = inner.writable(flow, epoch)?;
        match record.positions.get(&atom.uuid) {
            Some(&i) => overwrite(&mut record.detail.atom_details[i], atom),
            None => {
                record
                    .positions
                    .insert(atom.uuid, record.detail.atom_details.len());
                record.detail.atom_details.push(atom.clone());
            }
        }
        Ok(())
    }

    fn update_atom_state(
        &self,
        flow: Uuid,
        atom: Uuid,
        state: AtomState,
        intention: Intention,
        epoch: u64,
    ) -> Result<(), PersistenceError> {
        let mut inner = self.lock();
        let record = inner.writable(flow, epoch)?;
        let i = *record
            .positions
            .get(&atom)
            .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))?;
        let detail = &mut record.detail.atom_details[i];
        detail.state = state;
        detail.intention = intention;
        Ok(())
    }

    fn get_atom_detail(&self, flow: Uuid, atom: Uuid) -> Result<AtomDetail, PersistenceError> {
        let inner = self.lock();
        let record = inner
            .flows
            .get(&flow)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, flow))?;
        record
            .positions
            .get(&atom)
            .map(|&i| record.detail.atom_details[i].clone())
            .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))
    }
}

/// `book` without its flow details (not cloned only to be dropped).
/// Destructured so that a new field of `LogBook` fails to compile here.
fn header_of(book: &LogBook) -> LogBook {
    let LogBook {
        uuid,
        name,
        created_at,
        updated_at,
        meta,
        flow_details: _,
    } = book;
    LogBook {
        uuid: *uuid,
        name: name.clone(),
        created_at: *created_at,
        updated_at: *updated_at,
        meta: meta.clone(),
        flow_details: Vec::new(),
    }
}

/// Copies `src` over `dst` field by field, reusing what `dst` already
/// holds (its name's buffer; an empty meta or history stays unallocated):
/// a checkpoint of an atom detail costs no allocation beyond its data.
/// Destructured so that a new field of `AtomDetail` fails to compile here.
fn overwrite(dst: &mut AtomDetail, src: &AtomDetail) {
    let AtomDetail {
        uuid,
        name,
        kind,
        state,
        intention,
        result,
        failure,
        revert_failure,
        history,
        version,
        meta,
    } = src;
    dst.uuid = *uuid;
    dst.name.clone_from(name);
    dst.kind = *kind;
    dst.state = *state;
    dst.intention = *intention;
    dst.result.clone_from(result);
    dst.failure.clone_from(failure);
    dst.revert_failure.clone_from(revert_failure);
    if !(dst.history.is_empty() && history.is_empty()) {
        dst.history.clone_from(history);
    }
    dst.version = *version;
    if !(dst.meta.is_empty() && meta.is_empty()) {
        dst.meta.clone_from(meta);
    }
}

#[cfg(test)]
mod tests {
    crate::backend_conformance!(super::MemoryBackend::new());
}
