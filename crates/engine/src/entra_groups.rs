//! Entra mode's group trigger (`[entra]`, docs/entra-groups.md): Entra security groups
//! mapped to an order line, as Okta groups are in Okta mode. A reconciliation lists each
//! mapped group's members at Graph and orders a key, through the same intake as
//! `POST /v1/fpr/shipments` ([`crate::intake`]), for each enabled member who never had
//! an Entra-mode request (a deleted request does not count: the next reconciliation
//! orders again).
//!
//! Exactly once: the member's order is recorded under an idempotency key naming the
//! user and how many of their requests were deleted, so two replicas reconciling at the
//! same moment order one key, and a member in two mapped groups gets one (the first
//! mapping's). A member Graph did not answer for (or the fulfiller refused) is listed
//! in the summary's `failed` with why, and tried again by the next reconciliation.

use crate::config::{ConfigError, Section};
use crate::domain::{Idp, RequestState};
use crate::groups::{GroupMapping, ReconcileError, ReconcileSummary};
use crate::intake::{self, Contact, Duplicates, Intake, Item, Order, Via};
use crate::services::Services;
use crate::store::Store;
use envelope::PinChoice;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Every key of `[entra]`.
pub const KEYS: &[&str] = &["groups", "reconcile_interval_seconds", "delivery_type"];

/// The idempotency keys' client name: the reconciliation's orders are recorded under it.
pub const CLIENT: &str = "entra-group-reconcile";

/// Members ordered at once (each order reads Graph and creates a shipment).
const AT_ONCE: usize = 8;

/// The Graph attributes read of each member.
const MEMBER_SELECT: &[&str] = &["id", "userPrincipalName", "accountEnabled"];

/// Settings of the Entra group trigger (`[entra]`, environment `ENTRA_<KEY>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraGroupsConfig {
    /// Group (Entra object id) → order line (`[[entra.groups]]`).
    pub groups: Vec<GroupMapping>,
    /// Seconds between reconciliations (default 3600; 0: only on request, `POST
    /// /v1/entra/reconcile` or `prereg entra reconcile`).
    pub reconcile_interval_seconds: u64,
    /// Fulfiller delivery type of the orders: 1 standard (default), 2 expedited.
    pub delivery_type: u8,
}

impl EntraGroupsConfig {
    /// Parses `[entra]`.
    pub fn parse(s: &Section) -> Result<Self, ConfigError> {
        s.only(KEYS)?;
        let groups = crate::groups::mappings(s, "entra")?;
        let mut seen = HashSet::new();
        for g in &groups {
            let Ok(id) = uuid::Uuid::parse_str(g.group_id.trim()) else {
                return Err(s.err(
                    "groups",
                    format!(
                        "group_id {:?} is not an Entra object id (a GUID, as the group's Overview page shows it)",
                        g.group_id
                    ),
                ));
            };
            if !seen.insert(id) {
                return Err(s.err("groups", format!("group {} is mapped twice", g.group_id)));
            }
        }
        let delivery_type: u8 = s.parsed("delivery_type", 1u8)?;
        if !(1..=2).contains(&delivery_type) {
            return Err(s.err("delivery_type", "must be 1 (standard) or 2 (expedited)"));
        }
        Ok(Self {
            groups,
            reconcile_interval_seconds: s.parsed("reconcile_interval_seconds", 3600u64)?,
            delivery_type,
        })
    }
}

/// What the store knows of the users' Entra-mode requests: who has (or had) one that is
/// not deleted, and how many deleted ones each has.
#[derive(Debug, Default)]
struct Known {
    live: HashSet<String>,
    deleted: HashMap<String, i64>,
}

async fn known(state: &Services) -> Result<Known, ReconcileError> {
    let fail = |e: sqlx::Error| ReconcileError::Store(format!("reading the requests: {e}"));
    let live: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT user_id FROM requests WHERE idp = $1 AND state <> $2")
            .bind(Idp::Entra.as_str())
            .bind(RequestState::Deleted.as_str())
            .fetch_all(state.store.pool())
            .await
            .map_err(fail)?;
    let deleted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT user_id, CAST(COUNT(*) AS BIGINT) AS n FROM requests \
         WHERE idp = $1 AND state = $2 GROUP BY user_id",
    )
    .bind(Idp::Entra.as_str())
    .bind(RequestState::Deleted.as_str())
    .fetch_all(state.store.pool())
    .await
    .map_err(fail)?;
    Ok(Known {
        live: live.into_iter().map(|u| u.to_ascii_lowercase()).collect(),
        deleted: deleted
            .into_iter()
            .map(|(u, n)| (u.to_ascii_lowercase(), n))
            .collect(),
    })
}

/// A member to order for.
struct Member {
    id: String,
    label: String,
    mapping: GroupMapping,
    deleted: i64,
}

/// Orders a key for every enabled member of a mapped group who never had an Entra-mode
/// request (see the module's doc). An error is a group Graph would not list, or the
/// database; members that failed are in the summary.
pub async fn reconcile(state: &Arc<Services>) -> Result<ReconcileSummary, ReconcileError> {
    let Some(cfg) = &state.config.entra else {
        return Err(ReconcileError::Off(
            "the Entra group trigger is off (no [entra] groups)".into(),
        ));
    };
    let version = state.config.entra_fido_api_version;
    let known = known(state).await?;
    let mut sum = ReconcileSummary::default();
    let mut todo: Vec<Member> = Vec::new();
    let mut queued = HashSet::new();
    for g in &cfg.groups {
        let members = state
            .graph
            .group_members(version, &g.group_id, MEMBER_SELECT)
            .await
            .map_err(|e| {
                ReconcileError::Idp(format!(
                    "listing the members of Entra group {}: {e}",
                    g.group_id
                ))
            })?;
        for m in members.into_iter().filter(graph::DirectoryObject::is_user) {
            sum.checked += 1;
            // Disabled accounts get no key from a sweep.
            if m.other.get("accountEnabled") == Some(&serde_json::Value::Bool(false)) {
                continue;
            }
            let id = m.id.to_ascii_lowercase();
            if known.live.contains(&id) || !queued.insert(id.clone()) {
                continue;
            }
            todo.push(Member {
                label: m
                    .user_principal_name
                    .clone()
                    .unwrap_or_else(|| m.id.clone()),
                deleted: known.deleted.get(&id).copied().unwrap_or(0),
                id: m.id,
                mapping: g.clone(),
            });
        }
    }
    let delivery = cfg.delivery_type;
    let results: Vec<(String, Result<Option<String>, String>)> = futures_util::stream::iter(todo)
        .map(|m| async move {
            let label = m.label.clone();
            (label, order(state, m, delivery).await)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    for (label, r) in results {
        match r {
            Ok(Some(id)) => sum.started.push(id),
            Ok(None) => {}
            Err(e) => sum.failed.push(format!("{label}: {e}")),
        }
    }
    Ok(sum)
}

/// Orders one member's key: the new request's id, `None` when another reconciliation
/// (or an open request) was first.
async fn order(state: &Arc<Services>, m: Member, delivery: u8) -> Result<Option<String>, String> {
    let key = format!("{}#{}", m.id.to_ascii_lowercase(), m.deleted);
    let order = Order {
        user: m.id.clone(),
        pin: PinChoice::Generate {
            length: crate::batch::ENTRA_PIN_LENGTH,
        },
        min_pin_length: crate::batch::ENTRA_PIN_LENGTH,
        contact: Contact::default(),
        delivery_type: Some(delivery),
        item: Item {
            product_id: m.mapping.product_id,
            inventory_product_id: m.mapping.inventory_product_id,
            customization_id: m.mapping.customization_id.clone(),
        },
        emails_to: Vec::new(),
        reseller_organization_id: None,
        address_validation_bypass: None,
        via: Via::Group,
        keys: 1,
    };
    match intake::create(state, order, Some((CLIENT, &key)), Duplicates::Refuse).await {
        Ok(Intake::Created { request_id, .. }) => {
            tracing::info!(request_id = %request_id, user = %m.label, group = %m.mapping.group_id, "Entra group reconciliation ordered a key");
            Ok(Some(request_id))
        }
        Ok(Intake::Replayed { .. } | Intake::AlreadyOpen { .. }) => Ok(None),
        Err(e) => {
            // The fulfiller did not answer: the request is kept and the processor
            // creates its shipment.
            if let crate::ServiceError::FulfillerUnavailable { request_id, .. } = &e.error
                && !request_id.is_empty()
            {
                return Ok(Some(request_id.clone()));
            }
            // Another replica recorded this member's order under the same key first.
            if let Ok(Some(_)) = state.store.idempotent_request(CLIENT, &key).await {
                return Ok(None);
            }
            tracing::warn!(user = %m.label, group = %m.mapping.group_id, error = %e.error, "Entra group reconciliation could not order a key");
            Err(e.error.to_string())
        }
    }
}

/// Background work of the Entra group trigger: a reconciliation every
/// `reconcile_interval_seconds` (0: off).
pub async fn background(state: Arc<Services>) {
    let Some(cfg) = &state.config.entra else {
        return;
    };
    if cfg.groups.is_empty() {
        return;
    }
    crate::groups::reconcile_every(
        &state,
        cfg.reconcile_interval_seconds,
        "Entra group reconciliation",
        || reconcile(&state),
    )
    .await;
}
