//! Topic names as configured: the contract's names behind an optional prefix.

use todo_events::{topics, EventType};

/// The topic names one deployment uses: `todo-events`' names, prefixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicNames {
    prefix: String,
}

impl TopicNames {
    /// Names with `prefix` in front of each (empty for the contract's names).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topic that carries events of `event_type`.
    pub fn for_event(&self, event_type: EventType) -> String {
        format!("{}{}", self.prefix, event_type.topic())
    }

    /// The dead letter topic.
    pub fn dlq(&self) -> String {
        format!("{}{}", self.prefix, topics::DLQ)
    }

    /// The four task topics.
    pub fn task_topics(&self) -> Vec<String> {
        EventType::ALL.iter().map(|t| self.for_event(*t)).collect()
    }

    /// Every topic the services provision: the task topics and the DLQ.
    pub fn all(&self) -> Vec<String> {
        let mut all = self.task_topics();
        all.push(self.dlq());
        all
    }

    /// The contract's name for a configured topic name (prefix removed).
    pub fn canonical<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(self.prefix.as_str())
    }

    /// The event type a configured task topic carries.
    pub fn event_type_of(&self, topic: &str) -> Option<EventType> {
        self.canonical(topic).and_then(EventType::from_topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_names_map_back_to_their_event_type() {
        let names = TopicNames::new("t1.");
        let topic = names.for_event(EventType::Completed);
        assert_eq!(topic, "t1.todo.tasks.completed");
        assert_eq!(names.event_type_of(&topic), Some(EventType::Completed));
        assert_eq!(names.event_type_of("todo.tasks.completed"), None);
        assert_eq!(names.dlq(), "t1.todo.tasks.dlq");
    }
}
