//! The desk's routes (desk token): `GET /depot/v1/waiting` lists the FIDO Pre-reg
//! shipments waiting to be programmed; `POST /depot/v1/shipments/{id}/program` programs
//! one and hands its key over. With them, the router of the whole depot, and the layer
//! that saves the shipments after every request that may change them.

use super::{DepotError, write_private};
use crate::fulfiller::auth::{bearer, unauthorized};
use crate::fulfiller::routes::{Failure, not_found};
use crate::fulfiller::store::{ListParams, MAX_PAGE, ct_eq, waits_for_programming};
use crate::fulfiller::{Fulfiller, Store, service_routes};
use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use yubienterprise::{ApiError, ErrorCode, ShipmentState, ShipmentType};
use zeroize::Zeroizing;

/// What the desk routes share.
#[derive(Clone)]
pub(crate) struct Desk {
    store: Arc<Store>,
    token: Arc<Zeroizing<String>>,
    state_file: Arc<PathBuf>,
    /// Each key's serial number must come from the desk (keys whose serial number the
    /// depot cannot read, such as real keys over USB).
    serial_from_desk: bool,
    /// One save at a time, each of the state as it is when it runs, so the file never
    /// goes back to an older state.
    saving: Arc<tokio::sync::Mutex<()>>,
}

impl Desk {
    pub(crate) fn new(
        store: Arc<Store>,
        token: Zeroizing<String>,
        state_file: PathBuf,
        serial_from_desk: bool,
    ) -> Self {
        Self {
            store,
            token: Arc::new(token),
            state_file: Arc::new(state_file),
            serial_from_desk,
            saving: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn save(&self) -> Result<(), DepotError> {
        let _one = self.saving.lock().await;
        let store = self.store.clone();
        let path = self.state_file.clone();
        tokio::task::spawn_blocking(move || {
            let text = store.dump().to_string();
            write_private(&path, text.as_bytes())
        })
        .await
        .unwrap_or_else(|e| {
            Err(DepotError::Io {
                what: "saving",
                path: self.state_file.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }
}

/// A shipment waiting at the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The shipment.
    pub shipment_id: String,
    /// The recipient's first and last name.
    pub recipient_name: String,
    /// The recipient's email address.
    pub recipient_email: String,
    /// The ordered model.
    pub product_name: String,
    /// When it was ordered (RFC 3339).
    pub requested: Option<String>,
}

/// The body of `POST /depot/v1/shipments/{id}/program` (optional: no body is `{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramBody {
    /// The serial number of the key being programmed, as printed on it (decimal
    /// digits). Required where the depot cannot read it (real keys over USB); with
    /// virtual keys it replaces the next serial number of the seed's counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// A programmed key, handed over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Handover {
    /// The shipment.
    pub shipment_id: String,
    /// The key's serial number.
    pub serial_number: String,
    /// Its firmware.
    pub firmware_version: String,
    /// The shipment's state now (104, delivered).
    pub shipment_state_id: u16,
    /// The key's state file: the key the person takes away. Holds the key's secrets;
    /// the depot keeps no copy.
    pub key: serde_json::Value,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {}  {}",
            self.shipment_id, self.recipient_name, self.product_name
        )
    }
}

/// The depot's router: the fulfiller service, the desk routes, the documented 404, and
/// the save after every request that may change the shipments.
pub(crate) fn router(fulfiller: Fulfiller, desk: Desk) -> Router {
    let desk_routes = Router::new()
        .route("/depot/v1/waiting", get(waiting))
        .route("/depot/v1/shipments/{id}/program", post(program))
        .route_layer(from_fn_with_state(desk.clone(), require_desk_token))
        .with_state(desk.clone());
    service_routes(fulfiller.clone())
        .fallback(not_found)
        .with_state(fulfiller)
        .merge(desk_routes)
        .layer(from_fn_with_state(desk, save_after))
}

/// Saves the shipments after a request that may have changed them, before its answer
/// goes out. If the save fails the answer is a 500 (the change is in memory but would
/// not survive a restart), and the failure is logged.
async fn save_after(State(desk): State<Desk>, req: Request, next: Next) -> Response {
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let resp = next.run(req).await;
    if !changes {
        return resp;
    }
    match desk.save().await {
        Ok(()) => resp,
        Err(e) => {
            tracing::error!(error = %e, "the depot could not save its shipments");
            Failure(ApiError::new(
                ErrorCode::InternalError,
                format!("the depot could not save its shipments ({e}); the change is not durable, fix the state directory and retry"),
            ))
            .into_response()
        }
    }
}

async fn require_desk_token(State(desk): State<Desk>, req: Request, next: Next) -> Response {
    match bearer(&req) {
        Some(t) if ct_eq(t.as_bytes(), desk.token.as_bytes()) => next.run(req).await,
        _ => unauthorized(
            "The desk routes need the desk token: Authorization: Bearer <the depot's desk-token file>",
        ),
    }
}

/// `GET /depot/v1/waiting`: FIDO Pre-reg shipments not yet programmed (2, 3), oldest first.
async fn waiting(State(desk): State<Desk>) -> Json<Vec<Waiting>> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = desk.store.list(&ListParams {
            limit: MAX_PAGE,
            offset,
            shipment_type: Some(ShipmentType::AutoFidoPreReg),
            ..ListParams::default()
        });
        let n = page.shipments.len() as u64;
        out.extend(
            page.shipments
                .into_iter()
                .filter(|s| waits_for_programming(s.shipment_state_id))
                .map(|s| Waiting {
                    shipment_id: s.shipment_id.to_string(),
                    recipient_name: format!("{} {}", s.recipient_firstname, s.recipient_lastname),
                    recipient_email: s.recipient_email,
                    product_name: s
                        .shipment_items
                        .first()
                        .map(|i| i.product_name.clone())
                        .unwrap_or_default(),
                    requested: s.shipment_request_date,
                }),
        );
        offset += n;
        if n == 0 || offset >= page.total_count {
            break;
        }
    }
    Json(out)
}

/// `POST /depot/v1/shipments/{id}/program`.
#[tracing::instrument(skip_all, fields(shipment = %id))]
async fn program(
    State(desk): State<Desk>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Handover>, Failure> {
    let serial = desk_serial(&body, desk.serial_from_desk)?;
    let store = desk.store.clone();
    // Programming a key is CPU work (and, with a real key, waits for its touch); keep
    // it off the async workers.
    let handover = tokio::task::spawn_blocking(move || hand_over(&store, &id, serial))
        .await
        .map_err(|_| {
            Failure(ApiError::new(
                ErrorCode::InternalError,
                "the programming task failed",
            ))
        })??;
    tracing::info!(serial = %handover.serial_number, "key programmed and handed over");
    Ok(Json(handover))
}

/// The serial number in a program request's body, checked; `required` when the keys'
/// own cannot be read.
fn desk_serial(body: &[u8], required: bool) -> Result<Option<u32>, ApiError> {
    let body: ProgramBody = if body.iter().all(u8::is_ascii_whitespace) {
        ProgramBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("the body must be {{\"serial_number\": \"<digits>\"}} or empty: {e}"),
            )
        })?
    };
    let invalid = |message: String| ApiError {
        code: ErrorCode::ValidationError,
        message,
        field: Some("serial_number".to_owned()),
    };
    match body.serial_number.as_deref().map(str::trim) {
        None if required => Err(invalid(
            "this depot programs keys whose serial number it cannot read: give the number printed on the key (prereg depot program ID --serial N)".to_owned(),
        )),
        None => Ok(None),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
            _ => Err(invalid(format!(
                "serial number {:?} is not a key's serial number (decimal digits, 1 to 4294967295)",
                text.chars().take(20).collect::<String>()
            ))),
        },
    }
}

/// Programs the waiting shipment `id` through to delivered (with the desk's serial
/// number for its key, if given) and takes its key.
fn hand_over(store: &Store, id: &str, serial: Option<u32>) -> Result<Handover, ApiError> {
    store.program_waiting(id, serial)?;
    let after = store.get_fpr(id)?;
    let state = after.shipment_state.shipment_state_id;
    let data = match after.product_data() {
        Some(d) if state == ShipmentState::Delivered => d,
        _ => {
            return Err(ApiError::new(
                ErrorCode::Other,
                format!(
                    "Shipment {id} was not programmed: state {}: {}",
                    state.id(),
                    after.shipment_state.shipment_state_message
                ),
            ));
        }
    };
    let key = Zeroizing::new(store.take_parcel(id)?);
    let key = serde_json::from_str(&key).map_err(|e| {
        ApiError::new(
            ErrorCode::InternalError,
            format!("the programmed key's state file is not JSON: {e}"),
        )
    })?;
    Ok(Handover {
        shipment_id: id.to_owned(),
        serial_number: data.serial_number.clone(),
        firmware_version: data.firmware_version.clone(),
        shipment_state_id: state.id(),
        key,
    })
}
