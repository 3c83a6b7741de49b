//! The board's listener and event watcher: one connection that `LISTEN`s
//! on the board's channel, on a thread of its own, wakes the board's
//! waiters on every notification, and reads the new rows of
//! `jobboard_events` (after the last `seq` it saw) for the board's
//! listeners.
//!
//! Waiters read the count of changes seen ([`Signal::count`]) before they
//! look at the jobs, then sleep until it moves (or until their own
//! deadline): a notification for a commit after their look always wakes
//! them. When the listener's connection breaks, notifications sent
//! meanwhile are lost, so the thread reconnects (every
//! [`RECONNECT_DELAY`]) and counts a change once it listens again, and
//! until then waiters poll every [`POLL_UNLISTENED`].
//!
//! Events: the schema's triggers write one row per change and notify the
//! channel at its commit, so a notification is the cue to read the rows
//! after the last `seq` seen (in batches of [`BATCH`]); while listeners are
//! registered the thread also reads every [`EVENT_POLL`], should a
//! notification be lost. When the connection breaks the listeners are told
//! [`Disconnected`](BoardEvent::Disconnected); once it listens again,
//! [`Reconnected`](BoardEvent::Reconnected), then the events committed
//! meanwhile, read from the last `seq` seen (a gap there, events trimmed by
//! a purge meanwhile, is [`Missed`](BoardEvent::Missed)).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};
use uuid::Uuid;

use crate::events::Notifier;
use crate::sync::{lock, wait_timeout};
use crate::{BoardEvent, JobId};

/// How often the listener thread looks whether the board closed.
const TICK: Duration = Duration::from_millis(100);

/// How long the listener waits between tries to reconnect.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// How often a waiter looks at the jobs while the listener is not
/// listening.
pub(super) const POLL_UNLISTENED: Duration = Duration::from_millis(100);

/// How often the thread reads new events without a notification, while
/// listeners are registered: a safety net, should one be lost.
const EVENT_POLL: Duration = Duration::from_secs(1);

/// How many event rows one read takes at most (the next read goes on).
const BATCH: i64 = 1000;

/// The last event's `seq` committed.
const LAST_SEQ: &str = "SELECT seq FROM jobboard_event_seq";

/// The events after `$1`, in order.
const EVENTS_AFTER: &str =
    "SELECT seq, job, kind FROM jobboard_events WHERE seq > $1 ORDER BY seq LIMIT $2";

#[derive(Debug, Default)]
struct State {
    /// Notifications seen, plus reconnections and this board's own writes.
    count: u64,
    /// Whether the listener's connection listens now.
    listening: bool,
    /// Whether the listener's connection broke and is not back yet.
    broken: bool,
    /// Set when the board closes: the thread ends.
    stop: bool,
}

/// What the listener tells waiters.
#[derive(Debug, Default)]
pub(super) struct Signal {
    state: Mutex<State>,
    changed: Condvar,
}

impl Signal {
    /// The count of changes seen so far.
    pub(super) fn count(&self) -> u64 {
        lock(&self.state).count
    }

    /// Counts a change and wakes the waiters.
    pub(super) fn bump(&self) {
        let mut state = lock(&self.state);
        state.count = state.count.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
    }

    /// Sleeps up to `slice` (less while nobody listens) unless the count
    /// moved past `seen`.
    pub(super) fn sleep_unless_changed(&self, seen: u64, slice: Duration) {
        let state = lock(&self.state);
        if state.count != seen {
            return;
        }
        // A closed board's waiters (if any call after the close) poll.
        let slice = if state.listening && !state.stop {
            slice
        } else {
            slice.min(POLL_UNLISTENED)
        };
        drop(wait_timeout(&self.changed, state, slice));
    }

    /// Whether the listener's connection is not known to be broken.
    pub(super) fn connected(&self) -> bool {
        !lock(&self.state).broken
    }

    fn set_broken(&self, broken: bool) {
        lock(&self.state).broken = broken;
    }

    fn set_listening(&self, listening: bool) {
        let mut state = lock(&self.state);
        state.listening = listening;
        if listening {
            // Whatever was sent while nobody listened: look again.
            state.count = state.count.wrapping_add(1);
        }
        drop(state);
        self.changed.notify_all();
    }

    fn stopped(&self) -> bool {
        lock(&self.state).stop
    }

    /// Ends the listener thread (within one tick).
    pub(super) fn stop(&self) {
        lock(&self.state).stop = true;
        self.changed.notify_all();
    }
}

/// Runs `setup` (setting the board's schema, then `LISTEN`) through
/// `client`, already connected, reads the last event's `seq`, and hands the
/// connection to a thread that keeps listening (reconnecting through
/// `config` when needed) and hands the events after that `seq` to
/// `events`, until [`Signal::stop`].
pub(super) fn spawn(
    mut client: Client,
    config: Config,
    setup: String,
    signal: Arc<Signal>,
    events: Arc<Notifier>,
) -> Result<Option<JoinHandle<()>>, postgres::Error> {
    client.batch_execute(&setup)?;
    let last: i64 = client.query_one(LAST_SEQ, &[])?.try_get(0)?;
    signal.set_listening(true);
    let shared = Arc::clone(&signal);
    let thread = std::thread::Builder::new()
        .name("taskflow-pg-listener".into())
        .spawn(move || {
            let mut watch = Watch {
                config,
                setup,
                signal: shared,
                events,
                last,
            };
            watch.run(client);
        });
    match thread {
        Ok(handle) => Ok(Some(handle)),
        Err(e) => {
            // No thread: waiters poll (and listeners hear nothing).
            tracing::warn!("postgres board: cannot start its listener thread: {e}");
            signal.set_listening(false);
            Ok(None)
        }
    }
}

/// What the listener thread keeps.
struct Watch {
    config: Config,
    setup: String,
    signal: Arc<Signal>,
    events: Arc<Notifier>,
    /// The last event's `seq` handed to `events`.
    last: i64,
}

impl Watch {
    fn run(&mut self, mut client: Client) {
        let mut catch_up = false;
        loop {
            let reason = self.listen(&mut client, catch_up);
            let Some(reason) = reason else { return };
            self.signal.set_listening(false);
            self.signal.set_broken(true);
            tracing::debug!(
                "postgres board: the listener's connection broke ({reason}); reconnecting"
            );
            self.events.emit(BoardEvent::Disconnected { reason });
            loop {
                if self.signal.stopped() {
                    return;
                }
                let reconnected = self.config.connect(NoTls).and_then(|mut c| {
                    c.batch_execute(&self.setup)?;
                    Ok(c)
                });
                match reconnected {
                    Ok(c) => {
                        client = c;
                        self.signal.set_broken(false);
                        self.signal.set_listening(true);
                        self.events.emit(BoardEvent::Reconnected);
                        catch_up = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!("postgres board: reconnecting the listener: {e}");
                        std::thread::sleep(RECONNECT_DELAY);
                    }
                }
            }
        }
    }

    /// Listens (reading the events missed first if `catch_up`) until the
    /// board closes (`None`) or the connection breaks (why).
    fn listen(&mut self, client: &mut Client, catch_up: bool) -> Option<String> {
        let mut polled = Instant::now();
        if catch_up {
            if let Err(e) = self.read_events(client) {
                return Some(e.to_string());
            }
        }
        loop {
            if self.signal.stopped() {
                return None;
            }
            let first = {
                let mut notifications = client.notifications();
                let first = notifications.timeout_iter(TICK).next();
                if let Ok(Some(_)) = first {
                    // Take whatever else arrived at once, counting it as one.
                    while let Ok(Some(_)) = notifications.iter().next() {}
                }
                first
            };
            let read = match first {
                Ok(Some(_)) => {
                    self.signal.bump();
                    true
                }
                Ok(None) if !client.is_closed() => {
                    self.events.has_listeners() && polled.elapsed() >= EVENT_POLL
                }
                Ok(None) => return Some("the connection closed".to_owned()),
                Err(e) => return Some(e.to_string()),
            };
            if read {
                polled = Instant::now();
                if let Err(e) = self.read_events(client) {
                    return Some(e.to_string());
                }
            }
        }
    }

    /// Hands the events after the last seen to the listeners.
    fn read_events(&mut self, client: &mut Client) -> Result<(), postgres::Error> {
        loop {
            let rows = client.query(EVENTS_AFTER, &[&self.last, &BATCH])?;
            if let Some(first) = rows.first() {
                let seq: i64 = first.try_get(0)?;
                if seq > self.last + 1 {
                    // Seqs have no gaps (see v2.sql): a purge trimmed these.
                    let count = u64::try_from(seq - self.last - 1).unwrap_or_default();
                    self.events.emit(BoardEvent::Missed { count });
                }
            }
            for row in &rows {
                let seq: i64 = row.try_get(0)?;
                let job: Uuid = row.try_get(1)?;
                let kind: &str = row.try_get(2)?;
                self.last = seq;
                match BoardEvent::from_kind(kind, JobId::from(job)) {
                    Some(event) => self.events.emit(event),
                    None => {
                        tracing::warn!(seq, %job, kind, "postgres board: an event row is corrupt")
                    }
                }
            }
            if !rows.is_empty() {
                // Found by a poll, perhaps: waiters look again.
                self.signal.bump();
            }
            if i64::try_from(rows.len()).unwrap_or(i64::MAX) < BATCH {
                return Ok(());
            }
        }
    }
}
