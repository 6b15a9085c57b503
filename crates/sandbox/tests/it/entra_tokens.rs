//! The token service: client-credentials tokens validated against the published keys
//! with jsonwebtoken, their claims, the AADSTS errors, the OpenID metadata, key
//! rotation and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::entra_common::*;
use graph::ApiVersion;
use graph::token::{AccessTokenClaims, Jwks, OpenIdConfiguration};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};

async fn metadata(sb: &Sandbox, tenant: &str) -> OpenIdConfiguration {
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

/// Validates a token as a resource server would: key by `kid` from `jwks_uri`.
async fn validate(
    sb: &Sandbox,
    token: &str,
    audience: &str,
) -> Result<AccessTokenClaims, jsonwebtoken::errors::Error> {
    let meta = metadata(sb, &sb.tenant).await;
    let jwks: Jwks = sb
        .http
        .get(&meta.jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(token)?.kid.unwrap();
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid)
        .expect("kid published");
    let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e)?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[meta.issuer.as_str()]);
    jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &v).map(|d| d.claims)
}

#[tokio::test]
async fn the_connector_gets_a_graph_token_with_its_permissions() {
    let sb = start().await;
    let (s, v) = sb
        .token_raw(
            "contoso.onmicrosoft.com",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &sb.connector_id),
                ("client_secret", &sb.connector_secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_same_shape(&graph_fixture("token_success.json"), &v, "token");
    assert_eq!(v["token_type"], "Bearer");
    let life = v["expires_in"].as_u64().unwrap();
    assert!((3600..=5400).contains(&life), "{life}");
    let token = v["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let c = validate(&sb, token, graph::GRAPH_APP_ID).await.unwrap();
    assert_eq!(c.iss, format!("{}/{}/v2.0", sb.url, sb.tenant));
    assert_eq!(c.aud, graph::GRAPH_APP_ID);
    assert_eq!(c.azp, sb.connector_id);
    assert_eq!(c.tid, sb.tenant);
    assert_eq!(c.ver, "2.0");
    assert_eq!(c.idtyp.as_deref(), Some("app"));
    assert_eq!(c.azpacr.as_deref(), Some("1"));
    assert!(c.scp.is_none());
    assert!(
        c.roles
            .contains(&"UserAuthenticationMethod.ReadWrite.All".to_owned())
    );
    assert_eq!(c.exp - c.iat, life);
    assert!(c.nbf <= c.iat);
    let seed = sb.entra.seed();
    assert_eq!(c.oid, seed.connector_app().unwrap().object_id);
}

#[tokio::test]
async fn the_test_client_gets_a_token_for_the_connector_api_with_its_role() {
    let sb = start().await;
    let scope = format!("{}/.default", sb.connector_api);
    assert_eq!(
        scope,
        "api://fido-connector-api.contoso.onmicrosoft.com/.default"
    );
    let token = sb.token(&sb.client_id, &sb.client_secret, &scope).await;
    let c = validate(&sb, &token, &sb.connector_id).await.unwrap();
    assert_eq!(
        c.aud, sb.connector_id,
        "v2 aud is the API's client id, not its URI"
    );
    assert_eq!(c.azp, sb.client_id);
    assert_eq!(c.roles, vec!["create_request"]);
    // The client id works as the resource too; other audiences are refused.
    let token = sb
        .token(
            &sb.client_id,
            &sb.client_secret,
            &format!("{}/.default", sb.connector_id),
        )
        .await;
    assert!(validate(&sb, &token, &sb.connector_id).await.is_ok());
    assert!(validate(&sb, &token, graph::GRAPH_APP_ID).await.is_err());
    // The connector asking for its own API gets a token without roles.
    let token = sb
        .token(&sb.connector_id, &sb.connector_secret, &scope)
        .await;
    assert!(
        validate(&sb, &token, &sb.connector_id)
            .await
            .unwrap()
            .roles
            .is_empty()
    );
    // A connector-API token is not a Graph token.
    let t = sb.token(&sb.client_id, &sb.client_secret, &scope).await;
    let (s, v) = sb
        .call(Method::GET, &format!("/v1.0/users/{ADELE}"), Some(&t), None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );
}

#[tokio::test]
async fn token_errors_have_the_aadsts_shape() {
    let sb = start().await;
    let fixture = graph_fixture("token_error_invalid_scope.json");
    /// (case, form members replaced, status, error, AADSTS code).
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            "wrong secret",
            vec![("client_secret", "nope".into())],
            401,
            "invalid_client",
            7000215,
        ),
        (
            "unknown client",
            vec![("client_id", "11111111-2222-3333-4444-555555555555".into())],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            "no /.default",
            vec![("scope", "https://graph.microsoft.com/User.Read.All".into())],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            "unknown resource",
            vec![("scope", "api://nothing/.default".into())],
            400,
            "invalid_resource",
            500011,
        ),
        (
            "other grant",
            vec![("grant_type", "password".into())],
            400,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for (name, over, status, error, code) in cases {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", sb.connector_id.clone()),
            ("client_secret", sb.connector_secret.clone()),
            ("scope", "https://graph.microsoft.com/.default".into()),
        ];
        for (k, v) in over {
            form.iter_mut().find(|(fk, _)| *fk == k).unwrap().1 = v;
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, v) = sb.token_raw(&sb.tenant, &pairs).await;
        assert_eq!(s, status, "{name}: {v}");
        assert_same_shape(&fixture, &v, name);
        assert_eq!(v["error"], error, "{name}");
        assert_eq!(v["error_codes"], json!([code]), "{name}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}:")),
            "{name}: {v}"
        );
        assert!(
            !v.to_string().contains(&sb.connector_secret),
            "{name}: the secret must not echo"
        );
    }
    let (s, v) = sb
        .token_raw(
            "fabrikam.onmicrosoft.com",
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(90002)), "{v}");
    let (s, v) = sb.token_raw(&sb.tenant, &[("client_id", "x")]).await;
    assert_eq!(
        (s, v["error_codes"][0].as_u64()),
        (400, Some(900144)),
        "{v}"
    );
}

#[tokio::test]
async fn metadata_points_at_the_keys_and_the_token_endpoint() {
    let sb = start().await;
    for tenant in [sb.tenant.clone(), "contoso.onmicrosoft.com".to_owned()] {
        let m = metadata(&sb, &tenant).await;
        assert_eq!(m.issuer, format!("{}/{}/v2.0", sb.url, sb.tenant));
        assert_eq!(
            m.jwks_uri,
            format!("{}/{}/discovery/v2.0/keys", sb.url, sb.tenant)
        );
        assert_eq!(
            m.token_endpoint,
            format!("{}/{}/oauth2/v2.0/token", sb.url, sb.tenant)
        );
        assert!(
            m.id_token_signing_alg_values_supported
                .contains(&"RS256".to_owned())
        );
    }
    let jwks: Value = sb
        .http
        .get(format!("{}/{}/discovery/v2.0/keys", sb.url, sb.tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k = &jwks["keys"][0];
    assert_eq!(
        (k["kty"].as_str(), k["use"].as_str()),
        (Some("RSA"), Some("sig"))
    );
    assert_eq!(k["e"], "AQAB");
    assert_eq!(
        webauthn::b64::decode("n", k["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
}

#[tokio::test]
async fn rotation_publishes_a_new_key_and_retiring_old_keys_ends_their_tokens() {
    let sb = start().await;
    let old = sb.graph_token().await;
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let (s, r) = sb
        .call(Method::POST, "/sandbox/v1/keys/rotate", None, None)
        .await;
    assert_eq!(s, 200, "{r}");
    let new = sb.graph_token().await;
    let new_kid = jsonwebtoken::decode_header(&new).unwrap().kid.unwrap();
    assert_ne!(old_kid, new_kid);
    assert_eq!(r["signing_kid"], new_kid.as_str());
    // Both keys published; both tokens still work.
    assert!(validate(&sb, &old, graph::GRAPH_APP_ID).await.is_ok());
    assert!(validate(&sb, &new, graph::GRAPH_APP_ID).await.is_ok());
    assert_eq!(
        sb.call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}"),
            Some(&old),
            None
        )
        .await
        .0,
        200
    );
    // Retire: only the newest key remains; the old token is refused.
    let (s, r) = sb
        .call(
            Method::POST,
            "/sandbox/v1/keys/rotate",
            None,
            Some(&json!({"retirePrevious": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["published_kids"].as_array().unwrap().len(), 1);
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}"),
            Some(&old),
            None,
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    // A client with a cached token gets a fresh one after the 401 and carries on.
    let g = sb.graph();
    g.get_user(ApiVersion::V1, ADELE, &[]).await.unwrap();
    sb.call(
        Method::POST,
        "/sandbox/v1/keys/rotate",
        None,
        Some(&json!({"retirePrevious": true})),
    )
    .await;
    g.get_user(ApiVersion::V1, ADELE, &[]).await.unwrap();
}

#[tokio::test]
async fn revoked_tokens_read_as_expired_and_clients_renew() {
    let sb = start().await;
    let g = sb.graph();
    g.get_user(ApiVersion::V1, ADELE, &[]).await.unwrap();
    let t = sb.graph_token().await;
    let (s, v) = sb
        .call(Method::POST, "/sandbox/v1/tokens/revoke", None, None)
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = sb
        .call(Method::GET, &format!("/v1.0/users/{ADELE}"), Some(&t), None)
        .await;
    assert_eq!(s, 401);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );
    g.get_user(ApiVersion::V1, ADELE, &[]).await.unwrap();
    // No token, a malformed one, a forged one.
    let (s, v) = sb
        .call(Method::GET, &format!("/v1.0/users/{ADELE}"), None, None)
        .await;
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (401, Some("Access token is empty."))
    );
    assert_eq!(
        sb.call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}"),
            Some("abc"),
            None
        )
        .await
        .0,
        401
    );
    let fresh = sb.graph_token().await;
    let mut parts: Vec<&str> = fresh.split('.').collect();
    let forged = webauthn::b64::encode(
        br#"{"aud":"00000003-0000-0000-c000-000000000000","roles":["Directory.ReadWrite.All"]}"#,
    );
    parts[1] = &forged;
    assert_eq!(
        sb.call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}"),
            Some(&parts.join(".")),
            None
        )
        .await
        .0,
        401
    );
}
