"""Strict offline validation of rendered Kubernetes objects.

Built-in kinds: Kubernetes' own JSON schemas for one stated version, as the PyPI
package kubernetes-validate ships them (its "-strict" variant: unknown fields are
errors). Custom resources: the operators' CRDs in deploy/tests/crds, whose
openAPIV3Schema is turned into a strict JSON schema the way kubeconform's
openapi2jsonschema does it (additionalProperties: false on every object schema
that lists its properties, unless it preserves unknown fields).
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33"
CRD_DIR = Path(__file__).resolve().parent / "crds"

# metadata of a custom resource: what the API server itself checks, strictly.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_METADATA_KEYS = {"name", "namespace", "labels", "annotations"}


class SchemaError(Exception):
    pass


def _strict(schema):
    """A copy of an OpenAPI v3 structural schema as a strict JSON schema."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    s = {k: _strict(v) if k in ("items", "not") else v for k, v in schema.items()}
    for key in ("properties", "patternProperties"):
        if key in s:
            s[key] = {name: _strict(sub) for name, sub in s[key].items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [_strict(sub) for sub in s[key]]
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = _strict(s["additionalProperties"])
    if s.pop("x-kubernetes-int-or-string", False):
        s.pop("type", None)
        s["anyOf"] = s.get("anyOf", []) + [{"type": "integer"}, {"type": "string"}]
    if s.pop("nullable", False) and "type" in s:
        s["type"] = [s["type"], "null"]
    preserve = s.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in s and "additionalProperties" not in s and not preserve:
        s["additionalProperties"] = False
    return s


@lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every CRD."""
    out = {}
    for path in sorted(CRD_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if not version.get("served", False):
                    continue
                schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                # metadata is checked on its own (check_metadata).
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                out[(f"{group}/{version['name']}", kind)] = schema
    return out


def check_metadata(obj: dict) -> None:
    meta = obj.get("metadata") or {}
    extra = set(meta) - _METADATA_KEYS
    if extra:
        raise SchemaError(f"metadata has fields a chart should not set: {sorted(extra)}")
    name = meta.get("name", "")
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise SchemaError(f"metadata.name {name!r} is not a DNS subdomain name")
    for key in ("labels", "annotations"):
        for k, v in (meta.get(key) or {}).items():
            if not isinstance(v, str):
                raise SchemaError(f"metadata.{key}.{k} is not a string: {v!r}")


def validate(obj: dict) -> str:
    """Validates one object; returns what it was validated against. Raises on any error."""
    api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    schema = crd_schemas().get((api, kind))
    if schema is not None:
        check_metadata(obj)
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            raise SchemaError(
                "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5])
            )
        return f"CRD {api} {kind}"
    if "/" in api and "." in api.split("/")[0] and not api.split("/")[0].endswith("k8s.io"):
        raise SchemaError(f"no CRD in {CRD_DIR} for {api} {kind}")
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        raise SchemaError(f"{'/'.join(map(str, e.path))}: {e.message}") from None
    except kubernetes_validate.SchemaNotFoundError as e:
        raise SchemaError(e.message) from None
    return f"Kubernetes {KUBERNETES_VERSION} {api} {kind}"
