//! Sandbox-only endpoints under `/sandbox/v1/`: the clock, faults, key rotation, the
//! parcel and a state dump.

use super::{ApiJson, Failure};
use crate::faults::FaultConfig;
use crate::fulfiller::Fulfiller;
use crate::fulfiller::keys::Rotation;
use crate::fulfiller::store::Moved;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use envelope::KeyUse;
use serde::{Deserialize, Serialize};
use yubienterprise::{ApiError, ErrorCode, ShipmentState};

/// `POST /sandbox/v1/advance` body. Empty or `{}`: run the next round. With both
/// members: move one shipment to `to_state`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceBody {
    shipment_id: Option<String>,
    to_state: Option<u16>,
}

/// What moved.
#[derive(Debug, Serialize)]
pub(crate) struct Advanced {
    moved: Vec<Moved>,
}

pub(crate) async fn advance(
    State(st): State<Fulfiller>,
    body: Bytes,
) -> Result<Json<Advanced>, Failure> {
    let body: AdvanceBody = if body.iter().all(u8::is_ascii_whitespace) {
        AdvanceBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Failure(ApiError::new(
                ErrorCode::InvalidBody,
                format!("advance takes {{}} or {{\"shipment_id\", \"to_state\"}}: {e}"),
            ))
        })?
    };
    let store = st.store.clone();
    // Programming keys is CPU work; keep it off the async workers.
    let moved = tokio::task::spawn_blocking(move || match (body.shipment_id, body.to_state) {
        (None, None) => Ok(store.advance_round()),
        (Some(id), Some(to)) => store.move_to(&id, ShipmentState::from_id(to)),
        _ => Err(ApiError::new(
            ErrorCode::InvalidBody,
            "give both shipment_id and to_state, or neither",
        )),
    })
    .await
    .map_err(|_| {
        Failure(ApiError::new(
            ErrorCode::InternalError,
            "the clock task failed",
        ))
    })??;
    Ok(Json(Advanced { moved }))
}

/// Where a hold stands (`{"hold": "armed"|"waiting"|"none"}`).
#[derive(Debug, Serialize)]
pub(crate) struct HoldView {
    hold: crate::fulfiller::hold::HoldState,
}

/// `GET /sandbox/v1/holds/{id}`.
pub(crate) async fn hold_state(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Json<HoldView> {
    Json(HoldView {
        hold: st.store.holds().state(&id),
    })
}

/// `PUT /sandbox/v1/holds/{id}`: hold the answer to the next read of the shipment.
pub(crate) async fn arm_hold(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Json<HoldView> {
    Json(HoldView {
        hold: st.store.holds().arm(&id),
    })
}

/// `DELETE /sandbox/v1/holds/{id}`: send the held answer; the answer says what was
/// released.
pub(crate) async fn release_hold(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
) -> Json<HoldView> {
    Json(HoldView {
        hold: st.store.holds().release(&id),
    })
}

pub(crate) async fn get_faults(State(st): State<Fulfiller>) -> Json<FaultConfig> {
    Json(st.faults.get())
}

pub(crate) async fn set_faults(
    State(st): State<Fulfiller>,
    ApiJson(cfg): ApiJson<FaultConfig>,
) -> Json<FaultConfig> {
    st.faults.set(cfg);
    Json(st.faults.get())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateBody {
    #[serde(rename = "use")]
    key_use: KeyUse,
}

pub(crate) async fn rotate(
    State(st): State<Fulfiller>,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Json<Rotation>, Failure> {
    Ok(Json(st.store.rotate(body.key_use)?))
}

/// `?index=N`: the key N (0 first) of a shipment of several.
#[derive(Debug, Deserialize)]
pub(crate) struct ParcelQuery {
    #[serde(default)]
    index: usize,
}

pub(crate) async fn parcel(
    State(st): State<Fulfiller>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ParcelQuery>,
) -> Result<impl IntoResponse, Failure> {
    let key = st.store.parcel_at(&id, q.index)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], key))
}

pub(crate) async fn state(State(st): State<Fulfiller>) -> Json<serde_json::Value> {
    Json(st.store.dump())
}
