//! Fault injection is observable from a client, set per run or live, and never touches
//! `/sandbox/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use sandbox::faults::FaultConfig;
use serde_json::json;
use std::time::{Duration, Instant};
use yubienterprise::{ErrorCode, ListQuery};

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

#[tokio::test]
async fn drop_after_rate_carries_the_request_out_then_drops_the_answer() {
    let sb = start().await;
    let (s, v) = sb
        .call(
            Method::PUT,
            "/sandbox/v1/faults",
            Some(json!({"drop_after_rate": 1.0})),
        )
        .await;
    assert_eq!((s, v["drop_after_rate"].as_f64()), (200, Some(1.0)));
    let e = sb
        .client
        .create_fpr_shipment(&fpr_body())
        .await
        .unwrap_err();
    assert!(
        matches!(e, yubienterprise::ClientError::Transport { .. }),
        "{e:?}"
    );
    assert!(e.is_transient());
    sb.call(Method::PUT, "/sandbox/v1/faults", Some(json!({})))
        .await;
    // The shipment was created all the same: only its answer was lost.
    let all = sb
        .client
        .list_shipments_exact(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.total_count, 1);
    assert_eq!(all.shipments[0].recipient_lastname, "Lindberg");
}

/// A shipment with the reference `ref-known`, then the fulfiller's `fault` switched on.
async fn referenced_shipment_then_switch_on(sb: &Sandbox, fault: &str) {
    let mut known = fpr_body();
    known.customer_reference = Some("ref-known".into());
    sb.client.create_fpr_shipment(&known).await.unwrap();
    let (s, v) = sb
        .call(
            Method::PUT,
            "/sandbox/v1/faults",
            Some(json!({ fault: true })),
        )
        .await;
    assert_eq!((s, &v[fault]), (200, &json!(true)));
}

/// Creates a shipment for `lastname` with a 60-character reference: it is neither
/// checked (over 50 characters) nor kept.
async fn created_without_its_reference(sb: &Sandbox, lastname: &str) {
    let mut b = fpr_body();
    b.recipient.recipient_lastname = lastname.into();
    b.customer_reference = Some("r".repeat(60));
    let made = sb.client.create_fpr_shipment(&b).await.unwrap();
    assert_eq!(made.customer_reference, None);
    let got = sb
        .client
        .get_fpr_shipment(made.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(got.customer_reference, None);
}

/// How many shipments a search by last name finds.
async fn by_lastname(sb: &Sandbox, lastname: &str) -> u64 {
    sb.client
        .list_shipments_exact(&ListQuery {
            search: Some(lastname.into()),
            search_field: Some("recipient_lastname".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .total_count
}

#[tokio::test]
async fn ignore_customer_reference_acts_like_a_fulfiller_that_does_not_know_the_field() {
    let sb = start().await;
    let by_reference = |v: &str| ListQuery {
        search: Some(v.to_owned()),
        search_field: Some("customer_reference".to_owned()),
        ..Default::default()
    };
    referenced_shipment_then_switch_on(&sb, "ignore_customer_reference").await;
    // On create the field is neither kept nor checked (even over 50 characters).
    created_without_its_reference(&sb, "Ignored").await;
    // As a list filter it is ignored: every shipment answers.
    let page = sb
        .client
        .list_shipments_exact(&by_reference("ref-known"))
        .await
        .unwrap();
    assert_eq!(page.total_count, 2);
    let (_, d) = sb
        .call(Method::GET, "/v1/shipments_exact/search-description", None)
        .await;
    let fields = d["searchable_fields"].as_array().unwrap();
    assert!(!fields.iter().any(|f| f == "customer_reference"), "{d}");
    assert!(fields.iter().any(|f| f == "postal_code"), "{d}");
    // Other searches still filter.
    assert_eq!(by_lastname(&sb, "Ignored").await, 1);

    // Switched off, the field filters again.
    sb.call(Method::PUT, "/sandbox/v1/faults", Some(json!({})))
        .await;
    let page = sb
        .client
        .list_shipments_exact(&by_reference("ref-known"))
        .await
        .unwrap();
    assert_eq!(page.total_count, 1);
    assert_eq!(
        page.shipments[0].customer_reference.as_deref(),
        Some("ref-known")
    );
}

#[tokio::test]
async fn refuse_customer_reference_answers_a_search_by_it_400_like_any_unknown_field() {
    let sb = start().await;
    let by_reference = ListQuery {
        search: Some("ref-known".to_owned()),
        search_field: Some("customer_reference".to_owned()),
        ..Default::default()
    };
    referenced_shipment_then_switch_on(&sb, "refuse_customer_reference").await;
    // The search is refused in the fulfiller's error shape, as for a field it cannot
    // search.
    let e = sb
        .client
        .list_shipments_exact(&by_reference)
        .await
        .unwrap_err();
    match &e {
        yubienterprise::ClientError::Api { status, body, .. } => {
            assert_eq!(
                (*status, body.code, body.field.as_deref()),
                (400, ErrorCode::ValidationError, Some("search_field"))
            );
            assert!(
                body.message
                    .contains("\"customer_reference\" is not searchable"),
                "{}",
                body.message
            );
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    assert!(!e.is_transient());
    let unknown = sb
        .client
        .list_shipments_exact(&ListQuery {
            search: Some("x".into()),
            search_field: Some("no_such_field".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(400));
    // On create the field is neither kept nor checked (even over 50 characters).
    created_without_its_reference(&sb, "Refused").await;
    let (_, d) = sb
        .call(Method::GET, "/v1/shipments_exact/search-description", None)
        .await;
    let fields = d["searchable_fields"].as_array().unwrap();
    assert!(!fields.iter().any(|f| f == "customer_reference"), "{d}");
    // Other searches still filter.
    assert_eq!(by_lastname(&sb, "Refused").await, 1);

    // Switched off, the field filters again.
    sb.call(Method::PUT, "/sandbox/v1/faults", Some(json!({})))
        .await;
    let page = sb.client.list_shipments_exact(&by_reference).await.unwrap();
    assert_eq!(page.total_count, 1);
}

#[tokio::test]
async fn a_hold_sends_the_answer_read_before_the_shipment_changed_once_released() {
    let sb = start().await;
    let made = sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    let id = made.shipment_id.as_str().to_owned();
    let hold = format!("/sandbox/v1/holds/{id}");
    let (s, v) = sb.call(Method::PUT, &hold, None).await;
    assert_eq!((s, &v["hold"]), (200, &json!("armed")));

    let client = sb.client.clone();
    let read_id = id.clone();
    let read = tokio::spawn(async move { client.get_fpr_shipment(&read_id).await });
    let mut waiting = false;
    for _ in 0..3000 {
        if sb.call(Method::GET, &hold, None).await.1["hold"] == "waiting" {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting, "the read never took the hold");
    // Meanwhile the shipment is deleted (another client is not held).
    sb.client.delete_fpr_shipment(&id).await.unwrap();
    let (s, v) = sb.call(Method::DELETE, &hold, None).await;
    assert_eq!((s, &v["hold"]), (200, &json!("waiting")));
    // The held answer is the shipment as it was read.
    let old = read.await.unwrap().unwrap();
    assert_eq!(old.shipment_id.as_str(), id);
    // Later reads are not held and see it gone.
    assert_eq!(
        sb.client.get_fpr_shipment(&id).await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(sb.call(Method::GET, &hold, None).await.1["hold"], "none");
}
