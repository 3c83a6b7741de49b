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

#[test]
fn a_shell_timeout_kills_the_command_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.yaml"),
        "name: slow\nsteps:\n  - name: hang\n    shell:\n      command: sleep 5; echo late\n      timeout: 200ms\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let ran = run_in(dir.path(), &["run", "slow.yaml", "--json"]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(ran.code, 3, "{}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    let failure = summary["atoms"][0]["failure"].as_str().unwrap();
    assert!(
        failure.starts_with("Timeout: `sleep 5; echo late` still ran after 0.2s"),
        "{failure}"
    );
}

#[test]
fn a_failed_revert_ends_the_flow_failure_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.yaml"),
        "name: f\nsteps:\n  - name: a\n    shell:\n      command: echo made\n      revert: echo cannot undo >&2; exit 7\n  - name: b\n    shell: exit 1\n",
    )
    .unwrap();
    let ran = run_in(dir.path(), &["run", "f.yaml", "--json"]);
    assert_eq!(ran.code, 4, "{}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(summary["state"], "FAILURE");
    assert_eq!(summary["atoms"][0]["state"], "REVERT_FAILURE");
    let revert = summary["atoms"][0]["revert_failure"].as_str().unwrap();
    assert!(
        revert.contains("exited with code 7; stderr: cannot undo"),
        "{revert}"
    );
}

#[test]
fn records_where_the_flag_or_the_environment_says() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.yaml"),
        "name: f\nsteps:\n  - name: a\n    shell: echo hi\n",
    )
    .unwrap();
    let ran = run_in(dir.path(), &["run", "f.yaml", "--records", "dir:recs"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(dir.path().join("recs").is_dir());
    assert!(ran.stdout.contains("records dir:recs"), "{}", ran.stdout);
    let ran: super::Ran = super::taskflow()
        .args(["run", "f.yaml"])
        .current_dir(dir.path())
        .env("TASKFLOW_RECORDS", "sqlite:env.db")
        .output()
        .unwrap()
        .into();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(dir.path().join("env.db").exists());
    assert!(!dir.path().join(".taskflow").exists());
    let bad = run_in(dir.path(), &["run", "f.yaml", "--records", "mysql://x"]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "one line: {}", bad.stderr);
    assert!(
        bad.stderr.contains("records `mysql://x`: unknown scheme"),
        "{}",
        bad.stderr
    );
}

#[test]
fn for_each_and_the_argument_forms() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.yaml"),
        r#"name: regions
steps:
  - name: place
    retry:
      for_each: [eu-1, eu-2, eu-3]
      provides: region
    steps:
      - name: try
        shell: |
          if [ "$region" = eu-1 ]; then echo "eu-1 is full" >&2; exit 1; fi
          echo "[\"$region\", \"$zone\"]"
        requires: [region]
        optional: {zone: a}
        provides: [where, zone_used]
  - name: describe
    shell: |
      echo "{\"text\": \"$where/$zone_used/$size\", \"n\": $size}"
    requires: [where, zone_used, size]
    inject: {size: 5}
    provides: {keys: [text, n]}
  - name: show
    shell: echo "$t"
    rebind: {t: text}
    requires: [t]
"#,
    )
    .unwrap();
    let ran = run_in(dir.path(), &["run", "f.yaml", "--json"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    let by = |n: &str| {
        summary["atoms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("place_retry")["attempts"], 2);
    assert_eq!(by("try")["result"], serde_json::json!(["eu-2", "a"]));
    assert_eq!(by("show")["result"], "eu-2/a/5");
}

#[test]
fn graph_needs_no_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.yaml"),
        "name: f\nsteps:\n  - name: a\n    shell: echo\n    requires: [given_at_run]\n",
    )
    .unwrap();
    let ran = run_in(dir.path(), &["graph", "f.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.stdout,
        "f (linear)\n  a [shell] requires given_at_run\n"
    );
}
