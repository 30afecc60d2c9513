use super::FieldError;

/// A task title: 1 to 255 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    /// Longest title, in characters (not bytes).
    pub const MAX_CHARS: usize = 255;

    /// Trims and checks the length.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(FieldError::new("title", "must not be empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(
                "title",
                format!(
                    "must be at most {} characters, got {chars}",
                    Self::MAX_CHARS
                ),
            ));
        }
        if trimmed.chars().any(|c| c.is_control()) {
            return Err(FieldError::new(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_blank_title_is_rejected() {
        assert_eq!(TaskTitle::parse("   ").unwrap_err().field, "title");
    }

    #[test]
    fn a_title_is_trimmed() {
        assert_eq!(
            TaskTitle::parse("  buy milk \n").unwrap().as_str(),
            "buy milk"
        );
    }

    #[test]
    fn a_title_of_255_multibyte_characters_is_accepted_and_256_is_not() {
        assert!(TaskTitle::parse(&"é".repeat(255)).is_ok());
        assert!(TaskTitle::parse(&"é".repeat(256)).is_err());
    }

    #[test]
    fn sql_metacharacters_are_kept_verbatim() {
        let t = "'; DROP TABLE tasks; --";
        assert_eq!(TaskTitle::parse(t).unwrap().as_str(), t);
    }

    proptest! {
        #[test]
        fn any_accepted_title_is_trimmed_and_within_limits(s in "\\PC{0,300}") {
            if let Ok(t) = TaskTitle::parse(&s) {
                let n = t.as_str().chars().count();
                prop_assert!((1..=255).contains(&n));
                prop_assert_eq!(t.as_str(), s.trim());
            }
        }
    }
}
