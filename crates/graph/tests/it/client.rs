//! The client against a scripted Graph on 127.0.0.1: token caching, retries on 429
//! (Retry-After) and 5xx, no blind POST retries, a fresh token after a 401, paging, and
//! the manager's 404 read as "no manager".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use graph::{ApiVersion, GraphClient, GraphConfig, RetryPolicy};
use secrecy::SecretString;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (status, Retry-After seconds, body).
type Answer = (u16, Option<u64>, serde_json::Value);

#[derive(Clone, Default)]
struct Script {
    /// Answers for Graph calls, in order; when empty, 200 `{}`.
    answers: Arc<Mutex<VecDeque<Answer>>>,
    graph_calls: Arc<Mutex<Vec<(String, String)>>>,
    token_calls: Arc<Mutex<u32>>,
}

async fn token(State(s): State<Script>, body: String) -> Response {
    let n = {
        let mut c = s.token_calls.lock().unwrap();
        *c += 1;
        *c
    };
    assert!(body.contains("grant_type=client_credentials"), "{body}");
    assert!(
        body.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
        "{body}"
    );
    if body.contains("client_secret=wrong") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]})),
        )
            .into_response();
    }
    axum::Json(json!({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":format!("tok{n}")})).into_response()
}

async fn graph_route(State(s): State<Script>, uri: Uri, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    s.graph_calls.lock().unwrap().push((uri.to_string(), auth));
    let next = s.answers.lock().unwrap().pop_front();
    match next {
        None => axum::Json(json!({})).into_response(),
        Some((status, retry_after, body)) => {
            let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            r
        }
    }
}

async fn start(script: Script, secret: &str) -> GraphClient {
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/{*rest}", any(graph_route))
        .route("/beta/{*rest}", any(graph_route))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = GraphConfig::new(
        "contoso.onmicrosoft.com",
        "app-1",
        SecretString::from(secret),
    );
    cfg.authority_url = url.clone();
    cfg.graph_url = url;
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
    };
    GraphClient::new(cfg).unwrap()
}

fn err(code: &str) -> serde_json::Value {
    json!({"error":{"code":code,"message":"m","innerError":{"request-id":"r"}}})
}

fn push(s: &Script, status: u16, retry_after: Option<u64>, body: serde_json::Value) {
    s.answers
        .lock()
        .unwrap()
        .push_back((status, retry_after, body));
}

#[tokio::test]
async fn one_token_serves_many_calls() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    push(
        &s,
        200,
        None,
        json!({"id":"u1","displayName":"Adele Vance"}),
    );
    let u = c
        .get_user(ApiVersion::V1, "adele@contoso.com", &["id", "displayName"])
        .await
        .unwrap();
    assert_eq!(u.display_name.as_deref(), Some("Adele Vance"));
    c.get_user(ApiVersion::Beta, "u1", &[]).await.unwrap();
    assert_eq!(*s.token_calls.lock().unwrap(), 1);
    let calls = s.graph_calls.lock().unwrap().clone();
    assert_eq!(
        calls[0].0,
        "/v1.0/users/adele@contoso.com?%24select=id%2CdisplayName"
    );
    assert_eq!(calls[0].1, "Bearer tok1");
    assert_eq!(calls[1].0, "/beta/users/u1");
}

#[tokio::test]
async fn too_many_requests_is_retried_after_retry_after() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    let body = json!({"error":{"code":"TooManyRequests","message":"Please retry again later."}});
    push(&s, 429, Some(0), body.clone());
    push(&s, 429, Some(0), body);
    push(&s, 200, None, json!({"value":[]}));
    let m = c.list_fido2_methods(ApiVersion::Beta, "u1").await.unwrap();
    assert!(m.is_empty());
    assert_eq!(s.graph_calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_handed_back() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    push(&s, 429, Some(3600), err("TooManyRequests"));
    let e = c
        .list_fido2_methods(ApiVersion::V1, "u1")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert!(e.is_transient());
    assert!(matches!(
        e,
        graph::Error::Graph {
            retry_after: Some(3600),
            ..
        }
    ));
    assert_eq!(s.graph_calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_on_reads_until_the_budget_ends() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    for _ in 0..4 {
        push(&s, 502, None, err("badGateway"));
    }
    let e = c.get_user(ApiVersion::V1, "u1", &[]).await.unwrap_err();
    assert_eq!(e.status(), Some(502));
    assert_eq!(s.graph_calls.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_registration_is_not_resent_after_a_500_but_is_after_a_503() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    let body: graph::NewFido2Method = serde_json::from_str(
        r#"{"publicKeyCredential":{"id":"AQID","response":{"clientDataJSON":"e30","attestationObject":"oA"}}}"#,
    )
    .unwrap();
    push(&s, 500, None, err("generalException"));
    let e = c
        .register_fido2_method(ApiVersion::Beta, "u1", &body)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(s.graph_calls.lock().unwrap().len(), 1);

    push(&s, 503, Some(0), err("serviceNotAvailable"));
    push(
        &s,
        201,
        None,
        json!({"id":"m1","aaGuid":"a25342c0-3cdc-4414-8e46-f4807fca511c"}),
    );
    let m = c
        .register_fido2_method(ApiVersion::Beta, "u1", &body)
        .await
        .unwrap();
    assert_eq!(m.id, "m1");
    assert_eq!(s.graph_calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_refused_token_is_renewed_once() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    push(&s, 401, None, err("InvalidAuthenticationToken"));
    push(&s, 200, None, json!({"id":"u1"}));
    c.get_user(ApiVersion::V1, "u1", &[]).await.unwrap();
    assert_eq!(*s.token_calls.lock().unwrap(), 2);
    let calls = s.graph_calls.lock().unwrap().clone();
    assert_eq!(calls[1].1, "Bearer tok2");

    push(&s, 401, None, err("InvalidAuthenticationToken"));
    push(&s, 401, None, err("InvalidAuthenticationToken"));
    let e = c.get_user(ApiVersion::V1, "u1", &[]).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn no_manager_is_none_and_other_errors_stay_errors() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    push(&s, 404, None, err("Request_ResourceNotFound"));
    assert!(
        c.get_manager(ApiVersion::V1, "u1", &[])
            .await
            .unwrap()
            .is_none()
    );
    push(&s, 403, None, err("Authorization_RequestDenied"));
    let e = c.get_manager(ApiVersion::V1, "u1", &[]).await.unwrap_err();
    assert_eq!(e.graph_code(), Some("Authorization_RequestDenied"));
    assert!(e.to_string().contains("admin consent"), "{e}");
}

#[tokio::test]
async fn members_follow_next_links() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    let base = c
        .tokens()
        .token_url()
        .split("/contoso")
        .next()
        .unwrap()
        .to_owned();
    push(
        &s,
        200,
        None,
        json!({"value":[{"id":"a"}],"@odata.nextLink":format!("{base}/v1.0/groups/g/members?$skiptoken=2")}),
    );
    push(&s, 200, None, json!({"value":[{"id":"b"},{"id":"c"}]}));
    let m = c.group_members(ApiVersion::V1, "g", &["id"]).await.unwrap();
    assert_eq!(
        m.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[tokio::test]
async fn creation_option_urls_and_limits() {
    let s = Script::default();
    let c = start(s.clone(), "secret").await;
    let opts = json!({"publicKey":{"rp":{"id":"login.microsoft.com","name":"Microsoft"},"user":{"id":"T0Y6","name":"a","displayName":"A"},"challenge":"c"}});
    push(&s, 200, None, opts.clone());
    push(&s, 200, None, opts);
    c.creation_options(ApiVersion::Beta, "u1", Some(20160))
        .await
        .unwrap();
    c.creation_options(ApiVersion::V1, "u1", None)
        .await
        .unwrap();
    let calls = s.graph_calls.lock().unwrap().clone();
    assert_eq!(
        calls[0].0,
        "/beta/users/u1/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=20160)"
    );
    assert_eq!(
        calls[1].0,
        "/v1.0/users/u1/authentication/fido2Methods/creationOptions"
    );
    assert!(
        c.creation_options(ApiVersion::V1, "u1", Some(60))
            .await
            .is_err()
    );
    assert!(
        c.creation_options(ApiVersion::Beta, "u1", Some(4))
            .await
            .is_err()
    );
    assert!(
        c.creation_options(ApiVersion::Beta, "u1", Some(43201))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_wrong_secret_is_reported_without_the_secret() {
    let s = Script::default();
    let c = start(s.clone(), "wrong").await;
    let e = c.get_user(ApiVersion::V1, "u1", &[]).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(text.contains("check the client secret"), "{text}");
    assert!(!text.contains("wrong"), "{text}");
    assert!(!format!("{c:?}").contains("wrong"));
}
