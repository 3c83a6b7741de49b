//! The transport trait: how engines and workers reach each other.

use crossbeam_channel::{Receiver, Sender};

use super::protocol::{Message, Route};

/// Who connects to a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An engine (a [`WorkerExecutor`](super::WorkerExecutor)); the
    /// transport gives it a fresh address for replies.
    Engine,
    /// A worker; its name is its address and must be unique among the
    /// workers connected at once.
    Worker {
        /// The worker's name.
        name: String,
    },
}

/// What a link receives: a message, or the news that the link is gone
/// (after which nothing more arrives).
pub type Incoming = Result<Message, TransportError>;

/// A way for engines and workers to reach each other: an in-process hub
/// ([`InProcess`](super::InProcess)) or a broker (`AmqpTransport`, feature
/// `amqp`). A transport is a connection factory; each engine and each
/// worker opens its own [`Link`].
pub trait Transport: Send + Sync {
    /// Connects an engine or a worker.
    fn connect(&self, endpoint: Endpoint) -> Result<Box<dyn Link>, TransportError>;
}

/// One endpoint's connection: an address, a way to send, and a stream of
/// incoming messages. Shared by the threads of a worker, hence `Sync`.
pub trait Link: Send + Sync {
    /// This endpoint's address: the worker's name, or the engine's reply
    /// address.
    fn address(&self) -> &str;

    /// Whether requests may carry the engine's work item itself
    /// ([`Payload::Work`](super::Payload::Work)) instead of its data: true
    /// only for transports that never leave the process and do not
    /// serialize.
    fn carries_work(&self) -> bool {
        false
    }

    /// Sends a message. A message for an endpoint that is not connected is
    /// dropped, as a broker drops an unroutable message; an error means the
    /// message cannot be encoded or the link is gone.
    fn send(&self, to: &Route, message: Message) -> Result<(), TransportError>;

    /// The messages addressed to this endpoint.
    fn incoming(&self) -> &Inbox;

    /// Closes the link: nothing more is received, sends fail. Dropping the
    /// link closes it too.
    fn close(&self);
}

/// A link's incoming messages, in the order they were delivered. A
/// transport makes one with [`inbox`] and delivers into its
/// [`Deliveries`]; the engine and the worker read it. (A channel of this
/// crate's own, so the transport API does not tie implementations to a
/// channel crate's version.)
pub struct Inbox {
    rx: Receiver<Incoming>,
}

/// Where a transport delivers a link's messages (cheap to clone, one per
/// thread or task that receives for the link).
#[derive(Clone)]
pub struct Deliveries {
    tx: Sender<Incoming>,
}

/// A new, empty inbox and the way to deliver into it.
pub fn inbox() -> (Deliveries, Inbox) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Deliveries { tx }, Inbox { rx })
}

impl Deliveries {
    /// Delivers a message (or the news that the link is gone); false if
    /// the inbox was dropped (nobody reads the link any more).
    pub fn deliver(&self, incoming: Incoming) -> bool {
        self.tx.send(incoming).is_ok()
    }
}

impl Inbox {
    /// The channel underneath, for the engine's and the worker's waits.
    pub(crate) fn receiver(&self) -> &Receiver<Incoming> {
        &self.rx
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("waiting", &self.rx.len())
            .finish()
    }
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries").finish_non_exhaustive()
    }
}

/// What can go wrong with a transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Connecting failed.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// What was being connected to (a URL without its password).
        target: String,
        /// Why it failed, and what to do about it.
        reason: String,
    },
    /// The message cannot be encoded for this transport.
    #[error("cannot serialize the message: {0}")]
    NotSerializable(String),
    /// The link is closed or its connection was lost.
    #[error("the transport connection is lost: {0}")]
    Lost(String),
}
