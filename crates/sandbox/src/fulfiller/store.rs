//! The fulfiller's state and every rule that changes it: shipments, inventory, serial
//! numbers, key sets and the lifecycle. In memory behind one mutex (the sandbox is a test
//! double for a remote service); kept apart from the HTTP layer so a persistent store can
//! replace it. Every operation returns the wire shape or an [`ApiError`].

use super::keys::{KeyError, KeyRing, Rotation};
use super::program::{Order, ProgramError, Programmed, Programmer};
use super::seed::Seed;
use envelope::{Jwks, KeyUse};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use yubienterprise::exact::{
    CreateShipmentExact, ExactItem, SearchDescription, ShipmentExact, ShipmentPage,
};
use yubienterprise::fpr::{
    CreateFprShipment, FprShipment, MailingAddress, ProductData, Recipient, ShipmentItem,
    ShipmentStateInfo, UpdateFprShipment,
};
use yubienterprise::org::{Inventory, InventoryBucket, Product};
use yubienterprise::{ApiError, Base58Id, ErrorCode, ShipmentState, ShipmentType, validate};

/// The most a list page holds ("a 100-record limit on all API calls").
pub const MAX_PAGE: u32 = 100;

/// Fields `search_field` accepts.
pub const SEARCHABLE: [&str; 15] = [
    "shipment_id",
    "shipment_state_id",
    "shipment_type",
    "delivery_type",
    "recipient",
    "recipient_email",
    "recipient_firstname",
    "recipient_lastname",
    "recipient_telephone",
    "street_line1",
    "city",
    "region",
    "postal_code",
    "country_code_2",
    "customer_reference",
];

/// One shipment, as the sandbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipment {
    id: Base58Id,
    kind: ShipmentType,
    state: ShipmentState,
    /// Why it is in an error state, for the admin.
    note: Option<String>,
    delivery_type: u8,
    recipient: Recipient,
    address: MailingAddress,
    items: Vec<Item>,
    bypass_validation: bool,
    requested_at: u64,
    shipped_at: Option<u64>,
    delivered_at: Option<u64>,
    /// The sealed requests, until programming (then purged).
    requests: Option<Requests>,
    product_data: Option<ProductData>,
    serial: Option<u32>,
    /// The shipped key's state file. Never part of a dump (nor of a depot's saved state).
    #[serde(skip)]
    parcel: Option<String>,
    /// The buyer's reference (FPR create only), at most 50 characters.
    customer_reference: Option<String>,
    /// The second and further keys of a FIDO Pre-reg shipment of several
    /// (`fpr_keys_per_shipment`): their sealed requests until programming, then their
    /// product data and key state files, in the order's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    more: Vec<MoreKey>,
}

/// A further key of a FIDO Pre-reg shipment of several.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MoreKey {
    requests: Option<Requests>,
    product_data: Option<ProductData>,
    #[serde(skip)]
    parcel: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    id: Base58Id,
    product_id: u32,
    inventory_product_id: u32,
    quantity: u32,
    customization_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Requests {
    pin: String,
    credentials: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Bucket {
    inventory_product_id: u32,
    product_id: u32,
    quantity: u64,
    inventory_type: u32,
}

struct Inner {
    shipments: Vec<Shipment>,
    inventory: Vec<Bucket>,
    next_serial: u32,
    keys: KeyRing,
}

/// One state change made by the sandbox clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Moved {
    /// Which.
    pub shipment_id: String,
    /// From.
    pub from: u16,
    /// To.
    pub to: u16,
}

/// List parameters, already parsed.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// 1..=100.
    pub limit: u32,
    /// Skip.
    pub offset: u64,
    /// `(field, value)`.
    pub search: Option<(String, String)>,
    /// Only this type.
    pub shipment_type: Option<ShipmentType>,
    /// Only this state.
    pub state: Option<ShipmentState>,
}

/// The store.
pub struct Store {
    seed: Seed,
    programmer: Arc<dyn Programmer>,
    inner: Mutex<Inner>,
    holds: crate::fulfiller::hold::Holds,
}

fn api(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

fn not_found(id: &str) -> ApiError {
    api(
        ErrorCode::NotFound,
        format!("Shipment {id} was not found (it may have been deleted)"),
    )
}

fn new_id() -> Result<Base58Id, ApiError> {
    crate::rng::bytes::<22>()
        .map(Base58Id::from_random)
        .ok_or_else(|| {
            api(
                ErrorCode::InternalError,
                "the random number generator failed",
            )
        })
}

impl Store {
    /// A store seeded with `seed`, fresh key sets, and `programmer` for FIDO Pre-reg keys.
    pub fn new(seed: Seed, programmer: Arc<dyn Programmer>) -> Result<Self, KeyError> {
        let keys = KeyRing::generate(seed.keys_per_set)?;
        Ok(Self::with_keys(seed, programmer, keys))
    }

    /// A store seeded with `seed` that publishes and uses `keys` (a depot's kept keys).
    pub fn with_keys(seed: Seed, programmer: Arc<dyn Programmer>, keys: KeyRing) -> Self {
        let inventory = seed
            .inventory
            .iter()
            .map(|b| Bucket {
                inventory_product_id: b.inventory_product_id,
                product_id: b.product_id,
                quantity: b.quantity,
                inventory_type: b.inventory_type,
            })
            .collect();
        Self {
            inner: Mutex::new(Inner {
                shipments: Vec::new(),
                inventory,
                next_serial: seed.first_serial,
                keys,
            }),
            seed,
            programmer,
            holds: Default::default(),
        }
    }

    /// The race tests' pause points ([`crate::fulfiller::hold`]).
    pub fn holds(&self) -> &crate::fulfiller::hold::Holds {
        &self.holds
    }

    /// The seed.
    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `token` is one of the seed's (compared in constant time per token).
    pub fn token_ok(&self, token: &str) -> bool {
        self.seed
            .tokens
            .iter()
            .fold(false, |ok, t| ok | ct_eq(t.as_bytes(), token.as_bytes()))
    }

    // ---- keys ------------------------------------------------------------------------

    /// The published transport JWKS.
    pub fn transport_jwks(&self) -> Jwks {
        self.lock().keys.transport_jwks()
    }

    /// The published signing JWKS.
    pub fn signing_jwks(&self) -> Jwks {
        self.lock().keys.signing_jwks()
    }

    /// The published signing JWKS as served, each key with its `x5c` chain.
    pub fn signing_jwks_document(&self) -> serde_json::Value {
        self.lock().keys.signing_jwks_document()
    }

    /// The sandbox signing CA certificate (DER) that issued the signing keys'
    /// certificates: the trust anchor for their `x5c` chains.
    pub fn signing_ca_der(&self) -> Vec<u8> {
        self.lock().keys.signing_ca_der().to_vec()
    }

    /// Rotates one key set.
    pub fn rotate(&self, key_use: KeyUse) -> Result<Rotation, ApiError> {
        self.lock()
            .keys
            .rotate(key_use)
            .map_err(|e| api(ErrorCode::InternalError, e.to_string()))
    }

    // ---- catalogue -------------------------------------------------------------------

    /// `GET /v1/products`.
    pub fn products(&self) -> Vec<Product> {
        self.seed.products.clone()
    }

    /// `GET /v1/inventory`.
    pub fn inventory(&self) -> Inventory {
        let inner = self.lock();
        Inventory {
            organization_product_inventory: inner
                .inventory
                .iter()
                .map(|b| InventoryBucket {
                    inventory_product_id: b.inventory_product_id,
                    product_id: b.product_id,
                    product_name: self.product_name(b.product_id),
                    organization_product_quantity: b.quantity,
                    inventory_type: b.inventory_type,
                })
                .collect(),
        }
    }

    fn product_name(&self, id: u32) -> String {
        self.seed
            .product(id)
            .map(|p| p.product_name.clone())
            .unwrap_or_default()
    }

    /// `POST /v1/validate-address`: the field rules, then the seed's undeliverable list.
    pub fn validate_address(&self, a: &MailingAddress) -> Result<(), ApiError> {
        validate::mailing_address(a)?;
        if self.seed.undeliverable.matches(a) {
            return Err(ApiError {
                code: ErrorCode::AddressUndeliverable,
                message: ShipmentState::AddressUndeliverable.message().to_owned(),
                field: None,
            });
        }
        Ok(())
    }

    // ---- FIDO Pre-reg shipments --------------------------------------------------------

    /// `POST /v1/fpr/shipments`.
    pub fn create_fpr(&self, req: CreateFprShipment) -> Result<FprShipment, ApiError> {
        validate::fpr_shipment_of(&req, self.seed.fpr_keys_per_shipment)?;
        if let Some(reseller) = &req.reseller_organization_id
            && !self.seed.is_reseller(reseller.trim())
        {
            return Err(ApiError {
                code: ErrorCode::ValidationError,
                message: format!(
                    "Input for Reseller Organization ID {:?} is not a reseller of this organization; leave it out or use the reseller's organization ID from the Console",
                    reseller.trim()
                ),
                field: Some("reseller_organization_id".to_owned()),
            });
        }
        let mut items = Vec::with_capacity(1);
        for i in &req.shipment_items {
            let product = self.check_product(i.product_id, i.inventory_product_id)?;
            if !product.fido_prereg {
                return Err(api(
                    ErrorCode::UnknownProduct,
                    format!(
                        "Product {} ({}) cannot be ordered as a FIDO Pre-reg shipment; see GET /v1/products (fido_prereg)",
                        product.product_id, product.product_name
                    ),
                ));
            }
            let cid = i.customization_id.trim();
            if self.seed.customization(cid).is_none() {
                return Err(ApiError {
                    code: ErrorCode::UnknownCustomization,
                    message: format!(
                        "Customization ID {cid:?} is not one of this organization's; use the CID Yubico provided at onboarding"
                    ),
                    field: Some("customization_id".to_owned()),
                });
            }
            items.push(Item {
                id: new_id()?,
                product_id: i.product_id,
                inventory_product_id: i.inventory_product_id,
                quantity: i.product_quantity,
                customization_id: Some(cid.to_owned()),
            });
        }
        let mut each = req
            .shipment_items
            .first()
            .map(|i| i.product_customizations.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| Requests {
                pin: c.fido_pin_request.clone(),
                credentials: c.fido_credential_requests.clone(),
            });
        let requests = each.next();
        let more: Vec<MoreKey> = each
            .map(|r| MoreKey {
                requests: Some(r),
                product_data: None,
                parcel: None,
            })
            .collect();
        let shipment = Shipment {
            id: new_id()?,
            kind: ShipmentType::AutoFidoPreReg,
            state: ShipmentState::Received,
            note: None,
            delivery_type: req
                .delivery_type
                .unwrap_or(yubienterprise::DELIVERY_STANDARD),
            recipient: req.recipient,
            address: req.mailing_address,
            items,
            bypass_validation: req.address_validation_bypass.unwrap_or(false),
            requested_at: crate::time::now(),
            shipped_at: None,
            delivered_at: None,
            requests,
            product_data: None,
            serial: None,
            parcel: None,
            customer_reference: req
                .customer_reference
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty()),
            more,
        };
        let mut inner = self.lock();
        reserve(&mut inner.inventory, &shipment.items, |id| {
            self.product_name(id)
        })?;
        let view = self.fpr_view(&shipment);
        inner.shipments.push(shipment);
        Ok(view)
    }

    /// `GET /v1/fpr/shipments/{id}`.
    pub fn get_fpr(&self, id: &str) -> Result<FprShipment, ApiError> {
        let inner = self.lock();
        let s = find(&inner, id, true)?;
        Ok(self.fpr_view(&inner.shipments[s]))
    }

    /// `PUT /v1/fpr/shipments/{id}`.
    pub fn update_fpr(&self, id: &str, upd: UpdateFprShipment) -> Result<FprShipment, ApiError> {
        let mut inner = self.lock();
        let i = find(&inner, id, true)?;
        let s = &mut inner.shipments[i];
        editable(s)?;
        let recipient = upd.recipient.unwrap_or_else(|| s.recipient.clone());
        let address = upd.mailing_address.unwrap_or_else(|| s.address.clone());
        let delivery = upd.delivery_type.or(Some(s.delivery_type));
        validate::contact(&recipient, &address, delivery)?;
        apply_contact(s, recipient, address, delivery);
        let s = s.clone();
        Ok(self.fpr_view(&s))
    }

    /// `DELETE /v1/fpr/shipments/{id}` and `DELETE /v1/shipments_exact/{id}`.
    pub fn delete(&self, id: &str, fpr_only: bool) -> Result<(), ApiError> {
        let mut inner = self.lock();
        let i = find(&inner, id, fpr_only)?;
        editable(&inner.shipments[i])?;
        let s = inner.shipments.remove(i);
        release(&mut inner.inventory, &s.items);
        Ok(())
    }

    // ---- plain shipments ---------------------------------------------------------------

    /// `POST /v1/shipments_exact`.
    pub fn create_exact(&self, req: CreateShipmentExact) -> Result<ShipmentExact, ApiError> {
        validate::shipment_exact(&req)?;
        let kind = match req.shipment_type {
            None | Some(ShipmentType::Automated) => ShipmentType::Automated,
            Some(ShipmentType::Manual) => ShipmentType::Manual,
            Some(ShipmentType::AutoFidoPreReg) => {
                return Err(ApiError {
                    code: ErrorCode::ValidationError,
                    message: "Input for Shipment Type cannot be AUTO FIDO PRE-REG here; create FIDO Pre-reg shipments with POST /v1/fpr/shipments".to_owned(),
                    field: Some("shipment_type".to_owned()),
                });
            }
        };
        let items = self.exact_items(&req)?;
        let shipment = Shipment {
            id: new_id()?,
            kind,
            state: ShipmentState::Received,
            note: None,
            delivery_type: req
                .delivery_type
                .unwrap_or(yubienterprise::DELIVERY_STANDARD),
            recipient: req.nested_recipient(),
            address: req.nested_address(),
            items,
            bypass_validation: req.address_validation_bypass.unwrap_or(false),
            requested_at: crate::time::now(),
            shipped_at: None,
            delivered_at: None,
            requests: None,
            product_data: None,
            serial: None,
            parcel: None,
            customer_reference: None,
            more: Vec::new(),
        };
        let mut inner = self.lock();
        reserve(&mut inner.inventory, &shipment.items, |id| {
            self.product_name(id)
        })?;
        let view = self.exact_view(&shipment);
        inner.shipments.push(shipment);
        Ok(view)
    }

    fn exact_items(&self, req: &CreateShipmentExact) -> Result<Vec<Item>, ApiError> {
        req.shipment_items
            .iter()
            .map(|i| {
                self.check_product(i.product_id, i.inventory_product_id)?;
                Ok(Item {
                    id: new_id()?,
                    product_id: i.product_id,
                    inventory_product_id: i.inventory_product_id,
                    quantity: i.shipment_product_quantity,
                    customization_id: None,
                })
            })
            .collect()
    }

    /// `GET /v1/shipments_exact/{id}` (any type, flat).
    pub fn get_exact(&self, id: &str) -> Result<ShipmentExact, ApiError> {
        let inner = self.lock();
        let i = find(&inner, id, false)?;
        Ok(self.exact_view(&inner.shipments[i]))
    }

    /// `PUT /v1/shipments_exact/{id}`: replaces the contact and, for plain shipments, the
    /// items (inventory is re-checked). The items of a FIDO Pre-reg shipment cannot change
    /// (its key is tied to the sealed requests); they are ignored here.
    pub fn update_exact(
        &self,
        id: &str,
        req: CreateShipmentExact,
    ) -> Result<ShipmentExact, ApiError> {
        validate::contact(
            &req.nested_recipient(),
            &req.nested_address(),
            req.delivery_type,
        )?;
        let mut inner = self.lock();
        let i = find(&inner, id, false)?;
        editable(&inner.shipments[i])?;
        if inner.shipments[i].kind != ShipmentType::AutoFidoPreReg {
            validate::shipment_exact(&req)?;
            let new_items = self.exact_items(&req)?;
            let old_items = inner.shipments[i].items.clone();
            release(&mut inner.inventory, &old_items);
            if let Err(e) = reserve(&mut inner.inventory, &new_items, |id| self.product_name(id)) {
                // Put the old reservation back; the shipment is unchanged.
                let _ = reserve(&mut inner.inventory, &old_items, |id| self.product_name(id));
                return Err(e);
            }
            inner.shipments[i].items = new_items;
            if let Some(t) = req.shipment_type
                && t != ShipmentType::AutoFidoPreReg
            {
                inner.shipments[i].kind = t;
            }
        }
        let s = &mut inner.shipments[i];
        let delivery = req.delivery_type.or(Some(s.delivery_type));
        apply_contact(s, req.nested_recipient(), req.nested_address(), delivery);
        if let Some(b) = req.address_validation_bypass {
            s.bypass_validation = b;
        }
        let s = s.clone();
        Ok(self.exact_view(&s))
    }

    /// `GET /v1/shipments_exact`: filter, search, then page, oldest first.
    pub fn list(&self, p: &ListParams) -> ShipmentPage {
        let inner = self.lock();
        let matching: Vec<&Shipment> = inner
            .shipments
            .iter()
            .filter(|s| p.shipment_type.is_none_or(|t| s.kind == t))
            .filter(|s| p.state.is_none_or(|st| s.state == st))
            .filter(|s| {
                p.search
                    .as_ref()
                    .is_none_or(|(f, v)| search_matches(s, f, v))
            })
            .collect();
        let limit = p.limit.clamp(1, MAX_PAGE);
        let shipments = matching
            .iter()
            .skip(usize::try_from(p.offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .map(|s| self.exact_view(s))
            .collect();
        ShipmentPage {
            total_count: matching.len() as u64,
            limit,
            offset: p.offset,
            shipments,
        }
    }

    /// `GET /v1/shipments_exact/search-description`.
    pub fn search_description() -> SearchDescription {
        SearchDescription {
            searchable_fields: SEARCHABLE.iter().map(|s| (*s).to_owned()).collect(),
            filterable_fields: vec!["shipment_type".to_owned(), "shipment_state_id".to_owned()],
        }
    }

    // ---- the sandbox clock ---------------------------------------------------------------

    /// Runs the next processing round: shipments shipped before it are delivered
    /// (103 → 104); the daily batch takes every validated shipment through lock,
    /// fulfilment, programming and carrier pickup (3 → 100 → 101 → 102 → 103, or 9 on a
    /// denied-party match, or 8 when programming fails); then address validation runs
    /// (2 → 3, or 7 for an address the seed marks undeliverable). Each shipment moves
    /// at most one phase per round, so a new shipment is shipped on the second round.
    pub fn advance_round(&self) -> Vec<Moved> {
        let mut inner = self.lock();
        let mut moved = Vec::new();
        let start: Vec<ShipmentState> = inner.shipments.iter().map(|s| s.state).collect();
        for (i, state) in start.into_iter().enumerate() {
            match state {
                ShipmentState::Shipped | ShipmentState::Received => {
                    moved.extend(self.step(&mut inner, i));
                }
                ShipmentState::AddressValidated => {
                    moved.extend(self.run_until(&mut inner, i, ShipmentState::Shipped));
                }
                _ => {}
            }
        }
        moved
    }

    /// A depot's desk programs the FIDO Pre-reg shipment `id`, which must be waiting
    /// for it ([`waits_for_programming`]), through to delivered, with the desk's
    /// serial number for its key if given (a real key's own, read off the key). The
    /// store is held for the steps, not while the keys are made: the shipment is taken
    /// to 101 with its sealed requests taken out (nothing else moves a shipment in 101:
    /// it cannot be edited or deleted, and a depot has no clock), its keys are programmed
    /// outside the store's lock (a real key waits for its touch), and the results are
    /// kept and the shipment moved on to 104 under it again.
    ///
    /// Refused, leaving the shipment as it was: 409 when it is not waiting or no key can
    /// be programmed now ([`Programmer::ready`]: none plugged in, not fresh); 400 (field
    /// `serial_number`) when the shipment holds several keys (a given serial number is
    /// one key's) or a key already handed over for another shipment has that number.
    pub fn program_waiting(&self, id: &str, serial: Option<u32>) -> Result<(), ApiError> {
        let taken = {
            let mut inner = self.lock();
            let i = find(&inner, id, true)?;
            let before = inner.shipments[i].state;
            if !waits_for_programming(before) {
                return Err(api(
                    ErrorCode::InvalidTransition,
                    format!(
                        "Shipment {id} is not waiting at the desk (state {}: {}); only shipments in state 2 or 3 can be programmed",
                        before.id(),
                        before.message()
                    ),
                ));
            }
            // A key that cannot be programmed now (none plugged in, not fresh) leaves
            // the shipment waiting: programming's own failure would be final for it.
            self.programmer.ready().map_err(|e| {
                api(
                    ErrorCode::InvalidTransition,
                    format!(
                        "No key can be programmed for shipment {id} now: {e}; the shipment still waits"
                    ),
                )
            })?;
            if let Some(serial) = serial {
                check_given_serial(&inner, i, serial)?;
                inner.shipments[i].serial = Some(serial);
            }
            self.run_until(&mut inner, i, ShipmentState::SentToFulfilment);
            if inner.shipments[i].state != ShipmentState::SentToFulfilment {
                // Stopped by a check on the way (address, denied party): said by its state.
                return Ok(());
            }
            // `find` above took FIDO Pre-reg shipments only, which always have keys.
            take_keys(&self.seed, &mut inner, i).ok_or_else(|| not_found(id))?
        };
        let result = taken.program(&*self.programmer);
        let mut inner = self.lock();
        let i = find(&inner, id, true)?;
        let from = inner.shipments[i].state;
        if from != ShipmentState::SentToFulfilment {
            return Err(api(
                ErrorCode::InternalError,
                format!(
                    "Shipment {id} left state 101 while its key was programmed (now {}); the key made is not handed over",
                    from.id()
                ),
            ));
        }
        let next = put_programmed(&mut inner, i, result);
        enter(&mut inner, i, from, next);
        self.run_until(&mut inner, i, ShipmentState::Delivered);
        Ok(())
    }

    /// After a depot restarts: a FIDO Pre-reg shipment left in 101 was being programmed
    /// when the depot stopped ([`Self::program_waiting`]); its sealed requests are gone
    /// and its key may be half made, so it goes to 8 saying so. Answers their ids.
    pub fn fail_interrupted_programming(&self) -> Vec<String> {
        let mut inner = self.lock();
        let mut failed = Vec::new();
        for s in &mut inner.shipments {
            if s.kind == ShipmentType::AutoFidoPreReg && s.state == ShipmentState::SentToFulfilment
            {
                s.state = ShipmentState::ProcessingError;
                s.note = Some(
                    "programming was interrupted: the depot stopped while this shipment's key was being programmed; reset that key before using it again, and order anew"
                        .to_owned(),
                );
                s.requests = None;
                for k in &mut s.more {
                    k.requests = None;
                }
                failed.push(s.id.as_str().to_owned());
            }
        }
        failed
    }

    /// Moves one shipment to `to`: forward along the happy path (through every step in
    /// between, with its checks and programming), or to an error state directly.
    pub fn move_to(&self, id: &str, to: ShipmentState) -> Result<Vec<Moved>, ApiError> {
        let mut inner = self.lock();
        let i = find(&inner, id, false)?;
        let from = inner.shipments[i].state;
        if from == to {
            return Ok(Vec::new());
        }
        if matches!(to, ShipmentState::Other(_)) {
            return Err(api(
                ErrorCode::InvalidTransition,
                format!("{} is not a state this sandbox knows", to.id()),
            ));
        }
        if to.is_error() {
            if from.is_final() {
                return Err(api(
                    ErrorCode::InvalidTransition,
                    format!("Shipment {id} is final ({}); it cannot change", from.id()),
                ));
            }
            let s = &mut inner.shipments[i];
            s.state = to;
            s.note = Some("set by the sandbox clock".to_owned());
            s.requests = None;
            for k in &mut s.more {
                k.requests = None;
            }
            return Ok(vec![moved(s, from)]);
        }
        match (from.happy_path_rank(), to.happy_path_rank()) {
            (Some(a), Some(b)) if a < b => Ok(self.run_until(&mut inner, i, to)),
            _ => Err(api(
                ErrorCode::InvalidTransition,
                format!(
                    "Shipment {id} cannot go from {} to {}: the clock only moves forward along 2, 3, 100, 101, 102, 103, 104, or to an error state",
                    from.id(),
                    to.id()
                ),
            )),
        }
    }

    /// `GET /sandbox/v1/shipments/{id}/key`: the shipped key's state file.
    pub fn parcel(&self, id: &str) -> Result<String, ApiError> {
        self.parcel_at(id, 0)
    }

    /// `GET /sandbox/v1/shipments/{id}/key?index=N`: the state file of the shipment's
    /// key N (0 first) of a shipment of several.
    pub fn parcel_at(&self, id: &str, index: usize) -> Result<String, ApiError> {
        let inner = self.lock();
        let i = find(&inner, id, false)?;
        let s = &inner.shipments[i];
        let parcel = match index {
            0 => &s.parcel,
            n => match s.more.get(n - 1) {
                Some(k) => &k.parcel,
                None => {
                    return Err(api(
                        ErrorCode::NotFound,
                        format!(
                            "Shipment {id} holds {} key(s), not {}",
                            s.more.len() + 1,
                            n + 1
                        ),
                    ));
                }
            },
        };
        match (parcel, s.state.has_responses()) {
            (Some(p), true) => Ok(p.clone()),
            _ => Err(api(
                ErrorCode::NotFound,
                format!(
                    "Shipment {id} holds no shipped key (state {}); a FIDO Pre-reg key exists from state 103",
                    s.state.id()
                ),
            )),
        }
    }

    /// The key state file of a programmed shipment, handed over once: the store keeps
    /// no copy afterwards (a depot's desk, where the person takes the key away).
    pub fn take_parcel(&self, id: &str) -> Result<String, ApiError> {
        let mut inner = self.lock();
        let i = find(&inner, id, false)?;
        let s = &mut inner.shipments[i];
        match (s.parcel.take(), s.state.has_responses()) {
            (Some(p), true) => Ok(p),
            (p, _) => {
                s.parcel = p;
                Err(api(
                    ErrorCode::NotFound,
                    format!(
                        "Shipment {id} holds no key to hand over (state {}); it was handed over already or is not programmed",
                        s.state.id()
                    ),
                ))
            }
        }
    }

    /// Replaces the shipments, inventory and next serial number with a dump
    /// ([`Self::dump`]) taken earlier: a depot's saved state, read back on start.
    /// Parcels are not part of a dump, so none comes back.
    pub fn restore(&self, dump: &serde_json::Value) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Saved {
            shipments: Vec<Shipment>,
            inventory: Vec<Bucket>,
            next_serial: u32,
        }
        let saved = Saved::deserialize(dump).map_err(|e| e.to_string())?;
        let mut inner = self.lock();
        inner.shipments = saved.shipments;
        inner.inventory = saved.inventory;
        inner.next_serial = saved.next_serial;
        Ok(())
    }

    /// Everything the sandbox keeps about shipments, for tests and admins: requests,
    /// responses and notes; never the parcel (the shipped key).
    pub fn dump(&self) -> serde_json::Value {
        let inner = self.lock();
        serde_json::json!({
            "shipments": inner.shipments,
            "inventory": inner.inventory,
            "next_serial": inner.next_serial,
        })
    }

    fn run_until(&self, inner: &mut Inner, i: usize, to: ShipmentState) -> Vec<Moved> {
        let mut out = Vec::new();
        let Some(target) = to.happy_path_rank() else {
            return out;
        };
        while inner.shipments[i]
            .state
            .happy_path_rank()
            .is_some_and(|r| r < target)
        {
            match self.step(inner, i) {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    /// One step along the lifecycle, with its checks.
    fn step(&self, inner: &mut Inner, i: usize) -> Option<Moved> {
        let from = inner.shipments[i].state;
        let next = match from {
            ShipmentState::Received => {
                let s = &inner.shipments[i];
                if !s.bypass_validation && self.seed.undeliverable.matches(&s.address) {
                    ShipmentState::AddressUndeliverable
                } else {
                    ShipmentState::AddressValidated
                }
            }
            ShipmentState::AddressValidated => {
                if self.seed.denied(&inner.shipments[i].recipient) {
                    ShipmentState::DplMatch
                } else {
                    ShipmentState::Locked
                }
            }
            ShipmentState::Locked => ShipmentState::SentToFulfilment,
            ShipmentState::SentToFulfilment => self.program(inner, i),
            ShipmentState::Programmed => ShipmentState::Shipped,
            ShipmentState::Shipped => ShipmentState::Delivered,
            _ => return None,
        };
        Some(enter(inner, i, from, next))
    }

    /// 101 → 102 (or 8). Plain shipments only get serial numbers; FIDO Pre-reg shipments
    /// go through the programmer, and their sealed requests are purged either way.
    fn program(&self, inner: &mut Inner, i: usize) -> ShipmentState {
        match take_keys(&self.seed, inner, i) {
            None => ShipmentState::Programmed,
            Some(taken) => {
                let result = taken.program(&*self.programmer);
                put_programmed(inner, i, result)
            }
        }
    }

    // ---- views -----------------------------------------------------------------------

    fn check_product(&self, product_id: u32, bucket_id: u32) -> Result<&Product, ApiError> {
        let product = self.seed.product(product_id).ok_or_else(|| ApiError {
            code: ErrorCode::UnknownProduct,
            message: format!(
                "Product ID {product_id} is not in this organization's catalogue; see GET /v1/products"
            ),
            field: Some("product_id".to_owned()),
        })?;
        let bucket = self
            .seed
            .inventory
            .iter()
            .find(|b| b.inventory_product_id == bucket_id)
            .ok_or_else(|| ApiError {
                code: ErrorCode::UnknownProduct,
                message: format!(
                    "Inventory Product ID {bucket_id} is not one of this organization's buckets; see GET /v1/inventory"
                ),
                field: Some("inventory_product_id".to_owned()),
            })?;
        if bucket.product_id != product_id {
            return Err(ApiError {
                code: ErrorCode::UnknownProduct,
                message: format!(
                    "Inventory Product ID {bucket_id} holds product {} ({}), not product {product_id} ({})",
                    bucket.product_id,
                    self.product_name(bucket.product_id),
                    product.product_name
                ),
                field: Some("inventory_product_id".to_owned()),
            });
        }
        Ok(product)
    }

    fn fpr_view(&self, s: &Shipment) -> FprShipment {
        let responses = s.state.has_responses();
        FprShipment {
            shipment_id: s.id.clone(),
            shipment_state: ShipmentStateInfo {
                shipment_state_id: s.state,
                shipment_state_message: state_message(s),
            },
            shipment_type: Some(s.kind),
            delivery_type: s.delivery_type,
            recipient: s.recipient.clone(),
            mailing_address: s.address.clone(),
            shipment_items: s
                .items
                .iter()
                .map(|i| ShipmentItem {
                    product_id: i.product_id,
                    inventory_product_id: i.inventory_product_id,
                    product_quantity: i.quantity,
                    customization_id: i.customization_id.clone().unwrap_or_default(),
                    product_name: Some(self.product_name(i.product_id)),
                    product_data: if responses {
                        s.product_data.clone().map(|d| {
                            std::iter::once(d)
                                .chain(s.more.iter().filter_map(|k| k.product_data.clone()))
                                .collect()
                        })
                    } else {
                        None
                    },
                })
                .collect(),
            organization_id: Some(self.seed.organization_id.clone()),
            shipment_request_date: Some(crate::time::rfc3339(s.requested_at)),
            tracking_link: tracking(s),
            delivered_date: s.delivered_at.map(crate::time::rfc3339),
            customer_reference: s.customer_reference.clone(),
        }
    }

    fn exact_view(&self, s: &Shipment) -> ShipmentExact {
        let org = Base58Id::parse(&self.seed.organization_id)
            .unwrap_or_else(|_| Base58Id::from_random([0; 22]));
        let rank = s.state.happy_path_rank();
        ShipmentExact {
            shipment_id: s.id.clone(),
            shipment_type: Some(s.kind),
            shipment_state_id: s.state,
            shipment_state_message: state_message(s),
            shipment_items: s
                .items
                .iter()
                .map(|i| ExactItem {
                    inventory_product_id: i.inventory_product_id,
                    shipment_product_id: i.id.clone(),
                    shipment_id: s.id.clone(),
                    product_id: i.product_id,
                    product_name: self.product_name(i.product_id),
                    product_sku: self
                        .seed
                        .product(i.product_id)
                        .and_then(|p| p.product_sku.clone()),
                    product_tier: self.seed.product(i.product_id).map(|p| p.product_tier),
                    shipment_product_quantity: i.quantity,
                })
                .collect(),
            organization_id: org,
            user_id: Base58Id::parse(&self.seed.user_id).ok(),
            country_code_2: s.address.country_code_2.clone(),
            is_delivered: s.state == ShipmentState::Delivered,
            is_sent_to_fulfillment: rank.is_some_and(|r| r >= 3),
            is_shipped: rank.is_some_and(|r| r >= 5),
            recipient: s.recipient.recipient_company.clone(),
            recipient_email: s.recipient.recipient_email.clone(),
            recipient_firstname: s.recipient.recipient_firstname.clone(),
            recipient_lastname: s.recipient.recipient_lastname.clone(),
            recipient_telephone: s.recipient.recipient_telephone.clone(),
            street_line1: s.address.street_line1.clone(),
            street_line2: s.address.street_line2.clone(),
            street_line3: s.address.street_line3.clone(),
            city: s.address.city.clone(),
            region: s.address.region.clone(),
            postal_code: s.address.postal_code.clone(),
            delivery_type: s.delivery_type,
            shipment_request_date: Some(crate::time::rfc3339(s.requested_at)),
            tracking_link: tracking(s),
            delivered_date: s.delivered_at.map(crate::time::rfc3339),
            customer_reference: s.customer_reference.clone(),
        }
    }
}

fn moved(s: &Shipment, from: ShipmentState) -> Moved {
    Moved {
        shipment_id: s.id.to_string(),
        from: from.id(),
        to: s.state.id(),
    }
}

fn state_message(s: &Shipment) -> String {
    match &s.note {
        Some(n) if s.state.is_error() => format!("{}: {n}", s.state.message()),
        _ => s.state.message().to_owned(),
    }
}

fn tracking(s: &Shipment) -> Option<String> {
    s.shipped_at
        .map(|_| format!("https://carrier.sandbox.invalid/track/{}", s.id))
}

/// Whether a FIDO Pre-reg shipment in `state` waits for a depot's desk to program it
/// (2 received, 3 address validated).
pub fn waits_for_programming(state: ShipmentState) -> bool {
    matches!(
        state,
        ShipmentState::Received | ShipmentState::AddressValidated
    )
}

/// A serial number the desk gives for shipment `i`: refused (400, field
/// `serial_number`) when another shipment's handed-over key has it, or when the shipment
/// holds several keys.
fn check_given_serial(inner: &Inner, i: usize, serial: u32) -> Result<(), ApiError> {
    let wanted = serial.to_string();
    let has = |d: &Option<ProductData>| d.as_ref().is_some_and(|d| d.serial_number == wanted);
    let invalid = |message: String| ApiError {
        code: ErrorCode::ValidationError,
        message,
        field: Some("serial_number".to_owned()),
    };
    if let Some(other) = inner.shipments.iter().enumerate().find_map(|(j, s)| {
        (j != i && (has(&s.product_data) || s.more.iter().any(|k| has(&k.product_data))))
            .then(|| s.id.as_str().to_owned())
    }) {
        return Err(invalid(format!(
            "serial number {serial} is a key already programmed for shipment {other}; check the number on the key"
        )));
    }
    let s = &inner.shipments[i];
    if !s.more.is_empty() {
        return Err(invalid(format!(
            "shipment {} holds {} keys; a serial number given at the desk is one key's, so program it without one",
            s.id,
            s.more.len() + 1
        )));
    }
    Ok(())
}

/// Puts shipment `i` in state `next` (from `from`), with the note and time that state
/// brings.
fn enter(inner: &mut Inner, i: usize, from: ShipmentState, next: ShipmentState) -> Moved {
    let now = crate::time::now();
    let s = &mut inner.shipments[i];
    s.state = next;
    match next {
        ShipmentState::AddressUndeliverable => {
            s.note = Some("the address validation service could not understand or deliver to this address; correct it with PUT".to_owned());
        }
        ShipmentState::DplMatch => {
            s.note = Some("the recipient matches the denied-party list".to_owned());
        }
        ShipmentState::AddressValidated => s.note = None,
        ShipmentState::Shipped => s.shipped_at = Some(now),
        ShipmentState::Delivered => s.delivered_at = Some(now),
        _ => {}
    }
    moved(s, from)
}

/// A FIDO Pre-reg shipment's keys taken out of the store to be programmed: what the
/// programmer needs, owned, so that the store need not be held while keys are made (a
/// real key waits for a touch).
struct Taken {
    id: String,
    product: Option<Product>,
    firmware: String,
    /// Each key's serial number and sealed requests, the first key first.
    keys: Vec<(u32, Option<Requests>)>,
    transport: Vec<envelope::PrivateJwk>,
    signing: Option<envelope::PrivateJwk>,
}

impl Taken {
    /// Programs every key of the shipment, in order; the first failure ends it.
    fn program(&self, programmer: &dyn Programmer) -> Result<Vec<Programmed>, ProgramError> {
        let mut out = Vec::with_capacity(self.keys.len());
        for (n, (serial, requests)) in self.keys.iter().enumerate() {
            let Some(r) = requests else {
                return Err(ProgramError(if n == 0 {
                    "the shipment has no sealed requests to program with".to_owned()
                } else {
                    "a further key of the shipment has no sealed requests".to_owned()
                }));
            };
            let (Some(product), Some(signing_key)) = (&self.product, &self.signing) else {
                return Err(ProgramError(
                    "the shipment has no product or signing key to program with".to_owned(),
                ));
            };
            out.push(programmer.program(&Order {
                shipment_id: &self.id,
                product,
                serial: *serial,
                firmware_version: &self.firmware,
                pin_request: &r.pin,
                credential_requests: &r.credentials,
                transport_keys: &self.transport,
                signing_key,
            })?);
        }
        Ok(out)
    }
}

/// Gives shipment `i` its serial numbers (the desk's, else the seed's counter) and, for
/// a FIDO Pre-reg shipment, takes its sealed requests out (they are purged whatever
/// programming does) with what programming them needs.
fn take_keys(seed: &Seed, inner: &mut Inner, i: usize) -> Option<Taken> {
    // A serial number the desk gave (a real key's own) goes first.
    let serial = match inner.shipments[i].serial {
        Some(given) => given,
        None => next_free_serial(inner),
    };
    inner.shipments[i].serial = Some(serial);
    if inner.shipments[i].kind != ShipmentType::AutoFidoPreReg {
        return None;
    }
    let transport = inner.keys.transport_private();
    let signing = inner.keys.current_signing().cloned();
    // The further keys of a shipment of several, each with the next free serial.
    let more: Vec<u32> = (0..inner.shipments[i].more.len())
        .map(|_| next_free_serial(inner))
        .collect();
    let s = &mut inner.shipments[i];
    let mut keys = vec![(serial, s.requests.take())];
    for (k, serial) in s.more.iter_mut().zip(more) {
        keys.push((serial, k.requests.take()));
    }
    let item = s.items.first();
    let taken = Taken {
        id: s.id.as_str().to_owned(),
        product: item.and_then(|it| seed.product(it.product_id)).cloned(),
        firmware: item
            .and_then(|it| it.customization_id.as_deref())
            .and_then(|c| seed.customization(c))
            .map_or_else(|| "5.7.1".to_owned(), |c| c.firmware_version.clone()),
        keys,
        transport,
        signing,
    };
    Some(taken)
}

/// The seed counter's next serial number that no shipment's key has: a depot's desk
/// may have given a key a number the counter would reach.
fn next_free_serial(inner: &mut Inner) -> u32 {
    let taken = |n: u32| {
        let text = n.to_string();
        inner.shipments.iter().any(|s| {
            s.serial == Some(n)
                || s.more.iter().any(|k| {
                    k.product_data
                        .as_ref()
                        .is_some_and(|d| d.serial_number == text)
                })
        })
    };
    let mut n = inner.next_serial;
    while taken(n) {
        n = n.wrapping_add(1);
    }
    inner.next_serial = n.wrapping_add(1);
    n
}

/// Keeps what programming shipment `i` made (or why it failed) and says the state it
/// goes to: 102, or 8 with the failure as its note.
fn put_programmed(
    inner: &mut Inner,
    i: usize,
    result: Result<Vec<Programmed>, ProgramError>,
) -> ShipmentState {
    let s = &mut inner.shipments[i];
    match result {
        Ok(keys) => {
            let mut keys = keys.into_iter();
            if let Some(p) = keys.next() {
                s.product_data = Some(p.product_data);
                s.parcel = Some(p.key_state);
            }
            for (k, p) in s.more.iter_mut().zip(keys) {
                k.product_data = Some(p.product_data);
                k.parcel = Some(p.key_state);
            }
            ShipmentState::Programmed
        }
        Err(e) => {
            tracing::warn!(shipment = %s.id, error = %e, "programming failed");
            s.note = Some(format!("programming failed: {e}"));
            ShipmentState::ProcessingError
        }
    }
}

fn find(inner: &Inner, id: &str, fpr_only: bool) -> Result<usize, ApiError> {
    if Base58Id::parse(id).is_err() {
        return Err(api(
            ErrorCode::InvalidShipmentId,
            format!(
                "{:?} is not a shipment id (22-character base58)",
                id.chars().take(40).collect::<String>()
            ),
        ));
    }
    inner
        .shipments
        .iter()
        .position(|s| s.id.as_str() == id && (!fpr_only || s.kind == ShipmentType::AutoFidoPreReg))
        .ok_or_else(|| not_found(id))
}

fn editable(s: &Shipment) -> Result<(), ApiError> {
    if s.state.is_editable() {
        Ok(())
    } else {
        Err(api(
            ErrorCode::NotEditable,
            format!(
                "Shipment {} is locked for processing and fulfillment (state {}: {}); it can no longer be edited or deleted",
                s.id,
                s.state.id(),
                s.state.message()
            ),
        ))
    }
}

/// Applies an edit. An edited shipment in an editable error state (1, 6-9) goes back to
/// address validation (2), as a corrected order would.
fn apply_contact(s: &mut Shipment, r: Recipient, a: MailingAddress, delivery: Option<u8>) {
    s.recipient = r;
    s.address = a;
    s.delivery_type = delivery.unwrap_or(s.delivery_type);
    if s.state.is_error() {
        s.state = ShipmentState::Received;
        s.note = None;
    }
}

fn reserve(
    inventory: &mut [Bucket],
    items: &[Item],
    name: impl Fn(u32) -> String,
) -> Result<(), ApiError> {
    for b in inventory.iter() {
        let wanted: u64 = items
            .iter()
            .filter(|i| i.inventory_product_id == b.inventory_product_id)
            .map(|i| u64::from(i.quantity))
            .sum();
        if wanted > b.quantity {
            return Err(ApiError {
                code: ErrorCode::InventoryUnavailable,
                message: format!(
                    "Inventory Product ID {} ({}) has {} left; {wanted} requested",
                    b.inventory_product_id,
                    name(b.product_id),
                    b.quantity
                ),
                field: Some("inventory_product_id".to_owned()),
            });
        }
    }
    for b in inventory.iter_mut() {
        for i in items
            .iter()
            .filter(|i| i.inventory_product_id == b.inventory_product_id)
        {
            b.quantity -= u64::from(i.quantity);
        }
    }
    Ok(())
}

fn release(inventory: &mut [Bucket], items: &[Item]) {
    for b in inventory.iter_mut() {
        for i in items
            .iter()
            .filter(|i| i.inventory_product_id == b.inventory_product_id)
        {
            b.quantity = b.quantity.saturating_add(u64::from(i.quantity));
        }
    }
}

fn search_matches(s: &Shipment, field: &str, value: &str) -> bool {
    let v = value.trim();
    let contains = |hay: &str| hay.to_lowercase().contains(&v.to_lowercase());
    match field {
        "shipment_id" => s.id.as_str() == v,
        "shipment_state_id" => v.parse::<u16>().is_ok_and(|n| s.state.id() == n),
        "delivery_type" => v.parse::<u8>().is_ok_and(|n| s.delivery_type == n),
        "shipment_type" => ShipmentType::parse(v).is_some_and(|t| s.kind == t),
        "recipient" => contains(&s.recipient.recipient_company),
        "recipient_email" => contains(&s.recipient.recipient_email),
        "recipient_firstname" => contains(&s.recipient.recipient_firstname),
        "recipient_lastname" => contains(&s.recipient.recipient_lastname),
        "recipient_telephone" => contains(&s.recipient.recipient_telephone),
        "street_line1" => contains(&s.address.street_line1),
        "city" => contains(&s.address.city),
        "region" => contains(&s.address.region),
        "postal_code" => contains(&s.address.postal_code),
        "country_code_2" => s.address.country_code_2.eq_ignore_ascii_case(v),
        "customer_reference" => s.customer_reference.as_deref() == Some(v),
        _ => false,
    }
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
