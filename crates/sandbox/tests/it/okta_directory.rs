//! The Okta sandbox's management API, OAuth token service and event hooks, and the
//! `okta` crate's client against them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common::*;
use ::okta::{Auth, Client, ClientError};
use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread")]
async fn users_read_by_id_or_login_with_shipping_fields_some_missing() {
    let sb = start().await;
    let (s, v) = sb
        .okta(Method::GET, "/api/v1/users/alice.anders@example.com", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], ALICE);
    assert_eq!(v["profile"]["zipCode"], "94105");
    assert_eq!(v["profile"]["countryCode"], "US");
    let (_, dave) = sb
        .okta(Method::GET, "/api/v1/users/00usandboxdave00004", None)
        .await;
    assert_eq!(dave["status"], "STAGED");
    assert!(
        dave["profile"].get("streetAddress").is_none(),
        "Dave has no address"
    );
    let (s, v) = sb
        .okta(Method::GET, "/api/v1/users/nobody@example.com", None)
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (404, "E0000007"));
    for k in ["errorSummary", "errorLink", "errorId", "errorCauses"] {
        assert!(v.get(k).is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_search_filters_and_refuses_bad_expressions() {
    let sb = start().await;
    let (s, v) = sb
        .okta(
            Method::GET,
            "/api/v1/users?search=status%20eq%20%22STAGED%22",
            None,
        )
        .await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["00usandboxcarol0003", "00usandboxdave00004"]);
    let (_, v) = sb.okta(Method::GET, "/api/v1/users?search=profile.email%20eq%20%22bob.brown@example.com%22%20and%20status%20eq%20%22ACTIVE%22", None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = sb
        .okta(
            Method::GET,
            "/api/v1/users?search=profile.email%20=%3D%20bob",
            None,
        )
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (400, "E0000031"));
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_members_and_membership_changes() {
    let sb = start().await;
    let (_, groups) = sb.okta(Method::GET, "/api/v1/groups?q=YubiKey", None).await;
    assert_eq!(groups.as_array().unwrap().len(), 2);
    let gid = "00gsandboxyk5nfc001";
    let (_, members) = sb
        .okta(Method::GET, &format!("/api/v1/groups/{gid}/users"), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    let (s, _) = sb
        .okta(
            Method::PUT,
            &format!("/api/v1/groups/{gid}/users/{BOB}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, members) = sb
        .okta(Method::GET, &format!("/api/v1/groups/{gid}/users"), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    let (_, bobs) = sb
        .okta(Method::GET, &format!("/api/v1/users/{BOB}/groups"), None)
        .await;
    assert!(bobs.as_array().unwrap().iter().any(|g| g["id"] == gid));
    let (s, _) = sb
        .okta(
            Method::DELETE,
            &format!("/api/v1/groups/{gid}/users/{BOB}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = sb
        .okta(
            Method::PUT,
            &format!("/api/v1/groups/00gnope/users/{BOB}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = sb.okta(Method::GET, "/api/v1/groups/00gnope", None).await;
    assert_eq!(s, 404);
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

async fn hook_get(headers: HeaderMap) -> axum::Json<Value> {
    let c = headers
        .get("x-okta-verification-challenge")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    axum::Json(json!({"verification": c}))
}

async fn hook_post(
    State(r): State<Received>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> axum::http::StatusCode {
    r.0.lock().unwrap().push((headers, body.0));
    axum::http::StatusCode::OK
}

#[tokio::test(flavor = "multi_thread")]
async fn event_hooks_verify_then_receive_membership_and_preregistration_events() {
    let sb = start().await;
    let received = Received::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::get(hook_get).post(hook_post))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (s, hook) = sb.okta(Method::POST, "/api/v1/eventHooks", Some(json!({
        "name": "prereg", "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add", ::okta::hooks::PREREGISTRATION_EVENT]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": hook_url, "headers": [],
            "authScheme": {"type": "HEADER", "key": "Authorization", "value": "hook-secret"}}}}))).await;
    assert_eq!(s, 200, "{hook}");
    assert_eq!(hook["verificationStatus"], "UNVERIFIED");
    assert!(
        hook["channel"]["config"]["authScheme"]
            .get("value")
            .is_none(),
        "the secret is not read back"
    );
    let id = hook["id"].as_str().unwrap();
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("/api/v1/eventHooks/{id}/lifecycle/verify"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["verificationStatus"], "VERIFIED");

    sb.okta(
        Method::PUT,
        &format!("/api/v1/groups/00gsandboxyk5nfc001/users/{BOB}"),
        None,
    )
    .await;
    let (s, _) = sb.okta(Method::POST, &format!("{PREREG}/initiate-fulfillment-request"), Some(json!({
        "userId": BOB, "fulfillmentProvider": "yubico",
        "fulfillmentData": [{"productId": "55", "customizationId": "RXJN83", "inventoryProductId": "106"}]}))).await;
    assert_eq!(s, 204);
    // Delivery is asynchronous: wait for both (bounded).
    for _ in 0..100 {
        if received.0.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = received.0.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let types: Vec<&str> = got
        .iter()
        .map(|(_, b)| b["data"]["events"][0]["eventType"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"group.user_membership.add"));
    assert!(types.contains(&::okta::hooks::PREREGISTRATION_EVENT));
    for (h, b) in &got {
        assert_eq!(h["authorization"], "hook-secret");
        let env: ::okta::hooks::EventEnvelope = serde_json::from_value(b.clone()).unwrap();
        assert_eq!(env.event_type, "com.okta.event_hook");
        if env.data.events[0].event_type == ::okta::hooks::PREREGISTRATION_EVENT {
            assert_eq!(
                env.data.events[0].debug_context["debugData"]["fulfillmentData"][0]["productId"],
                "55"
            );
            assert_eq!(env.data.events[0].target[0].id, BOB);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_that_does_not_echo_the_challenge_stays_unverified() {
    let sb = start().await;
    let (_, hook) = sb.okta(Method::POST, "/api/v1/eventHooks", Some(json!({
        "name": "bad", "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": format!("{}/sandbox/v1/state", sb.okta_url)}}}))).await;
    let id = hook["id"].as_str().unwrap();
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("/api/v1/eventHooks/{id}/lifecycle/verify"),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (_, v) = sb
        .okta(Method::GET, &format!("/api/v1/eventHooks/{id}"), None)
        .await;
    assert_eq!(v["verificationStatus"], "UNVERIFIED");
    let (s, _) = sb.okta(Method::POST, "/api/v1/eventHooks", Some(json!({
        "name": "far", "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": "https://example.com/hook"}}}))).await;
    assert_eq!(s, 400, "only loopback hook targets");
}

fn service_app_client(url: &str, scopes: &str) -> Client {
    Client::new(
        url,
        Auth::PrivateKeyJwt {
            client_id: sandbox::okta::seed::DEFAULT_CLIENT_ID.into(),
            private_key_pem: SecretString::from(
                sandbox::okta::seed::DEFAULT_CLIENT_PRIVATE_KEY_PEM.to_owned(),
            ),
            kid: sandbox::okta::seed::DEFAULT_CLIENT_KID.into(),
            scopes: scopes.into(),
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_okta_client_authenticates_with_private_key_jwt_or_ssws() {
    let sb = start().await;
    let c = service_app_client(&sb.okta_url, ::okta::SCOPES);
    let u = c.get_user("carol.chen@example.com").await.unwrap();
    assert_eq!(u.id, CAROL);
    assert_eq!(
        u.profile.second_email.as_deref(),
        Some("carol.home@example.net")
    );
    assert!(c.list_enrollments(CAROL).await.unwrap().is_empty());
    // Read-only scope: reads work, writes are refused with E0000006.
    let ro = service_app_client(&sb.okta_url, "okta.users.read");
    ro.get_user(CAROL).await.unwrap();
    match ro.mark_error(CAROL, "fwfx").await {
        Err(ClientError::Okta { status: 403, body }) => assert_eq!(body.error_code, "E0000006"),
        other => panic!("{other:?}"),
    }
    // A scope the app was not granted: the token service refuses.
    let greedy = service_app_client(&sb.okta_url, "okta.apps.manage");
    assert!(matches!(
        greedy.get_user(CAROL).await,
        Err(ClientError::Token(_))
    ));
    let ssws = Client::new(
        &sb.okta_url,
        Auth::Ssws(SecretString::from(SSWS.to_owned())),
    )
    .unwrap();
    match ssws.get_user("nobody").await {
        Err(ClientError::Okta { status: 404, body }) => assert_eq!(body.error_code, "E0000007"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_service_refuses_an_assertion_signed_by_another_key() {
    let sb = start().await;
    // A fresh P-256 key, not the one registered for the app.
    let other = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAtUGjly733WnbW9p\nzj8JNbSqKtvBTIPfnCtMOSP1b9ihRANCAAQNxAEHKNrlqwQqm3n582FzPYS465AV\npaQu6+cUgluW20XBFHYBg+mIgVxLTHTTDr6g181u3OqREQkDxs0zhYPS\n-----END PRIVATE KEY-----\n";
    let c = Client::new(
        &sb.okta_url,
        Auth::PrivateKeyJwt {
            client_id: sandbox::okta::seed::DEFAULT_CLIENT_ID.into(),
            private_key_pem: SecretString::from(other.to_owned()),
            kid: sandbox::okta::seed::DEFAULT_CLIENT_KID.into(),
            scopes: ::okta::SCOPES.into(),
        },
    )
    .unwrap();
    match c.get_user(CAROL).await {
        Err(ClientError::Token(why)) => assert!(why.contains("invalid_client"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_org_seed_debug_output_hides_the_api_tokens() {
    let seed = sandbox::okta::OrgSeed::default();
    let shown = format!("{seed:?}");
    assert!(!shown.contains(SSWS), "{shown}");
    assert!(shown.contains("[redacted]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_okta_client_retries_rate_limits_then_reports_oktas_429() {
    let sb = start().await;
    sb.okta.faults().set(sandbox::faults::FaultConfig {
        rate_limit_rate: 1.0,
        retry_after_secs: Some(0),
        ..Default::default()
    });
    let ssws = Client::new(
        &sb.okta_url,
        Auth::Ssws(SecretString::from(SSWS.to_owned())),
    )
    .unwrap();
    match ssws.get_user(ALICE).await {
        Err(ClientError::Okta { status: 429, body }) => assert_eq!(body.error_code, "E0000047"),
        other => panic!("{other:?}"),
    }
    sb.okta.faults().set(sandbox::faults::FaultConfig::none());
    assert_eq!(ssws.get_user(ALICE).await.unwrap().id, ALICE);
}
