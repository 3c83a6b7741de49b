//! The PostgreSQL backend (cargo feature `postgres`). See
//! [`PostgresBackend`].

mod pool;
mod rows;
mod schema;

pub use self::schema::PostgresSchema;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Config, GenericClient, IsolationLevel, Row, Statement};
use serde_json::Value;
use taskflow_patterns::{AtomState, FlowState, Intention};
use uuid::Uuid;

use self::pool::{prepared, Conn, Pool};
use self::rows::{atoms_by_flow, col, decode_atom, decode_book, flows_by_book};
use crate::codec;
use crate::error::{check_epoch, epoch_at_its_largest};
use crate::{
    AtomDetail, AtomDetailId, AtomWrite, Backend, Epoch, FlowDetail, FlowDetailId, LogBook,
    LogBookId, PersistenceError, RecordKind, SharedDatabase,
};

const BACKEND: &str = "postgres";

/// A backend error for a failed PostgreSQL call.
fn pg_err(e: postgres::Error, what: impl fmt::Display) -> PersistenceError {
    PersistenceError::backend(BACKEND, what.to_string(), e)
}

fn not_found(kind: RecordKind, id: impl Into<Uuid>) -> PersistenceError {
    PersistenceError::NotFound {
        kind,
        id: id.into(),
    }
}

/// The ids go to the server as the UUIDs they are.
macro_rules! uuid_to_sql {
    ($($id:ty),*) => {$(
        impl postgres::types::ToSql for $id {
            fn to_sql(
                &self,
                ty: &postgres::types::Type,
                out: &mut postgres::types::private::BytesMut,
            ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_uuid().to_sql(ty, out)
            }

            fn accepts(ty: &postgres::types::Type) -> bool {
                <Uuid as postgres::types::ToSql>::accepts(ty)
            }

            postgres::types::to_sql_checked!();
        }
    )*};
}

uuid_to_sql!(LogBookId, FlowDetailId, AtomDetailId);

fn is_foreign_key_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// Stores records in a PostgreSQL schema, shared by every host that reaches
/// the server (cargo feature `postgres`).
///
/// # How it stores records
///
/// Each backend works in one PostgreSQL schema (namespace), `taskflow` by
/// default, created on connect with its tables (`logbooks`, `flowdetails`,
/// `atomdetails`; the DDL is in `src/postgres/v1.sql`, and `v2.sql` adds
/// `flowdetails.owner_epoch`) and a `meta` table
/// holding the schema version (see [`PostgresBackend::SCHEMA_VERSION`]). As in the SQLite
/// backend, identity and the small, often-updated fields are columns and the
/// rest of a record is JSON text: [`update_atom_state`](Backend::update_atom_state)
/// is one `UPDATE` of two columns and [`save_atom_detail`](Backend::save_atom_detail)
/// one `INSERT ... ON CONFLICT DO UPDATE`, each a single round trip on a
/// prepared statement. Each checks the writer's epoch against the flow
/// detail's `owner_epoch` in the same statement (see
/// [owner fencing](Backend#owner-fencing)), reading it `FOR SHARE`: a fence
/// (an `UPDATE` of that row) waits for the writes in flight, and a write
/// waits for a fence in flight and then sees its epoch. Only a write that
/// changed no row makes a second query, to tell a missing record from a
/// fenced one. [`update_atom_meta`](Backend::update_atom_meta) is one
/// transaction: it reads the epoch `FOR SHARE` and the atom's body
/// `FOR UPDATE`, then writes the body back (never the `state` and
/// `intention` columns); a write of the same row meanwhile waits for it.
/// (The body is text, not `jsonb`, so it is not updated in place: `jsonb`
/// would rewrite the text of results, and refuses the NUL character a
/// string may hold.) Multi-record writes are one transaction; reads of
/// several rows run in one `REPEATABLE READ` read-only transaction, so they
/// see one snapshot.
///
/// # Connections
///
/// The client is the synchronous `postgres` crate (it drives its own small
/// runtime inside). A backend keeps an `r2d2` pool of at most 32
/// connections, each with its prepared statements: connections are made as
/// callers need them, and a connection broken by a server restart is
/// dropped and replaced on the next call (a call that hit a pooled
/// connection broken while idle is retried once on a new one, and every
/// connection older than it is dropped). While the server is down a call
/// waits up to the connect timeout for a connection, then fails. The first
/// connection, which creates or migrates the schema, is made in the
/// caller's thread, so a wrong URL fails at once. Connections are made
/// without TLS.
///
/// # Example
///
/// ```no_run
/// use taskflow_persistence::{Backend, LogBook, PostgresBackend};
/// let backend = PostgresBackend::connect("postgres://taskflow@db.example/flows")?;
/// let book = LogBook::new("nightly");
/// backend.save_logbook(&book)?;
/// # Ok::<(), taskflow_persistence::PersistenceError>(())
/// ```
pub struct PostgresBackend {
    pool: Pool,
    schema: String,
    location: String,
    /// Where it connects, to tell whether another store is in the same
    /// database.
    config: Config,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// `name` quoted as an SQL identifier (for a schema or channel name in a
/// statement, where no parameter can stand).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Each host of `config` with its port (the port given for it, else the
/// first port given, else 5432).
fn host_ports(config: &Config) -> impl Iterator<Item = (&Host, u16)> {
    let ports = config.get_ports();
    config.get_hosts().iter().enumerate().map(move |(i, host)| {
        let port = ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432);
        (host, port)
    })
}

/// Where `config` points (hosts, database, and `schema`), without
/// credentials: `HOST:PORT[,...]/DB schema SCHEMA`, for messages.
pub fn describe(config: &Config, schema: &str) -> String {
    let hosts: Vec<String> = host_ports(config)
        .map(|(host, port)| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            #[cfg(unix)]
            Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    format!(
        "{}/{} schema {schema}",
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

impl PostgresBackend {
    /// The schema version this build reads and writes. A schema with a
    /// newer version is refused ([`PersistenceError::SchemaTooNew`]); an
    /// older one is migrated on connect.
    pub const SCHEMA_VERSION: u32 = schema::VERSION;

    /// The schema [`connect`](Self::connect) uses.
    pub const DEFAULT_SCHEMA: &'static str = "taskflow";

    /// How long making a connection may take when the URL does not say
    /// (`connect_timeout`).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the database at `url` (a `postgres://` URL or a
    /// `key=value` string, as the `postgres` crate reads them) and uses the
    /// schema [`DEFAULT_SCHEMA`](Self::DEFAULT_SCHEMA), creating or migrating
    /// it.
    pub fn connect(url: &str) -> Result<Self, PersistenceError> {
        PostgresBackend::connect_in_schema(url, PostgresBackend::DEFAULT_SCHEMA)
    }

    /// Connects to the database at `url` and uses the schema `schema`
    /// (created if missing, then created or migrated), so several stores
    /// (or tests) can share one database.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<Self, PersistenceError> {
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(PersistenceError::Backend {
                backend: BACKEND,
                message: format!("{schema:?} is not a schema name (1 to 63 bytes, no NUL)"),
                source: None,
            });
        }
        let mut config: Config = url
            .parse()
            .map_err(|e| pg_err(e, "reading the connection URL"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(PostgresBackend::CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("taskflow");
        }
        let location = describe(&config, schema);
        let ident = quote_ident(schema);
        let pool = Pool::new(config.clone(), format!("SET search_path TO {ident}"));
        let mut conn = pool.connect().map_err(|e| match e {
            PersistenceError::Backend {
                backend,
                source,
                message,
            } => PersistenceError::Backend {
                backend,
                message: format!("{location}: {message}"),
                source,
            },
            other => other,
        })?;
        // Closed when done: the pool opens its own as calls need them.
        schema::RECORDS.prepare(&mut conn.client, schema, &location)?;
        Ok(PostgresBackend {
            pool,
            schema: schema.to_owned(),
            location,
            config,
        })
    }

    /// Whether `config` connects to the same database as this backend
    /// (the same hosts, ports and database name; the user and the schema
    /// may differ), so that one transaction can write to both.
    pub fn same_database(&self, config: &Config) -> bool {
        host_ports(&self.config).eq(host_ports(config))
            && self.config.get_dbname() == config.get_dbname()
    }

    /// Saves `book` as [`save_logbook`](Backend::save_logbook) does, inside
    /// `tx`, a transaction the caller opened on a connection to this
    /// backend's database ([`same_database`](Self::same_database)), and
    /// leaves it open: what the caller writes next commits with the
    /// records or not at all. It sets the transaction's `search_path` to
    /// this backend's schema (`SET LOCAL`); a caller that writes to
    /// another schema next sets its own again. A jobboard in the same
    /// database posts the job that points at the records this way.
    pub fn save_logbook_in(
        &self,
        tx: &mut postgres::Transaction<'_>,
        book: &LogBook,
    ) -> Result<(), PersistenceError> {
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {}",
            quote_ident(&self.schema)
        ))
        .map_err(|e| pg_err(e, format_args!("using schema {}", self.schema)))?;
        put_book(tx, &mut Cache::new(), book)
    }

    /// The schema the backend works in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Where the backend points (hosts, database and schema; no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }
}

type Cache = HashMap<&'static str, Statement>;

const BOOK_EXISTS: &str = "SELECT 1 FROM logbooks WHERE uuid = $1 FOR KEY SHARE";
const FLOW_EXISTS: &str = "SELECT 1 FROM flowdetails WHERE uuid = $1";
const UPSERT_BOOK: &str = "INSERT INTO logbooks (uuid, name, created_at, updated_at, meta) \
    VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (uuid) DO UPDATE SET name = EXCLUDED.name, created_at = EXCLUDED.created_at, \
    updated_at = EXCLUDED.updated_at, meta = EXCLUDED.meta";
const FLOW_EPOCH: &str = "SELECT owner_epoch FROM flowdetails WHERE uuid = $1";
/// A save of a flow detail is a write at its own epoch: the update is
/// skipped (no row) when the stored epoch is higher.
const UPSERT_FLOW: &str =
    "INSERT INTO flowdetails (uuid, book_uuid, name, state, meta, owner_epoch) \
    VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (uuid) DO UPDATE SET book_uuid = EXCLUDED.book_uuid, name = EXCLUDED.name, \
    state = EXCLUDED.state, meta = EXCLUDED.meta, owner_epoch = EXCLUDED.owner_epoch \
    WHERE flowdetails.owner_epoch <= EXCLUDED.owner_epoch";
const DELETE_FLOW_ATOMS: &str = "DELETE FROM atomdetails WHERE flow_uuid = $1";
/// Inserts nothing when the flow is missing or owned at a higher epoch than
/// `$8`.
const UPSERT_ATOM: &str = "INSERT INTO atomdetails \
    (flow_uuid, uuid, name, kind, state, intention, body) \
    SELECT $1::uuid, $2::uuid, $3::text, $4::text, $5::text, $6::text, $7::text \
    WHERE (SELECT owner_epoch FROM flowdetails WHERE uuid = $1 FOR SHARE) <= $8::bigint \
    ON CONFLICT (flow_uuid, uuid) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, \
    state = EXCLUDED.state, intention = EXCLUDED.intention, body = EXCLUDED.body";
const UPDATE_ATOM_STATE: &str = "UPDATE atomdetails SET state = $3, intention = $4 \
    WHERE flow_uuid = $1 AND uuid = $2 \
    AND (SELECT owner_epoch FROM flowdetails WHERE uuid = $1 FOR SHARE) <= $5";
/// A meta update's read of the writer's epoch: `FOR SHARE`, as the other
/// writes of an engine read it (a fence waits for it to commit).
const FLOW_EPOCH_FOR_SHARE: &str = "SELECT owner_epoch FROM flowdetails WHERE uuid = $1 FOR SHARE";
/// A meta update's read of the atom's body, locking its row until the
/// update commits: a concurrent write of the row waits, then applies to
/// the row as written.
const SELECT_ATOM_BODY_FOR_UPDATE: &str =
    "SELECT body FROM atomdetails WHERE flow_uuid = $1 AND uuid = $2 FOR UPDATE";
/// Writes the body alone: the state and intention columns stay as they are.
const UPDATE_ATOM_BODY: &str =
    "UPDATE atomdetails SET body = $3 WHERE flow_uuid = $1 AND uuid = $2";
const UPDATE_FLOW_STATE: &str =
    "UPDATE flowdetails SET state = $2 WHERE uuid = $1 AND owner_epoch <= $3";
const FENCE_FLOW: &str =
    "UPDATE flowdetails SET owner_epoch = $2 WHERE uuid = $1 AND owner_epoch <= $2";
/// A take: one statement, so the row lock orders concurrent takers and
/// each reads the epoch the one before it wrote. The largest epoch a
/// `bigint` holds is not raised (no row).
const TAKE_FLOW: &str = "UPDATE flowdetails SET owner_epoch = owner_epoch + 1 \
    WHERE uuid = $1 AND owner_epoch < 9223372036854775807 RETURNING owner_epoch";
const DELETE_BOOK: &str = "DELETE FROM logbooks WHERE uuid = $1";
const DELETE_FLOW: &str = "DELETE FROM flowdetails WHERE uuid = $1";
const SELECT_BOOK: &str =
    "SELECT uuid, name, created_at, updated_at, meta FROM logbooks WHERE uuid = $1";
const SELECT_BOOKS: &str =
    "SELECT uuid, name, created_at, updated_at, meta FROM logbooks ORDER BY created_at, uuid";
const SELECT_BOOK_FLOWS: &str = "SELECT book_uuid, uuid, name, state, meta, owner_epoch \
    FROM flowdetails WHERE book_uuid = $1 ORDER BY seq";
const SELECT_FLOWS: &str =
    "SELECT book_uuid, uuid, name, state, meta, owner_epoch FROM flowdetails ORDER BY seq";
const SELECT_FLOW: &str =
    "SELECT book_uuid, uuid, name, state, meta, owner_epoch FROM flowdetails WHERE uuid = $1";
const SELECT_BOOK_ATOMS: &str =
    "SELECT a.flow_uuid, a.uuid, a.name, a.kind, a.state, a.intention, a.body \
    FROM atomdetails a JOIN flowdetails f ON f.uuid = a.flow_uuid \
    WHERE f.book_uuid = $1 ORDER BY a.seq";
const SELECT_ATOMS: &str = "SELECT flow_uuid, uuid, name, kind, state, intention, body \
    FROM atomdetails ORDER BY seq";
const SELECT_FLOW_ATOMS: &str = "SELECT flow_uuid, uuid, name, kind, state, intention, body \
    FROM atomdetails WHERE flow_uuid = $1 ORDER BY seq";
const SELECT_ATOM: &str = "SELECT flow_uuid, uuid, name, kind, state, intention, body \
    FROM atomdetails WHERE flow_uuid = $1 AND uuid = $2";

/// Runs a prepared query.
fn query<C: GenericClient>(
    client: &mut C,
    cache: &mut Cache,
    sql: &'static str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    what: impl fmt::Display,
) -> Result<Vec<Row>, PersistenceError> {
    let statement = prepared(cache, client, sql)?;
    client
        .query(&statement, params)
        .map_err(|e| pg_err(e, what))
}

/// Why a fenced write to the flow `flow` at `epoch` changed no row: the
/// flow is missing (`NotFound`) or owned at a higher epoch (`Fenced`);
/// `None` when neither (the row written to is what is missing).
fn refusal<C: GenericClient>(
    client: &mut C,
    cache: &mut Cache,
    flow: FlowDetailId,
    epoch: Epoch,
) -> Result<Option<PersistenceError>, PersistenceError> {
    let rows = query(
        client,
        cache,
        FLOW_EPOCH,
        &[&flow],
        format_args!("reading the owner epoch of flow detail {flow}"),
    )?;
    let Some(row) = rows.first() else {
        return Ok(Some(not_found(RecordKind::FlowDetail, flow)));
    };
    let held: i64 = col(row, 0, RecordKind::FlowDetail, &flow, "owner_epoch")?;
    Ok(check_epoch(flow, codec::decode_epoch(flow, held)?, epoch).err())
}

/// Upserts an atom detail of the flow `flow` as a writer at `epoch`.
fn put_atom<C: GenericClient>(
    client: &mut C,
    cache: &mut Cache,
    flow: FlowDetailId,
    atom: &AtomDetail,
    epoch: Epoch,
) -> Result<(), PersistenceError> {
    let body = codec::encode_atom_body(atom)?;
    let presented = codec::encode_epoch(flow, epoch)?;
    let statement = prepared(cache, client, UPSERT_ATOM)?;
    let n = client
        .execute(
            &statement,
            &[
                &flow,
                &atom.uuid,
                &&*atom.name,
                &codec::atom_kind_str(atom.kind),
                &codec::atom_state_str(atom.state),
                &codec::intention_str(atom.intention),
                &body,
                &presented,
            ],
        )
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                not_found(RecordKind::FlowDetail, flow)
            } else {
                pg_err(
                    e,
                    format_args!("saving atom detail {} of flow detail {flow}", atom.uuid),
                )
            }
        })?;
    if n == 0 {
        return Err(refusal(client, cache, flow, epoch)?
            .unwrap_or_else(|| not_found(RecordKind::FlowDetail, flow)));
    }
    Ok(())
}

/// Changes the state and intention of an atom detail of the flow `flow` as
/// a writer at `epoch` (inside the batch's transaction).
fn put_atom_state<C: GenericClient>(
    client: &mut C,
    cache: &mut Cache,
    flow: FlowDetailId,
    atom: AtomDetailId,
    state: AtomState,
    intention: Intention,
    epoch: Epoch,
) -> Result<(), PersistenceError> {
    let presented = codec::encode_epoch(flow, epoch)?;
    let statement = prepared(cache, client, UPDATE_ATOM_STATE)?;
    let n = client
        .execute(
            &statement,
            &[
                &flow,
                &atom,
                &codec::atom_state_str(state),
                &codec::intention_str(intention),
                &presented,
            ],
        )
        .map_err(|e| pg_err(e, format_args!("updating the state of atom detail {atom}")))?;
    if n == 0 {
        return Err(refusal(client, cache, flow, epoch)?
            .unwrap_or_else(|| not_found(RecordKind::AtomDetail, atom)));
    }
    Ok(())
}

/// Writes a flow detail (at its own owner epoch) and replaces its atoms
/// (inside a transaction).
/// Writes a logbook and its flow details, inside a transaction.
fn put_book<C: GenericClient>(
    client: &mut C,
    cache: &mut Cache,
    book: &LogBook,
) -> Result<(), PersistenceError> {
    let kind = RecordKind::LogBook;
    let meta = codec::encode_meta(kind, book.uuid, &book.meta)?;
    let created = codec::encode_millis(kind, book.uuid, book.created_at)?;
    let updated = codec::encode_millis(kind, book.uuid, book.updated_at)?;
    let statement = prepared(cache, client, UPSERT_BOOK)?;
    client
        .execute(
            &statement,
            &[&book.uuid, &book.name, &created, &updated, &meta],
        )
        .map_err(|e| pg_err(e, format_args!("saving logbook {}", book.uuid)))?;
    for flow in &book.flow_details {
        put_flow(client, cache, book.uuid, flow)?;
    }
    Ok(())
}

fn put_flow<C: GenericClient>(
    client: &mut C,
    cache: &mut Cache,
    book: LogBookId,
    flow: &FlowDetail,
) -> Result<(), PersistenceError> {
    let meta = codec::encode_meta(RecordKind::FlowDetail, flow.uuid, &flow.stored_meta())?;
    let epoch = codec::encode_epoch(flow.uuid, flow.owner_epoch)?;
    let statement = prepared(cache, client, UPSERT_FLOW)?;
    let n = client
        .execute(
            &statement,
            &[
                &flow.uuid,
                &book,
                &flow.name,
                &codec::flow_state_str(flow.state),
                &meta,
                &epoch,
            ],
        )
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                not_found(RecordKind::LogBook, book)
            } else {
                pg_err(e, format_args!("saving flow detail {}", flow.uuid))
            }
        })?;
    if n == 0 {
        return Err(refusal(client, cache, flow.uuid, flow.owner_epoch)?
            .unwrap_or_else(|| not_found(RecordKind::FlowDetail, flow.uuid)));
    }
    let statement = prepared(cache, client, DELETE_FLOW_ATOMS)?;
    client.execute(&statement, &[&flow.uuid]).map_err(|e| {
        pg_err(
            e,
            format_args!("replacing the atoms of flow detail {}", flow.uuid),
        )
    })?;
    for atom in &flow.atom_details {
        put_atom(client, cache, flow.uuid, atom, flow.owner_epoch)?;
    }
    Ok(())
}

fn exists(
    conn: &mut Conn,
    sql: &'static str,
    id: Uuid,
    kind: RecordKind,
) -> Result<bool, PersistenceError> {
    let (client, cache) = conn.parts();
    Ok(!query(
        client,
        cache,
        sql,
        &[&id],
        format_args!("looking up {kind} {id}"),
    )?
    .is_empty())
}

impl PostgresBackend {
    /// Runs `f` in a read-only snapshot transaction.
    fn read<T>(
        &self,
        what: &dyn fmt::Display,
        mut f: impl FnMut(&mut postgres::Transaction<'_>, &mut Cache) -> Result<T, PersistenceError>,
    ) -> Result<T, PersistenceError> {
        self.pool.run(|conn| {
            let (client, cache) = conn.parts();
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(|e| pg_err(e, format_args!("starting to read {what}")))?;
            let value = f(&mut tx, cache)?;
            tx.commit()
                .map_err(|e| pg_err(e, format_args!("finishing reading {what}")))?;
            Ok(value)
        })
    }

    /// Runs `f` in a read-write transaction.
    fn write(
        &self,
        what: &dyn fmt::Display,
        mut f: impl FnMut(&mut postgres::Transaction<'_>, &mut Cache) -> Result<(), PersistenceError>,
    ) -> Result<(), PersistenceError> {
        self.pool.run(|conn| {
            let (client, cache) = conn.parts();
            let mut tx = client
                .transaction()
                .map_err(|e| pg_err(e, format_args!("starting to save {what}")))?;
            f(&mut tx, cache)?;
            tx.commit()
                .map_err(|e| pg_err(e, format_args!("committing {what}")))
        })
    }

    /// Runs one prepared statement that changes a row of flow detail
    /// `flow` or of one of its atoms only if the flow is owned at no more
    /// than `epoch`; if it changed nothing, says why: `Fenced`, `NotFound`
    /// of the flow, or else `NotFound` of `missing` (the row written to).
    fn fenced_write(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        missing: (RecordKind, Uuid),
        what: &dyn fmt::Display,
    ) -> Result<(), PersistenceError> {
        self.pool.run(|conn| {
            let statement = conn.statement(sql)?;
            let n = conn
                .client
                .execute(&statement, params)
                .map_err(|e| pg_err(e, what))?;
            if n > 0 {
                return Ok(());
            }
            let (client, cache) = conn.parts();
            Err(refusal(client, cache, flow, epoch)?
                .unwrap_or_else(|| not_found(missing.0, missing.1)))
        })
    }

    /// Runs one prepared statement that changes rows; returns how many.
    fn execute(
        &self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        what: &dyn fmt::Display,
    ) -> Result<u64, PersistenceError> {
        self.pool.run(|conn| {
            let statement = conn.statement(sql)?;
            conn.client
                .execute(&statement, params)
                .map_err(|e| pg_err(e, what))
        })
    }
}

impl Backend for PostgresBackend {
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        let what = format!("logbook {}", book.uuid);
        self.write(&what, |tx, cache| put_book(tx, cache, book))
    }

    fn shared_database(&self) -> Option<SharedDatabase<'_>> {
        Some(SharedDatabase::Postgres(self))
    }

    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        let what = format!("logbook {id}");
        self.read(&what, |tx, cache| {
            let rows = query(
                tx,
                cache,
                SELECT_BOOK,
                &[&id],
                format_args!("reading logbook {id}"),
            )?;
            let mut book = match rows.first() {
                Some(row) => decode_book(row)?,
                None => return Err(not_found(RecordKind::LogBook, id)),
            };
            let atoms = query(tx, cache, SELECT_BOOK_ATOMS, &[&id], "reading atom details")?;
            let flows = query(tx, cache, SELECT_BOOK_FLOWS, &[&id], "reading flow details")?;
            let mut flows = flows_by_book(&flows, atoms_by_flow(&atoms));
            book.flow_details = flows.take(&id.as_uuid())?;
            Ok(book)
        })
    }

    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError> {
        self.read(&"logbooks", |tx, cache| {
            let atoms = query(tx, cache, SELECT_ATOMS, &[], "reading atom details")?;
            let flows = query(tx, cache, SELECT_FLOWS, &[], "reading flow details")?;
            let mut flows = flows_by_book(&flows, atoms_by_flow(&atoms));
            let rows = query(tx, cache, SELECT_BOOKS, &[], "listing logbooks")?;
            let mut books: Vec<Result<LogBook, PersistenceError>> = rows
                .iter()
                .map(|row| {
                    let mut book = decode_book(row)?;
                    if let Some(group) = flows.groups.remove(&book.uuid.as_uuid()) {
                        book.flow_details = group?;
                    }
                    Ok(book)
                })
                .collect();
            books.extend(flows.orphans.drain(..).map(Err));
            Ok(books)
        })
    }

    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError> {
        let n = self.execute(
            DELETE_BOOK,
            &[&id],
            &format_args!("destroying logbook {id}"),
        )?;
        if n == 0 {
            return Err(not_found(RecordKind::LogBook, id));
        }
        Ok(())
    }

    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        let what = format!("flow detail {}", flow.uuid);
        self.write(&what, |tx, cache| {
            let found = query(
                tx,
                cache,
                BOOK_EXISTS,
                &[&book],
                format_args!("looking up logbook {book}"),
            )?;
            if found.is_empty() {
                return Err(not_found(RecordKind::LogBook, book));
            }
            put_flow(tx, cache, book, flow)
        })
    }

    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError> {
        let what = format!("flow detail {id}");
        self.read(&what, |tx, cache| {
            let rows = query(
                tx,
                cache,
                SELECT_FLOW,
                &[&id],
                format_args!("reading flow detail {id}"),
            )?;
            if rows.is_empty() {
                return Err(not_found(RecordKind::FlowDetail, id));
            }
            let atoms = query(tx, cache, SELECT_FLOW_ATOMS, &[&id], "reading atom details")?;
            let mut flows = flows_by_book(&rows, atoms_by_flow(&atoms));
            if let Some(e) = flows.orphans.pop() {
                return Err(e);
            }
            // One row: the group of its logbook, whatever that is.
            let group = flows.groups.into_values().next().unwrap_or(Ok(Vec::new()));
            group?
                .into_iter()
                .next()
                .ok_or_else(|| not_found(RecordKind::FlowDetail, id))
        })
    }

    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let presented = codec::encode_epoch(flow, epoch)?;
        self.fenced_write(
            flow,
            epoch,
            UPDATE_FLOW_STATE,
            &[&flow, &codec::flow_state_str(state), &presented],
            (RecordKind::FlowDetail, Uuid::from(flow)),
            &format_args!("updating the state of flow detail {flow}"),
        )
        .map(drop)
    }

    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError> {
        let presented = codec::encode_epoch(flow, epoch)?;
        self.fenced_write(
            flow,
            epoch,
            FENCE_FLOW,
            &[&flow, &presented],
            (RecordKind::FlowDetail, Uuid::from(flow)),
            &format_args!("fencing flow detail {flow} at epoch {epoch}"),
        )?;
        Ok(epoch)
    }

    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError> {
        self.pool.run(|conn| {
            let (client, cache) = conn.parts();
            let rows = query(
                client,
                cache,
                TAKE_FLOW,
                &[&flow],
                format_args!("taking flow detail {flow}"),
            )?;
            match rows.first() {
                Some(row) => {
                    let epoch: i64 = col(row, 0, RecordKind::FlowDetail, &flow, "owner_epoch")?;
                    codec::decode_epoch(flow, epoch)
                }
                None if exists(conn, FLOW_EXISTS, Uuid::from(flow), RecordKind::FlowDetail)? => {
                    Err(epoch_at_its_largest(
                        flow,
                        Epoch::new(i64::MAX.unsigned_abs()),
                    ))
                }
                None => Err(not_found(RecordKind::FlowDetail, flow)),
            }
        })
    }

    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError> {
        let n = self.execute(
            DELETE_FLOW,
            &[&id],
            &format_args!("destroying flow detail {id}"),
        )?;
        if n == 0 {
            return Err(not_found(RecordKind::FlowDetail, id));
        }
        Ok(())
    }

    fn save_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        self.pool.run(|conn| {
            let (client, cache) = conn.parts();
            put_atom(client, cache, flow, atom, epoch)
        })
    }

    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let presented = codec::encode_epoch(flow, epoch)?;
        self.fenced_write(
            flow,
            epoch,
            UPDATE_ATOM_STATE,
            &[
                &flow,
                &atom,
                &codec::atom_state_str(state),
                &codec::intention_str(intention),
                &presented,
            ],
            (RecordKind::AtomDetail, Uuid::from(atom)),
            &format_args!("updating the state of atom detail {atom}"),
        )
    }

    fn save_atom_writes(
        &self,
        flow: FlowDetailId,
        writes: &[AtomWrite<'_>],
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        if let [AtomWrite::Detail(atom)] = writes {
            return self.save_atom_detail(flow, atom, epoch);
        }
        if let [AtomWrite::State {
            atom,
            state,
            intention,
        }] = *writes
        {
            return self.update_atom_state(flow, atom, state, intention, epoch);
        }
        // One transaction: one commit (one WAL flush) for the batch, all or
        // nothing.
        self.write(
            &format_args!("checkpoints of flow detail {flow}"),
            |tx, cache| {
                for write in writes {
                    match *write {
                        AtomWrite::State {
                            atom,
                            state,
                            intention,
                        } => put_atom_state(tx, cache, flow, atom, state, intention, epoch)?,
                        AtomWrite::Detail(detail) => put_atom(tx, cache, flow, detail, epoch)?,
                    }
                }
                Ok(())
            },
        )
    }

    fn update_atom_meta(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        key: &str,
        value: Option<Value>,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let value = codec::checked_meta_entry(atom, key, value)?;
        let what = format!("the meta of atom detail {atom}");
        self.write(&what, |tx, cache| {
            let rows = query(
                tx,
                cache,
                FLOW_EPOCH_FOR_SHARE,
                &[&flow],
                format_args!("reading the owner epoch of flow detail {flow}"),
            )?;
            let row = rows
                .first()
                .ok_or_else(|| not_found(RecordKind::FlowDetail, flow))?;
            let held: i64 = col(row, 0, RecordKind::FlowDetail, &flow, "owner_epoch")?;
            check_epoch(flow, codec::decode_epoch(flow, held)?, epoch)?;
            let rows = query(
                tx,
                cache,
                SELECT_ATOM_BODY_FOR_UPDATE,
                &[&flow, &atom],
                format_args!("reading atom detail {atom}"),
            )?;
            let row = rows
                .first()
                .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))?;
            let body: &str = col(row, 0, RecordKind::AtomDetail, &atom, "body")?;
            let body = codec::body_with_meta_entry(atom, body.as_bytes(), key, value.as_ref())?;
            let statement = prepared(cache, tx, UPDATE_ATOM_BODY)?;
            tx.execute(&statement, &[&flow, &atom, &body])
                .map_err(|e| pg_err(e, format_args!("updating {what}")))?;
            Ok(())
        })
    }

    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        self.pool.run(|conn| {
            let (client, cache) = conn.parts();
            let rows = query(
                client,
                cache,
                SELECT_ATOM,
                &[&flow, &atom],
                format_args!("reading atom detail {atom}"),
            )?;
            match rows.first() {
                Some(row) => decode_atom(row).and_then(|(_, detail)| detail),
                None if exists(conn, FLOW_EXISTS, Uuid::from(flow), RecordKind::FlowDetail)? => {
                    Err(not_found(RecordKind::AtomDetail, atom))
                }
                None => Err(not_found(RecordKind::FlowDetail, flow)),
            }
        })
    }
}

#[cfg(test)]
mod tests;
