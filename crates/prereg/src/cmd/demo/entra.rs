//! The Entra half of `prereg demo`: keys ordered through the connector's public API
//! (`POST /v1/fpr/shipments`, the caller authenticated by a token from the Entra sandbox
//! for the test client app), registered by the connector through Graph, PINs mailed by
//! the connector to each user's manager, sign-in at the Entra sandbox.

use super::progress::{Progress, Stage};
use super::{
    ITEM, MISSING_FIELDS, Member, Outcome, TAMPERED, UNDELIVERABLE, World, cast, report_stages,
};
use anyhow::Context;
use sandbox::entra::TenantSeed;
use sandbox::entra::seed::SeedUser;
use serde_json::{Value, json};

const IDP: &str = "entra";
/// Every generated user reports to the tenant's CEO, who gets their PIN mails (the
/// connector's default PIN contact is the manager).
pub(crate) const MANAGER: &str = "MeganB@contoso.onmicrosoft.com";
/// A seeded user with no address and no phone in Entra.
const INCOMPLETE: &str = "EnricoC@contoso.onmicrosoft.com";
/// The group the generated users join (cosmetic: the demo orders by user).
const GROUP: &str = "FIDO Pre-reg Users";

/// One user of the Entra half.
struct DemoUser {
    upn: String,
    /// The Entra object id.
    id: String,
    case: Option<&'static str>,
}

/// The demo tenant's domain (`contoso.onmicrosoft.com`).
pub(crate) fn domain() -> String {
    TenantSeed::default().domain
}

/// The generated users (`n` good ones, then the undeliverable and the tampered case) and
/// the seeded user with missing fields.
fn users(n: usize) -> Vec<DemoUser> {
    let d = domain();
    let mut out: Vec<DemoUser> = cast(n)
        .into_iter()
        .map(|m| DemoUser {
            upn: upn(&m, &d),
            id: object_id(m.i),
            case: m.case,
        })
        .collect();
    let incomplete = TenantSeed::default()
        .users
        .iter()
        .find(|u| u.user.user_principal_name.as_deref() == Some(INCOMPLETE))
        .map(|u| u.user.id.clone())
        .unwrap_or_default();
    out.push(DemoUser {
        upn: INCOMPLETE.to_owned(),
        id: incomplete,
        case: Some(MISSING_FIELDS),
    });
    out
}

/// A cast member's UPN in the tenant of `domain` (see [`domain`]).
pub(crate) fn upn(m: &Member, domain: &str) -> String {
    format!("{}@{domain}", m.handle)
}

/// The body of `POST /v1/fpr/shipments` the demo sends for `upn`: a generated 8-digit
/// PIN and one [`ITEM`]; recipient and address come from the user's Entra profile.
pub(crate) fn order_body(upn: &str) -> Value {
    json!({
        "user_id": upn,
        "pin_request": {"type": "generate", "length": 8},
        "yubico_shipment_request": {
            "delivery_type": 1,
            "shipment_items": ITEM.json(),
        },
    })
}

pub(crate) fn object_id(i: usize) -> String {
    format!("d3e00000-0000-4000-8000-{i:012}")
}

/// The Contoso tenant plus the demo's users: `n` people with complete profiles, Una
/// Nowhere (an address the fulfiller cannot deliver to) and Theo Tampered (whose
/// fulfiller response gets tampered with).
pub fn tenant(n: usize) -> anyhow::Result<TenantSeed> {
    let mut seed = TenantSeed::default();
    let d = seed.domain.clone();
    let mut add = |i: usize, first: &str, last: &str, upn: String, street: String| {
        let user: SeedUser = serde_json::from_value(json!({
            "id": object_id(i),
            "userPrincipalName": upn,
            "displayName": format!("{first} {last}"),
            "givenName": first,
            "surname": last,
            "mail": upn,
            "mobilePhone": format!("+1 425 555 {:04}", 1000 + i),
            "businessPhones": ["+1 425 555 0100"],
            "jobTitle": "Demo user",
            "streetAddress": street,
            "city": "Redmond",
            "state": "WA",
            "postalCode": "98052",
            "country": "US",
            "companyName": "Contoso",
            "manager": MANAGER,
        }))
        .context("building a demo user")?;
        if let Some(g) = seed.groups.iter_mut().find(|g| g.display_name == GROUP) {
            g.members.push(upn);
        }
        seed.users.push(user);
        anyhow::Ok(())
    };
    for m in cast(n) {
        add(m.i, m.first, m.last, upn(&m, &d), m.street)?;
    }
    seed.check().context("the demo's Entra tenant")?;
    Ok(seed)
}

/// An ordered key and what became of it.
struct Ordered {
    user: DemoUser,
    outcome: Outcome,
    request_id: Option<String>,
    shipment_id: String,
    view: Value,
    seen: Vec<Stage>,
}

/// Runs the Entra half for `n` users.
pub async fn run(w: &World, n: usize, progress: &Progress) -> anyhow::Result<Vec<Outcome>> {
    progress.note(&format!(
        "entra: ordering {n} keys (+3 bad cases) through the connector's API, POST /v1/fpr/shipments"
    ));
    let token = w.api_token().await?;
    let mut orders = Vec::new();
    for user in users(n) {
        let body = order_body(&user.upn);
        let (status, v) = w
            .call(
                &token,
                reqwest::Method::POST,
                "/v1/fpr/shipments",
                Some(body),
            )
            .await?;
        let mut outcome = Outcome::new(IDP, &user.upn, user.case);
        let mut o = Ordered {
            request_id: None,
            shipment_id: String::new(),
            view: Value::Null,
            seen: Vec::new(),
            user,
            outcome: outcome.clone(),
        };
        if status == 201 {
            o.request_id = v["data"]["request_id"].as_str().map(str::to_owned);
            o.shipment_id = v["data"]["shipment_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            o.seen.push(Stage::Ordered);
            progress.reached(IDP, &o.user.upn, Stage::Ordered, o.user.case.is_none());
            if o.user.case == Some(TAMPERED) {
                w.tamper
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(o.shipment_id.clone());
            }
        } else {
            outcome.state = "refused".to_owned();
            let msg = v["error_message"].as_str().unwrap_or("no message");
            outcome.detail = Some(format!(
                "the connector refused the order ({status} {}): {msg}",
                v["error_code"].as_str().unwrap_or("error")
            ));
            outcome.as_expected =
                o.user.case == Some(MISSING_FIELDS) && status == 400 && msg.contains("has no");
            progress.note(&format!(
                "{IDP}: the connector refused the order for {} ({status}){}",
                o.user.upn,
                if outcome.as_expected {
                    ": missing profile fields, as it should"
                } else {
                    ""
                }
            ));
            o.outcome = outcome;
        }
        orders.push(o);
    }

    // The fulfiller's clock and the connector's processing, until every request settles.
    for _ in 0..12 {
        w.advance().await?;
        w.process(&token).await?;
        let mut open = false;
        for o in orders.iter_mut() {
            let Some(id) = &o.request_id else { continue };
            o.view = w.shipment(&token, id).await?;
            let counts = o.user.case.is_none();
            report_stages(progress, IDP, &o.user.upn, counts, &o.view, &mut o.seen);
            let state = o.view["state"].as_str().unwrap_or_default();
            open |= !matches!(state, "complete" | "error" | "deleted");
        }
        if !open {
            break;
        }
    }

    let mut outcomes = Vec::new();
    for mut o in orders {
        if o.request_id.is_none() {
            outcomes.push(o.outcome);
            continue;
        }
        let state = o.view["state"].as_str().unwrap_or("unknown").to_owned();
        o.outcome.state = state.clone();
        o.outcome.serial = serial(&o.view);
        let last_error = o.view["last_error"].as_str().map(str::to_owned);
        match o.user.case {
            None => {
                let result = finish_user(w, &o, &state, progress).await;
                match result {
                    Ok(()) => {
                        o.outcome.signed_in = true;
                        o.outcome.as_expected = true;
                    }
                    Err(e) => o.outcome.detail = Some(format!("{e:#}")),
                }
            }
            Some(UNDELIVERABLE) => {
                // The fulfiller's address validation puts the shipment in state 7.
                let msg = last_error.unwrap_or_else(|| "no error recorded".to_owned());
                o.outcome.as_expected = state == "error" && msg.contains("state 7");
                o.outcome.detail = Some(msg);
            }
            Some(_) => {
                // The tampered response: an error, and no passkey for the user in Entra.
                let registered = w
                    .entra
                    .registered_methods()
                    .iter()
                    .any(|m| m.user_id.eq_ignore_ascii_case(&o.user.id));
                o.outcome.as_expected = state == "error" && !registered;
                o.outcome.detail = Some(format!(
                    "{}; passkeys registered in Entra for this user: {}",
                    last_error.as_deref().unwrap_or("no error recorded"),
                    if registered { "yes (WRONG)" } else { "none" }
                ));
            }
        }
        if let Some(what) = o.outcome.expected_failure {
            progress.note(&format!(
                "{IDP}: {what}: {} {}",
                o.user.upn,
                if o.outcome.as_expected {
                    "failed as it should"
                } else {
                    "did NOT fail as it should"
                }
            ));
        }
        outcomes.push(o.outcome);
    }
    Ok(outcomes)
}

/// The user's part: the PIN mail, the parcel, the PIN change, the sign-in.
async fn finish_user(
    w: &World,
    o: &Ordered,
    state: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    if state != "complete" {
        anyhow::bail!(
            "the request ended in state {state}: {}",
            o.view["last_error"].as_str().unwrap_or("no error recorded")
        );
    }
    let serial = serial(&o.view).context("the connector shows no serial number")?;
    let pin = w
        .wait_pin_mail(&serial, "PIN is:")
        .await
        .with_context(|| format!("no PIN mail for serial {serial} reached the mail catcher"))?;
    progress.reached(IDP, &o.user.upn, Stage::PinDelivered, true);
    let key = w.parcel(&o.shipment_id).await?;
    w.sign_in(key, pin, "Entra", &w.entra.base_url(), &o.user.upn)
        .await?;
    progress.reached(IDP, &o.user.upn, Stage::SignedIn, true);
    Ok(())
}

fn serial(view: &Value) -> Option<String> {
    match &view["serial_number"] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
