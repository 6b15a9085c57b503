//! `GET /v1/shipments_exact`: pagination, total_count, filters and search.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use yubienterprise::{ListQuery, ShipmentState, ShipmentType};

async fn seeded() -> Sandbox {
    let sb = start().await;
    for i in 0..5 {
        sb.client
            .create_shipment_exact(&exact_body(&format!("Plain{i}")))
            .await
            .unwrap();
    }
    let mut m = exact_body("Handmade");
    m.shipment_type = Some(ShipmentType::Manual);
    m.city = "Stockholm".into();
    m.country_code_2 = "SE".into();
    m.region = String::new();
    sb.client.create_shipment_exact(&m).await.unwrap();
    sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    sb
}

#[tokio::test]
async fn pages_with_limit_and_offset_and_reports_total_count() {
    let sb = seeded().await;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = sb
            .client
            .list_shipments_exact(&ListQuery {
                limit: Some(3),
                offset: Some(offset),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total_count, 7);
        assert_eq!(page.limit, 3);
        if page.shipments.is_empty() {
            break;
        }
        assert!(page.shipments.len() <= 3);
        seen.extend(page.shipments.into_iter().map(|s| s.shipment_id));
        offset += 3;
    }
    assert_eq!(seen.len(), 7);
    seen.dedup();
    assert_eq!(seen.len(), 7, "no shipment twice");
}

#[tokio::test]
async fn limit_is_capped_at_100_and_bad_parameters_are_refused() {
    let sb = seeded().await;
    let page = sb
        .client
        .list_shipments_exact(&ListQuery {
            limit: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.limit, 100);
    assert_eq!(page.shipments.len(), 7);
    for q in [
        "limit=0",
        "limit=abc",
        "offset=-1",
        "search=x",
        "search=x&search_field=password",
        "shipment_type=BULK",
        "shipment_state_id=x",
    ] {
        let (s, v) = sb
            .call(Method::GET, &format!("/v1/shipments_exact?{q}"), None)
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (400, Some("validation_error")),
            "{q}: {v}"
        );
    }
    let (s, v) = sb
        .call(Method::GET, "/v1/shipments_exact/search-description", None)
        .await;
    assert_eq!(s, 200);
    assert!(
        v["searchable_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "shipment_state_id")
    );
}

#[tokio::test]
async fn filters_by_type_and_state() {
    let sb = seeded().await;
    let by_type = |t| ListQuery {
        shipment_type: Some(t),
        ..Default::default()
    };
    assert_eq!(
        sb.client
            .list_shipments_exact(&by_type(ShipmentType::Automated))
            .await
            .unwrap()
            .total_count,
        5
    );
    assert_eq!(
        sb.client
            .list_shipments_exact(&by_type(ShipmentType::Manual))
            .await
            .unwrap()
            .total_count,
        1
    );
    let fpr = sb
        .client
        .list_shipments_exact(&by_type(ShipmentType::AutoFidoPreReg))
        .await
        .unwrap();
    assert_eq!(fpr.total_count, 1);
    assert_eq!(
        fpr.shipments[0].shipment_type,
        Some(ShipmentType::AutoFidoPreReg)
    );
    // The Console's filter label works too.
    let (_, v) = sb
        .call(
            Method::GET,
            "/v1/shipments_exact?shipment_type=Auto%20FIDO%20Pre-reg",
            None,
        )
        .await;
    assert_eq!(v["total_count"], 1);
    let first = &sb
        .client
        .list_shipments_exact(&ListQuery::default())
        .await
        .unwrap()
        .shipments[0];
    sb.move_to(first.shipment_id.as_str(), 3).await;
    let st = ListQuery {
        shipment_state_id: Some(ShipmentState::AddressValidated),
        ..Default::default()
    };
    let page = sb.client.list_shipments_exact(&st).await.unwrap();
    assert_eq!(page.total_count, 1);
    assert_eq!(page.shipments[0].shipment_id, first.shipment_id);
}

#[tokio::test]
async fn searches_by_field() {
    let sb = seeded().await;
    let search = |f: &str, v: &str| ListQuery {
        search: Some(v.to_owned()),
        search_field: Some(f.to_owned()),
        ..Default::default()
    };
    assert_eq!(
        sb.client
            .list_shipments_exact(&search("recipient_lastname", "plain"))
            .await
            .unwrap()
            .total_count,
        5
    );
    assert_eq!(
        sb.client
            .list_shipments_exact(&search("recipient_lastname", "Plain3"))
            .await
            .unwrap()
            .total_count,
        1
    );
    assert_eq!(
        sb.client
            .list_shipments_exact(&search("city", "stockholm"))
            .await
            .unwrap()
            .total_count,
        1
    );
    assert_eq!(
        sb.client
            .list_shipments_exact(&search("country_code_2", "se"))
            .await
            .unwrap()
            .total_count,
        1
    );
    assert_eq!(
        sb.client
            .list_shipments_exact(&search("shipment_state_id", "2"))
            .await
            .unwrap()
            .total_count,
        7
    );
    assert_eq!(
        sb.client
            .list_shipments_exact(&search("shipment_state_id", "99"))
            .await
            .unwrap()
            .total_count,
        0
    );
    let one = &sb
        .client
        .list_shipments_exact(&ListQuery::default())
        .await
        .unwrap()
        .shipments[4];
    let hit = sb
        .client
        .list_shipments_exact(&search("shipment_id", one.shipment_id.as_str()))
        .await
        .unwrap();
    assert_eq!(hit.shipments[0].shipment_id, one.shipment_id);
}

#[tokio::test]
async fn an_fpr_shipment_keeps_its_customer_reference_and_is_found_by_it() {
    let sb = seeded().await;
    let reference = "3f0e7c1a-5b1d-4c52-9a8e-1d2b3c4d5e6f";
    let mut b = fpr_body();
    b.customer_reference = Some(reference.to_owned());
    let made = sb.client.create_fpr_shipment(&b).await.unwrap();
    assert_eq!(made.customer_reference.as_deref(), Some(reference));
    let got = sb
        .client
        .get_fpr_shipment(made.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(got.customer_reference.as_deref(), Some(reference));

    let search = |v: &str| ListQuery {
        search: Some(v.to_owned()),
        search_field: Some("customer_reference".to_owned()),
        ..Default::default()
    };
    let hit = sb
        .client
        .list_shipments_exact(&search(reference))
        .await
        .unwrap();
    assert_eq!(hit.total_count, 1);
    assert_eq!(hit.shipments[0].shipment_id, made.shipment_id);
    assert_eq!(
        hit.shipments[0].customer_reference.as_deref(),
        Some(reference)
    );
    // The whole reference, not a part of it.
    let miss = sb
        .client
        .list_shipments_exact(&search("3f0e7c1a"))
        .await
        .unwrap();
    assert_eq!(miss.total_count, 0);
    let (_, v) = sb
        .call(Method::GET, "/v1/shipments_exact/search-description", None)
        .await;
    assert!(
        v["searchable_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "customer_reference")
    );

    // At most 50 characters, refused naming the field.
    b.customer_reference = Some("r".repeat(51));
    let e = sb.client.create_fpr_shipment(&b).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("Customer Reference") && text.contains("50"),
        "{text}"
    );
}
