//! The use cases, one function each: what a request asks for, with its
//! writes, events and retries. Handlers parse, call one of these and map the
//! result; these call `store` and `outbox`, never `routes`.

pub mod recent_tasks;
pub mod tasks;
