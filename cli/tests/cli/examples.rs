//! `run` of each example flow, its output checked.

use serde_json::Value;

use super::{example, run_in};

fn atoms(summary: &Value) -> Vec<(String, String)> {
    summary["atoms"]
        .as_array()
        .expect("atoms")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn state_of(summary: &Value, atom: &str) -> String {
    atoms(summary)
        .into_iter()
        .find(|(n, _)| n == atom)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no atom {atom}"))
}

#[test]
fn provision_succeeds_with_a_table_and_records_under_dot_taskflow() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("provision.yaml");
    let ran = run_in(dir.path(), &["run", file.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    for atom in ["network", "volume", "bucket", "server", "announce"] {
        let line = ran
            .stdout
            .lines()
            .find(|l| l.contains(&format!(" {atom} ")))
            .unwrap_or_else(|| panic!("no row for {atom}:\n{}", ran.stdout));
        assert!(line.contains("SUCCESS"), "{line}");
    }
    assert!(
        ran.stdout
            .contains(r#"{"id":"srv-1","network":{"id":"net-eu-1"}}"#),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("flow `provision` SUCCESS"),
        "{}",
        ran.stdout
    );
    // Progress went to stderr, as plain lines (no terminal here).
    assert!(ran.stderr.contains("server RUNNING"), "{}", ran.stderr);
    assert!(dir.path().join(".taskflow/records.db").exists());
}

#[test]
fn provision_reverts_when_the_server_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("provision.yaml");
    let ran = run_in(
        dir.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--store",
            "fail_server=true",
            "--json",
        ],
    );
    assert_eq!(
        ran.code, 3,
        "REVERTED exits 3: {}{}",
        ran.stdout, ran.stderr
    );
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(summary["state"], "REVERTED");
    for atom in ["network", "volume", "bucket", "server"] {
        assert_eq!(state_of(&summary, atom), "REVERTED", "{atom}");
    }
    assert_eq!(state_of(&summary, "announce"), "PENDING");
    let server = summary["atoms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "server")
        .unwrap();
    let failure = server["failure"].as_str().unwrap();
    assert!(failure.starts_with("ShellExit:"), "{failure}");
    assert!(failure.contains("exited with code 3"), "{failure}");
    assert!(
        failure.contains("quota exceeded in eu-1"),
        "the tail of stderr: {failure}"
    );
}

#[test]
fn retry_succeeds_on_the_third_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("retry.yaml");
    let ran = run_in(dir.path(), &["run", file.to_str().unwrap(), "--json"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    let flaky = summary["atoms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "flaky")
        .unwrap();
    assert_eq!(
        flaky["result"],
        serde_json::json!({"attempt": 3, "bytes": 512})
    );
    let controller = summary["atoms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "download_retry")
        .unwrap();
    assert_eq!(controller["kind"], "retry");
    assert_eq!(controller["attempts"], 3);
    // Two failed attempts were seen and reverted along the way.
    assert_eq!(
        ran.stderr.matches("flaky FAILURE").count(),
        2,
        "{}",
        ran.stderr
    );
}

#[test]
fn graph_runs_the_conditional_link_on_the_parallel_engine() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("graph.yaml");
    let ran = run_in(
        dir.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--engine",
            "parallel",
            "--workers",
            "2",
            "--json",
        ],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    for atom in ["checkout", "build", "test", "deploy", "notify"] {
        assert_eq!(state_of(&summary, atom), "SUCCESS", "{atom}");
    }
}

#[test]
fn a_false_decider_ignores_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("gate.yaml");
    std::fs::write(
        &flow,
        "name: gate\npattern: graph\nsteps:\n  - name: check\n    shell: echo false\n  - name: ship\n    shell: echo shipped\nlinks:\n  - from: check\n    to: ship\n    when: truthy\n",
    )
    .unwrap();
    let ran = run_in(dir.path(), &["run", "gate.yaml", "--json"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(state_of(&summary, "check"), "SUCCESS");
    assert_eq!(state_of(&summary, "ship"), "IGNORE");
}

#[test]
fn graph_draws_dot_mermaid_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("graph.yaml");
    let file = file.to_str().unwrap();
    let dot = run_in(dir.path(), &["graph", file, "--format", "dot"]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(dot.stdout.starts_with("digraph flow {"), "{}", dot.stdout);
    assert!(
        dot.stdout.contains("[style=dashed, label=\"when\"]"),
        "{}",
        dot.stdout
    );
    let mermaid = run_in(dir.path(), &["graph", file, "--format", "mermaid"]);
    assert!(
        mermaid.stdout.starts_with("flowchart TD"),
        "{}",
        mermaid.stdout
    );
    assert!(mermaid.stdout.contains("-. when .->"), "{}", mermaid.stdout);
    let text = run_in(dir.path(), &["graph", file]);
    assert!(
        text.stdout.starts_with("release (graph)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("link test -> deploy (conditional)"),
        "{}",
        text.stdout
    );
    assert!(
        !dir.path().join(".taskflow").exists(),
        "graph writes no records"
    );
}

#[test]
fn validate_summarises_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("retry.yaml");
    let ran = run_in(dir.path(), &["validate", file.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("flow `fetch` is valid: 4 tasks, 1 retry, 2 flows"),
        "{}",
        ran.stdout
    );
    let json = run_in(dir.path(), &["validate", file.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["tasks"], 4);
}
