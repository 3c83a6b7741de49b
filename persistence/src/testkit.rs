//! The conformance suite every [`Backend`] passes. Each case takes a fresh,
//! empty backend; [`backend_conformance!`](crate::backend_conformance) makes
//! one `#[test]` per case for a backend expression.

use std::sync::Arc;

use serde_json::{json, Value};
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, Intention, Name};
use uuid::Uuid;

use crate::{
    AtomDetail, AtomDetailId, AtomWrite, Backend, Epoch, FlowDetail, FlowDetailId, LogBook,
    LogBookId, PersistenceError, RecordKind,
};

fn sample_book() -> LogBook {
    let mut book = LogBook::new("book");
    book.meta.insert("owner".into(), json!("tests"));
    for f in 0..2 {
        let mut flow = FlowDetail::new(format!("flow-{f}"));
        flow.run.store.insert("x".into(), json!(f));
        let mut ok = AtomDetail::new("ok", AtomKind::Task);
        ok.state = AtomState::Success;
        ok.result = Some(Arc::new(json!({"id": f, "tags": ["a", "b"]})));
        let mut bad = AtomDetail::new("bad", AtomKind::Task);
        bad.state = AtomState::RevertFailure;
        bad.intention = Intention::Revert;
        bad.set_failure(Some(Failure::new("Boom", "exploded").with_atom("bad")));
        bad.set_revert_failure(Some(Failure::new("Stuck", "cannot undo")));
        let mut r = AtomDetail::new("r", AtomKind::Retry);
        r.history_mut().push(json!(1));
        r.history_mut()
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

/// Every logbook `b` lists, each read whole: panics naming the first one
/// that cannot be read.
#[track_caller]
pub fn listed(b: &dyn Backend) -> Vec<LogBook> {
    b.list_logbooks()
        .unwrap()
        .into_iter()
        .map(|book| book.unwrap_or_else(|e| panic!("a logbook listed cannot be read: {e}")))
        .collect()
}

/// Listing returns every logbook saved.
pub fn list_logbooks(b: &dyn Backend) {
    let books: Vec<LogBook> = (0..3).map(|i| LogBook::new(format!("b{i}"))).collect();
    for book in &books {
        b.save_logbook(book).unwrap();
    }
    let listed = listed(b);
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
    b.update_flow_state(flow.uuid, FlowState::Running, Epoch::ZERO)
        .unwrap();
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
        .save_flow_detail(LogBookId::from(missing), &FlowDetail::new("f"))
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
    b.save_atom_detail(flow.uuid, &atom, Epoch::ZERO).unwrap();
    atom.state = AtomState::Success;
    atom.result = Some(Arc::new(json!([1, 2, 3])));
    b.save_atom_detail(flow.uuid, &atom, Epoch::ZERO).unwrap();
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Reverting,
        Intention::Revert,
        Epoch::ZERO,
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
            AtomDetailId::new(),
            AtomState::Running,
            Intention::Execute,
            Epoch::ZERO,
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
    let err = b
        .save_atom_detail(FlowDetailId::new(), &atom, Epoch::ZERO)
        .unwrap_err();
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
        b.save_atom_detail(flow.uuid, a, Epoch::ZERO).unwrap();
    }
    let names: Vec<Name> = b
        .get_flow_detail(flow.uuid)
        .unwrap()
        .atom_details
        .into_iter()
        .map(|a| a.name)
        .collect();
    let expected: Vec<Name> = atoms.iter().rev().map(|a| a.name.clone()).collect();
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
                    b.save_atom_detail(flow.uuid, &a, Epoch::ZERO).unwrap();
                    a.state = AtomState::Success;
                    a.result = Some(Arc::new(json!(i)));
                    b.save_atom_detail(flow.uuid, &a, Epoch::ZERO).unwrap();
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
    is(
        b.get_logbook(LogBookId::from(book)).unwrap_err(),
        RecordKind::LogBook,
        book,
    );
    is(
        b.get_flow_detail(FlowDetailId::from(flow)).unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.update_flow_state(FlowDetailId::from(flow), FlowState::Running, Epoch::ZERO)
            .unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.destroy_flow_detail(FlowDetailId::from(flow)).unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.get_atom_detail(FlowDetailId::from(flow), AtomDetailId::from(atom))
            .unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    is(
        b.update_atom_state(
            FlowDetailId::from(flow),
            AtomDetailId::from(atom),
            AtomState::Running,
            Intention::Execute,
            Epoch::ZERO,
        )
        .unwrap_err(),
        RecordKind::FlowDetail,
        flow,
    );
    let real = sample_book();
    b.save_logbook(&real).unwrap();
    let real_flow = real.flow_details[0].uuid;
    is(
        b.get_atom_detail(real_flow, AtomDetailId::from(atom))
            .unwrap_err(),
        RecordKind::AtomDetail,
        atom,
    );
    is(
        b.update_atom_state(
            real_flow,
            AtomDetailId::from(atom),
            AtomState::Running,
            Intention::Execute,
            Epoch::ZERO,
        )
        .unwrap_err(),
        RecordKind::AtomDetail,
        atom,
    );
    // Nothing was created by the failed calls.
    assert_eq!(listed(b), vec![real]);
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
    assert_eq!(listed(b), books);
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
    atom.meta_mut().insert("progress".into(), json!(0.75));
    flow.atom_details.push(atom);
    book.flow_details.push(flow);
    b.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert_eq!(listed(b), vec![book]);
}

/// What an atom's revert returned (TaskFlow's `revert_results`) is stored
/// by every write (a logbook, a flow detail, an atom detail) and read back
/// by every read (atom detail, flow detail, logbook, listing); a state
/// update leaves it alone, a save replaces or clears it, and an atom never
/// reverted reads back `None`.
pub fn revert_results_round_trip(b: &dyn Backend) {
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let mut undone = AtomDetail::new("undone", AtomKind::Task);
    undone.state = AtomState::Reverted;
    undone.intention = Intention::Revert;
    undone.result = Some(Arc::new(json!({"id": "vol-1"})));
    undone.set_revert_result(Some(Arc::new(
        json!({"deleted": "vol-1", "took": [12.5, "ms"]}),
    )));
    let mut failed = AtomDetail::new("failed", AtomKind::Task);
    failed.state = AtomState::Reverted;
    failed.set_failure(Some(Failure::new("Boom", "exploded")));
    failed.set_revert_result(Some(Arc::new(json!("cleaned up"))));
    let untouched = AtomDetail::new("untouched", AtomKind::Task);
    flow.atom_details = vec![undone.clone(), failed, untouched.clone()];
    book.flow_details.push(flow.clone());
    b.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), flow);
    assert_eq!(listed(b), vec![book.clone()]);
    for atom in &flow.atom_details {
        assert_eq!(b.get_atom_detail(flow.uuid, atom.uuid).unwrap(), *atom);
    }
    assert_eq!(
        b.get_atom_detail(flow.uuid, untouched.uuid)
            .unwrap()
            .revert_result(),
        None
    );

    // Saved piece by piece, as the engine does.
    let mut other = FlowDetail::new("g");
    b.save_flow_detail(book.uuid, &other).unwrap();
    let mut atom = undone.clone();
    atom.uuid = AtomDetailId::new();
    b.save_atom_detail(other.uuid, &atom, Epoch::ZERO).unwrap();
    assert_eq!(b.get_atom_detail(other.uuid, atom.uuid).unwrap(), atom);
    b.update_atom_state(
        other.uuid,
        atom.uuid,
        AtomState::Pending,
        Intention::Execute,
        Epoch::ZERO,
    )
    .unwrap();
    (atom.state, atom.intention) = (AtomState::Pending, Intention::Execute);
    assert_eq!(b.get_atom_detail(other.uuid, atom.uuid).unwrap(), atom);
    atom.set_revert_result(Some(Arc::new(json!({"second": true}))));
    b.save_atom_detail(other.uuid, &atom, Epoch::ZERO).unwrap();
    assert_eq!(b.get_atom_detail(other.uuid, atom.uuid).unwrap(), atom);
    other.atom_details = vec![atom.clone()];
    assert_eq!(b.get_flow_detail(other.uuid).unwrap(), other);
    book.flow_details.push(other.clone());
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
    assert_eq!(listed(b), vec![book.clone()]);
    atom.set_revert_result(None);
    b.save_atom_detail(other.uuid, &atom, Epoch::ZERO).unwrap();
    assert_eq!(
        b.get_atom_detail(other.uuid, atom.uuid)
            .unwrap()
            .revert_result(),
        None
    );
}

/// A logbook holding one flow detail with one atom detail, saved.
fn saved_flow(b: &dyn Backend) -> (FlowDetail, AtomDetail) {
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let mut atom = AtomDetail::new("a", AtomKind::Task);
    atom.result = Some(Arc::new(json!({"n": 1})));
    flow.atom_details.push(atom.clone());
    book.flow_details.push(flow.clone());
    b.save_logbook(&book).unwrap();
    (flow, atom)
}

/// Asserts `err` is `Fenced` for `flow`, held at `held`, presented `presented`,
/// and that its message names all three.
#[track_caller]
fn assert_fenced(err: PersistenceError, flow: Uuid, held: u64, presented: u64) {
    assert!(
        matches!(&err, PersistenceError::Fenced { flow: f, held: h, presented: p }
            if *f == flow && *h == Epoch::new(held) && *p == Epoch::new(presented)),
        "expected flow detail {flow} fenced at {held} against {presented}, got {err}"
    );
    assert!(err.is_fenced());
    let text = err.to_string();
    for part in [
        flow.to_string(),
        format!("epoch {held}"),
        format!("epoch {presented}"),
    ] {
        assert!(text.contains(&part), "{text} names {part}");
    }
}

/// A flow detail starts at epoch 0; a fence raises its owner epoch (and
/// returns it), a fence at the same epoch is accepted, and a fence below
/// the stored epoch is refused with `Fenced`, leaving it alone.
pub fn fence_raises_the_owner_epoch(b: &dyn Backend) {
    let (flow, _) = saved_flow(b);
    assert_eq!(
        b.get_flow_detail(flow.uuid).unwrap().owner_epoch,
        Epoch::ZERO
    );
    assert_eq!(
        b.fence_flow_detail(flow.uuid, Epoch::new(5)).unwrap(),
        Epoch::new(5)
    );
    assert_eq!(
        b.get_flow_detail(flow.uuid).unwrap().owner_epoch,
        Epoch::new(5)
    );
    assert_eq!(
        b.fence_flow_detail(flow.uuid, Epoch::new(5)).unwrap(),
        Epoch::new(5)
    );
    assert_fenced(
        b.fence_flow_detail(flow.uuid, Epoch::new(3)).unwrap_err(),
        Uuid::from(flow.uuid),
        5,
        3,
    );
    assert_eq!(
        b.fence_flow_detail(flow.uuid, Epoch::new(9)).unwrap(),
        Epoch::new(9)
    );
    let stored = b.get_flow_detail(flow.uuid).unwrap();
    assert_eq!(stored.owner_epoch, Epoch::new(9));
    // Fencing changes nothing else.
    assert_eq!(
        stored,
        FlowDetail {
            owner_epoch: Epoch::new(9),
            ..flow
        }
    );
}

/// Once fenced, every write at a lower epoch is refused with `Fenced`
/// (even one naming an atom that does not exist) and changes nothing.
pub fn stale_writes_are_fenced(b: &dyn Backend) {
    let (flow, atom) = saved_flow(b);
    b.fence_flow_detail(flow.uuid, Epoch::new(7)).unwrap();
    let before = b.get_flow_detail(flow.uuid).unwrap();
    let mut changed = atom.clone();
    changed.state = AtomState::Success;
    changed.result = Some(Arc::new(json!("stale")));
    for stale in [0, 6] {
        assert_fenced(
            b.save_atom_detail(flow.uuid, &changed, Epoch::new(stale))
                .unwrap_err(),
            Uuid::from(flow.uuid),
            7,
            stale,
        );
        assert_fenced(
            b.save_atom_detail(
                flow.uuid,
                &AtomDetail::new("new", AtomKind::Task),
                Epoch::new(stale),
            )
            .unwrap_err(),
            Uuid::from(flow.uuid),
            7,
            stale,
        );
        assert_fenced(
            b.update_atom_state(
                flow.uuid,
                atom.uuid,
                AtomState::Running,
                Intention::Execute,
                Epoch::new(stale),
            )
            .unwrap_err(),
            Uuid::from(flow.uuid),
            7,
            stale,
        );
        assert_fenced(
            b.update_atom_state(
                flow.uuid,
                AtomDetailId::new(),
                AtomState::Running,
                Intention::Execute,
                Epoch::new(stale),
            )
            .unwrap_err(),
            Uuid::from(flow.uuid),
            7,
            stale,
        );
        assert_fenced(
            b.update_flow_state(flow.uuid, FlowState::Running, Epoch::new(stale))
                .unwrap_err(),
            Uuid::from(flow.uuid),
            7,
            stale,
        );
    }
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), before);
}

/// A batch of atom writes lands as the writes one by one would: a whole
/// detail inserted, a state change leaving the data alone, a later write
/// of the same atom over an earlier one; a batch at a stale epoch is
/// refused with `Fenced` and changes nothing.
pub fn batched_atom_writes(b: &dyn Backend) {
    let (flow, atom) = saved_flow(b);
    let mut added = AtomDetail::new("added", AtomKind::Task);
    added.state = AtomState::Success;
    added.result = Some(Arc::new(json!({"v": 2})));
    let mut again = added.clone();
    again.result = Some(Arc::new(json!({"v": 3})));
    b.save_atom_writes(
        flow.uuid,
        &[
            AtomWrite::Detail(&added),
            AtomWrite::State {
                atom: atom.uuid,
                state: AtomState::Running,
                intention: Intention::Execute,
            },
            AtomWrite::Detail(&again),
        ],
        Epoch::ZERO,
    )
    .unwrap();
    let stored = b.get_flow_detail(flow.uuid).unwrap();
    assert_eq!(stored.atom_details.len(), 2);
    let first = b.get_atom_detail(flow.uuid, atom.uuid).unwrap();
    assert_eq!(first.state, AtomState::Running);
    assert_eq!(first.result, atom.result, "a state change keeps the result");
    assert_eq!(b.get_atom_detail(flow.uuid, added.uuid).unwrap(), again);
    // An empty batch writes nothing and succeeds.
    b.save_atom_writes(flow.uuid, &[], Epoch::ZERO).unwrap();

    b.fence_flow_detail(flow.uuid, Epoch::new(7)).unwrap();
    let before = b.get_flow_detail(flow.uuid).unwrap();
    let mut stale = again.clone();
    stale.result = Some(Arc::new(json!("stale")));
    assert_fenced(
        b.save_atom_writes(
            flow.uuid,
            &[
                AtomWrite::Detail(&stale),
                AtomWrite::State {
                    atom: atom.uuid,
                    state: AtomState::Success,
                    intention: Intention::Execute,
                },
            ],
            Epoch::new(6),
        )
        .unwrap_err(),
        Uuid::from(flow.uuid),
        7,
        6,
    );
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), before);
}

/// Batches at one epoch land one after another until the flow detail is
/// taken over, through this backend, between two of them: the next batch
/// at the old epoch is refused with `Fenced` and changes nothing, and
/// batches at the new epoch land (a backend that remembers a checked
/// fence must forget it when the owner changes).
pub fn a_takeover_between_batches_fences_the_next(b: &dyn Backend) {
    let (flow, atom) = saved_flow(b);
    let first = b.take_flow_detail(flow.uuid).unwrap();
    let mut done = atom.clone();
    fn batch(done: &AtomDetail, state: AtomState) -> [AtomWrite<'_>; 2] {
        [
            AtomWrite::Detail(done),
            AtomWrite::State {
                atom: done.uuid,
                state,
                intention: Intention::Execute,
            },
        ]
    }
    for i in 0..3 {
        done.result = Some(Arc::new(json!(i)));
        b.save_atom_writes(flow.uuid, &batch(&done, AtomState::Running), first)
            .unwrap();
    }
    let second = b.take_flow_detail(flow.uuid).unwrap();
    let before = b.get_flow_detail(flow.uuid).unwrap();
    done.result = Some(Arc::new(json!("stale")));
    assert_fenced(
        b.save_atom_writes(flow.uuid, &batch(&done, AtomState::Success), first)
            .unwrap_err(),
        Uuid::from(flow.uuid),
        second.get(),
        first.get(),
    );
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), before);
    done.result = Some(Arc::new(json!("new owner")));
    b.save_atom_writes(flow.uuid, &batch(&done, AtomState::Success), second)
        .unwrap();
    let stored = b.get_atom_detail(flow.uuid, atom.uuid).unwrap();
    assert_eq!(stored.state, AtomState::Success);
    assert_eq!(stored.result.as_deref(), Some(&json!("new owner")));
}

/// State writes land on the atoms they name whatever the order they come
/// in: next to the one written before, near it (back and forth within
/// layers of ten, as an engine running a graph writes them), far from it,
/// and backwards; every record reads back with the state of the pass
/// that wrote it last and keeps its data.
pub fn atom_writes_in_any_order(b: &dyn Backend) {
    const ATOMS: usize = 80;
    let mut book = LogBook::new("orders");
    let mut flow = FlowDetail::new("f");
    for i in 0..ATOMS {
        let mut atom = AtomDetail::new(format!("a{i}"), AtomKind::Task);
        atom.result = Some(Arc::new(json!(i)));
        flow.atom_details.push(atom);
    }
    let ids: Vec<AtomDetailId> = flow.atom_details.iter().map(|a| a.uuid).collect();
    let flow_id = flow.uuid;
    book.flow_details.push(flow);
    b.save_logbook(&book).unwrap();
    let in_order: Vec<usize> = (0..ATOMS).collect();
    // Each layer of ten from its last atom to its first.
    let layers: Vec<usize> = (0..ATOMS).map(|i| i / 10 * 10 + 9 - i % 10).collect();
    // 37 is prime to 80: every atom once, each jump far from the last.
    let far: Vec<usize> = (0..ATOMS).map(|i| i * 37 % ATOMS).collect();
    let backwards: Vec<usize> = (0..ATOMS).rev().collect();
    let passes = [
        (&in_order, AtomState::Running, Intention::Execute),
        (&layers, AtomState::Success, Intention::Execute),
        (&far, AtomState::Reverting, Intention::Revert),
        (&layers, AtomState::Failure, Intention::Execute),
        (&backwards, AtomState::Reverted, Intention::Revert),
        (&far, AtomState::Pending, Intention::Retry),
    ];
    for (pass, (order, state, intention)) in passes.into_iter().enumerate() {
        let writes: Vec<AtomWrite<'_>> = order
            .iter()
            .map(|&i| AtomWrite::State {
                atom: ids[i],
                state,
                intention,
            })
            .collect();
        for batch in writes.chunks(20) {
            b.save_atom_writes(flow_id, batch, Epoch::ZERO).unwrap();
        }
        let stored = b.get_flow_detail(flow_id).unwrap();
        assert_eq!(stored.atom_details.len(), ATOMS);
        for (i, atom) in stored.atom_details.iter().enumerate() {
            assert_eq!(atom.uuid, ids[i], "pass {pass}: the atoms keep their order");
            assert_eq!(
                (atom.state, atom.intention),
                (state, intention),
                "pass {pass}: atom a{i}"
            );
            assert_eq!(
                atom.result,
                Some(Arc::new(json!(i))),
                "pass {pass}: atom a{i}"
            );
        }
    }
}

/// Writes at the stored epoch or a higher one succeed; they do not change
/// the stored epoch (only a fence or a save of the whole flow detail does).
pub fn current_and_newer_epochs_may_write(b: &dyn Backend) {
    let (flow, mut atom) = saved_flow(b);
    b.fence_flow_detail(flow.uuid, Epoch::new(4)).unwrap();
    for epoch in [4, 5] {
        atom.state = AtomState::Success;
        atom.result = Some(Arc::new(json!(epoch)));
        b.save_atom_detail(flow.uuid, &atom, Epoch::new(epoch))
            .unwrap();
        b.update_atom_state(
            flow.uuid,
            atom.uuid,
            AtomState::Reverting,
            Intention::Revert,
            Epoch::new(epoch),
        )
        .unwrap();
        b.update_flow_state(flow.uuid, FlowState::Reverted, Epoch::new(epoch))
            .unwrap();
        let stored = b.get_flow_detail(flow.uuid).unwrap();
        assert_eq!(stored.owner_epoch, Epoch::new(4));
        assert_eq!(stored.state, FlowState::Reverted);
        let got = &stored.atom_details[0];
        assert_eq!(got.state, AtomState::Reverting);
        assert_eq!(got.result.as_deref(), Some(&json!(epoch)));
    }
    let added = AtomDetail::new("added", AtomKind::Task);
    b.save_atom_detail(flow.uuid, &added, Epoch::new(4))
        .unwrap();
    assert_eq!(b.get_atom_detail(flow.uuid, added.uuid).unwrap(), added);
    // Missing records are still `NotFound` for a writer that may write.
    assert!(b
        .update_atom_state(
            flow.uuid,
            AtomDetailId::new(),
            AtomState::Running,
            Intention::Execute,
            Epoch::new(4)
        )
        .unwrap_err()
        .is_not_found());
}

/// Saving a whole flow detail is a write at its own `owner_epoch`: refused
/// with `Fenced` (saving nothing) over a flow detail owned at a higher
/// epoch, through `save_flow_detail` and `save_logbook` alike; accepted at
/// the same or a higher epoch, which it stores.
pub fn saving_a_flow_detail_is_fenced_by_its_epoch(b: &dyn Backend) {
    let mut book = sample_book();
    b.save_logbook(&book).unwrap();
    let id = book.flow_details[1].uuid;
    b.fence_flow_detail(id, Epoch::new(3)).unwrap();
    let before = b.get_logbook(book.uuid).unwrap();
    let mut stale = book.flow_details[1].clone();
    stale.state = FlowState::Running;
    stale.owner_epoch = Epoch::new(2);
    assert_fenced(
        b.save_flow_detail(book.uuid, &stale).unwrap_err(),
        Uuid::from(id),
        3,
        2,
    );
    book.name = "renamed".into();
    book.flow_details[0].state = FlowState::Success;
    book.flow_details[1] = stale.clone();
    assert_fenced(b.save_logbook(&book).unwrap_err(), Uuid::from(id), 3, 2);
    assert_eq!(b.get_logbook(book.uuid).unwrap(), before);
    for epoch in [3, 8] {
        stale.owner_epoch = Epoch::new(epoch);
        b.save_flow_detail(book.uuid, &stale).unwrap();
        assert_eq!(b.get_flow_detail(id).unwrap(), stale);
    }
    book.flow_details[1] = stale;
    b.save_logbook(&book).unwrap();
    assert_eq!(b.get_logbook(book.uuid).unwrap(), book);
}

/// Fencing a flow detail that does not exist is `NotFound` naming it.
pub fn fencing_a_missing_flow_is_not_found(b: &dyn Backend) {
    let missing = Uuid::new_v4();
    let err = b
        .fence_flow_detail(FlowDetailId::from(missing), Epoch::new(1))
        .unwrap_err();
    assert!(
        matches!(err, PersistenceError::NotFound { kind: RecordKind::FlowDetail, id } if id == missing),
        "{err}"
    );
    assert!(listed(b).is_empty());
}

/// Eight threads fencing one flow detail with interleaved epochs: each
/// fence either wins (returns its epoch) or is refused naming a higher
/// one, and the stored epoch ends at the highest.
pub fn concurrent_fences_end_at_the_highest(b: &(dyn Backend + Sync)) {
    let (flow, _) = saved_flow(b);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            s.spawn(move || {
                for i in 0..25u64 {
                    let epoch = i * 8 + (t * 5) % 8 + 1;
                    match b.fence_flow_detail(flow.uuid, Epoch::new(epoch)) {
                        Ok(held) => assert_eq!(held, Epoch::new(epoch)),
                        Err(PersistenceError::Fenced {
                            held, presented, ..
                        }) => {
                            assert_eq!(presented, Epoch::new(epoch));
                            assert!(held > Epoch::new(epoch), "refused at {held} <= {epoch}");
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    assert_eq!(
        b.get_flow_detail(flow.uuid).unwrap().owner_epoch,
        Epoch::new(200)
    );
}

/// A take raises the stored owner epoch by one and returns it, whatever
/// it was (0, or raised by a fence); it changes nothing else; writes below
/// the epoch taken are fenced, writes at it land; a fence below it is
/// refused. Taking a flow detail that does not exist is `NotFound`.
pub fn take_raises_the_owner_epoch_by_one(b: &dyn Backend) {
    let (flow, atom) = saved_flow(b);
    assert_eq!(b.take_flow_detail(flow.uuid).unwrap(), Epoch::new(1));
    assert_eq!(b.take_flow_detail(flow.uuid).unwrap(), Epoch::new(2));
    let stored = b.get_flow_detail(flow.uuid).unwrap();
    assert_eq!(
        stored,
        FlowDetail {
            owner_epoch: Epoch::new(2),
            ..flow.clone()
        }
    );
    b.fence_flow_detail(flow.uuid, Epoch::new(10)).unwrap();
    assert_eq!(b.take_flow_detail(flow.uuid).unwrap(), Epoch::new(11));
    for stale in [0, 10] {
        assert_fenced(
            b.update_atom_state(
                flow.uuid,
                atom.uuid,
                AtomState::Running,
                Intention::Execute,
                Epoch::new(stale),
            )
            .unwrap_err(),
            Uuid::from(flow.uuid),
            11,
            stale,
        );
        assert_fenced(
            b.update_flow_state(flow.uuid, FlowState::Running, Epoch::new(stale))
                .unwrap_err(),
            Uuid::from(flow.uuid),
            11,
            stale,
        );
    }
    assert_fenced(
        b.fence_flow_detail(flow.uuid, Epoch::new(10)).unwrap_err(),
        Uuid::from(flow.uuid),
        11,
        10,
    );
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Running,
        Intention::Execute,
        Epoch::new(11),
    )
    .unwrap();
    b.update_flow_state(flow.uuid, FlowState::Running, Epoch::new(11))
        .unwrap();
    let stored = b.get_flow_detail(flow.uuid).unwrap();
    assert_eq!(stored.owner_epoch, Epoch::new(11));
    assert_eq!(stored.state, FlowState::Running);
    assert_eq!(stored.atom_details[0].state, AtomState::Running);

    let missing = Uuid::new_v4();
    let err = b.take_flow_detail(FlowDetailId::from(missing)).unwrap_err();
    assert!(
        matches!(err, PersistenceError::NotFound { kind: RecordKind::FlowDetail, id } if id == missing),
        "{err}"
    );
}

/// Eight threads taking one flow detail at once, ten times each: every
/// take gets its own epoch (1 to 80, none twice), the stored epoch ends at
/// the highest, and a writer at any epoch but the last is fenced.
pub fn concurrent_takes_get_distinct_epochs(b: &(dyn Backend + Sync)) {
    let (flow, atom) = saved_flow(b);
    let taken: Vec<Epoch> = std::thread::scope(|s| {
        let takers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(move || {
                    (0..10)
                        .map(|_| b.take_flow_detail(flow.uuid).unwrap())
                        .collect::<Vec<Epoch>>()
                })
            })
            .collect();
        takers.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let mut sorted = taken.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=80).map(Epoch::new).collect::<Vec<_>>(),
        "taken: {taken:?}"
    );
    assert_eq!(
        b.get_flow_detail(flow.uuid).unwrap().owner_epoch,
        Epoch::new(80)
    );
    for old in [1, 40, 79] {
        assert_fenced(
            b.update_atom_state(
                flow.uuid,
                atom.uuid,
                AtomState::Running,
                Intention::Execute,
                Epoch::new(old),
            )
            .unwrap_err(),
            Uuid::from(flow.uuid),
            80,
            old,
        );
    }
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Running,
        Intention::Execute,
        Epoch::new(80),
    )
    .unwrap();
}

/// A logbook holding one flow detail with two atom details, saved: a
/// retry controller holding a bit of everything (state, intention, result,
/// failure, revert result, revert failure, history, a meta entry), which
/// an update of one meta entry must leave alone, and a bare task.
fn saved_full_book(b: &dyn Backend) -> LogBook {
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let mut full = AtomDetail::new("r", AtomKind::Retry);
    full.state = AtomState::Running;
    full.intention = Intention::Execute;
    full.result = Some(Arc::new(json!({"n": 1, "s": "text"})));
    full.set_revert_result(Some(Arc::new(json!("undone"))));
    full.set_failure(Some(Failure::new("Boom", "exploded")));
    full.set_revert_failure(Some(Failure::new("Stuck", "cannot undo")));
    full.history_mut().push(json!(1));
    full.history_mut()
        .record_failure("r", Failure::new("Boom", "exploded"));
    full.meta_mut()
        .insert("other".into(), json!({"kept": [1, 2]}));
    flow.atom_details = vec![full, AtomDetail::new("bare", AtomKind::Task)];
    book.flow_details.push(flow);
    b.save_logbook(&book).unwrap();
    book
}

/// Asserts that every read of the records of `book` (its atom details, its
/// flow detail, the logbook, the listing) gives `book`.
#[track_caller]
fn assert_reads(b: &dyn Backend, book: &LogBook) {
    let flow = &book.flow_details[0];
    for atom in &flow.atom_details {
        assert_eq!(b.get_atom_detail(flow.uuid, atom.uuid).unwrap(), *atom);
    }
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), *flow);
    assert_eq!(b.get_logbook(book.uuid).unwrap(), *book);
    assert_eq!(listed(b), vec![book.clone()]);
}

/// `update_atom_meta` sets one entry of an atom detail's `meta`,
/// overwrites it, removes it (removing one that is not there is a no-op),
/// and leaves everything else alone: the atom's state, intention, result,
/// failures, revert result, history and other entries, and the other atoms.
pub fn update_atom_meta_sets_one_entry(b: &dyn Backend) {
    let mut book = saved_full_book(b);
    let flow = book.flow_details[0].uuid;
    let (full, bare) = {
        let atoms = &book.flow_details[0].atom_details;
        (atoms[0].uuid, atoms[1].uuid)
    };
    let steps: [(Uuid, &str, Option<Value>); 8] = [
        // Set beside another entry.
        (Uuid::from(full), "progress", Some(json!(0.25))),
        // Overwritten, with a value of another shape.
        (
            Uuid::from(full),
            "progress",
            Some(json!({"done": 3, "of": [4, null]})),
        ),
        // Another entry, set to null (an entry, not a removal).
        (Uuid::from(full), "other", Some(Value::Null)),
        // Removed: the other entries stay.
        (Uuid::from(full), "progress", None),
        // Removing what is not there changes nothing.
        (Uuid::from(full), "absent", None),
        (Uuid::from(full), "other", None),
        // An atom with nothing but its state, set and cleared again.
        (Uuid::from(bare), "progress", Some(json!(1))),
        (Uuid::from(bare), "progress", None),
    ];
    for (atom, key, value) in steps {
        b.update_atom_meta(
            flow,
            AtomDetailId::from(atom),
            key,
            value.clone(),
            Epoch::ZERO,
        )
        .unwrap();
        let detail = book.flow_details[0]
            .atom_details
            .iter_mut()
            .find(|a| a.uuid == atom)
            .unwrap();
        match value {
            Some(value) => {
                detail.meta_mut().insert(key.to_owned(), value);
            }
            None => {
                detail.meta_mut().remove(key);
            }
        }
        assert_reads(b, &book);
    }
    assert!(book.flow_details[0]
        .atom_details
        .iter()
        .all(|a| a.meta().is_empty()));
}

/// A task's progress, recorded with `update_atom_meta` under
/// [`AtomDetail::PROGRESS_KEY`], reads back through
/// [`AtomDetail::progress`] from every read; `SUCCESS` reads as 1.0, and a
/// cleared entry as 0.0 for a task that runs again.
pub fn progress_reads_back_from_the_records(b: &dyn Backend) {
    let (flow, atom) = saved_flow(b);
    let key = AtomDetail::PROGRESS_KEY;
    let progress = || b.get_atom_detail(flow.uuid, atom.uuid).unwrap().progress();
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Running,
        Intention::Execute,
        Epoch::ZERO,
    )
    .unwrap();
    assert_eq!(progress(), 0.0);
    b.update_atom_meta(flow.uuid, atom.uuid, key, Some(json!(0.5)), Epoch::ZERO)
        .unwrap();
    assert_eq!(progress(), 0.5);
    assert_eq!(
        b.get_flow_detail(flow.uuid).unwrap().atom_details[0].progress(),
        0.5
    );
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Success,
        Intention::Execute,
        Epoch::ZERO,
    )
    .unwrap();
    assert_eq!(progress(), 1.0);
    // Run again: the engine clears the entry as the task starts.
    b.update_atom_meta(flow.uuid, atom.uuid, key, None, Epoch::ZERO)
        .unwrap();
    b.update_atom_state(
        flow.uuid,
        atom.uuid,
        AtomState::Running,
        Intention::Execute,
        Epoch::ZERO,
    )
    .unwrap();
    assert_eq!(progress(), 0.0);
}

/// `update_atom_meta` is a write at the epoch it presents: refused with
/// `Fenced` below the stored epoch (even for an atom that does not
/// exist), changing nothing; accepted at the stored epoch or a higher one,
/// which it leaves as it is.
pub fn update_atom_meta_is_fenced(b: &dyn Backend) {
    let (flow, atom) = saved_flow(b);
    b.fence_flow_detail(flow.uuid, Epoch::new(7)).unwrap();
    let before = b.get_flow_detail(flow.uuid).unwrap();
    for stale in [0, 6] {
        for value in [Some(json!(0.5)), None] {
            assert_fenced(
                b.update_atom_meta(
                    flow.uuid,
                    atom.uuid,
                    "progress",
                    value.clone(),
                    Epoch::new(stale),
                )
                .unwrap_err(),
                Uuid::from(flow.uuid),
                7,
                stale,
            );
            assert_fenced(
                b.update_atom_meta(
                    flow.uuid,
                    AtomDetailId::new(),
                    "progress",
                    value,
                    Epoch::new(stale),
                )
                .unwrap_err(),
                Uuid::from(flow.uuid),
                7,
                stale,
            );
        }
    }
    assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), before);
    for epoch in [7, 8] {
        b.update_atom_meta(
            flow.uuid,
            atom.uuid,
            "progress",
            Some(json!(epoch)),
            Epoch::new(epoch),
        )
        .unwrap();
        let stored = b.get_flow_detail(flow.uuid).unwrap();
        assert_eq!(stored.owner_epoch, Epoch::new(7));
        assert_eq!(stored.atom_details[0].meta()["progress"], json!(epoch));
    }
}

/// `update_atom_meta` of an atom that does not exist is `NotFound` naming
/// it, in a flow that does not exist `NotFound` naming the flow; neither
/// creates anything.
pub fn update_atom_meta_of_missing_records_is_not_found(b: &dyn Backend) {
    let book = saved_full_book(b);
    let flow = book.flow_details[0].uuid;
    let (missing_flow, missing_atom) = (Uuid::new_v4(), Uuid::new_v4());
    let cases = [
        (flow, missing_atom, RecordKind::AtomDetail, missing_atom),
        (
            FlowDetailId::from(missing_flow),
            missing_atom,
            RecordKind::FlowDetail,
            missing_flow,
        ),
        (
            FlowDetailId::from(missing_flow),
            Uuid::from(book.flow_details[0].atom_details[0].uuid),
            RecordKind::FlowDetail,
            missing_flow,
        ),
    ];
    for (flow, atom, kind, id) in cases {
        for value in [Some(json!(0.5)), None] {
            let err = b
                .update_atom_meta(
                    flow,
                    AtomDetailId::from(atom),
                    "progress",
                    value,
                    Epoch::ZERO,
                )
                .unwrap_err();
            assert!(
                matches!(&err, PersistenceError::NotFound { kind: k, id: i } if *k == kind && *i == id),
                "expected {kind} {id} not found, got {err}"
            );
        }
    }
    assert_reads(b, &book);
}

/// A meta entry nesting deeper than
/// [`MAX_RECORD_DEPTH`](crate::MAX_RECORD_DEPTH) (just past it, or 100,000
/// levels: never a stack overflow) is refused with `TooDeep` naming the
/// atom and the entry, writing nothing; one as deep as the limit is
/// written and read back.
pub fn update_atom_meta_refuses_too_deep_values(b: &dyn Backend) {
    let mut book = saved_full_book(b);
    let flow = book.flow_details[0].uuid;
    let atom = book.flow_details[0].atom_details[0].uuid;
    let limit = crate::MAX_RECORD_DEPTH;
    for levels in [limit + 1, 100_000] {
        assert_too_deep(
            b.update_atom_meta(
                flow,
                atom,
                "progress",
                Some(nested_value(levels)),
                Epoch::ZERO,
            )
            .unwrap_err(),
            RecordKind::AtomDetail,
            Uuid::from(atom),
            "meta entry \"progress\"",
            levels,
        );
        assert_reads(b, &book);
    }
    b.update_atom_meta(
        flow,
        atom,
        "progress",
        Some(nested_value(limit)),
        Epoch::ZERO,
    )
    .unwrap();
    book.flow_details[0].atom_details[0]
        .meta_mut()
        .insert("progress".into(), nested_value(limit));
    assert_reads(b, &book);
}

/// The state updates of one thread and the meta updates of another, on
/// one atom, never undo each other (what the engine does: its thread
/// writes an atom's transitions while the thread running the task records
/// its progress). `states` takes the state updates and `metas` the meta
/// updates: one backend, or two handles on one store. The two writers
/// start together and each runs for a quarter of a second (and at least
/// 20 rounds), reading back what it wrote after each write; at the end the
/// record holds the last of each, with the rest (result, other entries)
/// as saved.
///
/// In [`backend_conformance!`](crate::backend_conformance) with one
/// backend as both (`meta_updates_never_undo_state_updates`); a backend's
/// own tests may call it with two handles.
pub fn state_and_meta_updates_race(states: &dyn Backend, metas: &dyn Backend) {
    const MIN_ROUNDS: usize = 20;
    const FOR: std::time::Duration = std::time::Duration::from_millis(250);
    const PAIRS: [(AtomState, Intention); 2] = [
        (AtomState::Running, Intention::Execute),
        (AtomState::Reverting, Intention::Revert),
    ];
    let (flow, atom) = saved_flow(states);
    metas
        .update_atom_meta(
            flow.uuid,
            atom.uuid,
            "other",
            Some(json!("kept")),
            Epoch::ZERO,
        )
        .unwrap();
    let start = std::sync::Barrier::new(2);
    let running = |started: std::time::Instant, i: usize| i < MIN_ROUNDS || started.elapsed() < FOR;
    let (last_state, last_progress) = std::thread::scope(|s| {
        let state_writer = s.spawn(|| {
            start.wait();
            let (started, mut i) = (std::time::Instant::now(), 0);
            while running(started, i) {
                let (state, intention) = PAIRS[i % 2];
                states
                    .update_atom_state(flow.uuid, atom.uuid, state, intention, Epoch::ZERO)
                    .unwrap();
                let got = states.get_atom_detail(flow.uuid, atom.uuid).unwrap();
                assert_eq!(
                    (got.state, got.intention),
                    (state, intention),
                    "round {i}: a meta update undid a state update"
                );
                i += 1;
            }
            PAIRS[(i - 1) % 2]
        });
        let meta_writer = s.spawn(|| {
            start.wait();
            let (started, mut i) = (std::time::Instant::now(), 0);
            while running(started, i) {
                metas
                    .update_atom_meta(
                        flow.uuid,
                        atom.uuid,
                        "progress",
                        Some(json!(i)),
                        Epoch::ZERO,
                    )
                    .unwrap();
                let got = metas.get_atom_detail(flow.uuid, atom.uuid).unwrap();
                assert_eq!(
                    got.meta().get("progress"),
                    Some(&json!(i)),
                    "round {i}: a state update undid a meta update"
                );
                i += 1;
            }
            i - 1
        });
        // A panic of either writer is the test's.
        let state = state_writer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let progress = meta_writer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (state, progress)
    });
    let mut expected = atom;
    (expected.state, expected.intention) = last_state;
    expected.meta_mut().insert("other".into(), json!("kept"));
    expected
        .meta_mut()
        .insert("progress".into(), json!(last_progress));
    for b in [states, metas] {
        assert_eq!(
            b.get_atom_detail(flow.uuid, expected.uuid).unwrap(),
            expected
        );
    }
}

/// [`state_and_meta_updates_race`] on one backend.
pub fn meta_updates_never_undo_state_updates(b: &dyn Backend) {
    state_and_meta_updates_race(b, b);
}

/// A value nesting `levels` arrays, one inside the next, around `1`.
pub fn nested_value(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

/// Drops a value without recursion (dropping a value of 100,000 levels
/// whole would overflow the stack).
pub fn drop_deep(value: Value) {
    crate::codec::drop_deep(value);
}

/// A logbook holding one flow detail whose store, definition and atoms
/// (a task's result and revert result, a retry controller's history,
/// metadata) hold values nesting `levels` levels.
fn deep_book(levels: usize) -> LogBook {
    let deep = nested_value(levels);
    let mut book = LogBook::new(format!("deep-{levels}"));
    book.meta.insert("deep".into(), deep.clone());
    let mut flow = FlowDetail::new("f");
    flow.run.definition = Some(crate::FlowDefinition::Stored(deep.clone()));
    if levels > 0 {
        // A store of one entry nesting `levels - 1`: `levels` in all.
        flow.run.store.insert("x".into(), nested_value(levels - 1));
    }
    let mut task = AtomDetail::new("task", AtomKind::Task);
    task.state = AtomState::Success;
    task.result = Some(Arc::new(deep.clone()));
    task.set_revert_result(Some(Arc::new(deep.clone())));
    task.meta_mut().insert("progress".into(), deep.clone());
    let mut retry = AtomDetail::new("retry", AtomKind::Retry);
    retry.history_mut().push(deep);
    retry
        .history_mut()
        .record_failure("task", Failure::new("Boom", "deep"));
    flow.atom_details = vec![task, retry];
    book.flow_details.push(flow);
    book
}

/// Values as deep as the engine accepts (past serde_json's default limit
/// of 128, up to [`MAX_VALUE_DEPTH`](taskflow_patterns::MAX_VALUE_DEPTH)),
/// and as deep as a record may hold
/// ([`MAX_RECORD_DEPTH`](crate::MAX_RECORD_DEPTH)), in a task's result and
/// revert result, a retry's history, the store and the definition of a
/// flow detail and the meta of every record, are written and read back
/// whole through every read: flow detail, atom detail, logbook, listing.
pub fn deep_values_round_trip(b: &dyn Backend) {
    for levels in [
        127,
        128,
        taskflow_patterns::MAX_VALUE_DEPTH,
        crate::MAX_RECORD_DEPTH,
    ] {
        let book = deep_book(levels);
        b.save_logbook(&book).unwrap();
        let flow = &book.flow_details[0];
        assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), *flow, "{levels}");
        assert_eq!(b.get_logbook(book.uuid).unwrap(), book, "{levels}");
        assert!(listed(b).contains(&book), "{levels} levels listed");

        // Saved piece by piece, as the engine does.
        let mut empty = book.clone();
        empty.uuid = LogBookId::new();
        let mut detail = empty.flow_details.remove(0);
        detail.uuid = FlowDetailId::new();
        let atoms = std::mem::take(&mut detail.atom_details);
        b.save_logbook(&empty).unwrap();
        b.save_flow_detail(empty.uuid, &detail).unwrap();
        for atom in &atoms {
            b.save_atom_detail(detail.uuid, atom, Epoch::ZERO).unwrap();
            assert_eq!(b.get_atom_detail(detail.uuid, atom.uuid).unwrap(), *atom);
        }
        detail.atom_details = atoms;
        assert_eq!(b.get_flow_detail(detail.uuid).unwrap(), detail);
    }
}

/// Asserts `err` is `TooDeep` for record `kind` `id`, naming `part`.
#[track_caller]
fn assert_too_deep(err: PersistenceError, kind: RecordKind, id: Uuid, part: &str, depth: usize) {
    let limit = crate::MAX_RECORD_DEPTH;
    assert!(
        matches!(&err, PersistenceError::TooDeep { kind: k, id: i, part: p, depth: d, limit: l }
            if *k == kind && *i == id && p == part && *d == depth && *l == limit),
        "expected {kind} {id} too deep in {part} ({depth} > {limit}), got {err}"
    );
    let text = err.to_string();
    for named in [id.to_string(), depth.to_string(), limit.to_string()] {
        assert!(text.contains(&named), "{text} names {named}");
    }
}

/// A record holding a value deeper than
/// [`MAX_RECORD_DEPTH`](crate::MAX_RECORD_DEPTH), just past it or 100,000
/// levels deep, is refused when written with `TooDeep` naming the record,
/// the part, the depth and the limit (never a stack overflow), and nothing
/// of it is written.
pub fn too_deep_values_are_refused_when_written(b: &dyn Backend) {
    let limit = crate::MAX_RECORD_DEPTH;
    for levels in [limit + 1, 100_000] {
        let deep = || Some(nested_value(levels));
        // In a flow detail's store, through save_logbook and save_flow_detail.
        let mut book = LogBook::new("b");
        let mut flow = FlowDetail::new("f");
        flow.atom_details.push(AtomDetail::new("a", AtomKind::Task));
        flow.meta.insert("store".into(), deep().unwrap());
        book.flow_details.push(flow);
        assert_too_deep(
            b.save_logbook(&book).unwrap_err(),
            RecordKind::FlowDetail,
            Uuid::from(book.flow_details[0].uuid),
            "meta entry \"store\"",
            levels,
        );
        assert!(b.get_logbook(book.uuid).unwrap_err().is_not_found());
        let mut flow = book.flow_details.pop().unwrap();
        b.save_logbook(&book).unwrap();
        assert_too_deep(
            b.save_flow_detail(book.uuid, &flow).unwrap_err(),
            RecordKind::FlowDetail,
            Uuid::from(flow.uuid),
            "meta entry \"store\"",
            levels,
        );
        assert!(b.get_flow_detail(flow.uuid).unwrap_err().is_not_found());
        if let Some(store) = flow.meta.remove("store") {
            drop_deep(store);
        }

        // In an atom's result and revert result, and a retry's history.
        b.save_flow_detail(book.uuid, &flow).unwrap();
        let mut atom = flow.atom_details[0].clone();
        atom.result = deep().map(Arc::new);
        assert_too_deep(
            b.save_atom_detail(flow.uuid, &atom, Epoch::ZERO)
                .unwrap_err(),
            RecordKind::AtomDetail,
            Uuid::from(atom.uuid),
            "result",
            levels,
        );
        if let Some(result) = atom.result.take().and_then(Arc::into_inner) {
            drop_deep(result);
        }
        atom.set_revert_result(deep().map(Arc::new));
        assert_too_deep(
            b.save_atom_detail(flow.uuid, &atom, Epoch::ZERO)
                .unwrap_err(),
            RecordKind::AtomDetail,
            Uuid::from(atom.uuid),
            "revert result",
            levels,
        );
        let revert_result = atom.revert_result().cloned();
        atom.set_revert_result(None);
        if let Some(result) = revert_result.and_then(Arc::into_inner) {
            drop_deep(result);
        }
        // (A history cannot be taken apart, so it is not made 100,000 deep.)
        let mut retry = AtomDetail::new("r", AtomKind::Retry);
        retry.history_mut().push(nested_value(limit + 1));
        assert_too_deep(
            b.save_atom_detail(flow.uuid, &retry, Epoch::ZERO)
                .unwrap_err(),
            RecordKind::AtomDetail,
            Uuid::from(retry.uuid),
            "retry history",
            limit + 1,
        );
        assert_eq!(b.get_flow_detail(flow.uuid).unwrap(), flow);

        // In a logbook's meta.
        let mut other = LogBook::new("o");
        other.meta.insert("deep".into(), deep().unwrap());
        assert_too_deep(
            b.save_logbook(&other).unwrap_err(),
            RecordKind::LogBook,
            Uuid::from(other.uuid),
            "meta entry \"deep\"",
            levels,
        );
        assert!(b.get_logbook(other.uuid).unwrap_err().is_not_found());
        if let Some(meta) = other.meta.remove("deep") {
            drop_deep(meta);
        }
        b.destroy_logbook(book.uuid).unwrap();
    }
}

/// One logbook made unreadable never hides the others: `corrupt` breaks
/// the records of the logbook it is given behind the backend's back (a
/// raw write to its file or row, as a bug or a disk might), in whichever
/// record it likes (the logbook, a flow detail, an atom detail). The
/// listing then holds every healthy logbook, whole and in creation order,
/// and, in the place of the broken one, one error naming a record of it;
/// `reason` is a part of that error's message.
///
/// Not in [`backend_conformance!`](crate::backend_conformance): each backend's tests call it with a
/// way to corrupt its own records.
pub fn one_corrupt_logbook_leaves_the_others_listed(
    b: &dyn Backend,
    reason: &str,
    corrupt: impl FnOnce(&LogBook),
) {
    let mut books = Vec::new();
    for (i, created) in [10u64, 20, 30].into_iter().enumerate() {
        let mut book = sample_book();
        book.name = format!("b{i}");
        book.created_at = created;
        b.save_logbook(&book).unwrap();
        books.push(book);
    }
    let victim = books.remove(1);
    corrupt(&victim);
    let listed = b.list_logbooks().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let healthy: Vec<LogBook> = listed
        .iter()
        .filter_map(|book| book.as_ref().ok().cloned())
        .collect();
    assert_eq!(healthy, books);
    let errors: Vec<&PersistenceError> = listed.iter().filter_map(|b| b.as_ref().err()).collect();
    let [err] = errors.as_slice() else {
        panic!("one error in {listed:?}")
    };
    assert!(
        matches!(err, PersistenceError::Corrupt { .. }),
        "the broken logbook is corrupt: {err}"
    );
    let text = err.to_string();
    assert!(text.contains(reason), "{text} says {reason}");
    let ids: Vec<String> = std::iter::once(victim.uuid.as_uuid())
        .chain(victim.flow_details.iter().map(|f| f.uuid.as_uuid()))
        .chain(
            victim
                .flow_details
                .iter()
                .flat_map(|f| f.atom_details.iter().map(|a| a.uuid.as_uuid())),
        )
        .map(|id| id.to_string())
        .collect();
    assert!(
        ids.iter().any(|id| text.contains(id)),
        "{text} names a record of logbook {}",
        victim.uuid
    );
    // The others still read one by one, too.
    for book in &books {
        assert_eq!(b.get_logbook(book.uuid).unwrap(), *book);
    }
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
            awkward_values revert_results_round_trip fence_raises_the_owner_epoch stale_writes_are_fenced
            batched_atom_writes atom_writes_in_any_order a_takeover_between_batches_fences_the_next
            current_and_newer_epochs_may_write saving_a_flow_detail_is_fenced_by_its_epoch
            fencing_a_missing_flow_is_not_found concurrent_fences_end_at_the_highest
            take_raises_the_owner_epoch_by_one concurrent_takes_get_distinct_epochs
            deep_values_round_trip too_deep_values_are_refused_when_written
            update_atom_meta_sets_one_entry update_atom_meta_is_fenced
            update_atom_meta_of_missing_records_is_not_found
            update_atom_meta_refuses_too_deep_values meta_updates_never_undo_state_updates
            progress_reads_back_from_the_records);
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
    fn shared_database(&self) -> Option<crate::SharedDatabase<'_>> {
        self.backend.shared_database()
    }
    fn blocks(&self) -> bool {
        self.backend.blocks()
    }
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        self.backend.save_logbook(book)
    }
    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        self.backend.get_logbook(id)
    }
    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError> {
        self.backend.list_logbooks()
    }
    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError> {
        self.backend.destroy_logbook(id)
    }
    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        self.backend.save_flow_detail(book, flow)
    }
    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError> {
        self.backend.get_flow_detail(id)
    }
    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        self.backend.update_flow_state(flow, state, epoch)
    }
    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError> {
        self.backend.fence_flow_detail(flow, epoch)
    }
    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError> {
        self.backend.take_flow_detail(flow)
    }
    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError> {
        self.backend.destroy_flow_detail(id)
    }
    fn save_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        self.backend.save_atom_detail(flow, atom, epoch)
    }
    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        self.backend
            .update_atom_state(flow, atom, state, intention, epoch)
    }
    fn save_atom_writes(
        &self,
        flow: FlowDetailId,
        writes: &[crate::AtomWrite<'_>],
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        self.backend.save_atom_writes(flow, writes, epoch)
    }
    fn update_atom_meta(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        key: &str,
        value: Option<Value>,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        self.backend.update_atom_meta(flow, atom, key, value, epoch)
    }
    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        self.backend.get_atom_detail(flow, atom)
    }
}
