use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{Object, ObjectBuilder, Type};

use super::FieldError;

/// A task description: at most 10 000 characters, kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDescription(String);

impl TaskDescription {
    /// Longest description, in characters.
    pub const MAX_CHARS: usize = 10_000;

    /// What [`TaskDescription::parse`] accepts besides the length: anything
    /// but NUL (PostgreSQL text cannot hold it).
    pub const PATTERN: &'static str = "^[^\\u0000]*$";

    /// Checks the length.
    pub fn parse(raw: String) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(
                "description",
                format!(
                    "must be at most {} characters, got {chars}",
                    Self::MAX_CHARS
                ),
            ));
        }
        if raw.contains('\0') {
            return Err(FieldError::new(
                "description",
                "must not contain NUL characters",
            ));
        }
        Ok(Self(raw))
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The description, owned.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The OpenAPI schema of a description, or of `null` (none).
    pub fn nullable_schema() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(Self::MAX_CHARS))
            .pattern(Some(Self::PATTERN))
            .description(Some(
                "At most 10 000 characters, kept as written, no NUL; null: none.",
            ))
            .examples(["2 litres, semi-skimmed"])
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_characters_are_accepted_and_one_more_is_not() {
        assert!(TaskDescription::parse("x".repeat(10_000)).is_ok());
        assert_eq!(
            TaskDescription::parse("x".repeat(10_001))
                .unwrap_err()
                .field,
            "description"
        );
    }

    #[test]
    fn the_pattern_refuses_nul_and_nothing_else() {
        let re = regex::Regex::new(TaskDescription::PATTERN).unwrap();
        for s in ["", "a\nb", "\u{1}\u{7f}", "😀"] {
            assert!(
                re.is_match(s) && TaskDescription::parse(s.into()).is_ok(),
                "{s:?}"
            );
        }
        assert!(!re.is_match("a\0b"));
    }

    #[test]
    fn a_nul_character_is_rejected() {
        // Postgres text cannot store NUL; rejecting it here keeps it a 4xx.
        assert!(TaskDescription::parse("a\0b".into()).is_err());
    }
}
