//! The board's watcher: one etcd watch on the board's prefix, on the
//! board's runtime, that wakes waiters and hands each change to the
//! board's listeners, resuming after a lost connection from the revision
//! after the last it saw.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::watch::Receiver;

use super::codec::{ChangeOnly, Keys};
use super::{Shared, CALL_TIMEOUT};
use crate::BoardEvent;

/// How long the watcher pauses after a failure before watching again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Watches the board's prefix from revision `next` until the board is
/// closed or dropped (`stop` says so).
pub(super) async fn run(
    client: Client,
    keys: Keys,
    shared: Arc<Shared>,
    mut next: i64,
    mut stop: Receiver<bool>,
) {
    let mut failing = false;
    loop {
        if *stop.borrow() || shared.is_closed() {
            return;
        }
        let followed = tokio::select! {
            followed = follow(&client, &keys, &shared, &mut next, &mut failing) => followed,
            _ = stop.changed() => return,
        };
        if let Err(reason) = followed {
            if shared.is_closed() {
                return;
            }
            if !failing {
                failing = true;
                tracing::warn!(%reason, "etcd board: watching the board failed");
                shared.set_connected(false);
                shared.emit(BoardEvent::Disconnected { reason });
            }
            // Waiters look again (and see the failure themselves).
            shared.bump(true);
            tokio::select! {
                () = tokio::time::sleep(RETRY_PAUSE) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Follows one watch stream; returns `Ok` to watch again at once (the
/// revision asked for was compacted) and `Err` when the stream failed.
async fn follow(
    client: &Client,
    keys: &Keys,
    shared: &Shared,
    next: &mut i64,
    failing: &mut bool,
) -> Result<(), String> {
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(*next)
        .with_progress_notify();
    let mut stream = tokio::time::timeout(
        CALL_TIMEOUT,
        client.watch_client().watch(keys.root(), Some(options)),
    )
    .await
    .map_err(|_| format!("no answer to a watch within {CALL_TIMEOUT:?}"))?
    .map_err(|e| e.to_string())?;
    let (jobs, claims) = (keys.jobs(), keys.claims());
    loop {
        let reply = stream
            .message()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the watch stream ended".to_owned())?;
        if *failing && (reply.created() || !reply.events().is_empty()) {
            *failing = false;
            shared.set_connected(true);
            shared.emit(BoardEvent::Reconnected);
            shared.bump(true);
        }
        if reply.compact_revision() > 0 {
            // What happened before the compaction is gone: say so, and
            // go on from the oldest revision kept.
            shared.emit(BoardEvent::Missed { count: 1 });
            shared.bump(true);
            *next = reply.compact_revision();
            return Ok(());
        }
        if reply.canceled() {
            return Err(format!("the watch was canceled: {}", reply.cancel_reason()));
        }
        let (mut changed, mut claimable) = (false, false);
        for event in reply.events() {
            let Some(kv) = event.kv() else {
                continue;
            };
            *next = (*next).max(kv.mod_revision() + 1);
            if let Some(id) = Keys::id_in(kv.key(), &jobs) {
                let told = match event.event_type() {
                    EventType::Delete => Some(BoardEvent::Removed(id)),
                    EventType::Put => serde_json::from_slice::<ChangeOnly>(kv.value())
                        .ok()
                        .and_then(|c| BoardEvent::from_kind(&c.change, id)),
                };
                if let Some(told) = told {
                    claimable |= told.may_be_claimable();
                    shared.emit(told);
                    changed = true;
                }
            } else if Keys::id_in(kv.key(), &claims).is_some()
                && event.event_type() == EventType::Delete
            {
                // A lease lapsed or a claim was released.
                changed = true;
                claimable = true;
            }
        }
        if changed {
            shared.bump(claimable);
        }
    }
}
