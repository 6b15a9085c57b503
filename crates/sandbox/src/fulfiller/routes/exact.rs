//! `GET|POST /v1/shipments_exact`, `GET /v1/shipments_exact/search-description`,
//! `GET|PUT|DELETE /v1/shipments_exact/{id}`.

use super::{ApiJson, Failure};
use crate::fulfiller::Fulfiller;
use crate::fulfiller::store::{ListParams, MAX_PAGE, SEARCHABLE, Store};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use std::collections::HashMap;
use yubienterprise::exact::{CreateShipmentExact, SearchDescription, ShipmentExact, ShipmentPage};
use yubienterprise::{ApiError, ErrorCode, ShipmentState, ShipmentType};

#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    State(st): State<Fulfiller>,
    ApiJson(body): ApiJson<CreateShipmentExact>,
) -> Result<(StatusCode, Json<ShipmentExact>), Failure> {
    let s = st.store.create_exact(body)?;
    tracing::info!(shipment = %s.shipment_id, "shipment created");
    Ok((StatusCode::CREATED, Json(s)))
}

#[tracing::instrument(skip_all, fields(shipment = %id))]
pub(crate) async fn get(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Result<Json<ShipmentExact>, Failure> {
    Ok(Json(st.store.get_exact(&id)?))
}

#[tracing::instrument(skip_all, fields(shipment = %id))]
pub(crate) async fn update(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateShipmentExact>,
) -> Result<Json<ShipmentExact>, Failure> {
    Ok(Json(st.store.update_exact(&id, body)?))
}

#[tracing::instrument(skip_all, fields(shipment = %id))]
pub(crate) async fn delete(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    st.store.delete(&id, false)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn search_description(State(st): State<Fulfiller>) -> Json<SearchDescription> {
    let mut d = Store::search_description();
    if st.faults.get().unknown_customer_reference() {
        d.searchable_fields.retain(|f| f != "customer_reference");
    }
    Json(d)
}

fn bad(param: &str, message: String) -> Failure {
    Failure(ApiError {
        code: ErrorCode::ValidationError,
        message,
        field: Some(param.to_owned()),
    })
}

#[tracing::instrument(skip_all)]
pub(crate) async fn list(
    State(st): State<Fulfiller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<ShipmentPage>, Failure> {
    let limit = match q.get("limit") {
        None => MAX_PAGE,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n.min(MAX_PAGE),
            _ => {
                return Err(bad(
                    "limit",
                    format!("limit must be a number from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| bad("offset", "offset must be a number, 0 or more".to_owned()))?,
    };
    let search = match (q.get("search"), q.get("search_field")) {
        (None, None) => None,
        (Some(v), Some(f)) => {
            let faults = st.faults.get();
            // A fulfiller that does not know `customer_reference` refuses it as it
            // refuses any field it cannot search.
            let refused = f == "customer_reference" && faults.refuse_customer_reference;
            if refused || !SEARCHABLE.contains(&f.as_str()) {
                return Err(bad(
                    "search_field",
                    format!(
                        "search_field {f:?} is not searchable; see GET /v1/shipments_exact/search-description"
                    ),
                ));
            }
            if f == "customer_reference" && faults.ignore_customer_reference {
                // A fulfiller that does not know the field ignores the filter: every
                // shipment answers.
                None
            } else {
                Some((f.clone(), v.clone()))
            }
        }
        _ => {
            return Err(bad(
                "search_field",
                "search and search_field go together".to_owned(),
            ));
        }
    };
    let shipment_type = match q.get("shipment_type") {
        None => None,
        Some(v) => Some(ShipmentType::parse(v).ok_or_else(|| {
            bad(
                "shipment_type",
                "shipment_type must be MANUAL, AUTOMATED or AUTO FIDO PRE-REG".to_owned(),
            )
        })?),
    };
    let state = match q.get("shipment_state_id") {
        None => None,
        Some(v) => Some(ShipmentState::from_id(v.trim().parse::<u16>().map_err(
            |_| {
                bad(
                    "shipment_state_id",
                    "shipment_state_id must be a number".to_owned(),
                )
            },
        )?)),
    };
    Ok(Json(st.store.list(&ListParams {
        limit,
        offset,
        search,
        shipment_type,
        state,
    })))
}
