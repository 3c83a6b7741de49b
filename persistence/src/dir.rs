//! The directory backend: one JSON file per record, each written atomically.
//! See [`DirBackend`].

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow_patterns::{AtomState, FlowState, Intention};
use uuid::Uuid;

use crate::codec;
use crate::error::{check_epoch, next_epoch};
use crate::sync;
use crate::{
    AtomDetail, AtomDetailId, Backend, Epoch, FlowDetail, FlowDetailId, LogBook, LogBookId,
    PersistenceError, RecordKind,
};

const BACKEND: &str = "dir";
const FORMAT_NAME: &str = "taskflow-dir";
const FORMAT_FILE: &str = "FORMAT.json";
const TEMP_PREFIX: &str = ".tmp-";

/// Stores records as files under a directory: one JSON file per record,
/// each written atomically.
///
/// # Layout
///
/// ```text
/// <root>/
///   FORMAT.json                          {"format": "taskflow-dir", "version": 2}
///   logbooks/<book id>.json              logbook header: uuid, name, created_at,
///                                        updated_at, meta, and "flows": the ids
///                                        of its flow details in saved order
///   flows/<flow id>/flow.json            flow detail header: uuid, "book" (its
///                                        logbook's id), name, state, meta,
///                                        "atoms": its atom ids in saved order,
///                                        and "owner_epoch" (absent: 0)
///   flows/<flow id>/atoms/<atom id>.json one atom detail, as `AtomDetail`
///                                        serializes (pretty-printed JSON)
/// ```
///
/// Ids are lower-case hyphenated UUIDs. The headers' id lists are what
/// belongs to a record: a flow listed by a logbook whose file is missing, or
/// an atom listed by a flow whose file is missing, is
/// [`PersistenceError::Corrupt`] naming the missing record; so is a file that
/// does not parse, holds an unknown state, or names another id than its file
/// name.
///
/// # Writes
///
/// Every file is written whole to a temporary file `.tmp-<name>-<random>` in
/// its directory, fsynced, renamed over the old file and the directory
/// fsynced: a reader or a crash sees the old file or the new one, never a
/// half-written one. Children are written before the header that lists
/// them and unlisted before they are removed, so a crash between two files
/// can leave an unlisted file behind (invisible to logbook reads; a flow
/// detail left so is still found by its id) but never a list naming a
/// missing file. `FORMAT.json` carries the layout version: a newer one is
/// refused with [`PersistenceError::SchemaTooNew`]; an older one is
/// migrated on open (version 1 lacks `owner_epoch`, read as 0: only
/// `FORMAT.json` is rewritten).
///
/// Owner fencing (see [`Backend`]): every write that presents an epoch
/// reads the flow header and compares its `owner_epoch` under the
/// backend's write lock, so the check and the write are one step for the
/// threads of this process; a fence or a take reads and rewrites the
/// header under the same lock. A state update and a metadata update
/// ([`update_atom_meta`](Backend::update_atom_meta)) each read the atom's
/// file and rewrite it whole under that lock, so neither undoes the other.
///
/// One process at a time: a [`DirBackend`] serializes its own threads (reads
/// share a lock, writes take it alone) but takes no lock between processes.
/// Use [`SqliteBackend`](crate::SqliteBackend) for several processes.
///
/// # Example
///
/// ```
/// use taskflow_persistence::{Backend, DirBackend, LogBook};
/// # let root = std::env::temp_dir().join(format!("tf-doc-{}", uuid::Uuid::new_v4()));
/// let backend = DirBackend::open(&root)?;
/// let book = LogBook::new("nightly");
/// backend.save_logbook(&book)?;
/// assert_eq!(backend.get_logbook(book.uuid)?.name, "nightly");
/// # std::fs::remove_dir_all(&root).unwrap();
/// # Ok::<(), taskflow_persistence::PersistenceError>(())
/// ```
#[derive(Debug)]
pub struct DirBackend {
    root: PathBuf,
    /// A panic under it leaves no half-written file (every file is
    /// replaced by a rename).
    lock: RwLock<()>,
}

/// `FORMAT.json`.
#[derive(Serialize, Deserialize)]
struct Format {
    format: String,
    version: u32,
}

/// `logbooks/<id>.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile<'a> {
    uuid: LogBookId,
    name: Cow<'a, str>,
    created_at: u64,
    updated_at: u64,
    #[serde(default)]
    meta: Cow<'a, Map<String, Value>>,
    flows: Vec<FlowDetailId>,
}

/// `flows/<id>/flow.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile<'a> {
    uuid: FlowDetailId,
    book: LogBookId,
    name: Cow<'a, str>,
    state: FlowState,
    #[serde(default)]
    meta: Cow<'a, Map<String, Value>>,
    atoms: Vec<AtomDetailId>,
    /// Absent in format version 1.
    #[serde(default)]
    owner_epoch: Epoch,
}

fn io_err(e: io::Error, what: impl std::fmt::Display) -> PersistenceError {
    PersistenceError::backend(BACKEND, what.to_string(), e)
}

fn not_found(kind: RecordKind, id: impl Into<Uuid>) -> PersistenceError {
    PersistenceError::NotFound {
        kind,
        id: id.into(),
    }
}

/// Reads a whole file; `None` if it does not exist.
fn read(path: &Path) -> Result<Option<Vec<u8>>, PersistenceError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(e, format_args!("reading {}", path.display()))),
    }
}

/// Reads and decodes the file of record `kind` `id`; `None` if it does not
/// exist.
fn read_json<T: DeserializeOwned>(
    path: &Path,
    kind: RecordKind,
    id: impl Into<Uuid>,
) -> Result<Option<T>, PersistenceError> {
    let id: Uuid = id.into();
    match read(path)? {
        None => Ok(None),
        Some(bytes) => {
            codec::decode_json(kind, id, &format!("{}", path.display()), &bytes).map(Some)
        }
    }
}

/// Fsyncs a directory, so a rename or a new entry in it is durable.
fn sync_dir(dir: &Path) -> Result<(), PersistenceError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(e, format_args!("syncing directory {}", dir.display())))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates the directory `dir` (whose parent exists) if it is missing.
fn ensure_dir(dir: &Path) -> Result<(), PersistenceError> {
    match fs::create_dir(dir) {
        Ok(()) => match dir.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(e, format_args!("creating {}", dir.display()))),
    }
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename,
/// fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistenceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!("{TEMP_PREFIX}{name}-{}", Uuid::new_v4().simple()));
    let written = File::create(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_err(e, format_args!("writing {}", path.display())));
    }
    sync_dir(dir)
}

/// Encodes `value` (of record `kind` `id`, holding the values `parts`)
/// and writes it atomically.
fn write_json<'a, T: Serialize + ?Sized>(
    path: &Path,
    kind: RecordKind,
    id: impl Into<Uuid>,
    value: &T,
    parts: impl IntoIterator<Item = (codec::Part<'a>, &'a Value)>,
) -> Result<(), PersistenceError> {
    let id: Uuid = id.into();
    let bytes = codec::encode(kind, id, value, parts, true)?;
    write_atomic(path, &bytes)
}

/// Removes a file or a tree, if it is there.
fn remove(path: &Path, tree: bool) -> Result<(), PersistenceError> {
    let removed = if tree {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e, format_args!("removing {}", path.display()))),
    }
}

/// Writes `FORMAT.json` of the current version.
fn write_format(path: &Path) -> Result<(), PersistenceError> {
    let format = Format {
        format: FORMAT_NAME.to_owned(),
        version: DirBackend::FORMAT_VERSION,
    };
    let bytes = serde_json::to_vec_pretty(&format).map_err(|e| PersistenceError::Backend {
        backend: BACKEND,
        message: format!("encoding {FORMAT_FILE}: {e}"),
        source: None,
    })?;
    write_atomic(path, &bytes)
}

/// The first entry of `root/logbooks` or `root/flows`, if either holds
/// any: a store's records, which a directory without `FORMAT.json` should
/// not have.
fn holds_records(root: &Path) -> Result<Option<PathBuf>, PersistenceError> {
    for sub in ["logbooks", "flows"] {
        let dir = root.join(sub);
        let mut entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(e, format_args!("listing {}", dir.display()))),
        };
        if let Some(entry) = entries.next() {
            let entry = entry.map_err(|e| io_err(e, format_args!("listing {}", dir.display())))?;
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Checks that a record's file names the id its path does.
fn check_id<I: PartialEq + std::fmt::Display>(
    kind: RecordKind,
    expected: I,
    found: I,
) -> Result<(), PersistenceError> {
    if expected == found {
        Ok(())
    } else {
        Err(codec::corrupt(
            kind,
            expected,
            format_args!("its file holds the record of {found}"),
        ))
    }
}

impl DirBackend {
    /// The layout version this build reads and writes (in `FORMAT.json`).
    /// Version 2 added the flow headers' `owner_epoch`.
    pub const FORMAT_VERSION: u32 = 2;

    /// Opens the store under `root`, creating the directory and its layout
    /// if needed. A store whose `FORMAT.json` is newer than
    /// [`FORMAT_VERSION`](Self::FORMAT_VERSION) is refused; an older one is
    /// migrated. A directory that holds records (under `logbooks/` or
    /// `flows/`) but no `FORMAT.json` is refused rather than guessed at
    /// (a backend error naming it); a new or empty one is initialised.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, PersistenceError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root)
            .map_err(|e| io_err(e, format_args!("creating {}", root.display())))?;
        let format_path = root.join(FORMAT_FILE);
        match read(&format_path)? {
            Some(bytes) => {
                let format: Format =
                    serde_json::from_slice(&bytes).map_err(|e| PersistenceError::Backend {
                        backend: BACKEND,
                        message: format!("{} is not a store format: {e}", format_path.display()),
                        source: None,
                    })?;
                if format.format != FORMAT_NAME {
                    return Err(PersistenceError::Backend {
                        backend: BACKEND,
                        message: format!(
                            "{} is a {:?} store, not {FORMAT_NAME:?}",
                            root.display(),
                            format.format
                        ),
                        source: None,
                    });
                }
                if format.version > Self::FORMAT_VERSION {
                    return Err(PersistenceError::SchemaTooNew {
                        backend: BACKEND,
                        location: root.display().to_string(),
                        found: format.version,
                        supported: Self::FORMAT_VERSION,
                    });
                }
                if format.version < Self::FORMAT_VERSION {
                    // Version 1 -> 2: flow headers without `owner_epoch`
                    // read as 0, so only the version changes.
                    write_format(&format_path)?;
                }
            }
            None => {
                if let Some(records) = holds_records(&root)? {
                    return Err(PersistenceError::Backend {
                        backend: BACKEND,
                        message: format!(
                            "{} holds records ({}) but no {FORMAT_FILE}; refusing to guess \
                             their format: restore {FORMAT_FILE}, or open a new or empty \
                             directory",
                            root.display(),
                            records.display()
                        ),
                        source: None,
                    });
                }
                write_format(&format_path)?;
            }
        }
        ensure_dir(&root.join("logbooks"))?;
        ensure_dir(&root.join("flows"))?;
        Ok(DirBackend {
            root,
            lock: RwLock::new(()),
        })
    }

    /// The directory holding the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn book_path(&self, id: LogBookId) -> PathBuf {
        self.root.join("logbooks").join(format!("{id}.json"))
    }

    fn flow_dir(&self, id: FlowDetailId) -> PathBuf {
        self.root.join("flows").join(id.to_string())
    }

    fn flow_path(&self, id: FlowDetailId) -> PathBuf {
        self.flow_dir(id).join("flow.json")
    }

    fn atom_path(&self, flow: FlowDetailId, atom: AtomDetailId) -> PathBuf {
        self.flow_dir(flow)
            .join("atoms")
            .join(format!("{atom}.json"))
    }

    fn read_book(&self, id: LogBookId) -> Result<Option<BookFile<'static>>, PersistenceError> {
        let book: Option<BookFile<'static>> =
            read_json(&self.book_path(id), RecordKind::LogBook, id)?;
        if let Some(book) = &book {
            check_id(RecordKind::LogBook, id, book.uuid)?;
        }
        Ok(book)
    }

    fn read_flow(&self, id: FlowDetailId) -> Result<Option<FlowFile<'static>>, PersistenceError> {
        let flow: Option<FlowFile<'static>> =
            read_json(&self.flow_path(id), RecordKind::FlowDetail, id)?;
        if let Some(flow) = &flow {
            check_id(RecordKind::FlowDetail, id, flow.uuid)?;
        }
        Ok(flow)
    }

    /// Reads an atom that its flow lists: a missing file is corrupt.
    fn read_listed_atom(
        &self,
        flow: FlowDetailId,
        id: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        let atom: AtomDetail = read_json(&self.atom_path(flow, id), RecordKind::AtomDetail, id)?
            .ok_or_else(|| {
                codec::corrupt(
                    RecordKind::AtomDetail,
                    id,
                    format_args!("listed by flow detail {flow} but its file is missing"),
                )
            })?;
        check_id(RecordKind::AtomDetail, id, atom.uuid)?;
        Ok(atom)
    }

    fn load_flow(
        &self,
        id: FlowDetailId,
    ) -> Result<Option<(LogBookId, FlowDetail)>, PersistenceError> {
        let Some(header) = self.read_flow(id)? else {
            return Ok(None);
        };
        let atom_details = header
            .atoms
            .iter()
            .map(|atom| self.read_listed_atom(id, *atom))
            .collect::<Result<_, _>>()?;
        let (meta, run) = FlowDetail::split_stored_meta(id, header.meta.into_owned())?;
        Ok(Some((
            header.book,
            FlowDetail {
                uuid: id,
                name: header.name.into_owned(),
                state: header.state,
                meta,
                run,
                atom_details,
                owner_epoch: header.owner_epoch,
            },
        )))
    }

    fn load_book(&self, id: LogBookId) -> Result<Option<LogBook>, PersistenceError> {
        let Some(header) = self.read_book(id)? else {
            return Ok(None);
        };
        let mut flow_details = Vec::with_capacity(header.flows.len());
        for flow in &header.flows {
            let (book, detail) = self.load_flow(*flow)?.ok_or_else(|| {
                codec::corrupt(
                    RecordKind::FlowDetail,
                    flow,
                    format_args!("listed by logbook {id} but its file is missing"),
                )
            })?;
            if book != id {
                return Err(codec::corrupt(
                    RecordKind::FlowDetail,
                    flow,
                    format_args!("listed by logbook {id} but belongs to logbook {book}"),
                ));
            }
            flow_details.push(detail);
        }
        Ok(Some(LogBook {
            uuid: id,
            name: header.name.into_owned(),
            created_at: header.created_at,
            updated_at: header.updated_at,
            meta: header.meta.into_owned(),
            flow_details,
        }))
    }

    /// The stored header of `flow`, if any, once checked that `flow` may be
    /// saved over it (a write at its own owner epoch).
    fn old_flow(&self, flow: &FlowDetail) -> Result<Option<FlowFile<'static>>, PersistenceError> {
        let old = self.read_flow(flow.uuid)?;
        if let Some(old) = &old {
            check_epoch(flow.uuid, old.owner_epoch, flow.owner_epoch)?;
        }
        Ok(old)
    }

    /// Writes a flow detail (its atoms, then its header) into `book`, and
    /// removes the atoms it no longer has; `old` is its stored header (see
    /// [`old_flow`](Self::old_flow)). Returns the logbook it belonged to
    /// before, if that was another one.
    fn put_flow(
        &self,
        book: LogBookId,
        flow: &FlowDetail,
        old: Option<FlowFile<'static>>,
    ) -> Result<Option<LogBookId>, PersistenceError> {
        let dir = self.flow_dir(flow.uuid);
        ensure_dir(&dir)?;
        ensure_dir(&dir.join("atoms"))?;
        let mut atoms = Vec::with_capacity(flow.atom_details.len());
        for atom in &flow.atom_details {
            write_json(
                &self.atom_path(flow.uuid, atom.uuid),
                RecordKind::AtomDetail,
                atom.uuid,
                atom,
                codec::atom_parts(atom),
            )?;
            if !atoms.contains(&atom.uuid) {
                atoms.push(atom.uuid);
            }
        }
        let header = FlowFile {
            uuid: flow.uuid,
            book,
            name: Cow::Borrowed(&flow.name),
            state: flow.state,
            meta: flow.stored_meta(),
            atoms,
            owner_epoch: flow.owner_epoch,
        };
        write_json(
            &self.flow_path(flow.uuid),
            RecordKind::FlowDetail,
            flow.uuid,
            &header,
            codec::meta_parts(&header.meta),
        )?;
        let Some(old) = old else {
            return Ok(None);
        };
        for atom in old.atoms.iter().filter(|a| !header.atoms.contains(a)) {
            remove(&self.atom_path(flow.uuid, *atom), false)?;
        }
        Ok(Some(old.book).filter(|b| *b != book))
    }

    /// Rewrites the header of a flow detail.
    fn write_flow_header(&self, header: &FlowFile<'_>) -> Result<(), PersistenceError> {
        write_json(
            &self.flow_path(header.uuid),
            RecordKind::FlowDetail,
            header.uuid,
            header,
            codec::meta_parts(&header.meta),
        )
    }

    fn write_book(&self, header: &BookFile<'_>) -> Result<(), PersistenceError> {
        write_json(
            &self.book_path(header.uuid),
            RecordKind::LogBook,
            header.uuid,
            header,
            codec::meta_parts(&header.meta),
        )
    }

    /// Removes `flow` from the list of logbook `book`, if both are there.
    fn unlist_flow(&self, book: LogBookId, flow: FlowDetailId) -> Result<(), PersistenceError> {
        if let Some(mut header) = self.read_book(book)? {
            if header.flows.contains(&flow) {
                header.flows.retain(|f| *f != flow);
                self.write_book(&header)?;
            }
        }
        Ok(())
    }

    /// The header of flow `flow`, or `NotFound`.
    fn flow_header(&self, flow: FlowDetailId) -> Result<FlowFile<'static>, PersistenceError> {
        self.read_flow(flow)?
            .ok_or_else(|| not_found(RecordKind::FlowDetail, flow))
    }

    /// The header of flow `flow`, for a write at `epoch`: `NotFound`, or
    /// `Fenced` if the flow is owned at a higher epoch.
    fn writable_header(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<FlowFile<'static>, PersistenceError> {
        let header = self.flow_header(flow)?;
        check_epoch(flow, header.owner_epoch, epoch)?;
        Ok(header)
    }
}

impl Backend for DirBackend {
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        // Nothing is written if one record is too deep to be read back.
        codec::check_parts(
            RecordKind::LogBook,
            book.uuid,
            codec::meta_parts(&book.meta),
        )?;
        for flow in &book.flow_details {
            codec::check_flow(flow)?;
        }
        let _guard = sync::write(&self.lock);
        let mut flows = self
            .read_book(book.uuid)?
            .map(|old| old.flows)
            .unwrap_or_default();
        // Nothing is written if one flow detail is fenced.
        let olds = book
            .flow_details
            .iter()
            .map(|flow| self.old_flow(flow))
            .collect::<Result<Vec<_>, _>>()?;
        for (flow, old) in book.flow_details.iter().zip(olds) {
            if let Some(previous) = self.put_flow(book.uuid, flow, old)? {
                self.unlist_flow(previous, flow.uuid)?;
            }
            if !flows.contains(&flow.uuid) {
                flows.push(flow.uuid);
            }
        }
        self.write_book(&BookFile {
            uuid: book.uuid,
            name: Cow::Borrowed(&book.name),
            created_at: book.created_at,
            updated_at: book.updated_at,
            meta: Cow::Borrowed(&book.meta),
            flows,
        })
    }

    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        let _guard = sync::read(&self.lock);
        self.load_book(id)?
            .ok_or_else(|| not_found(RecordKind::LogBook, id))
    }

    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError> {
        let _guard = sync::read(&self.lock);
        let dir = self.root.join("logbooks");
        let entries =
            fs::read_dir(&dir).map_err(|e| io_err(e, format_args!("listing {}", dir.display())))?;
        let mut books = Vec::new();
        // Files that do not read as logbooks, by name.
        let mut bad: Vec<(String, PersistenceError)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(e, format_args!("listing {}", dir.display())))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) {
                // A write that a crash interrupted before its rename.
                continue;
            }
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|stem| stem.parse::<LogBookId>().ok())
            else {
                let err = codec::corrupt(
                    RecordKind::LogBook,
                    &name,
                    format_args!("unexpected file in {}", dir.display()),
                );
                bad.push((name.into_owned(), err));
                continue;
            };
            match self.load_book(id) {
                Ok(Some(book)) => books.push(book),
                // Removed since the directory was read.
                Ok(None) => {}
                Err(e) => bad.push((name.into_owned(), e)),
            }
        }
        books.sort_by_key(|b| (b.created_at, b.uuid));
        bad.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(books
            .into_iter()
            .map(Ok)
            .chain(bad.into_iter().map(|(_, e)| Err(e)))
            .collect())
    }

    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError> {
        let _guard = sync::write(&self.lock);
        let header = self
            .read_book(id)?
            .ok_or_else(|| not_found(RecordKind::LogBook, id))?;
        let path = self.book_path(id);
        remove(&path, false)?;
        sync_dir(&self.root.join("logbooks"))?;
        for flow in header.flows {
            remove(&self.flow_dir(flow), true)?;
        }
        Ok(())
    }

    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        codec::check_flow(flow)?;
        let _guard = sync::write(&self.lock);
        let mut header = self
            .read_book(book)?
            .ok_or_else(|| not_found(RecordKind::LogBook, book))?;
        let old = self.old_flow(flow)?;
        if let Some(previous) = self.put_flow(book, flow, old)? {
            self.unlist_flow(previous, flow.uuid)?;
        }
        if !header.flows.contains(&flow.uuid) {
            header.flows.push(flow.uuid);
            self.write_book(&header)?;
        }
        Ok(())
    }

    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError> {
        let _guard = sync::read(&self.lock);
        self.load_flow(id)?
            .map(|(_, flow)| flow)
            .ok_or_else(|| not_found(RecordKind::FlowDetail, id))
    }

    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let _guard = sync::write(&self.lock);
        let mut header = self.writable_header(flow, epoch)?;
        header.state = state;
        self.write_flow_header(&header)
    }

    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError> {
        let _guard = sync::write(&self.lock);
        let mut header = self.writable_header(flow, epoch)?;
        if header.owner_epoch < epoch {
            header.owner_epoch = epoch;
            self.write_flow_header(&header)?;
        }
        Ok(epoch)
    }

    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError> {
        let _guard = sync::write(&self.lock);
        let mut header = self.flow_header(flow)?;
        header.owner_epoch = next_epoch(flow, header.owner_epoch)?;
        self.write_flow_header(&header)?;
        Ok(header.owner_epoch)
    }

    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError> {
        let _guard = sync::write(&self.lock);
        let header = self.flow_header(id)?;
        self.unlist_flow(header.book, id)?;
        remove(&self.flow_path(id), false)?;
        sync_dir(&self.flow_dir(id))?;
        remove(&self.flow_dir(id), true)
    }

    fn save_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let _guard = sync::write(&self.lock);
        let mut header = self.writable_header(flow, epoch)?;
        write_json(
            &self.atom_path(flow, atom.uuid),
            RecordKind::AtomDetail,
            atom.uuid,
            atom,
            codec::atom_parts(atom),
        )?;
        if !header.atoms.contains(&atom.uuid) {
            header.atoms.push(atom.uuid);
            self.write_flow_header(&header)?;
        }
        Ok(())
    }

    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let _guard = sync::write(&self.lock);
        let header = self.writable_header(flow, epoch)?;
        if !header.atoms.contains(&atom) {
            return Err(not_found(RecordKind::AtomDetail, atom));
        }
        let mut detail = self.read_listed_atom(flow, atom)?;
        detail.state = state;
        detail.intention = intention;
        write_json(
            &self.atom_path(flow, atom),
            RecordKind::AtomDetail,
            atom,
            &detail,
            codec::atom_parts(&detail),
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
        // Read and rewritten under the write lock, as a state update is.
        let _guard = sync::write(&self.lock);
        let header = self.writable_header(flow, epoch)?;
        if !header.atoms.contains(&atom) {
            return Err(not_found(RecordKind::AtomDetail, atom));
        }
        let mut detail = self.read_listed_atom(flow, atom)?;
        detail.set_meta_entry(key, value);
        write_json(
            &self.atom_path(flow, atom),
            RecordKind::AtomDetail,
            atom,
            &detail,
            codec::atom_parts(&detail),
        )
    }

    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        let _guard = sync::read(&self.lock);
        let header = self.flow_header(flow)?;
        if !header.atoms.contains(&atom) {
            return Err(not_found(RecordKind::AtomDetail, atom));
        }
        self.read_listed_atom(flow, atom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::WithGuard;

    fn fresh() -> WithGuard<DirBackend, tempfile::TempDir> {
        let dir = tempfile::tempdir().unwrap();
        let backend = DirBackend::open(dir.path().join("store")).unwrap();
        WithGuard {
            backend,
            guard: dir,
        }
    }

    crate::backend_conformance!(fresh());

    #[test]
    fn leaves_no_temporary_files() {
        let store = fresh();
        let b = &store.backend;
        let mut book = LogBook::new("b");
        let mut flow = FlowDetail::new("f");
        flow.atom_details
            .push(AtomDetail::new("a", taskflow_patterns::AtomKind::Task));
        book.flow_details.push(flow.clone());
        b.save_logbook(&book).unwrap();
        b.update_atom_state(
            flow.uuid,
            flow.atom_details[0].uuid,
            AtomState::Running,
            Intention::Execute,
            Epoch::ZERO,
        )
        .unwrap();
        let mut stack = vec![b.root().to_path_buf()];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with(TEMP_PREFIX), "{name}");
                if entry.file_type().unwrap().is_dir() {
                    stack.push(entry.path());
                } else {
                    files += 1;
                }
            }
        }
        // FORMAT, logbook, flow header, atom.
        assert_eq!(files, 4);
    }

    #[test]
    fn ignores_interrupted_writes_when_listing() {
        let store = fresh();
        let b = &store.backend;
        let book = LogBook::new("b");
        b.save_logbook(&book).unwrap();
        fs::write(
            b.root()
                .join("logbooks")
                .join(format!("{TEMP_PREFIX}x.json-123")),
            b"{\"trunc",
        )
        .unwrap();
        assert_eq!(crate::testkit::listed(b), vec![book]);
    }

    #[test]
    fn one_corrupt_logbook_leaves_the_others_listed() {
        let truncate = |path: PathBuf| {
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        };
        // What to break in the victim, what the error then says.
        type Break = fn(&DirBackend, &LogBook) -> PathBuf;
        let cases: [(Break, &str, bool); 4] = [
            (|b, v| b.book_path(v.uuid), "EOF", true),
            (|b, v| b.flow_path(v.flow_details[0].uuid), "EOF", true),
            (
                |b, v| {
                    b.atom_path(
                        v.flow_details[1].uuid,
                        v.flow_details[1].atom_details[2].uuid,
                    )
                },
                "EOF",
                true,
            ),
            (|b, v| b.flow_path(v.flow_details[1].uuid), "missing", false),
        ];
        for (path, reason, truncated) in cases {
            let store = fresh();
            let b = &store.backend;
            crate::testkit::one_corrupt_logbook_leaves_the_others_listed(b, reason, |victim| {
                let path = path(b, victim);
                if truncated {
                    truncate(path);
                } else {
                    fs::remove_file(path).unwrap();
                }
            });
        }
        // A stray file among the logbooks is an error of its own.
        let store = fresh();
        let b = &store.backend;
        let book = LogBook::new("b");
        b.save_logbook(&book).unwrap();
        fs::write(b.root().join("logbooks").join("notes.txt"), b"hi").unwrap();
        let listed = b.list_logbooks().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].as_ref().unwrap(), &book);
        let err = listed[1].as_ref().unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
