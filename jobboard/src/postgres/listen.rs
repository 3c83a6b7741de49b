//! The board's listener: one connection that `LISTEN`s on the board's
//! channel, on a thread of its own, and wakes the board's waiters on every
//! notification.
//!
//! Waiters read the count of changes seen ([`Signal::count`]) before they
//! look at the jobs, then sleep until it moves (or until their own
//! deadline): a notification for a commit after their look always wakes
//! them. When the listener's connection breaks, notifications sent
//! meanwhile are lost, so the thread reconnects (every
//! [`RECONNECT_DELAY`]) and counts a change once it listens again, and
//! until then waiters poll every [`POLL_UNLISTENED`].

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};

use crate::sync::{lock, wait_timeout};

/// How often the listener thread looks whether the board closed.
const TICK: Duration = Duration::from_millis(100);

/// How long the listener waits between tries to reconnect.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// How often a waiter looks at the jobs while the listener is not
/// listening.
pub(super) const POLL_UNLISTENED: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    /// Notifications seen, plus reconnections and this board's own writes.
    count: u64,
    /// Whether the listener's connection listens now.
    listening: bool,
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

/// Starts listening on `listen` (a `LISTEN` statement) through `client`,
/// already connected, and hands it to a thread that keeps listening
/// (reconnecting through `config` when needed) until
/// [`Signal::stop`].
pub(super) fn spawn(
    mut client: Client,
    config: Config,
    listen: String,
    signal: Arc<Signal>,
) -> Result<Option<JoinHandle<()>>, postgres::Error> {
    client.batch_execute(&listen)?;
    signal.set_listening(true);
    let shared = Arc::clone(&signal);
    let thread = std::thread::Builder::new()
        .name("taskflow-pg-listener".into())
        .spawn(move || run(client, &config, &listen, &shared));
    match thread {
        Ok(handle) => Ok(Some(handle)),
        Err(e) => {
            // No thread: waiters poll.
            tracing::warn!("postgres board: cannot start its listener thread: {e}");
            signal.set_listening(false);
            Ok(None)
        }
    }
}

fn run(mut client: Client, config: &Config, listen: &str, signal: &Signal) {
    loop {
        // Listen until the connection breaks or the board closes.
        loop {
            if signal.stopped() {
                return;
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
            match first {
                Ok(Some(_)) => signal.bump(),
                Ok(None) if !client.is_closed() => {}
                Ok(None) | Err(_) => break,
            }
        }
        signal.set_listening(false);
        tracing::debug!("postgres board: the listener's connection broke; reconnecting");
        loop {
            if signal.stopped() {
                return;
            }
            let reconnected = config.connect(NoTls).and_then(|mut c| {
                c.batch_execute(listen)?;
                Ok(c)
            });
            match reconnected {
                Ok(c) => {
                    client = c;
                    signal.set_listening(true);
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
