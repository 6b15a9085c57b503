//! One module per endpoint family; the shared error response and JSON extractor.

pub(crate) mod admin;
pub(crate) mod catalogue;
pub(crate) mod exact;
pub(crate) mod fpr;
pub(crate) mod well_known;

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use yubienterprise::{ApiError, ErrorCode};

/// An error answer: the status from the code, the documented body.
#[derive(Debug)]
pub(crate) struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

/// `axum::Json`, with rejections in the documented error shape.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(Failure(ApiError::new(
                ErrorCode::InvalidBody,
                format!("The request body is not valid: {}", rejection.body_text()),
            ))),
        }
    }
}

/// The `POST /v1/fpr/shipments` body: the optional members of Yubico's newer body
/// (`reseller_organization_id`, `address_validation_bypass`) are type-checked first, so
/// a wrong type is that field's `validation_error`; then the body is read as usual.
pub(crate) struct FprCreateJson(pub yubienterprise::fpr::CreateFprShipment);

impl<S: Send + Sync> FromRequest<S> for FprCreateJson {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(raw) = ApiJson::<serde_json::Value>::from_request(req, state).await?;
        yubienterprise::validate::fpr_optional_member_types(&raw).map_err(ApiError::from)?;
        serde_json::from_value(raw).map(Self).map_err(|e| {
            Failure(ApiError::new(
                ErrorCode::InvalidBody,
                format!("The request body is not valid: {e}"),
            ))
        })
    }
}

/// Unknown route.
pub(crate) async fn not_found() -> Failure {
    Failure(ApiError::new(ErrorCode::NotFound, "No such endpoint"))
}
