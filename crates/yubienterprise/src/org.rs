//! The organisation's catalogue: `GET /v1/products`, `GET /v1/inventory`
//! (yubienterprise.md §4).

use serde::{Deserialize, Serialize};

/// One product (`GET /v1/products` returns a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The id ("always obtain the product ID from the GET /products API call").
    pub product_id: u32,
    /// e.g. "YubiKey 5 NFC".
    pub product_name: String,
    /// Tier.
    #[serde(default)]
    pub product_tier: u32,
    /// 1 = hardware stock, 2 = subscription (this project's reading).
    #[serde(default)]
    pub inventory_type: u32,
    /// SKU, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_sku: Option<String>,
    /// Can be ordered as a FIDO Pre-reg shipment.
    #[serde(default)]
    pub fido_prereg: bool,
}

/// One inventory bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryBucket {
    /// The bucket id sent as `inventory_product_id`.
    pub inventory_product_id: u32,
    /// The product it holds.
    pub product_id: u32,
    /// The product's name.
    pub product_name: String,
    /// Keys (or credits) left.
    pub organization_product_quantity: u64,
    /// See [`Product::inventory_type`].
    #[serde(default)]
    pub inventory_type: u32,
}

/// `GET /v1/inventory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The buckets.
    pub organization_product_inventory: Vec<InventoryBucket>,
}
