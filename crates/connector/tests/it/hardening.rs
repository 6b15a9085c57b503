//! Hardening at the edge: the body limit on every route, the console's allow-list by
//! object id, `trusted_proxies` (which client the console's throttling counts and
//! whether its cookies stay `Secure`), and https-only fulfiller URLs for the cards'
//! commands (the configuration's own URL rule is tested in `engine::config`).

use crate::common::{self, World};
use crate::console_common::{ADELE_UPN, ADMIN, PASSWORD, browser, console_toml, input_value};
use crate::console_http::oidc_sign_in;
use crate::okta_common;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A body one byte over the default `max_body_bytes` (65536).
fn oversized() -> String {
    "x".repeat(65_537)
}

async fn assert_too_large(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 413, "{what}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], "api_error", "{what}: {v}");
    assert_eq!(
        v["error_data"]["error_type"], "payload_too_large",
        "{what}: {v}"
    );
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes"),
        "{what}: {v}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_on_every_route_group() {
    let hash = connector::console::auth::hash_password(PASSWORD).unwrap();
    let w = okta_common::start_with(okta_common::Options {
        extra_toml: format!(
            "\n[console]\nadmin_user = \"{ADMIN}\"\nadmin_password_hash = \"{hash}\"\n"
        ),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let token = w.token().await;
    // Entra API, Okta API (the batch and the event hook), the cards: JSON bodies, with
    // and without a valid token (the limit comes first).
    for path in [
        "/v1/fprRequest",
        "/v1/fpr/shipments",
        "/v1/okta/batch",
        "/v1/okta/events",
        "/v1/yubico/shipments",
        "/v1/yubico/shipment-items",
    ] {
        let r = http
            .post(format!("{}{path}", w.connector))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!("{{\"pad\":\"{}\"}}", oversized()))
            .send()
            .await
            .unwrap();
        assert_too_large(r, path).await;
    }
    // The CSV batch: a file over the limit, before its rows are read.
    let r = http
        .post(format!("{}/v1/batch", w.connector))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(format!("user,product\n{},1/1/C19881\n", oversized()))
        .send()
        .await
        .unwrap();
    assert_too_large(r, "/v1/batch").await;
    // The console's sign-in form.
    let r = http
        .post(format!("{}/console/login", w.connector))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=admin&password={}", oversized()))
        .send()
        .await
        .unwrap();
    assert_too_large(r, "/console/login").await;

    // A body that does not declare its length (chunked) is cut off at the limit too.
    let addr = w.connector.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut req = format!(
        "POST /v1/yubico/shipments HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        req.extend_from_slice(format!("1000\r\n{}\r\n", "y".repeat(4096)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = tcp.write_all(&req).await;
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // A body within the limit still reaches the handler (here: refused for its content,
    // not its size).
    let r = http
        .post(format!("{}/v1/okta/batch", w.connector))
        .bearer_auth(&token)
        .json(&serde_json::json!({"users": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
}

/// The console world with `trusted_proxies` and a low failure limit (1 per user name,
/// 4 per address).
async fn start_console_behind(trusted_proxies: &str) -> World {
    let trusted = trusted_proxies.to_owned();
    common::start_full_with(
        sandbox::Config::for_tests(),
        None,
        move |ready| {
            format!(
                "trusted_proxies = {trusted}\n{}signin_max_failures = 1\n",
                console_toml(ready)
            )
        },
        true,
    )
    .await
}

/// Posts a wrong password for `user` with these extra headers; the status and body.
async fn fail_sign_in(w: &World, user: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let b = browser();
    let html = b
        .get(format!("{}/console/login", w.connector))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&html, "csrf");
    let mut req = b.post(format!("{}/console/login", w.connector)).form(&[
        ("csrf", csrf.as_str()),
        ("user", user),
        ("password", "wrong"),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const BLOCKED: &str = "Too many failed sign-ins from your network address.";

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_does_not_escape_throttling() {
    // Proxies are configured, but the test client (127.0.0.1) is not one of them.
    let w = start_console_behind("[\"10.0.0.0/8\"]").await;
    for i in 0..4 {
        let spoof = format!("198.51.100.{i}");
        let (s, body) = fail_sign_in(&w, &format!("user{i}"), &[("x-forwarded-for", &spoof)]).await;
        assert_eq!(s, 401, "attempt {i}: {body}");
    }
    // A fifth address in the header changes nothing: the peer's address is blocked.
    let (s, body) = fail_sign_in(&w, "user9", &[("x-forwarded-for", "203.0.113.77")]).await;
    assert_eq!(s, 429, "{body}");
    assert!(body.contains(BLOCKED), "{body}");
    // Nor does a forwarded scheme make the cookies Secure.
    let r = reqwest::Client::new()
        .get(format!("{}/console/login", w.connector))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_real_client_is_throttled_and_cookies_stay_secure() {
    let w = start_console_behind("[\"127.0.0.1\"]").await;
    // Client 203.0.113.7 fails four times (the proxy appends its address; whatever the
    // client wrote before that does not count).
    for i in 0..4 {
        let xff = format!("198.51.100.{i}, 203.0.113.7");
        let (s, body) = fail_sign_in(&w, &format!("user{i}"), &[("x-forwarded-for", &xff)]).await;
        assert_eq!(s, 401, "attempt {i}: {body}");
    }
    let (s, body) = fail_sign_in(&w, "user9", &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(s, 429, "{body}");
    assert!(body.contains(BLOCKED), "{body}");
    // Another client behind the same proxy is not blocked: its password is checked.
    let (s, body) = fail_sign_in(&w, "user10", &[("x-forwarded-for", "203.0.113.8")]).await;
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("Wrong user name or password."), "{body}");

    // The proxy says the client uses https: every console cookie is Secure, also the
    // session's after a sign-in.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let via_proxy = [
        ("x-forwarded-for", "203.0.113.20"),
        ("x-forwarded-proto", "https"),
    ];
    let mut req = http.get(format!("{}/console/login", w.connector));
    for (k, v) in via_proxy {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    let login_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let token = login_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let html = r.text().await.unwrap();
    assert_eq!(input_value(&html, "csrf"), token);
    let mut req = http
        .post(format!("{}/console/login", w.connector))
        .header("cookie", format!("prereg_console_login={token}"))
        .form(&[
            ("csrf", token.as_str()),
            ("user", ADMIN),
            ("password", PASSWORD),
        ]);
    for (k, v) in via_proxy {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("prereg_console="))
        .unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    // Without the header (the proxy speaks plain http to its client): not Secure.
    let r = http
        .get(format!("{}/console/login", w.connector))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// The console world whose OIDC allow-list names Adele by her UPN.
async fn start_console_allowing_upn(issuer_verifies_email: bool) -> World {
    common::start_full_with(
        sandbox::Config::for_tests(),
        None,
        move |ready| {
            let oid = ready["entra"]["user_ids"][ADELE_UPN].as_str().unwrap();
            let section = console_toml(ready).replace(oid, ADELE_UPN);
            format!("{section}oidc_issuer_verifies_email = {issuer_verifies_email}\n")
        },
        true,
    )
    .await
}

#[tokio::test]
async fn a_upn_in_the_allow_list_admits_nobody_unless_the_issuer_verifies_it() {
    // By default preferred_username and email are not trusted: a UPN in the list
    // matches no one, even its owner.
    let w = start_console_allowing_upn(false).await;
    let r = oidc_sign_in(&w, &browser(), ADELE_UPN).await;
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(body.contains("not allowed to use this console"), "{body}");

    // Marked as verifying them, the issuer's UPN is enough, and it is the session's name.
    let w = start_console_allowing_upn(true).await;
    let b = browser();
    let r = oidc_sign_in(&w, &b, ADELE_UPN).await;
    assert_eq!(r.status(), 303);
    let html = b
        .get(format!("{}/console/shipments", w.connector))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("Signed in as <strong>{ADELE_UPN}</strong>")),
        "{html}"
    );
}

#[test]
fn the_cards_commands_refuse_plain_http_to_a_remote_fulfiller() {
    use connector::okta::cards::FulfillerSettings;
    let settings = |sign: &'static str| {
        FulfillerSettings::from_env(move |k| {
            Some(
                match k {
                    "YE_API_BASE_URL" => "https://api.console.yubico.com/v1",
                    "YED_API_TOKEN" => "t",
                    "YE_JWKS_TRANSPORT_ENDPOINT" => {
                        "http://127.0.0.1:8700/.well-known/yubico-transport-keys.jwks"
                    }
                    "YE_JWKS_SIGN_ENDPOINT" => sign,
                    _ => return None,
                }
                .to_owned(),
            )
        })
    };
    let s = settings("http://keys.example.com/.well-known/yubico-sign.jwks");
    let e = s.jwks_urls().unwrap_err();
    assert!(
        e.starts_with("YE_JWKS_SIGN_ENDPOINT: ") && e.contains("use https://"),
        "{e}"
    );
    let s = settings("https://keys.example.com/.well-known/yubico-sign.jwks");
    assert!(s.jwks_urls().is_ok());
    assert!(s.client().is_ok());
}

#[tokio::test]
async fn with_its_own_tls_the_console_cookies_are_secure_whatever_an_untrusted_peer_says() {
    let dir = std::env::temp_dir().join(format!("prereg-tls-{}", uuid::Uuid::new_v4()));
    let certs = common::test_certs(&dir);
    let (cert, key) = (
        certs.cert_file.display().to_string(),
        certs.key_file.display().to_string(),
    );
    let w = common::start_full_with(
        sandbox::Config::for_tests(),
        None,
        move |ready| {
            format!(
                "tls_cert_file = {cert:?}\ntls_key_file = {key:?}\n{}",
                console_toml(ready)
            )
        },
        true,
    )
    .await;
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    for proto in [None, Some("http")] {
        let mut req = http.get(format!("{}/console/login", w.connector));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("; Secure"), "{proto:?}: {cookie}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
