//! The conformance suite every [`Backend`] passes. Each case takes a fresh,
//! empty backend; [`backend_conformance!`](crate::backend_conformance) makes
//! one `#[test]` per case for a backend expression.

use std::sync::Arc;

use serde_json::json;
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, Intention};
use uuid::Uuid;

use crate::{AtomDetail, Backend, FlowDetail, LogBook, PersistenceError, RecordKind};

fn sample_book() -> LogBook {
    let mut book = LogBook::new("book");
    book.meta.insert("owner".into(), json!("tests"));
    for f in 0..2 {
        let mut flow = FlowDetail::new(format!("flow-{f}"));
        flow.meta.insert("store".into(), json!({"x": f}));
        let mut ok = AtomDetail::new("ok", AtomKind::Task);
        ok.state = AtomState::Success;
        ok.result = Some(Arc::new(json!({"id": f, "tags": ["a", "b"]})));
        let mut bad = AtomDetail::new("bad", AtomKind::Task);
        bad.state = AtomState::RevertFailure;
        bad.intention = Intention::Revert;
        bad.failure = Some(Failure::new("Boom", "exploded").with_atom("bad"));
        bad.revert_failure = Some(Failure::new("Stuck", "cannot undo"));
        let mut r = AtomDetail::new("r", AtomKind::Retry);
        r.history.push(json!(1));
        r.history
            .record_failure("bad", Failure::new("Boom", "exploded"));
        flow.atom_details = vec![ok, bad, r];
        book.flow_details.push(flow);
    }
    book
}

/// A logbook saved with its flows and atoms loads back equal.
pub fn logbook_round_trip(b: &dyn Backend) {
    let book = sample_book();
    b.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert_eq!(
        b.get_flow_detail(book.flow_details[1].uuid).unwrap(),
        book.flow_details[1]
    );
}

/// Saving a logbook again updates it and keeps its flows.
pub fn save_logbook_updates(b: &dyn Backend) {
    let mut book = sample_book();
    b.save_logbook(&book).unwrap();
    book.name = "renamed".into();
    book.updated_at += 1;
    let flows = std::mem::take(&mut book.flow_details);
    b.save_logbook(&book).unwrap();
    let got = b.get_logbook(book.uuid).unwrap();
    assert_eq!(got.name, "renamed");
    assert_eq!(got.flow_details, flows);
}

/// Listing returns every logbook saved.
pub fn list_logbooks(b: &dyn Backend) {
    let books: Vec<LogBook> = (0..3).map(|i| LogBook::new(format!("b{i}"))).collect();
    for book in &books {
        b.save_logbook(book).unwrap();
    }
    let listed = b.list_logbooks().unwrap();
    for book in &books {
        assert!(
            listed.iter().any(|l| l.uuid == book.uuid),
            "{} listed",
            book.name
        );
    }
}

/// Destroying a logbook removes it and its flow details.
pub fn destroy_logbook(b: &dyn Backend) {
    let book = sample_book();
    b.save_logbook(&book).unwrap();
    b.destroy_logbook(book.uuid).unwrap();
    let err = b.get_logbook(book.uuid).unwrap_err();
    assert!(
        matches!(err, PersistenceError::NotFound { kind: RecordKind::LogBook, id } if id == book.uuid)
    );
    assert!(b
        .get_flow_detail(book.flow_details[0].uuid)
        .unwrap_err()
        .is_not_found());
    assert!(b.destroy_logbook(book.uuid).unwrap_err().is_not_found());
}

/// Flow details are saved into a logbook, updated and destroyed.
pub fn flow_detail_lifecycle(b: &dyn Backend) {
    let book = LogBook::new("b");
    b.save_logbook(&book).unwrap();
    let mut flow = FlowDetail::new("f");
    flow.atom_details.push(AtomDetail::new("a", AtomKind::Task));
    b.save_flow_detail(book.uuid, &flow).unwrap();
    b.update_flow_state(flow.uuid, FlowState::Running).unwrap();
    flow.state = FlowState::Running;
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), flow);
    assert_eq!(
        b.get_logbook(book.uuid).unwrap().flow_details,
        vec![flow.clone()]
    );
    b.destroy_flow_detail(flow.uuid).unwrap();
    assert!(b.get_flow_detail(flow.uuid).unwrap_err().is_not_found());
    assert!(b.get_logbook(book.uuid).unwrap().flow_details.is_empty());
}

/// A flow detail cannot be saved into a logbook that does not exist.
pub fn flow_detail_needs_its_logbook(b: &dyn Backend) {
    let missing = uuid::Uuid::new_v4();
    let err = b
        .save_flow_detail(missing, &FlowDetail::new("f"))
        .unwrap_err();
    assert!(
        matches!(err, PersistenceError::NotFound { kind: RecordKind::LogBook, id } if id == missing),
        "{err}"
    );
}

/// Atom details are inserted, state-updated without losing data, replaced.
pub fn atom_detail_lifecycle(b: &dyn Backend) {
    let book = LogBook::new("b");
    b.save_logbook(&book).unwrap();
    let flow = FlowDetail::new("f");
    b.save_flow_detail(book.uuid, &flow).unwrap();
    let mut atom = AtomDetail::new("a", AtomKind::Task);
    b.save_atom_detail(flow.uuid, &atom).unwrap();
    atom.state = AtomState::Success;
    atom.result = Some(Arc::new(json!([1, 2, 3])));
    b.save_atom_detail(flow.uuid, &atom).unwrap();
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Reverting,
        Intention::Revert,
    )
    .unwrap();
    let got = b.get_atom_detail(flow.uuid, atom.uuid).unwrap();
    assert_eq!(got.state, AtomState::Reverting);
    assert_eq!(got.intention, Intention::Revert);
    assert_eq!(got.result, atom.result);
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap().atom_details.len(), 1);
    let err = b
        .update_atom_state(
            flow.uuid,
            uuid::Uuid::new_v4(),
            AtomState::Running,
            Intention::Execute,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            PersistenceError::NotFound {
                kind: RecordKind::AtomDetail,
                ..
            }
        ),
        "{err}"
    );
    let err = b.save_atom_detail(uuid::Uuid::new_v4(), &atom).unwrap_err();
    assert!(
        matches!(
            err,
            PersistenceError::NotFound {
                kind: RecordKind::FlowDetail,
                ..
            }
        ),
        "{err}"
    );
}

/// Atom details keep the order they were first saved in.
pub fn atom_details_keep_their_order(b: &dyn Backend) {
    let book = LogBook::new("b");
    b.save_logbook(&book).unwrap();
    let flow = FlowDetail::new("f");
    b.save_flow_detail(book.uuid, &flow).unwrap();
    let atoms: Vec<AtomDetail> = (0..20)
        .map(|i| AtomDetail::new(format!("a{i:02}"), AtomKind::Task))
        .collect();
    for a in atoms.iter().rev() {
        b.save_atom_detail(flow.uuid, a).unwrap();
    }
    let names: Vec<String> = b
        .get_flow_detail(flow.uuid)
        .unwrap()
        .atom_details
        .into_iter()
        .map(|a| a.name)
        .collect();
    let expected: Vec<String> = atoms.iter().rev().map(|a| a.name.clone()).collect();
    assert_eq!(names, expected);
}

/// Values of a few MiB round-trip intact.
pub fn large_values(b: &dyn Backend) {
    let mut book = LogBook::new("big");
    let mut flow = FlowDetail::new("f");
    let mut atom = AtomDetail::new("a", AtomKind::Task);
    let big = "x".repeat(3 << 20);
    atom.result = Some(Arc::new(json!({ "blob": big, "n": [1.5, -2, null] })));
    flow.atom_details.push(atom);
    book.flow_details.push(flow);
    b.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
}

/// Eight threads writing atoms into one flow lose none of them.
pub fn concurrent_writers(b: &(dyn Backend + Sync)) {
    let book = LogBook::new("b");
    b.save_logbook(&book).unwrap();
    let flow = FlowDetail::new("f");
    b.save_flow_detail(book.uuid, &flow).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..50 {
                    let mut a = AtomDetail::new(format!("t{t}-{i}"), AtomKind::Task);
                    b.save_atom_detail(flow.uuid, &a).unwrap();
                    a.state = AtomState::Success;
                    a.result = Some(Arc::new(json!(i)));
                    b.save_atom_detail(flow.uuid, &a).unwrap();
                }
            });
        }
    });
    let got = b.get_flow_detail(flow.uuid).unwrap();
    assert_eq!(got.atom_details.len(), 400);
    assert!(got
        .atom_details
        .iter()
        .all(|a| a.state == AtomState::Success));
}

/// Reads, updates and destroys of records that do not exist are `NotFound`
/// naming the missing record (the flow when the flow is missing, the atom
/// when only the atom is).
pub fn missing_records_are_not_found(b: &dyn Backend) {
    fn is(err: PersistenceError, kind: RecordKind, id: Uuid) {
        assert!(
            matches!(&err, PersistenceError::NotFound { kind: k, id: i } if *k == kind && *i == id),
            "expected {kind} {id} not found, got {err}"
        );
    }
    let (book, flow, atom) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    is(b.get_logbook(book).unwrap_err(), RecordKind::LogBook, book);
    is(
        b.get_flow_detail(flow).unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.update_flow_state(flow, FlowState::Running).unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.destroy_flow_detail(flow).unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.get_atom_detail(flow, atom).unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.update_atom_state(flow, atom, AtomState::Running, Intention::Execute)
            .unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    let real = sample_book();
    b.save_logbook(&real).unwrap();
    let real_flow = real.flow_details[0].uuid;
    is(
        b.get_atom_detail(real_flow, atom).unwrap_err(),
        RecordKind::AtomDetail,
        atom,
    );
    is(
        b.update_atom_state(real_flow, atom, AtomState::Running, Intention::Execute)
            .unwrap_err(),
        RecordKind::AtomDetail,
        atom,
    );
    // Nothing was created by the failed calls.
    assert_eq!(b.list_logbooks().unwrap(), vec![real]);
}

/// Saving a flow detail again replaces its atom details with the ones given,
/// in the order given.
pub fn save_flow_detail_replaces_its_atoms(b: &dyn Backend) {
    let book = LogBook::new("b");
    b.save_logbook(&book).unwrap();
    let mut flow = FlowDetail::new("f");
    let atoms: Vec<AtomDetail> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|n| AtomDetail::new(n, AtomKind::Task))
        .collect();
    flow.atom_details = atoms[..3].to_vec();
    b.save_flow_detail(book.uuid, &flow).unwrap();
    flow.atom_details = vec![atoms[3].clone(), atoms[1].clone()];
    flow.atom_details[1].state = AtomState::Running;
    flow.state = FlowState::Running;
    b.save_flow_detail(book.uuid, &flow).unwrap();
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), flow);
    assert!(b
        .get_atom_detail(flow.uuid, atoms[0].uuid)
        .unwrap_err()
        .is_not_found());
    assert_eq!(b.get_logbook(book.uuid).unwrap().flow_details, vec![flow]);
}

/// Destroying one flow detail leaves the other flows of its logbook alone.
pub fn destroy_flow_detail_leaves_siblings(b: &dyn Backend) {
    let mut book = sample_book();
    b.save_logbook(&book).unwrap();
    let gone = book.flow_details.remove(0);
    b.destroy_flow_detail(gone.uuid).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert!(b
        .get_atom_detail(gone.uuid, gone.atom_details[0].uuid)
        .unwrap_err()
        .is_not_found());
}

/// Logbooks are listed by creation time (then id), each with its flows.
pub fn logbooks_listed_in_creation_order(b: &dyn Backend) {
    let mut books = Vec::new();
    for (i, created) in [30u64, 10, 20, 10].into_iter().enumerate() {
        let mut book = LogBook::new(format!("b{i}"));
        book.created_at = created;
        book.updated_at = created + 1;
        let mut flow = FlowDetail::new(format!("f{i}"));
        flow.atom_details.push(AtomDetail::new("a", AtomKind::Task));
        book.flow_details.push(flow);
        b.save_logbook(&book).unwrap();
        books.push(book);
    }
    books.sort_by_key(|b| (b.created_at, b.uuid));
    assert_eq!(b.list_logbooks().unwrap(), books);
}

/// Awkward values survive storage: Unicode, quotes and escapes, NUL inside
/// JSON strings, extreme integers and floats, empty and nested structures.
pub fn awkward_values(b: &dyn Backend) {
    let mut book = LogBook::new("b\u{e9}\u{1f600} 'quoted' \"double\" \\ back");
    book.meta.insert(String::new(), json!({}));
    book.meta
        .insert("nested".into(), json!([[[]], {"a": {"b": null}}]));
    let mut flow = FlowDetail::new("");
    flow.meta
        .insert("x".into(), json!("line\nbreak\ttab\u{0}nul"));
    let mut atom = AtomDetail::new("\u{65e5}\u{672c}", AtomKind::Retry);
    atom.result = Some(Arc::new(json!({
        "u64": u64::MAX,
        "i64": i64::MIN,
        "floats": [0.1, 1.0 / 3.0, 1e308, 5e-324, 2.225_073_858_507_201_4e-308, -1.5e-7, 123_456_789.123_456_79],
        "nul": "a\u{0}b",
        "empty": "",
    })));
    atom.meta.insert("progress".into(), json!(0.75));
    flow.atom_details.push(atom);
    book.flow_details.push(flow);
    b.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert_eq!(b.list_logbooks().unwrap(), vec![book]);
}

/// Makes one `#[test]` per conformance case, each on a fresh backend built by
/// the expression given (called once per test).
///
/// ```ignore
/// taskflow_persistence::backend_conformance!(MemoryBackend::new());
/// ```
#[macro_export]
macro_rules! backend_conformance {
    ($make:expr) => {
        $crate::backend_conformance!(@cases $make;
            logbook_round_trip save_logbook_updates list_logbooks destroy_logbook
            flow_detail_lifecycle flow_detail_needs_its_logbook atom_detail_lifecycle
            atom_details_keep_their_order large_values concurrent_writers
            missing_records_are_not_found save_flow_detail_replaces_its_atoms
            destroy_flow_detail_leaves_siblings logbooks_listed_in_creation_order
            awkward_values);
    };
    (@cases $make:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                #[allow(clippy::redundant_closure_call)]
                if let Some(backend) = $crate::testkit::Available::available($make) {
                    $crate::testkit::$case(&backend);
                }
            }
        )*
    };
}

/// What a backend expression in [`backend_conformance!`] may give: a backend,
/// or `None` when its server is unreachable (the test is then skipped,
/// having said so).
pub trait Available {
    /// The backend type.
    type Backend: Backend + Sync;
    /// The backend, if there is one to test.
    fn available(self) -> Option<Self::Backend>;
}

impl<B: Backend + Sync> Available for B {
    type Backend = B;
    fn available(self) -> Option<B> {
        Some(self)
    }
}

/// `None` stands for a backend whose server is unreachable: the test is
/// skipped (the expression that made it says why).
impl<B: Backend + Sync> Available for Option<B> {
    type Backend = B;
    fn available(self) -> Option<B> {
        self
    }
}

/// A backend together with what must live as long as it in a test: the
/// temporary directory holding its files, or a guard that drops its schema.
/// The backend is dropped first, then the guard.
#[derive(Debug)]
pub struct WithGuard<B, G> {
    /// The backend under test.
    pub backend: B,
    /// Kept alive until after the backend is dropped.
    pub guard: G,
}

impl<B: Backend, G: Send + Sync> Backend for WithGuard<B, G> {
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        self.backend.save_logbook(book)
    }
    fn get_logbook(&self, id: Uuid) -> Result<LogBook, PersistenceError> {
        self.backend.get_logbook(id)
    }
    fn list_logbooks(&self) -> Result<Vec<LogBook>, PersistenceError> {
        self.backend.list_logbooks()
    }
    fn destroy_logbook(&self, id: Uuid) -> Result<(), PersistenceError> {
        self.backend.destroy_logbook(id)
    }
    fn save_flow_detail(&self, book: Uuid, flow: &FlowDetail) -> Result<(), PersistenceError> {
        self.backend.save_flow_detail(book, flow)
    }
    fn get_flow_detail(&self, id: Uuid) -> Result<FlowDetail, PersistenceError> {
        self.backend.get_flow_detail(id)
    }
    fn update_flow_state(&self, flow: Uuid, state: FlowState) -> Result<(), PersistenceError> {
        self.backend.update_flow_state(flow, state)
    }
    fn destroy_flow_detail(&self, id: Uuid) -> Result<(), PersistenceError> {
        self.backend.destroy_flow_detail(id)
    }
    fn save_atom_detail(&self, flow: Uuid, atom: &AtomDetail) -> Result<(), PersistenceError> {
        self.backend.save_atom_detail(flow, atom)
    }
    fn update_atom_state(
        &self,
        flow: Uuid,
        atom: Uuid,
        state: AtomState,
        intention: Intention,
    ) -> Result<(), PersistenceError> {
        self.backend.update_atom_state(flow, atom, state, intention)
    }
    fn get_atom_detail(&self, flow: Uuid, atom: Uuid) -> Result<AtomDetail, PersistenceError> {
        self.backend.get_atom_detail(flow, atom)
    }
}
