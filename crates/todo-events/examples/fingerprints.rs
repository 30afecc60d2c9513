//! Prints every event schema's file, fingerprint and canonical form.
//! `cargo run -p todo-events --example fingerprints`

fn main() {
    for s in todo_events::schema::all() {
        let hex: String = s.fingerprint().iter().map(|b| format!("{b:02x}")).collect();
        println!("{}\t{hex}\t{}", s.file_name, s.canonical_form());
    }
}
