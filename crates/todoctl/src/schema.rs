//! `todoctl schema check FILE`: the compatibility gate for a proposed new
//! schema version, the same check the tests run on the committed ones.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// Schema commands.
#[derive(clap::Subcommand, Debug)]
pub enum SchemaCommand {
    /// Check that a proposed .avsc is backward and forward compatible with
    /// every existing version of its event type.
    Check {
        /// The proposed schema file.
        file: std::path::PathBuf,
    },
    /// List the known schemas with their fingerprints.
    List,
}

/// Runs a schema command.
pub fn run(cmd: SchemaCommand, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match cmd {
        SchemaCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match todo_events::check_new_schema(&text) {
                Ok(()) => {
                    writeln!(
                        out,
                        "{}: compatible with every existing version",
                        file.display()
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    writeln!(out, "{}: NOT compatible", file.display())?;
                    for p in problems {
                        writeln!(out, "  - {p}")?;
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        SchemaCommand::List => {
            for info in todo_events::schema::all() {
                let fp: String = info
                    .fingerprint()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                writeln!(
                    out,
                    "{:<26} {} {}  fingerprint {fp}",
                    info.file_name,
                    info.event_type.as_str(),
                    info.version.as_str()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
