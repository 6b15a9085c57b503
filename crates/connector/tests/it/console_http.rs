//! The admin console over HTTP: sign-in (local admin and OIDC at the Entra sandbox),
//! every page and action refused without a session, forged forms refused, search and
//! filters, details without the PIN, actions through the API's rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::console_common;
use crate::pg;

use common::ALEX;
use console_common::*;

const PAGES: &[&str] = &[
    "/console",
    "/console/shipments",
    "/console/shipments?q=x&state=error",
    "/console/settings",
];

#[tokio::test]
async fn every_page_and_action_is_refused_without_a_session_and_forged_forms_are_refused() {
    let w = start_console().await;
    let (id, _) = order(&w, ALEX).await;
    let b = browser();
    let mut pages: Vec<String> = PAGES.iter().map(|p| p.to_string()).collect();
    pages.push(format!("/console/shipments/{id}"));
    for p in &pages {
        let r = b.get(format!("{}{p}", w.connector)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{p}");
        assert_eq!(r.headers()["location"], "/console/login", "{p}");
    }
    let actions: Vec<String> = ["retry", "resend-pin", "delete", "approve", "edit"]
        .iter()
        .map(|a| format!("/console/shipments/{id}/{a}"))
        .chain([
            "/console/shipments/process".to_owned(),
            "/console/logout".to_owned(),
        ])
        .collect();
    for a in &actions {
        let (s, _, _) = post(&w, &b, a, &[("csrf", "x"), ("confirm", "yes")]).await;
        assert_eq!(s, 401, "{a}");
    }
    // htmx requests are told to send the whole page to the sign-in form.
    let r = b
        .get(format!("{}/console/shipments?q=x", w.connector))
        .header("hx-request", "true")
        .header("hx-target", "results")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["hx-redirect"], "/console/login");
    // A made-up session cookie is no session.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/console/shipments", w.connector))
        .header("cookie", "prereg_console=made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // The sign-in form itself needs its token.
    let (s, _, _) = post(
        &w,
        &b,
        "/console/login",
        &[("user", ADMIN), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(s, 403);
    // A wrong password.
    let html = get(&w, &b, "/console/login").await.1;
    let t = input_value(&html, "csrf");
    let (s, _, body) = post(
        &w,
        &b,
        "/console/login",
        &[("csrf", &t), ("user", ADMIN), ("password", "wrong")],
    )
    .await;
    assert_eq!(s, 401);
    assert!(body.contains("Wrong user name or password."));

    let csrf = sign_in(&w, &b).await;
    // Signed in: every page answers.
    for p in &pages {
        let (s, body) = get(&w, &b, p).await;
        assert!(s == 200 || (s == 303 && p == "/console"), "{p}: {s} {body}");
    }
    // Forged forms: no token, or another token, are refused with 403 and change nothing.
    for a in &actions {
        for form in [
            vec![("confirm", "yes")],
            vec![("csrf", "forged"), ("confirm", "yes")],
        ] {
            let (s, _, body) = post(&w, &b, a, &form).await;
            assert_eq!(s, 403, "{a} {form:?}: {body}");
        }
    }
    let (s, v) = w
        .call(
            reqwest::Method::GET,
            &format!("/v1/fpr/shipments/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["state"], "open", "nothing was deleted: {v}");
    // An action the console does not have.
    let (s, _, _) = post(
        &w,
        &b,
        &format!("/console/shipments/{id}/nope"),
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(s, 404);
    // The htmx header carries the token too.
    let r = b
        .post(format!("{}/console/shipments/{id}/delete", w.connector))
        .header("x-csrf-token", &csrf)
        .form(&[("confirm", "no")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the confirmation step");
    assert!(r.text().await.unwrap().contains("Delete request"));

    // Sign out: the session is gone.
    let (s, loc, _) = post(&w, &b, "/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!((s, loc.as_str()), (303, "/console/login"));
    let r = b
        .get(format!("{}/console/shipments", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn search_filters_sort_and_details_show_what_an_admin_needs_but_never_the_pin() {
    let w = start_console().await;
    let (alex, alex_sid) = order(&w, ALEX).await;
    let (diego, _) = order(&w, DIEGO).await;
    // Alex's key ships; Diego's stays open... both advance; process completes both.
    w.advance().await;
    w.advance().await;
    w.process().await;
    let got = w.shipment(&alex).await;
    assert_eq!(got["state"], "complete", "{got}");
    let serial = got["serial_number"].as_str().unwrap().to_owned();
    let pin = w.pins.lock().unwrap()[0]["pin"]
        .as_str()
        .unwrap()
        .to_owned();
    // A third one, deleted, so the state filter has something to leave out.
    let (third, _) = order(&w, ALEX).await;
    let (s, _) = w
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/fpr/shipments/{third}"),
            None,
        )
        .await;
    assert_eq!(s, 200);

    let b = browser();
    sign_in(&w, &b).await;
    let rows = |html: &str| html.matches("<tr data-id=").count();
    let (_, all) = get(&w, &b, "/console/shipments").await;
    assert_eq!(rows(&all), 3, "{all}");
    assert!(all.contains("AUTO FIDO PRE-REG"));
    assert!(all.contains("Showing 1–3 of 3 shipments."));

    // By serial.
    let (_, by_serial) = get(&w, &b, &format!("/console/shipments?q={serial}")).await;
    assert_eq!(rows(&by_serial), 1, "{by_serial}");
    assert!(by_serial.contains(&format!("data-id=\"{alex}\"")));
    // By user (case-insensitive), by shipment id, by recipient e-mail.
    let (_, by_user) = get(&w, &b, "/console/shipments?q=diegos%40contoso").await;
    assert_eq!(rows(&by_user), 1, "{by_user}");
    assert!(by_user.contains(&format!("data-id=\"{diego}\"")));
    let (_, by_sid) = get(&w, &b, &format!("/console/shipments?q={alex_sid}")).await;
    assert_eq!(rows(&by_sid), 1);
    let (_, by_mail) = get(&w, &b, "/console/shipments?q=alexw%40contoso.example").await;
    assert_eq!(
        rows(&by_mail),
        3,
        "the guide's recipient e-mail is on every order"
    );
    // LIKE wildcards in the search are literal.
    let (_, pct) = get(&w, &b, "/console/shipments?q=%25").await;
    assert_eq!(rows(&pct), 0);
    // Filters.
    let (_, deleted) = get(&w, &b, "/console/shipments?state=deleted").await;
    assert_eq!(rows(&deleted), 1);
    assert!(deleted.contains(&format!("data-id=\"{third}\"")));
    let (_, complete) = get(
        &w,
        &b,
        "/console/shipments?state=complete&type=fpr&idp=entra",
    )
    .await;
    assert_eq!(rows(&complete), 2, "{complete}");
    let (_, okta) = get(&w, &b, "/console/shipments?idp=okta").await;
    assert!(okta.contains("No shipments match."));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, dated) = get(
        &w,
        &b,
        &format!("/console/shipments?from={today}&to={today}"),
    )
    .await;
    assert_eq!(rows(&dated), 3);
    let (_, old) = get(&w, &b, "/console/shipments?to=2020-01-01").await;
    assert_eq!(rows(&old), 0);
    // Sort by user ascending: Alex, Alex, Diego.
    let (_, sorted) = get(&w, &b, "/console/shipments?sort=user&dir=asc").await;
    let first_diego = sorted.find("DiegoS@").unwrap();
    let first_alex = sorted.find("AlexW@").unwrap();
    assert!(first_alex < first_diego);
    assert!(sorted.contains("aria-sort=\"ascending\""));
    // htmx asks for the results alone.
    let r = b
        .get(format!("{}/console/shipments?q={serial}", w.connector))
        .header("hx-request", "true")
        .header("hx-target", "results")
        .send()
        .await
        .unwrap();
    let part = r.text().await.unwrap();
    assert!(!part.contains("<html") && part.contains("<table id=\"shipments\""));

    // Details: timeline, recipient, address, product, serial; never the PIN.
    let (s, d) = get(&w, &b, &format!("/console/shipments/{alex}")).await;
    assert_eq!(s, 200);
    for want in [
        serial.as_str(),
        "7788 Foxrun Street",
        "Dedham",
        "alexw@contoso.example",
        "customization",
        "Timeline",
        "complete",
    ] {
        assert!(d.contains(want), "details lack {want}");
    }
    assert!(
        d.contains("id=\"locked\""),
        "a shipped key's address is read-only"
    );
    assert!(!d.contains(&pin), "the PIN never shows");
    let (_, list) = get(&w, &b, "/console/shipments").await;
    assert!(!list.contains(&pin));
    // Settings: inventory and products, no secrets.
    let (s, set) = get(&w, &b, "/console/settings").await;
    assert_eq!(s, 200);
    assert!(set.contains("Fulfiller inventory") && set.contains("<table id=\"inventory\""));
    let secret = w.ready["entra"]["connector_app"]["client_secret"]
        .as_str()
        .unwrap();
    assert!(!set.contains(secret));
    let token = w.ready["fulfiller"]["tokens"][0].as_str().unwrap();
    assert!(!set.contains(token));
}

const EDIT_FIELDS: &[&str] = &[
    "recipient_firstname",
    "recipient_lastname",
    "recipient_email",
    "recipient_telephone",
    "recipient_company",
    "street_line1",
    "street_line2",
    "street_line3",
    "city",
    "region",
    "postal_code",
    "country_code_2",
];

/// The edit form as the details page shows it now (every field, the delivery type, the
/// CSRF token).
async fn same_as_page(
    w: &common::World,
    b: &reqwest::Client,
    id: &str,
    csrf: &str,
) -> Vec<(String, String)> {
    let (_, d) = get(w, b, &format!("/console/shipments/{id}")).await;
    let expedited = d.contains("value=\"2\" checked");
    EDIT_FIELDS
        .iter()
        .map(|k| (k.to_string(), input_value(&d, k)))
        .chain([
            (
                "delivery_type".into(),
                if expedited { "2" } else { "1" }.into(),
            ),
            ("csrf".into(), csrf.to_owned()),
        ])
        .collect()
}

fn set(form: &mut [(String, String)], key: &str, value: &str) {
    form.iter_mut().find(|(k, _)| k == key).unwrap().1 = value.to_owned();
}

/// Posts an edit, then confirms it with the confirmation page's hidden fields.
async fn edit_and_confirm(
    w: &common::World,
    b: &reqwest::Client,
    edit: &str,
    form: &[(String, String)],
) {
    let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (s, _, confirm) = post(w, b, edit, &f).await;
    assert_eq!(s, 200, "{confirm}");
    let hidden = hidden_inputs(&confirm, "confirm-form");
    let hidden: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (s, loc, body) = post(w, b, edit, &hidden).await;
    assert_eq!(s, 303, "{body}");
    assert!(loc.ends_with("?done=edited"), "{loc}");
}

#[tokio::test]
async fn actions_edit_until_locked_retry_and_resend_follow_the_apis_rules() {
    let w = start_console().await;
    let (open, sid) = order(&w, ALEX).await;
    let b = browser();
    let csrf = sign_in(&w, &b).await;

    // Edit while the fulfiller allows it.
    let edit = format!("/console/shipments/{open}/edit");
    let (_, d) = get(&w, &b, &format!("/console/shipments/{open}")).await;
    assert!(!d.contains("id=\"locked\""), "{d}");
    let unchanged: Vec<(&str, String)> = EDIT_FIELDS
        .iter()
        .map(|k| (*k, input_value(&d, k)))
        .chain([("delivery_type", "1".to_owned()), ("csrf", csrf.clone())])
        .collect();
    let with = |key: &str, value: &str| -> Vec<(&str, String)> {
        let mut f = unchanged.clone();
        f.iter_mut().find(|(k, _)| *k == key).unwrap().1 = value.to_owned();
        f
    };
    let send = |f: Vec<(&'static str, String)>| {
        let (w, b, edit) = (&w, &b, edit.clone());
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(w, b, &edit, &f).await
        }
    };
    let mut form = with("street_line1", "1 New Road");
    form.iter_mut()
        .find(|(k, _)| *k == "delivery_type")
        .unwrap()
        .1 = "2".into();

    // The first post shows exactly what changes (old -> new) and changes nothing yet.
    let (s, _, confirm) = send(form.clone()).await;
    assert_eq!(s, 200, "{confirm}");
    assert!(
        confirm.contains(
            "<th scope=\"row\">Street</th><td class=\"old\">7788 Foxrun Street</td><td class=\"new\">1 New Road</td>"
        ),
        "{confirm}"
    );
    assert!(confirm.contains(
        "<th scope=\"row\">Delivery type</th><td class=\"old\">standard</td><td class=\"new\">expedited</td>"
    ));
    assert_eq!(
        confirm.matches("<td class=\"old\">").count(),
        2,
        "only the changed fields are listed: {confirm}"
    );
    let live = w.state.fulfiller.get_fpr_shipment(&sid).await.unwrap();
    assert_eq!(live.mailing_address.street_line1, "7788 Foxrun Street");
    assert_eq!(
        live.delivery_type, 1,
        "nothing changed before the confirmation"
    );
    // Confirming posts the page's hidden fields (the new values, the token, confirm=yes).
    let hidden = hidden_inputs(&confirm, "confirm-form");
    assert!(hidden.contains(&("confirm".into(), "yes".into())));
    assert!(hidden.contains(&("street_line1".into(), "1 New Road".into())));
    assert!(hidden.contains(&("csrf".into(), csrf.clone())));
    let hidden: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (s, loc, body) = post(&w, &b, &edit, &hidden).await;
    assert_eq!(s, 303, "{body}");
    assert!(loc.ends_with("?done=edited"));
    let live = w.state.fulfiller.get_fpr_shipment(&sid).await.unwrap();
    assert_eq!(live.mailing_address.street_line1, "1 New Road");
    assert_eq!(live.mailing_address.city, "Dedham");
    assert_eq!(live.delivery_type, 2);
    let (_, d) = get(&w, &b, &loc).await;
    assert!(d.contains("1 New Road") && d.contains("Saved:"));
    assert!(
        d.contains("Street, Delivery type edited by admin in the console"),
        "the audit trail names the changed fields: {d}"
    );

    // The form as it now stands: nothing to change, and no confirmation to give.
    let mut same = with("street_line1", "1 New Road");
    same.iter_mut()
        .find(|(k, _)| *k == "delivery_type")
        .unwrap()
        .1 = "2".into();
    let (s, _, body) = send(same).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Nothing to change"), "{body}");
    assert!(!body.contains("id=\"changes\""));
    // The third street line is edited like the others, and kept by a later edit of
    // another field (the form carries every line the fulfiller holds).
    let mut line3 = same_as_page(&w, &b, &open, &csrf).await;
    set(&mut line3, "street_line3", "Building 7");
    edit_and_confirm(&w, &b, &edit, &line3).await;
    let mut street = same_as_page(&w, &b, &open, &csrf).await;
    set(&mut street, "street_line1", "3 Third Road");
    edit_and_confirm(&w, &b, &edit, &street).await;
    let live = w.state.fulfiller.get_fpr_shipment(&sid).await.unwrap();
    assert_eq!(
        (
            live.mailing_address.street_line1.as_str(),
            live.mailing_address.street_line3.as_str()
        ),
        ("3 Third Road", "Building 7")
    );

    // An invalid form is shown again with the specific problem, before any confirmation.
    let (s, _, body) = send(with("street_line1", " ")).await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body.contains("Input for Address is required") && body.contains("id=\"edit-form\""),
        "{body}"
    );
    let (s, _, body) = send(with("country_code_2", "USA")).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("Input for Country Code"), "{body}");
    assert_eq!(
        w.state
            .fulfiller
            .get_fpr_shipment(&sid)
            .await
            .unwrap()
            .mailing_address
            .country_code_2,
        "US"
    );

    // Locked after the fulfiller's batch (validated, then locked and shipped): the form
    // is read-only and says why; a posted edit is refused before the confirmation, and
    // a forced confirmation gets the fulfiller's own refusal.
    w.advance().await;
    w.advance().await;
    let (_, d) = get(&w, &b, &format!("/console/shipments/{open}")).await;
    assert!(
        d.contains("id=\"locked\"") && d.contains("can no longer be changed"),
        "{d}"
    );
    assert!(d.contains("<fieldset disabled"));
    let (s, _, body) = send(form.clone()).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("id=\"problem\"") && body.contains("can no longer be changed"));
    let mut forced = with("street_line1", "2 Late Road");
    forced.push(("confirm", "yes".into()));
    let (s, _, body) = send(forced).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("The fulfiller refused the change"), "{body}");

    // Retry an error (confirmation first).
    let mut row = w.state.store.get_request(&open).await.unwrap().unwrap();
    use connector::store::Store;
    row.state = connector::domain::RequestState::Error;
    row.last_error = Some("the fulfiller was unavailable: connection refused".into());
    w.state
        .store
        .update_request(&row, "test: made an error")
        .await
        .unwrap();
    let (_, d) = get(&w, &b, &format!("/console/shipments/{open}")).await;
    assert!(d.contains("What fixes it:") && d.contains("Retry"), "{d}");
    let path = format!("/console/shipments/{open}/retry");
    let (s, _, confirm) = post(&w, &b, &path, &[("csrf", &csrf)]).await;
    assert_eq!(s, 200);
    assert!(confirm.contains("Retry request"));
    let (s, loc, _) = post(&w, &b, &path, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!((s, loc.ends_with("?done=retried")), (303, true));
    assert_eq!(w.shipment(&open).await["state"], "open");
    // Retrying what is not an error: the API's refusal, in words.
    let (s, _, body) = post(&w, &b, &path, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(s, 409);
    assert!(body.contains("not error"), "{body}");

    // Complete (the key has shipped), then resend the PIN.
    w.process().await;
    assert_eq!(w.shipment(&open).await["state"], "complete");
    assert_eq!(w.pins.lock().unwrap().len(), 1);
    let path = format!("/console/shipments/{open}/resend-pin");
    let (s, loc, _) = post(&w, &b, &path, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!((s, loc.ends_with("?done=resent")), (303, true));
    w.process().await;
    assert_eq!(w.pins.lock().unwrap().len(), 2, "the PIN went again");

    // Process now, from the console.
    let (s, _, body) = post(
        &w,
        &b,
        "/console/shipments/process",
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("Processed"));
    // Approve: not an Okta request waiting for approval, so refused (404 or 409).
    let (s, _, body) = post(
        &w,
        &b,
        &format!("/console/shipments/{open}/approve"),
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert!(s == 404 || s == 409, "{s} {body}");
    assert!(body.contains("Could not approve"), "{body}");
    // Delete: a complete request leaves tracking.
    let (s, loc, _) = post(
        &w,
        &b,
        &format!("/console/shipments/{open}/delete"),
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!((s, loc.ends_with("?done=deleted")), (303, true));
    assert_eq!(w.shipment(&open).await["state"], "deleted");
}

/// Posts the local sign-in form as `user`; (status, Retry-After, body).
async fn try_sign_in(
    w: &common::World,
    b: &reqwest::Client,
    user: &str,
    password: &str,
) -> (u16, Option<String>, String) {
    let html = get(w, b, "/console/login").await.1;
    let t = input_value(&html, "csrf");
    let r = b
        .post(format!("{}/console/login", w.connector))
        .form(&[("csrf", t.as_str()), ("user", user), ("password", password)])
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), retry, r.text().await.unwrap())
}

#[tokio::test]
async fn sign_in_is_refused_after_five_failures_for_a_user_name_or_many_from_one_address() {
    let w = start_console().await;
    let b = browser();
    let signed_in = |b: &reqwest::Client| {
        let r = b.get(format!("{}/console/shipments", w.connector)).send();
        async move { r.await.unwrap().status() == 200 }
    };
    // Four wrong passwords, then the right one: signed in, and the count starts again.
    for _ in 0..4 {
        let (s, _, body) = try_sign_in(&w, &b, ADMIN, "wrong").await;
        assert_eq!(s, 401, "{body}");
        assert!(body.contains("Wrong user name or password."));
    }
    let (s, _, body) = try_sign_in(&w, &b, ADMIN, PASSWORD).await;
    assert_eq!(s, 303, "{body}");
    assert!(signed_in(&b).await);
    let b = browser();
    for _ in 0..4 {
        assert_eq!(try_sign_in(&w, &b, ADMIN, "wrong").await.0, 401);
    }
    assert_eq!(
        try_sign_in(&w, &b, ADMIN, PASSWORD).await.0,
        303,
        "the success reset it"
    );

    // Five wrong passwords: the sixth attempt is refused even with the right password,
    // without checking it, and the page says when to try again.
    let b = browser();
    for _ in 0..5 {
        assert_eq!(try_sign_in(&w, &b, ADMIN, "wrong").await.0, 401);
    }
    let (s, retry, body) = try_sign_in(&w, &b, ADMIN, PASSWORD).await;
    assert_eq!(s, 429, "{body}");
    assert!(
        body.contains("Too many failed sign-ins for this user name. Try again after "),
        "{body}"
    );
    assert!(body.contains(" UTC (in about 15 minutes)"), "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(!signed_in(&b).await, "no session");
    // The user name as typed, in another case and with spaces, is the same user.
    let (s, _, _) = try_sign_in(&w, &b, " ADMIN", PASSWORD).await;
    assert_eq!(s, 429);

    // Another user name is not blocked: its password is checked.
    let (s, _, body) = try_sign_in(&w, &b, "operator", "wrong").await;
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("Wrong user name or password."));

    // From one address, four times the per-user limit (20) across user names: then
    // every user name is refused. So far 4 + 4 + 5 + 1 = 14 failures from 127.0.0.1.
    for i in 0..6 {
        let (s, _, body) = try_sign_in(&w, &b, &format!("user{i}"), "wrong").await;
        assert_eq!(s, 401, "user{i}: {body}");
    }
    let (s, _, body) = try_sign_in(&w, &b, "user6", "wrong").await;
    assert_eq!(s, 429, "{body}");
    assert!(
        body.contains("Too many failed sign-ins from your network address."),
        "{body}"
    );
    // Failed OIDC callbacks count against the address too: refused before the code is
    // looked at.
    let r = forged_callback(&w, &b).await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Try again after"));
}

/// A callback that does not belong to this browser's sign-in (no sign-in started).
async fn forged_callback(w: &common::World, b: &reqwest::Client) -> reqwest::Response {
    b.get(format!(
        "{}/console/oidc/callback?code=abc&state=forged",
        w.connector
    ))
    .send()
    .await
    .unwrap()
}

/// Follows the OIDC sign-in through the Entra sandbox's form as `login`; the final answer
/// of the console's callback.
pub async fn oidc_sign_in(
    w: &common::World,
    b: &reqwest::Client,
    login: &str,
) -> reqwest::Response {
    let r = b
        .get(format!("{}/console/oidc/start", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(w.ready["entra"]["authorize_url"].as_str().unwrap()));
    assert!(authorize.contains("code_challenge_method=S256"));
    let r = b.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    // Submit the form as a browser would: its hidden fields plus the credentials.
    let mut form: Vec<(String, String)> = Vec::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let name = part
            .split("name=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let value = part
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let value = value.replace("&amp;", "&").replace("&quot;", "\"");
        form.push((name.to_owned(), value));
    }
    form.push(("login".into(), login.into()));
    form.push((
        "password".into(),
        w.ready["entra"]["user_password"].as_str().unwrap().into(),
    ));
    let action = authorize.split("?").next().unwrap();
    let r = b.post(action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/console/oidc/callback?", w.connector)));
    b.get(&callback).send().await.unwrap()
}

#[tokio::test]
async fn oidc_sign_in_at_the_entra_sandbox_admits_only_allowed_users() {
    let w = start_console().await;
    let b = browser();
    let r = oidc_sign_in(&w, &b, ADELE_UPN).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/shipments");
    let (s, html) = get(&w, &b, "/console/shipments").await;
    assert_eq!(s, 200);
    // Allowed by her object id; the UPN (not verified by default) is shown with it.
    let oid = adele_oid(&w.ready);
    assert!(
        html.contains(&format!(
            "Signed in as <strong>{ADELE_UPN} ({oid})</strong>"
        )),
        "{html}"
    );

    // Alex is in the tenant but not allowed to use the console.
    let b = browser();
    let r = oidc_sign_in(&w, &b, ALEX_UPN).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not allowed to use this console")
    );
    let r = b
        .get(format!("{}/console/shipments", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // A callback that does not belong to this browser's sign-in.
    let b = browser();
    let r = forged_callback(&w, &b).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_sandbox_connector_config_turns_the_console_on_with_entra_sign_in() {
    let w = start_console().await;
    let path = w.dir.join("sandbox-connector.toml");
    connector::sandbox_config::write_file(&path, &w.ready).unwrap();
    let c = connector::Config::load(Some(&path)).unwrap();
    let console = c.console.expect("[console] written");
    let oidc = console.oidc.expect("OIDC at the Entra sandbox");
    assert_eq!(oidc.issuer, w.ready["entra"]["issuer"].as_str().unwrap());
    // The first seeded user, by object id.
    let first = w.ready["entra"]["users"][0].as_str().unwrap();
    assert_eq!(
        oidc.allowed_users,
        vec![
            w.ready["entra"]["user_ids"][first]
                .as_str()
                .unwrap()
                .to_owned()
        ]
    );
    assert!(!oidc.issuer_verifies_email);
    assert!(console.admin_user.is_none(), "no password written in clear");
}

#[test]
fn console_config_names_the_key_at_fault_and_passwords_verify() {
    let hash = connector::console::auth::hash_password(PASSWORD).unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(connector::console::auth::verify_password(PASSWORD, &hash));
    assert!(!connector::console::auth::verify_password("other", &hash));
    let base = |console: &str| {
        format!(
            "database_url = \"sqlite::memory:\"\nmaster_key = \"{}\"\nye_api_base_url = \"http://127.0.0.1:1/v1\"\nyed_api_token = \"t\"\nye_jwks_transport_endpoint = \"http://127.0.0.1:1/.well-known/t\"\nye_jwks_sign_endpoint = \"http://127.0.0.1:1/.well-known/s\"\nazure_tenant_id = \"t\"\nentra_fido_api_client_id = \"c\"\nentra_fido_api_client_secret = \"s\"\nauth_issuer = \"http://127.0.0.1:1/i\"\nauth_jwks_url = \"http://127.0.0.1:1/k\"\nallowed_audiences = [\"a\"]\nallowed_client_apps = [\"b\"]\n{console}",
            connector::secrets::MasterKey::generate()
                .unwrap()
                .to_base64()
                .as_str()
        )
    };
    for (section, key) in [
        (
            "[console]\nadmin_user = \"admin\"\n",
            "console.admin_password_hash",
        ),
        (
            "[console]\nadmin_user = \"admin\"\nadmin_password_hash = \"plain\"\n",
            "console.admin_password_hash",
        ),
        ("[console]\n", "console.admin_user"),
        (
            "[console]\noidc_issuer = \"http://127.0.0.1:1/i\"\noidc_client_id = \"c\"\noidc_client_secret = \"s\"\n",
            "console.oidc_allowed_users",
        ),
        ("[console]\nnope = 1\n", "console.nope"),
    ] {
        let e = connector::Config::from_parts(&base(section), Default::default())
            .err()
            .unwrap_or_else(|| panic!("{section} must be refused"));
        assert_eq!(e.key, key, "{section}");
    }
    for (keys, key) in [
        ("signin_max_failures = 0", "console.signin_max_failures"),
        (
            "signin_lockout_minutes = \"soon\"",
            "console.signin_lockout_minutes",
        ),
    ] {
        let section = format!(
            "[console]\nadmin_user = \"admin\"\nadmin_password_hash = \"{hash}\"\n{keys}\n"
        );
        let e = connector::Config::from_parts(&base(&section), Default::default())
            .err()
            .unwrap_or_else(|| panic!("{keys} must be refused"));
        assert_eq!(e.key, key, "{keys}");
    }
    let ok = connector::Config::from_parts(
        &base(&format!(
            "[console]\nadmin_user = \"admin\"\nadmin_password_hash = \"{hash}\"\n"
        )),
        Default::default(),
    )
    .unwrap();
    assert!(
        !format!("{:?}", ok.console).contains(&hash),
        "no hash in Debug"
    );
    let console = ok.console.unwrap();
    assert_eq!(
        (console.signin_max_failures, console.signin_lockout_minutes),
        (5, 15),
        "the defaults"
    );
    let tuned = connector::Config::from_parts(
        &base(&format!(
            "[console]\nadmin_user = \"admin\"\nadmin_password_hash = \"{hash}\"\nsignin_max_failures = 3\nsignin_lockout_minutes = 60\n"
        )),
        Default::default(),
    )
    .unwrap()
    .console
    .unwrap();
    assert_eq!(
        (tuned.signin_max_failures, tuned.signin_lockout_minutes),
        (3, 60)
    );
}

#[tokio::test]
async fn the_console_runs_on_postgresql_too() {
    let db = pg::TestDb::create("prereg_console").await;
    {
        let w = start_console_on(db.url.clone()).await;
        let (alex, _) = order(&w, ALEX).await;
        let (diego, _) = order(&w, DIEGO).await;
        w.advance().await;
        w.advance().await;
        w.process().await;
        let serial = w.shipment(&alex).await["serial_number"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = browser();
        let csrf = sign_in(&w, &b).await;
        let rows = |html: &str| html.matches("<tr data-id=").count();
        let (_, by_serial) = get(&w, &b, &format!("/console/shipments?q={serial}")).await;
        assert_eq!(rows(&by_serial), 1, "{by_serial}");
        assert!(by_serial.contains(&format!("data-id=\"{alex}\"")));
        let (_, pct) = get(&w, &b, "/console/shipments?q=_%25").await;
        assert_eq!(rows(&pct), 0);
        let (_, sorted) = get(
            &w,
            &b,
            "/console/shipments?sort=user&dir=desc&state=complete",
        )
        .await;
        assert_eq!(rows(&sorted), 2);
        assert!(sorted.find(&diego).unwrap() < sorted.find(&alex).unwrap());
        let (s, d) = get(&w, &b, &format!("/console/shipments/{alex}")).await;
        assert_eq!(s, 200);
        assert!(d.contains(&serial));
        let (s, _, _) = post(&w, &b, "/console/logout", &[("csrf", &csrf)]).await;
        assert_eq!(s, 303);
        w.state.store.close().await;
    }
    db.drop_db().await;
}

#[tokio::test]
async fn without_a_console_section_nothing_is_served_under_console() {
    let w = common::start().await;
    for p in ["/console", "/console/login", "/console/static/htmx.min.js"] {
        let r = w
            .http
            .get(format!("{}{p}", w.connector))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
}
