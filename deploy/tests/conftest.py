"""Shared fixtures: the chart's renderings made by ops/deploy-check.sh, and facts
read from the repository itself (topic names, metric names, ports, --help)."""

from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "todo"
RENDERED = Path(os.environ.get("TODO_RENDERED", ROOT / ".local" / "deploy-check"))
BIN_DIR = Path(os.environ.get("TODO_BIN_DIR", ROOT / "target" / "debug"))

# The renderings ops/deploy-check.sh makes: the three values files of the issue,
# an install on existing Kafka/PostgreSQL/Redis, and doks with the Dapr transport.
SETS = ["local", "doks", "scale", "external", "dapr"]
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


@lru_cache(maxsize=None)
def rendering(name: str) -> tuple[dict, ...]:
    path = RENDERED / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: run ops/deploy-check.sh (./dev deploy-check), which renders the chart")
    docs = tuple(d for d in yaml.safe_load_all(path.read_text()) if d)
    assert docs, f"{path} is empty"
    return docs


def objects(name: str, kind: str | None = None) -> list[dict]:
    return [o for o in rendering(name) if kind is None or o["kind"] == kind]


def one(name: str, kind: str, obj_name: str) -> dict:
    found = [o for o in objects(name, kind) if o["metadata"]["name"] == obj_name]
    assert len(found) == 1, f"{name}: expected one {kind} {obj_name}, found {len(found)}"
    return found[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


@pytest.fixture(params=SETS)
def rendered(request) -> str:
    """The name of one rendering; every test using it runs for each."""
    rendering(request.param)
    return request.param


def values(*files: str) -> dict:
    """The chart's values.yaml with the given values files layered on it."""
    out = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in files:
        _merge(out, yaml.safe_load((CHART / f).read_text()) or {})
    return out


def _merge(base: dict, top: dict) -> None:
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def topic_constants() -> dict[str, str]:
    """The contract's topic names (crates/todo-events/src/lib.rs, module topics)."""
    src = (ROOT / "crates" / "todo-events" / "src" / "lib.rs").read_text()
    found = dict(re.findall(r'pub const (\w+): &str = "(todo\.tasks\.[a-z]+)";', src))
    assert found, "no topic constants found in todo-events"
    return found


def metric_names() -> set[str]:
    """Every metric name the services declare (one module per service, plus todo-runtime)."""
    names = set()
    for path in list(ROOT.glob("crates/*/src/metrics.rs")) + [ROOT / "crates/todo-runtime/src/http.rs"]:
        names |= set(re.findall(r'pub const \w+: &str = "([a-z_]+)";', path.read_text()))
    assert "consumer_lag" in names and "events_published_total" in names
    return names


@lru_cache(maxsize=None)
def help_env(binary: str) -> frozenset[str]:
    """The environment variables a service reads, as its --help prints them ([env: NAME=...])."""
    exe = BIN_DIR / binary
    if not exe.exists():
        raise FileNotFoundError(f"{exe} is missing: cargo build -p {binary} (ops/deploy-check.sh does it)")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True, timeout=30).stdout
    names = frozenset(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", out))
    assert "DATABASE_MAX_CONNECTIONS" in names, f"no [env: ...] entries in {binary} --help"
    return names
