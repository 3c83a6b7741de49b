//! Poison-tolerant locking and waiting, written once for the crate.
//!
//! A lock is poisoned when a thread panicked while holding it. Every lock
//! of this crate guards data a panic cannot leave half-changed (queues of
//! outcomes pushed or swapped whole, maps of jobs and of timings, the
//! events a capturing listener keeps), so a poisoned lock is taken as it
//! is rather than failing every later caller; a task's or a listener's
//! panic is caught before it can reach one of these locks anyway.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` with `guard` until notified, poisoned or not.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` with `guard` until notified or `timeout` passed, poisoned
/// or not.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match cv.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(e) => e.into_inner().0,
    }
}
