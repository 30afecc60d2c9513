"""The migration Job's command (each binary with --migrate-only) against the real
binaries and the local PostgreSQL of `./dev up --infra`. The database URLs carry no
password and PGPASSWORD supplies it, as in the chart."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from conftest import BIN_DIR, ROOT

pytestmark = pytest.mark.stack


def _local():
    url = urlsplit(os.environ["DATABASE_URL"])  # from ./dev env
    return url.hostname, url.port, url.username, url.password


def _psql(db, sql):
    host, port, user, password = _local()
    out = subprocess.run(
        ["psql", "-w", "-tAc", sql, f"postgres://{user}@{host}:{port}/{db}"],
        env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True, check=True, timeout=30,
    )
    return out.stdout.strip()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _migrate(binary, env, timeout=180):
    base = {"PATH": os.environ["PATH"], "HTTP_ADDR": f"127.0.0.1:{_free_port()}", "LOG_FORMAT": "json"}
    return subprocess.run(
        [str(BIN_DIR / binary), "--migrate-only"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _url_without_password(db):
    host, port, user, _ = _local()
    return f"postgres://{user}@{host}:{port}/{db}"


def _migration_files(crate):
    return len(list((ROOT / "crates" / crate / "migrations").glob("*.sql")))


def test_the_backends_migrations_run_once_and_the_process_stops():
    db = f"test_deploy_{uuid.uuid4().hex[:12]}"
    _psql("postgres", f"create database {db}")
    try:
        env = {"DATABASE_URL": _url_without_password(db), "PGPASSWORD": _local()[3]}
        first = _migrate("todo-backend", env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "migrations applied" in first.stdout
        applied = int(_psql(db, "select count(*) from _sqlx_migrations where success"))
        assert applied == _migration_files("todo-backend") > 0
        again = _migrate("todo-backend", env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert int(_psql(db, "select count(*) from _sqlx_migrations")) == applied
    finally:
        _psql("postgres", f"drop database if exists {db} with (force)")


def test_the_event_store_is_created_and_migrated_without_kafka():
    db = f"test_deploy_es_{uuid.uuid4().hex[:12]}"
    env = {
        "EVENT_DATABASE_URL": _url_without_password(db),
        "PGPASSWORD": _local()[3],
        # Nothing listens there: migrating needs no broker.
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_free_port()}",
    }
    try:
        done = _migrate("todo-event-service", env)
        assert done.returncode == 0, done.stdout + done.stderr
        applied = int(_psql(db, "select count(*) from _sqlx_migrations where success"))
        assert applied == _migration_files("todo-event-service") > 0
    finally:
        _psql("postgres", f"drop database if exists {db} with (force)")


def test_bad_credentials_fail_the_job_with_one_line():
    env = {"DATABASE_URL": _url_without_password("todo"), "PGPASSWORD": "not-the-password"}
    failed = _migrate("todo-backend", env, timeout=120)
    assert failed.returncode == 1
    assert "password authentication failed" in failed.stderr.strip().splitlines()[-1]
