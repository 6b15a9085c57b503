//! Fault injection is observable from a client, set per run or live, and never touches
//! `/sandbox/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use sandbox::faults::FaultConfig;
use serde_json::json;
use std::time::{Duration, Instant};
use yubienterprise::ErrorCode;

#[tokio::test]
async fn error_rate_1_answers_500_with_the_documented_body() {
    let mut cfg = sandbox::Config::for_tests();
    cfg.faults = FaultConfig {
        error_rate: 1.0,
        ..Default::default()
    };
    let sb = start_with(cfg).await;
    let e = sb.client.products().await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(500), Some(ErrorCode::InternalError))
    );
    assert!(e.is_transient());
    let e = sb.client.transport_keys().await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    // The sandbox endpoints still work, and turn it off.
    let (s, _) = sb
        .call(Method::PUT, "/sandbox/v1/faults", Some(json!({})))
        .await;
    assert_eq!(s, 200);
    sb.client.products().await.unwrap();
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sb = start().await;
    let (s, v) = sb
        .call(
            Method::PUT,
            "/sandbox/v1/faults",
            Some(json!({"rate_limit_rate": 1.0, "retry_after_secs": 7})),
        )
        .await;
    assert_eq!((s, v["rate_limit_rate"].as_f64()), (200, Some(1.0)));
    let e = sb.client.inventory().await.unwrap_err();
    match e {
        yubienterprise::ClientError::Api {
            status,
            body,
            retry_after,
        } => {
            assert_eq!(
                (status, body.code, retry_after),
                (429, ErrorCode::RateLimited, Some(7))
            );
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn dropped_connections_surface_as_transport_errors() {
    let sb = start().await;
    sb.call(
        Method::PUT,
        "/sandbox/v1/faults",
        Some(json!({"drop_rate": 1.0})),
    )
    .await;
    let e = sb.client.products().await.unwrap_err();
    assert!(
        matches!(e, yubienterprise::ClientError::Transport { .. }),
        "{e:?}"
    );
    assert!(e.is_transient());
}

#[tokio::test]
async fn latency_is_added_to_service_calls_only() {
    let sb = start().await;
    sb.call(
        Method::PUT,
        "/sandbox/v1/faults",
        Some(json!({"latency_ms": 300})),
    )
    .await;
    let t = Instant::now();
    sb.client.products().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    sb.call(Method::GET, "/sandbox/v1/faults", None).await;
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn a_fraction_fails_and_the_rest_succeeds() {
    let sb = start().await;
    sb.call(
        Method::PUT,
        "/sandbox/v1/faults",
        Some(json!({"error_rate": 0.5})),
    )
    .await;
    let mut ok = 0;
    let mut failed = 0;
    for _ in 0..200 {
        match sb.client.products().await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.status(), Some(500));
                failed += 1;
            }
        }
    }
    assert!(ok > 50 && failed > 50, "ok {ok}, failed {failed}");
    let (s, v) = sb
        .call(
            Method::PUT,
            "/sandbox/v1/faults",
            Some(json!({"error_rate": 0.1, "bogus": 1})),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_body")));
}
