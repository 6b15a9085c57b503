//! Credential requests (API v2, docs/credential-requests.md): one person's order of
//! several keys (a primary and a backup, say), each with credentials at Entra, at Okta,
//! or at both, and the status of every key and credential.
//!
//! Each key is a request of its own, made by the flow that owns its PIN:
//!
//! - a key with an Okta credential is an Okta-mode request: Okta's enrollment makes the
//!   PIN request and Okta mails the PIN; an Entra credential on the same key is our own
//!   credential request riding in the same order, registered with Graph once the key has
//!   shipped ([`crate::okta`]'s flow, `KeyOptions::entra_user_id`);
//! - a key with only an Entra credential is an Entra-mode request ([`crate::intake`]):
//!   the connector mails the PIN, naming the key's label.
//!
//! The fulfiller's FIDO Pre-reg create takes one key per shipment (the guide: "only one
//! key per shipment can be requested"), so each key ships on its own, unless
//! `fulfiller_keys_per_shipment` says the fulfiller ships several together: then the
//! keys with only an Entra credential share shipments of up to that many. The first
//! key's request orders the shipment with every key's sealed requests; each other key
//! is a request that rides in it ([`crate::process::Rider`]).
//!
//! Exactly once: the credential request and its keys are recorded first; each key's
//! request is then made under the idempotency key `("credential-request",
//! "<id>#<position>")`, so an order repeated with the caller's `Idempotency-Key` (after a
//! lost answer, or to resume keys a vendor outage left unordered) orders only the keys
//! not yet ordered, and never one twice.

use crate::domain::{Idp, RequestState};
use crate::error::ServiceError;
use crate::intake::{self, Contact, Duplicates, Intake, Item, Order, Via};
use crate::okta::Started;
use crate::okta::store::KeyOptions;
use crate::okta::triggers::StartError;
use crate::services::Services;
use crate::store::{RequestRow, Store, StoreError, now};
use envelope::PinChoice;
use sqlx::Row;
use std::sync::Arc;

/// The idempotency client under which each key's request is made.
pub const KEY_CLIENT: &str = "credential-request";
/// The Okta-mode `source` of a key's request.
pub const SOURCE: &str = "credential_request";
/// The relying party of every Entra credential (Graph's creation options name it).
pub const ENTRA_RP: &str = "login.microsoft.com";
/// At most this many keys per credential request.
pub const MAX_KEYS: usize = 4;

/// One credential a key carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credential {
    /// Where it is registered.
    pub idp: Idp,
    /// Its relying parties (Entra: `login.microsoft.com`; Okta: of `okta.rp_ids`).
    #[serde(default)]
    pub rp_ids: Vec<String>,
}

/// One key of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// What the person calls it (`primary`, `backup`): named in the PIN mail.
    pub label: String,
    /// Its credentials, one per identity provider.
    pub credentials: Vec<Credential>,
}

impl Key {
    /// Whether the key is registered at `idp`.
    fn at(&self, idp: Idp) -> bool {
        self.credentials.iter().any(|c| c.idp == idp)
    }

    /// The flow that makes the key and delivers its PIN.
    fn home(&self) -> Idp {
        if self.at(Idp::Okta) {
            Idp::Okta
        } else {
            Idp::Entra
        }
    }
}

/// A credential request as the API gives it.
#[derive(Debug)]
pub struct NewRequest {
    /// The person at Entra (object id or UPN), when a key has an Entra credential.
    pub entra_user: Option<String>,
    /// The person at Okta (id or login), when a key has an Okta credential.
    pub okta_user: Option<String>,
    /// The keys' product, inventory and customization.
    pub item: Item,
    /// Recipient and address fields given (the rest from the identity provider).
    pub contact: Contact,
    /// 1 standard, 2 expedited.
    pub delivery_type: Option<u8>,
    /// The PIN of keys whose PIN the connector delivers (Entra-only keys).
    pub pin: PinChoice,
    /// Its minimum length on the key.
    pub min_pin_length: u8,
    /// Who receives those PINs (empty: the manager, as in Entra mode).
    pub emails_to: Vec<String>,
    /// The keys.
    pub keys: Vec<Key>,
}

fn invalid(m: String) -> ServiceError {
    ServiceError::Validation(m)
}

impl NewRequest {
    /// Checks the order against the configuration and fills each credential's relying
    /// parties: every error names the member at fault.
    pub fn prepare(&mut self, state: &Services) -> Result<(), ServiceError> {
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return Err(invalid(format!(
                "`keys` must hold 1 to {MAX_KEYS} keys, not {}",
                self.keys.len()
            )));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, k) in self.keys.iter_mut().enumerate() {
            let label = k.label.trim().to_owned();
            if label.is_empty()
                || label.len() > 32
                || !label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _-".contains(c))
            {
                return Err(invalid(format!(
                    "`keys[{i}].label` must be 1 to 32 letters, digits, spaces, `_` or `-`, not {:?}",
                    k.label
                )));
            }
            if seen.iter().any(|s| s.eq_ignore_ascii_case(&label)) {
                return Err(invalid(format!(
                    "`keys[{i}].label` {label:?} names two keys: give each key its own label"
                )));
            }
            seen.push(label.clone());
            k.label = label;
            if k.credentials.is_empty() || k.credentials.len() > 2 {
                return Err(invalid(format!(
                    "`keys[{i}].credentials` must hold one credential per identity provider (entra, okta or both)"
                )));
            }
            if k.credentials.len() == 2 && k.credentials[0].idp == k.credentials[1].idp {
                return Err(invalid(format!(
                    "`keys[{i}].credentials` names {} twice: one credential per identity provider",
                    k.credentials[0].idp
                )));
            }
            for (j, c) in k.credentials.iter_mut().enumerate() {
                let at = format!("keys[{i}].credentials[{j}]");
                match c.idp {
                    Idp::Entra => {
                        if self.entra_user.is_none() {
                            return Err(invalid(format!(
                                "`{at}` is an Entra credential: give `person.entra_user`"
                            )));
                        }
                        if c.rp_ids.is_empty() {
                            c.rp_ids = vec![ENTRA_RP.to_owned()];
                        }
                        if c.rp_ids != [ENTRA_RP] {
                            return Err(invalid(format!(
                                "`{at}.rp_ids`: an Entra credential's relying party is {ENTRA_RP} (Graph's creation options name it), not {:?}",
                                c.rp_ids
                            )));
                        }
                    }
                    Idp::Okta => {
                        let Some(o) = &state.okta else {
                            return Err(invalid(format!(
                                "`{at}` is an Okta credential, but Okta mode is off (no [okta] section)"
                            )));
                        };
                        if self.okta_user.is_none() {
                            return Err(invalid(format!(
                                "`{at}` is an Okta credential: give `person.okta_user`"
                            )));
                        }
                        if c.rp_ids.is_empty() {
                            c.rp_ids = o.config.rp_ids.clone();
                        }
                        if let Some(bad) = c.rp_ids.iter().find(|r| !o.config.rp_ids.contains(r)) {
                            return Err(invalid(format!(
                                "`{at}.rp_ids`: {bad:?} is not one of the relying parties in okta.rp_ids ({})",
                                o.config.rp_ids.join(", ")
                            )));
                        }
                    }
                }
            }
        }
        let any = |idp| self.keys.iter().any(|k| k.at(idp));
        if self.entra_user.is_some() && !any(Idp::Entra) {
            return Err(invalid(
                "`person.entra_user` is given but no key has an Entra credential".into(),
            ));
        }
        if self.okta_user.is_some() && !any(Idp::Okta) {
            return Err(invalid(
                "`person.okta_user` is given but no key has an Okta credential".into(),
            ));
        }
        if self.item.customization_id.trim().is_empty() {
            return Err(invalid("`product.customization_id` is required".into()));
        }
        intake::check_emails(&self.emails_to)?;
        Ok(())
    }
}

/// A credential's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CredentialView {
    /// `entra` or `okta`.
    pub idp: Idp,
    /// Its relying parties.
    pub rp_ids: Vec<String>,
    /// `pending`, `registered`, `error` (the key's request needs an admin), `deleted`,
    /// or `not_ordered`.
    pub state: &'static str,
}

/// A key's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    /// Its place in the order (0 first).
    pub position: i64,
    /// Its label.
    pub label: String,
    /// The request that makes it (`None`: not ordered yet; `last_error` says why).
    pub request_id: Option<String>,
    /// The request's state (`creating` ... `complete`), or `not_ordered`.
    pub state: String,
    /// Who delivers its PIN: `connector` (Entra-only keys) or `okta`.
    pub pin_delivered_by: &'static str,
    /// The fulfiller's shipment.
    pub shipment_id: Option<String>,
    /// The key's serial once shipped.
    pub serial: Option<String>,
    /// Carrier tracking.
    pub tracking: Option<String>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// Its credentials.
    pub credentials: Vec<CredentialView>,
}

/// A credential request's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct View {
    /// Its id.
    pub id: String,
    /// `ongoing`, `complete` (every key), `error` (a key needs an admin or is not
    /// ordered) or `deleted` (every key).
    pub state: &'static str,
    /// The person's Entra object id.
    pub entra_user: Option<String>,
    /// The person's Okta user id.
    pub okta_user: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Each key.
    pub keys: Vec<KeyView>,
}

/// What [`create`] did.
#[derive(Debug)]
pub struct Created {
    /// The credential request now.
    pub view: View,
    /// The caller's idempotency key had made it already.
    pub replayed: bool,
}

/// Takes a credential request: checks it, resolves the person at each identity
/// provider named, records it, and orders each key (see the module's doc). A repeat
/// under the same `idempotency` key answers the recorded request, after ordering the
/// keys still unordered.
pub async fn create(
    state: &Arc<Services>,
    mut req: NewRequest,
    idempotency: Option<(&str, &str)>,
) -> Result<Created, ServiceError> {
    let once_key = idempotency.map(|(c, k)| (c, format!("{KEY_CLIENT}:{k}")));
    if let Some((client, key)) = &once_key
        && let Some(id) = state.store.idempotent_request(client, key).await?
    {
        return replay(state, &id, &req).await;
    }
    req.prepare(state)?;
    let version = state.config.entra_fido_api_version;
    if let Some(u) = &req.entra_user {
        match state.graph.get_user(version, u, &["id"]).await {
            Ok(user) => req.entra_user = Some(user.id),
            Err(e) if e.status() == Some(404) => {
                return Err(ServiceError::Idp(format!(
                    "`person.entra_user`: Could not find user: {u}"
                )));
            }
            Err(e) => {
                return Err(ServiceError::IdpUnavailable(format!(
                    "Microsoft Graph: {e}; nothing was recorded, send the request again"
                )));
            }
        }
    }
    if let (Some(u), Some(o)) = (&req.okta_user, &state.okta) {
        match o.client.get_user(u).await {
            Ok(user) => {
                o.remember_user(&user);
                req.okta_user = Some(user.id);
            }
            Err(okta::ClientError::Okta { status: 404, .. }) => {
                return Err(ServiceError::Idp(format!(
                    "`person.okta_user`: Okta has no user {u:?}"
                )));
            }
            Err(e) => {
                return Err(ServiceError::IdpUnavailable(format!(
                    "Okta: {e}; nothing was recorded, send the request again"
                )));
            }
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    if let Err(e) = record(
        state,
        &id,
        &req,
        once_key.as_ref().map(|(c, k)| (*c, k.as_str())),
    )
    .await
    {
        // Two first calls with one idempotency key at once: the other one recorded it.
        if let Some((client, key)) = &once_key
            && let Some(other) = state.store.idempotent_request(client, key).await?
        {
            return replay(state, &other, &req).await;
        }
        return Err(e.into());
    }
    tracing::info!(credential_request = %id, keys = req.keys.len(), "credential request recorded; ordering its keys");
    let errors = order_keys(state, &id, &req).await?;
    let mut view = get(state, &id)
        .await?
        .ok_or_else(|| ServiceError::internal("the credential request just recorded is missing"))?;
    // Nothing ordered (every key refused, or a vendor down from the first key on):
    // nothing stays, and the first key's error is the answer.
    if view.keys.iter().all(|k| k.request_id.is_none())
        && let Some(e) = errors.into_iter().next()
    {
        if forget(state, &id, once_key.as_ref().map(|(c, k)| (*c, k.as_str()))).await? {
            return Err(e);
        }
        // A concurrent repeat of the order made a key meanwhile: the order stands.
        view = get(state, &id).await?.ok_or_else(|| {
            ServiceError::internal("the credential request just recorded is missing")
        })?;
    }
    Ok(Created {
        view,
        replayed: false,
    })
}

/// The answer to a repeat of the order that made credential request `id`, after
/// ordering its keys still unordered.
async fn replay(
    state: &Arc<Services>,
    id: &str,
    req: &NewRequest,
) -> Result<Created, ServiceError> {
    let _ = order_keys(state, id, req).await?;
    Ok(Created {
        view: get(state, id).await?.ok_or_else(withdrawn)?,
        replayed: true,
    })
}

/// A repeated order whose first call could order no key and withdrew it meanwhile.
fn withdrawn() -> ServiceError {
    ServiceError::Conflict(
        "the first call with this Idempotency-Key could order no key and withdrew the order; send it again"
            .into(),
    )
}

/// Records the credential request, its keys (not yet ordered) and the caller's
/// idempotency key, in one transaction.
async fn record(
    state: &Services,
    id: &str,
    req: &NewRequest,
    once: Option<(&str, &str)>,
) -> Result<(), StoreError> {
    let mut tx = state.store.begin_write().await?;
    let t = now();
    sqlx::query(
        "INSERT INTO credential_requests (id, entra_user, okta_user, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&req.entra_user)
    .bind(&req.okta_user)
    .bind(t)
    .execute(&mut *tx)
    .await?;
    for (i, k) in req.keys.iter().enumerate() {
        // Idps and strings: serializing cannot fail.
        let creds = serde_json::to_string(&k.credentials).unwrap_or_default();
        sqlx::query(
            "INSERT INTO credential_request_keys (credential_request_id, position, label, credentials) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(i as i64)
        .bind(&k.label)
        .bind(creds)
        .execute(&mut *tx)
        .await?;
    }
    if let Some((client, key)) = once {
        sqlx::query("INSERT INTO idempotency_keys (client, key, request_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(client)
            .bind(key)
            .bind(id)
            .bind(t)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes a credential request nothing was ordered for; `false` (nothing removed) when
/// a key's request exists after all (a concurrent repeat of the order made it
/// meanwhile: it is kept, with its order).
async fn forget(
    state: &Services,
    id: &str,
    once: Option<(&str, &str)>,
) -> Result<bool, StoreError> {
    let mut tx = state.store.begin_write().await?;
    let made: i64 = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM idempotency_keys WHERE client = $1 AND key LIKE $2",
    )
    .bind(KEY_CLIENT)
    .bind(format!("{id}#%"))
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    if made > 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM credential_request_keys WHERE credential_request_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM credential_requests WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if let Some((client, key)) = once {
        sqlx::query("DELETE FROM idempotency_keys WHERE client = $1 AND key = $2")
            .bind(client)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A recorded key.
struct KeyRow {
    position: i64,
    label: String,
    credentials: Vec<Credential>,
    request_id: Option<String>,
    last_error: Option<String>,
    cancelled: bool,
}

async fn keys_of(state: &Services, id: &str) -> Result<Vec<KeyRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT CAST(position AS BIGINT) AS position, label, credentials, request_id, last_error, \
         CAST(cancelled AS BIGINT) AS cancelled FROM credential_request_keys WHERE credential_request_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(state.store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let creds: String = r.try_get("credentials")?;
            Ok(KeyRow {
                position: r.try_get("position")?,
                label: r.try_get("label")?,
                credentials: serde_json::from_str(&creds).unwrap_or_default(),
                request_id: r.try_get("request_id")?,
                last_error: r.try_get("last_error")?,
                cancelled: r.try_get::<i64, _>("cancelled")? != 0,
            })
        })
        .collect()
}

/// Orders each key of credential request `id` that has no request yet (in the order's
/// order), recording its request id, or why it could not be ordered; returns those
/// errors.
async fn order_keys(
    state: &Arc<Services>,
    id: &str,
    req: &NewRequest,
) -> Result<Vec<ServiceError>, ServiceError> {
    let Some(person) =
        sqlx::query("SELECT entra_user, okta_user FROM credential_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(state.store.pool())
            .await
            .map_err(StoreError::from)?
    else {
        return Err(withdrawn());
    };
    let entra_user: Option<String> = person.try_get("entra_user").map_err(StoreError::from)?;
    let okta_user: Option<String> = person.try_get("okta_user").map_err(StoreError::from)?;
    let keys = keys_of(state, id).await?;
    let shared = shipments_of(&keys, state.config.fulfiller_keys_per_shipment);
    // The request of each key ordered so far (a rider needs its lead's).
    let mut made_ids: std::collections::HashMap<i64, String> = keys
        .iter()
        .filter_map(|k| k.request_id.clone().map(|r| (k.position, r)))
        .collect();
    let mut errors = Vec::new();
    let mut okta_keys = 0usize;
    for k in &keys {
        let key = Key {
            label: k.label.clone(),
            credentials: k.credentials.clone(),
        };
        let home = key.home();
        let place = shared.get(&k.position).copied();
        // The first Okta key takes the person's lock; a second one its label's slot.
        let slot = (home == Idp::Okta && okta_keys > 0).then(|| key.label.clone());
        okta_keys += usize::from(home == Idp::Okta);
        if k.request_id.is_some() || k.cancelled {
            continue;
        }
        let once = format!("{id}#{}", k.position);
        // Made already (a crash before the key's row was updated, or a concurrent repeat
        // of the order): its request is recorded under the key's idempotency key.
        let made = match state.store.idempotent_request(KEY_CLIENT, &once).await? {
            Some(r) => Ok(r),
            None => match home {
                // The first key of a shared shipment orders it, with every key's requests.
                Idp::Entra if place.is_some_and(|p| p.index > 0) => {
                    let p = place.unwrap_or_default();
                    match made_ids.get(&p.lead) {
                        Some(lead) => add_rider(state, lead, p.index, (KEY_CLIENT, &once)).await,
                        None => Err(ServiceError::FulfillerUnavailable {
                            message: "the first key of its shipment was not ordered".into(),
                            request_id: String::new(),
                        }),
                    }
                }
                Idp::Entra => {
                    let keys = place.map_or(1, |p| p.keys);
                    order_entra(state, entra_user.as_deref(), req, keys, (KEY_CLIENT, &once)).await
                }
                Idp::Okta => {
                    let opts = KeyOptions {
                        slot,
                        rp_ids: key
                            .credentials
                            .iter()
                            .find(|c| c.idp == Idp::Okta)
                            .map(|c| c.rp_ids.clone())
                            .unwrap_or_default(),
                        entra_user_id: key.at(Idp::Entra).then(|| entra_user.clone()).flatten(),
                        entra_registered: false,
                    };
                    order_okta(state, okta_user.as_deref(), req, opts, (KEY_CLIENT, &once)).await
                }
            },
        };
        // A concurrent repeat of the order that made the key first makes this attempt
        // fail (its idempotency key is taken): the key is ordered, by the other.
        let made = match made {
            Err(e) => match state.store.idempotent_request(KEY_CLIENT, &once).await? {
                Some(r) => Ok(r),
                None => Err(e),
            },
            ok => ok,
        };
        // A failure is recorded only on a key not ordered meanwhile: a concurrent repeat
        // that lost the race to make the key never hides the request the winner made.
        if let Ok(r) = &made {
            made_ids.insert(k.position, r.clone());
        }
        let lead = place.and_then(|p| made_ids.get(&p.lead).cloned());
        let write = match made {
            Ok(r) => sqlx::query(
                "UPDATE credential_request_keys SET request_id = $3, last_error = NULL, \
                 shipment_lead = $4 WHERE credential_request_id = $1 AND position = $2",
            )
            .bind(id)
            .bind(k.position)
            .bind(r)
            .bind(lead),
            Err(e) => {
                tracing::warn!(credential_request = %id, key = %k.label, error = %e, "a key could not be ordered");
                let why = format!("key {:?} was not ordered: {e}", k.label);
                errors.push(e);
                sqlx::query(
                    "UPDATE credential_request_keys SET last_error = $3 \
                     WHERE credential_request_id = $1 AND position = $2 AND request_id IS NULL",
                )
                .bind(id)
                .bind(k.position)
                .bind(why)
            }
        };
        write
            .execute(state.store.pool())
            .await
            .map_err(StoreError::from)?;
    }
    Ok(errors)
}

/// A key's place in a shipment it shares with other keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Place {
    /// The position (in the order) of the shipment's first key, whose request orders it.
    lead: i64,
    /// The key's place in the shipment (0 first).
    index: usize,
    /// Keys in the shipment.
    keys: u32,
}

/// Which keys share a shipment: with a fulfiller that ships up to `per_shipment` keys
/// together, the keys with only an Entra credential, in the order's order, in shipments
/// of up to that many (a key with an Okta credential ships on its own: Okta enrolls
/// one key at a time). Keys alone in their shipment are not listed.
fn shipments_of(keys: &[KeyRow], per_shipment: u32) -> std::collections::HashMap<i64, Place> {
    let mut out = std::collections::HashMap::new();
    if per_shipment < 2 {
        return out;
    }
    let entra_only: Vec<i64> = keys
        .iter()
        .filter(|k| k.credentials.iter().all(|c| c.idp == Idp::Entra))
        .map(|k| k.position)
        .collect();
    for group in entra_only.chunks(per_shipment as usize) {
        if group.len() < 2 {
            continue;
        }
        for (index, p) in group.iter().enumerate() {
            out.insert(
                *p,
                Place {
                    lead: group[0],
                    index,
                    keys: u32::try_from(group.len()).unwrap_or(1),
                },
            );
        }
    }
    out
}

/// Records key `index` of the shipment request `lead` orders as a request of its own
/// (a rider, [`crate::process::Rider`]): the lead's user, PIN contacts and response key
/// (sealed again under the rider's id), due now.
async fn add_rider(
    state: &Arc<Services>,
    lead: &str,
    index: usize,
    once: (&str, &str),
) -> Result<String, ServiceError> {
    let lead_row =
        state.store.get_request(lead).await?.ok_or_else(|| {
            ServiceError::internal("the shipment's first key's request is missing")
        })?;
    let sealed = state
        .store
        .get_secret(lead, crate::secrets::Purpose::ResponseKey)
        .await?
        .ok_or_else(|| ServiceError::internal("the shipment's response key is missing"))?;
    let key = state
        .master_key
        .open(lead, crate::secrets::Purpose::ResponseKey, &sealed)
        .map_err(ServiceError::internal)?;
    let id = uuid::Uuid::new_v4().to_string();
    let sealed = state
        .master_key
        .seal(&id, crate::secrets::Purpose::ResponseKey, &key)
        .map_err(ServiceError::internal)?;
    let t = now();
    let row = RequestRow {
        id: id.clone(),
        idp: Idp::Entra,
        state: RequestState::Creating,
        user_id: lead_row.user_id.clone(),
        user_label: lead_row.user_label.clone(),
        pin_contacts: lead_row.pin_contacts.clone(),
        create_body: crate::process::Rider {
            rider_of: lead.to_owned(),
            index,
        }
        .body(),
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
    let job = state
        .store
        .insert_request(&row, &sealed, Some(once), state.config.processing.lease())
        .await?;
    state
        .store
        .release(&job, now(), None, crate::store::Release::Wait)
        .await?;
    state.runner.kick();
    Ok(id)
}

/// The requests of the keys riding in the shipment request `lead` orders.
pub async fn riders_of(state: &Services, lead: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT request_id FROM credential_request_keys \
         WHERE shipment_lead = $1 AND request_id IS NOT NULL AND request_id <> $1",
    )
    .bind(lead)
    .fetch_all(state.store.pool())
    .await?;
    rows.iter().map(|r| Ok(r.try_get("request_id")?)).collect()
}

async fn order_entra(
    state: &Arc<Services>,
    user: Option<&str>,
    req: &NewRequest,
    keys: u32,
    once: (&str, &str),
) -> Result<String, ServiceError> {
    let user = user.ok_or_else(|| invalid("`person.entra_user` is required".into()))?;
    let order = Order {
        user: user.to_owned(),
        pin: req.pin.clone(),
        min_pin_length: req.min_pin_length,
        contact: req.contact.clone(),
        delivery_type: req.delivery_type,
        item: req.item.clone(),
        emails_to: req.emails_to.clone(),
        reseller_organization_id: None,
        address_validation_bypass: None,
        via: Via::Api,
        keys,
    };
    match intake::create(state, order, Some(once), Duplicates::Allow).await {
        Ok(Intake::Created { request_id, .. } | Intake::Replayed { request_id, .. }) => {
            Ok(request_id)
        }
        Ok(Intake::AlreadyOpen { request_id }) => Ok(request_id),
        // Recorded; the processor creates the shipment.
        Err(e) => match e.error {
            ServiceError::FulfillerUnavailable { request_id, .. } if !request_id.is_empty() => {
                Ok(request_id)
            }
            other => Err(other),
        },
    }
}

async fn order_okta(
    state: &Arc<Services>,
    user: Option<&str>,
    req: &NewRequest,
    key: KeyOptions,
    once: (&str, &str),
) -> Result<String, ServiceError> {
    let user = user.ok_or_else(|| invalid("`person.okta_user` is required".into()))?;
    let overrides: std::collections::BTreeMap<String, String> = req
        .contact
        .given()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    crate::okta::profile::check_overrides(&overrides)
        .map_err(|(field, why)| invalid(format!("`{field}`: {why}")))?;
    let order = crate::okta::Order {
        group_id: None,
        product_id: req.item.product_id,
        inventory_product_id: req.item.inventory_product_id,
        customization_id: req.item.customization_id.clone(),
        shipping_overrides: overrides,
        key,
    };
    match crate::okta::start_request_once(state, user, order, SOURCE, Some(once)).await {
        Ok(Started::Created(row)) => {
            state.runner.kick();
            Ok(row.id)
        }
        Ok(Started::Replayed(id)) => Ok(id),
        Ok(Started::Duplicate(holder)) => Err(ServiceError::Conflict(format!(
            "the person already has open Okta-mode request {holder} for this key; finish or delete it first"
        ))),
        Err(StartError::Refused(m)) => Err(ServiceError::Idp(m)),
        Err(StartError::Unavailable(m)) => Err(ServiceError::IdpUnavailable(m)),
    }
}

/// The label of the key request `request_id` makes, when it is a credential request's.
pub async fn label_of(state: &Services, request_id: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT label FROM credential_request_keys WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(state.store.pool())
            .await?
            .map(|r| r.try_get("label"))
            .transpose()?,
    )
}

/// The credential request `id` with the status of each key and credential.
pub async fn get(state: &Services, id: &str) -> Result<Option<View>, StoreError> {
    let Some(cr) = sqlx::query(
        "SELECT entra_user, okta_user, CAST(created_at AS BIGINT) AS created_at FROM credential_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(state.store.pool())
    .await?
    else {
        return Ok(None);
    };
    let created: i64 = cr.try_get("created_at")?;
    let mut keys = Vec::new();
    for k in keys_of(state, id).await? {
        let row = match &k.request_id {
            Some(r) => state.store.get_request(r).await?,
            None => None,
        };
        let part = match &row {
            Some(r) if r.idp == Idp::Okta => {
                crate::okta::store::get(state.store.pool(), &r.id).await?
            }
            _ => None,
        };
        let credentials = k
            .credentials
            .iter()
            .map(|c| CredentialView {
                idp: c.idp,
                rp_ids: c.rp_ids.clone(),
                state: match (&row, k.cancelled) {
                    (None, true) => "deleted",
                    _ => credential_state(c.idp, row.as_ref(), part.as_ref()),
                },
            })
            .collect();
        let key = Key {
            label: k.label.clone(),
            credentials: k.credentials.clone(),
        };
        // A key riding in another key's shipment shows that shipment.
        let shipment = match row
            .as_ref()
            .map(|r| (r.shipment_id.clone(), crate::process::Rider::of(r)))
        {
            Some((Some(s), _)) => Some(s),
            Some((None, Some(rider))) => state
                .store
                .get_request(&rider.rider_of)
                .await?
                .and_then(|l| l.shipment_id),
            _ => None,
        };
        keys.push(KeyView {
            position: k.position,
            label: k.label,
            request_id: k.request_id,
            state: match &row {
                Some(r) => r.state.to_string(),
                None if k.cancelled => RequestState::Deleted.to_string(),
                None => "not_ordered".to_owned(),
            },
            pin_delivered_by: match key.home() {
                Idp::Entra => "connector",
                Idp::Okta => "okta",
            },
            shipment_id: shipment,
            serial: row.as_ref().and_then(|r| r.serial.clone()),
            tracking: row.as_ref().and_then(|r| r.tracking.clone()),
            last_error: row
                .as_ref()
                .and_then(|r| r.last_error.clone())
                .or(k.last_error),
            credentials,
        });
    }
    let all = |s: &str| keys.iter().all(|k| k.state == s);
    let state = if all("complete") {
        "complete"
    } else if all("deleted") {
        "deleted"
    } else if keys
        .iter()
        .any(|k| k.state == "error" || k.state == "not_ordered")
    {
        "error"
    } else {
        "ongoing"
    };
    Ok(Some(View {
        id: id.to_owned(),
        state,
        entra_user: cr.try_get("entra_user")?,
        okta_user: cr.try_get("okta_user")?,
        created_at: chrono::DateTime::from_timestamp(created, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        keys,
    }))
}

/// Where one credential of a key stands: its own flow's registration (Entra mode: the
/// serial is recorded with the registration; Okta mode: the activation), or the Entra
/// credential an Okta-mode key carries.
fn credential_state(
    idp: Idp,
    row: Option<&RequestRow>,
    part: Option<&crate::okta::store::OktaRequest>,
) -> &'static str {
    let Some(row) = row else {
        return "not_ordered";
    };
    let registered = match (row.idp, idp, part) {
        (Idp::Entra, Idp::Entra, _) => row.serial.is_some(),
        (Idp::Okta, Idp::Okta, Some(p)) => p.activated,
        (Idp::Okta, Idp::Entra, Some(p)) => p.key.entra_registered,
        _ => false,
    };
    match (registered, row.state) {
        (true, _) => "registered",
        (false, RequestState::Error) => "error",
        (false, RequestState::Deleted) => "deleted",
        (false, _) => "pending",
    }
}

/// What deleting an order did to one key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cancelled {
    /// The key's label.
    pub label: String,
    /// `deleted` (cancelled at the fulfiller, or removed from tracking once shipped),
    /// `cancelling` (still being created: the runner deletes what the create made),
    /// `already_deleted`, `never_ordered`, or `refused` (`error` says why: the fulfiller
    /// can no longer cancel it, or did not answer; the key's request is unchanged).
    pub outcome: &'static str,
    /// Why it was refused.
    pub error: Option<String>,
}

/// Deletes credential request `id`: each key's request is deleted as `DELETE
/// /v1/fpr/shipments/{id}` deletes it (cancelled at the fulfiller while it can be), and
/// a key not yet ordered is never ordered. `None`: no such credential request.
pub async fn delete(
    state: &Services,
    id: &str,
) -> Result<Option<(View, Vec<Cancelled>)>, ServiceError> {
    if get(state, id).await?.is_none() {
        return Ok(None);
    }
    let mut outcomes = Vec::new();
    for k in keys_of(state, id).await? {
        let (outcome, error) = match &k.request_id {
            None => {
                sqlx::query(
                    "UPDATE credential_request_keys SET cancelled = 1 \
                     WHERE credential_request_id = $1 AND position = $2",
                )
                .bind(id)
                .bind(k.position)
                .execute(state.store.pool())
                .await
                .map_err(StoreError::from)?;
                ("never_ordered", None)
            }
            Some(r) => match state.store.get_request(r).await? {
                Some(row) if row.state == RequestState::Deleted => ("already_deleted", None),
                None => ("already_deleted", None),
                Some(_) => match crate::admin::delete(state, r).await {
                    Ok(a) if a.started => ("cancelling", None),
                    Ok(_) => ("deleted", None),
                    Err(e) => ("refused", Some(e.to_string())),
                },
            },
        };
        outcomes.push(Cancelled {
            label: k.label,
            outcome,
            error,
        });
    }
    let view = get(state, id).await?.ok_or_else(|| {
        ServiceError::internal("the credential request vanished while it was deleted")
    })?;
    Ok(Some((view, outcomes)))
}
