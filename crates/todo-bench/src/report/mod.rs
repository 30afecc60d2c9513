//! The report: JSON with stable field names (`schema_version` changes when a
//! field is renamed or removed), a Markdown summary, and the target table.

mod evaluate;
mod markdown;
mod model;

pub use evaluate::{evaluate, target_lines, SUSTAINED_FOR_S};
pub use markdown::markdown;
pub use model::{
    BacklogRun, BatchStep, Calibration, CeilingRun, CpuFigures, HttpCeiling, KafkaCeiling,
    LagReport, LoadRun, Machine, MembershipChange, OverheadRun, PostgresCeiling, ProcessingReport,
    RampRun, RampStep, RebalanceRun, Report, ScaleConfig, ScaleRun, SettleRun, Settling,
    TargetResult, VerifyReport, SCHEMA_VERSION,
};
