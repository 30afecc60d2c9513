//! The schema files and their fingerprints. Our Parsing Canonical Form and
//! CRC-64-AVRO are checked against the Avro project's published test vectors and
//! against the `apache-avro` crate's own implementation (and, in `interop.rs`,
//! against fastavro's).

mod common;

use apache_avro::rabin::Rabin;
use apache_avro::Schema;
use common::repo_root;
use todo_events::schema::{self, crc64_avro, fingerprint, parsing_canonical_form};
use todo_events::{EventType, EventVersion};

/// (schema, canonical form, fingerprint as Java's signed long) from the Avro
/// project's `share/test/data/schema-tests.txt`.
const AVRO_TEST_VECTORS: &[(&str, &str, Option<i64>)] = &[
    (r#""null""#, r#""null""#, Some(7195948357588979594)),
    (r#"{"type":"null"}"#, r#""null""#, None),
    (r#""boolean""#, r#""boolean""#, Some(-6970731678124411036)),
    (r#""int""#, r#""int""#, Some(8247732601305521295)),
    (
        r#"{"type":"long"}"#,
        r#""long""#,
        Some(-3434872931120570953),
    ),
    (r#""float""#, r#""float""#, Some(5583340709985441680)),
    (r#""double""#, r#""double""#, Some(-8181574048448539266)),
    (r#""bytes""#, r#""bytes""#, Some(5746618253357095269)),
    (r#""string""#, r#""string""#, Some(-8142146995180207161)),
    (r#"[  ]"#, r#"[]"#, Some(-1241056759729112623)),
    (r#"[ "int"  ]"#, r#"["int"]"#, Some(-5232228896498058493)),
    (
        r#"[ "int" , {"type":"boolean"} ]"#,
        r#"["int","boolean"]"#,
        Some(5392556393470105090),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo"}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
        r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
        Some(5916914534497305771),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}"#,
        r#"{"name":"a.b.foo","type":"record","fields":[]}"#,
        Some(-4616218487480524110),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "doc":"Useful info", "aliases":["foo","bar"]}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ),
    (
        r#"{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}"#,
        Some(7843277075252814651),
    ),
    (
        r#"{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
                      {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
            "type":"record", "name":"foo" }"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}"#,
        Some(-4860222112080293046),
    ),
    (
        r#"{"type":"enum", "name":"foo", "symbols":["A1"]}"#,
        r#"{"name":"foo","type":"enum","symbols":["A1"]}"#,
        Some(-6342190197741309591),
    ),
    (
        r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
        r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
        Some(-4448647247586288245),
    ),
    (
        r#"{"name":"foo","type":"fixed","size":15}"#,
        r#"{"name":"foo","type":"fixed","size":15}"#,
        Some(1756455273707447556),
    ),
    (
        r#"{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}"#,
        r#"{"name":"x.y.z.foo","type":"fixed","size":32}"#,
        Some(-3064184465700546786),
    ),
    (
        r#"{ "items":{"type":"null"}, "type":"array"}"#,
        r#"{"type":"array","items":"null"}"#,
        Some(-589620603366471059),
    ),
    (
        r#"{ "values":"string", "type":"map"}"#,
        r#"{"type":"map","values":"string"}"#,
        Some(-8732877298790414990),
    ),
    (
        r#"{"name":"PigValue","type":"record",
            "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
        r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
        Some(-1759257747318642341),
    ),
];

#[test]
fn our_canonical_form_and_crc64_avro_match_the_avro_projects_test_vectors() {
    for (input, canonical, fp) in AVRO_TEST_VECTORS {
        let ours = parsing_canonical_form(input).unwrap();
        assert_eq!(&ours, canonical, "canonical form of {input}");
        if let Some(fp) = fp {
            assert_eq!(
                crc64_avro(ours.as_bytes()) as i64,
                *fp,
                "fingerprint of {input}"
            );
            assert_eq!(
                fingerprint(input).unwrap(),
                fp.to_le_bytes(),
                "bytes of {input}"
            );
        }
    }
}

#[test]
fn our_fingerprints_equal_the_apache_avro_crates_for_our_schemas() {
    for s in schema::all() {
        let theirs = Schema::parse_str(s.avsc).unwrap();
        assert_eq!(
            s.canonical_form(),
            theirs.canonical_form(),
            "{}",
            s.file_name
        );
        let theirs_fp = theirs.fingerprint::<Rabin>().bytes;
        assert_eq!(s.fingerprint().to_vec(), theirs_fp, "{}", s.file_name);
        // And the header we write is what apache-avro's own single-object writer writes.
        let header = apache_avro::headers::RabinFingerprintHeader::from_schema(&theirs);
        use apache_avro::headers::HeaderBuilder;
        assert_eq!(
            header.build_header(),
            s.single_object_header().to_vec(),
            "{}",
            s.file_name
        );
    }
}

#[test]
fn a_logical_type_is_dropped_from_our_canonical_form_as_the_specification_says() {
    // The trap of DESIGN §9: apache-avro keeps logicalType, Java and Python drop it.
    let with_logical = r#"{"type":"record","name":"R","fields":[
        {"name":"id","type":{"type":"string","logicalType":"uuid"}}]}"#;
    let ours = parsing_canonical_form(with_logical).unwrap();
    assert_eq!(
        ours,
        r#"{"name":"R","type":"record","fields":[{"name":"id","type":"string"}]}"#
    );
    let plain = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"string"}]}"#;
    assert_eq!(fingerprint(with_logical), fingerprint(plain));
}

#[test]
fn the_schema_files_on_disk_are_the_embedded_ones_and_use_no_logical_types() {
    let dir = repo_root().join("schemas");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".avsc"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = schema::all()
        .iter()
        .map(|s| s.file_name.to_owned())
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "every .avsc file is embedded, and only those"
    );
    for s in schema::all() {
        let text = std::fs::read_to_string(dir.join(s.file_name)).unwrap();
        assert_eq!(text, s.avsc);
        assert!(!text.contains("logicalType"), "{}", s.file_name);
    }
}

#[test]
fn each_schema_is_the_record_of_its_type_with_the_whole_envelope() {
    for t in EventType::ALL {
        for v in EventVersion::ALL {
            let s = schema::get(t, v);
            let Schema::Record(r) = s.schema() else {
                panic!("{} is not a record", s.file_name)
            };
            assert_eq!(
                r.name.fullname(None),
                format!("todo.events.{}", t.avro_record_name())
            );
            let fields: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(
                fields,
                [
                    "event_id",
                    "event_type",
                    "event_version",
                    "timestamp",
                    "correlation_id",
                    "source",
                    "payload"
                ],
                "{}",
                s.file_name
            );
            let doc = s.avsc;
            assert!(
                doc.contains(&format!("Always \\\"{t}\\\"")),
                "{}",
                s.file_name
            );
            assert!(
                doc.contains(&format!("Always \\\"{v}\\\"")),
                "{}",
                s.file_name
            );
        }
    }
}
