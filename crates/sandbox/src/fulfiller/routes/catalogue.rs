//! `GET /v1/products`, `GET /v1/products/{id}`, `GET /v1/inventory`.

use super::Failure;
use crate::fulfiller::Fulfiller;
use axum::Json;
use axum::extract::{Path, State};
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
