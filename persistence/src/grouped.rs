//! Records read in one query, grouped by their parent's id: what the SQL
//! backends build when they read many logbooks or flows at once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use crate::PersistenceError;

/// Records grouped by their parent's key `K` (its id, or the text of it),
/// each group with the first error found in it: a corrupt record spoils its
/// own group (its flow, its logbook), not the others.
pub(crate) struct Grouped<K, T> {
    pub(crate) groups: HashMap<K, Result<Vec<T>, PersistenceError>>,
    /// Errors of rows whose parent cannot be told.
    pub(crate) orphans: Vec<PersistenceError>,
}

impl<K: Hash + Eq, T> Grouped<K, T> {
    /// No groups.
    pub(crate) fn new() -> Self {
        Grouped {
            groups: HashMap::new(),
            orphans: Vec::new(),
        }
    }

    /// Adds a record (or the error reading it) to the group `parent`.
    pub(crate) fn push(&mut self, parent: K, item: Result<T, PersistenceError>) {
        let group = self.groups.entry(parent).or_insert_with(|| Ok(Vec::new()));
        match (group, item) {
            (Ok(items), Ok(item)) => items.push(item),
            (group @ Ok(_), Err(e)) => *group = Err(e),
            // The group has failed already: its first error stands.
            (Err(_), _) => {}
        }
    }

    /// The group `parent` (empty if it has none), for a read that fails on
    /// any error: the first orphan's, if there is one.
    pub(crate) fn take<Q>(&mut self, parent: &Q) -> Result<Vec<T>, PersistenceError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(e) = self.orphans.drain(..).next() {
            return Err(e);
        }
        self.remove(parent)
    }

    /// The group `parent` (empty if it has none), leaving the orphans.
    pub(crate) fn remove<Q>(&mut self, parent: &Q) -> Result<Vec<T>, PersistenceError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.groups.remove(parent).unwrap_or(Ok(Vec::new()))
    }
}
