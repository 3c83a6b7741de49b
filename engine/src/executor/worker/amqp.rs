//! The AMQP transport: engines and workers meet on a RabbitMQ broker,
//! through `lapin`.
//!
//! lapin is asynchronous; this transport keeps the executor's API
//! synchronous by running lapin on async-global-executor's threads (and
//! lapin's own I/O thread): each link's consumer is a task there that feeds
//! a crossbeam channel, and sends block the caller only while the frame is
//! handed to the connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use uuid::Uuid;

use super::protocol::{Message, Route};
use super::server::valid_name;
use super::transport::{inbox, Deliveries, Endpoint, Inbox, Link, Transport, TransportError};

/// Engines and workers linked through a RabbitMQ broker.
///
/// Everything goes through one topic exchange named after the prefix, with
/// one exclusive, auto-delete queue per engine and per worker (see the
/// [module docs](super) for the layout). Nothing is durable: queues go with
/// their connections and the exchange with its last queue. Use a prefix of
/// its own per deployment so that flows of different deployments never
/// meet.
///
/// ```no_run
/// use taskflow_engine::worker::{AmqpTransport, WorkerExecutor, WorkerOptions};
///
/// let transport = AmqpTransport::new("amqp://guest:guest@127.0.0.1:5672/%2f").with_prefix("billing");
/// let executor = WorkerExecutor::new(&transport, WorkerOptions::default())?;
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
#[derive(Clone)]
pub struct AmqpTransport {
    url: String,
    prefix: String,
    connect_timeout: Duration,
}

impl AmqpTransport {
    /// RabbitMQ's default on this host, as a fresh install has it.
    pub const DEFAULT_URL: &'static str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    /// A transport to the broker at `url` (`amqp://user:password@host:port/vhost`,
    /// the default vhost being `%2f`), with prefix `taskflow`.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpTransport {
            url: url.into(),
            prefix: "taskflow".to_owned(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Names the exchange and queues with this prefix (letters, digits,
    /// `-`, `_`, `.`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Gives up connecting after this long (default 10 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The broker's URL with its password hidden.
    pub fn url(&self) -> String {
        redact(&self.url)
    }

    /// The prefix of the exchange and queue names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn connect_error(&self, reason: impl Into<String>) -> TransportError {
        TransportError::Connect {
            target: format!("RabbitMQ at {}", self.url()),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("url", &self.url())
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The URL with the password of its user info replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// What an endpoint declares: its address, queue and binding keys.
struct Plan {
    address: String,
    queue: String,
    keys: Vec<String>,
    role: &'static str,
}

impl AmqpTransport {
    fn plan(&self, endpoint: Endpoint) -> Result<Plan, TransportError> {
        if !valid_name(&self.prefix) {
            return Err(self.connect_error(format!(
                "prefix `{}` is not valid: use 1 to 200 letters, digits, `-`, `_` or `.`",
                self.prefix
            )));
        }
        Ok(match endpoint {
            Endpoint::Engine => {
                let address = format!("engine-{}", Uuid::new_v4().simple());
                Plan {
                    queue: format!("{}.{address}", self.prefix),
                    keys: vec![format!("engine.{address}"), "notice".to_owned()],
                    address,
                    role: "engine",
                }
            }
            Endpoint::Worker { name } => {
                if !valid_name(&name) {
                    return Err(self.connect_error(format!(
                        "worker name `{name}` is not valid: use 1 to 200 letters, digits, `-`, `_` or `.`"
                    )));
                }
                Plan {
                    queue: format!("{}.worker.{name}", self.prefix),
                    keys: vec![format!("worker.{name}"), "discover".to_owned()],
                    address: name,
                    role: "worker",
                }
            }
        })
    }

    async fn open(
        &self,
        plan: &Plan,
        tx: Deliveries,
        closed: Arc<AtomicBool>,
    ) -> Result<(Connection, Channel), TransportError> {
        let properties = ConnectionProperties::default().with_connection_name(
            format!("taskflow {} {} ({})", plan.role, plan.address, self.prefix).into(),
        );
        let conn = Connection::connect(&self.url, properties)
            .await
            .map_err(|e| {
                self.connect_error(format!(
                    "{e}; is RabbitMQ running? Start it with `rabbitmq-server -detached` \
                     (Debian: `apt-get install rabbitmq-server`), or point the URL at your broker"
                ))
            })?;
        let step = |what: &'static str| {
            let transport = self.clone();
            move |e: lapin::Error| {
                let text = e.to_string();
                if what == "declare its queue" && text.contains("RESOURCE_LOCKED") {
                    transport.connect_error(format!(
                        "`{}` is already connected (its queue `{}` is in use)",
                        plan.address, plan.queue
                    ))
                } else {
                    transport.connect_error(format!("cannot {what}: {text}"))
                }
            }
        };
        let channel = conn
            .create_channel()
            .await
            .map_err(step("open a channel"))?;
        channel
            .exchange_declare(
                &self.prefix,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(step("declare the exchange"))?;
        channel
            .queue_declare(
                &plan.queue,
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(step("declare its queue"))?;
        for key in &plan.keys {
            channel
                .queue_bind(
                    &plan.queue,
                    &self.prefix,
                    key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(step("bind its queue"))?;
        }
        let mut consumer = channel
            .basic_consume(
                &plan.queue,
                &plan.address,
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(step("consume its queue"))?;
        let (errors_tx, errors_closed) = (tx.clone(), closed.clone());
        conn.on_error(move |e| {
            if !errors_closed.load(Ordering::Acquire) {
                let _ =
                    errors_tx.deliver(Err(TransportError::Lost(format!("connection error: {e}"))));
            }
        });
        let queue = plan.queue.clone();
        async_global_executor::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                match delivery {
                    Ok(delivery) => match serde_json::from_slice::<Message>(&delivery.data) {
                        Ok(message) => {
                            if !tx.deliver(Ok(message)) {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(queue, "dropping a message that is not ours: {e}");
                        }
                    },
                    Err(e) => {
                        if !closed.load(Ordering::Acquire) {
                            let _ = tx.deliver(Err(TransportError::Lost(format!(
                                "consuming `{queue}` failed: {e}"
                            ))));
                        }
                        return;
                    }
                }
            }
            if !closed.load(Ordering::Acquire) {
                let _ = tx.deliver(Err(TransportError::Lost(format!(
                    "the broker stopped delivering `{queue}`"
                ))));
            }
        })
        .detach();
        Ok((conn, channel))
    }
}

/// Waits for `future` at most `timeout`.
fn block_on_for<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, TransportError>>,
    on_timeout: impl FnOnce() -> TransportError,
) -> Result<T, TransportError> {
    async_global_executor::block_on(futures_lite::future::or(
        async move { Some(future.await) },
        async move {
            async_io::Timer::after(timeout).await;
            None
        },
    ))
    .unwrap_or_else(|| Err(on_timeout()))
}

impl Transport for AmqpTransport {
    fn connect(&self, endpoint: Endpoint) -> Result<Box<dyn Link>, TransportError> {
        let plan = self.plan(endpoint)?;
        let (tx, rx) = inbox();
        let closed = Arc::new(AtomicBool::new(false));
        let (conn, channel) = block_on_for(
            self.connect_timeout,
            self.open(&plan, tx, closed.clone()),
            || {
                self.connect_error(format!(
                    "no answer within {:?}; is RabbitMQ running and reachable?",
                    self.connect_timeout
                ))
            },
        )?;
        tracing::debug!(address = plan.address, queue = plan.queue, "amqp link open");
        Ok(Box::new(AmqpLink {
            address: plan.address,
            exchange: self.prefix.clone(),
            conn,
            channel,
            rx,
            closed,
        }))
    }
}

struct AmqpLink {
    address: String,
    exchange: String,
    conn: Connection,
    channel: Channel,
    rx: Inbox,
    closed: Arc<AtomicBool>,
}

impl Link for AmqpLink {
    fn address(&self) -> &str {
        &self.address
    }

    fn send(&self, to: &Route, message: Message) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Lost(format!(
                "the link of `{}` is closed",
                self.address
            )));
        }
        let body = serde_json::to_vec(&message)
            .map_err(|e| TransportError::NotSerializable(e.to_string()))?;
        let key = match to {
            Route::Worker(name) => format!("worker.{name}"),
            Route::Engine(address) => format!("engine.{address}"),
            Route::Workers => "discover".to_owned(),
            Route::Engines => "notice".to_owned(),
        };
        let properties = BasicProperties::default().with_content_type("application/json".into());
        // Polled once: that queues the frames on the channel, in the order
        // of the sends, and wakes lapin's I/O thread to write them. The
        // rest of the future only waits for that write, a hop to the I/O
        // thread and back per message, so it is dropped: no publisher
        // confirms are asked for, and a message the broker or the
        // connection loses is found by the executor's timeouts and
        // heartbeats, as it is when a worker dies (a broken connection also
        // arrives in the inbox as `Lost`).
        let publish = self.channel.basic_publish(
            &self.exchange,
            &key,
            BasicPublishOptions::default(),
            &body,
            properties,
        );
        match futures_lite::future::block_on(futures_lite::future::poll_once(publish)) {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(TransportError::Lost(format!(
                "cannot publish to `{key}`: {e}"
            ))),
        }
    }

    fn incoming(&self) -> &Inbox {
        &self.rx
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let closing = async {
            self.conn
                .close(200, "bye")
                .await
                .map_err(|e| TransportError::Lost(e.to_string()))
        };
        if let Err(e) = block_on_for(Duration::from_secs(2), closing, || {
            TransportError::Lost("closing timed out".to_owned())
        }) {
            tracing::debug!(address = self.address, "closing the amqp link: {e}");
        }
    }
}

impl Drop for AmqpLink {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_are_shown_without_password() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host/%2f"), "amqp://host/%2f");
        assert_eq!(redact("amqp://user@host"), "amqp://user@host");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
