//! The in-memory backend: records live as long as the value does.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;

use hashbrown::HashTable;
use serde_json::Value;
use taskflow_patterns::{AtomState, FlowState, Intention};
use uuid::Uuid;

use crate::codec;
use crate::error::{check_epoch, next_epoch};
use crate::sync::lock;
use crate::{
    AtomDetail, AtomDetailId, AtomWrite, Backend, Epoch, FlowDetail, FlowDetailId, LogBook,
    LogBookId, PersistenceError, RecordKind,
};

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
    /// A panic while it is locked cannot leave a record half-written
    /// (every write is a single assignment).
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

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<UuidHasher>>;

#[derive(Debug, Default)]
struct Inner {
    /// Logbook headers (no flow details) and the ids of their flows, in order.
    books: IdMap<LogBookId, (LogBook, Vec<FlowDetailId>)>,
    flows: IdMap<FlowDetailId, FlowRecord>,
}

#[derive(Debug)]
struct FlowRecord {
    book: LogBookId,
    /// The flow detail without its atom details (they are in `atoms`).
    detail: FlowDetail,
    atoms: Vec<AtomDetail>,
    /// Atom id to its position in `atoms`.
    positions: Positions,
    /// The position of the atom written last. An engine writes its atoms
    /// mostly in order (along a linear flow, one after the other), so the
    /// next write is most often to this one or the next: looking there
    /// first spares a probe of `positions` at a random place of a large
    /// table (a cache miss per checkpoint on a flow of a million atoms).
    /// Not used when two records share an id (`positions` then names the
    /// later one, which the hint could miss).
    last: Option<usize>,
    /// How many more lookups skip the atoms near `last` (see
    /// [`FlowRecord::near`]).
    skip_near: u8,
    /// Whether the last look near `last` missed.
    near_missed: bool,
}

/// Atom id to position in a flow's `atoms`: a table of positions alone
/// (4 bytes a slot), each hashed by the id of the record it points at, so
/// the ids are not stored twice.
#[derive(Debug, Default)]
struct Positions(HashTable<u32>);

fn hash_id(id: &AtomDetailId) -> u64 {
    BuildHasherDefault::<UuidHasher>::default().hash_one(id)
}

impl Positions {
    /// The index of `atoms` (the list the table was built over), by id.
    fn build(atoms: &[AtomDetail]) -> Result<Self, PersistenceError> {
        let mut positions = Positions(HashTable::with_capacity(atoms.len()));
        for i in 0..atoms.len() {
            positions.insert(atoms, i)?;
        }
        Ok(positions)
    }

    /// The position of the atom `id` in `atoms`.
    fn get(&self, atoms: &[AtomDetail], id: AtomDetailId) -> Option<usize> {
        self.0
            .find(hash_id(&id), |&i| atoms[i as usize].uuid == id)
            .map(|&i| i as usize)
    }

    /// Points the id of `atoms[i]` at `i` (a later duplicate id wins, as
    /// in a map).
    fn insert(&mut self, atoms: &[AtomDetail], i: usize) -> Result<(), PersistenceError> {
        let id = atoms[i].uuid;
        let position = u32::try_from(i).map_err(|_| PersistenceError::Corrupt {
            kind: RecordKind::AtomDetail,
            id: id.to_string(),
            reason: format!(
                "a flow detail of the memory backend holds at most {} atoms",
                u32::MAX
            ),
        })?;
        let entry = self.0.entry(
            hash_id(&id),
            |&j| atoms[j as usize].uuid == id,
            |&j| hash_id(&atoms[j as usize].uuid),
        );
        *entry.or_insert(position).get_mut() = position;
        Ok(())
    }
}

/// How far either side of the atom written last [`FlowRecord::near`]
/// looks.
const NEAR: usize = 16;

/// How many lookups skip the atoms near the one written last after they
/// did not hold the atom looked up twice in a row.
const NEAR_BACKOFF: u8 = 32;

impl FlowRecord {
    /// The position of the atom `id` in `atoms`: the one written last or
    /// the next if it is either (their ids compared), else one near it (see
    /// [`near`](Self::near)), else from `positions`. Remembered for the
    /// next write. Inlined into the writes: called, it cost a write in
    /// order 4-5 ns more (20 to 25 on a flow of 100,000 atoms).
    #[inline(always)]
    fn position(&mut self, id: AtomDetailId) -> Option<usize> {
        let Some(last) = self.last else {
            return self.positions.get(&self.atoms, id);
        };
        let found = [last, last.wrapping_add(1)]
            .into_iter()
            .find(|&i| self.atoms.get(i).is_some_and(|a| a.uuid == id))
            .or_else(|| self.near(last, id))
            .or_else(|| self.positions.get(&self.atoms, id))?;
        self.last = Some(found);
        Some(found)
    }

    /// The position of `id` among the [`NEAR`] atoms either side of
    /// `last`. An engine running a graph layer by layer writes its atoms
    /// out of order but close together (W3, layers of ten: the write of
    /// the next atom's start is often near the one before, not next to
    /// it), and these records
    /// were written a moment ago, so they are in the cache where a probe
    /// of `positions` in a large flow costs a miss or two. When they do
    /// not hold the atom twice in a row, the next [`NEAR_BACKOFF`] lookups
    /// skip them: where the writes jump about (in random order, on a flow
    /// of 100,000 atoms), reading them on every write doubled its cost
    /// (one miss alone is a jump from one layer to the next). Kept out of
    /// line, so that `position` stays small enough to be inlined.
    #[inline(never)]
    fn near(&mut self, last: usize, id: AtomDetailId) -> Option<usize> {
        if self.skip_near > 0 {
            self.skip_near -= 1;
            return None;
        }
        // Nearest first, ahead then behind (`last` and the next were
        // looked at already).
        let found = (1..=NEAR)
            .flat_map(|d| [last.wrapping_add(d + 1), last.wrapping_sub(d)])
            .find(|&i| self.atoms.get(i).is_some_and(|a| a.uuid == id));
        if found.is_none() && self.near_missed {
            self.skip_near = NEAR_BACKOFF;
        }
        self.near_missed = found.is_none();
        found
    }

    /// Writes `write` (one of a batch) over the atom it names.
    fn apply(&mut self, write: &AtomWrite<'_>) -> Result<(), PersistenceError> {
        match *write {
            AtomWrite::State {
                atom,
                state,
                intention,
            } => {
                let i = self
                    .position(atom)
                    .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))?;
                let detail = &mut self.atoms[i];
                detail.state = state;
                detail.intention = intention;
            }
            AtomWrite::Detail(atom) => {
                codec::check_atom(atom)?;
                self.put_atom(atom)?;
            }
        }
        Ok(())
    }

    /// Saves `atom` over its record, or as a new one.
    fn put_atom(&mut self, atom: &AtomDetail) -> Result<(), PersistenceError> {
        match self.position(atom.uuid) {
            Some(i) => self.atoms[i].clone_from(atom),
            None => {
                self.atoms.push(atom.clone());
                let i = self.atoms.len() - 1;
                if let Err(e) = self.positions.insert(&self.atoms, i) {
                    self.atoms.pop();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The flow detail with its atom details, as saved.
    fn to_detail(&self) -> FlowDetail {
        let mut detail = self.detail.clone();
        detail.atom_details.clone_from(&self.atoms);
        detail
    }
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        MemoryBackend::default()
    }
}

fn not_found(kind: RecordKind, id: impl Into<Uuid>) -> PersistenceError {
    PersistenceError::NotFound {
        kind,
        id: id.into(),
    }
}

impl Inner {
    /// The flow `id`, for a write at `epoch`: `Fenced` if it is owned at a
    /// higher one.
    fn writable(
        &mut self,
        id: FlowDetailId,
        epoch: Epoch,
    ) -> Result<&mut FlowRecord, PersistenceError> {
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

    fn put_flow(&mut self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        self.check_put(flow)?;
        let (_, order) = self
            .books
            .get_mut(&book)
            .ok_or_else(|| not_found(RecordKind::LogBook, book))?;
        if !order.contains(&flow.uuid) {
            order.push(flow.uuid);
        }
        let atoms = flow.atom_details.clone();
        let positions = Positions::build(&atoms)?;
        self.flows.insert(
            flow.uuid,
            FlowRecord {
                book,
                detail: flow_header_of(flow),
                last: (positions.0.len() == atoms.len()).then_some(0),
                skip_near: 0,
                near_missed: false,
                atoms,
                positions,
            },
        );
        Ok(())
    }

    fn book(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        let (header, order) = self
            .books
            .get(&id)
            .ok_or_else(|| not_found(RecordKind::LogBook, id))?;
        let mut book = header.clone();
        book.flow_details = order
            .iter()
            .filter_map(|f| self.flows.get(f).map(FlowRecord::to_detail))
            .collect();
        Ok(book)
    }
}

impl Backend for MemoryBackend {
    /// Writes to memory: never blocks for long.
    fn blocks(&self) -> bool {
        false
    }

    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        // Nothing is saved if one record is too deep (see `check_depth`).
        codec::check_parts(
            RecordKind::LogBook,
            book.uuid,
            codec::meta_parts(&book.meta),
        )?;
        for flow in &book.flow_details {
            codec::check_flow(flow)?;
        }
        let mut inner = lock(&self.inner);
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

    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        lock(&self.inner).book(id)
    }

    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError> {
        let inner = lock(&self.inner);
        let mut books = inner
            .books
            .keys()
            .map(|id| inner.book(*id))
            .collect::<Result<Vec<_>, _>>()?;
        books.sort_by_key(|b| (b.created_at, b.uuid));
        // Nothing is decoded here, so nothing can be corrupt.
        Ok(books.into_iter().map(Ok).collect())
    }

    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError> {
        let mut inner = lock(&self.inner);
        let (_, order) = inner
            .books
            .remove(&id)
            .ok_or_else(|| not_found(RecordKind::LogBook, id))?;
        for flow in order {
            inner.flows.remove(&flow);
        }
        Ok(())
    }

    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        codec::check_flow(flow)?;
        lock(&self.inner).put_flow(book, flow)
    }

    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError> {
        let inner = lock(&self.inner);
        inner
            .flows
            .get(&id)
            .map(FlowRecord::to_detail)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, id))
    }

    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        lock(&self.inner).writable(flow, epoch)?.detail.state = state;
        Ok(())
    }

    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError> {
        let mut inner = lock(&self.inner);
        let record = inner.writable(flow, epoch)?;
        record.detail.owner_epoch = epoch;
        Ok(epoch)
    }

    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError> {
        let mut inner = lock(&self.inner);
        let record = inner
            .flows
            .get_mut(&flow)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, flow))?;
        let epoch = next_epoch(flow, record.detail.owner_epoch)?;
        record.detail.owner_epoch = epoch;
        Ok(epoch)
    }

    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError> {
        let mut inner = lock(&self.inner);
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
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        codec::check_atom(atom)?;
        let mut inner = lock(&self.inner);
        let record = inner.writable(flow, epoch)?;
        record.put_atom(atom)
    }

    /// One lock for the whole batch; written one by one, stopping at the
    /// first error (the writes before it stay written), as the trait's
    /// default does.
    fn save_atom_writes(
        &self,
        flow: FlowDetailId,
        writes: &[AtomWrite<'_>],
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let mut inner = lock(&self.inner);
        let record = inner.writable(flow, epoch)?;
        writes.iter().try_for_each(|write| record.apply(write))
    }

    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let mut inner = lock(&self.inner);
        let record = inner.writable(flow, epoch)?;
        let i = record
            .position(atom)
            .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))?;
        let detail = &mut record.atoms[i];
        detail.state = state;
        detail.intention = intention;
        Ok(())
    }

    fn update_atom_meta(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        key: &str,
        value: Option<Value>,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let value = codec::checked_meta_entry(atom, key, value)?;
        let mut inner = lock(&self.inner);
        let record = inner.writable(flow, epoch)?;
        let i = record
            .position(atom)
            .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))?;
        record.atoms[i].set_meta_entry(key, value);
        Ok(())
    }

    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        let inner = lock(&self.inner);
        let record = inner
            .flows
            .get(&flow)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, flow))?;
        record
            .positions
            .get(&record.atoms, atom)
            .map(|i| record.atoms[i].clone())
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

/// `flow` without its atom details (not cloned only to be dropped).
/// Destructured so that a new field of `FlowDetail` fails to compile here.
fn flow_header_of(flow: &FlowDetail) -> FlowDetail {
    let FlowDetail {
        uuid,
        name,
        state,
        meta,
        run,
        atom_details: _,
        owner_epoch,
    } = flow;
    FlowDetail {
        uuid: *uuid,
        name: name.clone(),
        state: *state,
        meta: meta.clone(),
        run: run.clone(),
        atom_details: Vec::new(),
        owner_epoch: *owner_epoch,
    }
}

#[cfg(test)]
mod tests {
    crate::backend_conformance!(super::MemoryBackend::new());
}
