//! `validate` of files with each kind of mistake: every one at its line and
//! column, exit 2.

use serde_json::Value;

use super::run_in;

/// The mistakes `validate --json` finds in `text`: (line, column, message).
fn mistakes(text: &str) -> Vec<(u64, u64, String)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flow.yaml"), text).unwrap();
    let ran = run_in(dir.path(), &["validate", "flow.yaml", "--json"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    let report: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(report["valid"], false);
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn only(text: &str) -> (u64, u64, String) {
    let mut found = mistakes(text);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[test]
fn yaml_syntax() {
    let (line, column, message) =
        only("name: f\nsteps:\n  - name: a\n    shell: echo {\"a\": 1}\n");
    assert_eq!((line, column), (4, 21), "{message}");
    assert!(message.starts_with("invalid YAML"), "{message}");
    assert!(
        message.contains("block after `|`"),
        "says how to fix it: {message}"
    );
}

#[test]
fn unknown_key_with_a_suggestion() {
    let (line, column, message) =
        only("name: f\nsteps:\n  - name: a\n    shell: echo\n    requries: [x]\n");
    assert_eq!((line, column), (5, 5));
    assert!(message.contains("unknown key `requries`"), "{message}");
    assert!(message.contains("did you mean `requires`?"), "{message}");
    let (line, column, message) =
        only("name: f\nsteps:\n  - name: a\n    shell: {command: echo, timout: 3}\n");
    assert_eq!((line, column), (4, 28), "{message}");
    assert!(message.contains("unknown field `timout`"), "{message}");
    let (line, column, message) = only("name: f\nsteps: [{name: a, shell: echo}]\nlink: []\n");
    assert_eq!((line, column), (3, 1), "{message}");
    assert!(message.contains("(did you mean `links`?)"), "{message}");
}

#[test]
fn wrong_types() {
    let found = mistakes(
        "name: f\nsteps:\n  - name: a\n    shell: echo\n    priority: high\n    requires: {x: y}\n  - name: b\n    sleep: forever\nretry: [1]\n",
    );
    let at: Vec<(u64, u64)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(5, 15), (6, 15), (8, 12), (9, 8)], "{found:?}");
    assert!(
        found[0]
            .2
            .contains("expected `priority`: a whole number, found `high`"),
        "{found:?}"
    );
    assert!(
        found[1]
            .2
            .contains("a name or a list of names, found a map"),
        "{found:?}"
    );
    assert!(found[2].2.contains("a duration"), "{found:?}");
    assert!(found[3].2.contains("a number of attempts"), "{found:?}");
}

#[test]
fn a_step_that_runs_nothing_and_a_missing_name() {
    let found = mistakes("name: f\nsteps:\n  - name: a\n    requires: [x]\n  - shell: echo\n");
    let at: Vec<(u64, u64)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(3, 5), (5, 5)], "{found:?}");
    assert!(
        found[0].2.contains("says neither what it runs"),
        "{found:?}"
    );
    assert!(found[1].2.contains("has no `name`"), "{found:?}");
}

#[test]
fn a_link_to_an_atom_that_does_not_exist() {
    let found = mistakes(
        "name: g\npattern: graph\nsteps:\n  - name: a\n    shell: echo\n  - name: b\n    shell: echo\nlinks:\n  - a -> c\n  - from: b\n    to: [a, zz]\n",
    );
    let at: Vec<(u64, u64)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(9, 10), (11, 13)], "{found:?}");
    assert!(
        found[0]
            .2
            .contains("`c`, which is not a step of graph `g`; expected one of: a, b"),
        "{found:?}"
    );
    assert!(found[1].2.contains("`zz`"), "{found:?}");
}

#[test]
fn links_outside_a_graph() {
    let (line, column, message) =
        only("name: f\nsteps: [{name: a, shell: echo}]\nlinks: [a -> a]\n");
    assert_eq!((line, column), (3, 8));
    assert!(message.contains("`pattern: graph`"), "{message}");
}

#[test]
fn a_missing_requirement_points_at_the_requirement() {
    let found = mistakes(
        "name: f\nsteps:\n  - name: a\n    shell: echo\n    provides: x\n  - name: b\n    shell: echo\n    requires:\n      - x\n      - nobody_provides_this\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, column, message) = &found[0];
    assert_eq!((*line, *column), (10, 9));
    assert!(
        message.contains("atom `b` requires `nobody_provides_this`"),
        "{message}"
    );
    assert!(message.contains("available to it: `x`"), "{message}");
}

#[test]
fn a_requirement_met_by_the_store_is_no_mistake() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.yaml"),
        "name: f\nsteps:\n  - name: a\n    shell: echo\n    requires: [region]\n",
    )
    .unwrap();
    assert_eq!(run_in(dir.path(), &["validate", "f.yaml"]).code, 2);
    let ran = run_in(
        dir.path(),
        &["validate", "f.yaml", "--store", "region=eu-1"],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("reads from the store: region"),
        "{}",
        ran.stdout
    );
}

#[test]
fn names_given_twice() {
    let found =
        mistakes("name: f\nsteps:\n  - name: a\n    shell: echo\n  - name: a\n    sleep: 0\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (5, 11));
    assert!(
        found[0]
            .2
            .contains("another atom is named `a` already (at 3:11)"),
        "{found:?}"
    );
    let (line, column, message) = only("name: f\nname: g\nsteps: [{name: a, shell: echo}]\n");
    assert_eq!((line, column), (2, 1));
    assert!(
        message.contains("the key `name` is given twice"),
        "{message}"
    );
}

#[test]
fn a_rebind_of_no_argument() {
    let (line, column, message) =
        only("name: f\nstore: {y: 1}\nsteps:\n  - name: a\n    shell: echo\n    rebind: {x: y}\n");
    assert_eq!((line, column), (6, 14));
    assert!(message.contains("`rebind` renames `x`"), "{message}");
}

#[test]
fn the_text_report_quotes_the_line_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.yaml"),
        "name: f\nsteps:\n  - name: a\n    shel: echo\n",
    )
    .unwrap();
    let ran = run_in(dir.path(), &["validate", "f.yaml"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("f.yaml:4:5: unknown key `shel`"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains(" 4 |     shel: echo\n   |     ^"),
        "{}",
        ran.stderr
    );
    // `run` refuses the same file with the same report, and runs nothing.
    let ran = run_in(dir.path(), &["run", "f.yaml"]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("f.yaml:4:5: unknown key `shel`"),
        "{}",
        ran.stderr
    );
    assert!(!dir.path().join(".taskflow").exists());
}

#[test]
fn a_cycle_points_at_its_first_atom() {
    let (line, column, message) = only(
        "name: g\npattern: graph\nsteps:\n  - name: a\n    shell: echo\n  - name: b\n    shell: echo\nlinks: [a -> b, b -> a]\n",
    );
    assert_eq!((line, column), (4, 11), "{message}");
    assert!(message.contains("the flow has a cycle"), "{message}");
}
