//! Okta, as prereg talks to it: wire types (serde) and a small async client.
//!
//! Lives here: users and the profile fields used for shipping ([`users`]), groups, the
//! error body ([`error`]), event hooks ([`hooks`]), the `/webauthn-registration/api/v1/`
//! bodies ([`prereg`]), the OAuth token exchange for a service app ([`oauth`]) and
//! [`Client`] (SSWS API token or OAuth `private_key_jwt` with an RSA or EC key; list calls
//! follow Okta's `Link: rel="next"` pages, [`paging`]).
//!
//! Does not live here: the envelope cryptography (crate `envelope`), WebAuthn checks
//! (crate `webauthn`), the Okta sandbox (`sandbox::okta`).
//!
//! The wire quirks of the real API are handled at the edge: `credResponseJWE` (older
//! spec) is read as `credResponseJwe`; `authenticatorEnrollmentId` in send-pin may be a
//! string or an array; `errorCauses` may be an array or a single object; a JWKS object
//! (`{"keys":[...]}`) where the API wants a bare array of JWKs is refused with a message
//! saying so.
#![forbid(unsafe_code)]

mod client;
pub mod error;
pub mod hooks;
mod keys;
pub use keys::check_assertion_key;
pub mod oauth;
pub mod paging;
pub mod prereg;
pub mod users;

pub use client::{Auth, Client, ClientError};
pub use error::{ErrorBody, ErrorCause};
pub use prereg::{
    EcKeyJwk, EnrollmentActivationRequest, EnrollmentActivationResponse,
    EnrollmentInitializationRequest, EnrollmentInitializationResponse, FulfillmentData,
    FulfillmentRequest, OneOrMany, PinRequest, WebAuthnCredRequest, WebAuthnCredResponse,
    WebAuthnPreregistrationFactor,
};
pub use users::{Group, GroupProfile, User, UserProfile, UserStatus};

/// The only fulfillment provider the API knows.
pub const FULFILLMENT_PROVIDER: &str = "yubico";

/// Scopes a service app needs for the preregistration flow.
pub const SCOPES: &str = "okta.users.read okta.users.manage";
