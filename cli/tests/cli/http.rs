//! The `http` task against a small server on the loopback address: the
//! request with its arguments filled in, a refused status as the failure,
//! and the revert request naming the result.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::run_in;

/// Serves `n` requests (each on its own connection), then returns what
/// it was sent: "METHOD PATH BODY".
fn serve(n: usize) -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut log = Vec::new();
        while log.len() < n && Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_owned(),
                parts.next().unwrap_or("").to_owned(),
            );
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            log.push(format!(
                "{method} {path} {}",
                String::from_utf8_lossy(&body)
            ));
            let (status, reply) = match (method.as_str(), path.as_str()) {
                ("POST", "/volumes") => ("201 Created", r#"{"id": 7}"#),
                ("DELETE", _) => ("204 No Content", ""),
                _ => ("503 Service Unavailable", "overloaded"),
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
        log
    });
    (port, handle)
}

#[test]
fn a_request_its_refused_neighbour_and_the_revert() {
    let (port, server) = serve(3);
    let dir = tempfile::tempdir().unwrap();
    let flow = format!(
        r#"name: api
store:
  base: http://127.0.0.1:{port}
  region: eu-1
steps:
  - name: create
    http:
      method: POST
      url: ${{base}}/volumes
      body:
        size: 10
        region: ${{region}}
      revert:
        method: DELETE
        url: ${{base}}/volumes/${{result.id}}
    requires: [base, region]
    provides: volume
  - name: attach
    http:
      url: ${{base}}/attach/${{volume.id}}
      success: [200]
    requires: [base, volume]
"#
    );
    std::fs::write(dir.path().join("api.yaml"), flow).unwrap();
    let ran = run_in(dir.path(), &["run", "api.yaml", "--json"]);
    assert_eq!(ran.code, 3, "REVERTED: {}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    let atoms = summary["atoms"].as_array().unwrap();
    assert_eq!(atoms[0]["name"], "create");
    assert_eq!(atoms[0]["state"], "REVERTED");
    assert_eq!(atoms[0]["result"], serde_json::json!({"id": 7}));
    let failure = atoms[1]["failure"].as_str().unwrap();
    assert_eq!(
        failure,
        format!("HttpStatus: GET http://127.0.0.1:{port}/attach/7 answered 503: overloaded")
    );
    let log = server.join().unwrap();
    assert_eq!(
        log,
        [
            r#"POST /volumes {"region":"eu-1","size":10}"#.to_owned(),
            "GET /attach/7 ".to_owned(),
            "DELETE /volumes/7 ".to_owned(),
        ]
    );
}
