//! Integration tests of the durable backends through the public API, with
//! records corrupted behind their back (raw SQL, raw file writes), several
//! handles and processes on one store, and the recorded fixtures of every
//! record format (`tests/fixtures/v<N>/`), which every later version must
//! still read.

// Test code: a failed step should panic (clippy's test allowance covers only
// `#[test]` functions, not these helpers).
#![allow(clippy::unwrap_used)]

mod dir;
mod fixtures;
mod sqlite;
mod support;
