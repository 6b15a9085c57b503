//! What starts a request: the event hook (group add, the preregistration event), a
//! batch call, and the reconciliation of mapped groups' members. Each start resolves the
//! user at Okta and records, in one transaction, the user's open-request lock (one
//! pre-registered request at a time per user) and a `creating` request with a due job; the flow itself runs
//! in [`super::step`]. A start never refuses a person because Okta did not answer: the
//! request is recorded under the name given and its job reads the user (with retries),
//! then takes the lock under the user's Okta id (a second open request for the same
//! person found then is withdrawn). Only what is really wrong is refused: a user Okta
//! does not know, an unmapped group.

use super::store::{self as ostore, OktaRequest};
use super::{GroupMapping, OktaState};
use crate::domain::{Idp, RequestState};
use crate::services::Services;
use crate::store::{RequestRow, Store, now};

/// The order line for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The mapped group that ordered it, if any.
    pub group_id: Option<String>,
    /// Fulfiller product id.
    pub product_id: u32,
    /// Fulfiller inventory product id.
    pub inventory_product_id: u32,
    /// Fulfiller customization id.
    pub customization_id: String,
    /// Recipient and address fields given with the order (a CSV batch row's columns, by
    /// the fulfiller's field names), over the Okta profile and the HR file.
    pub shipping_overrides: std::collections::BTreeMap<String, String>,
    /// What a credential request (API v2) adds to the key.
    pub key: ostore::KeyOptions,
}

impl From<&GroupMapping> for Order {
    fn from(g: &GroupMapping) -> Self {
        Self {
            group_id: Some(g.group_id.clone()),
            product_id: g.product_id,
            inventory_product_id: g.inventory_product_id,
            customization_id: g.customization_id.clone(),
            shipping_overrides: Default::default(),
            key: Default::default(),
        }
    }
}

/// What a start did.
#[derive(Debug, Clone)]
pub enum Started {
    /// A new request.
    Created(Box<RequestRow>),
    /// The user already has an open request (this id): nothing new.
    Duplicate(String),
    /// The caller's idempotency key already started this request (a repeated call
    /// whose first answer was lost): nothing new, whatever the request's state now.
    Replayed(String),
}

/// Why a start failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Okta does not know the user, or the input is wrong: nothing to retry.
    #[error("{0}")]
    Refused(String),
    /// Okta or the database failed: try again.
    #[error("{0}")]
    Unavailable(String),
}

fn okta_state(state: &Services) -> Result<&OktaState, StartError> {
    state
        .okta
        .as_ref()
        .ok_or_else(|| StartError::Refused("Okta mode is off (no [okta] section)".into()))
}

/// Starts a request for `user` (Okta id or login), unless the user has one open.
pub async fn start_request(
    state: &Services,
    user: &str,
    order: Order,
    source: &str,
) -> Result<Started, StartError> {
    start_request_once(state, user, order, source, None).await
}

/// [`start_request`] under a caller's idempotency key (`(client, key)`): a key that
/// already started a request answers [`Started::Replayed`] with it, even when that
/// request has completed since (then the user has no open request, and without the key
/// a repeated call would order a second key).
pub async fn start_request_once(
    state: &Services,
    user: &str,
    order: Order,
    source: &str,
    idempotency: Option<(&str, &str)>,
) -> Result<Started, StartError> {
    let o = okta_state(state)?;
    if let Some((client, key)) = idempotency
        && let Some(id) = state
            .store
            .idempotent_request(client, key)
            .await
            .map_err(|e| StartError::Unavailable(e.to_string()))?
    {
        return Ok(Started::Replayed(id));
    }
    // (Okta id, login) of the user; when Okta does not answer, the name as given: the
    // request is recorded anyway and its job reads the user, with retries.
    let (okta_id, login, resolved) = match o.client.get_user(user).await {
        Ok(u) => {
            o.remember_user(&u);
            (u.id, u.profile.login, true)
        }
        Err(okta::ClientError::Okta { status: 404, .. }) => {
            return Err(StartError::Refused(format!("Okta has no user {user:?}")));
        }
        Err(okta::ClientError::Okta { status, body })
            if (400..500).contains(&status) && status != 429 =>
        {
            return Err(StartError::Refused(format!(
                "Okta refused reading user {user:?}: {body}"
            )));
        }
        Err(e) => {
            tracing::warn!(user, source, error = %e, "Okta did not answer; recording the request, its job reads the user");
            (user.to_owned(), user.to_owned(), false)
        }
    };
    let id = uuid::Uuid::new_v4().to_string();
    let t = now();
    let row = RequestRow {
        id: id.clone(),
        idp: Idp::Okta,
        state: RequestState::Creating,
        user_id: okta_id.clone(),
        user_label: login.clone(),
        pin_contacts: "[]".into(),
        create_body: "{}".into(),
        shipment_id: None,
        fulfiller_state: None,
        fulfiller_message: None,
        serial: None,
        firmware: None,
        tracking: None,
        last_error: None,
        created_at: t,
        updated_at: t,
    };
    let part = OktaRequest {
        request_id: id.clone(),
        okta_user_id: okta_id.clone(),
        login: login.clone(),
        group_id: order.group_id.clone(),
        product_id: i64::from(order.product_id),
        inventory_product_id: i64::from(order.inventory_product_id),
        customization_id: order.customization_id.clone(),
        source: source.to_owned(),
        enrollment_ids: Vec::new(),
        activated: false,
        restart: false,
        shipping_overrides: order.shipping_overrides.clone(),
        key: order.key.clone(),
    };
    let mut note = first_note(source, &part);
    if !resolved {
        note.push_str(&format!(
            " (Okta did not answer when the request was recorded: its job reads user {user:?} first)"
        ));
    }
    // The lock, the key and the request in one transaction: nothing half-made.
    match ostore::insert_request(&state.store, &row, &part, &note, idempotency).await {
        Ok(None) => {}
        Ok(Some(holder)) => {
            tracing::info!(okta_user = %okta_id, request_id = %holder, source, "the user already has an open request; not starting another");
            return Ok(Started::Duplicate(holder));
        }
        Err(e) => return Err(StartError::Unavailable(e.to_string())),
    }
    tracing::info!(request_id = %id, okta_user = %okta_id, source, "Okta-mode request started");
    Ok(Started::Created(Box::new(row)))
}

/// The first audit-trail entry of a request: which trigger started it, for which
/// group (or batch), and the order line.
fn first_note(source: &str, part: &OktaRequest) -> String {
    let group = part.group_id.as_deref();
    let started = match (source, group) {
        ("group_add", Some(g)) => format!(
            "started by the Okta group-add trigger: {} was added to mapped group {g}",
            part.login
        ),
        ("mfa_initiated", _) => format!(
            "started by the Okta MFA-initiated trigger: the preregistration event for {}",
            part.login
        ),
        ("batch", Some(g)) => format!("started by a batch order for {} (group {g})", part.login),
        ("batch", None) => format!("started by a batch order for {}", part.login),
        ("reconcile", Some(g)) => format!(
            "started by the reconciliation of mapped group {g}: {} is a member who never had a request",
            part.login
        ),
        (other, Some(g)) => format!("started by {other} for {} (group {g})", part.login),
        (other, None) => format!("started by {other} for {}", part.login),
    };
    format!(
        "{started}; order: product {}, inventory {}, customization {}; next: enroll at Okta and order at the fulfiller",
        part.product_id, part.inventory_product_id, part.customization_id
    )
}

pub use crate::groups::{ReconcileError, ReconcileSummary};

/// Starts a request for every member of a mapped group who never had one (not counting
/// deleted requests): a group event Okta never delivered is not a missed key.
pub async fn reconcile(state: &Services) -> Result<ReconcileSummary, ReconcileError> {
    let o = okta_state(state).map_err(|e| ReconcileError::Off(e.to_string()))?;
    let mut sum = ReconcileSummary::default();
    for g in &o.config.groups {
        let members = o
            .client
            .list_group_members(&g.group_id)
            .await
            .map_err(|e| {
                ReconcileError::Idp(format!("listing the members of group {}: {e}", g.group_id))
            })?;
        for m in members {
            sum.checked += 1;
            // Deactivated or suspended users get no key from a sweep.
            if matches!(
                m.status,
                okta::UserStatus::Deprovisioned | okta::UserStatus::Suspended
            ) {
                continue;
            }
            match ostore::user_has_request(state.store.pool(), &m.id).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Err(ReconcileError::Store(e.to_string())),
            }
            match start_request(state, &m.id, Order::from(g), "reconcile").await {
                Ok(Started::Created(r)) => sum.started.push(r.id),
                Ok(Started::Duplicate(_) | Started::Replayed(_)) => {}
                Err(e) => sum.failed.push(format!("{}: {e}", m.profile.login)),
            }
        }
    }
    Ok(sum)
}

/// The order line of a preregistration event (`debugData.fulfillmentData`, an array or
/// its JSON text), or the first group mapping when the event names none.
pub fn order_of_event(o: &OktaState, debug: &serde_json::Value) -> Option<Order> {
    let data = &debug["debugData"]["fulfillmentData"];
    let parsed: Option<serde_json::Value> = match data {
        serde_json::Value::String(s) => serde_json::from_str(s).ok(),
        v if !v.is_null() => Some(v.clone()),
        _ => None,
    };
    let first = parsed.and_then(|v| match v {
        serde_json::Value::Array(a) => a.into_iter().next(),
        v @ serde_json::Value::Object(_) => Some(v),
        _ => None,
    });
    let num = |v: &serde_json::Value| -> Option<u32> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    };
    let fallback = o.config.groups.first().map(Order::from);
    match first {
        Some(f) => {
            let fb = fallback.clone();
            Some(Order {
                group_id: None,
                product_id: num(&f["productId"]).or(fb.as_ref().map(|b| b.product_id))?,
                inventory_product_id: num(&f["inventoryProductId"])
                    .or(fb.as_ref().map(|b| b.inventory_product_id))?,
                customization_id: f["customizationId"]
                    .as_str()
                    .map(str::to_owned)
                    .or(fb.map(|b| b.customization_id))?,
                shipping_overrides: Default::default(),
                key: Default::default(),
            })
        }
        None => fallback,
    }
}
