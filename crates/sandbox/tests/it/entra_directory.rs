//! Users (`$select`, defaults, unknown properties), the manager (404 when none), groups
//! and members with paging, through raw calls and the `graph` client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::entra_common::*;
use graph::ApiVersion;
use graph::users::SHIPPING_SELECT;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn users_by_upn_or_id_with_the_shipping_select() {
    let sb = start().await;
    let g = sb.graph();
    for v in [ApiVersion::V1, ApiVersion::Beta] {
        let u = g.get_user(v, ADELE, SHIPPING_SELECT).await.unwrap();
        assert_eq!(u.display_name.as_deref(), Some("Adele Vance"));
        assert_eq!(u.street_address.as_deref(), Some("18255 NE 24th St"));
        assert_eq!(u.postal_code.as_deref(), Some("98052"));
        assert_eq!(u.company_name.as_deref(), Some("Contoso"));
        let by_id = g
            .get_user(v, &u.id, &["id", "userPrincipalName"])
            .await
            .unwrap();
        assert_eq!(by_id.user_principal_name.as_deref(), Some(ADELE));
        assert!(by_id.display_name.is_none(), "only what $select names");
    }
    // Upper-case UPN resolves as in Entra.
    g.get_user(ApiVersion::V1, &ADELE.to_uppercase(), &[])
        .await
        .unwrap();
    // The illustrative Graph answer and ours have the same members.
    let t = sb.graph_token().await;
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}?$select={}", SHIPPING_SELECT.join(",")),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_same_shape(&graph_fixture("user_select.json"), &v, "user");
}

#[tokio::test]
async fn missing_address_fields_read_as_null_and_defaults_apply_without_select() {
    let sb = start().await;
    let t = sb.graph_token().await;
    let (s, v) = sb
        .call(Method::GET, "/v1.0/users/LynneR@contoso.onmicrosoft.com?$select=id,streetAddress,city,postalCode,otherMails", Some(&t), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["streetAddress"].is_null() && v["city"].is_null() && v["postalCode"].is_null());
    assert_eq!(v["otherMails"], json!([]));
    let (_, v) = sb
        .call(Method::GET, &format!("/v1.0/users/{ADELE}"), Some(&t), None)
        .await;
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    let mut want: Vec<&str> = graph::users::DEFAULT_USER_PROPERTIES.to_vec();
    want.push("@odata.context");
    want.sort();
    assert_eq!(keys, want, "no address fields without $select");
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}?$select=id,shoeSize"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("Request_BadRequest")),
        "{v}"
    );
    let (s, v) = sb
        .call(
            Method::GET,
            "/v1.0/users/nobody@contoso.onmicrosoft.com",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );
}

#[tokio::test]
async fn managers_and_the_documented_404_when_there_is_none() {
    let sb = start().await;
    let g = sb.graph();
    let m = g
        .get_manager(ApiVersion::V1, ALEX, &["id", "displayName", "mail"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.display_name.as_deref(), Some("Adele Vance"));
    assert!(m.is_user());
    assert_eq!(m.mail.as_deref(), Some(ADELE));
    assert!(
        g.get_manager(ApiVersion::Beta, MEGAN, &[])
            .await
            .unwrap()
            .is_none()
    );
    let t = sb.graph_token().await;
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/v1.0/users/{MEGAN}/manager"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert_same_shape(&graph_fixture("error_404_manager.json"), &v, "404");
    assert_eq!(
        v["error"]["message"],
        graph_fixture("error_404_manager.json")["error"]["message"]
    );
}

#[tokio::test]
async fn groups_by_name_and_their_members_page_by_page() {
    let sb = start().await;
    let g = sb.graph();
    let found = g
        .find_groups(ApiVersion::Beta, "FIDO Pre-reg Users")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        g.find_groups(ApiVersion::Beta, "No such group")
            .await
            .unwrap()
            .is_empty()
    );
    let members = g
        .group_members(ApiVersion::Beta, &found[0].id, &["id", "userPrincipalName"])
        .await
        .unwrap();
    assert_eq!(members.len(), 11);
    assert!(members.iter().all(|m| m.user_principal_name.is_some()));
    // Small pages follow @odata.nextLink to the same result.
    let t = sb.graph_token().await;
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/v1.0/groups/{}/members?$top=4&$select=id", found[0].id),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 4);
    let next = v["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&sb.url), "{next}");
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/v1.0/groups/{}", found[0].id),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (s, v["displayName"].as_str()),
        (200, Some("FIDO Pre-reg Users"))
    );
    let (s, v) = sb
        .call(
            Method::GET,
            "/v1.0/groups?$filter=startswith(displayName,'F')",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn unknown_segments_and_methods_answer_like_graph() {
    let sb = start().await;
    let t = sb.graph_token().await;
    let (s, v) = sb.call(Method::GET, "/v1.0/devices", Some(&t), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );
    let (s, v) = sb
        .call(
            Method::PATCH,
            &format!("/v1.0/users/{ADELE}"),
            Some(&t),
            Some(&json!({})),
        )
        .await;
    assert_eq!(s, 405, "{v}");
    assert_same_shape(
        &graph_fixture("error_405_method_not_allowed.json"),
        &v,
        "405",
    );
}
