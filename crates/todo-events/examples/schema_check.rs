//! Checks a proposed new event schema version against the existing ones, as
//! `todoctl schema check FILE` will.
//! `cargo run -p todo-events --example schema_check -- schemas/task.created.v3.avsc`

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: schema_check FILE.avsc");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    match todo_events::check_new_schema(&text) {
        Ok(()) => {
            println!("{path}: compatible with every existing version");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                println!("{path}: {p}");
            }
            ExitCode::FAILURE
        }
    }
}
