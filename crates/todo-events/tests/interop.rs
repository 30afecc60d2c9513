//! Interoperability with an independent Avro implementation, Python's fastavro:
//! it must compute our fingerprints and canonical forms, read our golden records
//! (as their writer version and as the other version), write byte-for-byte what we
//! write, and we must read what it writes. `ops/avro-venv.sh` installs it
//! (idempotently) into a venv under `.local/`.

mod common;

use std::process::Command;

use common::{golden_event, repo_root};
use serde_json::Value;
use todo_events::schema;
use todo_events::{decode, ContentType, EventType, EventVersion};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn run_fastavro() -> Vec<Value> {
    let root = repo_root();
    let venv = Command::new("bash")
        .arg(root.join("ops/avro-venv.sh"))
        .output()
        .expect("bash runs");
    assert!(
        venv.status.success(),
        "ops/avro-venv.sh failed:\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    let out = Command::new(&python)
        .arg(root.join("crates/todo-events/tests/interop/fastavro_check.py"))
        .arg(root.join("schemas"))
        .arg(root.join("schemas/golden"))
        .output()
        .expect("the venv's python runs");
    assert!(
        out.status.success(),
        "fastavro_check.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The golden event as a reader of `reader` sees it: the JSON wire form of the
/// fields `reader`'s schema has, with the envelope as written.
fn expected_read(t: EventType, written: EventVersion, reader: EventVersion) -> Value {
    let mut e = golden_event(t, written);
    e.payload = e.payload.as_in_version(reader);
    e.event_version = reader;
    let mut json = serde_json::to_value(&e).unwrap();
    json["event_version"] = Value::from(written.as_str());
    json
}

#[test]
fn fastavro_agrees_with_us_on_fingerprints_golden_records_and_resolution() {
    let reports = run_fastavro();
    assert_eq!(reports.len(), 8, "one report per schema");
    for report in reports {
        let file = report["file"].as_str().unwrap();
        let info = schema::all()
            .iter()
            .find(|s| s.file_name == file)
            .unwrap_or_else(|| panic!("fastavro reported an unknown file {file}"));
        let (t, v) = (info.event_type, info.version);

        // Canonical form and fingerprint computed independently.
        assert_eq!(
            report["canonical"],
            info.canonical_form(),
            "{file}: canonical form"
        );
        assert_eq!(
            report["fingerprint"],
            hex(&info.fingerprint()),
            "{file}: fingerprint"
        );
        assert_eq!(report["golden_marker"], "c301", "{file}");
        assert_eq!(
            report["golden_fingerprint"],
            hex(&info.fingerprint()),
            "{file}"
        );

        // fastavro reads our golden record, as its writer version and as the other.
        for reader in EventVersion::ALL {
            assert_eq!(
                report["read_as"][reader.as_str()],
                expected_read(t, v, reader),
                "{file} read by fastavro with the {reader} schema"
            );
        }

        // fastavro writes exactly our bytes, and we read what it writes.
        let theirs = unhex(report["fastavro_single_object"].as_str().unwrap());
        let ours = golden_event(t, v).encode(ContentType::Avro).unwrap();
        assert_eq!(hex(&theirs), hex(&ours), "{file}: fastavro's encoding");
        assert_eq!(
            decode(&theirs, ContentType::Avro).unwrap(),
            golden_event(t, v),
            "{file}"
        );
    }
}
