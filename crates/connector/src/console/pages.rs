//! The console's pages (all shipments, details, settings) and actions (edit, delete,
//! retry, approve, resend PIN, process now). Actions call the API's handlers, so the
//! console and the API share one set of rules.

use super::auth::{Admin, check_csrf, internal};
use super::query::{self, Filter, Line, Sort};
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::domain::{Idp, RequestState};
use crate::store::{RequestRow, Store};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// What every page's layout needs.
pub struct Page {
    /// The `<title>` and `<h1>`.
    pub title: String,
    /// The signed-in admin, if any.
    pub user: Option<String>,
    /// The session's CSRF token (empty when signed out).
    pub csrf: String,
    /// The navigation entry to mark current.
    pub nav: &'static str,
}

impl Page {
    /// A page for a signed-in admin.
    pub fn new(title: impl Into<String>, admin: &Admin, nav: &'static str) -> Self {
        Self {
            title: title.into(),
            user: Some(admin.user.clone()),
            csrf: admin.csrf.clone(),
            nav,
        }
    }

    /// A page before sign-in.
    pub fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: None,
            csrf: String::new(),
            nav: "",
        }
    }

    /// The `hx-headers` value that sends the CSRF token with every htmx request.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({"X-CSRF-Token": self.csrf}).to_string()
    }
}

/// Renders a template, or answers 500.
pub fn render(t: &impl Template) -> Result<Html<String>, Response> {
    t.render()
        .map(Html)
        .map_err(|e| internal(&format!("template: {e}")))
}

fn page(t: &impl Template) -> Response {
    match render(t) {
        Ok(h) => h.into_response(),
        Err(r) => r,
    }
}

/// `GET /console`.
pub async fn home(_a: Admin) -> Redirect {
    Redirect::to("/console/shipments")
}

/// A date (UTC) and time, for tables.
pub fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn day_start(s: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// The shipment type every request of the connector has (the guide's name).
pub const FPR_TYPE: &str = "AUTO FIDO PRE-REG";

/// The list's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    idp: String,
    #[serde(default)]
    fulfiller_state: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    page: String,
}

/// One row of the table.
pub struct RowView {
    id: String,
    created: String,
    user: String,
    user_id: String,
    idp: String,
    kind: &'static str,
    fulfiller: String,
    state: String,
    serial: String,
    shipment_id: String,
    last_event: String,
    last_event_at: String,
}

impl RowView {
    fn of(l: Line) -> Self {
        Self {
            created: when(l.created_at),
            user: l.user,
            user_id: l.user_id,
            idp: l.idp,
            kind: FPR_TYPE,
            fulfiller: match (l.fulfiller_state, l.fulfiller_message) {
                (Some(n), Some(m)) => format!("{n} {m}"),
                (Some(n), None) => n.to_string(),
                _ => "not ordered yet".into(),
            },
            state: l.state,
            serial: l.serial.unwrap_or_default(),
            shipment_id: l.shipment_id.unwrap_or_default(),
            last_event: l.last_event.unwrap_or_default(),
            last_event_at: l.last_event_at.map(when).unwrap_or_default(),
            id: l.id,
        }
    }
}

/// A sortable column header.
pub struct Col {
    label: &'static str,
    href: String,
    /// `ascending` / `descending` / `none` (aria-sort).
    aria: &'static str,
}

/// The results part of the list (also answered alone to htmx).
#[derive(Template)]
#[template(path = "console/results.html")]
pub struct Results {
    rows: Vec<RowView>,
    cols: Vec<Col>,
    total: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    page_no: i64,
    pages: i64,
}

/// The list page.
#[derive(Template)]
#[template(path = "console/shipments.html")]
pub struct ShipmentsPage {
    page: Page,
    results: String,
    q: ListQuery,
    states: Vec<(&'static str, bool)>,
    fpr_type: &'static str,
    flash: Option<String>,
}

/// The states the list filters by (cancelling is shown under creating's neighbours).
const STATES: &[RequestState] = &[
    RequestState::Creating,
    RequestState::Open,
    RequestState::AwaitingApproval,
    RequestState::PinPending,
    RequestState::Complete,
    RequestState::Error,
    RequestState::Deleted,
];

const PAGE: i64 = 25;

fn href(q: &ListQuery, sort: &str, dir: &str, page: i64) -> String {
    let pairs: Vec<(&str, &str)> = vec![
        ("type", &q.kind),
        ("state", &q.state),
        ("idp", &q.idp),
        ("fulfiller_state", &q.fulfiller_state),
        ("from", &q.from),
        ("to", &q.to),
        ("q", &q.q),
        ("sort", sort),
        ("dir", dir),
    ];
    let page = page.to_string();
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    if page != "1" {
        pairs.push(("page", &page));
    }
    format!("/console/shipments?{}", super::auth::form_encode(&pairs))
}

/// `GET /console/shipments`: all shipments, filtered, searched, sorted, a page at a time.
pub async fn shipments(
    State(s): State<Arc<AppState>>,
    admin: Admin,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|q| q.0).unwrap_or_default();
    let sort = Sort::parse(&q.sort);
    let desc = match q.dir.as_str() {
        "asc" => false,
        "desc" => true,
        _ => sort == Sort::Created || sort == Sort::Updated,
    };
    let page_no = q.page.parse::<i64>().ok().filter(|p| *p >= 1).unwrap_or(1);
    let f = Filter {
        state: Some(q.state.clone()).filter(|v| STATES.iter().any(|s| s.as_str() == v)),
        idp: Some(q.idp.clone()).filter(|v| v == "entra" || v == "okta"),
        fulfiller_state: q.fulfiller_state.trim().parse().ok(),
        fpr: match q.kind.as_str() {
            "fpr" => Some(true),
            "other" => Some(false),
            _ => None,
        },
        from: day_start(&q.from),
        to: day_start(&q.to).map(|t| t + 86_400),
        q: Some(q.q.clone()).filter(|v| !v.trim().is_empty()),
        sort,
        desc,
        limit: PAGE,
        offset: (page_no - 1) * PAGE,
    };
    let (lines, total) = match query::list(s.store.pool(), &f).await {
        Ok(x) => x,
        Err(e) => return internal(&e.to_string()),
    };
    let pages = ((total + PAGE - 1) / PAGE).max(1);
    let dir_name = if desc { "desc" } else { "asc" };
    let cols = [
        ("Created", Sort::Created),
        ("User", Sort::User),
        ("IdP", Sort::Idp),
        ("Fulfiller state", Sort::Fulfiller),
        ("Our state", Sort::State),
        ("Serial", Sort::Serial),
        ("Last event", Sort::Updated),
    ]
    .into_iter()
    .map(|(label, c)| {
        let cur = c == sort;
        let next_dir = if cur && desc { "asc" } else { "desc" };
        Col {
            label,
            href: href(&q, c.name(), next_dir, 1),
            aria: match (cur, desc) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            },
        }
    })
    .collect();
    let results = Results {
        first: if total == 0 { 0 } else { f.offset + 1 },
        last: f.offset + lines.len() as i64,
        rows: lines.into_iter().map(RowView::of).collect(),
        cols,
        total,
        prev: (page_no > 1).then(|| href(&q, sort.name(), dir_name, page_no - 1)),
        next: (page_no < pages).then(|| href(&q, sort.name(), dir_name, page_no + 1)),
        page_no,
        pages,
    };
    // htmx asks for the results only (the filter form stays as the admin typed it).
    if headers
        .get("hx-target")
        .is_some_and(|v| v.as_bytes() == b"results")
    {
        return page(&results);
    }
    let states = STATES
        .iter()
        .map(|st| (st.as_str(), q.state == st.as_str()))
        .collect();
    let results = match render(&results) {
        Ok(h) => h.0,
        Err(r) => return r,
    };
    page(&ShipmentsPage {
        page: Page::new("All shipments", &admin, "shipments"),
        results,
        states,
        fpr_type: FPR_TYPE,
        flash: None,
        q,
    })
}

// ---- details --------------------------------------------------------------------------

/// An audit entry.
pub struct Event {
    at: String,
    state: String,
    note: String,
}

/// The editable (or read-only) recipient, address and delivery type.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    recipient_firstname: String,
    #[serde(default)]
    recipient_lastname: String,
    #[serde(default)]
    recipient_email: String,
    #[serde(default)]
    recipient_telephone: String,
    #[serde(default)]
    recipient_company: String,
    #[serde(default)]
    street_line1: String,
    #[serde(default)]
    street_line2: String,
    #[serde(default)]
    street_line3: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country_code_2: String,
    #[serde(default)]
    delivery_type: String,
}

impl EditForm {
    fn from_parts(
        r: &yubienterprise::fpr::Recipient,
        a: &yubienterprise::fpr::MailingAddress,
        delivery: Option<u8>,
    ) -> Self {
        Self {
            csrf: None,
            confirm: None,
            recipient_firstname: r.recipient_firstname.clone(),
            recipient_lastname: r.recipient_lastname.clone(),
            recipient_email: r.recipient_email.clone(),
            recipient_telephone: r.recipient_telephone.clone(),
            recipient_company: r.recipient_company.clone(),
            street_line1: a.street_line1.clone(),
            street_line2: a.street_line2.clone(),
            street_line3: a.street_line3.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country_code_2: a.country_code_2.clone(),
            delivery_type: delivery.unwrap_or(1).to_string(),
        }
    }

    fn expedited(&self) -> bool {
        self.delivery_type == "2"
    }
}

/// The details page.
#[derive(Template)]
#[template(path = "console/details.html")]
pub struct DetailsPage {
    page: Page,
    id: String,
    idp: String,
    state: String,
    user: String,
    user_id: String,
    shipment_id: String,
    fulfiller: String,
    serial: String,
    firmware: String,
    tracking: String,
    created: String,
    updated: String,
    kind: &'static str,
    products: Vec<String>,
    form: EditForm,
    /// Why the form is read-only (empty: editable).
    locked: String,
    error: Option<(String, String)>,
    events: Vec<Event>,
    pin_note: String,
    can_retry: bool,
    can_delete: bool,
    can_resend: bool,
    can_approve: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// The last error in plain words, and the action that fixes it.
pub fn explain(err: &str) -> (String, String) {
    let e = err.to_lowercase();
    let fix = if e.contains("credential response") || e.contains("nothing was registered") {
        "The key's programmed credential could not be verified, so nothing was registered. Retry to read the shipment again; if it fails again, delete the request and order a new key."
    } else if e.contains("refused") || e.contains("ye_error") || e.contains("validation") {
        "The fulfiller refused the order as sent. Correct the recipient or address below (while the shipment can still be edited), then Retry."
    } else if e.contains("graph") || e.contains("fido2") || e.contains("registration") {
        "Registering the key with the identity provider failed. Check the connector app's permissions (UserAuthenticationMethod.ReadWrite.All) and the user, then Retry."
    } else if e.contains("pin") || e.contains("smtp") || e.contains("webhook") || e.contains("mail")
    {
        "The PIN could not be delivered. Check the PIN channel (SMTP or webhook settings), then Resend PIN."
    } else if e.contains("unavailable")
        || e.contains("timed out")
        || e.contains("connect")
        || e.contains("429")
        || e.contains("503")
        || e.contains("500")
    {
        "A service did not answer. This is usually temporary: Retry, or Process now."
    } else {
        "Retry. If it fails again, the connector's log has the details for this request id."
    };
    (err.to_owned(), fix.to_owned())
}

async fn details_page(
    s: &AppState,
    admin: &Admin,
    id: &str,
    flash: Option<String>,
    problem: Option<String>,
    posted: Option<EditForm>,
) -> Result<DetailsPage, Response> {
    let r = engine::admin::find(s, id)
        .await
        .map_err(|e| api_response(e.into()))?;
    let events = s
        .store
        .history(&r.id)
        .await
        .map_err(|e| internal(&e.to_string()))?
        .into_iter()
        .rev()
        .map(|h| Event {
            at: when(h.at),
            state: h.state,
            note: h.note,
        })
        .collect();
    let body: Option<yubienterprise::fpr::CreateFprShipment> =
        serde_json::from_str(&r.create_body).ok();
    let products = body
        .iter()
        .flat_map(|b| b.shipment_items.iter())
        .map(|i| {
            format!(
                "product {} from inventory {} × {}, customization {}",
                i.product_id, i.inventory_product_id, i.product_quantity, i.customization_id
            )
        })
        .collect();
    let mut form = body
        .as_ref()
        .map(|b| EditForm::from_parts(&b.recipient, &b.mailing_address, b.delivery_type))
        .unwrap_or_default();
    // The fulfiller's live view decides whether the shipment can still be edited.
    let mut fulfiller = match (r.fulfiller_state, &r.fulfiller_message) {
        (Some(n), Some(m)) => format!("{n} {m}"),
        (Some(n), None) => n.to_string(),
        _ => "not ordered yet".into(),
    };
    // After retention removed the personal data, the fulfiller's copy of the recipient
    // and address is not shown either.
    let removed = engine::retention::removed_at(&s.store, &r.id)
        .await
        .map_err(|e| internal(&e.to_string()))?;
    let rider = engine::process::Rider::of(&r);
    let locked = match (&r.shipment_id, r.state, removed) {
        (_, _, Some(at)) => format!(
            "The personal data of this request was removed on {} (retention_days); nothing is shown or can be edited.",
            when(at)
        ),
        (_, RequestState::Deleted, _) => {
            "The request was deleted; nothing can be edited.".to_owned()
        }
        (None, _, _) => match &rider {
            Some(rd) => format!(
                "This key ships as key {} of the shipment request {} orders: edit the recipient and address there.",
                rd.index + 1,
                rd.rider_of
            ),
            None => "The shipment is not ordered at the fulfiller yet; process first, then edit."
                .to_owned(),
        },
        (Some(sid), _, _) => match s.fulfiller.get_fpr_shipment(sid).await {
            Ok(live) => {
                let st = live.shipment_state.shipment_state_id;
                fulfiller = format!("{} {}", st.id(), live.shipment_state.shipment_state_message);
                form = EditForm::from_parts(
                    &live.recipient,
                    &live.mailing_address,
                    Some(live.delivery_type),
                );
                if st.is_editable() {
                    String::new()
                } else {
                    format!(
                        "The fulfiller has locked this shipment for processing and fulfillment (state {} {}): the recipient, address and delivery type can no longer be changed.",
                        st.id(),
                        live.shipment_state.shipment_state_message
                    )
                }
            }
            Err(yubienterprise::ClientError::Api { status: 404, .. }) => {
                "The fulfiller no longer has this shipment.".to_owned()
            }
            Err(e) => format!(
                "The fulfiller could not be asked whether the shipment can be edited ({e}); try again later."
            ),
        },
    };
    if let Some(p) = posted {
        form = EditForm {
            csrf: None,
            confirm: None,
            ..p
        };
    }
    let pin_held = s
        .store
        .get_secret(&r.id, crate::secrets::Purpose::Pin)
        .await
        .map_err(|e| internal(&e.to_string()))?
        .is_some();
    let hold = crate::pin::hold(s, &r.id)
        .await
        .map_err(|e| internal(&e.to_string()))?;
    let pin_note = match (&hold, pin_held) {
        (Some(h), true) => format!(
            "Delivered; held sealed for resends until {}.",
            h.held_until
                .map(crate::pin::date)
                .unwrap_or_else(|| "the next cleanup".into())
        ),
        (Some(h), false) if h.purged_at.is_some() => crate::pin::gone_message(h),
        (Some(_), false) => "Delivered.".into(),
        (None, true) => "Read from the shipped key; waiting to be delivered.".into(),
        (None, false) => {
            "Not delivered yet (it is read from the key's shipment once the fulfiller ships it)."
                .into()
        }
    };
    Ok(DetailsPage {
        page: Page::new(
            format!("Shipment {}", r.shipment_id.as_deref().unwrap_or(&r.id)),
            admin,
            "shipments",
        ),
        error: r.last_error.as_deref().map(explain),
        can_retry: r.state == RequestState::Error,
        can_delete: r.state != RequestState::Deleted,
        can_resend: pin_held || r.idp == Idp::Okta,
        can_approve: r.state == RequestState::AwaitingApproval,
        id: r.id,
        idp: r.idp.to_string(),
        state: r.state.to_string(),
        user: r.user_label,
        user_id: r.user_id,
        shipment_id: r.shipment_id.unwrap_or_default(),
        fulfiller,
        serial: r.serial.unwrap_or_default(),
        firmware: r.firmware.unwrap_or_default(),
        tracking: r.tracking.unwrap_or_default(),
        created: when(r.created_at),
        updated: when(r.updated_at),
        kind: FPR_TYPE,
        products,
        form,
        locked,
        events,
        pin_note,
        flash,
        problem,
    })
}

/// Flash messages after an action (fixed texts, never echoed input).
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

fn done_text(d: &str) -> Option<String> {
    Some(
        match d {
            "edited" => "Saved: the fulfiller has the new recipient, address and delivery type.",
            "retried" => "Retry scheduled: the request is processed again now.",
            "resent" => "PIN resend scheduled: the runner sends it again in a moment.",
            "deleted" => "Deleted.",
            "approved" => "Approved: the PIN is released.",
            "processed" => "Processing run finished.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// `GET /console/shipments/{id}`.
pub async fn details(
    State(s): State<Arc<AppState>>,
    admin: Admin,
    Path(id): Path<String>,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let flash = q.ok().and_then(|q| done_text(&q.done));
    match details_page(&s, &admin, &id, flash, None, None).await {
        Ok(p) => page(&p),
        Err(r) => r,
    }
}

// ---- actions --------------------------------------------------------------------------

/// The outcome page of an action the API refused.
#[derive(Template)]
#[template(path = "console/outcome.html")]
pub struct Outcome {
    page: Page,
    message: String,
    back: String,
}

fn api_response(e: ApiError) -> Response {
    let status = e.status();
    let text = match &e {
        ApiError::Internal(_) => "internal error; see the connector's log".to_owned(),
        other => other.to_string(),
    };
    if let ApiError::Internal(m) = &e {
        tracing::error!(error = %m, "console action failed");
    }
    (status, text).into_response()
}

fn refused(admin: &Admin, what: &str, e: ApiError, back: String) -> Response {
    let status = e.status();
    let message = match &e {
        ApiError::Internal(m) => {
            tracing::error!(error = %m, "console action failed");
            "internal error; see the connector's log".to_owned()
        }
        other => other.to_string(),
    };
    (
        status,
        page(&Outcome {
            page: Page::new(format!("Could not {what}"), admin, "shipments"),
            message,
            back,
        }),
    )
        .into_response()
}

fn back_to(id: &str, done: &str) -> Response {
    Redirect::to(&format!(
        "/console/shipments/{}?done={done}",
        super::auth::form_encode(&[("", id)]).trim_start_matches('=')
    ))
    .into_response()
}

fn details_url(id: &str) -> String {
    format!(
        "/console/shipments/{}",
        super::auth::form_encode(&[("", id)]).trim_start_matches('=')
    )
}

/// A form with only the CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

/// The confirmation step of an action (no JavaScript needed).
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct Confirm {
    page: Page,
    action: String,
    question: String,
    button: String,
    back: String,
}

fn confirm(
    admin: &Admin,
    action: String,
    question: String,
    button: &str,
    back: String,
) -> Response {
    page(&Confirm {
        page: Page::new("Please confirm", admin, "shipments"),
        action,
        question,
        button: button.to_owned(),
        back,
    })
}

/// A request's action on the details page: what its confirmation asks, its button, the
/// flash word afterwards (see `done_text`), and "Could not {verb}" when the API
/// refuses. The call itself is [`Kind::call`].
struct Action {
    kind: Kind,
    /// The path segment after the request id.
    path: &'static str,
    /// The confirmation's question; `{id}` stands for the request id.
    question: &'static str,
    button: &'static str,
    done: &'static str,
    verb: &'static str,
}

#[derive(Clone, Copy)]
enum Kind {
    Retry,
    ResendPin,
    Delete,
    Approve,
}

const ACTIONS: &[Action] = &[
    Action {
        kind: Kind::Retry,
        path: "retry",
        question: "Retry request {id}? It is processed again now.",
        button: "Retry",
        done: "retried",
        verb: "retry",
    },
    Action {
        kind: Kind::ResendPin,
        path: "resend-pin",
        question: "Send the PIN of request {id} again to its PIN recipients?",
        button: "Resend PIN",
        done: "resent",
        verb: "resend the PIN",
    },
    Action {
        kind: Kind::Delete,
        path: "delete",
        question: "Delete request {id}? While the fulfiller still allows it, the shipment is cancelled; its held PIN is destroyed.",
        button: "Delete",
        done: "deleted",
        verb: "delete",
    },
    Action {
        kind: Kind::Approve,
        path: "approve",
        question: "Confirm that the key of request {id} arrived, and release its PIN?",
        button: "Approve PIN release",
        done: "approved",
        verb: "approve",
    },
];

impl Kind {
    /// The engine's admin action, as the HTTP API calls it (the Okta approval for
    /// approve).
    async fn call(self, s: &AppState, id: &str) -> Result<(), engine::ServiceError> {
        use engine::admin;
        match self {
            Self::Retry => admin::retry(s, id).await.map(drop),
            Self::ResendPin => admin::resend_pin(s, id).await.map(drop),
            Self::Delete => admin::delete(s, id).await.map(drop),
            Self::Approve => {
                let row = admin::find(s, id).await?;
                crate::okta::approve(s, &row.id).await.map(drop)
            }
        }
    }
}

/// `POST /console/shipments/{id}/{retry, resend-pin, delete, approve}`: without
/// `confirm=yes` the confirmation page; with it the call, then back to the details page
/// (or the API's refusal in words).
pub async fn action(
    State(s): State<Arc<AppState>>,
    admin: Admin,
    headers: HeaderMap,
    Path((id, path)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let Some(a) = ACTIONS.iter().find(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, "404: no such action").into_response();
    };
    if let Err(r) = check_csrf(&admin, &headers, f.csrf.as_deref()) {
        return r;
    }
    if f.confirm.as_deref() != Some("yes") {
        let url = format!("{}/{}", details_url(&id), a.path);
        let question = a.question.replace("{id}", &id);
        return confirm(&admin, url, question, a.button, details_url(&id));
    }
    match a.kind.call(&s, &id).await {
        Ok(()) => back_to(&id, a.done),
        Err(e) => refused(&admin, a.verb, e.into(), details_url(&id)),
    }
}

/// `POST /console/shipments/process`: process every due request now.
pub async fn process_now(
    State(s): State<Arc<AppState>>,
    admin: Admin,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Err(r) = check_csrf(&admin, &headers, f.csrf.as_deref()) {
        return r;
    }
    if f.confirm.as_deref() != Some("yes") {
        let question =
            "Process every request now (poll the fulfiller, register shipped keys, deliver PINs)?";
        let (action, back) = ("/console/shipments/process", "/console/shipments");
        return confirm(
            &admin,
            action.into(),
            question.into(),
            "Process now",
            back.into(),
        );
    }
    // The work runs in the runner; the page waits (up to 30 s) to report what it did.
    let done = match crate::runner::process_and_wait(&s, std::time::Duration::from_secs(30)).await {
        Ok(d) => d,
        Err(e) => return internal(&e.to_string()),
    };
    let still = if done.idle {
        ""
    } else {
        " Some requests are still being processed; reload the list to follow them."
    };
    page(&Outcome {
        page: Page::new("Processing run finished", &admin, "shipments"),
        message: format!(
            "Made {} waiting request(s) due. Processed {}, completed {}, errors {}.{still}",
            done.queued, done.processed, done.completed, done.errors
        ),
        back: "/console/shipments".into(),
    })
}

/// A recipient, address and delivery type as the fulfiller keeps them (trimmed, the
/// country upper-case): what an edit sends and what it is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Contact {
    recipient: yubienterprise::fpr::Recipient,
    address: yubienterprise::fpr::MailingAddress,
    delivery: u8,
}

/// One changed field on the edit's confirmation page.
pub struct Change {
    field: &'static str,
    old: String,
    new: String,
}

impl Contact {
    /// The form's values, checked by the fulfiller's own rules
    /// (`yubienterprise::validate::contact`); the problem in words otherwise.
    fn parse(f: &EditForm) -> Result<Self, String> {
        let delivery = match f.delivery_type.trim() {
            "1" | "" => 1u8,
            "2" => 2,
            _ => return Err("Delivery type must be standard or expedited.".into()),
        };
        let c = Self::of(
            &yubienterprise::fpr::Recipient {
                recipient_company: f.recipient_company.clone(),
                recipient_email: f.recipient_email.clone(),
                recipient_firstname: f.recipient_firstname.clone(),
                recipient_lastname: f.recipient_lastname.clone(),
                recipient_telephone: f.recipient_telephone.clone(),
            },
            &yubienterprise::fpr::MailingAddress {
                street_line1: f.street_line1.clone(),
                street_line2: f.street_line2.clone(),
                street_line3: f.street_line3.clone(),
                city: f.city.clone(),
                region: f.region.clone(),
                postal_code: f.postal_code.clone(),
                country_code_2: f.country_code_2.clone(),
            },
            delivery,
        );
        yubienterprise::validate::contact(&c.recipient, &c.address, Some(c.delivery))
            .map_err(|e| format!("The change cannot be saved: {e}."))?;
        Ok(c)
    }

    /// Normalized copies of a recipient and address.
    fn of(
        r: &yubienterprise::fpr::Recipient,
        a: &yubienterprise::fpr::MailingAddress,
        delivery: u8,
    ) -> Self {
        let t = |s: &str| s.trim().to_owned();
        Self {
            recipient: yubienterprise::fpr::Recipient {
                recipient_company: t(&r.recipient_company),
                recipient_email: t(&r.recipient_email),
                recipient_firstname: t(&r.recipient_firstname),
                recipient_lastname: t(&r.recipient_lastname),
                recipient_telephone: t(&r.recipient_telephone),
            },
            address: yubienterprise::fpr::MailingAddress {
                street_line1: t(&a.street_line1),
                street_line2: t(&a.street_line2),
                street_line3: t(&a.street_line3),
                city: t(&a.city),
                region: t(&a.region),
                postal_code: t(&a.postal_code),
                country_code_2: a.country_code_2.trim().to_ascii_uppercase(),
            },
            delivery,
        }
    }

    /// (form field, label, value) for every field of the form, in the form's order.
    fn fields(&self) -> [(&'static str, &'static str, String); 13] {
        let (r, a) = (&self.recipient, &self.address);
        [
            (
                "recipient_firstname",
                "First name",
                r.recipient_firstname.clone(),
            ),
            (
                "recipient_lastname",
                "Last name",
                r.recipient_lastname.clone(),
            ),
            ("recipient_email", "E-mail", r.recipient_email.clone()),
            (
                "recipient_telephone",
                "Telephone",
                r.recipient_telephone.clone(),
            ),
            ("recipient_company", "Company", r.recipient_company.clone()),
            ("street_line1", "Street", a.street_line1.clone()),
            ("street_line2", "Street, line 2", a.street_line2.clone()),
            ("street_line3", "Street, line 3", a.street_line3.clone()),
            ("city", "City", a.city.clone()),
            ("region", "Region", a.region.clone()),
            ("postal_code", "Postal code", a.postal_code.clone()),
            ("country_code_2", "Country", a.country_code_2.clone()),
            ("delivery_type", "Delivery type", self.delivery.to_string()),
        ]
    }

    /// What differs from `old`, field by field.
    fn changes_from(&self, old: &Self) -> Vec<Change> {
        let shown = |name: &str, v: String| match (name, v.as_str()) {
            ("delivery_type", "2") => "expedited".to_owned(),
            ("delivery_type", _) => "standard".to_owned(),
            (_, "") => "(empty)".to_owned(),
            _ => v,
        };
        old.fields()
            .into_iter()
            .zip(self.fields())
            .filter(|((_, _, o), (_, _, n))| o != n)
            .map(|((name, field, o), (_, _, n))| Change {
                field,
                old: shown(name, o),
                new: shown(name, n),
            })
            .collect()
    }
}

/// The edit's confirmation page: what changes, and the new values as hidden fields.
#[derive(Template)]
#[template(path = "console/edit_confirm.html")]
pub struct EditConfirm {
    page: Page,
    action: String,
    shipment_id: String,
    changes: Vec<Change>,
    hidden: Vec<(&'static str, String)>,
    back: String,
}

/// `POST /console/shipments/{id}/edit`: new recipient, address and delivery type, while
/// the fulfiller still allows edits. The first post (no `confirm=yes`) checks the form
/// and shows what would change, compared with the fulfiller's live view; nothing is
/// sent to the fulfiller until the admin confirms.
pub async fn edit(
    State(s): State<Arc<AppState>>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<EditForm>,
) -> Response {
    if let Err(r) = check_csrf(&admin, &headers, f.csrf.as_deref()) {
        return r;
    }
    let r: RequestRow = match engine::admin::find(&s, &id).await {
        Ok(r) => r,
        Err(e) => return refused(&admin, "edit", e.into(), details_url(&id)),
    };
    // The details page again, with the posted values and the problem (or a note).
    let again = |status: StatusCode, flash: Option<String>, problem: Option<String>| {
        let (s, admin, id, f) = (s.clone(), admin.clone(), id.clone(), f.clone());
        async move {
            match details_page(&s, &admin, &id, flash, problem, Some(f)).await {
                Ok(p) => (status, page(&p)).into_response(),
                Err(r) => r,
            }
        }
    };
    let Some(sid) = r
        .shipment_id
        .clone()
        .filter(|_| r.state != RequestState::Deleted)
    else {
        let problem = "This request has no shipment at the fulfiller to edit.";
        return again(StatusCode::CONFLICT, None, Some(problem.into())).await;
    };
    let new = match Contact::parse(&f) {
        Ok(c) => c,
        Err(problem) => return again(StatusCode::BAD_REQUEST, None, Some(problem)).await,
    };
    if f.confirm.as_deref() != Some("yes") {
        let live = match s.fulfiller.get_fpr_shipment(&sid).await {
            Ok(l) => l,
            Err(e) => {
                let problem = format!(
                    "The fulfiller could not be asked for the shipment; nothing was changed ({e})."
                );
                return again(StatusCode::SERVICE_UNAVAILABLE, None, Some(problem)).await;
            }
        };
        let st = live.shipment_state.shipment_state_id;
        if !st.is_editable() {
            let problem = format!(
                "The fulfiller has locked this shipment (state {} {}): the recipient, address and delivery type can no longer be changed.",
                st.id(),
                live.shipment_state.shipment_state_message
            );
            return again(StatusCode::CONFLICT, None, Some(problem)).await;
        }
        let old = Contact::of(&live.recipient, &live.mailing_address, live.delivery_type);
        let changes = new.changes_from(&old);
        if changes.is_empty() {
            let note = "Nothing to change: the form holds what the fulfiller already has.";
            return again(StatusCode::OK, Some(note.into()), None).await;
        }
        return page(&EditConfirm {
            page: Page::new("Please confirm the changes", &admin, "shipments"),
            action: format!("{}/edit", details_url(&id)),
            shipment_id: sid,
            changes,
            hidden: new.fields().into_iter().map(|(n, _, v)| (n, v)).collect(),
            back: details_url(&id),
        });
    }
    let update = yubienterprise::fpr::UpdateFprShipment {
        delivery_type: Some(new.delivery),
        recipient: Some(new.recipient.clone()),
        mailing_address: Some(new.address.clone()),
    };
    match s.fulfiller.update_fpr_shipment(&sid, &update).await {
        Ok(_) => {}
        Err(yubienterprise::ClientError::Api { status, body, .. }) => {
            let code = if status == 409 {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            let problem = format!("The fulfiller refused the change: {}", body.message);
            return again(code, None, Some(problem)).await;
        }
        Err(e) => {
            let problem = format!("The fulfiller could not be reached; nothing was changed ({e}).");
            return again(StatusCode::SERVICE_UNAVAILABLE, None, Some(problem)).await;
        }
    }
    // Keep our copy of the create body in step (it shows on this page and feeds a
    // re-creation after an error); the audit entry names the fields that changed.
    let (body, changed) =
        match serde_json::from_str::<yubienterprise::fpr::CreateFprShipment>(&r.create_body) {
            Ok(mut b) => {
                let old = Contact::of(
                    &b.recipient,
                    &b.mailing_address,
                    b.delivery_type.unwrap_or(1),
                );
                let changed: Vec<&str> = new.changes_from(&old).iter().map(|c| c.field).collect();
                b.recipient = new.recipient;
                b.mailing_address = new.address;
                b.delivery_type = Some(new.delivery);
                let body = serde_json::to_string(&b).unwrap_or_else(|_| r.create_body.clone());
                (body, changed.join(", "))
            }
            Err(_) => (r.create_body.clone(), String::new()),
        };
    let what = if changed.is_empty() {
        "recipient, address and delivery type".to_owned()
    } else {
        changed
    };
    let note = format!("{what} edited by {} in the console", admin.user);
    if let Err(e) = query::record_edit(s.store.pool(), &r.id, r.state.as_str(), &body, &note).await
    {
        return internal(&e.to_string());
    }
    back_to(&id, "edited")
}

// ---- settings -------------------------------------------------------------------------

/// The settings page.
#[derive(Template)]
#[template(path = "console/settings.html")]
pub struct SettingsPage {
    page: Page,
    products: Vec<(u32, u32, String, i64)>,
    inventory: Vec<(u32, u32, String, u64)>,
    inventory_error: Option<String>,
    okta_groups: Vec<(String, u32, u32, String)>,
    config: Vec<(&'static str, String)>,
}

/// `GET /console/settings`: customization ids and products in use, the fulfiller's
/// inventory, the configuration (never a secret).
pub async fn settings(State(s): State<Arc<AppState>>, admin: Admin) -> Response {
    let products = match query::product_usage(s.store.pool()).await {
        Ok(p) => p,
        Err(e) => return internal(&e.to_string()),
    };
    let (inventory, inventory_error) = match s.fulfiller.inventory().await {
        Ok(i) => (
            i.organization_product_inventory
                .into_iter()
                .map(|b| {
                    (
                        b.inventory_product_id,
                        b.product_id,
                        b.product_name,
                        b.organization_product_quantity,
                    )
                })
                .collect(),
            None,
        ),
        Err(e) => (
            Vec::new(),
            Some(format!("The fulfiller's inventory could not be read: {e}")),
        ),
    };
    let c = &s.config;
    let console = c.console.clone().unwrap_or_default();
    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let config = vec![
        ("listen_addr", c.listen_addr.to_string()),
        (
            "database",
            if c.database_url.starts_with("sqlite:") {
                "SQLite".to_owned()
            } else {
                "PostgreSQL".to_owned()
            },
        ),
        ("ye_api_base_url", c.ye_api_base_url.clone()),
        (
            "ye_jwks_transport_endpoint",
            c.ye_jwks_transport_endpoint.clone(),
        ),
        ("ye_jwks_sign_endpoint", c.ye_jwks_sign_endpoint.clone()),
        ("azure_tenant_id", c.azure_tenant_id.clone()),
        (
            "entra_fido_api_client_id",
            c.entra_fido_api_client_id.clone(),
        ),
        (
            "entra_fido_api_challenge_timeout_minutes",
            c.entra_fido_api_challenge_timeout_minutes.to_string(),
        ),
        ("entra_authority_url", c.entra_authority_url.clone()),
        ("graph_api_base_url", c.graph_api_base_url.clone()),
        ("auth_issuer", c.auth_issuer.clone()),
        ("allowed_audiences", c.allowed_audiences.join(", ")),
        ("allowed_client_apps", c.allowed_client_apps.join(", ")),
        (
            "cron_process_shipment_schedule",
            c.cron_process_shipment_schedule.clone(),
        ),
        (
            "cron_data_cleanup_schedule",
            c.cron_data_cleanup_schedule.clone(),
        ),
        (
            "cron_data_cleanup_completed_days",
            c.cron_data_cleanup_completed_days.to_string(),
        ),
        ("pin_retention_days", c.pin_retention_days.to_string()),
        ("retention_days", c.retention_days.to_string()),
        (
            "PIN channel",
            match (&c.send_pin_url, &c.smtp) {
                (Some(u), _) => format!("webhook {}", u.split('?').next().unwrap_or_default()),
                (None, Some(m)) => format!("SMTP {}:{} from {}", m.host, m.port, m.from),
                (None, None) => "none configured".into(),
            },
        ),
        ("TLS", yes(c.tls.is_some())),
        (
            "trusted_proxies",
            if c.trusted_proxies.is_empty() {
                "(none: X-Forwarded-For/-Proto ignored)".to_owned()
            } else {
                c.trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("Okta mode", yes(c.okta.is_some())),
        (
            "console.admin_user",
            console
                .admin_user
                .clone()
                .unwrap_or_else(|| "(none)".into()),
        ),
        (
            "console.oidc_issuer",
            console
                .oidc
                .as_ref()
                .map(|o| o.issuer.clone())
                .unwrap_or_else(|| "(none)".into()),
        ),
        (
            "console.oidc_client_id",
            console
                .oidc
                .as_ref()
                .map(|o| o.client_id.clone())
                .unwrap_or_default(),
        ),
        (
            "console.oidc_allowed_users",
            console
                .oidc
                .as_ref()
                .map(|o| o.allowed_users.join(", "))
                .unwrap_or_default(),
        ),
        (
            "console.oidc_issuer_verifies_email",
            console
                .oidc
                .as_ref()
                .map(|o| yes(o.issuer_verifies_email))
                .unwrap_or_default(),
        ),
        (
            "console.session_minutes",
            console.session_minutes.to_string(),
        ),
        (
            "console.signin_max_failures",
            console.signin_max_failures.to_string(),
        ),
        (
            "console.signin_lockout_minutes",
            console.signin_lockout_minutes.to_string(),
        ),
    ];
    let okta_groups = c
        .okta
        .iter()
        .flat_map(|o| o.groups.iter())
        .map(|g| {
            (
                g.group_id.clone(),
                g.product_id,
                g.inventory_product_id,
                g.customization_id.clone(),
            )
        })
        .collect();
    page(&SettingsPage {
        page: Page::new("Settings", &admin, "settings"),
        products,
        inventory,
        inventory_error,
        okta_groups,
        config,
    })
}
