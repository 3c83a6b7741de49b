//! What the board tests that run across processes share: the clock, the
//! skip-or-fail rule for missing servers, a board's options, and the
//! environment a child process is told what to do through. Each test file
//! takes it with `mod common;` and uses what it needs.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use taskflow_jobboard::BoardOptions;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether a missing server fails the test (`TASKFLOW_REQUIRE_SERVICES=1`)
/// rather than skipping it.
pub(crate) fn required() -> bool {
    std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// Says why the test is skipped, or fails it when servers are required.
pub(crate) fn skip(why: String) {
    if required() {
        panic!("{why} (TASKFLOW_REQUIRE_SERVICES=1)");
    }
    eprintln!("skipping: {why}");
}

/// The default options with a lease of `lease`.
pub(crate) fn options(lease: Duration) -> BoardOptions {
    BoardOptions {
        lease,
        ..BoardOptions::default()
    }
}

/// The environment variable `name`, which the parent sets for a child.
pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set in the child"))
}
