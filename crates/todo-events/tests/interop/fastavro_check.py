"""Reads our schemas and golden records with fastavro, an Avro implementation
independent of the Rust one, and reports what it sees as one JSON object per schema
on stdout. The Rust test `interop.rs` runs it and makes the assertions.

usage: fastavro_check.py SCHEMAS_DIR GOLDEN_DIR
"""

import io
import json
import sys
from pathlib import Path

import fastavro
import fastavro.schema

TYPES = ["task.created", "task.updated", "task.deleted", "task.completed"]
VERSIONS = ["v1", "v2"]


def main(schemas_dir: Path, golden_dir: Path) -> None:
    for event_type in TYPES:
        schemas = {
            v: fastavro.parse_schema(json.loads((schemas_dir / f"{event_type}.{v}.avsc").read_text()))
            for v in VERSIONS
        }
        for version in VERSIONS:
            schema = schemas[version]
            canonical = fastavro.schema.to_parsing_canonical_form(schema)
            fingerprint = fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")
            record = (golden_dir / f"{event_type}.{version}.avro").read_bytes()
            marker, header_fp, body = record[:2], record[2:10], record[10:]
            # Read the golden body as the writer schema, and as each reader version.
            reads = {
                reader: fastavro.schemaless_reader(io.BytesIO(body), schema, schemas[reader])
                for reader in VERSIONS
            }
            # Write the golden JSON event with fastavro, as a single-object record.
            golden_json = json.loads((golden_dir / f"{event_type}.{version}.json").read_text())
            out = io.BytesIO()
            fastavro.schemaless_writer(out, schema, golden_json)
            encoded = b"\xc3\x01" + bytes.fromhex(fingerprint) + out.getvalue()
            print(
                json.dumps(
                    {
                        "file": f"{event_type}.{version}.avsc",
                        "canonical": canonical,
                        "fingerprint": fingerprint,
                        "golden_marker": marker.hex(),
                        "golden_fingerprint": header_fp.hex(),
                        "read_as": reads,
                        "fastavro_single_object": encoded.hex(),
                    }
                )
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
