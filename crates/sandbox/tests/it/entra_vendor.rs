//! The Entra sandbox behaving as Microsoft documents (issue 15): v1.0 or v2.0 access
//! tokens by the API app's `accessTokenAcceptedVersion`, client authentication by
//! `client_secret_basic` and by certificate (`client_assertion`), and the Graph client's
//! certificate credential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::entra_common::*;
use base64::Engine as _;
use graph::token::{Jwks, OpenIdConfiguration};
use graph::{ApiVersion, ClientCredential, GraphClient, GraphConfig, RetryPolicy};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;

/// The claims of a token, unverified (for reading what was minted).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn get_json(sb: &Sandbox, url: &str) -> Value {
    sb.http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Validates as a resource server would, against the metadata of the token's version.
async fn validate_with_metadata(sb: &Sandbox, metadata_path: &str, token: &str, aud: &str) {
    let meta: OpenIdConfiguration =
        serde_json::from_value(get_json(sb, &format!("{}{metadata_path}", sb.url)).await).unwrap();
    let jwks: Jwks = serde_json::from_value(get_json(sb, &meta.jwks_uri).await).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks.keys.iter().find(|k| k.kid == kid).unwrap();
    let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[meta.issuer.as_str()]);
    jsonwebtoken::decode::<Value>(token, &key, &v).unwrap();
}

async fn set_version(sb: &Sandbox, client_id: &str, version: Value) -> Value {
    let (s, v) = sb
        .call(
            Method::PATCH,
            &format!("/sandbox/v1/apps/{client_id}"),
            None,
            Some(&json!({ "accessTokenAcceptedVersion": version })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn api_token(sb: &Sandbox, scope: &str) -> String {
    sb.token(&sb.client_id, &sb.client_secret, scope).await
}

#[tokio::test]
async fn the_default_seed_still_issues_v2_tokens_for_the_connector_api() {
    let sb = start().await;
    let t = api_token(&sb, &format!("{}/.default", sb.connector_api)).await;
    let c = claims(&t);
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["iss"], format!("{}/{}/v2.0", sb.url, sb.tenant));
    assert_eq!(c["aud"], sb.connector_id);
    assert_eq!(c["azp"], sb.client_id);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(c["roles"], json!(["create_request"]));
    assert!(c.get("appid").is_none() && c.get("scp").is_none());
}

#[tokio::test]
async fn an_api_accepting_v1_tokens_gets_v1_tokens_with_the_app_id_uri_as_audience() {
    let sb = start().await;
    let v = set_version(&sb, &sb.connector_id, json!(1)).await;
    assert_eq!(v["tokenVersion"], "1.0");
    // Requested by Application ID URI: that is the audience.
    let t = api_token(&sb, &format!("{}/.default", sb.connector_api)).await;
    let c = claims(&t);
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{}/", sb.tenant));
    assert_eq!(c["aud"], sb.connector_api);
    assert_eq!(c["appid"], sb.client_id);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["tid"], sb.tenant);
    assert_eq!(c["idtyp"], "app");
    // App-only: the granted app role in `roles`, no `scp`, no v2 `azp`.
    assert_eq!(c["roles"], json!(["create_request"]));
    assert!(c.get("azp").is_none() && c.get("scp").is_none(), "{c}");
    // It validates against the v1.0 metadata (issuer sts.windows.net, /discovery/keys).
    validate_with_metadata(
        &sb,
        &format!("/{}/.well-known/openid-configuration", sb.tenant),
        &t,
        &sb.connector_api,
    )
    .await;
    // Requested by client id: the audience is the client id.
    let t = api_token(&sb, &format!("{}/.default", sb.connector_id)).await;
    assert_eq!(claims(&t)["aud"], sb.connector_id);
    assert_eq!(claims(&t)["ver"], "1.0");
    // Graph tokens are unaffected.
    assert_eq!(claims(&sb.graph_token().await)["ver"], "2.0");
    // And back to v2.0.
    set_version(&sb, &sb.connector_id, json!(2)).await;
    let t = api_token(&sb, &format!("{}/.default", sb.connector_api)).await;
    assert_eq!(claims(&t)["ver"], "2.0");
    assert_eq!(claims(&t)["aud"], sb.connector_id);
    validate_with_metadata(
        &sb,
        &format!("/{}/v2.0/.well-known/openid-configuration", sb.tenant),
        &t,
        &sb.connector_id,
    )
    .await;
}

#[tokio::test]
async fn an_app_registered_without_the_manifest_setting_gets_v1_tokens() {
    let mut seed = sandbox::entra::TenantSeed::default();
    let api = seed.connector_app().unwrap().client_id.clone();
    for a in &mut seed.apps {
        if a.client_id == api {
            a.access_token_accepted_version = None;
        }
    }
    let sb = start_with(seed).await;
    let t = api_token(&sb, &format!("{}/.default", sb.connector_api)).await;
    assert_eq!(claims(&t)["ver"], "1.0");
    // The admin route refuses a version Entra does not have.
    let (s, v) = sb
        .call(
            Method::PATCH,
            &format!("/sandbox/v1/apps/{api}"),
            None,
            Some(&json!({"accessTokenAcceptedVersion": 3})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = sb
        .call(
            Method::PATCH,
            "/sandbox/v1/apps/00000000-0000-0000-0000-000000000000",
            None,
            Some(&json!({"accessTokenAcceptedVersion": 1})),
        )
        .await;
    assert_eq!(s, 404);
}

/// `Authorization: Basic` per RFC 6749 §2.3.1, the pieces given already encoded.
async fn basic(sb: &Sandbox, user: &str, pass: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let r = sb
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", sb.url, sb.tenant))
        .header("authorization", format!("Basic {creds}"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn client_secret_basic_is_accepted_with_form_urlencoded_id_and_secret() {
    let mut seed = sandbox::entra::TenantSeed::default();
    let odd = "a:b+c %d~/=";
    seed.apps[1].client_secret = odd.into();
    let sb = start_with(seed).await;
    let scope = format!("{}/.default", sb.connector_api);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", scope.as_str()),
    ];
    // ':' '+' ' ' '%' '/' '=' encoded; '~' too (form encoding keeps only [A-Za-z0-9*-._]).
    let (s, v) = basic(&sb, &sb.client_id, "a%3Ab%2Bc+%25d%7E%2F%3D", &form).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["azpacr"], "1");
    // The secret sent raw (unencoded) is another secret.
    let (s, v) = basic(&sb, &sb.client_id, odd, &form).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    // A client_id in the body must agree with the header.
    let mut with_id = form.to_vec();
    with_id.push(("client_id", sb.connector_id.as_str()));
    let (s, v) = basic(&sb, &sb.client_id, "a%3Ab%2Bc+%25d%7E%2F%3D", &with_id).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    // Two authentication methods at once are refused (RFC 6749 §2.3).
    let mut both = form.to_vec();
    both.push(("client_secret", odd));
    let (s, v) = basic(&sb, &sb.client_id, "a%3Ab%2Bc+%25d%7E%2F%3D", &both).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    // Not Basic at all.
    let r = sb
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", sb.url, sb.tenant))
        .header("authorization", "Basic !!!")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The graph client's SecretBasic credential does the encoding.
    let mut cfg = GraphConfig::with_credential(
        &sb.tenant,
        &sb.client_id,
        ClientCredential::SecretBasic(SecretString::from(odd)),
    );
    cfg.authority_url = sb.url.clone();
    let client = GraphClient::new(cfg).unwrap();
    client.tokens().token(&scope).await.unwrap();
}

/// A self-signed RSA certificate and its PKCS#8 key, both PEM.
fn rsa_certificate(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn register_certificate(sb: &Sandbox, client_id: &str, pem: &str) -> Value {
    let r = sb
        .http
        .post(format!(
            "{}/sandbox/v1/apps/{client_id}/certificates",
            sb.url
        ))
        .body(pem.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json().await.unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A hand-made assertion: `alg`, thumbprint header, claims.
fn assertion(key_pem: &str, alg: Algorithm, thumb: (&str, &str), claims: Value) -> String {
    let mut h = Header::new(alg);
    h.typ = Some("JWT".into());
    match thumb.0 {
        "x5t" => h.x5t = Some(thumb.1.to_owned()),
        _ => h.x5t_s256 = Some(thumb.1.to_owned()),
    }
    let der = pem_der(key_pem);
    let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).unwrap();
    let key = EncodingKey::from_rsa_der(info.private_key.as_bytes());
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

async fn with_assertion(sb: &Sandbox, client_id: &str, assertion: &str) -> (u16, Value) {
    let scope = format!("{}/.default", sb.connector_api);
    sb.token_raw(
        &sb.tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", &scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn certificate_credentials_are_verified_as_microsoft_documents() {
    let sb = start().await;
    let (cert, key) = rsa_certificate("test client");
    let thumbs = register_certificate(&sb, &sb.client_id, &cert).await;
    let x5t = thumbs["x5t"].as_str().unwrap().to_owned();
    let s256 = thumbs["x5t#S256"].as_str().unwrap().to_owned();
    let token_url = format!("{}/{}/oauth2/v2.0/token", sb.url, sb.tenant);
    let good = |n: u64| {
        json!({"aud": token_url, "iss": sb.client_id, "sub": sb.client_id,
               "iat": n, "nbf": n, "exp": n + 600, "jti": format!("jti-{n}")})
    };
    // RS256 naming the certificate by x5t (older doc) or x5t#S256 (current doc); PS256.
    for (alg, thumb) in [
        (Algorithm::RS256, ("x5t", x5t.as_str())),
        (Algorithm::RS256, ("x5t#S256", s256.as_str())),
        (Algorithm::PS256, ("x5t#S256", s256.as_str())),
    ] {
        let a = assertion(&key, alg, thumb, good(now()));
        let (s, v) = with_assertion(&sb, &sb.client_id, &a).await;
        assert_eq!(s, 200, "{alg:?} {thumb:?}: {v}");
        let c = claims(v["access_token"].as_str().unwrap());
        assert_eq!(c["azpacr"], "2", "certificate: acr 2");
    }
    let refused = |s: u16, v: &Value, code: u64| {
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["error"], "invalid_client", "{v}");
        assert_eq!(v["error_codes"][0], code, "{v}");
    };
    // An unregistered certificate.
    let (other_cert, other_key) = rsa_certificate("stranger");
    let _ = other_cert;
    let a = assertion(
        &other_key,
        Algorithm::RS256,
        ("x5t#S256", "AAAA"),
        good(now()),
    );
    let (s, v) = with_assertion(&sb, &sb.client_id, &a).await;
    refused(s, &v, 700027);
    // Signed by another key but naming the registered certificate.
    let a = assertion(
        &other_key,
        Algorithm::RS256,
        ("x5t#S256", &s256),
        good(now()),
    );
    let (s, v) = with_assertion(&sb, &sb.client_id, &a).await;
    refused(s, &v, 700027);
    // Wrong audience.
    let mut c = good(now());
    c["aud"] = json!("https://login.microsoftonline.com/common/oauth2/v2.0/token");
    let (s, v) = with_assertion(
        &sb,
        &sb.client_id,
        &assertion(&key, Algorithm::RS256, ("x5t", &x5t), c),
    )
    .await;
    refused(s, &v, 700027);
    // iss/sub not the client.
    let mut c = good(now());
    c["iss"] = json!(sb.connector_id);
    let (s, v) = with_assertion(
        &sb,
        &sb.client_id,
        &assertion(&key, Algorithm::RS256, ("x5t", &x5t), c),
    )
    .await;
    refused(s, &v, 700021);
    // Expired.
    let old = now() - 7200;
    let (s, v) = with_assertion(
        &sb,
        &sb.client_id,
        &assertion(&key, Algorithm::RS256, ("x5t", &x5t), good(old)),
    )
    .await;
    refused(s, &v, 700024);
    // No jti.
    let mut c = good(now());
    c.as_object_mut().unwrap().remove("jti");
    let (s, v) = with_assertion(
        &sb,
        &sb.client_id,
        &assertion(&key, Algorithm::RS256, ("x5t", &x5t), c),
    )
    .await;
    refused(s, &v, 50027);
    // The certificate is the test client's, not the connector's.
    let mut c = good(now());
    c["iss"] = json!(sb.connector_id);
    c["sub"] = json!(sb.connector_id);
    let (s, v) = with_assertion(
        &sb,
        &sb.connector_id,
        &assertion(&key, Algorithm::RS256, ("x5t", &x5t), c),
    )
    .await;
    refused(s, &v, 700027);
    // A wrong assertion type is a request error.
    let a = assertion(&key, Algorithm::RS256, ("x5t", &x5t), good(now()));
    let (s, v) = sb
        .token_raw(
            &sb.tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &sb.client_id),
                ("scope", &format!("{}/.default", sb.connector_api)),
                ("client_assertion_type", "jwt"),
                ("client_assertion", &a),
            ],
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
}

#[tokio::test]
async fn the_graph_client_authenticates_with_a_certificate() {
    let sb = start().await;
    let (cert, key) = rsa_certificate("prereg connector");
    register_certificate(&sb, &sb.connector_id, &cert).await;
    let credential =
        ClientCredential::certificate(&cert, &SecretString::from(key.clone())).unwrap();
    assert_eq!(credential.acr(), "2");
    let shown = format!("{credential:?}");
    assert!(
        !shown.contains("PRIVATE") && shown.contains("[redacted]"),
        "{shown}"
    );
    let mut cfg = GraphConfig::with_credential(&sb.tenant, &sb.connector_id, credential);
    cfg.authority_url = sb.url.clone();
    cfg.graph_url = sb.url.clone();
    cfg.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(1),
    };
    let client = GraphClient::new(cfg).unwrap();
    // A Graph call works: the token came from the certificate.
    client.get_user(ApiVersion::V1, ADELE, &[]).await.unwrap();
    let t = client
        .tokens()
        .token(&format!("{}/.default", graph::GRAPH_RESOURCE))
        .await
        .unwrap();
    use secrecy::ExposeSecret as _;
    assert_eq!(claims(t.expose_secret())["azpacr"], "2");

    // A key that is not the certificate's is refused before any request.
    let (_, other_key) = rsa_certificate("other");
    let e = ClientCredential::certificate(&cert, &SecretString::from(other_key)).unwrap_err();
    assert!(e.to_string().contains("does not belong"), "{e}");
    assert!(!e.to_string().contains("PRIVATE KEY-----"));
    // A certificate the app does not have: the token service refuses with a hint.
    let (cert2, key2) = rsa_certificate("unregistered");
    let mut cfg = GraphConfig::with_credential(
        &sb.tenant,
        &sb.connector_id,
        ClientCredential::certificate(&cert2, &SecretString::from(key2)).unwrap(),
    );
    cfg.authority_url = sb.url.clone();
    cfg.graph_url = sb.url.clone();
    let e = GraphClient::new(cfg)
        .unwrap()
        .get_user(ApiVersion::V1, ADELE, &[])
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.to_string().contains("AADSTS700027"), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    // The plain secret constructor keeps working.
    GraphConfig::new(&sb.tenant, &sb.connector_id, SecretString::from("s"));
}

#[tokio::test]
async fn the_metadata_lists_the_client_authentication_methods() {
    let sb = start().await;
    for path in [
        format!("/{}/v2.0/.well-known/openid-configuration", sb.tenant),
        format!("/{}/.well-known/openid-configuration", sb.tenant),
    ] {
        let v = get_json(&sb, &format!("{}{path}", sb.url)).await;
        let methods = v["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        for m in [
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        ] {
            assert!(methods.iter().any(|x| x == m), "{path}: {v}");
        }
    }
}
