"""The chart reads deploy/dapr and ops/prometheus/alerts.yml through links; a packaged
chart (helm package, what a registry holds) must carry their contents."""

from __future__ import annotations

import os
import subprocess
import tarfile

import yaml

from conftest import CHART, rendering

HELM = os.environ.get("TODO_HELM", "helm")
KUBE = os.environ.get("TODO_KUBE_VERSION", "1.33.0")


def test_a_packaged_chart_renders_the_same_objects_as_the_source(tmp_path):
    subprocess.run([HELM, "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True, timeout=60)
    (tgz,) = tmp_path.glob("todo-*.tgz")
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
        assert "todo/dapr/pubsub.yaml" in names and "todo/files/alerts.yml" in names
        assert not any(m.issym() or m.islnk() for m in tar.getmembers()), "links must be resolved into files"
    out = subprocess.run(
        [HELM, "template", "todo", str(tgz), "--namespace", "todo", "--kube-version", KUBE,
         "-f", str(CHART / "values-doks.yaml")],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    packaged = [d for d in yaml.safe_load_all(out) if d]
    assert packaged == list(rendering("doks"))
