//! Event hooks: `POST /api/v1/eventHooks` registers a URL (with an auth header that is
//! sent on every call), `POST /api/v1/eventHooks/{id}/lifecycle/verify` runs Okta's
//! handshake (a GET carrying `X-Okta-Verification-Challenge`, answered with
//! `{"verification": <challenge>}`), and verified, active hooks receive
//! `group.user_membership.add` and the preregistration event as POSTs, retried up to
//! [`MAX_ATTEMPTS`] times on failure.
//!
//! Lifecycle as Okta's Event Hooks API publishes it: a hook is created `ACTIVE`;
//! `POST .../lifecycle/deactivate` and `.../lifecycle/activate` switch it; `PUT
//! /api/v1/eventHooks/{id}` replaces its name, events and channel (`id`, `status`,
//! `created` are not replaced); `DELETE` is refused while the hook is `ACTIVE` ("As a
//! safety precaution, you can only delete event hooks with a status of `INACTIVE`").

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use okta::hooks::{
    EventData, EventEnvelope, EventHook, GROUP_MEMBERSHIP_ADD, LogActor, LogEvent,
    PREREGISTER_INITIATE_EVENT, PREREGISTRATION_EVENT, VERIFICATION_HEADER, VerificationResponse,
};
use okta::{FulfillmentRequest, Group, User};
use serde_json::{Value, json};

use super::{Failure, Okta, parse_body, random_id};

/// Delivery attempts per event (the first and the retries).
pub const MAX_ATTEMPTS: u32 = 3;

/// A registered hook; `auth_value` is never read back.
pub(crate) struct HookRecord {
    pub(crate) hook: EventHook,
    auth: Option<(String, String)>,
}

fn public(h: &EventHook) -> EventHook {
    let mut h = h.clone();
    if let Some(a) = &mut h.channel.config.auth_scheme {
        a.value = None;
    }
    h
}

/// `POST /api/v1/eventHooks`.
pub(crate) async fn create(
    State(okta): State<Okta>,
    body: Bytes,
) -> Result<Json<EventHook>, Failure> {
    let mut hook: EventHook = parse_body(&body, "eventHook")?;
    check_hook(&hook)?;
    let auth = hook
        .channel
        .config
        .auth_scheme
        .as_ref()
        .and_then(|a| a.value.clone().map(|v| (a.key.clone(), v)));
    let now = crate::time::rfc3339(crate::time::now());
    hook.id = Some(random_id("who", 17));
    hook.status = Some("ACTIVE".into());
    hook.verification_status = Some("UNVERIFIED".into());
    hook.created = Some(now.clone());
    hook.last_updated = Some(now);
    let out = public(&hook);
    okta.org().hooks.push(HookRecord { hook, auth });
    Ok(Json(out))
}

/// The rules a created or replacing hook body must meet.
fn check_hook(hook: &EventHook) -> Result<(), Failure> {
    if hook.events.kind != "EVENT_TYPE" || hook.events.items.is_empty() {
        return Err(Failure::validation(
            "eventHook",
            "events must be {\"type\":\"EVENT_TYPE\",\"items\":[...]} with at least one event type",
        ));
    }
    if let Some(bad) = hook.events.items.iter().find(|i| {
        ![
            GROUP_MEMBERSHIP_ADD,
            PREREGISTRATION_EVENT,
            PREREGISTER_INITIATE_EVENT,
        ]
        .contains(&i.as_str())
    }) {
        return Err(Failure::validation(
            "eventHook",
            format!(
                "event type {bad:?} is not known to this sandbox; use {GROUP_MEMBERSHIP_ADD}, {PREREGISTRATION_EVENT} or {PREREGISTER_INITIATE_EVENT} (the last is accepted but never emitted here)"
            ),
        ));
    }
    let uri = &hook.channel.config.uri;
    if !(uri.starts_with("http://127.0.0.1")
        || uri.starts_with("http://localhost")
        || uri.starts_with("http://[::1]"))
    {
        return Err(Failure::validation(
            "eventHook",
            format!(
                "channel.config.uri {uri:?}: the sandbox only calls loopback addresses (http://127.0.0.1:PORT/...)"
            ),
        ));
    }
    Ok(())
}

/// `GET /api/v1/eventHooks`.
pub(crate) async fn list(State(okta): State<Okta>) -> Json<Vec<EventHook>> {
    Json(okta.org().hooks.iter().map(|h| public(&h.hook)).collect())
}

/// `GET /api/v1/eventHooks/{id}`.
pub(crate) async fn get(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<EventHook>, Failure> {
    okta.org()
        .hooks
        .iter()
        .find(|h| h.hook.id.as_deref() == Some(&id))
        .map(|h| Json(public(&h.hook)))
        .ok_or_else(|| Failure::not_found(&id))
}

/// `DELETE /api/v1/eventHooks/{id}` (204); refused while the hook is `ACTIVE`.
pub(crate) async fn delete(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let mut org = okta.org();
    let h = org
        .hooks
        .iter()
        .find(|h| h.hook.id.as_deref() == Some(&id))
        .ok_or_else(|| Failure::not_found(&id))?;
    if h.hook.status.as_deref() != Some("INACTIVE") {
        return Err(Failure::validation(
            "eventHook",
            format!(
                "Event hook {id} is {}: as a safety precaution, you can only delete event hooks with a status of INACTIVE. Deactivate it first (POST /api/v1/eventHooks/{id}/lifecycle/deactivate).",
                h.hook.status.as_deref().unwrap_or("ACTIVE")
            ),
        ));
    }
    org.hooks.retain(|h| h.hook.id.as_deref() != Some(&id));
    Ok(StatusCode::NO_CONTENT)
}

fn set_status(okta: &Okta, id: &str, status: &str) -> Result<Json<EventHook>, Failure> {
    let mut org = okta.org();
    let h = org
        .hooks
        .iter_mut()
        .find(|h| h.hook.id.as_deref() == Some(id))
        .ok_or_else(|| Failure::not_found(id))?;
    if h.hook.status.as_deref() != Some(status) {
        h.hook.status = Some(status.into());
        h.hook.last_updated = Some(crate::time::rfc3339(crate::time::now()));
    }
    Ok(Json(public(&h.hook)))
}

/// `POST /api/v1/eventHooks/{id}/lifecycle/activate`: the hook receives events again.
pub(crate) async fn activate(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<EventHook>, Failure> {
    set_status(&okta, &id, "ACTIVE")
}

/// `POST /api/v1/eventHooks/{id}/lifecycle/deactivate`: no more events; deletable.
pub(crate) async fn deactivate(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<EventHook>, Failure> {
    set_status(&okta, &id, "INACTIVE")
}

/// `PUT /api/v1/eventHooks/{id}`: replaces the name, the events and the channel. The
/// auth header value is write-only: a body without one keeps the registered value when
/// the header name is unchanged. A new `channel.config.uri` must be verified again
/// (the sandbox's choice: Okta's docs do not say).
pub(crate) async fn replace(
    State(okta): State<Okta>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<EventHook>, Failure> {
    let new: EventHook = parse_body(&body, "eventHook")?;
    check_hook(&new)?;
    let mut org = okta.org();
    let h = org
        .hooks
        .iter_mut()
        .find(|h| h.hook.id.as_deref() == Some(&id))
        .ok_or_else(|| Failure::not_found(&id))?;
    if new.id.as_deref().is_some_and(|n| n != id) {
        return Err(Failure::validation(
            "eventHook",
            format!("id is read-only: the body names {:?}, the URL {id}", new.id),
        ));
    }
    let new_auth = new
        .channel
        .config
        .auth_scheme
        .as_ref()
        .map(|a| match (&a.value, &h.auth) {
            (Some(v), _) => Some((a.key.clone(), v.clone())),
            (None, Some((k, v))) if *k == a.key => Some((k.clone(), v.clone())),
            (None, _) => None,
        });
    if let Some(None) = new_auth {
        return Err(Failure::validation(
            "eventHook",
            "channel.config.authScheme names a new header without its value",
        ));
    }
    if new.channel.config.uri != h.hook.channel.config.uri {
        h.hook.verification_status = Some("UNVERIFIED".into());
    }
    h.auth = new_auth.flatten();
    h.hook.name = new.name;
    h.hook.events = new.events;
    h.hook.channel = new.channel;
    h.hook.last_updated = Some(crate::time::rfc3339(crate::time::now()));
    Ok(Json(public(&h.hook)))
}

/// `POST /api/v1/eventHooks/{id}/lifecycle/verify`.
pub(crate) async fn verify(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<EventHook>, Failure> {
    let (uri, headers, auth) = {
        let org = okta.org();
        let h = org
            .hooks
            .iter()
            .find(|h| h.hook.id.as_deref() == Some(&id))
            .ok_or_else(|| Failure::not_found(&id))?;
        (
            h.hook.channel.config.uri.clone(),
            h.hook.channel.config.headers.clone(),
            h.auth.clone(),
        )
    };
    let challenge = random_id("", 40);
    let mut req = okta
        .0
        .http
        .get(&uri)
        .header(VERIFICATION_HEADER, &challenge);
    for hp in &headers {
        req = req.header(&hp.key, &hp.value);
    }
    if let Some((k, v)) = &auth {
        req = req.header(k, v);
    }
    let fail = |why: String| {
        Failure::validation(
            "eventHook",
            format!(
                "Verification of {uri} failed: {why}. The endpoint must answer the GET with {{\"verification\": <the {VERIFICATION_HEADER} header>}}."
            ),
        )
    };
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("the call failed ({e})")))?;
    if !resp.status().is_success() {
        return Err(fail(format!("it answered {}", resp.status())));
    }
    let v: VerificationResponse = resp
        .json()
        .await
        .map_err(|_| fail("the answer is not {\"verification\": ...}".into()))?;
    if v.verification != challenge {
        return Err(fail("the answer does not echo the challenge".into()));
    }
    let mut org = okta.org();
    let h = org
        .hooks
        .iter_mut()
        .find(|h| h.hook.id.as_deref() == Some(&id))
        .ok_or_else(|| Failure::not_found(&id))?;
    h.hook.verification_status = Some("VERIFIED".into());
    h.hook.last_updated = Some(crate::time::rfc3339(crate::time::now()));
    Ok(Json(public(&h.hook)))
}

fn actor_user(u: &User) -> LogActor {
    LogActor {
        id: u.id.clone(),
        kind: "User".into(),
        alternate_id: Some(u.profile.login.clone()),
        display_name: Some(u.profile.display_name()),
    }
}

fn system_actor() -> LogActor {
    LogActor {
        id: "0oasandboxadminapi01".into(),
        kind: "PublicClientApp".into(),
        alternate_id: Some("prereg sandbox admin".into()),
        display_name: Some("Okta Admin Console".into()),
    }
}

fn event(event_type: &str, message: &str, target: Vec<LogActor>, debug: Value) -> LogEvent {
    LogEvent {
        uuid: uuid::Uuid::new_v4().to_string(),
        published: crate::time::rfc3339(crate::time::now()),
        event_type: event_type.into(),
        version: "0".into(),
        display_message: message.into(),
        severity: "INFO".into(),
        actor: system_actor(),
        target,
        outcome: json!({"result": "SUCCESS"}),
        debug_context: json!({"debugData": debug}),
    }
}

/// `group.user_membership.add`.
pub(crate) fn membership_event(u: &User, g: &Group) -> LogEvent {
    event(
        GROUP_MEMBERSHIP_ADD,
        "Add user to group membership",
        vec![
            actor_user(u),
            LogActor {
                id: g.id.clone(),
                kind: "UserGroup".into(),
                alternate_id: Some("unknown".into()),
                display_name: Some(g.profile.name.clone()),
            },
        ],
        json!({}),
    )
}

/// The preregistration event with the order details.
pub(crate) fn preregistration_event(u: &User, req: &FulfillmentRequest) -> LogEvent {
    event(
        PREREGISTRATION_EVENT,
        "WebAuthn preregistration fulfillment requested",
        vec![actor_user(u)],
        json!({
            "fulfillmentProvider": req.fulfillment_provider,
            "fulfillmentData": req.fulfillment_data,
        }),
    )
}

/// Delivers `ev` to every verified, active hook subscribed to it, in the background.
pub(crate) fn emit(okta: &Okta, ev: LogEvent) {
    let targets: Vec<(String, Vec<(String, String)>)> = okta
        .org()
        .hooks
        .iter()
        .filter(|h| {
            h.hook.status.as_deref() == Some("ACTIVE")
                && h.hook.verification_status.as_deref() == Some("VERIFIED")
                && h.hook.events.items.contains(&ev.event_type)
        })
        .map(|h| {
            let mut headers: Vec<(String, String)> = h
                .hook
                .channel
                .config
                .headers
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect();
            headers.extend(h.auth.clone());
            (h.hook.channel.config.uri.clone(), headers)
        })
        .collect();
    if targets.is_empty() {
        return;
    }
    let envelope = EventEnvelope {
        event_type: "com.okta.event_hook".into(),
        event_type_version: "1.0".into(),
        cloud_events_version: "0.1".into(),
        source: format!("{}/api/v1/eventHooks", okta.base_url()),
        event_id: uuid::Uuid::new_v4().to_string(),
        event_time: ev.published.clone(),
        content_type: "application/json".into(),
        data: EventData { events: vec![ev] },
    };
    for (uri, headers) in targets {
        let http = okta.0.http.clone();
        let body = envelope.clone();
        tokio::spawn(async move {
            for attempt in 1..=MAX_ATTEMPTS {
                let mut req = http.post(&uri).json(&body);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(%uri, status = %r.status(), attempt, "event hook delivery refused")
                    }
                    Err(e) => {
                        tracing::warn!(%uri, error = %e, attempt, "event hook delivery failed")
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
        });
    }
}
