//! The worker executor: atoms run in worker processes reached over a
//! transport.
//!
//! An engine built with a [`WorkerExecutor`] runs the same runtime as every
//! other engine; only where tasks run differs. Each task's execute or revert
//! becomes a request to a [`Worker`] (a process, possibly on another
//! machine, or threads of this process) that advertises the task's type;
//! the worker runs it and replies. Retry controllers never leave the engine:
//! they only decide, and run inline in the engine's process, as in
//! TaskFlow's worker-based engine.
//!
//! ```text
//!  engine (WorkerExecutor)                      worker "w1" (Worker)
//!    |-- Discover{reply_to} ---> every worker        |
//!    |<-- Hello{name, task types, concurrency, heartbeat} (start, every
//!    |        heartbeat, and in answer to Discover)  |
//!    |-- Request{id, atom, task type, action, payload} --> "w1"
//!    |<-- Progress{id, fraction} (0..n) -------------|
//!    |<-- CheckIn{id, message} (0..n) ---------------|
//!    |<-- Done{id, Ok(result) | Err(failure)} -------|
//!    |-- Cancel{id} (on timeout / suspend) --------->|
//!    |<-- Bye{name} (graceful stop) -----------------|
//! ```
//!
//! # Topics: what a worker runs
//!
//! A worker has a unique name and advertises the **task types** it runs:
//! the typetag names of its stored tasks (`"CreateVolume"` for
//! `#[typetag::serde] impl StoredTask for CreateVolume`). The engine learns
//! them from `Hello` messages and routes each request to a live worker that
//! advertises the task's type (`task.type_name()`) and has room: fewer
//! of this engine's requests in flight than its concurrency plus
//! [`WorkerOptions::prefetch`] (requests sent ahead to wait in the worker
//! for a thread, so short tasks do not wait a broker round trip between
//! one and the next). Among those it takes the least loaded for its size,
//! ties in turn; when all are full the request waits in the engine (its
//! timeout running) until one has room, so a worker that joins later still
//! gets work. A worker's "topic" in
//! TaskFlow's sense is its name; its task types are what it answers for.
//!
//! # Messages and payloads
//!
//! [`Message`] is the whole protocol. A request carries the atom's name,
//! the task type, execute or revert, and a [`Payload`]:
//!
//! * over a transport that crosses processes, [`WorkData`]: the task
//!   serialized by typetag (`{"CreateVolume": {"size_gb": 10}}`), the
//!   resolved inputs, and for a revert the atom's own result or failure and
//!   the flow's failures. The worker rebuilds the task with
//!   `serde_json::from_value::<Box<dyn Task>>`, so its binary must link the
//!   type. A task that cannot be serialized (a closure made with `task_fn`)
//!   fails at once with `NotSerializable`;
//! * over the in-process transport ([`InProcess::new`]), the engine's
//!   [`AtomWork`](crate::AtomWork) itself, so closures run on in-process
//!   workers (which advertise [`CLOSURE_TASK_TYPE`]) while requests, replies,
//!   progress, timeouts and heartbeats go through the same machinery.
//!   [`InProcess::serializing`] encodes every message as a broker would.
//!
//! Over AMQP (`AmqpTransport`, feature `amqp`) messages are JSON. One topic
//! exchange, `<prefix>` (auto-delete), carries everything; each endpoint
//! has one exclusive, auto-delete queue bound to it:
//!
//! | queue | bound with | receives |
//! | --- | --- | --- |
//! | `<prefix>.worker.<name>` | `worker.<name>`, `discover` | requests, cancels, discovers |
//! | `<prefix>.engine.<id>` | `engine.<id>`, `notice` | replies, hellos, byes |
//!
//! Queues vanish with their connection and the exchange with its last
//! queue, so nothing is left on the broker; a prefix of its own per
//! deployment (or test) keeps flows apart.
//!
//! # Timeouts, lost workers and lost connections
//!
//! Every request ends in exactly one outcome, so the runtime never waits
//! forever. Besides the worker's own `Done`, the executor ends a request
//! with a [`Failure`](taskflow_patterns::Failure) naming the atom and the
//! task type, of these kinds ([`kinds`]):
//!
//! * `Timeout`: no result within [`WorkerOptions::timeout`] (from
//!   submission); the worker is sent `Cancel` (a running task sees
//!   `ctx.is_cancelled()`, a queued one is dropped) and a late result is
//!   ignored;
//! * `WorkerLost`: the worker holding the request said `Bye`, or nothing was
//!   heard from it for three heartbeats plus half a second (it crashed, or
//!   its connection died), or a new instance of it said hello (it
//!   restarted), or it stopped before running the request;
//! * `UnknownTaskType`: no live worker advertised the type within
//!   [`WorkerOptions::discovery_timeout`];
//! * `NotSerializable`: the task or its inputs cannot be encoded;
//! * `TransportLost`: the engine's connection to the broker broke; every
//!   request in flight fails, and so does every later one (the executor
//!   does not reconnect: build a new engine, which resumes from its
//!   records).
//!
//! The runtime treats them as any failure: the atom's retry controller
//! decides (retrying it may reach another worker), otherwise the flow
//! reverts. Requests are at most once per send: a worker takes a request
//! off its queue when it receives it, and a request lost with its worker is
//! not run again unless a retry controller asks.
//!
//! # Progress, check-ins and tracing
//!
//! A task's progress reports and check-ins travel back to the engine as
//! `Progress` and `CheckIn` messages (when the request asked for them),
//! and the engine records and announces them as it would its own tasks'.
//! Tracing spans do not travel: a task run by a worker in another process
//! logs there, outside the span its engine's run was called in (a span is
//! the subscriber's, in the engine's process). Put what identifies the
//! work in the task's own fields or inputs to find its lines. Over the
//! in-process transport with [`InProcess::new`] the work item, span
//! included, moves as it is, so in-process workers do log inside it.
//!
//! # Stopping a worker
//!
//! [`StopHandle::stop`] stops gracefully: no more requests are taken
//! (queued ones fail with `WorkerLost`, so they can be retried elsewhere),
//! running tasks see their cancel flag and have `stop_grace` to finish and
//! reply, then the worker says `Bye`. [`StopHandle::abort`] stops as if the
//! process died: no reply, no goodbye.

mod executor;
mod in_process;
mod protocol;
mod server;
mod transport;

#[cfg(feature = "amqp")]
mod amqp;

#[cfg(feature = "amqp")]
pub use amqp::AmqpTransport;
pub use executor::{WorkerExecutor, WorkerOptions};
pub use in_process::InProcess;
pub use protocol::{
    kinds, Message, Payload, Request, Route, WorkData, WorkerInfo, CLOSURE_TASK_TYPE,
};
pub use server::{StopHandle, Worker, WorkerConfig, WorkerHandle};
pub use transport::{
    inbox, Deliveries, Endpoint, Inbox, Incoming, Link, Transport, TransportError,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
mod conformance {
    use std::sync::OnceLock;
    use std::time::Duration;

    use super::{InProcess, Worker, WorkerConfig, WorkerExecutor, WorkerHandle, WorkerOptions};
    use crate::EngineBuilder;

    /// Two in-process workers that run closures and the suite's client
    /// task, shared by every case.
    fn transport() -> &'static InProcess {
        static SHARED: OnceLock<(InProcess, Vec<WorkerHandle>)> = OnceLock::new();
        &SHARED
            .get_or_init(|| {
                let transport = InProcess::new();
                let workers = ["conformance-1", "conformance-2"]
                    .into_iter()
                    .map(|name| {
                        let config = WorkerConfig::new(
                            name,
                            [super::CLOSURE_TASK_TYPE, crate::testkit::CLIENT_TASK_TYPE],
                        )
                        .concurrency(4);
                        Worker::new(&transport, config)
                            .and_then(Worker::spawn)
                            .expect("worker starts")
                    })
                    .collect();
                (transport, workers)
            })
            .0
    }

    fn executor() -> WorkerExecutor {
        WorkerExecutor::new(
            transport(),
            WorkerOptions::with_timeout(Duration::from_secs(30)),
        )
        .expect("executor connects")
    }

    crate::engine_conformance!(|builder: EngineBuilder| builder.executor(executor()));
}
