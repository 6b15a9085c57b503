//! `GET /v1/products`, `GET /v1/products/{id}`, `GET /v1/inventory`,
//! `POST /v1/validate-address`.

use super::{ApiJson, Failure};
use crate::fulfiller::Fulfiller;
use axum::Json;
use axum::extract::{Path, State};
use yubienterprise::fpr::MailingAddress;
use yubienterprise::org::{Inventory, Product};
use yubienterprise::{ApiError, ErrorCode};

pub(crate) async fn products(State(st): State<Fulfiller>) -> Json<Vec<Product>> {
    Json(st.store.products())
}

pub(crate) async fn product(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Result<Json<Product>, Failure> {
    id.trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| st.store.seed().product(n).cloned())
        .map(Json)
        .ok_or_else(|| {
            Failure(ApiError::new(
                ErrorCode::NotFound,
                "No such product; see GET /v1/products",
            ))
        })
}

pub(crate) async fn inventory(State(st): State<Fulfiller>) -> Json<Inventory> {
    Json(st.store.inventory())
}

/// 200 `{"valid": true}`, or 400 with `validation_error` / `address_undeliverable`.
pub(crate) async fn validate_address(
    State(st): State<Fulfiller>,
    ApiJson(address): ApiJson<MailingAddress>,
) -> Result<Json<serde_json::Value>, Failure> {
    st.store.validate_address(&address)?;
    Ok(Json(serde_json::json!({"valid": true})))
}
