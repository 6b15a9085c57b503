//! The documented field rules, as pure functions. The sandbox refuses what breaks them;
//! the connector calls the same functions before it orders, so a request that would be
//! refused never leaves.
//!
//! Limits (yubienterprise.md §2a, guide "Create Shipment Request"): first name 15, last
//! name 20, company 20 (required), each street line 60 and all lines together 120,
//! city 60 (required), region 50 and a 2-letter code (required) for US and CA, email 80,
//! telephone 40 of `0-9+-( )` (255 when the country is IN; required), country code 2
//! letters (required), postal code required, delivery type 1 or 2, one key per FIDO
//! Pre-reg shipment.
//!
//! Lengths are counted in UTF-8 bytes: Yubico warns that "special characters count for
//! more than 1 character". The first broken rule is reported, in the order above, with
//! a message in the documented style ("Input for Last Name exceeded limit of 20
//! characters").

use crate::exact::CreateShipmentExact;
use crate::fpr::{CreateFprShipment, MailingAddress, Recipient};
use crate::ids::Base58Id;
use std::fmt;

/// A field the rules talk about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `recipient_company` (`recipient` in the flat shape).
    Company,
    /// `recipient_firstname`.
    FirstName,
    /// `recipient_lastname`.
    LastName,
    /// `recipient_email`.
    Email,
    /// `recipient_telephone`.
    Telephone,
    /// `street_line1`.
    StreetLine1,
    /// `street_line2`.
    StreetLine2,
    /// `street_line3`.
    StreetLine3,
    /// All street lines together.
    StreetAddress,
    /// `city`.
    City,
    /// `region`.
    Region,
    /// `postal_code`.
    PostalCode,
    /// `country_code_2`.
    CountryCode,
    /// `delivery_type`.
    DeliveryType,
    /// `shipment_items`.
    ShipmentItems,
    /// `product_quantity` / `shipment_product_quantity`.
    Quantity,
    /// `customization_id`.
    CustomizationId,
    /// `product_customizations`.
    ProductCustomizations,
    /// `fido_pin_request`.
    PinRequest,
    /// `fido_credential_requests`.
    CredentialRequests,
    /// `customer_reference` (the Console's "Customer reference").
    CustomerReference,
    /// `reseller_organization_id`: the reseller's organisation (22-character Base58),
    /// optional, in the Entra connector's newer create body.
    ResellerOrganizationId,
    /// `address_validation_bypass`: a boolean, optional, in the same body.
    AddressValidationBypass,
}

impl Field {
    /// The label used in messages, as the Console names the field.
    pub fn label(self) -> &'static str {
        match self {
            Self::Company => "Company",
            Self::FirstName => "First Name",
            Self::LastName => "Last Name",
            Self::Email => "Email",
            Self::Telephone => "Phone Number",
            Self::StreetLine1 => "Address",
            Self::StreetLine2 => "Apt or Unit Number",
            Self::StreetLine3 => "Address Line 3",
            Self::StreetAddress => "Street Address",
            Self::City => "City",
            Self::Region => "Region",
            Self::PostalCode => "Postal Code",
            Self::CountryCode => "Country Code",
            Self::DeliveryType => "Delivery Type",
            Self::ShipmentItems => "Shipment Items",
            Self::Quantity => "Quantity",
            Self::CustomizationId => "Customization ID",
            Self::ProductCustomizations => "Product Customizations",
            Self::PinRequest => "PIN Request",
            Self::CredentialRequests => "Credential Requests",
            Self::CustomerReference => "Customer Reference",
            Self::ResellerOrganizationId => "Reseller Organization ID",
            Self::AddressValidationBypass => "Address Validation Bypass",
        }
    }

    /// The wire name (nested shape).
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Company => "recipient_company",
            Self::FirstName => "recipient_firstname",
            Self::LastName => "recipient_lastname",
            Self::Email => "recipient_email",
            Self::Telephone => "recipient_telephone",
            Self::StreetLine1 => "street_line1",
            Self::StreetLine2 => "street_line2",
            Self::StreetLine3 => "street_line3",
            Self::StreetAddress => "street_line1",
            Self::City => "city",
            Self::Region => "region",
            Self::PostalCode => "postal_code",
            Self::CountryCode => "country_code_2",
            Self::DeliveryType => "delivery_type",
            Self::ShipmentItems => "shipment_items",
            Self::Quantity => "product_quantity",
            Self::CustomizationId => "customization_id",
            Self::ProductCustomizations => "product_customizations",
            Self::PinRequest => "fido_pin_request",
            Self::CredentialRequests => "fido_credential_requests",
            Self::CustomerReference => "customer_reference",
            Self::ResellerOrganizationId => "reseller_organization_id",
            Self::AddressValidationBypass => "address_validation_bypass",
        }
    }
}

/// What is wrong with the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Absent or blank.
    Required,
    /// Longer than the limit (UTF-8 bytes).
    TooLong(usize),
    /// All street lines together are longer than the limit.
    CombinedTooLong(usize),
    /// Any other rule; the text completes "Input for `<Field>` ...".
    Invalid(&'static str),
}

/// The first rule a request breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The field.
    pub field: Field,
    /// The rule.
    pub problem: Problem,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.field.label();
        match &self.problem {
            Problem::Required => write!(f, "Input for {label} is required"),
            Problem::TooLong(n) => write!(f, "Input for {label} exceeded limit of {n} characters"),
            Problem::CombinedTooLong(n) => write!(
                f,
                "Input for {label} exceeded combined limit of {n} characters across all street lines"
            ),
            Problem::Invalid(why) => write!(f, "Input for {label} {why}"),
        }
    }
}

/// The limits, by name, for callers that want to trim or warn ahead of time.
pub mod limits {
    /// `recipient_firstname`.
    pub const FIRST_NAME: usize = 15;
    /// `recipient_lastname`.
    pub const LAST_NAME: usize = 20;
    /// `recipient_company` / `recipient`.
    pub const COMPANY: usize = 20;
    /// Each street line.
    pub const STREET_LINE: usize = 60;
    /// All street lines together.
    pub const STREET_TOTAL: usize = 120;
    /// `city`.
    pub const CITY: usize = 60;
    /// `region`.
    pub const REGION: usize = 50;
    /// `recipient_email`.
    pub const EMAIL: usize = 80;
    /// `recipient_telephone`.
    pub const TELEPHONE: usize = 40;
    /// `recipient_telephone` when the country is IN.
    pub const TELEPHONE_IN: usize = 255;
    /// Keys per FIDO Pre-reg shipment.
    pub const FPR_KEYS: u32 = 1;
    /// `customer_reference` (the Console's "Customer reference", 50 characters).
    pub const CUSTOMER_REFERENCE: usize = 50;
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

fn err(field: Field, problem: Problem) -> ValidationError {
    ValidationError { field, problem }
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn max_len(field: Field, value: &str, limit: usize) -> Result {
    if value.len() > limit {
        Err(err(field, Problem::TooLong(limit)))
    } else {
        Ok(())
    }
}

fn required(field: Field, value: &str, limit: usize) -> Result {
    if blank(value) {
        return Err(err(field, Problem::Required));
    }
    max_len(field, value, limit)
}

fn is_us_or_ca(country: &str) -> bool {
    let c = country.trim();
    c.eq_ignore_ascii_case("US") || c.eq_ignore_ascii_case("CA")
}

/// The recipient part. `country_code_2` decides the telephone limit.
pub fn recipient(r: &Recipient, country_code_2: &str) -> Result {
    required(Field::Company, &r.recipient_company, limits::COMPANY)?;
    max_len(Field::FirstName, &r.recipient_firstname, limits::FIRST_NAME)?;
    max_len(Field::LastName, &r.recipient_lastname, limits::LAST_NAME)?;
    email(&r.recipient_email)?;
    telephone(&r.recipient_telephone, country_code_2)
}

/// `recipient_email`: optional; at most 80, and `local@domain` when present.
pub fn email(value: &str) -> Result {
    if value.is_empty() {
        return Ok(());
    }
    max_len(Field::Email, value, limits::EMAIL)?;
    let ok = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            Field::Email,
            Problem::Invalid("is not an email address"),
        ))
    }
}

/// `recipient_telephone`: required; 40 of `0-9+-( )`, or up to 255 when the country
/// is IN.
pub fn telephone(value: &str, country_code_2: &str) -> Result {
    if blank(value) {
        return Err(err(Field::Telephone, Problem::Required));
    }
    let limit = if country_code_2.trim().eq_ignore_ascii_case("IN") {
        limits::TELEPHONE_IN
    } else {
        limits::TELEPHONE
    };
    max_len(Field::Telephone, value, limit)?;
    if value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | ' '))
    {
        Ok(())
    } else {
        Err(err(
            Field::Telephone,
            Problem::Invalid("may only contain the characters 0-9+-( )"),
        ))
    }
}

/// The address part.
pub fn mailing_address(a: &MailingAddress) -> Result {
    required(Field::StreetLine1, &a.street_line1, limits::STREET_LINE)?;
    max_len(Field::StreetLine2, &a.street_line2, limits::STREET_LINE)?;
    max_len(Field::StreetLine3, &a.street_line3, limits::STREET_LINE)?;
    let total = a.street_line1.len() + a.street_line2.len() + a.street_line3.len();
    if total > limits::STREET_TOTAL {
        return Err(err(
            Field::StreetAddress,
            Problem::CombinedTooLong(limits::STREET_TOTAL),
        ));
    }
    required(Field::City, &a.city, limits::CITY)?;
    country_code(&a.country_code_2)?;
    max_len(Field::Region, &a.region, limits::REGION)?;
    if is_us_or_ca(&a.country_code_2) {
        if blank(&a.region) {
            return Err(err(Field::Region, Problem::Required));
        }
        if a.region.len() != 2 || !a.region.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(err(
                Field::Region,
                Problem::Invalid("must be a 2-letter state or province code for US and CA"),
            ));
        }
    }
    if blank(&a.postal_code) {
        return Err(err(Field::PostalCode, Problem::Required));
    }
    Ok(())
}

/// `country_code_2`: two ASCII letters.
pub fn country_code(value: &str) -> Result {
    if blank(value) {
        return Err(err(Field::CountryCode, Problem::Required));
    }
    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(err(
            Field::CountryCode,
            Problem::Invalid("must be a 2-letter ISO country code"),
        ));
    }
    Ok(())
}

/// `delivery_type`: absent (standard), 1 or 2.
pub fn delivery_type(value: Option<u8>) -> Result {
    match value {
        None | Some(1) | Some(2) => Ok(()),
        Some(_) => Err(err(
            Field::DeliveryType,
            Problem::Invalid("must be 1 (standard) or 2 (expedited)"),
        )),
    }
}

/// Everything a contact (recipient + address + delivery type) must satisfy. Used for
/// create and for the merged record of an edit.
pub fn contact(r: &Recipient, a: &MailingAddress, delivery: Option<u8>) -> Result {
    recipient(r, &a.country_code_2)?;
    mailing_address(a)?;
    delivery_type(delivery)
}

/// A whole FIDO Pre-reg create body: the contact, then exactly one item of quantity 1
/// with a customization id and exactly one customization carrying a PIN request and at
/// least one credential request. Whether the ids exist is the server's business.
pub fn fpr_shipment(req: &CreateFprShipment) -> Result {
    fpr_shipment_of(req, limits::FPR_KEYS)
}

/// [`fpr_shipment`] for a fulfiller that ships up to `max_keys` keys in one FIDO
/// Pre-reg shipment (Yubico's published API: 1): one item of quantity 1 to `max_keys`,
/// with one customization per key.
pub fn fpr_shipment_of(req: &CreateFprShipment, max_keys: u32) -> Result {
    contact(&req.recipient, &req.mailing_address, req.delivery_type)?;
    let [item] = req.shipment_items.as_slice() else {
        return Err(err(
            Field::ShipmentItems,
            Problem::Invalid("must hold exactly one item: one YubiKey per FIDO Pre-reg shipment"),
        ));
    };
    let max = max_keys.max(limits::FPR_KEYS);
    if !(limits::FPR_KEYS..=max).contains(&item.product_quantity) {
        return Err(err(
            Field::Quantity,
            Problem::Invalid(if max == limits::FPR_KEYS {
                "must be 1: one YubiKey per FIDO Pre-reg shipment"
            } else {
                "must be at least 1 and at most the keys per FIDO Pre-reg shipment this fulfiller allows"
            }),
        ));
    }
    if blank(&item.customization_id) {
        return Err(err(Field::CustomizationId, Problem::Required));
    }
    if item.product_customizations.len() != item.product_quantity as usize {
        return Err(err(
            Field::ProductCustomizations,
            Problem::Invalid(if max == limits::FPR_KEYS {
                "must hold exactly one entry (one key)"
            } else {
                "must hold one entry per key (product_quantity)"
            }),
        ));
    }
    for custom in &item.product_customizations {
        if blank(&custom.fido_pin_request) {
            return Err(err(Field::PinRequest, Problem::Required));
        }
        if custom.fido_credential_requests.is_empty()
            || custom.fido_credential_requests.iter().any(|c| blank(c))
        {
            return Err(err(Field::CredentialRequests, Problem::Required));
        }
    }
    if let Some(r) = &req.customer_reference {
        max_len(Field::CustomerReference, r, limits::CUSTOMER_REFERENCE)?;
    }
    if let Some(r) = &req.reseller_organization_id
        && Base58Id::parse(r.trim()).is_err()
    {
        return Err(err(
            Field::ResellerOrganizationId,
            Problem::Invalid("must be a 22-character Base58 organization ID"),
        ));
    }
    Ok(())
}

/// The JSON types of the optional members Yubico's newer create body carries
/// (fidoprereg-microsoft api-reference): `reseller_organization_id` a string,
/// `address_validation_bypass` a boolean; `null` counts as absent. Checked on the raw
/// body, before it is read into [`CreateFprShipment`], so that a wrong type is reported
/// as that field's validation error rather than as an unreadable body.
pub fn fpr_optional_member_types(body: &serde_json::Value) -> Result {
    use serde_json::Value;
    match body.get(Field::ResellerOrganizationId.wire_name()) {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(_) => {
            return Err(err(
                Field::ResellerOrganizationId,
                Problem::Invalid("must be a string (a 22-character Base58 organization ID)"),
            ));
        }
    }
    match body.get(Field::AddressValidationBypass.wire_name()) {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => Err(err(
            Field::AddressValidationBypass,
            Problem::Invalid("must be a boolean (true or false)"),
        )),
    }
}

/// A whole flat create (or PUT) body: the contact and at least one item of quantity at
/// least 1.
pub fn shipment_exact(req: &CreateShipmentExact) -> Result {
    contact(
        &req.nested_recipient(),
        &req.nested_address(),
        req.delivery_type,
    )?;
    if req.shipment_items.is_empty() {
        return Err(err(Field::ShipmentItems, Problem::Required));
    }
    if req
        .shipment_items
        .iter()
        .any(|i| i.shipment_product_quantity == 0)
    {
        return Err(err(Field::Quantity, Problem::Invalid("must be at least 1")));
    }
    Ok(())
}
