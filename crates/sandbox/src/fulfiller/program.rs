//! Programming a key (issue #4 item 6): the step between "sent to fulfilment" (101) and
//! "programmed" (102) of a FIDO Pre-reg shipment. Behind a trait so the store and the
//! lifecycle do not depend on how a key is made; the implementation that opens the
//! requests, drives a `VirtualYubiKey` and seals the responses plugs in here.

use envelope::PrivateJwk;
use yubienterprise::fpr::ProductData;
use yubienterprise::org::Product;

/// One key to program.
pub struct Order<'a> {
    /// The shipment.
    pub shipment_id: &'a str,
    /// The ordered model.
    pub product: &'a Product,
    /// The serial number the key gets.
    pub serial: u32,
    /// Its firmware version (from the customization).
    pub firmware_version: &'a str,
    /// The sealed PIN request.
    pub pin_request: &'a str,
    /// The sealed credential requests, in order.
    pub credential_requests: &'a [String],
    /// Every transport private key that may open the requests.
    pub transport_keys: &'a [PrivateJwk],
    /// The key that signs the responses.
    pub signing_key: &'a PrivateJwk,
}

/// A programmed key.
pub struct Programmed {
    /// What `GET /v1/fpr/shipments/{id}` shows from 103 on.
    pub product_data: ProductData,
    /// The shipped key's state file (what the recipient holds), for
    /// `GET /sandbox/v1/shipments/{id}/key`.
    pub key_state: String,
}

/// Why programming failed. The shipment goes to state 8 ("Error: Processing Error,
/// contact Support") with this text as its note; the text never holds a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ProgramError(pub String);

/// Programs keys.
pub trait Programmer: Send + Sync {
    /// Opens the requests, programs a key, seals the responses. Must not keep any
    /// plaintext, PIN or credential private data after returning.
    fn program(&self, order: &Order<'_>) -> Result<Programmed, ProgramError>;

    /// Whether a key can be programmed now, asked before a shipment is taken to
    /// programming (whose failure is final for the shipment): a depot's real key must be
    /// plugged in and factory fresh. Default: always.
    fn ready(&self) -> Result<(), ProgramError> {
        Ok(())
    }
}

/// The programmer used until a key implementation is plugged in: every FIDO Pre-reg
/// shipment fails at programming, visibly (state 8), and no key is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unavailable;

impl Programmer for Unavailable {
    fn program(&self, _order: &Order<'_>) -> Result<Programmed, ProgramError> {
        Err(ProgramError(
            "key programming is not available in this sandbox build".to_owned(),
        ))
    }
}
