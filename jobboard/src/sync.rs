//! Poison-tolerant locking and waiting, written once for the crate.
//!
//! A lock is poisoned when a thread panicked while holding it. Every lock
//! of this crate guards data a panic cannot leave half-changed (a board's
//! state changed in a few assignments that cannot panic half-way, a
//! transaction rolled back when dropped, a counter, a list of idle
//! connections), so a poisoned lock is taken as it is rather than failing
//! every later caller.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Locks `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` with `guard` until notified, poisoned or not.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` with `guard` until notified or `timeout` passed,
/// poisoned or not.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    match cv.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
