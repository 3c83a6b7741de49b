//! The in-process transport: engines and workers in one process, linked by
//! crossbeam channels through a shared hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use super::protocol::{Message, Route};
use super::transport::{inbox, Deliveries, Endpoint, Inbox, Link, Transport, TransportError};

/// Engines and workers in one process (worker threads), linked by crossbeam
/// channels: for tests, and for running the worker engine's machinery
/// (routing, timeouts, heartbeats, progress) without a broker.
///
/// By default requests carry the engine's work item itself, so closures
/// (`task_fn`) run on in-process workers that advertise
/// [`CLOSURE_TASK_TYPE`](super::CLOSURE_TASK_TYPE).
/// [`InProcess::serializing`] makes a hub that encodes every message as a
/// broker transport does, to check that a flow's tasks can be sent.
///
/// Clones share the hub.
#[derive(Clone, Default)]
pub struct InProcess {
    hub: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    state: Mutex<HubState>,
    serialize: bool,
}

#[derive(Default)]
struct HubState {
    engines: HashMap<String, Deliveries>,
    workers: HashMap<String, Deliveries>,
    down: Option<String>,
}

impl Hub {
    fn state(&self) -> MutexGuard<'_, HubState> {
        crate::sync::lock(&self.state)
    }
}

impl InProcess {
    /// A hub whose requests carry work items as they are.
    pub fn new() -> Self {
        InProcess::default()
    }

    /// A hub that serializes every message to JSON and back, as a broker
    /// transport does: a closure task then fails with `NotSerializable`.
    pub fn serializing() -> Self {
        InProcess {
            hub: Arc::new(Hub {
                state: Mutex::default(),
                serialize: true,
            }),
        }
    }

    /// Takes the hub down, as a broker that goes away: every link receives
    /// [`TransportError::Lost`], later sends fail and connecting is refused.
    pub fn shut_down(&self, reason: &str) {
        let mut state = self.hub.state();
        state.down = Some(reason.to_owned());
        let state = &mut *state;
        let links: Vec<Deliveries> = state
            .engines
            .drain()
            .chain(state.workers.drain())
            .map(|(_, tx)| tx)
            .collect();
        for tx in links {
            let _ = tx.deliver(Err(TransportError::Lost(reason.to_owned())));
        }
    }

    /// The names of the workers connected now.
    pub fn workers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.hub.state().workers.keys().cloned().collect();
        names.sort();
        names
    }
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.hub.state();
        f.debug_struct("InProcess")
            .field("serialize", &self.hub.serialize)
            .field("engines", &state.engines.len())
            .field("workers", &state.workers.len())
            .field("down", &state.down)
            .finish()
    }
}

impl Transport for InProcess {
    fn connect(&self, endpoint: Endpoint) -> Result<Box<dyn Link>, TransportError> {
        let (tx, rx) = inbox();
        let mut state = self.hub.state();
        let refused = |reason: String| TransportError::Connect {
            target: "the in-process transport".to_owned(),
            reason,
        };
        if let Some(reason) = &state.down {
            return Err(refused(format!("it was shut down: {reason}")));
        }
        let (address, worker) = match endpoint {
            Endpoint::Engine => {
                let address = format!("engine-{}", Uuid::new_v4().simple());
                state.engines.insert(address.clone(), tx);
                (address, false)
            }
            Endpoint::Worker { name } => {
                if state.workers.contains_key(&name) {
                    return Err(refused(format!(
                        "a worker named `{name}` is already connected"
                    )));
                }
                state.workers.insert(name.clone(), tx);
                (name, true)
            }
        };
        Ok(Box::new(InProcessLink {
            hub: self.hub.clone(),
            address,
            worker,
            rx,
            closed: AtomicBool::new(false),
        }))
    }
}

struct InProcessLink {
    hub: Arc<Hub>,
    address: String,
    worker: bool,
    rx: Inbox,
    closed: AtomicBool,
}

impl Link for InProcessLink {
    fn address(&self) -> &str {
        &self.address
    }

    fn carries_work(&self) -> bool {
        !self.hub.serialize
    }

    fn send(&self, to: &Route, message: Message) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Lost(format!(
                "the link of `{}` is closed",
                self.address
            )));
        }
        let message = if self.hub.serialize {
            let bytes = serde_json::to_vec(&message)
                .map_err(|e| TransportError::NotSerializable(e.to_string()))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| TransportError::NotSerializable(e.to_string()))?
        } else {
            message
        };
        let state = self.hub.state();
        if let Some(reason) = &state.down {
            return Err(TransportError::Lost(reason.clone()));
        }
        let deliver = |tx: &Deliveries, message: Message| {
            let _ = tx.deliver(Ok(message));
        };
        match to {
            Route::Worker(name) => {
                if let Some(tx) = state.workers.get(name) {
                    deliver(tx, message);
                }
            }
            Route::Engine(address) => {
                if let Some(tx) = state.engines.get(address) {
                    deliver(tx, message);
                }
            }
            Route::Workers | Route::Engines => {
                let targets = if *to == Route::Workers {
                    &state.workers
                } else {
                    &state.engines
                };
                for tx in targets.values() {
                    if let Some(copy) = message.try_clone() {
                        deliver(tx, copy);
                    }
                }
            }
        }
        Ok(())
    }

    fn incoming(&self) -> &Inbox {
        &self.rx
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut state = self.hub.state();
        if self.worker {
            state.workers.remove(&self.address);
        } else {
            state.engines.remove(&self.address);
        }
    }
}

impl Drop for InProcessLink {
    fn drop(&mut self) {
        self.close();
    }
}
