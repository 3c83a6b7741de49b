//! Where the records and the board are: `taskflow.toml` after the flags and
//! the environment, PostgreSQL records, and a PostgreSQL server that does
//! not answer.

use super::{example, run_in};

#[test]
fn taskflow_toml_says_where_after_the_flags_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("taskflow.toml"),
        "records = \"dir:from-file/records\"\nboard = \"sqlite:from-file/board.db\"\n",
    )
    .unwrap();
    let flow = example("provision.yaml");
    let ran = run_in(dir.path(), &["run", flow.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("records dir:from-file/records"),
        "{}",
        ran.stdout
    );
    assert!(dir.path().join("from-file/records").is_dir());

    // A flag wins over the file.
    let ran = run_in(
        dir.path(),
        &["run", flow.to_str().unwrap(), "--records", "sqlite:flag.db"],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("records sqlite:flag.db"),
        "{}",
        ran.stdout
    );

    // The board of the file is where `post` posts.
    let ran = run_in(dir.path(), &["post", flow.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(dir.path().join("from-file/board.db").is_file());
}

#[test]
fn a_mistake_in_taskflow_toml_is_named_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("taskflow.toml"),
        "records = \"dir:r\"\nbaord = \"sqlite:b.db\"\n",
    )
    .unwrap();
    let ran = run_in(dir.path(), &["jobs"]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("taskflow.toml:2:1:") && ran.stderr.contains("baord"),
        "{}",
        ran.stderr
    );
    // --config names a file that must exist.
    let ran = run_in(dir.path(), &["jobs", "--config", "missing.toml"]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("missing.toml"), "{}", ran.stderr);
}

/// The local PostgreSQL (`TASKFLOW_TEST_POSTGRES_URL`, default the loopback
/// server of the test machines), or `None` (skipped, unless
/// `TASKFLOW_REQUIRE_SERVICES=1`).
#[cfg(feature = "postgres")]
fn postgres_url() -> Option<String> {
    let url = std::env::var("TASKFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let reachable =
        std::net::TcpStream::connect("127.0.0.1:5432").is_ok() || !url.contains("127.0.0.1:5432");
    if reachable {
        return Some(url);
    }
    assert!(
        std::env::var("TASKFLOW_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "PostgreSQL at {url} does not answer, and TASKFLOW_REQUIRE_SERVICES=1"
    );
    eprintln!("skipped: PostgreSQL at {url} does not answer");
    None
}

#[cfg(feature = "postgres")]
#[test]
fn a_flow_runs_on_postgres_records_in_a_schema_of_its_own() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A schema of its own (removed at the end).
    let schema = format!("taskflow_cli_{}", uuid::Uuid::new_v4().simple());
    let records = format!("{url}#{schema}");
    let flow = example("provision.yaml");
    let ran = run_in(
        dir.path(),
        &[
            "run",
            flow.to_str().unwrap(),
            "--records",
            &records,
            "--store",
            "fail_server=true",
        ],
    );
    assert_eq!(ran.code, 3, "reverted: {}", ran.stderr);
    let listed = run_in(dir.path(), &["logbooks", "--records", &records, "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("provision"), "{}", listed.stdout);
    let drop = std::process::Command::new("psql")
        .args([&url, "-qc", &format!("DROP SCHEMA {schema} CASCADE")])
        .output();
    if let Ok(out) = drop {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgres_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let flow = example("provision.yaml");
    let ran = run_in(
        dir.path(),
        &[
            "run",
            flow.to_str().unwrap(),
            "--records",
            "postgres://taskflow:secret@127.0.0.1:1/flows?connect_timeout=2",
        ],
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line: {}", ran.stderr);
    assert!(lines[0].contains("127.0.0.1:1"), "{}", lines[0]);
    assert!(!lines[0].contains("secret"), "no password: {}", lines[0]);
}
