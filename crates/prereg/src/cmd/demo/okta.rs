//! The Okta half of `prereg demo`: the connector in Okta mode (docs/okta-mode.md). The
//! trigger is the batch endpoint (`POST /v1/okta/batch`) with the Okta group mapped to a
//! YubiKey 5 NFC; the connector enrolls each user at Okta (Okta seals the requests),
//! orders the shipment, activates the key at Okta once shipped and, after an admin
//! approves that the key arrived, has Okta mail the PIN. The user then signs in at the
//! Okta sandbox.

use super::progress::{Progress, Stage};
use super::{MISSING_FIELDS, Member, Outcome, TAMPERED, UNDELIVERABLE, World, cast};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

const IDP: &str = "okta";
/// The event hook's shared secret: the `[okta]` section needs one while the event
/// triggers are on (the demo's own trigger is the batch endpoint).
const HOOK_SECRET: &str = "prereg-demo-event-hook-secret";
/// A seeded user with no address and no phone.
const INCOMPLETE: &str = "00usandboxdave00004";

/// One user of the Okta half.
struct DemoUser {
    id: String,
    login: String,
    case: Option<&'static str>,
}

/// A cast member's Okta login.
pub(crate) fn login(m: &Member) -> String {
    format!("{}@example.com", m.handle)
}

pub(crate) fn user_id(i: usize) -> String {
    format!("00udemo{i:013}")
}

fn users(n: usize) -> Vec<DemoUser> {
    let mut out: Vec<DemoUser> = cast(n)
        .into_iter()
        .map(|m| DemoUser {
            id: user_id(m.i),
            login: login(&m),
            case: m.case,
        })
        .collect();
    out.push(DemoUser {
        id: INCOMPLETE.to_owned(),
        login: "dave.dietrich@example.com".to_owned(),
        case: Some(MISSING_FIELDS),
    });
    out
}

/// The sandbox's default org plus the demo's users: `n` people with complete profiles,
/// Una Nowhere (an address the fulfiller cannot deliver to) and Theo Tampered.
pub fn org(n: usize) -> anyhow::Result<sandbox::okta::OrgSeed> {
    let mut seed = sandbox::okta::OrgSeed::default();
    let mut add = |i: usize, first: &str, last: &str, login: String, street: String| {
        seed.users.push(
            serde_json::from_value(json!({
                "id": user_id(i),
                "status": "ACTIVE",
                "profile": {
                    "login": login, "email": login, "firstName": first, "lastName": last,
                    "organization": "Example Corp", "streetAddress": street,
                    "city": "Boston", "state": "MA", "zipCode": "02110", "countryCode": "US",
                    "primaryPhone": format!("+1 617 555 {:04}", 1000 + i),
                },
            }))
            .context("building a demo Okta user")?,
        );
        anyhow::Ok(())
    };
    for m in cast(n) {
        add(m.i, m.first, m.last, login(&m), m.street)?;
    }
    seed.check().context("the demo's Okta org")?;
    Ok(seed)
}

/// The connector's `[okta]` section: the Okta sandbox org, the "YubiKey 5 NFC" group
/// mapped, an admin approves before the PIN goes out, no background reconciliation
/// (the demo triggers by batch).
pub fn connector_toml(ready: &Value) -> String {
    connector::sandbox_config::okta_section(
        ready,
        &connector::sandbox_config::OktaLocal {
            hook_secret: HOOK_SECRET,
            approval: "admin",
            reconcile_interval_seconds: 0,
            event_hook_url: None,
        },
    )
}

impl World {
    /// A call to the Okta sandbox's management API with the org's SSWS token.
    pub(crate) async fn okta_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let token = self.ready["okta"]["ssws_token"]
            .as_str()
            .unwrap_or_default();
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.okta.base_url()))
            .header("Authorization", format!("SSWS {token}"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r
            .send()
            .await
            .with_context(|| format!("calling the Okta sandbox: {path}"))?;
        let s = r.status().as_u16();
        let text = r
            .text()
            .await
            .context("reading the Okta sandbox's answer")?;
        Ok((
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// The Okta-mode shipments table.
    async fn okta_table(&self, token: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let (s, v) = self
                .call(
                    token,
                    Method::GET,
                    &format!("/v1/okta/requests?limit=100&offset={offset}"),
                    None,
                )
                .await?;
            if s != 200 {
                bail!("reading the Okta shipments table answered {s}: {v}");
            }
            let page = v["data"].as_array().cloned().unwrap_or_default();
            let n = page.len();
            out.extend(page);
            if n < 100 {
                return Ok(out);
            }
            offset += 100;
        }
    }
}

/// A user's request and what became of it.
struct Tracked {
    user: DemoUser,
    /// How many live requests the connector holds for the user (it should be one).
    requests: usize,
    view: Value,
    seen: Vec<Stage>,
    approved: bool,
}

fn settled(state: &str) -> bool {
    matches!(
        state,
        "awaiting_approval" | "complete" | "error" | "deleted"
    )
}

/// Runs the Okta half for `n` users.
pub async fn run(w: &World, n: usize, progress: &Progress) -> anyhow::Result<Vec<Outcome>> {
    let token = w.api_token().await?;
    let group = connector::sandbox_config::SANDBOX_GROUP;
    progress.note(&format!(
        "okta: ordering {n} keys (+3 bad cases) with the batch trigger, POST /v1/okta/batch, for the group {group} (\"YubiKey 5 NFC\")"
    ));
    let users = users(n);
    let logins: Vec<&str> = users.iter().map(|u| u.login.as_str()).collect();
    let (s, v) = w
        .call(
            &token,
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": logins, "group_id": group})),
        )
        .await?;
    if s != 202 {
        bail!("the batch trigger answered {s}: {v}");
    }
    let results = v["data"].as_array().cloned().unwrap_or_default();
    let mut tracked: Vec<Tracked> = Vec::new();
    for user in users {
        let result = results
            .iter()
            .find(|r| r["user"] == user.login.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        if result["status"] != "created" {
            bail!(
                "the batch trigger did not start a request for {}: {}",
                user.login,
                result
            );
        }
        tracked.push(Tracked {
            user,
            requests: 0,
            view: Value::Null,
            seen: Vec::new(),
            approved: false,
        });
    }

    // Enroll at Okta and create the shipments (processing), before the fulfiller's
    // clock moves: the tamper switch needs Theo's shipment id before programming.
    for _ in 0..10 {
        w.process(&token).await?;
        refresh(w, &token, &mut tracked, progress).await?;
        if tracked.iter().all(|t| {
            t.view["shipment_id"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
                || t.view["state"] == "error"
        }) {
            break;
        }
    }
    for t in tracked.iter().filter(|t| t.user.case == Some(TAMPERED)) {
        if let Some(sid) = t.view["shipment_id"].as_str() {
            w.tamper
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(sid.to_owned());
        }
    }

    // The fulfiller programs and ships; the connector activates at Okta.
    for _ in 0..12 {
        w.advance().await?;
        w.process(&token).await?;
        refresh(w, &token, &mut tracked, progress).await?;
        if tracked
            .iter()
            .all(|t| settled(t.view["state"].as_str().unwrap_or_default()))
        {
            break;
        }
    }

    // The admin confirms each key arrived; Okta then mails the PIN.
    for t in tracked.iter_mut() {
        if t.view["state"] != "awaiting_approval" {
            continue;
        }
        let id = t.view["request_id"].as_str().unwrap_or_default().to_owned();
        let (s, v) = w
            .call(
                &token,
                Method::POST,
                &format!("/v1/okta/requests/{id}/approve"),
                None,
            )
            .await?;
        if s == 200 {
            t.view = v["data"].clone();
            t.approved = true;
        } else {
            t.view["last_error"] = json!(format!("approving answered {s}: {v}"));
        }
    }
    for _ in 0..5 {
        if tracked
            .iter()
            .all(|t| !matches!(t.view["state"].as_str(), Some("pin_pending")))
        {
            break;
        }
        w.process(&token).await?;
        refresh(w, &token, &mut tracked, progress).await?;
    }

    let mut outcomes = Vec::new();
    for t in tracked {
        let mut o = Outcome::new(IDP, &t.user.login, t.user.case);
        let state = t.view["state"].as_str().unwrap_or("unknown").to_owned();
        o.state = state.clone();
        o.serial = t.view["serial_number"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if t.requests > 1 {
            o.detail = Some(format!(
                "the connector holds {} requests for this one user (it must hold one); a connector defect",
                t.requests
            ));
            o.state = format!("{state}+dup");
            outcomes.push(o);
            continue;
        }
        let last_error = t.view["last_error"]
            .as_str()
            .unwrap_or("no error recorded")
            .to_owned();
        match t.user.case {
            None => match finish_user(w, &t, &state, progress).await {
                Ok(()) => {
                    o.signed_in = true;
                    o.as_expected = true;
                }
                Err(e) => o.detail = Some(format!("{e:#}")),
            },
            Some(UNDELIVERABLE) => {
                o.as_expected = state == "error" && last_error.contains("state 7");
                o.detail = Some(last_error);
            }
            Some(MISSING_FIELDS) => {
                o.as_expected = state == "error" && last_error.contains("missing profile fields");
                o.detail = Some(last_error);
            }
            Some(_) => {
                // Okta refuses to activate a key whose response was tampered with.
                let (s, v) = w
                    .okta_call(
                        Method::GET,
                        &format!(
                            "/webauthn-registration/api/v1/users/{}/enrollments",
                            t.user.id
                        ),
                        None,
                    )
                    .await?;
                let active = s == 200
                    && v.as_array()
                        .is_some_and(|a| a.iter().any(|e| e["status"] == "ACTIVE"));
                o.as_expected = state == "error" && !active;
                o.detail = Some(format!(
                    "{last_error}; active Okta enrollments for this user: {}",
                    if active { "yes (WRONG)" } else { "none" }
                ));
            }
        }
        if let Some(what) = o.expected_failure {
            progress.note(&format!(
                "{IDP}: {what}: {} {}",
                t.user.login,
                if o.as_expected {
                    "failed as it should"
                } else {
                    "did NOT fail as it should"
                }
            ));
        }
        outcomes.push(o);
    }
    Ok(outcomes)
}

/// Reads every tracked request again and reports the stages reached.
async fn refresh(
    w: &World,
    token: &str,
    tracked: &mut [Tracked],
    progress: &Progress,
) -> anyhow::Result<()> {
    let table = w.okta_table(token).await?;
    for t in tracked.iter_mut() {
        let mine: Vec<&Value> = table
            .iter()
            .filter(|r| r["user_id"] == t.user.id.as_str() && r["state"] != "deleted")
            .collect();
        if let Some(r) = mine.first() {
            t.view = (*r).clone();
        }
        t.requests = mine.len();
        let state = t.view["state"].as_str().unwrap_or_default();
        let fstate = t.view["fulfiller_state"].as_i64().unwrap_or_default();
        let mut reached = Vec::new();
        if t.view["shipment_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        {
            reached.push(Stage::Ordered);
        }
        let activated = t.view["okta"]["activated"] == true;
        if matches!(fstate, 103 | 104) || activated {
            reached.push(Stage::Shipped);
        }
        if activated && state != "error" {
            reached.push(Stage::Registered);
        }
        for s in reached {
            if !t.seen.contains(&s) {
                t.seen.push(s);
                progress.reached(IDP, &t.user.login, s, t.user.case.is_none());
            }
        }
    }
    Ok(())
}

/// The user's part: the PIN mail from Okta, the parcel, the forced PIN change, the
/// sign-in at the Okta sandbox.
async fn finish_user(
    w: &World,
    t: &Tracked,
    state: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    if state != "complete" {
        bail!(
            "the request ended in state {state}{}: {}",
            if t.approved { " after approval" } else { "" },
            t.view["last_error"].as_str().unwrap_or("no error recorded")
        );
    }
    let serial = t.view["serial_number"]
        .as_str()
        .context("the connector shows no serial number")?;
    let shipment = t.view["shipment_id"]
        .as_str()
        .context("the connector shows no shipment")?;
    let pin = w
        .wait_pin_mail(serial, "PIN is:")
        .await
        .with_context(|| format!("no PIN mail for serial {serial} reached the mail catcher"))?;
    progress.reached(IDP, &t.user.login, Stage::PinDelivered, true);
    let key = w.parcel(shipment).await?;
    w.sign_in(key, pin, "Okta", &w.okta.base_url(), &t.user.login)
        .await?;
    progress.reached(IDP, &t.user.login, Stage::SignedIn, true);
    Ok(())
}
