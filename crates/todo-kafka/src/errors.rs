//! Which Kafka errors are worth retrying.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// True when the error is transient (broker down, leader moving, timeouts,
/// full queue): retrying the same operation later may succeed. Everything
/// else (record too large, authorization, invalid config) is permanent.
pub fn is_retriable(err: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    match err.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            MessageTimedOut
                | QueueFull
                | BrokerTransportFailure
                | AllBrokersDown
                | Resolve
                | OperationTimedOut
                | RequestTimedOut
                | NetworkException
                | LeaderNotAvailable
                | NotLeaderForPartition
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
                | NotCoordinator
                | CoordinatorNotAvailable
                | CoordinatorLoadInProgress
                | UnknownTopicOrPartition
                | KafkaStorageError
                | FencedLeaderEpoch
        ),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::RDKafkaErrorCode;

    #[test]
    fn a_timed_out_message_is_retriable_and_a_too_large_one_is_not() {
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(is_retriable(&timed_out));
        assert!(!is_retriable(&too_large));
    }
}
