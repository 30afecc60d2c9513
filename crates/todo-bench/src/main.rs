//! todo-bench: parses the command line and runs it (see the library).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = todo_bench::cli::Cli::parse();
    match todo_bench::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("todo-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
