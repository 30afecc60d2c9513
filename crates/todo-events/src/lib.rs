//! The event contract (work in progress).
