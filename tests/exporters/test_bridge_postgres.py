"""Direct Postgres statistics against a real, throwaway PostgreSQL cluster (Debian's postgresql package)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import threading

import pytest

from tests.exporters.bridgetest import wait_for
from tests.support.ports import free_port


def _bindir() -> str | None:
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if cands:
        return os.path.dirname(cands[0])
    p = shutil.which("initdb")
    return os.path.dirname(os.path.realpath(p)) if p else None


@pytest.fixture
def pg(tmp_path):
    bindir = _bindir()
    if not bindir or not os.path.exists(os.path.join(bindir, "pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql")
    psycopg = pytest.importorskip("psycopg")
    prefix: list[str] = []
    import pathlib
    import tempfile

    # pytest's tmp_path lives under a 0700 directory: the cluster owner could not reach it
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="obs-bridges-pg-"))
    os.chmod(workdir, 0o755)
    if os.geteuid() == 0:  # initdb refuses to run as root: use an unprivileged account
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None:
            pytest.skip("running as root and no unprivileged user (postgres/nobody) to own the cluster")
        pw = pwd.getpwnam(user)
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    data = workdir / "data"
    port = free_port()

    def run(*argv, timeout=120):
        return subprocess.run(prefix + list(argv), capture_output=True, text=True, timeout=timeout, cwd=workdir)

    r = run(os.path.join(bindir, "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    assert r.returncode == 0, r.stderr
    conf = (f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{workdir}'\n"
            "shared_preload_libraries = 'pg_stat_statements'\nfsync = off\n")
    run("sh", "-c", f"cat >> {data}/postgresql.conf <<'EOF'\n{conf}EOF")
    r = run(os.path.join(bindir, "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-w", "-t", "60", "start")
    assert r.returncode == 0, r.stderr + r.stdout
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            c.execute("CREATE TABLE t (id int primary key, v text)")
            c.execute("INSERT INTO t VALUES (1, 'a')")
            for _ in range(5):
                c.execute("SELECT v AS secret_marker_query_text FROM t WHERE id = 1").fetchall()
        yield dsn
    finally:
        run(os.path.join(bindir, "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_pg_statistics(procs, pg, tmp_path):
    import psycopg

    sim = procs.sim()
    sim.ctl("POST", "ratelimit", {"platform": "supabase", "limit": 100000})
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(pg)
    holder = psycopg.connect(pg)  # an open transaction holding a lock
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    waiter_done = threading.Event()

    def waiter():
        try:
            with psycopg.connect(pg, autocommit=True) as c:
                c.execute("SET statement_timeout = '20s'")
                c.execute("SELECT count(*) FROM t").fetchall()
        except psycopg.Error:
            pass
        waiter_done.set()

    th = threading.Thread(target=waiter, daemon=True)
    th.start()

    def blocked_and_aged() -> bool:
        """The waiter is queued on the lock and the holder's transaction is >= 1 s old, as Postgres sees it."""
        with psycopg.connect(pg, autocommit=True) as c:
            waiting = c.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND query LIKE 'SELECT count(*) FROM t%'").fetchone()[0]
            age = c.execute("SELECT max(extract(epoch FROM clock_timestamp() - xact_start)) FROM pg_stat_activity "
                            "WHERE state = 'idle in transaction'").fetchone()[0]
        return waiting >= 1 and age is not None and age >= 1.1

    wait_for(blocked_and_aged, 15, 0.1, what="the waiter blocked behind a >= 1.1 s old transaction")
    try:
        exp = procs.exporter("supabase", {"SUPABASE_API_URL": sim.url + "/supabase",
                                          "SUPABASE_ACCESS_TOKEN": "sbp_test_123456", "SUPABASE_DB_URL_FILE": str(dsn_file),
                                          "SUPABASE_DB_POLL_INTERVAL_SECONDS": "1"}, wait_upstream="postgres")
        wait_for(lambda: exp.value("supabase_db_locks_waiting") >= 1, 15, what="a waiting lock")
        assert exp.value("supabase_db_up") == 1
        assert exp.value("supabase_db_connections", state="idle in transaction") >= 1
        assert exp.value("supabase_db_connections", state="active") >= 1
        states = {s.labels["state"] for s in exp.samples() if s.name == "supabase_db_connections"}
        assert {"active", "idle", "idle in transaction"} <= states
        assert exp.value("supabase_db_oldest_transaction_age_seconds") >= 1.0
        assert exp.value("supabase_db_statements_available") == 1
        assert exp.value("supabase_db_statements_calls_total") >= 5
        assert exp.value("supabase_db_statements_exec_seconds_total") > 0
        text = exp.metrics_text()
        assert "secret_marker" not in text and "SELECT" not in text
        assert "postgres@" not in text and "postgres@" not in exp.logs()
    finally:
        holder.rollback()
        holder.close()
        waiter_done.wait(10)


def test_pg_unreachable_is_reported_not_fatal(procs, tmp_path):
    pytest.importorskip("psycopg")
    sim = procs.sim()
    exp = procs.exporter("supabase", {"SUPABASE_API_URL": sim.url + "/supabase", "SUPABASE_ACCESS_TOKEN": "sbp_x_123456",
                                      "SUPABASE_DB_URL": f"postgresql://u:hunter2pw@127.0.0.1:{free_port()}/db",
                                      "SUPABASE_DB_POLL_INTERVAL_SECONDS": "1", "HTTP_TIMEOUT_SECONDS": "2"})
    wait_for(lambda: (exp.value("supabase_exporter_poll_errors_total", upstream="postgres") or 0) >= 1, 20,
             what="postgres error")
    assert exp.value("supabase_db_up") == 0
    assert "hunter2pw" not in exp.logs() and "hunter2pw" not in exp.metrics_text()
