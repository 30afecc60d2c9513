//! The trace spans of processing: one per batch, linked to its events'
//! traces, and one per event, a child of the span that published it.

use todo_runtime::trace::{Attribute, Span, SpanKind};

use crate::store::Incoming;

/// The spans of processing a batch, ended when dropped: the batch's own
/// (a new trace linked to each event's) and one per event in the event's
/// trace, a child of the span that published it. Their effect is one
/// statement, so they share its timing. None while export is off.
pub(super) struct ProcessSpans {
    _batch: Option<Span>,
    pub(super) events: Vec<Span>,
}

pub(super) fn process_spans(batch: &[Incoming]) -> ProcessSpans {
    if !todo_runtime::trace::exporting() {
        return ProcessSpans {
            _batch: None,
            events: Vec::new(),
        };
    }
    let mut span = Span::start_linked(
        "process batch",
        SpanKind::Consumer,
        None,
        batch.iter().filter_map(|i| i.trace.as_ref()),
    );
    span.record(|| {
        vec![Attribute::new(
            "messaging.batch.message_count",
            batch.len() as i64,
        )]
    });
    let events = batch
        .iter()
        .map(|i| {
            let mut s = Span::start("process", SpanKind::Consumer, i.trace.as_ref());
            s.record(|| {
                vec![
                    Attribute::new("messaging.operation.type", "process"),
                    Attribute::new("messaging.destination.name", i.topic.clone()),
                    Attribute::new("messaging.message.id", i.event.event_id.to_string()),
                    Attribute::new("messaging.kafka.offset", i.offset),
                    Attribute::new("todo.event_type", i.event.event_type().as_str()),
                    Attribute::new("todo.task_id", i.event.task_id()),
                ]
            });
            s
        })
        .collect();
    ProcessSpans {
        _batch: Some(span),
        events,
    }
}
