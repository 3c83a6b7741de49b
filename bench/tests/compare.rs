//! The comparison command end to end, without Python (no virtualenv, no
//! PyPI in tests): every executor runs, W9 really SIGKILLs and resumes a
//! process (the command fails if an atom ran twice), and the Markdown,
//! JSON and SVG are written.

use std::process::Command;

use taskflow_bench::measure::{Measurement, Unit};
use taskflow_bench::report::Saved;

#[test]
fn compare_writes_the_table_and_the_plot() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_taskflow-bench"))
        .args(["compare", "--quick", "--no-python", "--redis", "none"])
        .args([
            "--sizes",
            "100",
            "--workloads",
            "W1,W2,W3,W6,W7,W9,W10",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "compare failed: {status}");

    let md = std::fs::read_to_string(out.path().join("comparison.md")).unwrap();
    assert!(md.starts_with("# Engine comparison\n\nTaken on "), "{md}");
    for executor in [
        "taskflow-rs serial",
        "taskflow-rs parallel",
        "taskflow-rs worker",
        "taskflow-rs tokio (async tasks)",
        "floor (bare rayon)",
        "dagx inline",
        "dagx parallel",
        "dagrs",
    ] {
        for workload in ["W1 linear chain", "W2 unordered", "W3 layered DAG"] {
            assert!(
                md.lines()
                    .any(|l| l.contains(workload) && l.contains(&format!("| {executor} |"))),
                "no {executor} row for {workload}:\n{md}"
            );
        }
    }

    let saved: Saved =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("comparison.json")).unwrap())
            .unwrap();
    let all = saved.figures;
    let w9 = all
        .iter()
        .find(|m| m.workload == "W9" && m.setting == "resume process")
        .expect("a W9 figure");
    assert_eq!(w9.unit, Unit::Seconds);
    assert!(w9.value > 0.0);
    let w10: Vec<&Measurement> = all.iter().filter(|m| m.workload == "W10").collect();
    // N = 1,000, 100,000 (the target's) and 1,000,000.
    let sizes: Vec<usize> = w10.iter().map(|m| m.n).collect();
    assert_eq!(sizes, [1_000, 100_000, 1_000_000]);
    assert!(w10
        .iter()
        .all(|m| m.unit == Unit::MebiBytes && m.value > 1.0));

    let svg = std::fs::read_to_string(out.path().join("comparison.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("dagx inline") && svg.contains("taskflow-rs serial"));

    // The Markdown and the plot are rebuilt from the JSON alone.
    let again = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_taskflow-bench"))
        .arg("render")
        .arg(out.path().join("comparison.json"))
        .arg("--out")
        .arg(again.path())
        .status()
        .unwrap();
    assert!(status.success(), "render failed: {status}");
    assert_eq!(
        std::fs::read_to_string(again.path().join("comparison.md")).unwrap(),
        md
    );
}

#[test]
fn an_unknown_workload_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_taskflow-bench"))
        .args(["compare", "--quick", "--no-python", "--workloads", "W42"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown workload W42"), "{stderr}");
}

/// W11 on the local RabbitMQ (`TASKFLOW_TEST_AMQP_URL`, default the guest
/// broker): our rows, with two worker processes, and the bare client's
/// bound. Without a broker the command leaves W11 out with a note; the test
/// then prints `skipping` and passes, unless `TASKFLOW_REQUIRE_SERVICES=1`.
#[test]
fn w11_runs_the_worker_engine_over_rabbitmq_beside_its_bound() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_taskflow-bench"))
        .args(["compare", "--quick", "--no-python", "--workloads", "W11"])
        .args(["--w11-sizes", "20", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "compare failed: {status}");
    let md = std::fs::read_to_string(out.path().join("comparison.md")).unwrap();
    if md.contains("W11 left out") {
        assert!(
            std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "W11 was left out:\n{md}"
        );
        eprintln!("skipping: no RabbitMQ broker");
        return;
    }
    let saved: Saved =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("comparison.json")).unwrap())
            .unwrap();
    let w11: Vec<&Measurement> = saved
        .figures
        .iter()
        .filter(|m| m.workload == "W11")
        .collect();
    let find = |executor: &str, unit: Unit| {
        w11.iter()
            .find(|m| m.executor == executor && m.unit == unit)
            .unwrap_or_else(|| panic!("no W11 {executor} figure in {w11:?}"))
    };
    let ours_w1 = find("taskflow-rs worker (amqp)", Unit::MicrosPerAtom);
    let ours_w2 = find("taskflow-rs worker (amqp)", Unit::AtomsPerSecond);
    let bound = find(
        "bound: bare lapin, one round trip at a time",
        Unit::MicrosPerAtom,
    );
    let tuned = find(
        "taskflow-rs worker (amqp, prefetch 32)",
        Unit::AtomsPerSecond,
    );
    assert_eq!((ours_w1.n, ours_w2.n, tuned.n), (20, 20, 20));
    assert!(ours_w1.value > 0.0 && ours_w2.value > 0.0 && tuned.value > 0.0 && bound.value > 0.0);
    // The bound is each W11 row's floor, also at Ns it was not taken at.
    let md_row = md
        .lines()
        .find(|l| l.contains("| taskflow-rs worker (amqp) |") && l.contains("µs/atom"))
        .unwrap_or_else(|| panic!("no W1 row in\n{md}"));
    assert!(md_row.trim_end().ends_with("× |"), "no ÷ floor: {md_row}");
}
