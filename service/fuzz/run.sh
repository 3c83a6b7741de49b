#!/usr/bin/env bash
# Fuzzes the job service's REST API against its own OpenAPI document with
# schemathesis: starts `taskflow serve` on a free port in a scratch
# directory (SQLite board and records, one flow-file job type `hello`),
# runs schemathesis against GET /api/v1/openapi.yaml, and fails when
# schemathesis finds a failure (a 5xx, a status code, content type, header
# or body the document does not describe) or when the server died or
# panicked during the run.
#
#   service/fuzz/run.sh [TASKFLOW_BINARY]     (default target/debug/taskflow)
#
# Builds nothing. Environment: FUZZ_EXAMPLES (test cases per operation and
# phase, default 100), FUZZ_SEED (default 1; "random" for a new one each
# run), FUZZ_VENV (the virtualenv, default target/fuzz-venv, reused when it
# holds the pinned schemathesis), FUZZ_CHECKS (schemathesis's --checks;
# default: all of them, positive_data_acceptance not on submitJob),
# FUZZ_REPORT_DIR (keep a HAR and a JUnit report of every request there),
# FUZZ_SCHEMA (a document file to fuzz against instead of the one the
# server serves, e.g. service/openapi.yaml while editing it: the binary
# serves the document it was built with).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
root="$(cd "$(dirname "$0")/../.." && pwd)"

bin="${1:-$root/target/debug/taskflow}"
case "$bin" in /*) ;; *) [[ -n "${1:-}" ]] && bin="$PWD/$bin" ;; esac
if [[ ! -x "$bin" ]]; then
  echo "fuzz: no taskflow binary at $bin (build it first: cargo build -p taskflow-cli)" >&2
  exit 2
fi
examples="${FUZZ_EXAMPLES:-100}"
seed="${FUZZ_SEED:-1}"
venv="${FUZZ_VENV:-$root/target/fuzz-venv}"
checks="${FUZZ_CHECKS:-}"
report_dir="${FUZZ_REPORT_DIR:-}"
schema="${FUZZ_SCHEMA:-}"
[[ -z "$schema" || "$schema" == /* ]] || schema="$PWD/$schema"
[[ -z "$report_dir" || "$report_dir" == /* ]] || report_dir="$PWD/$report_dir"

# schemathesis in a private virtualenv, pinned with all it pulls
# (requirements.txt); reinstalled when that list changes.
requirements="$root/service/fuzz/requirements.txt"
want="$(cksum <"$requirements")"
if [[ "$(cat "$venv/.fuzz-requirements" 2>/dev/null || true)" != "$want" ]]; then
  echo "fuzz: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  if [[ -e "$venv" && ! -e "$venv/pyvenv.cfg" ]]; then
    echo "fuzz: $venv exists and is not a virtualenv" >&2
    exit 2
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  echo "$want" >"$venv/.fuzz-requirements"
fi
"$venv/bin/schemathesis" --version

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true # SIGTERM: a graceful stop
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# One job type: a shell step that needs the parameter `who`.
cat >"$work/hello.yaml" <<'EOF'
name: hello
steps:
  - name: greet
    shell: echo hi
    requires: [who]
EOF

cd "$work"
JOB_SERVICE_SECRET=fuzz-secret "$bin" serve --port 0 --job-type hello=hello.yaml \
  >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

# Its one line on stdout: `taskflow serve: node NAME listening on http://ADDR`.
port=""
for _ in $(seq 1 300); do
  if line="$(grep -m1 'listening on http://' "$work/server.out" 2>/dev/null)"; then
    port="${line##*:}"
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "fuzz: the server did not start; its log:" >&2
  cat "$work/server.out" "$work/server.err" >&2
  exit 1
fi
base="http://127.0.0.1:$port"
echo "fuzz: $line (fuzzing $base, seed $seed, $examples examples per operation)"

# Jobs to act on, so that the operations on /api/v1/jobs/{id} see real
# ids (of each kind and several statuses) besides random ones: a generic
# job (it runs to success), a scheduled one (a day away), a periodic
# policy (executions every 5 seconds) and a unique job.
auth="Authorization: Harbor-Secret fuzz-secret"
submit() {
  local answer
  answer="$(curl -sS --fail-with-body -H "$auth" -H 'Content-Type: application/json' \
    -d "$1" "$base/api/v1/jobs")" || { echo "fuzz: seeding failed: $1 -> $answer" >&2; exit 1; }
  sed -E 's/.*"id":"([^"]+)".*/\1/' <<<"$answer"
}
ids=(
  "$(submit '{"job": {"name": "hello", "parameters": {"who": "world"}}}')"
  "$(submit '{"job": {"name": "hello", "parameters": {"who": "later"}, "metadata": {"kind": "Scheduled", "schedule_delay": 86400}}}')"
  "$(submit '{"job": {"name": "hello", "parameters": {"who": "often"}, "metadata": {"kind": "Periodic", "cron_spec": "*/5 * * * * *"}}}')"
  "$(submit '{"job": {"name": "hello", "parameters": {"who": "once"}, "metadata": {"unique": true}}}')"
)
echo "fuzz: seeded jobs ${ids[*]}"

# Known ids and the job type's name are drawn often, random values the
# rest of the time; hooks.py gives most submissions of `hello` its `who`.
id_values="$(printf '"%s", ' "${ids[@]}")"
cat >"$work/schemathesis.toml" <<TOML
hooks = "$root/service/fuzz/hooks.py"

[dictionaries.ids]
values = [${id_values%, }]

[dictionaries.job_types]
values = ["hello"]

[parameters]
"path.id" = { dictionary = "ids", probability = 0.7 }
"body.job.name" = { dictionary = "job_types", probability = 0.7 }

# The API sets no Location header, and learning links from URLs in bodies
# (part of the location-headers inference) crashes this schemathesis on a
# string like "http://[" that a job's parameters echo back.
[phases.stateful.inference]
algorithms = ["dependency-analysis"]

# The job types are the deployment's, not the document's: a name the
# document allows may be unknown here (400).
[[operations]]
include-operation-id = "submitJob"
checks.positive_data_acceptance.enabled = false
TOML

check_args=()
[[ -z "$checks" ]] || check_args=(--checks "$checks")
seed_args=()
report_args=(--report-dir "$work/report")
[[ -z "$report_dir" ]] || report_args=(--report har,junit --report-dir "$report_dir")
[[ "$seed" == random ]] || seed_args=(--seed "$seed")
# One worker: with two, hypothesis's lambda descriptions (ast.parse in
# threads) fail now and then on CPython 3.11.7 ("AST constructor recursion
# depth mismatch").
status=0
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "${schema:-$base/api/v1/openapi.yaml}" \
  --url "$base" \
  --header "Authorization: Harbor-Secret fuzz-secret" \
  "${check_args[@]}" \
  --max-examples "$examples" \
  "${seed_args[@]}" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  "${report_args[@]}" \
  --no-color 2>&1 | tee "$work/schemathesis.log" || status=$?

crashed=0
if ! kill -0 "$server_pid" 2>/dev/null; then
  rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  echo "fuzz: the server died during the run (exit code $rc)" >&2
  crashed=1
fi
if grep -q "' panicked at " "$work/server.err"; then
  echo "fuzz: the server panicked during the run" >&2
  crashed=1
fi
if [[ $crashed -ne 0 ]]; then
  echo "fuzz: the server's log (last 50 lines):" >&2
  tail -n 50 "$work/server.err" >&2
fi
if [[ $status -ne 0 ]]; then
  echo "fuzz: schemathesis failed (exit code $status)" >&2
fi
if [[ $status -ne 0 || $crashed -ne 0 ]]; then
  exit 1
fi
passed="$(sed -nE 's/.*[0-9]+ generated, ([0-9]+) passed.*/\1/p' "$work/schemathesis.log" | tail -n 1)"
echo "fuzz: no failure"
echo "fuzz: ${passed:-0} passed, 0 failed"
