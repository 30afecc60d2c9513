"""The image definition (deploy/Dockerfile) agrees with the crates and the chart.
No image is built on the development machines (no container engine, no base
images), so what can be checked is checked here."""

from __future__ import annotations

import re

import tomllib

from conftest import ROOT, containers, objects, values

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
BINARIES = {"todo-backend", "todo-event-service", "todoctl"}


def _dockerfile():
    return DOCKERFILE.read_text()


def _default_port(crate):
    src = (ROOT / "crates" / crate / "src" / "config.rs").read_text()
    (addr,) = re.findall(r'env = "HTTP_ADDR", default_value = "[\d.]+:(\d+)"', src)
    return int(addr)


def test_the_image_is_multi_stage_and_runs_as_the_charts_non_root_user():
    text = _dockerfile()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert stages == ["build", "runtime"]
    (user,) = re.findall(r"^USER (\d+):(\d+)$", text, re.M)
    pod = values()["podSecurityContext"]
    assert (int(user[0]), int(user[1])) == (pod["runAsUser"], pod["runAsGroup"]) and pod["runAsUser"] != 0


def test_the_image_builds_and_ships_the_release_binaries_of_both_services_and_todoctl():
    text = _dockerfile()
    (build,) = re.findall(r"cargo build --release --locked ((?:-p \S+ ?)+)", text)
    assert set(re.findall(r"-p (\S+)", build)) == BINARIES
    for b in BINARIES:
        manifest = tomllib.loads((ROOT / "crates" / b / "Cargo.toml").read_text())
        assert manifest["package"]["name"] == b
        assert f"/out/{b}" in text


def test_every_command_in_the_chart_is_a_program_in_the_image():
    text = _dockerfile()
    shipped = {f"/usr/local/bin/{b}" for b in BINARIES} | {"--migrate-only"}
    assert all(b in text for b in BINARIES)
    for name in ("local", "doks", "external"):
        for w in objects(name):
            if w["kind"] not in {"Deployment", "Job"}:
                continue
            for c in containers(w):
                for part in c["command"]:
                    assert part in shipped, f"{w['metadata']['name']}/{c['name']}: {part}"


def test_the_image_exposes_the_ports_of_the_chart_and_of_the_crates():
    (exposed,) = re.findall(r"^EXPOSE ([\d ]+)$", _dockerfile(), re.M)
    ports = {int(p) for p in exposed.split()}
    v = values()
    assert ports == {v["backend"]["port"], v["eventService"]["port"]}
    assert v["backend"]["port"] == _default_port("todo-backend")
    assert v["eventService"]["port"] == _default_port("todo-event-service")
