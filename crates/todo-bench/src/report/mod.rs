//! The report: JSON with stable field names (`schema_version` changes when a
//! field is renamed or removed), a Markdown summary, and the target table.

mod evaluate;
mod markdown;
mod model;

pub use evaluate::{evaluate, target_lines};
pub use markdown::markdown;
pub use model::{
    BacklogRun, CpuFigures, LagReport, LoadRun, Machine, OverheadRun, ProcessingReport, RampRun,
    RampStep, Report, SettleRun, Settling, TargetResult, VerifyReport, SCHEMA_VERSION,
};
