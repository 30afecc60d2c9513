//! Optional authentication: with an HS256 secret configured, every task
//! request needs a Bearer JWT, and its `sub` owns the tasks it creates.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};

use crate::error::ApiError;

/// The verifier for HS256 tokens.
#[derive(Clone)]
pub struct Auth {
    key: DecodingKey,
    validation: Validation,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

impl Auth {
    /// A verifier for tokens signed with `secret`.
    pub fn hs256(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The token's subject, if the token is valid.
    pub fn subject(&self, token: &str) -> Result<String, ApiError> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            // NB: never echo the token itself.
            .map_err(|e| ApiError::Unauthorized(format!("invalid token: {e}")))?;
        if data.claims.sub.is_empty() || data.claims.sub.len() > 255 {
            return Err(ApiError::Unauthorized(
                "the token's sub must be 1 to 255 characters".into(),
            ));
        }
        Ok(data.claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn token(secret: &str, sub: &str, exp_offset: i64) -> String {
        let exp = chrono::Utc::now().timestamp() + exp_offset;
        let claims = serde_json::json!({ "sub": sub, "exp": exp });
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_token_yields_its_subject() {
        assert_eq!(
            Auth::hs256("s3cret")
                .subject(&token("s3cret", "alice", 600))
                .unwrap(),
            "alice"
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_or_expired_is_refused() {
        let auth = Auth::hs256("s3cret");
        assert!(auth.subject(&token("other", "alice", 600)).is_err());
        assert!(auth.subject(&token("s3cret", "alice", -600)).is_err());
    }
}
