#!/usr/bin/env python3
"""Python TaskFlow's side of `taskflow-bench compare`.

The comparison command runs this script in a private virtualenv (it installs
taskflow from PyPI there itself) and reads one JSON line per call. The
workloads are those of shared/BENCHMARKS.md, shaped exactly as the Rust side
builds them: W3's DAG is read from the file the Rust side wrote, so both
sides run the same graph.

  taskflow_side.py run W1 --n 100 [--engine parallel --workers 2] [--backend sqlite|dir|postgres --url URL] [--dag f.json]
  taskflow_side.py resume --n 100 --crash-at 50      # W9
  taskflow_side.py memory --n 1000                    # W10 (peak RSS)
  taskflow_side.py jobboard --n 1000 --consumers 4    # W8 (Redis on --port)
  taskflow_side.py remote W1 --n 100 --url amqp://... # W11 (worker-based engine, 2 worker processes)

A timed run covers engines.load(...) and engine.run() (which compiles,
prepares and runs), as the Rust side times build, prepare and run; building
the flow object is outside the timing on both sides.
"""
import argparse
import json
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

import futurist
from oslo_utils import uuidutils
from taskflow import engines, retry, task
from taskflow.patterns import graph_flow, linear_flow, unordered_flow
from taskflow.persistence import backends as p_backends
from taskflow.persistence import models


class Step(task.Task):
    def execute(self, x):
        return x + 1


class Noop(task.Task):
    def execute(self):
        return 1


class Sum(task.Task):
    def execute(self, **inputs):
        return 1 + sum(inputs.values())


class Sleep(task.Task):
    def execute(self):
        time.sleep(0.01)
        return 1


class Boom(task.Task):
    def execute(self, x):
        raise RuntimeError("the last atom of W6 fails")

    def revert(self, *args, **kwargs):
        pass


class Flaky(task.Task):
    calls = 0

    def execute(self):
        Flaky.calls += 1
        if Flaky.calls < 5:
            raise RuntimeError("flaky %d" % Flaky.calls)
        return Flaky.calls


class LoggedStep(task.Task):
    """W9: logs its name, then adds one; blocks in the atom named by W9_BLOCK_AT."""

    def execute(self, x):
        if self.name == os.environ.get("W9_BLOCK_AT"):
            print("blocked", flush=True)
            time.sleep(3600)
        with open(os.environ["W9_LOG"], "a") as log:
            log.write(self.name + "\n")
        return x + 1


def linear(n, cls=Step, fail_last=False):
    """t0 takes x from the store; ti takes x{i-1} as x and provides x{i}."""
    flow = linear_flow.Flow("w1")
    for i in range(n):
        kind = Boom if (fail_last and i == n - 1) else cls
        rebind = {"x": "x%d" % (i - 1)} if i > 0 else None
        flow.add(kind("t%d" % i, rebind=rebind, provides="x%d" % i))
    return flow


def unordered(n, cls=Noop):
    flow = unordered_flow.Flow("w2")
    for i in range(n):
        flow.add(cls("t%d" % i))
    return flow


def layered(preds):
    """Node i provides v{i} and requires its predecessors' values."""
    flow = graph_flow.Flow("w3")
    for i, ps in enumerate(preds):
        rebind = {"p%d" % k: "v%d" % p for k, p in enumerate(ps)}
        flow.add(Sum("n%d" % i, rebind=rebind, requires=list(rebind), provides="v%d" % i))
    return flow


def build(args):
    w, n = args.workload, args.n
    if w == "W1" or w == "W4":
        return linear(n), {"x": 0}
    if w == "W2":
        return unordered(n), {}
    if w == "W3":
        with open(args.dag) as f:
            return layered(json.load(f)), {}
    if w == "W5":
        return unordered(100, Sleep), {}
    if w == "W6":
        return linear(n, fail_last=True), {"x": 0}
    if w == "W7":
        flow = linear_flow.Flow("w7", retry=retry.Times(5))
        flow.add(Flaky("flaky"))
        return flow, {}
    raise SystemExit("unknown workload " + w)


def postgres_schema(url):
    """A fresh schema in the database at `url` (a libpq URL), and the
    SQLAlchemy URL whose sessions use it: the settings the URL's `options`
    carries (e.g. synchronous_commit) are kept, and search_path is added."""
    import psycopg2
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    schema = "taskflow_py_" + uuidutils.generate_uuid(dashed=False)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA "%s"' % schema)
    conn.close()
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = (query.get("options", "") + " -c search_path=" + schema).strip()
    scheme = "postgresql+psycopg2"
    sa_url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))
    return schema, sa_url


def drop_postgres_schema(url, schema):
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % schema)
    conn.close()


def backend_for(kind, tmp, url=None):
    if kind == "postgres":
        # TaskFlow's SQLAlchemy backend on PostgreSQL (psycopg2).
        return p_backends.fetch({"connection": url})
    if kind == "sqlite":
        return p_backends.fetch({"connection": "sqlite:///" + os.path.join(tmp, "tf.db")})
    if kind == "dir":
        return p_backends.fetch({"connection": "dir", "path": os.path.join(tmp, "records")})
    return None


def run_once(args):
    flow, store = build(args)
    Flaky.calls = 0
    schema = None
    sa_url = None
    if args.backend == "postgres":
        schema, sa_url = postgres_schema(args.url)
    try:
        return run_in(args, flow, store, sa_url)
    finally:
        if schema is not None:
            drop_postgres_schema(args.url, schema)


def run_in(args, flow, store, sa_url):
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"store": store}
        backend = backend_for(args.backend, tmp, sa_url)
        if backend is not None:
            conn = backend.get_connection()
            conn.upgrade()
            book = models.LogBook("bench")
            fd = models.FlowDetail("bench", uuid=uuidutils.generate_uuid())
            book.add(fd)
            conn.save_logbook(book)
            conn.close()
            kwargs.update(backend=backend, flow_detail=fd, book=book)
        pool = None
        if args.engine == "parallel":
            # Passed in, so the pool's shutdown (about 1 s) stays out of the timing.
            pool = futurist.ThreadPoolExecutor(max_workers=args.workers)
            kwargs.update(engine="parallel", executor=pool)
        else:
            kwargs.update(engine="serial")
        start = time.perf_counter()
        eng = engines.load(flow, **kwargs)
        try:
            eng.run()
            failed = False
        except Exception:
            failed = True
        elapsed = time.perf_counter() - start
        if pool is not None:
            pool.shutdown()
        if backend is not None:
            backend.close()
    if failed != (args.workload == "W6"):
        raise SystemExit("%s %s" % (args.workload, "failed" if failed else "did not fail"))
    return elapsed


def cmd_run(args):
    seconds = []
    first = run_once(args)
    if first >= args.long_run:
        # Too long to repeat: the one run is the figure.
        print(json.dumps({"workload": args.workload, "n": args.n, "seconds": [first]}))
        return
    if first > 1.0:
        seconds.append(first)
    # Otherwise the first run was a warm-up (imports, caches), not counted.
    budget_end = time.perf_counter() + args.budget
    while len(seconds) < args.repeat:
        seconds.append(run_once(args))
        # One run is enough when a run is long; the budget bounds the rest.
        if seconds[-1] > args.long_run or time.perf_counter() > budget_end:
            break
    print(json.dumps({"workload": args.workload, "n": args.n, "seconds": seconds}))


def cmd_resume(args):
    if args.child:
        return resume_child(args)
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "tf.db")
        backend = p_backends.fetch({"connection": "sqlite:///" + db})
        conn = backend.get_connection()
        conn.upgrade()
        book = models.LogBook("w9")
        fd = models.FlowDetail("w9", uuid=uuidutils.generate_uuid())
        book.add(fd)
        conn.save_logbook(book)
        conn.close()
        env = dict(os.environ, W9_LOG=os.path.join(tmp, "ran.log"),
                   W9_BLOCK_AT="t%d" % args.crash_at)
        cmd = [sys.executable, __file__, "resume", "--n", str(args.n),
               "--child", db, book.uuid, fd.uuid]
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        for line in first.stdout:
            if line.strip() == "blocked":
                break
        first.send_signal(signal.SIGKILL)
        first.wait()
        env["W9_BLOCK_AT"] = ""
        start = time.perf_counter()
        second = subprocess.run(cmd, env=env, capture_output=True, text=True)
        process_s = time.perf_counter() - start
        if second.returncode != 0:
            raise SystemExit("the resume process failed: " + second.stderr[-500:])
        inner = json.loads(second.stdout.strip().splitlines()[-1])
        with open(env["W9_LOG"]) as f:
            ran = f.read().split()
        print(json.dumps({"workload": "W9", "n": args.n, "process_s": process_s,
                          "startup_s": inner["startup_s"], "run_s": inner["run_s"],
                          "ran_twice": sorted({t for t in ran if ran.count(t) > 1}),
                          "result": inner["result"]}))


def resume_child(args):
    db, book_id, fd_id = args.child
    backend = p_backends.fetch({"connection": "sqlite:///" + db})
    book = backend.get_connection().get_logbook(book_id)
    fd = book.find(fd_id)
    start = time.perf_counter()
    eng = engines.load(linear(args.n, LoggedStep), flow_detail=fd, book=book,
                       backend=backend, store={"x": 0})
    eng.compile()
    eng.prepare()
    loaded = time.perf_counter()
    eng.run()
    ran = time.perf_counter()
    print(json.dumps({"startup_s": loaded - start, "run_s": ran - loaded,
                      "result": eng.storage.fetch("x%d" % (args.n - 1))}))


def cmd_memory(args):
    eng = engines.load(linear(args.n), store={"x": 0}, engine="serial")
    eng.run()
    # VmHWM, as the Rust side reads it; ru_maxrss (KiB on Linux) where there is no /proc.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
    except OSError:
        pass
    print(json.dumps({"workload": "W10", "n": args.n, "peak_rss_kib": peak}))


def jobboard_consume(ns, port, me, done):
    from taskflow import exceptions as exc
    from taskflow.jobs import backends as job_backends
    b = job_backends.fetch("bench", {"board": "redis", "host": "127.0.0.1", "port": port,
                                     "namespace": ns})
    b.connect()
    while True:
        got = False
        for job in b.iterjobs(only_unclaimed=True, ensure_fresh=True):
            try:
                b.claim(job, me)
            except (exc.UnclaimableJob, exc.NotFound):
                continue
            b.consume(job, me)
            got = True
            with done.get_lock():
                done.value += 1
        if not got and b.job_count == 0:
            break
    b.close()


def cmd_jobboard(args):
    from taskflow.jobs import backends as job_backends
    ns = "tfbench-" + uuidutils.generate_uuid()[:8]
    with tempfile.TemporaryDirectory() as tmp:
        persistence = p_backends.fetch({"connection": "sqlite:///" + os.path.join(tmp, "tf.db")})
        conn = persistence.get_connection()
        conn.upgrade()
        b = job_backends.fetch("bench", {"board": "redis", "host": "127.0.0.1",
                                         "port": args.port, "namespace": ns},
                               persistence=persistence)
        b.connect()
        for i in range(args.n):
            book = models.LogBook("job-%d" % i)
            book.add(models.FlowDetail("flow-%d" % i, uuid=uuidutils.generate_uuid()))
            conn.save_logbook(book)
            b.post("job-%d" % i, book=book)
        b.close()
        done = mp.Value("i", 0)
        procs = [mp.Process(target=jobboard_consume, args=(ns, args.port, "c%d" % i, done))
                 for i in range(args.consumers)]
        start = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        seconds = time.perf_counter() - start
    print(json.dumps({"workload": "W8", "n": args.n, "consumers": args.consumers,
                      "consumed": done.value, "seconds": [seconds]}))


def remote_worker(url, exchange, topic, threads):
    """W11: one worker process of the worker-based engine; runs until killed."""
    from taskflow.engines.worker_based import worker as wb_worker
    w = wb_worker.Worker(exchange, topic, [Step, Noop], threads_count=threads, url=url)
    w.run(display_banner=False)


def cmd_remote(args):
    """W11: W1 or W2 on the worker-based engine over RabbitMQ (kombu's amqp
    transport), with two worker processes started first (outside the timing,
    as the Rust side's). A timed run covers engines.load(...) and
    engine.run(), as the other rows."""
    exchange = "tfbench-py-" + uuidutils.generate_uuid()[:8]
    topics = ["w%d" % i for i in range(args.processes)]
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=remote_worker, args=(args.url, exchange, t, args.threads),
                         daemon=True) for t in topics]
    for p in procs:
        p.start()
    try:
        time.sleep(args.settle)
        if args.workload == "W1":
            flow, store = linear(args.n), {"x": 0}
        else:
            flow, store = unordered(args.n), {}
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            eng = engines.load(flow, store=store, engine="worker-based", url=args.url,
                               exchange=exchange, topics=topics,
                               transition_timeout=max(60, args.n))
            eng.run()
            seconds.append(time.perf_counter() - start)
            if args.workload == "W1" and eng.storage.fetch("x%d" % (args.n - 1)) != args.n:
                raise SystemExit("W11: the chain computed the wrong value")
            if seconds[-1] > args.long_run:
                break
    finally:
        for p in procs:
            p.kill()
            p.join()
    print(json.dumps({"workload": "W11-" + args.workload, "n": args.n, "seconds": seconds}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("workload")
    r.add_argument("--n", type=int, default=100)
    r.add_argument("--engine", default="serial", choices=["serial", "parallel"])
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--backend", default="memory", choices=["memory", "sqlite", "dir", "postgres"])
    r.add_argument("--url", help="the PostgreSQL database (libpq URL) of --backend postgres")
    r.add_argument("--dag")
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--budget", type=float, default=30.0)
    r.add_argument("--long-run", type=float, default=10.0)
    s = sub.add_parser("resume")
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--crash-at", type=int, default=50)
    s.add_argument("--child", nargs=3)
    m = sub.add_parser("memory")
    m.add_argument("--n", type=int, default=1000)
    j = sub.add_parser("jobboard")
    j.add_argument("--n", type=int, default=1000)
    j.add_argument("--consumers", type=int, default=1)
    j.add_argument("--port", type=int, default=6379)
    w = sub.add_parser("remote")
    w.add_argument("workload", choices=["W1", "W2"])
    w.add_argument("--n", type=int, default=100)
    w.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672//")
    w.add_argument("--processes", type=int, default=2)
    w.add_argument("--threads", type=int, default=2)
    w.add_argument("--repeat", type=int, default=1)
    w.add_argument("--settle", type=float, default=2.0,
                   help="seconds the workers are given to connect before the first run")
    w.add_argument("--long-run", type=float, default=10.0)
    args = p.parse_args()
    {"run": cmd_run, "resume": cmd_resume, "memory": cmd_memory,
     "jobboard": cmd_jobboard, "remote": cmd_remote}[args.cmd](args)


if __name__ == "__main__":
    main()
