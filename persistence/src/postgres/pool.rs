//! A small pool of connections, each with its prepared statements.
//!
//! Connections are made on demand (as many as there are concurrent callers)
//! and up to [`MAX_IDLE`] are kept for reuse. A connection found closed when
//! taken, or broken by a call, is dropped, and the next call makes a new one:
//! after a server restart the pool heals by itself. A call that failed
//! because a *pooled* connection had broken (the server restarted while it
//! sat idle) is retried once on a new connection; every write of the backend
//! is an upsert or an update, so the retry is harmless even if the first try
//! reached the server (a retried destroy may then report `NotFound`).

use std::collections::HashMap;
use std::sync::Mutex;

use postgres::error::SqlState;
use postgres::{Client, Config, GenericClient, NoTls, Statement};

use super::{pg_err, BACKEND};
use crate::sync::lock;
use crate::PersistenceError;

/// How many idle connections are kept.
pub(super) const MAX_IDLE: usize = 8;

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// The statement for `sql`, prepared on this connection once.
    pub(super) fn statement(&mut self, sql: &'static str) -> Result<Statement, PersistenceError> {
        prepared(&mut self.statements, &mut self.client, sql)
    }

    /// Splits the connection so a transaction of the client can still use
    /// the statement cache.
    pub(super) fn parts(&mut self) -> (&mut Client, &mut HashMap<&'static str, Statement>) {
        (&mut self.client, &mut self.statements)
    }
}

/// The statement for `sql` from `cache`, prepared through `client` if new.
pub(super) fn prepared<C: GenericClient>(
    cache: &mut HashMap<&'static str, Statement>,
    client: &mut C,
    sql: &'static str,
) -> Result<Statement, PersistenceError> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client
        .prepare(sql)
        .map_err(|e| pg_err(e, "preparing a statement"))?;
    cache.insert(sql, statement.clone());
    Ok(statement)
}

/// Connections to one database, set to one schema.
pub(super) struct Pool {
    config: Config,
    /// `SET search_path ...` for each new connection.
    setup: String,
    /// Only pushed to and popped from: never half-updated.
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub(super) fn new(config: Config, setup: String) -> Self {
        Pool {
            config,
            setup,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A new connection, set up.
    pub(super) fn connect(&self) -> Result<Conn, PersistenceError> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| pg_err(e, "connecting"))?;
        client
            .batch_execute(&self.setup)
            .map_err(|e| pg_err(e, "setting up a new connection"))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    /// Gives a connection back, unless it is broken or enough are idle.
    pub(super) fn put(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// An idle connection that is not known to be closed.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = lock(&self.idle);
        while let Some(conn) = idle.pop() {
            if !conn.client.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Runs `f` on a connection (see the module docs for broken ones).
    pub(super) fn run<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, PersistenceError>,
    ) -> Result<T, PersistenceError> {
        let (mut conn, pooled) = match self.take_idle() {
            Some(conn) => (conn, true),
            None => (self.connect()?, false),
        };
        let result = f(&mut conn);
        let broken = match &result {
            Err(e) => conn.client.is_closed() || is_connection_error(e),
            Ok(_) => false,
        };
        if !broken {
            self.put(conn);
            return result;
        }
        drop(conn);
        if !pooled {
            return result;
        }
        let mut conn = self.connect()?;
        let result = f(&mut conn);
        self.put(conn);
        result
    }
}

/// Whether `e` says the connection (not the statement) failed.
fn is_connection_error(e: &PersistenceError) -> bool {
    let PersistenceError::Backend {
        backend: BACKEND,
        source: Some(source),
        ..
    } = e
    else {
        return false;
    };
    let Some(e) = source.downcast_ref::<postgres::Error>() else {
        return false;
    };
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        // No SQL state: an I/O error or a protocol error on the socket.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}
