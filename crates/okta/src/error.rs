//! Okta's error body: `{errorCode, errorSummary, errorLink, errorId, errorCauses}`.

use serde::{Deserialize, Deserializer, Serialize};

/// The error body every Okta API answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// E.g. `E0000001` (validation), `E0000007` (not found), `E0000047` (rate limit).
    pub error_code: String,
    pub error_summary: String,
    #[serde(default)]
    pub error_link: String,
    #[serde(default)]
    pub error_id: String,
    /// The schema says an array; the preregistration examples send one object. Both read.
    #[serde(default, deserialize_with = "causes")]
    pub error_causes: Vec<ErrorCause>,
}

/// One cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCause {
    pub error_summary: String,
}

impl ErrorBody {
    /// An error with a fresh `errorId` and `errorLink` = `errorCode` (as Okta does).
    pub fn new(code: &str, summary: impl Into<String>, causes: Vec<String>) -> Self {
        Self {
            error_code: code.to_owned(),
            error_summary: summary.into(),
            error_link: code.to_owned(),
            error_id: format!("oae{}", uuid::Uuid::new_v4().simple())
                .chars()
                .take(24)
                .collect(),
            error_causes: causes
                .into_iter()
                .map(|error_summary| ErrorCause { error_summary })
                .collect(),
        }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.error_code, self.error_summary)?;
        for c in &self.error_causes {
            write!(f, "; {}", c.error_summary)?;
        }
        Ok(())
    }
}

fn causes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ErrorCause>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Many(Vec<ErrorCause>),
        One(ErrorCause),
        Null(()),
    }
    Ok(match Either::deserialize(d)? {
        Either::Many(v) => v,
        Either::One(c) => vec![c],
        Either::Null(()) => Vec::new(),
    })
}

/// Error codes used by the preregistration flow.
pub mod codes {
    /// Api validation failed.
    pub const VALIDATION: &str = "E0000001";
    /// Permission denied (403).
    pub const FORBIDDEN: &str = "E0000006";
    /// Not found (404).
    pub const NOT_FOUND: &str = "E0000007";
    /// Invalid token (401).
    pub const INVALID_TOKEN: &str = "E0000011";
    /// Invalid search criteria (400).
    pub const INVALID_SEARCH: &str = "E0000031";
    /// Rate limit (429).
    pub const RATE_LIMIT: &str = "E0000047";
    /// Internal error (500).
    pub const INTERNAL: &str = "E0000009";
    /// Unsupported method (405).
    pub const METHOD: &str = "E0000022";
}
