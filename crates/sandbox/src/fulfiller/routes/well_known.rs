//! `GET /.well-known/yubico-transport-keys.jwks`, `GET /.well-known/yubico-sign.jwks`
//! (no token). Signing keys carry their `x5c` chain and `x5t#S256`.

use crate::fulfiller::Fulfiller;
use axum::Json;
use axum::extract::State;

pub(crate) async fn transport(State(st): State<Fulfiller>) -> Json<serde_json::Value> {
    Json(st.store.transport_jwks().to_value())
}

pub(crate) async fn signing(State(st): State<Fulfiller>) -> Json<serde_json::Value> {
    Json(st.store.signing_jwks_document())
}
