//! Shipment states (`shipment_state_id`), as `shared/spec/system.md` fixes them for this
//! project. Public sources confirm 1, 6-9, 99, 103 (responses available), 104 (delivered),
//! 105 and 106; the rest is this project's documented choice. Unknown codes are kept as
//! [`ShipmentState::Other`] and treated as "still open".

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A shipment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentState {
    /// 1: Incomplete Shipping Request (error).
    IncompleteRequest,
    /// 2: received, awaiting address validation.
    Received,
    /// 3: address validated, awaiting the daily batch.
    AddressValidated,
    /// 6: Incomplete (error).
    Incomplete,
    /// 7: Address is undeliverable or could not be understood (error).
    AddressUndeliverable,
    /// 8: Error: Processing Error, contact Support.
    ProcessingError,
    /// 9: Error: DPL Match (denied-party list).
    DplMatch,
    /// 99: Error: Shipping error, contact Support.
    ShippingError,
    /// 100: locked for processing.
    Locked,
    /// 101: sent to fulfilment (programming).
    SentToFulfilment,
    /// 102: programmed, awaiting carrier.
    Programmed,
    /// 103: shipped; FIDO Pre-reg responses are available.
    Shipped,
    /// 104: delivered; responses still available.
    Delivered,
    /// 105: Shipment Lost/Missing (error).
    Lost,
    /// 106: Delivery Exception (error).
    DeliveryException,
    /// A code this crate does not know: "still open".
    Other(u16),
}

/// Every known state, in lifecycle order (happy path first, then errors).
pub const KNOWN: [ShipmentState; 15] = [
    ShipmentState::Received,
    ShipmentState::AddressValidated,
    ShipmentState::Locked,
    ShipmentState::SentToFulfilment,
    ShipmentState::Programmed,
    ShipmentState::Shipped,
    ShipmentState::Delivered,
    ShipmentState::IncompleteRequest,
    ShipmentState::Incomplete,
    ShipmentState::AddressUndeliverable,
    ShipmentState::ProcessingError,
    ShipmentState::DplMatch,
    ShipmentState::ShippingError,
    ShipmentState::Lost,
    ShipmentState::DeliveryException,
];

impl ShipmentState {
    /// From the wire id.
    pub fn from_id(id: u16) -> Self {
        KNOWN
            .into_iter()
            .find(|s| s.id() == id)
            .unwrap_or(Self::Other(id))
    }

    /// The wire id.
    pub fn id(self) -> u16 {
        match self {
            Self::IncompleteRequest => 1,
            Self::Received => 2,
            Self::AddressValidated => 3,
            Self::Incomplete => 6,
            Self::AddressUndeliverable => 7,
            Self::ProcessingError => 8,
            Self::DplMatch => 9,
            Self::ShippingError => 99,
            Self::Locked => 100,
            Self::SentToFulfilment => 101,
            Self::Programmed => 102,
            Self::Shipped => 103,
            Self::Delivered => 104,
            Self::Lost => 105,
            Self::DeliveryException => 106,
            Self::Other(id) => id,
        }
    }

    /// The `shipment_state_message` (the documented texts for the error codes).
    pub fn message(self) -> &'static str {
        match self {
            Self::IncompleteRequest => "Incomplete Shipping Request",
            Self::Received => "Received, awaiting address validation",
            Self::AddressValidated => "Address validated, awaiting processing",
            Self::Incomplete => "Incomplete",
            Self::AddressUndeliverable => "Address is undeliverable or could not be understood",
            Self::ProcessingError => "Error: Processing Error, contact Support",
            Self::DplMatch => "Error: DPL Match",
            Self::ShippingError => "Error: Shipping error, contact Support",
            Self::Locked => "Locked for processing",
            Self::SentToFulfilment => "Sent to fulfillment",
            Self::Programmed => "Programmed, awaiting carrier",
            Self::Shipped => "Shipped",
            Self::Delivered => "Delivered",
            Self::Lost => "Shipment Lost/Missing",
            Self::DeliveryException => "Delivery Exception",
            Self::Other(_) => "Unknown state",
        }
    }

    /// An error state (1, 6-9, 99, 105, 106).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Self::IncompleteRequest
                | Self::Incomplete
                | Self::AddressUndeliverable
                | Self::ProcessingError
                | Self::DplMatch
                | Self::ShippingError
                | Self::Lost
                | Self::DeliveryException
        )
    }

    /// Edit and delete are allowed: before the lock (ids up to 9: 2, 3 and the error
    /// states 1, 6-9).
    pub fn is_editable(self) -> bool {
        self.id() <= 9
    }

    /// FIDO Pre-reg `product_data` is present (103, 104).
    pub fn has_responses(self) -> bool {
        matches!(self, Self::Shipped | Self::Delivered)
    }

    /// Nothing more will happen to the shipment by itself (delivered, or an error after
    /// the lock: 99, 105, 106).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::ShippingError | Self::Lost | Self::DeliveryException
        )
    }

    /// The position on the happy path 2 → 3 → 100 → 101 → 102 → 103 → 104, if on it.
    pub fn happy_path_rank(self) -> Option<usize> {
        KNOWN[..7].iter().position(|s| *s == self)
    }
}

impl Serialize for ShipmentState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.id())
    }
}

impl<'de> Deserialize<'de> for ShipmentState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_id(u16::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_codes_are_kept() {
        for s in KNOWN {
            assert_eq!(ShipmentState::from_id(s.id()), s);
        }
        assert_eq!(ShipmentState::from_id(42), ShipmentState::Other(42));
        assert!(!ShipmentState::Other(42).is_error());
    }

    #[test]
    fn editable_window_ends_at_the_lock() {
        assert!(ShipmentState::Received.is_editable());
        assert!(ShipmentState::AddressUndeliverable.is_editable());
        assert!(!ShipmentState::Locked.is_editable());
        assert!(!ShipmentState::Shipped.is_editable());
        assert!(ShipmentState::Shipped.has_responses());
        assert!(ShipmentState::Delivered.has_responses());
        assert!(!ShipmentState::Programmed.has_responses());
    }
}
