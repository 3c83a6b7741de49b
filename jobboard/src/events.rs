//! Board events: what a [`BoardListener`] registered with
//! [`JobBoard::subscribe`](crate::JobBoard::subscribe) is told.
//!
//! Every board delivers its events through a [`Notifier`]: the board hands
//! each event to it without blocking (a bounded queue of
//! [`EVENT_QUEUE`] events), and one dispatcher thread per board calls the
//! listeners, in the order the board applied the changes. A slow listener
//! therefore never slows the board's callers; it only lets the queue fill.
//! When the queue is full, new events are dropped and counted, and the
//! listeners are told how many they missed with one
//! [`BoardEvent::Missed`] as soon as there is room again: a listener that
//! sees it should read the board again ([`iterjobs`](crate::JobBoard::iterjobs))
//! rather than trust its picture of it.
//!
//! Where the events come from differs per board (each board's
//! documentation says more):
//!
//! - [`MemoryBoard`](crate::MemoryBoard): from the change itself, under
//!   the board's lock.
//! - [`SqliteBoard`](crate::SqliteBoard): triggers write each change to a
//!   change table in the database file, in commit order, whoever wrote it
//!   (any process, any board on the file); one watcher thread per board
//!   reads the new rows when `PRAGMA data_version` says the file changed.
//! - `PostgresBoard`: triggers write each change to a change table,
//!   numbered in commit order, whoever wrote it; one listener thread per
//!   board reads the new rows when a `NOTIFY` from the trigger says so.
//! - `RedisBoard`: the scripts append each change to the board's events
//!   stream, atomically with the change; one watcher thread per board
//!   blocks on the stream.
//! - `EtcdBoard`: each job record names the change that wrote it; one
//!   etcd watch per board on its prefix reads them in revision order,
//!   whoever wrote them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::sync::{lock, wait_timeout};
use crate::{JobBoardError, JobId};

/// How many events a board's queue holds before it drops new ones (and
/// tells its listeners, with [`BoardEvent::Missed`], how many).
pub const EVENT_QUEUE: usize = 4096;

/// A change on a board, or in the board's connection to its store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoardEvent {
    /// A job was posted.
    Posted(JobId),
    /// A job was claimed (a new epoch).
    Claimed(JobId),
    /// A job's owner gave it back, unclaimed.
    Abandoned(JobId),
    /// A job was consumed (its flow ran to its end).
    Consumed(JobId),
    /// A job was trashed (it can never run).
    Trashed(JobId),
    /// A control request (stop or cancel) was recorded on a job.
    Requested(JobId),
    /// A complete job was reopened for another run.
    Reopened(JobId),
    /// A complete job was removed by [`purge`](crate::JobBoard::purge).
    Removed(JobId),
    /// This many events were lost: the queue was full, or the board's
    /// store no longer held them when the watcher came back to it. The
    /// board should be read again.
    Missed {
        /// How many were lost (when the store trimmed them, an estimate from
        /// its sequence numbers).
        count: u64,
    },
    /// The board lost its connection to its store (the server went away);
    /// it keeps trying to reconnect.
    Disconnected {
        /// What failed.
        reason: String,
    },
    /// The board is connected to its store again after a
    /// [`Disconnected`](BoardEvent::Disconnected); events made meanwhile
    /// follow (or a [`Missed`](BoardEvent::Missed) if they are gone).
    Reconnected,
}

impl BoardEvent {
    /// The job the event is about, if it is about one.
    pub fn job(&self) -> Option<JobId> {
        match self {
            BoardEvent::Posted(id)
            | BoardEvent::Claimed(id)
            | BoardEvent::Abandoned(id)
            | BoardEvent::Consumed(id)
            | BoardEvent::Trashed(id)
            | BoardEvent::Requested(id)
            | BoardEvent::Reopened(id)
            | BoardEvent::Removed(id) => Some(*id),
            _ => None,
        }
    }

    /// Whether the event may have made a job claimable (posted, abandoned,
    /// requested, reopened): what a conductor waits for.
    pub fn may_be_claimable(&self) -> bool {
        matches!(
            self,
            BoardEvent::Posted(_)
                | BoardEvent::Abandoned(_)
                | BoardEvent::Requested(_)
                | BoardEvent::Reopened(_)
                | BoardEvent::Missed { .. }
                | BoardEvent::Reconnected
        )
    }

    /// The event of a job change named `kind` as the SQLite change table
    /// and the Redis events stream store it (`post`, `claim`, `abandon`,
    /// `consume`, `trash`, `request`, `reopen`, `remove`).
    pub(crate) fn from_kind(kind: &str, id: JobId) -> Option<BoardEvent> {
        Some(match kind {
            "post" => BoardEvent::Posted(id),
            "claim" => BoardEvent::Claimed(id),
            "abandon" => BoardEvent::Abandoned(id),
            "consume" => BoardEvent::Consumed(id),
            "trash" => BoardEvent::Trashed(id),
            "request" => BoardEvent::Requested(id),
            "reopen" => BoardEvent::Reopened(id),
            "remove" => BoardEvent::Removed(id),
            _ => return None,
        })
    }
}

/// Told of a board's events, on the board's dispatcher thread, one event
/// at a time in the order the board applied them. Every method has a
/// no-op default; a panic in a listener is logged and does not stop the
/// others.
pub trait BoardListener: Send + Sync {
    /// Any event (the default calls the methods below by kind).
    fn on_event(&self, event: &BoardEvent) {
        match event {
            BoardEvent::Missed { .. }
            | BoardEvent::Disconnected { .. }
            | BoardEvent::Reconnected => self.on_connection(event),
            _ => self.on_job(event),
        }
    }

    /// An event about a job (posted, claimed, abandoned, consumed,
    /// trashed, requested, reopened, removed).
    fn on_job(&self, event: &BoardEvent) {
        let _ = event;
    }

    /// An event about the board itself (missed events, disconnected,
    /// reconnected).
    fn on_connection(&self, event: &BoardEvent) {
        let _ = event;
    }
}

/// A listener that keeps every event, for tests: its
/// [`wait_for`](CapturingListener::wait_for) waits until the events seen
/// satisfy a condition.
#[derive(Debug, Default)]
pub struct CapturingListener {
    events: Mutex<Vec<BoardEvent>>,
    changed: Condvar,
}

impl CapturingListener {
    /// A listener that has seen nothing yet.
    pub fn new() -> Self {
        CapturingListener::default()
    }

    /// The events seen so far, in order.
    pub fn events(&self) -> Vec<BoardEvent> {
        lock(&self.events).clone()
    }

    /// The events seen so far about job `id`, in order.
    pub fn events_of(&self, id: JobId) -> Vec<BoardEvent> {
        lock(&self.events)
            .iter()
            .filter(|e| e.job() == Some(id))
            .cloned()
            .collect()
    }

    /// Waits up to `timeout` until `done` holds for the events seen;
    /// returns whether it did.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[BoardEvent]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut events = lock(&self.events);
        loop {
            if done(&events) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            events = wait_timeout(&self.changed, events, left);
        }
    }
}

impl BoardListener for CapturingListener {
    fn on_event(&self, event: &BoardEvent) {
        lock(&self.events).push(event.clone());
        self.changed.notify_all();
    }
}

type Listeners = Mutex<Vec<(u64, Arc<dyn BoardListener>)>>;

struct Shared {
    listeners: Listeners,
    /// How many listeners are registered: no listener, no queueing.
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Events dropped because the queue was full, not yet reported.
    missed: AtomicU64,
}

/// What unsubscribes a listener. Dropping it (or calling
/// [`unsubscribe`](Subscription::unsubscribe)) stops the listener's
/// events; an event being delivered at that moment may still reach it.
#[must_use = "dropping a subscription unsubscribes its listener"]
pub struct Subscription {
    shared: Weak<Shared>,
    id: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// Stops the listener's events (as dropping it does).
    pub fn unsubscribe(self) {}

    /// A subscription for boards whose events come from elsewhere (a board
    /// wrapping another one): dropping it unsubscribes nothing.
    pub fn detached() -> Self {
        Subscription {
            shared: Weak::new(),
            id: 0,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let mut listeners = lock(&shared.listeners);
            listeners.retain(|(id, _)| *id != self.id);
            shared.count.store(listeners.len(), Ordering::Release);
        }
    }
}

/// A board's event queue and its dispatcher thread: boards call
/// [`emit`](Notifier::emit), which never blocks.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    tx: Mutex<Option<Sender<BoardEvent>>>,
    rx: Mutex<Option<Receiver<BoardEvent>>>,
    started: AtomicBool,
    board: &'static str,
}

impl Notifier {
    /// A notifier for a board named `board` (in thread names and logs).
    pub(crate) fn new(board: &'static str) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(EVENT_QUEUE);
        Notifier {
            shared: Arc::new(Shared {
                listeners: Mutex::new(Vec::new()),
                count: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                missed: AtomicU64::new(0),
            }),
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            started: AtomicBool::new(false),
            board,
        }
    }

    /// Whether any listener is registered.
    pub(crate) fn has_listeners(&self) -> bool {
        self.shared.count.load(Ordering::Acquire) > 0
    }

    /// Registers `listener`; starts the dispatcher thread on the first.
    pub(crate) fn subscribe(
        &self,
        listener: Arc<dyn BoardListener>,
    ) -> Result<Subscription, JobBoardError> {
        if !self.started.swap(true, Ordering::AcqRel) {
            let rx = lock(&self.rx).take();
            if let Some(rx) = rx {
                let shared = Arc::downgrade(&self.shared);
                let board = self.board;
                std::thread::Builder::new()
                    .name(format!("{board}-board-events"))
                    .spawn(move || dispatch(&rx, &shared, board))
                    .map_err(|e| {
                        JobBoardError::backend(board, "starting the event dispatcher", e)
                    })?;
            }
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut listeners = lock(&self.shared.listeners);
        listeners.push((id, listener));
        self.shared.count.store(listeners.len(), Ordering::Release);
        Ok(Subscription {
            shared: Arc::downgrade(&self.shared),
            id,
        })
    }

    /// Queues `event` for the listeners, without blocking: dropped (and
    /// counted, for a later [`BoardEvent::Missed`]) when the queue is full,
    /// and not queued at all while no listener is registered.
    pub(crate) fn emit(&self, event: BoardEvent) {
        if !self.has_listeners() {
            return;
        }
        let tx = lock(&self.tx);
        let Some(tx) = tx.as_ref() else {
            return;
        };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.missed.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Ends the dispatcher once it has delivered what is queued.
    pub(crate) fn close(&self) {
        lock(&self.tx).take();
    }

    /// Whether [`close`](Notifier::close) was called.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.tx).is_none()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.close();
    }
}

fn dispatch(rx: &Receiver<BoardEvent>, shared: &Weak<Shared>, board: &'static str) {
    while let Ok(event) = rx.recv() {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let missed = shared.missed.swap(0, Ordering::Relaxed);
        let listeners: Vec<Arc<dyn BoardListener>> = lock(&shared.listeners)
            .iter()
            .map(|(_, l)| Arc::clone(l))
            .collect();
        drop(shared);
        let deliver = |event: &BoardEvent| {
            for l in &listeners {
                if catch_unwind(AssertUnwindSafe(|| l.on_event(event))).is_err() {
                    tracing::error!(board, ?event, "a board listener panicked");
                }
            }
        };
        if missed > 0 {
            deliver(&BoardEvent::Missed { count: missed });
        }
        deliver(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slow(Mutex<Vec<BoardEvent>>);
    impl BoardListener for Slow {
        fn on_job(&self, event: &BoardEvent) {
            std::thread::sleep(Duration::from_micros(200));
            lock(&self.0).push(event.clone());
        }
        fn on_connection(&self, event: &BoardEvent) {
            lock(&self.0).push(event.clone());
        }
    }

    #[test]
    fn a_full_queue_drops_events_and_says_how_many() {
        let notifier = Notifier::new("test");
        let slow = Arc::new(Slow(Mutex::new(Vec::new())));
        let _sub = notifier.subscribe(slow.clone()).unwrap();
        let started = Instant::now();
        let n = EVENT_QUEUE * 2;
        for _ in 0..n {
            notifier.emit(BoardEvent::Posted(JobId::new()));
        }
        // Emitting never waited for the slow listener.
        assert!(started.elapsed() < Duration::from_secs(1));
        // Once the queue drained, one more event goes through, after the
        // count of those missed.
        let deadline = Instant::now() + Duration::from_secs(60);
        while lock(&slow.0).len() < EVENT_QUEUE {
            assert!(Instant::now() < deadline, "queue drained");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        notifier.emit(BoardEvent::Reconnected);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = lock(&slow.0).clone();
            let delivered = seen.iter().filter(|e| e.job().is_some()).count() as u64;
            let missed: u64 = seen
                .iter()
                .map(|e| match e {
                    BoardEvent::Missed { count } => *count,
                    _ => 0,
                })
                .sum();
            if seen.last() == Some(&BoardEvent::Reconnected) {
                assert!(missed > 0, "some events were dropped");
                assert_eq!(delivered + missed, n as u64);
                break;
            }
            assert!(Instant::now() < deadline, "events delivered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn dropping_the_subscription_stops_the_events() {
        let notifier = Notifier::new("test");
        let l = Arc::new(CapturingListener::new());
        let sub = notifier.subscribe(l.clone()).unwrap();
        let id = JobId::new();
        notifier.emit(BoardEvent::Posted(id));
        assert!(l.wait_for(Duration::from_secs(5), |e| e.len() == 1));
        sub.unsubscribe();
        assert!(!notifier.has_listeners());
        notifier.emit(BoardEvent::Claimed(id));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(l.events(), vec![BoardEvent::Posted(id)]);
    }
}
