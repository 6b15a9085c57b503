//! The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`), generated with
//! utoipa from the handlers' annotations (`#[utoipa::path]`) and the types below.
//!
//! The router is built from the same [`utoipa_axum::router::OpenApiRouter`] as the
//! document ([`super::routes()`]), so a route cannot be served without being documented,
//! nor documented without being served. The console (`/console`, HTML for a browser
//! session) is the one part left out.
//!
//! Request bodies are the handlers' own input types (`ToSchema` derived on them).
//! Most answers are built as JSON by the engine ([`engine::admin::view`] and friends);
//! the answer types here describe those shapes for the document only, and the
//! schemathesis run (`tests/it/openapi.rs`) checks every answer against them.
//!
//! Every operation behind the bearer token also answers 401 and 403, and every
//! operation may answer 500 (a database or internal failure): [`document`] adds these
//! rather than each annotation repeating them.

use serde::Serialize;
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The name of the bearer security scheme (API callers' Entra access tokens).
pub const BEARER: &str = "bearer";
/// The name of the Okta event hook's shared-secret scheme.
pub const EVENT_HOOK: &str = "okta_event_hook";

/// The document's base: title, description, security schemes, the error schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "prereg connector API (Entra mode, Okta mode, Yubico action cards)",
        description = "Pre-registered FIDO2 security keys: Entra-mode requests (`/v1/fprRequest`, `/v1/fpr/shipments`), \
the admin and processing routes, Okta mode (`/v1/okta/*`), the CSV batch of both modes (`/v1/batch`), credential requests of several keys and identity providers (`/v2/credential-requests`), the Yubico Okta Workflows action cards (`/v1/yubico/*`), \
and the open monitoring routes. Errors are the guide's bodies (`ErrorBody`). Details: docs/connector.md, \
docs/okta-mode.md, docs/yubico-cards.md, docs/batch.md, docs/credential-requests.md."
    ),
    components(schemas(ErrorBody, ErrorCode, ErrorData)),
    modifiers(&Security),
    tags(
        (name = "monitoring", description = "Open: health, readiness, metrics, this document"),
        (name = "entra", description = "Entra mode: create requests (the guide's API), the group trigger's reconciliation"),
        (name = "requests", description = "Tracked requests of either mode: read, process, retry, resend the PIN, acknowledge, delete"),
        (name = "okta", description = "Okta mode: event hook, batch, reconcile, the shipments table, the approval gate"),
        (name = "batch", description = "The CSV batch: one order per row, both modes (docs/batch.md)"),
        (name = "credential-requests", description = "API v2: several keys for one person, each registered at Entra, Okta or both (docs/credential-requests.md)"),
        (name = "cards", description = "The Yubico connector's Okta Workflows action cards over HTTP"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An RS256 access token of the configured issuer (Entra): `aud` in \
                         `allowed_audiences`, `azp`/`appid` in `allowed_client_apps`, the app \
                         role or scope `create_request`. 401 without a valid token, 403 \
                         without the role.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            EVENT_HOOK,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "The Okta event hook's shared secret, in the header named by \
                 `[okta] event_hook_header` (default `Authorization`).",
            ))),
        );
    }
}

/// The document, built once (the routes with a throwaway body limit: layers are not
/// part of it) and post-processed by `complete`.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, api) = super::routes().split_for_parts();
        let mut doc = serde_json::to_value(&api).unwrap_or_else(|e| {
            // Serialising utoipa's own types to JSON cannot fail (string keys only);
            // should it, the document says so rather than the process stopping.
            json!({"openapi": "3.1.0", "info": {"title": format!("document failed: {e}"), "version": ""}, "paths": {}})
        });
        complete(&mut doc);
        doc
    })
}

/// Adds what every operation shares: 401 and 403 on each operation behind the bearer
/// token (the `Caller` extractor), 413 on each operation that takes a body (the
/// router's body limit, [`crate::edge`]), and 500 everywhere (the database, our own
/// failure).
fn complete(doc: &mut Value) {
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            let bearer = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|r| r.get(BEARER).is_some()));
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            if bearer {
                responses.entry("401").or_insert_with(|| {
                    error("`api_error` `unauthorized`: no token, or not a valid one (`WWW-Authenticate: Bearer`)")
                });
                responses.entry("403").or_insert_with(|| {
                    error("`api_error` `forbidden`: the token lacks the app role or scope `create_request`")
                });
            }
            if op.contains_key("requestBody") {
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                responses.entry("413").or_insert_with(|| {
                    error("`api_error` `payload_too_large`: the body is over `max_body_bytes`")
                });
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            responses.entry("500").or_insert_with(|| {
                error("`api_error` `internal`: the database or the connector failed; see its log")
            });
        }
    }
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "monitoring",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value, content_type = "application/json"))
)]
pub async fn openapi() -> axum::Json<&'static Value> {
    axum::Json(document())
}

// ---------------------------------------------------------------------------------
// Errors: the guide's bodies (crate::api::error)
// ---------------------------------------------------------------------------------

/// An error answer, the guide's shape: `api_error` (our validation and our own
/// failures), `ye_error` (the fulfiller refused; its `error_data` relayed) or
/// `idp_error` (the identity provider).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error_code": "api_error", "error_message": "PIN `length` must be between 4 and 63", "error_data": {"error_type": "validation"}}))]
pub struct ErrorBody {
    /// Which party the error is about.
    pub error_code: ErrorCode,
    /// What happened and what to do.
    pub error_message: String,
    /// Details: `error_type` for `api_error`; the fulfiller's `code`, `message`
    /// (and `field`) for `ye_error`. Absent on `idp_error`.
    #[schema(required = false)]
    pub error_data: ErrorData,
}

/// `error_code`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Our validation, or our own failure.
    ApiError,
    /// The fulfiller refused.
    YeError,
    /// The identity provider refused or could not be reached.
    IdpError,
}

/// `error_data`: `error_type` and its details for `api_error`, the fulfiller's error
/// body for `ye_error`. Other members may appear (the fulfiller's are relayed).
#[derive(Serialize, ToSchema)]
pub struct ErrorData {
    /// `validation`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `pin_purged`,
    /// `fulfiller_unavailable` or `internal` (`api_error` only).
    pub error_type: Option<String>,
    /// The input field at fault (the cards' validation; the fulfiller's `field`).
    pub field: Option<String>,
    /// `fulfiller_unavailable`: the id of the request kept for the processor (empty
    /// when nothing was recorded).
    pub request_id: Option<String>,
    /// `pin_purged`: `retention`, `acknowledged`, `deleted`, `not_retained` or `cleanup`.
    pub reason: Option<String>,
    /// `pin_purged`: when (RFC 3339).
    pub purged_at: Option<String>,
    /// `ye_error`: the fulfiller's error code.
    pub code: Option<String>,
    /// `ye_error`: the fulfiller's message.
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------------
// Answers built by the engine as JSON: their shapes
// ---------------------------------------------------------------------------------

/// The identity provider a request registers the key with.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdpName {
    /// Microsoft Entra ID.
    Entra,
    /// Okta.
    Okta,
}

/// A request's state (docs/connector.md, "States").
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    /// Recorded; the shipment is being created at the fulfiller.
    Creating,
    /// Deleted while creating; the processor cancels what the create made.
    Cancelling,
    /// The shipment exists; waiting for the key to be programmed and shipped.
    Open,
    /// Okta mode: waiting for an admin to confirm the key arrived.
    AwaitingApproval,
    /// Registered; the PIN is being delivered.
    PinPending,
    /// Registered and the PIN delivered.
    Complete,
    /// Needs an admin (`last_error` says why).
    Error,
    /// Deleted here or at the fulfiller.
    Deleted,
}

/// A tracked request (never the PIN, never a secret).
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    /// The connector's id.
    pub request_id: String,
    /// Entra or Okta mode.
    pub idp: IdpName,
    /// The fulfiller's shipment id, once created.
    pub shipment_id: Option<String>,
    /// Our state.
    pub state: StateName,
    /// The user's id at the identity provider.
    pub user_id: String,
    /// The user's UPN, login or name.
    pub user: String,
    /// The fulfiller's shipment state id (e.g. 103 programmed, 104 shipped).
    pub fulfiller_state: Option<i64>,
    /// The fulfiller's state text.
    pub fulfiller_state_message: Option<String>,
    /// The key's serial number, once programmed.
    pub serial_number: Option<String>,
    /// The key's firmware version.
    pub firmware_version: Option<String>,
    /// The carrier's tracking link.
    pub tracking_link: Option<String>,
    /// Why the request needs an admin, or the last transient failure.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One step of a request's timeline.
#[derive(Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Unix seconds.
    pub at: i64,
    /// The state entered.
    pub state: String,
    /// Why.
    pub note: String,
}

/// A request with its PIN hold and timeline (`GET /v1/fpr/shipments/{id}`).
#[derive(Serialize, ToSchema)]
pub struct RequestDetails {
    /// The request.
    #[serde(flatten)]
    pub view: RequestView,
    /// RFC 3339, while a delivered PIN is held for resends; else null.
    pub pin_held_until: Option<String>,
    /// RFC 3339, once the held PIN was purged.
    #[schema(required = false)]
    pub pin_purged_at: Option<String>,
    /// Why it was purged.
    #[schema(required = false)]
    pub pin_purge_reason: Option<String>,
    /// The states it went through, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// `{"data": <request>}`.
#[derive(Serialize, ToSchema)]
pub struct RequestAnswer {
    /// The request.
    pub data: RequestView,
}

/// `{"data": <request with hold and timeline>}`.
#[derive(Serialize, ToSchema)]
pub struct RequestDetailsAnswer {
    /// The request.
    pub data: RequestDetails,
}

/// A page of requests (`GET /v1/fpr/shipments`).
#[derive(Serialize, ToSchema)]
pub struct RequestPage {
    /// Newest first.
    pub data: Vec<RequestView>,
    /// How many match the filter.
    pub total_count: i64,
    /// The page size asked for.
    pub limit: i64,
    /// The offset asked for.
    pub offset: i64,
}

/// `201` of the create calls.
#[derive(Serialize, ToSchema)]
pub struct Created {
    /// The shipment and the request.
    pub data: CreatedIds,
}

/// The new request's ids.
#[derive(Serialize, ToSchema)]
pub struct CreatedIds {
    /// The fulfiller's shipment id.
    pub shipment_id: String,
    /// The connector's request id.
    pub request_id: String,
}

/// `202` of "process now" without `wait`.
#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// How many jobs were made due.
    pub data: QueuedCount,
}

/// How many jobs were made due.
#[derive(Serialize, ToSchema)]
pub struct QueuedCount {
    /// Jobs made due.
    pub queued: u64,
}

/// `200` of "process now" with `wait`.
#[derive(Serialize, ToSchema)]
pub struct ProcessedAnswer {
    /// What the runner did meanwhile.
    pub data: Processed,
}

/// What the runner did while the call waited ([`engine::runner::Processed`]).
#[derive(Serialize, ToSchema)]
pub struct Processed {
    /// Jobs made due.
    pub queued: u64,
    /// The runner went idle within the time (false: the time ran out).
    pub idle: bool,
    /// Job runs meanwhile.
    pub processed: u64,
    /// Requests that completed meanwhile.
    pub completed: u64,
    /// Requests that entered `error` meanwhile.
    pub errors: u64,
}

/// Okta's part of an Okta-mode request.
#[derive(Serialize, ToSchema)]
pub struct OktaPart {
    /// Okta's user id.
    pub user_id: String,
    /// The user's login.
    pub login: String,
    /// The mapped group that ordered it.
    pub group_id: Option<String>,
    /// The fulfiller's product id.
    pub product_id: i64,
    /// The inventory product id.
    pub inventory_product_id: i64,
    /// The customization id.
    pub customization_id: String,
    /// `group_add`, `mfa_initiated`, `batch` or `reconcile`.
    pub source: String,
    /// Okta's enrollment ids.
    pub enrollment_ids: Vec<String>,
    /// Whether Okta activated the enrollment.
    pub activated: bool,
    /// A key of a credential request registered at Entra too: the Entra user (object
    /// id) and whether Graph has registered the credential.
    #[schema(required = false)]
    pub entra_credential: Option<EntraCredential>,
}

/// The Entra credential an Okta-mode key carries.
#[derive(Serialize, ToSchema)]
pub struct EntraCredential {
    /// The Entra user's object id.
    pub user_id: String,
    /// Graph has registered it.
    pub registered: bool,
}

/// An Okta-mode request: the shared view, the shipments-table state and Okta's part.
#[derive(Serialize, ToSchema)]
pub struct OktaRequestView {
    /// The request.
    #[serde(flatten)]
    pub view: RequestView,
    /// The guide's shipments-table state: `ongoing`, `complete`, `error` or `deleted`.
    pub table_state: String,
    /// Okta's part (absent when the Okta record is missing).
    #[schema(required = false)]
    pub okta: OktaPart,
}

/// An Okta-mode request with its timeline.
#[derive(Serialize, ToSchema)]
pub struct OktaRequestDetails {
    /// The request.
    #[serde(flatten)]
    pub view: OktaRequestView,
    /// The states it went through, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// `{"data": <Okta-mode request>}`.
#[derive(Serialize, ToSchema)]
pub struct OktaRequestAnswer {
    /// The request.
    pub data: OktaRequestView,
}

/// `{"data": <Okta-mode request with timeline>}`.
#[derive(Serialize, ToSchema)]
pub struct OktaRequestDetailsAnswer {
    /// The request.
    pub data: OktaRequestDetails,
}

/// The shipments table (`GET /v1/okta/requests`).
#[derive(Serialize, ToSchema)]
pub struct OktaRequestPage {
    /// Newest first.
    pub data: Vec<OktaRequestView>,
    /// How many match.
    pub total_count: i64,
    /// The page size.
    pub limit: i64,
}

/// One user's outcome in a batch.
#[derive(Serialize, ToSchema)]
pub struct BatchLine {
    /// The user as given.
    pub user: String,
    /// `created`, `already_open`, `unavailable` (send again) or `refused`.
    pub status: String,
    /// The request (created or already open).
    #[schema(required = false)]
    pub request_id: String,
    /// Why refused or unavailable.
    #[schema(required = false)]
    pub error: String,
    /// `true` when the line's `Idempotency-Key` had already started this request (a
    /// batch sent again): nothing new was ordered.
    #[schema(required = false)]
    pub replayed: bool,
}

/// `202` of a batch: each user's outcome, in the order given.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    /// One line per user.
    pub data: Vec<BatchLine>,
    /// How many requests this call started (replayed lines not counted).
    pub created: u64,
}

/// One row's result in a CSV batch (`POST /v1/batch`).
#[derive(Serialize, ToSchema)]
pub struct CsvBatchRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    /// The `user` cell.
    pub user: String,
    /// The row's mode; absent when its `idp` cell is neither.
    #[schema(required = false)]
    pub idp: Option<super::batch::BatchIdp>,
    /// `created`, `already_open`, `refused` or `unavailable` (send the row again).
    pub status: CsvRowStatus,
    /// The request (created or already open).
    #[schema(required = false)]
    pub request_id: String,
    /// Entra mode, created: the fulfiller's shipment id; null when the fulfiller did not
    /// answer and the processor creates the shipment.
    #[schema(required = false)]
    pub shipment_id: Option<String>,
    /// `true` when the row's `Idempotency-Key` had already made this request: nothing
    /// new was ordered.
    #[schema(required = false)]
    pub replayed: bool,
    /// Refused: the column at fault (`user`, `product`, `idp`, `contacts`,
    /// `delivery_type` or a recipient or address column).
    #[schema(required = false)]
    pub field: String,
    /// Refused or unavailable (or created with a null `shipment_id`): why, and what to
    /// do.
    #[schema(required = false)]
    pub error: String,
    /// Refused by the fulfiller's rules or the fulfiller: its code
    /// (`validation_error`, `unknown_product`, ...).
    #[schema(required = false)]
    pub code: String,
}

/// A CSV row's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CsvRowStatus {
    /// A request was recorded.
    Created,
    /// The user already has an open request (`request_id`).
    AlreadyOpen,
    /// The row is wrong (`field`, `error`); nothing recorded for it.
    Refused,
    /// The identity provider or the database failed just then; send the row again.
    Unavailable,
}

/// `202` of a CSV batch: each row's result in the file's order, and the counts.
#[derive(Serialize, ToSchema)]
pub struct CsvBatchAnswer {
    /// One result per row.
    pub data: Vec<CsvBatchRow>,
    /// Rows in the file.
    pub rows: u64,
    /// Requests this call recorded (replayed rows not counted).
    pub created: u64,
    /// Rows whose user had an open request.
    pub already_open: u64,
    /// Rows refused.
    pub refused: u64,
    /// Rows to send again.
    pub unavailable: u64,
}

/// What a reconciliation did.
#[derive(Serialize, ToSchema)]
pub struct ReconcileAnswer {
    /// The summary.
    pub data: ReconcileSummary,
}

/// Members looked at, requests started, members not started.
#[derive(Serialize, ToSchema)]
pub struct ReconcileSummary {
    /// Members looked at.
    pub checked: u64,
    /// Requests started (ids).
    pub started: Vec<String>,
    /// Members that could not be started, with why.
    pub failed: Vec<String>,
}

/// The event hook's answer.
#[derive(Serialize, ToSchema)]
pub struct EventsAnswer {
    /// Requests started (or found open) per event: `user`, `request_id`, `note`.
    pub started: Vec<Value>,
    /// Event ids already acted on.
    pub duplicates_ignored: Vec<String>,
    /// Event ids not acted on (not a trigger, unmapped group, refused).
    pub not_acted_on: Vec<String>,
}

/// Okta's one-time verification answer.
#[derive(Serialize, ToSchema)]
pub struct Verification {
    /// The `x-okta-verification-challenge` header, echoed.
    pub verification: String,
}

/// A credential request's answer.
#[derive(Serialize, ToSchema)]
pub struct CredentialRequestAnswer {
    /// The credential request.
    pub data: CredentialRequestStatus,
}

/// A credential request with the status of each key and credential
/// ([`engine::credreq::View`]).
#[derive(Serialize, ToSchema)]
pub struct CredentialRequestStatus {
    /// Its id.
    pub id: String,
    /// `ongoing`, `complete` (every key), `error` (a key needs an admin or is not
    /// ordered), `deleted` (every key).
    pub state: String,
    /// The person's Entra object id.
    pub entra_user: Option<String>,
    /// The person's Okta user id.
    pub okta_user: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Each key, in the order's order.
    pub keys: Vec<KeyStatus>,
}

/// One key of a credential request.
#[derive(Serialize, ToSchema)]
pub struct KeyStatus {
    /// Its place in the order (0 first).
    pub position: i64,
    /// Its label.
    pub label: String,
    /// The request that makes it (`null`: not ordered; `last_error` says why).
    pub request_id: Option<String>,
    /// The request's state (`creating`, `open`, `awaiting_approval`, `pin_pending`,
    /// `complete`, `error`, `cancelling`, `deleted`), or `not_ordered`.
    pub state: String,
    /// Who delivers its PIN: `connector` or `okta`.
    pub pin_delivered_by: String,
    /// The fulfiller's shipment id.
    pub shipment_id: Option<String>,
    /// The key's serial once shipped.
    pub serial: Option<String>,
    /// Carrier tracking link.
    pub tracking: Option<String>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// Its credentials.
    pub credentials: Vec<CredentialStatus>,
}

/// One credential of a key.
#[derive(Serialize, ToSchema)]
pub struct CredentialStatus {
    /// `entra` or `okta`.
    pub idp: String,
    /// Its relying parties.
    pub rp_ids: Vec<String>,
    /// `pending`, `registered`, `error`, `deleted` or `not_ordered`.
    pub state: String,
}

/// What `DELETE /v2/credential-requests/{id}` did.
#[derive(Serialize, ToSchema)]
pub struct CredentialRequestDeleted {
    /// The credential request afterwards.
    pub data: CredentialRequestStatus,
    /// One per key.
    pub results: Vec<KeyCancelled>,
}

/// What deleting an order did to one key.
#[derive(Serialize, ToSchema)]
pub struct KeyCancelled {
    /// The key's label.
    pub label: String,
    /// `deleted`, `cancelling`, `already_deleted`, `never_ordered` or `refused`.
    pub outcome: String,
    /// Why it was refused.
    pub error: Option<String>,
}
