use super::FieldError;

/// A task id from a URL: a positive 64-bit integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId(i64);

impl TaskId {
    /// Parses the path segment.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                "id",
                format!("must be a positive integer, got `{}`", truncate(raw)),
            ));
        }
        match raw.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            Ok(_) => Err(FieldError::new("id", "must be a positive integer, got 0")),
            Err(_) => Err(FieldError::new(
                "id",
                format!("must be at most {}", i64::MAX),
            )),
        }
    }

    /// The id.
    pub fn get(self) -> i64 {
        self.0
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive_integers_within_i64() {
        assert_eq!(TaskId::parse("42").unwrap().get(), 42);
        for bad in ["0", "-1", "abc", "1.5", "", "+3", "99999999999999999999"] {
            assert_eq!(
                TaskId::parse(bad).unwrap_err().field,
                "id",
                "{bad} should be rejected"
            );
        }
    }
}
