//! The token service: RS256 signing keys (generated with aws-lc-rs, rotated on demand),
//! client-credentials tokens, their validation by the Graph routes, the OpenID metadata
//! and the key set. Errors in the AADSTS shape (entra.md §4).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use graph::token::{AccessTokenClaims, Jwk, Jwks, OpenIdConfiguration, TokenError, TokenResponse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;

use super::Entra;
use super::seed::TokenVersion;

/// One signing key.
pub(crate) struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl SigningKey {
    /// A fresh RSA-2048 key.
    pub(crate) fn generate() -> Result<Self, String> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|e| format!("RSA key generation: {e}"))?;
        let pkcs8 = pair
            .as_der()
            .map_err(|e| format!("RSA key encoding: {e}"))?;
        // jsonwebtoken wants PKCS#1 RSAPrivateKey: the octets inside PKCS#8.
        let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8.as_ref())
            .map_err(|e| format!("RSA key encoding: {e}"))?;
        let encoding = EncodingKey::from_rsa_der(info.private_key.as_bytes());
        let public = pair.public_key();
        let kid = crate::rng::bytes::<20>()
            .map(webauthn::b64::encode)
            .ok_or("the random generator failed")?;
        Ok(Self {
            kid,
            encoding,
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
        })
    }

    fn jwk(&self, issuer: &str) -> Jwk {
        Jwk {
            kty: "RSA".into(),
            key_use: Some("sig".into()),
            kid: self.kid.clone(),
            alg: None,
            n: webauthn::b64::encode(&self.n),
            e: webauthn::b64::encode(&self.e),
            x5t: None,
            x5c: vec![],
            issuer: Some(issuer.to_owned()),
        }
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    fn decoding(&self) -> DecodingKey {
        DecodingKey::from_rsa_raw_components(&self.n, &self.e)
    }
}

/// The published keys; the last one signs.
pub(crate) struct KeyRing {
    pub keys: Vec<SigningKey>,
    /// `uti` of every token issued before the last revocation.
    pub revoked: HashSet<String>,
    pub issued: HashSet<String>,
}

impl KeyRing {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self {
            keys: vec![SigningKey::generate()?],
            revoked: HashSet::new(),
            issued: HashSet::new(),
        })
    }
}

/// A validated caller of the Graph routes.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub client_id: String,
    pub roles: Vec<String>,
}

/// Why a bearer token was refused (message for `InvalidAuthenticationToken`).
pub(crate) fn validate(entra: &Entra, token: &str, audience: &str) -> Result<Caller, String> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| "IDX14100: JWT is not well formed.".to_owned())?;
    let kid = header.kid.unwrap_or_default();
    let ring = entra.keys();
    let key = ring
        .keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or("Access token validation failure. Signing key not found.")?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[entra.issuer()]);
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    let data = jsonwebtoken::decode::<AccessTokenClaims>(token, &key.decoding(), &v).map_err(
        |e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                "Lifetime validation failed, the token is expired.".to_owned()
            }
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                "Access token validation failure. Invalid audience.".to_owned()
            }
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                "Access token validation failure. Invalid issuer.".to_owned()
            }
            _ => "Access token validation failure.".to_owned(),
        },
    )?;
    let claims = data.claims;
    if claims
        .uti
        .as_ref()
        .is_some_and(|u| ring.revoked.contains(u))
    {
        return Err("Lifetime validation failed, the token is expired.".into());
    }
    if claims.tid != entra.tenant_id() {
        return Err("Access token validation failure. Invalid tenant.".into());
    }
    Ok(Caller {
        client_id: claims.azp,
        roles: claims.roles,
    })
}

/// An AADSTS error answer.
pub(crate) fn aadsts(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let now = crate::time::rfc3339(crate::time::now());
    let trace = super::guid();
    let body = TokenError {
        error: error.to_owned(),
        error_description: format!(
            "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {trace} Timestamp: {}",
            now.replace('T', " ").trim_end_matches('Z')
        ),
        error_codes: vec![code],
        timestamp: Some(now.replace('T', " ").trim_end_matches('Z').to_owned() + "Z"),
        trace_id: Some(trace.clone()),
        correlation_id: Some(trace),
        error_uri: Some(format!(
            "https://login.microsoftonline.com/error?code={code}"
        )),
    };
    (status, Json(body)).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`. Client authentication as Entra takes it: the
/// secret in the form (`client_secret_post`), in HTTP Basic (`client_secret_basic`, RFC
/// 6749 §2.3.1: id and secret each form-urlencoded, then `id:secret` in base64), or a
/// certificate assertion (`client_assertion`, [`super::certs`]); never two at once.
pub(crate) async fn token(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !entra.is_tenant(&tenant) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let mut pairs = match form {
        Ok(f) => f.0,
        Err(_) => Vec::new(),
    };
    if pairs
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "authorization_code")
    {
        return super::authorize::redeem(&entra, &pairs.into_iter().collect());
    }
    let basic_secret = match basic_credentials(&headers) {
        Ok(None) => None,
        Ok(Some((id, secret))) => {
            if pairs
                .iter()
                .any(|(k, _)| k == "client_secret" || k == "client_assertion")
            {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    9002313,
                    "Invalid request. The client authenticated with more than one method (HTTP Basic and a credential in the body); use one (RFC 6749 section 2.3).",
                );
            }
            match pairs.iter().find(|(k, _)| k == "client_id") {
                Some((_, form_id)) if !form_id.eq_ignore_ascii_case(&id) => {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        9002313,
                        "Invalid request. The client_id in the body is not the one in the Authorization header.",
                    );
                }
                Some(_) => {}
                None => pairs.push(("client_id".to_owned(), id)),
            }
            Some(SecretString::from(secret))
        }
        Err(why) => {
            return aadsts(StatusCode::UNAUTHORIZED, "invalid_client", 7000216, why);
        }
    };
    let req: graph::TokenRequest = match token_request(pairs) {
        Ok(r) => r,
        Err(()) => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
    };
    let Some(grant) = req.grant_type.as_deref() else {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    };
    if grant != graph::token::CLIENT_CREDENTIALS {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!(
                "The app requested an unsupported grant type '{grant}'. The sandbox issues client_credentials and authorization_code tokens only."
            ),
        );
    }
    let Some(client_id) = req.client_id.as_deref() else {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let seed = entra.seed();
    let Some(app) = seed
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                seed.display_name
            ),
        );
    };
    // `appidacr`/`azpacr`: "1" secret, "2" certificate.
    let acr = if let Some(assertion) = req.client_assertion.as_deref() {
        if req.client_assertion_type.as_deref() != Some(super::certs::ASSERTION_TYPE) {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                &format!(
                    "The request body must contain the following parameter: 'client_assertion_type' with the value '{}'.",
                    super::certs::ASSERTION_TYPE
                ),
            );
        }
        if req.client_secret.is_some() {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                9002313,
                "Invalid request. The client sent both a client_secret and a client_assertion; use one (RFC 6749 section 2.3).",
            );
        }
        let base = entra.base_url();
        let audiences: Vec<String> = [tenant.as_str(), &seed.tenant_id, &seed.domain]
            .iter()
            .map(|t| format!("{base}/{t}/oauth2/v2.0/token"))
            .collect();
        if let Err((code, text)) =
            super::certs::verify(assertion, &app.client_id, &app.certificates, &audiences)
        {
            return aadsts(StatusCode::UNAUTHORIZED, "invalid_client", code, &text);
        }
        "2"
    } else {
        let Some(secret) = basic_secret.as_ref().or(req.client_secret.as_ref()) else {
            return aadsts(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        };
        if secret.expose_secret() != app.client_secret {
            return aadsts(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            );
        }
        "1"
    };
    let Some(scope) = req.scope.as_deref() else {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let Some(resource) = scope.trim().strip_suffix("/.default") else {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let (audience, roles, version) = if resource.eq_ignore_ascii_case(graph::GRAPH_RESOURCE)
        || resource.eq_ignore_ascii_case(graph::GRAPH_APP_ID)
    {
        (
            graph::GRAPH_APP_ID.to_owned(),
            app.graph_permissions.clone(),
            TokenVersion::V2,
        )
    } else if let Some(api) = seed.api(resource) {
        let roles = app
            .api_permissions
            .iter()
            .filter(|p| {
                Some(p.resource.as_str()) == api.identifier_uri.as_deref()
                    || p.resource.eq_ignore_ascii_case(&api.client_id)
            })
            .flat_map(|p| p.roles.clone())
            .collect();
        let version = api.token_version();
        // v2.0: always the API's client id. v1.0: what the client asked for, the
        // Application ID URI or the client id (entra.md §4).
        let audience = match (version, api.identifier_uri.as_deref()) {
            (TokenVersion::V1, Some(uri)) if uri.eq_ignore_ascii_case(resource) => uri.to_owned(),
            _ => api.client_id.clone(),
        };
        (audience, roles, version)
    } else {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                seed.display_name
            ),
        );
    };
    let now = crate::time::now();
    // Entra gives app tokens 60 to 90 minutes (entra.md §4).
    let life = 3600
        + u64::from(
            crate::rng::bytes::<2>()
                .map(u16::from_le_bytes)
                .unwrap_or(0),
        ) % 1801;
    let uti = crate::rng::bytes::<16>()
        .map(webauthn::b64::encode)
        .unwrap_or_default();
    let claims = match version {
        TokenVersion::V2 => serde_json::to_value(AccessTokenClaims {
            aud: audience,
            iss: entra.issuer(),
            iat: now,
            nbf: now,
            exp: now + life,
            azp: app.client_id.clone(),
            azpacr: Some(acr.into()),
            oid: app.object_id.clone(),
            sub: app.object_id.clone(),
            tid: seed.tenant_id.clone(),
            roles,
            scp: None,
            idtyp: Some("app".into()),
            ver: "2.0".into(),
            uti: Some(uti.clone()),
            other: serde_json::Map::new(),
        }),
        TokenVersion::V1 => {
            let iss = v1_issuer(&seed.tenant_id);
            Ok(serde_json::json!({
                "aud": audience,
                "iss": iss,
                "idp": iss,
                "iat": now,
                "nbf": now,
                "exp": now + life,
                "appid": app.client_id,
                "appidacr": acr,
                "oid": app.object_id,
                "sub": app.object_id,
                "tid": seed.tenant_id,
                "roles": roles,
                "idtyp": "app",
                "ver": "1.0",
                "uti": uti,
            }))
        }
    };
    let claims = match claims {
        Ok(c) => c,
        Err(e) => {
            return aadsts(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                50000,
                &format!("There was an error issuing a token: {e}"),
            );
        }
    };
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
        let signed = jsonwebtoken::encode(&header, &claims, &key.encoding);
        ring.issued.insert(uti);
        signed
    };
    match signed {
        Ok(access_token) => Json(TokenResponse {
            token_type: "Bearer".into(),
            expires_in: life,
            ext_expires_in: Some(life),
            access_token,
        })
        .into_response(),
        Err(e) => aadsts(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            &format!("There was an error issuing a token: {e}"),
        ),
    }
}

/// The v1.0 issuer: `https://sts.windows.net/{tid}/`, with the trailing slash, whatever
/// host issued the token (entra.md §4; the sandbox issues it too, as Entra does).
pub(crate) fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1): `None` without such a
/// header; the client id and secret, each form-urlencoded-decoded, otherwise.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, &'static str> {
    use base64::Engine as _;
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = "The Authorization header is not valid HTTP Basic client authentication: base64 of form-urlencoded client_id ':' form-urlencoded client_secret (RFC 6749 section 2.3.1).";
    let text = value.to_str().map_err(|_| bad)?;
    let Some((scheme, rest)) = text.split_once(' ') else {
        return Err(bad);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad)?;
    let raw = String::from_utf8(raw).map_err(|_| bad)?;
    let (id, secret) = raw.split_once(':').ok_or(bad)?;
    let id = form_decode(id).ok_or(bad)?;
    let secret = form_decode(secret).ok_or(bad)?;
    if id.is_empty() {
        return Err(bad);
    }
    Ok(Some((id, secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a
/// byte; the result must be UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn token_request(pairs: Vec<(String, String)>) -> Result<graph::TokenRequest, ()> {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        m.insert(k, serde_json::Value::String(v));
    }
    serde_json::from_value(serde_json::Value::Object(m)).map_err(|_| ())
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
) -> Response {
    if !entra.is_tenant(&tenant) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let base = entra.base_url();
    let tid = entra.tenant_id();
    let mut other = serde_json::Map::new();
    other.insert(
        "claims_supported".into(),
        serde_json::json!([
            "sub", "iss", "aud", "exp", "iat", "nbf", "azp", "roles", "tid", "oid", "ver"
        ]),
    );
    Json(OpenIdConfiguration {
        issuer: entra.issuer(),
        jwks_uri: format!("{base}/{tid}/discovery/v2.0/keys"),
        token_endpoint: format!("{base}/{tid}/oauth2/v2.0/token"),
        authorization_endpoint: Some(format!("{base}/{tid}/oauth2/v2.0/authorize")),
        token_endpoint_auth_methods_supported: vec![
            "client_secret_post".into(),
            "private_key_jwt".into(),
            "client_secret_basic".into(),
        ],
        id_token_signing_alg_values_supported: vec!["RS256".into()],
        response_types_supported: vec![
            "code".into(),
            "id_token".into(),
            "code id_token".into(),
            "id_token token".into(),
        ],
        subject_types_supported: vec!["pairwise".into()],
        scopes_supported: vec![
            "openid".into(),
            "profile".into(),
            "email".into(),
            "offline_access".into(),
        ],
        tenant_region_scope: Some("NA".into()),
        other,
    })
    .into_response()
}

/// `GET /{tenant}/.well-known/openid-configuration`: the v1.0 metadata, whose issuer
/// `https://sts.windows.net/{tid}/` is the one v1.0 access tokens carry (entra.md §4:
/// validate a token against the metadata of its own version).
pub(crate) async fn openid_configuration_v1(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
) -> Response {
    if !entra.is_tenant(&tenant) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let base = entra.base_url();
    let tid = entra.tenant_id();
    Json(OpenIdConfiguration {
        issuer: v1_issuer(&tid),
        jwks_uri: format!("{base}/{tid}/discovery/keys"),
        // The sandbox has no v1.0 token endpoint (`resource=`); the v2.0 one mints v1.0
        // tokens for APIs that accept them, as Entra's does.
        token_endpoint: format!("{base}/{tid}/oauth2/v2.0/token"),
        authorization_endpoint: None,
        token_endpoint_auth_methods_supported: vec![
            "client_secret_post".into(),
            "private_key_jwt".into(),
            "client_secret_basic".into(),
        ],
        id_token_signing_alg_values_supported: vec!["RS256".into()],
        response_types_supported: vec!["code".into(), "id_token".into()],
        subject_types_supported: vec!["pairwise".into()],
        scopes_supported: vec!["openid".into()],
        tenant_region_scope: Some("NA".into()),
        other: serde_json::Map::new(),
    })
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys` and the v1.0 `GET /{tenant}/discovery/keys`
/// (the same keys).
pub(crate) async fn jwks(State(entra): State<Entra>, Path(tenant): Path<String>) -> Response {
    if !entra.is_tenant(&tenant) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let issuer = entra.issuer();
    let ring = entra.keys();
    Json(Jwks {
        keys: ring.keys.iter().rev().map(|k| k.jwk(&issuer)).collect(),
    })
    .into_response()
}
