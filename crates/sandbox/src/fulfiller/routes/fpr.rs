//! `POST /v1/fpr/shipments`, `GET|PUT|DELETE /v1/fpr/shipments/{id}`.

use super::{ApiJson, Failure, FprCreateJson};
use crate::fulfiller::Fulfiller;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use yubienterprise::fpr::{FprShipment, UpdateFprShipment};

#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    State(st): State<Fulfiller>,
    FprCreateJson(mut body): FprCreateJson,
) -> Result<(StatusCode, Json<FprShipment>), Failure> {
    if st.faults.get().unknown_customer_reference() {
        // A fulfiller that does not know the field: neither checked nor kept.
        body.customer_reference = None;
    }
    // A race test may hold the next create before it is carried out (a slow fulfiller).
    st.store.holds().pause(crate::fulfiller::hold::CREATE).await;
    let s = st.store.create_fpr(body)?;
    tracing::info!(shipment = %s.shipment_id, "FIDO Pre-reg shipment created");
    Ok((StatusCode::CREATED, Json(s)))
}

#[tracing::instrument(skip_all, fields(shipment = %id))]
pub(crate) async fn get(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Result<Json<FprShipment>, Failure> {
    let answer = st.store.get_fpr(&id);
    // A race test may hold this answer (read now, sent later).
    st.store.holds().pause(&id).await;
    Ok(Json(answer?))
}

#[tracing::instrument(skip_all, fields(shipment = %id))]
pub(crate) async fn update(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateFprShipment>,
) -> Result<Json<FprShipment>, Failure> {
    Ok(Json(st.store.update_fpr(&id, body)?))
}

#[tracing::instrument(skip_all, fields(shipment = %id))]
pub(crate) async fn delete(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    st.store.delete(&id, true)?;
    Ok(StatusCode::NO_CONTENT)
}
