//! The YubiEnterprise Delivery API with FIDO Pre-reg, as this project speaks it
//! (`shared/spec/yubienterprise.md`).
//!
//! Lives here: the wire types of the fulfiller API ([`fpr`] for the nested FIDO Pre-reg
//! shipments, [`exact`] for the flat `shipments_exact` family, [`org`] for products and
//! inventory, [`error`] for the error body), the shipment states ([`state`]), the
//! documented field limits as pure functions ([`validate`]) that both the sandbox and the
//! connector call, 22-character base58 ids ([`ids`]) and a small async HTTP client
//! ([`client`]).
//! Does not live here: any server, storage, or envelope cryptography (see the `envelope`
//! crate); the client only moves the sealed JWE strings around.
#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod exact;
pub mod fpr;
pub mod ids;
mod num;
pub mod org;
pub mod state;
pub mod validate;

pub use client::{Client, ClientError, ListQuery};
pub use error::{ApiError, ErrorCode};
pub use ids::Base58Id;
pub use state::ShipmentState;
pub use validate::{Field, ValidationError};

/// The `shipment_type` values the Console shows (Requesting_Shipment.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ShipmentType {
    /// Created by hand in the Console.
    #[serde(rename = "MANUAL")]
    Manual,
    /// Created through the API (`POST /v1/shipments_exact`).
    #[serde(rename = "AUTOMATED")]
    Automated,
    /// A FIDO Pre-reg shipment (`POST /v1/fpr/shipments`).
    #[serde(rename = "AUTO FIDO PRE-REG")]
    AutoFidoPreReg,
}

impl ShipmentType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Automated => "AUTOMATED",
            Self::AutoFidoPreReg => "AUTO FIDO PRE-REG",
        }
    }

    /// Parses the wire string, case-insensitively (the Console's filter label is
    /// "Auto FIDO Pre-reg").
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Manual, Self::Automated, Self::AutoFidoPreReg]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// `delivery_type`: 1 = standard (the default), 2 = expedited.
pub const DELIVERY_STANDARD: u8 = 1;
/// `delivery_type`: expedited.
pub const DELIVERY_EXPEDITED: u8 = 2;
