//! The console's test world: the sandboxes and the connector with a `[console]` section
//! (a local admin, and OIDC against the Entra sandbox), and a signed-in browser-like
//! HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use crate::common::{World, guide_request};
use reqwest::Method;
use serde_json::Value;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct horse battery staple";
pub const DIEGO: &str = "e20b6389-79c1-517b-96c2-51e4d70e0724";
pub const ADELE_UPN: &str = "AdeleV@contoso.onmicrosoft.com";
pub const ALEX_UPN: &str = "AlexW@contoso.onmicrosoft.com";

/// Adele's object id (the `oid` of her id_token) in the Entra sandbox.
pub fn adele_oid(ready: &Value) -> String {
    ready["entra"]["user_ids"][ADELE_UPN]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `[console]` section: the local admin, and sign-in at the Entra sandbox for Adele
/// (allowed by her object id).
pub fn console_toml(ready: &Value) -> String {
    let hash = connector::console::auth::hash_password(PASSWORD).unwrap();
    let e = &ready["entra"];
    let oid = adele_oid(ready);
    format!(
        "\n[console]\nadmin_user = \"{ADMIN}\"\nadmin_password_hash = \"{hash}\"\noidc_issuer = {}\noidc_client_id = {}\noidc_client_secret = {}\noidc_allowed_users = [\"{oid}\"]\n",
        e["issuer"], e["connector_app"]["client_id"], e["connector_app"]["client_secret"],
    )
}

/// The world with the console on (PINs to the webhook receiver).
pub async fn start_console() -> World {
    crate::common::start_full_with(sandbox::Config::for_tests(), None, console_toml, true).await
}

/// The world with the console on, on this database.
pub async fn start_console_on(database_url: String) -> World {
    crate::common::start_full_with(
        sandbox::Config::for_tests(),
        Some(database_url),
        console_toml,
        true,
    )
    .await
}

/// A client with a cookie jar that does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `<input ... name="{name}" value="...">` in a page.
pub fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Signs in with the local admin account; the session's CSRF token.
pub async fn sign_in(w: &World, b: &reqwest::Client) -> String {
    let r = b
        .get(format!("{}/console/login", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let csrf = input_value(&html, "csrf");
    let r = b
        .post(format!("{}/console/login", w.connector))
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["location"], "/console/shipments");
    let html = get(w, b, "/console/shipments").await.1;
    assert!(
        html.contains("Signed in as <strong>admin</strong>"),
        "{html}"
    );
    input_value(&html, "csrf")
}

/// GET a console path; (status, body).
pub async fn get(w: &World, b: &reqwest::Client, path: &str) -> (u16, String) {
    let r = b
        .get(format!("{}{path}", w.connector))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// POST a console form; (status, Location, body).
pub async fn post(
    w: &World,
    b: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let r = b
        .post(format!("{}{path}", w.connector))
        .form(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (s, loc, r.text().await.unwrap())
}

/// Orders a key for `user` through the API; its request id and shipment id.
pub async fn order(w: &World, user: &str) -> (String, String) {
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(user)))
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["data"]["request_id"].as_str().unwrap().to_owned(),
        v["data"]["shipment_id"].as_str().unwrap().to_owned(),
    )
}

/// The `<input type="hidden" name=... value=...>` fields of the form `id="{form_id}"`,
/// in order (HTML entities decoded), as a browser would submit them.
pub fn hidden_inputs(html: &str, form_id: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("id=\"{form_id}\""))
        .unwrap_or_else(|| panic!("no form {form_id} in {html}"));
    let html = &html[start..];
    let html = &html[..html.find("</form>").unwrap()];
    let attr = |tag: &str, name: &str| -> String {
        let at = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let v = &tag[at..];
        v[..v.find('"').unwrap()]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find('>').unwrap()];
            (attr(tag, "name"), attr(tag, "value"))
        })
        .collect()
}
