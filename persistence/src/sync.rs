//! Poison-tolerant locking, written once for the crate.
//!
//! A lock is poisoned when a thread panicked while holding it. Every lock
//! of this crate guards data a panic cannot leave half-changed (a write is
//! a single assignment, a file replaced by a rename, a transaction rolled
//! back when dropped, a list pushed to and popped from), so a poisoned
//! lock is taken as it is rather than failing every later caller.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes `l` for reading, poisoned or not.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Takes `l` for writing, poisoned or not.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
