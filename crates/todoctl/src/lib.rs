//! todoctl: the operator's tool. Every command is a function of this library
//! so that tests call it directly; `main.rs` only parses and runs.

pub mod dlq;
pub mod replay;
pub mod schema;
pub mod tail;
pub mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use todo_kafka::KafkaArgs;

/// todoctl: operate the todo event pipeline.
#[derive(Parser, Debug)]
#[command(name = "todoctl", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print events from the task topics, decoded, as they arrive.
    Tail(tail::TailArgs),
    /// Republish stored events from the backend's outbox, with their original event ids.
    Replay(replay::ReplayArgs),
    /// Inspect, replay and discard dead letters; each replay or discard is recorded.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Reconcile the backend's outbox and tasks with the event service's store.
    Verify(verify::VerifyArgs),
    /// Event schemas.
    Schema {
        #[command(subcommand)]
        command: schema::SchemaCommand,
    },
}

/// Kafka settings shared by the commands that read or write topics.
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaOpts {
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Runs one command; the exit code says whether it found a problem.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tail(args) => tail::run(args, &mut std::io::stdout())
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Replay(args) => replay::run(args).await.map(|_| ExitCode::SUCCESS),
        Command::Dlq { command } => dlq::run(command, &mut std::io::stdout())
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Schema { command } => schema::run(command, &mut std::io::stdout()),
        Command::Verify(args) => verify::run(args, &mut std::io::stdout())
            .await
            .map(|clean| {
                if clean {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }),
    }
}
