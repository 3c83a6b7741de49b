//! Who runs it: jobs, jobboards with leased claims, and conductors.
//!
//! A producer posts a [`Job`] (a reference to a logbook and flow detail
//! holding a flow to run) on a [`JobBoard`]; any conductor on any machine
//! claims it for a lease, runs the flow, renews the lease meanwhile, and
//! consumes the job. If the conductor dies its lease lapses, another
//! conductor claims the job with a higher epoch and resumes the flow from
//! its last checkpoint; the dead owner's epoch is then refused by the board
//! and by persistence (fencing), so it can no longer write.
//!
//! # Boards
//!
//! - [`MemoryBoard`]: one process, for tests and embedding.
//! - [`SqliteBoard`]: the embedded default, every process of one host.
//! - `RedisBoard` (feature `redis`): many hosts; Lua scripts make each
//!   change atomic, leases on the Redis server's clock.
//! - `PostgresBoard` (feature `postgres`): many hosts, on the database that
//!   may hold the records too; claims with `FOR UPDATE SKIP LOCKED`, leases
//!   on the server's clock (`now()`), keys enforced by unique indexes,
//!   `wait` woken by `LISTEN/NOTIFY`, a versioned schema per board.
//! - `EtcdBoard` (feature `etcd`): many hosts, on an etcd cluster; claims
//!   are transactions comparing revisions, leases are etcd leases (whole
//!   seconds, at least the server's minimum), `wait` and events a watch.
//! - `ZookeeperBoard` (feature `zookeeper`): many hosts, on a ZooKeeper
//!   ensemble, in TaskFlow's layout (a node per job, an ephemeral lock per
//!   claim); every change one multi-op fenced by the job node's version,
//!   leases on the server's clock, `wait` and events from watches.
//!
//! All of them pass one conformance suite (`testkit`, feature `testkit`).

mod board;
#[cfg(feature = "conductor")]
pub mod conductor;
mod error;
#[cfg(feature = "etcd")]
mod etcd;
mod events;
mod job;
mod lease;
mod memory;
mod post;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod sqlite;
mod sync;
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::unwrap_used)]
pub mod testkit;
#[cfg(feature = "zookeeper")]
mod zookeeper;

pub use board::{ClaimFilter, JobBoard, JobWait, ListOptions};
#[cfg(feature = "conductor")]
pub use conductor::{Conductor, ConductorBuilder, ConductorEvent, ConductorListener, StopHandle};
pub use error::JobBoardError;
#[cfg(feature = "etcd")]
pub use etcd::EtcdBoard;
pub use events::{BoardEvent, BoardListener, CapturingListener, Subscription, EVENT_QUEUE};
pub use job::{
    BoardOptions, Claim, Control, Entity, Job, JobId, JobState, NewJob, Outcome, Retention,
};
pub use lease::{Clock, ManualClock};
pub use memory::MemoryBoard;
pub use post::{json_type, post_flow, FlowSource, PostFlow, POSTED_KEY};
#[cfg(feature = "postgres")]
pub use postgres::PostgresBoard;
#[cfg(feature = "redis")]
pub use redis::RedisBoard;
pub use sqlite::SqliteBoard;
#[cfg(feature = "zookeeper")]
pub use zookeeper::ZookeeperBoard;
