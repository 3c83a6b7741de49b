//! The directory backend: files corrupted, removed or misplaced behind its
//! back, and its format version.

use std::fs;
use std::path::{Path, PathBuf};

use taskflow_patterns::{AtomState, Intention};
use taskflow_persistence::{
    AtomDetail, Backend, DirBackend, FlowDetail, LogBook, PersistenceError, RecordKind,
};

use crate::support::{assert_corrupt, listed, listed_error, one_atom_book};
use taskflow_persistence::Epoch;

struct Store {
    _dir: tempfile::TempDir,
    root: PathBuf,
    backend: DirBackend,
    book: LogBook,
    flow: FlowDetail,
    atom: AtomDetail,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let backend = DirBackend::open(&root).unwrap();
        let (book, flow, atom) = one_atom_book();
        backend.save_logbook(&book).unwrap();
        Store {
            _dir: dir,
            root,
            backend,
            book,
            flow,
            atom,
        }
    }

    fn book_file(&self) -> PathBuf {
        self.root
            .join("logbooks")
            .join(format!("{}.json", self.book.uuid))
    }

    fn flow_dir(&self) -> PathBuf {
        self.root.join("flows").join(self.flow.uuid.to_string())
    }

    fn atom_file(&self) -> PathBuf {
        self.flow_dir()
            .join("atoms")
            .join(format!("{}.json", self.atom.uuid))
    }

    /// Every read that reaches the atom fails naming it.
    fn atom_reads_fail(&self, reason: &str) {
        let b = &self.backend;
        let id = self.atom.uuid.to_string();
        let kind = RecordKind::AtomDetail;
        assert_corrupt(
            b.get_atom_detail(self.flow.uuid, self.atom.uuid)
                .unwrap_err(),
            kind,
            &id,
            reason,
        );
        assert_corrupt(
            b.get_flow_detail(self.flow.uuid).unwrap_err(),
            kind,
            &id,
            reason,
        );
        assert_corrupt(
            b.get_logbook(self.book.uuid).unwrap_err(),
            kind,
            &id,
            reason,
        );
        assert_corrupt(listed_error(b), kind, &id, reason);
    }
}

fn truncate(path: &Path) {
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

fn replace(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} in {text}");
    fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn layout_is_as_documented() {
    let s = Store::new();
    assert!(s.root.join("FORMAT.json").is_file());
    assert!(s.book_file().is_file());
    assert!(s.flow_dir().join("flow.json").is_file());
    assert!(s.atom_file().is_file());
    let atom: AtomDetail = serde_json::from_slice(&fs::read(s.atom_file()).unwrap()).unwrap();
    assert_eq!(atom, s.atom);
}

#[test]
fn truncated_atom_file_is_corrupt_naming_the_atom() {
    let s = Store::new();
    truncate(&s.atom_file());
    s.atom_reads_fail("EOF");
}

#[test]
fn empty_atom_file_is_corrupt() {
    let s = Store::new();
    fs::write(s.atom_file(), b"").unwrap();
    s.atom_reads_fail("EOF");
}

#[test]
fn unknown_atom_state_is_corrupt_naming_the_atom() {
    let s = Store::new();
    replace(&s.atom_file(), "\"SUCCESS\"", "\"EXPLODED\"");
    s.atom_reads_fail("EXPLODED");
    // Saving the atom again repairs it.
    s.backend
        .save_atom_detail(s.flow.uuid, &s.atom, Epoch::ZERO)
        .unwrap();
    assert_eq!(s.backend.get_logbook(s.book.uuid).unwrap(), s.book);
}

#[test]
fn update_of_a_corrupt_atom_is_refused() {
    let s = Store::new();
    truncate(&s.atom_file());
    let err = s
        .backend
        .update_atom_state(
            s.flow.uuid,
            s.atom.uuid,
            AtomState::Running,
            Intention::Execute,
            Epoch::ZERO,
        )
        .unwrap_err();
    assert_corrupt(err, RecordKind::AtomDetail, &s.atom.uuid.to_string(), "EOF");
}

#[test]
fn missing_atom_file_is_corrupt_naming_the_atom() {
    let s = Store::new();
    fs::remove_file(s.atom_file()).unwrap();
    s.atom_reads_fail("missing");
}

#[test]
fn atom_file_of_another_atom_is_corrupt() {
    let s = Store::new();
    let other = AtomDetail::new("other", taskflow_patterns::AtomKind::Task);
    fs::write(s.atom_file(), serde_json::to_vec(&other).unwrap()).unwrap();
    s.atom_reads_fail(&other.uuid.to_string());
}

#[test]
fn missing_flow_is_corrupt_naming_the_flow() {
    let s = Store::new();
    fs::remove_dir_all(s.flow_dir()).unwrap();
    let id = s.flow.uuid.to_string();
    let kind = RecordKind::FlowDetail;
    assert_corrupt(
        s.backend.get_logbook(s.book.uuid).unwrap_err(),
        kind,
        &id,
        "missing",
    );
    assert_corrupt(listed_error(&s.backend), kind, &id, "missing");
    assert!(s
        .backend
        .get_flow_detail(s.flow.uuid)
        .unwrap_err()
        .is_not_found());
}

#[test]
fn corrupt_flow_header_is_corrupt_naming_the_flow() {
    let s = Store::new();
    let header = s.flow_dir().join("flow.json");
    replace(&header, "\"PENDING\"", "\"WEIRD\"");
    let id = s.flow.uuid.to_string();
    let kind = RecordKind::FlowDetail;
    assert_corrupt(
        s.backend.get_flow_detail(s.flow.uuid).unwrap_err(),
        kind,
        &id,
        "WEIRD",
    );
    assert_corrupt(
        s.backend.get_logbook(s.book.uuid).unwrap_err(),
        kind,
        &id,
        "WEIRD",
    );
    let err = s
        .backend
        .update_flow_state(
            s.flow.uuid,
            taskflow_patterns::FlowState::Running,
            Epoch::ZERO,
        )
        .unwrap_err();
    assert_corrupt(err, kind, &id, "WEIRD");
}

#[test]
fn flow_claimed_by_another_logbook_is_corrupt() {
    let s = Store::new();
    let other = LogBook::new("other");
    s.backend.save_logbook(&other).unwrap();
    replace(
        &s.flow_dir().join("flow.json"),
        &s.book.uuid.to_string(),
        &other.uuid.to_string(),
    );
    assert_corrupt(
        s.backend.get_logbook(s.book.uuid).unwrap_err(),
        RecordKind::FlowDetail,
        &s.flow.uuid.to_string(),
        "belongs to logbook",
    );
}

#[test]
fn truncated_logbook_is_corrupt_naming_the_logbook() {
    let s = Store::new();
    truncate(&s.book_file());
    let id = s.book.uuid.to_string();
    let kind = RecordKind::LogBook;
    assert_corrupt(
        s.backend.get_logbook(s.book.uuid).unwrap_err(),
        kind,
        &id,
        "EOF",
    );
    assert_corrupt(listed_error(&s.backend), kind, &id, "EOF");
    assert_corrupt(
        s.backend
            .save_flow_detail(s.book.uuid, &FlowDetail::new("g"))
            .unwrap_err(),
        kind,
        &id,
        "EOF",
    );
}

#[test]
fn stray_file_among_logbooks_is_reported() {
    let s = Store::new();
    fs::write(s.root.join("logbooks").join("notes.txt"), b"hello").unwrap();
    assert_corrupt(
        listed_error(&s.backend),
        RecordKind::LogBook,
        "notes.txt",
        "unexpected file",
    );
}

#[test]
fn newer_format_is_refused() {
    let s = Store::new();
    fs::write(
        s.root.join("FORMAT.json"),
        br#"{"format": "taskflow-dir", "version": 3}"#,
    )
    .unwrap();
    let err = DirBackend::open(&s.root).unwrap_err();
    assert!(
        matches!(
            &err,
            PersistenceError::SchemaTooNew {
                backend: "dir",
                found: 3,
                supported: DirBackend::FORMAT_VERSION,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn foreign_format_is_refused() {
    let s = Store::new();
    fs::write(
        s.root.join("FORMAT.json"),
        br#"{"format": "other", "version": 1}"#,
    )
    .unwrap();
    let err = DirBackend::open(&s.root).unwrap_err();
    assert!(err.to_string().contains("\"other\""), "{err}");
    fs::write(s.root.join("FORMAT.json"), b"{").unwrap();
    assert!(DirBackend::open(&s.root).is_err());
}

#[test]
fn reopening_reads_what_was_written() {
    let s = Store::new();
    let again = DirBackend::open(&s.root).unwrap();
    assert_eq!(listed(&again), vec![s.book.clone()]);
}

/// `n` opening brackets: a record too deep for any reader, as a bug or an
/// attacker might write it.
fn brackets(n: usize) -> String {
    "[".repeat(n)
}

#[test]
fn a_record_nested_100_000_levels_deep_is_corrupt_not_an_abort() {
    let s = Store::new();
    fs::write(
        s.atom_file(),
        format!("{{\"result\": {}", brackets(100_000)),
    )
    .unwrap();
    s.atom_reads_fail("nested 100001 levels deep");
    fs::write(
        s.flow_dir().join("flow.json"),
        format!("{{\"meta\": {}", brackets(100_000)),
    )
    .unwrap();
    let id = s.flow.uuid.to_string();
    assert_corrupt(
        s.backend.get_flow_detail(s.flow.uuid).unwrap_err(),
        RecordKind::FlowDetail,
        &id,
        "levels deep",
    );
    fs::write(s.book_file(), brackets(100_000)).unwrap();
    assert_corrupt(
        s.backend.get_logbook(s.book.uuid).unwrap_err(),
        RecordKind::LogBook,
        &s.book.uuid.to_string(),
        "100000 levels deep",
    );
}

#[test]
fn a_store_that_lost_its_format_file_is_refused_not_reinitialised() {
    let s = Store::new();
    fs::remove_file(s.root.join("FORMAT.json")).unwrap();
    let err = DirBackend::open(&s.root).unwrap_err();
    assert!(
        matches!(&err, PersistenceError::Backend { backend: "dir", .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&s.root.display().to_string()) && text.contains("no FORMAT.json"),
        "{text}"
    );
    // Nothing was written: the format is still missing, the records there.
    assert!(!s.root.join("FORMAT.json").exists());
    assert!(s.book_file().is_file());
    // Only flow records left (no logbook) are records too.
    fs::remove_file(s.book_file()).unwrap();
    assert!(DirBackend::open(&s.root).is_err());
}

#[test]
fn a_new_or_empty_directory_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    // Empty, already there.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    DirBackend::open(&empty).unwrap();
    assert!(empty.join("FORMAT.json").is_file());
    // Empty record directories (a first open interrupted) are no records.
    let bare = dir.path().join("bare");
    fs::create_dir_all(bare.join("logbooks")).unwrap();
    fs::create_dir_all(bare.join("flows")).unwrap();
    let backend = DirBackend::open(&bare).unwrap();
    let book = LogBook::new("b");
    backend.save_logbook(&book).unwrap();
    assert_eq!(listed(&backend), vec![book]);
    // New, with missing parents.
    DirBackend::open(dir.path().join("a/b/c")).unwrap();
}
