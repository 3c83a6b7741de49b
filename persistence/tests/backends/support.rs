//! Helpers shared by the integration tests.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, Intention};
use taskflow_persistence::AtomDetailId;
use taskflow_persistence::Epoch;
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::LogBookId;
use taskflow_persistence::{
    AtomDetail, Backend, FlowDetail, LogBook, PersistenceError, RecordKind,
};
use uuid::Uuid;

/// A logbook with one flow holding one task with a result.
pub(crate) fn one_atom_book() -> (LogBook, FlowDetail, AtomDetail) {
    let mut book = LogBook::new("b");
    let mut flow = FlowDetail::new("f");
    let mut atom = AtomDetail::new("a", AtomKind::Task);
    atom.state = AtomState::Success;
    atom.result = Some(Arc::new(json!({"n": 1, "s": "text"})));
    flow.atom_details.push(atom.clone());
    book.flow_details.push(flow.clone());
    (book, flow, atom)
}

/// Every logbook `b` lists, each read whole (panics on one that is not).
#[track_caller]
pub(crate) fn listed(b: &dyn Backend) -> Vec<LogBook> {
    b.list_logbooks()
        .unwrap()
        .into_iter()
        .map(|book| book.unwrap())
        .collect()
}

/// The one error in the listing of `b` (panics unless there is exactly one).
#[track_caller]
pub(crate) fn listed_error(b: &dyn Backend) -> PersistenceError {
    let mut errors: Vec<PersistenceError> = b
        .list_logbooks()
        .unwrap()
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert_eq!(errors.len(), 1, "one error listed: {errors:?}");
    errors.remove(0)
}

/// Asserts `err` is `Corrupt` for record `kind` `id` with `reason` in it.
#[track_caller]
pub(crate) fn assert_corrupt(err: PersistenceError, kind: RecordKind, id: &str, reason: &str) {
    assert!(
        matches!(&err, PersistenceError::Corrupt { kind: k, id: i, reason: r }
            if *k == kind && i == id && r.contains(reason)),
        "expected {kind} {id} corrupt ({reason}), got {err}"
    );
    let text = err.to_string();
    assert!(text.contains(id), "the message names the record: {text}");
}

/// The logbook recorded in the fixtures of every version: fixed ids and
/// times, and a bit of everything a record holds (as of the current
/// version: see `fixtures::expected` for what older versions hold).
pub(crate) fn fixture_book() -> LogBook {
    let id = |n: u128| Uuid::from_u128(0x7466_0000_0000_4000_8000_0000_0000_0000 | n);
    let mut book = LogBook {
        uuid: LogBookId::from(id(1)),
        name: "fixture-book".into(),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_500,
        meta: serde_json::Map::new(),
        flow_details: Vec::new(),
    };
    book.meta.insert("owner".into(), json!("fixtures"));

    let mut first = FlowDetail::new("provision");
    first.uuid = FlowDetailId::from(id(2));
    first.state = FlowState::Failure;
    first.run.store.insert("region".into(), json!("eu-1"));
    first.run.store.insert("size".into(), json!(10));
    let mut volume = AtomDetail::new("volume", AtomKind::Task);
    volume.uuid = AtomDetailId::from(id(3));
    volume.state = AtomState::Success;
    volume.result = Some(Arc::new(
        json!({"id": "vol-1", "size_gb": 10, "ratio": 0.1}),
    ));
    volume.meta_mut().insert("progress".into(), json!(1.0));
    let mut attach = AtomDetail::new("attach \u{2192} host", AtomKind::Task);
    attach.uuid = AtomDetailId::from(id(4));
    attach.state = AtomState::RevertFailure;
    attach.intention = Intention::Revert;
    attach.set_failure(Some(
        Failure::new("Timeout", "no answer in 5 s").with_atom("attach"),
    ));
    attach.set_revert_failure(Some(Failure::new("Stuck", "cannot detach")));
    let mut retry = AtomDetail::new("retry", AtomKind::Retry);
    retry.uuid = AtomDetailId::from(id(5));
    retry.state = AtomState::Retrying;
    retry.intention = Intention::Retry;
    retry.history_mut().push(json!(1));
    retry
        .history_mut()
        .record_failure("attach", Failure::new("Timeout", "no answer in 5 s"));
    retry.history_mut().push(json!(2));
    first.atom_details = vec![volume, attach, retry];
    // Format 2 records an owner epoch; format 1 had none (read as 0).
    first.owner_epoch = Epoch::new(7);

    let mut second = FlowDetail::new("cleanup");
    second.uuid = FlowDetailId::from(id(6));
    let mut skip = AtomDetail::new("skip", AtomKind::Task);
    skip.uuid = AtomDetailId::from(id(7));
    skip.state = AtomState::Ignore;
    skip.intention = Intention::Ignore;
    second.atom_details = vec![skip];

    book.flow_details = vec![first, second];
    book
}

/// Copies a directory tree.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
