//! Graph's error body (MGD `concepts/errors.md`):
//! `{"error":{"code","message","innerError":{"request-id","date","client-request-id",...}}}`.
//! Branch on `code`, never on `message`. `innerError` can nest and carries members
//! beyond the documented ones (the 429 sample has `code`, `message` and `status` there).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    pub error: GraphError,
}

/// The `error` member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphError {
    /// e.g. `Request_ResourceNotFound`, `Authorization_RequestDenied`, `TooManyRequests`,
    /// `accessDenied`, `invalidRequest`, `methodNotAllowed`.
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<InnerError>,
}

/// `innerError`: request ids and dates, sometimes a code, sometimes another `innerError`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InnerError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(
        rename = "request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    #[serde(
        rename = "client-request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_request_id: Option<String>,
    #[serde(
        rename = "innerError",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<Box<InnerError>>,
    /// Members not named above (`status`, ...), kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl GraphErrorBody {
    /// A body with `code` and `message` and no inner error.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: GraphError {
                code: code.into(),
                message: message.into(),
                inner_error: None,
            },
        }
    }
}
