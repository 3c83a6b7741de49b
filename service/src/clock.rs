//! The time the service stamps things with.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, on this host's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
