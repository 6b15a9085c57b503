//! The Okta sandbox and client behaving as Okta publishes (issue 15): the event hook
//! lifecycle, cursor pagination by `Link` headers, `private_key_jwt` with RSA (RS256) as
//! well as EC (ES256) keys, and the PIN mailed to the primary and secondary e-mail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common::*;
use ::okta::{Auth, Client, User};
use reqwest::Method;
use sandbox::Config;
use secrecy::SecretString;
use serde_json::{Value, json};

/// A hook listener that answers the verification GET (echoing the challenge).
async fn hook_listener() -> String {
    async fn get(headers: axum::http::HeaderMap) -> axum::Json<Value> {
        let c = headers
            .get(::okta::hooks::VERIFICATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        axum::Json(json!({ "verification": c }))
    }
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::get(get).post(|| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn hook_body(name: &str, uri: &str) -> Value {
    json!({
        "name": name,
        "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": uri, "headers": [],
            "authScheme": {"type": "HEADER", "key": "Authorization", "value": "hook-secret"}}}
    })
}

fn ssws(sb: &Sb) -> Client {
    Client::new(
        &sb.okta_url,
        Auth::Ssws(SecretString::from(SSWS.to_owned())),
    )
    .unwrap()
}

#[tokio::test]
async fn an_active_event_hook_cannot_be_deleted_until_it_is_deactivated() {
    let sb = start().await;
    let uri = hook_listener().await;
    let (s, hook) = sb
        .okta(
            Method::POST,
            "/api/v1/eventHooks",
            Some(hook_body("h", &uri)),
        )
        .await;
    assert_eq!(s, 200, "{hook}");
    assert_eq!(hook["status"], "ACTIVE");
    let id = hook["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/eventHooks/{id}");
    // DELETE while ACTIVE: 400 in Okta's error shape, saying what to do.
    let (s, v) = sb.okta(Method::DELETE, &path, None).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errorCode"], "E0000001");
    assert_eq!(v["errorSummary"], "Api validation failed: eventHook");
    let cause = v["errorCauses"][0]["errorSummary"].as_str().unwrap();
    assert!(
        cause.contains("INACTIVE") && cause.contains("deactivate"),
        "{cause}"
    );
    // Deactivate, activate, deactivate: the status follows.
    let (s, v) = sb
        .okta(Method::POST, &format!("{path}/lifecycle/deactivate"), None)
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("INACTIVE")), "{v}");
    let (s, v) = sb
        .okta(Method::POST, &format!("{path}/lifecycle/activate"), None)
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ACTIVE")), "{v}");
    let (s, v) = sb
        .okta(Method::POST, &format!("{path}/lifecycle/deactivate"), None)
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("INACTIVE")), "{v}");
    // Now it can go.
    let (s, _) = sb.okta(Method::DELETE, &path, None).await;
    assert_eq!(s, 204);
    let (s, v) = sb.okta(Method::GET, &path, None).await;
    assert_eq!((s, v["errorCode"].as_str()), (404, Some("E0000007")));
    let (s, _) = sb
        .okta(Method::POST, &format!("{path}/lifecycle/activate"), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn an_event_hook_is_replaced_by_put_and_a_new_uri_needs_verifying_again() {
    let sb = start().await;
    let uri = hook_listener().await;
    let (_, hook) = sb
        .okta(
            Method::POST,
            "/api/v1/eventHooks",
            Some(hook_body("first", &uri)),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/eventHooks/{id}");
    let (s, v) = sb
        .okta(Method::POST, &format!("{path}/lifecycle/verify"), None)
        .await;
    assert_eq!(
        (s, v["verificationStatus"].as_str()),
        (200, Some("VERIFIED"))
    );
    // Same URI, new name and events, the auth value left out: kept, still verified.
    let mut body = hook_body("renamed", &uri);
    body["events"]["items"] = json!([
        "group.user_membership.add",
        ::okta::hooks::PREREGISTRATION_EVENT
    ]);
    body["channel"]["config"]["authScheme"]
        .as_object_mut()
        .unwrap()
        .remove("value");
    let (s, v) = sb.okta(Method::PUT, &path, Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["created"], hook["created"]);
    assert_eq!(v["verificationStatus"], "VERIFIED");
    assert_eq!(v["events"]["items"].as_array().unwrap().len(), 2);
    assert!(v["channel"]["config"]["authScheme"].get("value").is_none());
    // A new URI: unverified until verified again.
    let other = hook_listener().await;
    let (s, v) = sb
        .okta(Method::PUT, &path, Some(hook_body("moved", &other)))
        .await;
    assert_eq!(
        (s, v["verificationStatus"].as_str()),
        (200, Some("UNVERIFIED")),
        "{v}"
    );
    // The body is checked like a create.
    let (s, _) = sb
        .okta(
            Method::PUT,
            &path,
            Some(hook_body("far", "https://example.com/hook")),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .okta(
            Method::PUT,
            "/api/v1/eventHooks/whoNoSuchHook",
            Some(hook_body("x", &uri)),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_client_runs_the_hook_lifecycle_and_deletes_by_deactivating_first() {
    let sb = start().await;
    let c = ssws(&sb);
    let uri = hook_listener().await;
    let hook: ::okta::hooks::EventHook = serde_json::from_value(hook_body("c", &uri)).unwrap();
    let made = c.create_event_hook(&hook).await.unwrap();
    let id = made.id.clone().unwrap();
    c.verify_event_hook(&id).await.unwrap();
    assert_eq!(
        c.deactivate_event_hook(&id)
            .await
            .unwrap()
            .status
            .as_deref(),
        Some("INACTIVE")
    );
    assert_eq!(
        c.activate_event_hook(&id).await.unwrap().status.as_deref(),
        Some("ACTIVE")
    );
    let mut renamed = hook.clone();
    renamed.name = "c2".into();
    assert_eq!(
        c.replace_event_hook(&id, &renamed).await.unwrap().name,
        "c2"
    );
    // The hook is ACTIVE: the helper deactivates, then deletes.
    c.delete_event_hook(&id).await.unwrap();
    assert!(c.list_event_hooks().await.unwrap().is_empty());
}

/// `Link` header values of an answer.
fn links(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn user_and_member_lists_are_paged_with_link_headers_as_okta_does() {
    let sb = start().await;
    let get = |path: String| {
        sb.http
            .get(format!("{}{path}", sb.okta_url))
            .header("Authorization", format!("SSWS {SSWS}"))
            .send()
    };
    // Two per page: self and next, the next cursor after the page's last user.
    let r = get("/api/v1/users?limit=2".into()).await.unwrap();
    let l = links(&r);
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(
        l.iter()
            .any(|h| h == &format!("<{}/api/v1/users?limit=2>; rel=\"self\"", sb.okta_url)),
        "{l:?}"
    );
    let last = page[1]["id"].as_str().unwrap();
    let next = format!("{}/api/v1/users?after={last}&limit=2", sb.okta_url);
    assert!(l.contains(&format!("<{next}>; rel=\"next\"")), "{l:?}");
    // Walking the next links visits every user once; the last page has no next.
    let mut seen: Vec<String> = page
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let mut url = Some(next);
    while let Some(u) = url {
        let r = sb
            .http
            .get(&u)
            .header("Authorization", format!("SSWS {SSWS}"))
            .send()
            .await
            .unwrap();
        let l = links(&r);
        let page: Vec<Value> = r.json().await.unwrap();
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        url = l.iter().find(|h| h.ends_with("rel=\"next\"")).map(|h| {
            h.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
    }
    let all = sb.okta.seed().users.len();
    assert_eq!(seen.len(), all);
    seen.dedup();
    assert_eq!(seen.len(), all);
    // A search is kept in the links.
    let r = get("/api/v1/users?search=status%20eq%20%22ACTIVE%22&limit=1".into())
        .await
        .unwrap();
    let l = links(&r);
    assert!(
        l.iter().any(|h| h.contains("search=status%20eq%20%22ACTIVE%22") && h.ends_with("rel=\"next\"")),
        "{l:?}"
    );
    // Group members likewise.
    let (_, groups) = sb.okta(Method::GET, "/api/v1/groups", None).await;
    let gid = groups[0]["id"].as_str().unwrap();
    let r = get(format!("/api/v1/groups/{gid}/users?limit=1"))
        .await
        .unwrap();
    let l = links(&r);
    let members: Vec<Value> = r.json().await.unwrap();
    assert_eq!(members.len(), 1);
    assert!(l.iter().any(|h| h.ends_with("rel=\"self\"")), "{l:?}");
}

#[tokio::test]
async fn the_client_follows_next_links_for_users_and_group_members() {
    // A larger org, so that the client's pages (200) run out.
    let mut config = Config::for_tests();
    let template = config.okta_seed.users[0].clone();
    let mut ids = Vec::new();
    for i in 0..450 {
        let mut u: User = template.clone();
        u.id = format!("00ubulk{i:012}");
        u.profile.login = format!("bulk{i}@example.com");
        u.profile.email = Some(u.profile.login.clone());
        ids.push(u.id.clone());
        config.okta_seed.users.push(u);
    }
    config.okta_seed.groups[0]
        .members
        .extend(ids.iter().cloned());
    let gid = config.okta_seed.groups[0].group.id.clone();
    let group_size = config.okta_seed.groups[0].members.len();
    let total = config.okta_seed.users.len();
    let sb = start_with(config).await;
    let c = ssws(&sb);
    let users = c.list_users(None).await.unwrap();
    assert_eq!(users.len(), total);
    let mut unique: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total);
    let members = c.list_group_members(&gid).await.unwrap();
    assert_eq!(members.len(), group_size);
    let found = c
        .list_users(Some("profile.login sw \"bulk44\""))
        .await
        .unwrap();
    assert_eq!(found.len(), 11, "bulk44 and bulk440..=449");
}

/// An RSA key pair: (PKCS#8 PEM, public JWK with `kid`).
fn rsa_service_key(kid: &str) -> (String, Value) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let public = pair.public_key();
    let jwk = json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": url.encode(public.modulus().big_endian_without_leading_zero()),
        "e": url.encode(public.exponent().big_endian_without_leading_zero()),
    });
    (pem, jwk)
}

#[tokio::test]
async fn private_key_jwt_works_with_rsa_keys_as_well_as_ec_keys() {
    let mut config = Config::for_tests();
    let (pem, jwk) = rsa_service_key("rsa-key-1");
    config
        .okta_seed
        .service_apps
        .push(sandbox::okta::seed::ServiceApp {
            client_id: "0oarsaserviceapp001".into(),
            jwk,
            scopes: vec!["okta.users.read".into(), "okta.users.manage".into()],
        });
    let sb = start_with(config).await;
    let client = |client_id: &str, key: &str, kid: &str| {
        Client::new(
            &sb.okta_url,
            Auth::PrivateKeyJwt {
                client_id: client_id.into(),
                private_key_pem: SecretString::from(key.to_owned()),
                kid: kid.into(),
                scopes: ::okta::SCOPES.into(),
            },
        )
        .unwrap()
    };
    // RS256 with the RSA key (Okta's default), chosen by the key's type.
    let rsa = client("0oarsaserviceapp001", &pem, "rsa-key-1");
    assert_eq!(
        rsa.assertion_algorithm(),
        Some(jsonwebtoken::Algorithm::RS256)
    );
    assert_eq!(rsa.get_user(ALICE).await.unwrap().id, ALICE);
    // ES256 with the seeded EC key.
    let ec = client(
        sandbox::okta::seed::DEFAULT_CLIENT_ID,
        sandbox::okta::seed::DEFAULT_CLIENT_PRIVATE_KEY_PEM,
        sandbox::okta::seed::DEFAULT_CLIENT_KID,
    );
    assert_eq!(
        ec.assertion_algorithm(),
        Some(jsonwebtoken::Algorithm::ES256)
    );
    assert_eq!(ec.get_user(ALICE).await.unwrap().id, ALICE);
    // A key that is not the one registered is refused by the token endpoint.
    let (other, _) = rsa_service_key("rsa-key-1");
    let e = client("0oarsaserviceapp001", &other, "rsa-key-1")
        .get_user(ALICE)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid_client"), "{e}");
    // An RSA key signing for an app registered with an EC key: refused, and says why.
    let e = client(
        sandbox::okta::seed::DEFAULT_CLIENT_ID,
        &pem,
        sandbox::okta::seed::DEFAULT_CLIENT_KID,
    )
    .get_user(ALICE)
    .await
    .unwrap_err();
    assert!(e.to_string().contains("ES256"), "{e}");
    // Not a key at all: refused when the client is made, without echoing it.
    let e = Client::new(
        &sb.okta_url,
        Auth::PrivateKeyJwt {
            client_id: "x".into(),
            private_key_pem: SecretString::from(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
            ),
            kid: "k".into(),
            scopes: ::okta::SCOPES.into(),
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("service app key"), "{e}");
}

#[tokio::test]
async fn send_pin_mails_the_primary_and_the_secondary_email_of_an_active_user() {
    let sb = start().await;
    let enrolled = sb.enroll(ALICE, &[RP]).await;
    let shipped = sb.fulfil(&enrolled).await;
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/activate"),
            Some(sb.activate_body(ALICE, &enrolled, &shipped).await),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let fid = enrolled["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(json!({"authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": ALICE})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let mail = sb.mail().await;
    assert_eq!(mail.len(), 1, "one message");
    assert_eq!(
        mail[0]["to"],
        json!(["alice.anders@example.com", "alice.personal@example.net"]),
        "primary first, then secondary"
    );
}
