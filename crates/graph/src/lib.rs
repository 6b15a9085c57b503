//! Microsoft Graph and the Entra token service, as this project speaks them
//! (`shared/spec/entra.md`).
//!
//! Lives here: the wire types ([`users`] for users, the manager and groups, [`fido2`] for
//! `fido2Methods`, its `creationOptions`, the POST body and the 201 body, [`token`] for
//! the client-credentials request, response, AADSTS error, access-token claims and the
//! OpenID metadata, [`error`] for Graph's error body) and a small async client
//! ([`client`]: token acquisition with caching and a secret or certificate credential
//! ([`credential`]), Graph calls that retry on 429 honouring
//! `Retry-After` and on 5xx). Authority and Graph base URLs are configurable, so the
//! same client talks to the real hosts or to the Entra sandbox.
//!
//! Does not live here: any server (the sandbox is `sandbox::entra`), WebAuthn
//! verification (crate `webauthn`), or validating tokens sent to the connector's API.
#![forbid(unsafe_code)]

pub mod client;
pub mod credential;
pub mod error;
pub mod fido2;
pub mod token;
pub mod users;

pub use client::{ApiVersion, Error, GraphClient, GraphConfig, RetryPolicy, TokenClient};
pub use credential::{ClientCertificate, ClientCredential};
pub use error::{GraphError, GraphErrorBody, InnerError};
pub use fido2::{
    CreationOptions, Fido2AuthenticationMethod, NewFido2Method, WebauthnAttestationResponse,
    WebauthnPublicKeyCredential,
};
pub use token::{AccessTokenClaims, OpenIdConfiguration, TokenError, TokenRequest, TokenResponse};
pub use users::{Collection, DirectoryObject, Group, User};

/// Microsoft Graph's application (client) id: the `aud` of Graph access tokens and the
/// resource whose application permissions an app is granted.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Graph's resource URI; the client-credentials scope is `https://graph.microsoft.com/.default`.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// The real Graph host.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// The real token service host (the "authority" without the tenant).
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// The RP id Entra uses for passkeys; the WebAuthn origin is `https://login.microsoft.com`.
pub const ENTRA_RP_ID: &str = "login.microsoft.com";
/// The WebAuthn origin for clientDataJSON of Entra registrations and sign-ins.
pub const ENTRA_ORIGIN: &str = "https://login.microsoft.com";

/// Application permissions that allow provisioning passkeys (either one suffices).
pub const PASSKEY_WRITE_PERMISSIONS: [&str; 2] = [
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Passkey.ReadWrite.All",
];
