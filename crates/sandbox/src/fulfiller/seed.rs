//! The organisation the fulfiller sandbox starts with: API tokens, products (ids and
//! names from the spec table), inventory buckets with quantities, customization ids, and
//! the addresses and parties the lifecycle refuses. A default in code; `prereg sandbox
//! --seed FILE` loads the same shape from JSON.

use serde::{Deserialize, Serialize};
use yubienterprise::org::Product;

/// The seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The organisation's id (22-character base58).
    pub organization_id: String,
    /// The API user that owns the tokens (22-character base58).
    pub user_id: String,
    /// Accepted bearer tokens. Sandbox tokens, not secrets: they are printed on start.
    pub tokens: Vec<String>,
    /// The catalogue.
    pub products: Vec<Product>,
    /// Inventory buckets.
    pub inventory: Vec<SeedBucket>,
    /// The organisation's customizations (CIDs).
    pub customizations: Vec<Customization>,
    /// Addresses that fail validation (state 7).
    #[serde(default)]
    pub undeliverable: Undeliverable,
    /// Company or last names on the denied-party list (state 9 at the batch).
    #[serde(default)]
    pub denied_parties: Vec<String>,
    /// The first serial number handed out; each key takes the next.
    #[serde(default = "default_serial")]
    pub first_serial: u32,
    /// Published keys per set (transport, signing); rotation keeps this many.
    #[serde(default = "default_keys_per_set")]
    pub keys_per_set: usize,
    /// Resellers' organisations (22-character base58) this organisation may order
    /// through: a create body's `reseller_organization_id` must be one of them.
    #[serde(default = "default_resellers")]
    pub resellers: Vec<String>,
    /// Keys one FIDO Pre-reg shipment may carry (an item of quantity N with N
    /// customizations). Yubico's published API takes 1 (the default); more models a
    /// fulfiller whose contract ships a primary and a backup key together.
    #[serde(default = "one")]
    pub fpr_keys_per_shipment: u32,
}

/// The reseller organisation the default seed knows.
pub const DEFAULT_RESELLER: &str = "E1ap3BG24ytkAwmQG8NWnP";

fn default_resellers() -> Vec<String> {
    vec![DEFAULT_RESELLER.to_owned()]
}

fn default_serial() -> u32 {
    31_636_842
}

fn default_keys_per_set() -> usize {
    2
}

/// One inventory bucket at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedBucket {
    /// `inventory_product_id`.
    pub inventory_product_id: u32,
    /// The product it holds.
    pub product_id: u32,
    /// Keys left.
    pub quantity: u64,
    /// 1 hardware, 2 subscription.
    #[serde(default = "one")]
    pub inventory_type: u32,
}

fn one() -> u32 {
    1
}

/// A customization (CID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customization {
    /// The id sent as `customization_id`.
    pub customization_id: String,
    /// What it is.
    pub description: String,
    /// The firmware the programmed keys report.
    #[serde(default = "default_firmware")]
    pub firmware_version: String,
}

fn default_firmware() -> String {
    "5.7.1".to_owned()
}

/// Address rules for state 7. Matching is case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Undeliverable {
    /// Postal codes that do not exist.
    pub postal_codes: Vec<String>,
    /// Substrings of `street_line1` the carrier cannot understand.
    pub street_contains: Vec<String>,
}

impl Undeliverable {
    /// Whether an address fails validation.
    pub fn matches(&self, a: &yubienterprise::fpr::MailingAddress) -> bool {
        let street = a.street_line1.to_lowercase();
        self.postal_codes
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case(a.postal_code.trim()))
            || self
                .street_contains
                .iter()
                .any(|s| !s.is_empty() && street.contains(&s.to_lowercase()))
    }
}

/// The token of the default seed.
pub const DEFAULT_TOKEN: &str = "yed-sandbox-token-0001";
/// The FIDO Pre-reg customization of the default seed.
pub const DEFAULT_CUSTOMIZATION: &str = "C19881";

fn product(id: u32, name: &str, tier: u32, fido_prereg: bool) -> Product {
    Product {
        product_id: id,
        product_name: name.to_owned(),
        product_tier: tier,
        inventory_type: 1,
        product_sku: None,
        fido_prereg,
    }
}

impl Default for Seed {
    fn default() -> Self {
        let products = vec![
            product(1, "YubiKey 5 NFC", 2, true),
            product(2, "YubiKey 5 Nano", 2, false),
            product(3, "YubiKey 5C", 2, false),
            product(4, "YubiKey 5C Nano", 2, false),
            product(5, "YubiKey 5Ci", 2, false),
            product(7, "Security Key NFC by Yubico", 1, false),
            product(8, "YubiKey FIPS", 3, false),
            product(9, "YubiKey Nano FIPS", 3, false),
            product(10, "YubiKey C FIPS", 3, false),
            product(11, "YubiKey C Nano FIPS", 3, false),
        ];
        Self {
            organization_id: "UEayb8v4LTHdAshpnk1gMd".to_owned(),
            user_id: "WMktp3sgPSFt4zsgpLDF46".to_owned(),
            tokens: vec![DEFAULT_TOKEN.to_owned()],
            products,
            inventory: vec![
                SeedBucket {
                    inventory_product_id: 1,
                    product_id: 1,
                    quantity: 100,
                    inventory_type: 1,
                },
                SeedBucket {
                    inventory_product_id: 15,
                    product_id: 3,
                    quantity: 16,
                    inventory_type: 1,
                },
                SeedBucket {
                    inventory_product_id: 2,
                    product_id: 2,
                    quantity: 0,
                    inventory_type: 1,
                },
            ],
            customizations: vec![Customization {
                customization_id: DEFAULT_CUSTOMIZATION.to_owned(),
                description: "FIDO Pre-reg, YubiKey 5 NFC, sandbox".to_owned(),
                firmware_version: default_firmware(),
            }],
            undeliverable: Undeliverable {
                postal_codes: vec!["00000".to_owned()],
                street_contains: vec!["Undeliverable".to_owned()],
            },
            denied_parties: vec!["Denied Party Inc".to_owned()],
            first_serial: default_serial(),
            keys_per_set: default_keys_per_set(),
            resellers: default_resellers(),
            fpr_keys_per_shipment: 1,
        }
    }
}

/// Why a seed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Not readable.
    #[error("reading the seed {path}: {source}")]
    Read {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not the shape.
    #[error("parsing the seed {path}: {source}")]
    Parse {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Inconsistent.
    #[error("invalid seed: {0}")]
    Invalid(String),
}

impl Seed {
    /// Loads a JSON seed file.
    pub fn load(path: &std::path::Path) -> Result<Self, SeedError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: p.clone(),
            source,
        })?;
        let seed: Self =
            serde_json::from_str(&text).map_err(|source| SeedError::Parse { path: p, source })?;
        seed.check()?;
        Ok(seed)
    }

    /// Checks that ids are well formed and references resolve.
    pub fn check(&self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        for id in [&self.organization_id, &self.user_id]
            .into_iter()
            .chain(&self.resellers)
        {
            if yubienterprise::Base58Id::parse(id).is_err() {
                return bad(format!("{id:?} is not a 22-character base58 id"));
            }
        }
        if self.tokens.iter().any(|t| t.trim().is_empty()) {
            return bad("a token is empty".into());
        }
        for b in &self.inventory {
            if !self.products.iter().any(|p| p.product_id == b.product_id) {
                return bad(format!(
                    "inventory bucket {} holds unknown product {}",
                    b.inventory_product_id, b.product_id
                ));
            }
        }
        if self.keys_per_set == 0 {
            return bad("keys_per_set must be at least 1".into());
        }
        Ok(())
    }

    /// The product with this id.
    pub fn product(&self, id: u32) -> Option<&Product> {
        self.products.iter().find(|p| p.product_id == id)
    }

    /// Whether `id` is one of the seed's reseller organisations.
    pub fn is_reseller(&self, id: &str) -> bool {
        self.resellers.iter().any(|r| r == id)
    }

    /// The customization with this id.
    pub fn customization(&self, id: &str) -> Option<&Customization> {
        self.customizations
            .iter()
            .find(|c| c.customization_id == id)
    }

    /// Whether a company or last name is on the denied-party list.
    pub fn denied(&self, r: &yubienterprise::fpr::Recipient) -> bool {
        self.denied_parties.iter().any(|d| {
            d.eq_ignore_ascii_case(r.recipient_company.trim())
                || d.eq_ignore_ascii_case(r.recipient_lastname.trim())
        })
    }
}
