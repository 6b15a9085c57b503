//! Interactive sign-in for web apps: the authorize form, the code with PKCE, and the
//! `id_token` signed with the tenant key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::entra_common::*;
use graph::token::Jwks;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/console/oidc/callback";
const VERIFIER: &str = "a-verifier-of-enough-length-for-pkce-0123456789";

fn challenge() -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, VERIFIER.as_bytes());
    webauthn::b64::encode(d.as_ref())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn params(sb: &Sandbox, redirect: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", sb.connector_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", redirect.into()),
        ("scope", "openid profile email".into()),
        ("state", "st-<1>".into()),
        ("nonce", "n-123".into()),
        ("code_challenge", challenge()),
        ("code_challenge_method", "S256".into()),
    ]
}

/// Signs in at the form; the code from the redirect.
async fn sign_in(sb: &Sandbox, login: &str, password: &str) -> reqwest::Response {
    let mut p = params(sb, REDIRECT);
    p.push(("login", login.into()));
    p.push(("password", password.into()));
    let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    no_redirects()
        .post(format!("{}/{}/oauth2/v2.0/authorize", sb.url, sb.tenant))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .unwrap()
}

fn code_of(r: &reqwest::Response) -> String {
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert!(loc.contains("&state=st-%3C1%3E"), "state comes back: {loc}");
    let code = loc
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    code.to_owned()
}

async fn redeem(sb: &Sandbox, code: &str, verifier: &str, secret: Option<&str>) -> (u16, Value) {
    let mut f = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", sb.connector_id.as_str()),
        ("code_verifier", verifier),
    ];
    if let Some(s) = secret {
        f.push(("client_secret", s));
    }
    sb.token_raw(&sb.tenant, &f).await
}

#[tokio::test]
async fn the_form_signs_a_seeded_user_in_and_the_code_gives_a_verified_id_token() {
    let sb = start().await;
    let p = params(&sb, REDIRECT);
    let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = sb
        .http
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize?{}",
            sb.url,
            sb.tenant,
            form(&pairs)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("name=\"password\"") && html.contains("st-&lt;1&gt;"),
        "{html}"
    );

    // A wrong password: the form again, with the AADSTS reason.
    let r = sign_in(&sb, ALEX, "wrong").await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("AADSTS50126"));

    // A wrong verifier: refused (and the code is spent).
    let r = sign_in(&sb, ALEX, sandbox::entra::authorize::SANDBOX_PASSWORD).await;
    assert_eq!(r.status(), 302);
    let code = code_of(&r);
    let (s, v) = redeem(&sb, &code, "not-the-verifier", Some(&sb.connector_secret)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_codes"][0], 501481, "{v}");

    // The right one: an id_token for Alex, for this client, with the nonce.
    let r = sign_in(&sb, ALEX, sandbox::entra::authorize::SANDBOX_PASSWORD).await;
    let code = code_of(&r);
    let (s, v) = redeem(&sb, &code, VERIFIER, Some(&sb.connector_secret)).await;
    assert_eq!(s, 200, "{v}");
    let id_token = v["id_token"].as_str().unwrap();
    let jwks: Jwks = sb
        .http
        .get(format!("{}/{}/discovery/v2.0/keys", sb.url, sb.tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let k = jwks.keys.iter().find(|k| k.kid == kid).unwrap();
    let mut val = Validation::new(Algorithm::RS256);
    val.set_audience(&[&sb.connector_id]);
    val.set_issuer(&[sb.entra.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(
        id_token,
        &DecodingKey::from_rsa_components(&k.n, &k.e).unwrap(),
        &val,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["preferred_username"], ALEX);
    assert_eq!(claims["nonce"], "n-123");
    assert_eq!(claims["tid"], sb.tenant.as_str());

    // A code works once.
    let (s, v) = redeem(&sb, &code, VERIFIER, Some(&sb.connector_secret)).await;
    assert_eq!(s, 400);
    assert_eq!(v["error_codes"][0], 54005, "{v}");

    // A wrong client secret is refused.
    let r = sign_in(&sb, ALEX, sandbox::entra::authorize::SANDBOX_PASSWORD).await;
    let code = code_of(&r);
    let (s, v) = redeem(&sb, &code, VERIFIER, Some("nope")).await;
    assert_eq!(s, 401, "{v}");
}

#[tokio::test]
async fn the_form_refuses_redirects_off_loopback_and_unknown_clients() {
    let sb = start().await;
    for (redirect, client) in [
        ("https://attacker.example/cb", sb.connector_id.clone()),
        (
            "http://127.0.0.1.attacker.example/cb",
            sb.connector_id.clone(),
        ),
        (
            "http://localhost:80@attacker.example/cb",
            sb.connector_id.clone(),
        ),
        ("ftp://127.0.0.1/cb", sb.connector_id.clone()),
        (REDIRECT, "00000000-0000-0000-0000-000000000000".to_owned()),
    ] {
        let mut p = params(&sb, redirect);
        p[0].1 = client;
        let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = sb
            .http
            .get(format!(
                "{}/{}/oauth2/v2.0/authorize?{}",
                sb.url,
                sb.tenant,
                form(&pairs)
            ))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "{redirect}: {body}");
    }
}
