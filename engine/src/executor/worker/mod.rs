//! The worker executor: atoms run in worker processes reached over a
//! transport.
