use utoipa::openapi::{Object, ObjectBuilder, Type};

use super::FieldError;

/// Rust's whitespace (`char::is_whitespace`, Unicode White_Space), which
/// `str::trim` removes, as the inside of a regular expression class.
macro_rules! white {
    () => {
        "\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}

/// Control characters (`char::is_control`, general category Cc), as the
/// inside of a regular expression class.
macro_rules! control {
    () => {
        "\\u0000-\\u001f\\u007f-\\u009f"
    };
}

/// A title as stored: neither starting nor ending with whitespace, no control
/// character anywhere, 1 to 255 characters (253 between the two ends).
macro_rules! stored {
    () => {
        concat!(
            "[^",
            control!(),
            white!(),
            "]",
            "(?:[^",
            control!(),
            "]{0,253}[^",
            control!(),
            white!(),
            "])?"
        )
    };
}

/// A task title: 1 to 255 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    /// Longest title, in characters (not bytes).
    pub const MAX_CHARS: usize = 255;

    /// What [`TaskTitle::parse`] accepts, as a regular expression that means
    /// the same in ECMA-262 (JSON Schema), Python and Rust, so that the
    /// OpenAPI document states the rule and clients can check a title before
    /// sending it. Whitespace around the title (which may include line
    /// breaks) is trimmed; a test checks that this and `parse` agree.
    #[rustfmt::skip]
    pub const PATTERN: &'static str = concat!("^[", white!(), "]*", stored!(), "[", white!(), "]*$");

    /// A title as the API returns it (trimmed).
    pub const STORED_PATTERN: &'static str = concat!("^", stored!(), "$");

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

    /// The OpenAPI schema of a title in a request.
    pub fn request_schema() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::PATTERN))
            .description(Some(
                "1 to 255 characters after trimming whitespace at both ends, \
                 no control characters (U+0000-U+001F, U+007F-U+009F) inside.",
            ))
            .examples(["buy milk"])
            .build()
    }

    /// The OpenAPI schema of a title in a response.
    pub fn response_schema() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(Self::MAX_CHARS))
            .pattern(Some(Self::STORED_PATTERN))
            .description(Some("Trimmed, 1 to 255 characters."))
            .examples(["buy milk"])
            .build()
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

    /// Characters at the edges of the rule: whitespace that is and is not a
    /// control character, controls that are not whitespace, and look-alikes
    /// that are neither (U+FEFF, U+200B, U+180E).
    const EDGE_CHARS: &[char] = &[
        ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
        '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}', '\0', '\u{1f}',
        '\u{7f}', '\u{9f}', '\u{feff}', '\u{200b}', '\u{180e}', 'a', 'é', '😀',
    ];

    fn title_like() -> impl Strategy<Value = String> {
        let c = prop_oneof![any::<char>(), proptest::sample::select(EDGE_CHARS)];
        prop_oneof![
            proptest::collection::vec(c.clone(), 0..8),
            proptest::collection::vec(c, 250..262),
        ]
        .prop_map(|v| v.into_iter().collect())
    }

    #[test]
    fn the_pattern_draws_the_line_where_parse_does_at_the_length_limit() {
        let re = regex::Regex::new(TaskTitle::PATTERN).unwrap();
        for (s, ok) in [
            (format!(" {} ", "x".repeat(255)), true),
            (format!("\n{}\u{3000}", "x".repeat(256)), false),
            ("\u{85}a\u{85}".to_owned(), true),
            ("a\u{85}b".to_owned(), false),
            ("\u{feff}".to_owned(), true),
        ] {
            assert_eq!(re.is_match(&s), ok, "{s:?}");
            assert_eq!(TaskTitle::parse(&s).is_ok(), ok, "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn the_pattern_accepts_exactly_what_parse_accepts(s in title_like()) {
            let re = regex::Regex::new(TaskTitle::PATTERN).unwrap();
            prop_assert_eq!(re.is_match(&s), TaskTitle::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn an_accepted_title_is_stored_in_the_stored_pattern(s in title_like()) {
            let stored = regex::Regex::new(TaskTitle::STORED_PATTERN).unwrap();
            if let Ok(t) = TaskTitle::parse(&s) {
                prop_assert!(stored.is_match(t.as_str()), "{:?}", t);
            }
        }

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
