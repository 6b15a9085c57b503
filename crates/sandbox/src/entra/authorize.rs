//! Interactive sign-in for web apps (the prereg console): the OAuth 2.0 authorization
//! code flow with PKCE and OpenID Connect `id_token`s.
//!
//! - `GET /{tenant}/oauth2/v2.0/authorize`: a small HTML sign-in form. `client_id` must
//!   be a seeded app, `response_type=code`, `redirect_uri` an http(s) URL on loopback
//!   (127.0.0.1, localhost, `[::1]`); `code_challenge_method` when present must be `S256`.
//! - `POST /{tenant}/oauth2/v2.0/authorize`: a seeded user's UPN and the sandbox password
//!   ([`SANDBOX_PASSWORD`]) → `302 {redirect_uri}?code=...&state=...`.
//! - `POST /{tenant}/oauth2/v2.0/token` with `grant_type=authorization_code`: the code
//!   (single use, 10 minutes), the same `redirect_uri` and `client_id`, the app's
//!   `client_secret` (confidential client) and/or `code_verifier` (required when the
//!   authorization carried a challenge) → `id_token` (RS256, the tenant's signing key;
//!   `aud` = client id, `nonce`, `oid`, `preferred_username`, `name`, `email`) and an
//!   `access_token` for Graph.

use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jsonwebtoken::{Algorithm, Header};
use std::collections::HashMap;

use super::Entra;
use super::tokens::aadsts;

/// The password every seeded user signs in with (the sandbox is not a secret store; it is
/// printed in the ready line as `entra.user_password`).
pub const SANDBOX_PASSWORD: &str = "sandbox-password";

/// How long an authorization code can be redeemed, seconds.
const CODE_LIFE: u64 = 600;

/// An issued, not yet redeemed authorization code.
#[derive(Debug, Clone)]
pub(crate) struct PendingCode {
    client_id: String,
    redirect_uri: String,
    user_id: String,
    nonce: Option<String>,
    challenge: Option<String>,
    scope: String,
    expires: u64,
}

fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sign in · Entra sandbox</title></head><body style=\"font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto\">{body}</body></html>"
        )),
    )
        .into_response()
}

fn problem(status: StatusCode, text: &str) -> Response {
    page(
        status,
        format!(
            "<h1>Sign-in problem</h1><p role=\"alert\">{}</p>",
            esc(text)
        ),
    )
}

/// Checks the parameters every authorize call must carry; the error is shown to the user
/// (never redirected to an unchecked URI).
fn check(entra: &Entra, tenant: &str, p: &HashMap<String, String>) -> Result<(), String> {
    if !entra.is_tenant(tenant) {
        return Err(format!("AADSTS90002: Tenant '{tenant}' not found."));
    }
    let client_id = p.get("client_id").map(String::as_str).unwrap_or_default();
    if !entra
        .seed()
        .apps
        .iter()
        .any(|a| a.client_id.eq_ignore_ascii_case(client_id))
    {
        return Err(format!(
            "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
        ));
    }
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(
            "AADSTS700054: response_type must be 'code' (the sandbox supports the authorization code flow only)."
                .into(),
        );
    }
    let redirect = p
        .get("redirect_uri")
        .map(String::as_str)
        .unwrap_or_default();
    if !is_loopback(redirect) {
        return Err(format!(
            "AADSTS50011: The redirect URI '{redirect}' is not allowed: the sandbox redirects only to http(s) URLs on loopback."
        ));
    }
    if let Some(m) = p.get("code_challenge_method")
        && m != "S256"
    {
        return Err("AADSTS501471: code_challenge_method must be S256.".into());
    }
    Ok(())
}

/// An http(s) URL whose host is loopback, without userinfo.
fn is_loopback(redirect: &str) -> bool {
    reqwest::Url::parse(redirect).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.username().is_empty()
            && u.password().is_none()
            && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    })
}

fn form(p: &HashMap<String, String>, tenant: &str, error: Option<&str>) -> String {
    let mut hidden = String::new();
    for k in [
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "response_mode",
    ] {
        if let Some(v) = p.get(k) {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                esc(v)
            ));
        }
    }
    let err = error
        .map(|e| {
            format!(
                "<p role=\"alert\" id=\"signin-error\" style=\"color:#a40e26\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    format!(
        "<h1>Sign in</h1><p>Microsoft Entra sandbox · tenant <code>{}</code></p>{err}\
         <form method=\"post\" action=\"/{}/oauth2/v2.0/authorize\">{hidden}\
         <p><label for=\"login\">User (UPN)</label><br><input id=\"login\" name=\"login\" autocomplete=\"username\" required size=\"40\" value=\"{}\"></p>\
         <p><label for=\"password\">Password</label><br><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required size=\"40\"></p>\
         <p><button type=\"submit\" id=\"submit\">Sign in</button></p></form>\
         <p><small>Every seeded user signs in with the sandbox password <code>{SANDBOX_PASSWORD}</code>.</small></p>",
        esc(tenant),
        enc(tenant),
        esc(p.get("login").map(String::as_str).unwrap_or_default()),
    )
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) async fn authorize_form(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = check(&entra, &tenant, &p) {
        return problem(StatusCode::BAD_REQUEST, &e);
    }
    page(StatusCode::OK, form(&p, &tenant, None))
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the credentials → a code.
pub(crate) async fn authorize_submit(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    if let Err(e) = check(&entra, &tenant, &p) {
        return problem(StatusCode::BAD_REQUEST, &e);
    }
    let login = p.get("login").map(|s| s.trim()).unwrap_or_default();
    let password = p.get("password").map(String::as_str).unwrap_or_default();
    let user = entra.find_user(login);
    let Some(user) = user.filter(|_| password == SANDBOX_PASSWORD) else {
        return page(
            StatusCode::UNAUTHORIZED,
            form(
                &p,
                &tenant,
                Some(
                    "AADSTS50126: Error validating credentials due to invalid username or password.",
                ),
            ),
        );
    };
    let Some(code) = crate::rng::bytes::<32>().map(webauthn::b64::encode) else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the random generator failed",
        );
    };
    let redirect = p.get("redirect_uri").cloned().unwrap_or_default();
    entra.codes().insert(
        code.clone(),
        PendingCode {
            client_id: p.get("client_id").cloned().unwrap_or_default(),
            redirect_uri: redirect.clone(),
            user_id: user.user.id.clone(),
            nonce: p.get("nonce").cloned(),
            challenge: p.get("code_challenge").cloned().filter(|c| !c.is_empty()),
            scope: p.get("scope").cloned().unwrap_or_else(|| "openid".into()),
            expires: crate::time::now() + CODE_LIFE,
        },
    );
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let mut to = format!("{redirect}{sep}code={}", enc(&code));
    if let Some(st) = p.get("state") {
        to.push_str(&format!("&state={}", enc(st)));
    }
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

fn grant_error(code: u32, text: &str) -> Response {
    aadsts(StatusCode::BAD_REQUEST, "invalid_grant", code, text)
}

/// `grant_type=authorization_code` at the token endpoint.
pub(crate) fn redeem(entra: &Entra, p: &HashMap<String, String>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let Some(pending) = entra.codes().remove(get("code")) else {
        return grant_error(
            54005,
            "OAuth2 Authorization code was already redeemed or is not valid.",
        );
    };
    if pending.expires < crate::time::now() {
        return grant_error(
            70008,
            "The provided authorization code or refresh token has expired.",
        );
    }
    if !pending.client_id.eq_ignore_ascii_case(get("client_id")) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700005,
            "Provided Authorization Code is intended to use against other client.",
        );
    }
    if pending.redirect_uri != get("redirect_uri") {
        return grant_error(
            500112,
            "The reply address does not match the reply address of the authorization request.",
        );
    }
    let seed = entra.seed();
    let Some(app) = seed
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&pending.client_id))
    else {
        return grant_error(700016, "Application was not found in the directory.");
    };
    match p.get("client_secret") {
        Some(s) if s != &app.client_secret => {
            return aadsts(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        None if pending.challenge.is_none() => {
            return aadsts(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        _ => {}
    }
    if let Some(ch) = &pending.challenge {
        let v = get("code_verifier");
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, v.as_bytes());
        if v.is_empty() || webauthn::b64::encode(d.as_ref()) != *ch {
            return grant_error(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    }
    let Some(user) = seed.users.iter().find(|u| u.user.id == pending.user_id) else {
        return grant_error(50034, "The user account does not exist in the directory.");
    };
    let now = crate::time::now();
    let life = 3600u64;
    let upn = user.user.user_principal_name.clone().unwrap_or_default();
    let mut id_claims = serde_json::json!({
        "aud": app.client_id,
        "iss": entra.issuer(),
        "iat": now,
        "nbf": now,
        "exp": now + life,
        "sub": user.user.id,
        "oid": user.user.id,
        "tid": seed.tenant_id,
        "preferred_username": upn,
        "name": user.user.display_name,
        "email": user.user.mail.clone().unwrap_or_else(|| upn.clone()),
        "ver": "2.0",
    });
    if let Some(n) = &pending.nonce {
        id_claims["nonce"] = serde_json::Value::String(n.clone());
    }
    let uti = crate::rng::bytes::<16>()
        .map(webauthn::b64::encode)
        .unwrap_or_default();
    let access_claims = serde_json::json!({
        "aud": graph::GRAPH_APP_ID,
        "iss": entra.issuer(),
        "iat": now,
        "nbf": now,
        "exp": now + life,
        "sub": user.user.id,
        "oid": user.user.id,
        "tid": seed.tenant_id,
        "azp": app.client_id,
        "scp": pending.scope,
        "upn": upn,
        "ver": "2.0",
        "uti": uti,
    });
    let tenant_scope = pending.scope.clone();
    drop(seed);
    let signed = {
        let mut ring = entra.keys_mut();
        let Some(key) = ring.keys.last() else {
            return aadsts(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                50000,
                "There was an error issuing a token: no signing key.",
            );
        };
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(key.kid.clone());
        let id = jsonwebtoken::encode(&header, &id_claims, key.encoding());
        let at = jsonwebtoken::encode(&header, &access_claims, key.encoding());
        ring.issued.insert(uti);
        id.and_then(|i| at.map(|a| (i, a)))
    };
    match signed {
        Ok((id_token, access_token)) => axum::Json(serde_json::json!({
            "token_type": "Bearer",
            "scope": tenant_scope,
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": access_token,
            "id_token": id_token,
        }))
        .into_response(),
        Err(e) => aadsts(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            &format!("There was an error issuing a token: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_redirects() {
        for ok in [
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "https://[::1]:9/x",
        ] {
            assert!(super::is_loopback(ok), "{ok}");
        }
        for bad in [
            "http://localhost:80@attacker.example/cb",
            "http://127.0.0.1.attacker.example/",
            "ftp://127.0.0.1/",
            "https://attacker.example/",
            "not a url",
        ] {
            assert!(!super::is_loopback(bad), "{bad}");
        }
    }
}
