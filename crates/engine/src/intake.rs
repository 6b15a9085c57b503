//! Entra mode's intake: a validated [`Order`] becomes a recorded request whose shipment
//! is created at the fulfiller, synchronously. What `POST /v1/fprRequest`,
//! `POST /v1/fpr/shipments` and the CSV batch ([`crate::batch`]) share; parsing a body
//! into an order is the caller's business.
//!
//! Order: resolve the user and get creation options from Graph (filling what the order
//! leaves out from the user's Entra profile), seal the requests, record the intent with
//! the sealed response key, then create the shipment at the fulfiller. A fulfiller
//! refusal forgets the intent (nothing stays written); a fulfiller that does not answer
//! leaves the intent to the processor, which looks the shipment up before creating it
//! again.
//!
//! Every refusal is an [`IntakeError`]: the service's error (what the HTTP layer
//! answers) and, where one field is at fault, its name in the create body's words
//! (`user_id`, `recipient_lastname`, `country_code_2`, `product_id`, `emails_to`, ...).

use crate::domain::{Idp, RequestState};
use crate::error::ServiceError;
use crate::secrets::Purpose;
use crate::services::Services;
use crate::store::{Job, ListFilter, Release, RequestRow, Store, now};
use envelope::{CredentialRequest, KeyUse, PinChoice, PinRequest, PrivateJwk, Request};
use std::sync::Arc;
use yubienterprise::fpr::{
    CreateFprShipment, MailingAddress, ProductCustomization, Recipient, ShipmentItemRequest,
};

/// A validated Entra-mode order, ready to seal.
#[derive(Debug)]
pub struct Order {
    /// The user: Entra object id or UPN.
    pub user: String,
    /// How the PIN is chosen.
    pub pin: PinChoice,
    /// The PIN's minimum length the key enforces.
    pub min_pin_length: u8,
    /// The recipient and address, field by field; a field left `None` is taken from the
    /// user's Entra profile.
    pub contact: Contact,
    /// 1 standard, 2 expedited.
    pub delivery_type: Option<u8>,
    /// The one item.
    pub item: Item,
    /// Who receives the PIN instead of the manager (already checked addresses).
    pub emails_to: Vec<String>,
    /// The reseller's organisation, passed to the fulfiller.
    pub reseller_organization_id: Option<String>,
    /// Skip the fulfiller's address validation, passed to it.
    pub address_validation_bypass: Option<bool>,
    /// Where the order came from: the hint in "fill it" messages.
    pub via: Via,
    /// Keys in the one shipment (1; more only for a credential request's keys sharing
    /// a shipment, [`crate::credreq`]): one customization each.
    pub keys: u32,
}

/// Where an order came from (what an error tells the caller to change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A create call's JSON body (`recipient`, `mailing_address`).
    Api,
    /// A CSV batch row (its columns).
    Csv,
    /// The Entra group trigger's reconciliation: only the user's Entra profile.
    Group,
}

/// The fulfiller's order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The YubiKey model.
    pub product_id: u32,
    /// The inventory bucket.
    pub inventory_product_id: u32,
    /// The organisation's customization (CID).
    pub customization_id: String,
}

/// The recipient and the mailing address, each field given or left to Entra.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// `recipient_company`.
    pub recipient_company: Option<String>,
    /// `recipient_email`.
    pub recipient_email: Option<String>,
    /// `recipient_firstname`.
    pub recipient_firstname: Option<String>,
    /// `recipient_lastname`.
    pub recipient_lastname: Option<String>,
    /// `recipient_telephone`.
    pub recipient_telephone: Option<String>,
    /// `street_line1`.
    pub street_line1: Option<String>,
    /// `street_line2`.
    pub street_line2: Option<String>,
    /// `city`.
    pub city: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `postal_code`.
    pub postal_code: Option<String>,
    /// `country_code_2`.
    pub country_code_2: Option<String>,
}

impl Contact {
    /// A whole recipient and/or address as a create body gives them (each object all or
    /// nothing: a member left out of a given object is empty, not Entra's).
    pub fn whole(recipient: Option<Recipient>, address: Option<MailingAddress>) -> Self {
        let mut c = Self::default();
        if let Some(r) = recipient {
            c.recipient_company = Some(r.recipient_company);
            c.recipient_email = Some(r.recipient_email);
            c.recipient_firstname = Some(r.recipient_firstname);
            c.recipient_lastname = Some(r.recipient_lastname);
            c.recipient_telephone = Some(r.recipient_telephone);
        }
        if let Some(a) = address {
            c.street_line1 = Some(a.street_line1);
            c.street_line2 = Some(a.street_line2);
            c.city = Some(a.city);
            c.region = Some(a.region);
            c.postal_code = Some(a.postal_code);
            c.country_code_2 = Some(a.country_code_2);
        }
        c
    }

    /// A contact whose fields `cell` gives by their names in the create body (the CSV
    /// batch's columns).
    pub fn from_fields(cell: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            recipient_company: cell("recipient_company"),
            recipient_email: cell("recipient_email"),
            recipient_firstname: cell("recipient_firstname"),
            recipient_lastname: cell("recipient_lastname"),
            recipient_telephone: cell("recipient_telephone"),
            street_line1: cell("street_line1"),
            street_line2: cell("street_line2"),
            city: cell("city"),
            region: cell("region"),
            postal_code: cell("postal_code"),
            country_code_2: cell("country_code_2"),
        }
    }

    /// The fields given, by their names in the create body.
    pub fn given(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("recipient_company", &self.recipient_company),
            ("recipient_email", &self.recipient_email),
            ("recipient_firstname", &self.recipient_firstname),
            ("recipient_lastname", &self.recipient_lastname),
            ("recipient_telephone", &self.recipient_telephone),
            ("street_line1", &self.street_line1),
            ("street_line2", &self.street_line2),
            ("city", &self.city),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country_code_2", &self.country_code_2),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_deref().map(|v| (name, v)))
    }

    /// The recipient and address when every field is given (nothing to ask Entra).
    fn complete(&self) -> Option<(Recipient, MailingAddress)> {
        Some((
            Recipient {
                recipient_company: self.recipient_company.clone()?,
                recipient_email: self.recipient_email.clone()?,
                recipient_firstname: self.recipient_firstname.clone()?,
                recipient_lastname: self.recipient_lastname.clone()?,
                recipient_telephone: self.recipient_telephone.clone()?,
            },
            MailingAddress {
                street_line1: self.street_line1.clone()?,
                street_line2: self.street_line2.clone()?,
                street_line3: String::new(),
                city: self.city.clone()?,
                region: self.region.clone()?,
                postal_code: self.postal_code.clone()?,
                country_code_2: self.country_code_2.clone()?,
            },
        ))
    }
}

/// Why an order was refused: the service's error, and the field at fault when one is
/// (the create body's name for it).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct IntakeError {
    /// The field at fault, e.g. `recipient_lastname`, `user_id`, `product_id`.
    pub field: Option<&'static str>,
    /// What the HTTP layer answers with.
    pub error: ServiceError,
}

impl IntakeError {
    fn at(field: &'static str, error: ServiceError) -> Self {
        Self {
            field: Some(field),
            error,
        }
    }
}

impl From<ServiceError> for IntakeError {
    fn from(error: ServiceError) -> Self {
        Self { field: None, error }
    }
}

impl From<crate::store::StoreError> for IntakeError {
    fn from(e: crate::store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<IntakeError> for ServiceError {
    fn from(e: IntakeError) -> Self {
        e.error
    }
}

/// What an intake did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// A new request; its shipment exists at the fulfiller.
    Created {
        /// The connector's request id.
        request_id: String,
        /// The fulfiller's shipment id.
        shipment_id: String,
    },
    /// The caller's idempotency key already made this request: nothing new.
    Replayed {
        /// The request.
        request_id: String,
        /// Its shipment, once created (`None`: the processor is still creating it).
        shipment_id: Option<String>,
    },
    /// The user already has an open Entra-mode request (asked for with
    /// [`Duplicates::Refuse`]): nothing new.
    AlreadyOpen {
        /// That request.
        request_id: String,
    },
}

/// Whether a user with an open request may get another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Yes (the create calls: a second key, a replacement).
    Allow,
    /// No: answer [`Intake::AlreadyOpen`] (the CSV batch: a file sent twice orders
    /// nothing twice).
    Refuse,
}

/// The fulfiller's own rules for a recipient and address, in the fulfiller's words,
/// naming the field.
pub fn check_contact(
    r: &Recipient,
    a: &MailingAddress,
    delivery: Option<u8>,
) -> Result<(), IntakeError> {
    yubienterprise::validate::contact(r, a, delivery).map_err(|e| {
        IntakeError::at(
            e.field.wire_name(),
            ServiceError::Fulfiller {
                code: "validation_error".into(),
                message: e.to_string(),
            },
        )
    })
}

/// Checks the PIN contacts' addresses (`enrollment_contacts.emails_to`).
pub fn check_emails(emails: &[String]) -> Result<(), IntakeError> {
    for e in emails {
        yubienterprise::validate::email(e).map_err(|_| {
            IntakeError::at(
                "emails_to",
                ServiceError::Validation(format!(
                    "`enrollment_contacts.emails_to` holds an invalid address: {e:?}"
                )),
            )
        })?;
    }
    Ok(())
}

impl Order {
    /// What can be checked before anything is asked of Graph: the fulfiller's rules when
    /// the whole recipient and address are given.
    pub fn check(&self) -> Result<(), IntakeError> {
        if let Some((r, a)) = self.contact.complete() {
            check_contact(&r, &a, self.delivery_type)?;
        }
        check_emails(&self.emails_to)
    }
}

/// The Graph attributes the intake reads.
const USER_ATTRIBUTES: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "givenName",
    "surname",
    "companyName",
    "mobilePhone",
    "businessPhones",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
];

/// Takes an order: a replay of `idempotency` (`(client, key)`) answers the request it
/// made; otherwise the user is read from Graph, the requests sealed, the intent
/// recorded, and the shipment created at the fulfiller (see the module's doc).
///
/// A fulfiller that does not answer is [`ServiceError::FulfillerUnavailable`] with the
/// kept request's id (empty when nothing was recorded).
pub async fn create(
    state: &Arc<Services>,
    order: Order,
    idempotency: Option<(&str, &str)>,
    duplicates: Duplicates,
) -> Result<Intake, IntakeError> {
    if let Some(replay) = replayed(state, idempotency).await? {
        return Ok(replay);
    }
    order.check()?;

    // The user, their manager (when no PIN contact was given) and creation options from
    // Graph, at once: one round trip instead of three. Graph takes the object id or the
    // UPN in each path; a user it does not know is answered as such whichever call says
    // so first.
    let version = state.config.entra_fido_api_version;
    let challenge_minutes = match version {
        graph::ApiVersion::Beta => Some(state.config.entra_fido_api_challenge_timeout_minutes),
        graph::ApiVersion::V1 => None,
    };
    let need_manager = order.emails_to.is_empty();
    let (user, manager, options) = tokio::join!(
        state.graph.get_user(version, &order.user, USER_ATTRIBUTES),
        async {
            if need_manager {
                Some(
                    state
                        .graph
                        .get_manager(version, &order.user, &["id", "mail", "userPrincipalName"])
                        .await,
                )
            } else {
                None
            }
        },
        state
            .graph
            .creation_options(version, &order.user, challenge_minutes),
    );
    let user = match user {
        Ok(u) => u,
        Err(e) if e.status() == Some(404) => {
            return Err(IntakeError::at(
                "user_id",
                ServiceError::Idp(format!("Could not find user: {}", order.user)),
            ));
        }
        Err(e) => {
            return Err(ServiceError::IdpUnavailable(format!("Microsoft Graph: {e}")).into());
        }
    };
    let label = user
        .user_principal_name
        .clone()
        .or(user.display_name.clone())
        .unwrap_or_else(|| user.id.clone());
    if duplicates == Duplicates::Refuse
        && let Some(open) = open_request_of(state, &user.id).await?
    {
        return Ok(Intake::AlreadyOpen { request_id: open });
    }
    let (recipient, address) = match order.contact.complete() {
        Some(whole) => whole,
        None => {
            let (r, a) = fill_from_entra(&user, &label, &order.contact, order.via)?;
            check_contact(&r, &a, order.delivery_type)?;
            (r, a)
        }
    };
    let contacts = match manager {
        None => order.emails_to.clone(),
        Some(manager) => {
            let manager = manager
                .map_err(|e| ServiceError::IdpUnavailable(format!("Microsoft Graph: {e}")))?;
            let m = manager.and_then(|m| m.mail);
            match (m, recipient.recipient_email.is_empty()) {
                (Some(m), _) => vec![m],
                (None, false) => vec![recipient.recipient_email.clone()],
                (None, true) => {
                    let fix = match order.via {
                        Via::Api => {
                            "pass `recipient.recipient_email` (or `enrollment_contacts.emails_to`)"
                        }
                        Via::Csv => "fill the `contacts` (or `recipient_email`) column",
                        Via::Group => "give the user a `mail` address in Entra",
                    };
                    return Err(IntakeError::at(
                        "emails_to",
                        ServiceError::Validation(format!(
                            "user {label} has no manager with a mail address in Entra and no PIN contact was given; \
                             set a manager, or {fix}"
                        )),
                    ));
                }
            }
        }
    };
    let options = options.map_err(|e| {
        ServiceError::IdpUnavailable(format!("getting FIDO2 creation options: {e}"))
    })?;

    // Seal the requests to a fulfiller transport key.
    let id = uuid::Uuid::new_v4().to_string();
    let response_key =
        PrivateJwk::generate(format!("resp-{id}"), KeyUse::Enc).map_err(ServiceError::internal)?;
    let transport = state.transport_key().await.map_err(|e| ServiceError::FulfillerUnavailable {
        message: format!(
            "cannot read the fulfiller's transport keys ({e}); nothing was recorded, send the request again"
        ),
        request_id: String::new(),
    })?;
    // One customization per key (a shipment of several: each key its own challenge and
    // PIN, all answered to the one response key).
    let mut all_options = vec![options];
    for _ in 1..order.keys {
        all_options.push(
            state
                .graph
                .creation_options(version, &order.user, challenge_minutes)
                .await
                .map_err(|e| {
                    ServiceError::IdpUnavailable(format!("getting FIDO2 creation options: {e}"))
                })?,
        );
    }
    let mut customizations = Vec::with_capacity(all_options.len());
    for options in &all_options {
        let public_key =
            serde_json::to_value(&options.public_key).map_err(ServiceError::internal)?;
        let cred_jwe = envelope::seal_request(
            &Request::Credential(CredentialRequest {
                response_key: response_key.public().clone(),
                origin: graph::ENTRA_ORIGIN.to_owned(),
                public_key,
            }),
            &transport,
        )
        .map_err(ServiceError::internal)?;
        let pin_jwe = envelope::seal_request(
            &Request::Pin(PinRequest {
                response_key: response_key.public().clone(),
                pin: order.pin.clone(),
                min_pin_length: order.min_pin_length,
                force_pin_change: false,
            }),
            &transport,
        )
        .map_err(ServiceError::internal)?;
        customizations.push(ProductCustomization {
            fido_pin_request: pin_jwe,
            fido_credential_requests: vec![cred_jwe],
        });
    }
    let create_body = CreateFprShipment {
        delivery_type: order.delivery_type,
        recipient,
        mailing_address: address,
        shipment_items: vec![ShipmentItemRequest {
            product_id: order.item.product_id,
            inventory_product_id: order.item.inventory_product_id,
            product_quantity: u32::try_from(customizations.len()).unwrap_or(1),
            customization_id: order.item.customization_id,
            product_customizations: customizations,
        }],
        reseller_organization_id: order.reseller_organization_id,
        address_validation_bypass: order.address_validation_bypass,
        // Our request id: after a crash or a lost answer the processor finds the
        // shipment by it instead of ordering a second key.
        customer_reference: Some(id.clone()),
    };
    let sealed_key = state
        .master_key
        .seal(&id, Purpose::ResponseKey, response_key.to_json().as_bytes())
        .map_err(ServiceError::internal)?;
    let t = now();
    let row = RequestRow {
        idp: Idp::Entra,
        id: id.clone(),
        state: RequestState::Creating,
        user_id: user.id.clone(),
        user_label: label,
        pin_contacts: serde_json::to_string(&contacts).map_err(ServiceError::internal)?,
        create_body: serde_json::to_string(&create_body).map_err(ServiceError::internal)?,
        shipment_id: None,
        fulfiller_state: None,
        fulfiller_message: None,
        serial: None,
        firmware: None,
        tracking: None,
        last_error: None,
        created_at: t,
        updated_at: t,
    };
    let job = state
        .store
        .insert_request(
            &row,
            &sealed_key,
            idempotency,
            state.config.processing.lease(),
        )
        .await?;
    tracing::info!(request_id = %id, "request recorded; creating the shipment");
    // The job is leased to this call from the start: no worker creates a second
    // shipment while the fulfiller is slow to answer this one. The create runs in a
    // task of its own, so a caller that hangs up does not stop it halfway.
    let s = state.clone();
    tokio::spawn(async move { create_and_release(&s, job, row).await })
        .await
        .map_err(|e| ServiceError::Internal(format!("creating the shipment: {e}")))?
}

/// The request a caller's idempotency key (`(client, key)`) already made, if any:
/// [`Intake::Replayed`].
pub async fn replayed(
    state: &Services,
    idempotency: Option<(&str, &str)>,
) -> Result<Option<Intake>, IntakeError> {
    let Some((client, key)) = idempotency else {
        return Ok(None);
    };
    let Some(existing) = state.store.idempotent_request(client, key).await? else {
        return Ok(None);
    };
    let row = state
        .store
        .get_request(&existing)
        .await?
        .ok_or_else(|| ServiceError::internal("idempotency key names a missing request"))?;
    Ok(Some(Intake::Replayed {
        request_id: row.id,
        shipment_id: row.shipment_id,
    }))
}

/// The user's open Entra-mode request (any state but `complete` and `deleted`), if any.
async fn open_request_of(state: &Services, user_id: &str) -> Result<Option<String>, IntakeError> {
    let mut offset = 0;
    loop {
        let (rows, total) = state
            .store
            .list_requests(&ListFilter {
                user_id: Some(user_id.to_owned()),
                idp: Some(Idp::Entra.as_str().to_owned()),
                limit: 100,
                offset,
                ..ListFilter::default()
            })
            .await?;
        if let Some(r) = rows
            .iter()
            .find(|r| !matches!(r.state, RequestState::Complete | RequestState::Deleted))
        {
            return Ok(Some(r.id.clone()));
        }
        offset += 100;
        if rows.is_empty() || offset >= total {
            return Ok(None);
        }
    }
}

/// Creates the shipment as the holder of the request's job, then gives the job back.
async fn create_and_release(
    state: &Services,
    job: Job,
    row: RequestRow,
) -> Result<Intake, IntakeError> {
    let id = row.id.clone();
    let made = crate::runner::holding(state, &job, async {
        crate::process::create_shipment(state, row, true).await
    })
    .await;
    let p = state.config.processing;
    match made {
        None => Err(ServiceError::FulfillerUnavailable {
            message: "the request is kept and its shipment is being created; ask again later"
                .into(),
            request_id: id,
        }
        .into()),
        Some(Ok(row)) => {
            state
                .store
                .release(&job, now() + 60, None, Release::Wait)
                .await?;
            // No kick: the job waits for the fulfiller (the next cron tick, or the
            // poll after a minute); waking the runner here would only make it look.
            Ok(Intake::Created {
                request_id: row.id,
                shipment_id: row.shipment_id.unwrap_or_default(),
            })
        }
        Some(Err(crate::process::CreateError::Refused { code, message })) => {
            state.store.forget_request(&id).await?;
            Err(IntakeError {
                field: refused_field(&code, &message),
                error: ServiceError::Fulfiller { code, message },
            })
        }
        Some(Err(crate::process::CreateError::Unavailable(m, asked))) => {
            let delay = crate::runner::backoff(&p, 0, asked);
            state
                .store
                .release(&job, now() + delay, Some(&m), Release::Backoff)
                .await?;
            Err(ServiceError::FulfillerUnavailable {
                message: format!(
                    "the fulfiller did not answer ({m}); the request is kept and the shipment will be created by the processor"
                ),
                request_id: id,
            }
            .into())
        }
        Some(Err(crate::process::CreateError::Internal(m))) => {
            let delay = crate::runner::backoff(&p, 0, None);
            state
                .store
                .release(&job, now() + delay, Some(&m), Release::Backoff)
                .await?;
            Err(ServiceError::Internal(m).into())
        }
    }
}

/// The field a fulfiller's refusal names, from its code and its message (the client
/// keeps only those): a product, bucket or customization the organisation does not
/// have, or the field of a validation message ("Input for Last Name ...").
fn refused_field(code: &str, message: &str) -> Option<&'static str> {
    use yubienterprise::Field as F;
    match code {
        "unknown_customization" => return Some("customization_id"),
        "unknown_product" | "inventory_unavailable" => {
            return Some(if message.contains("Inventory Product ID") {
                "inventory_product_id"
            } else if message.contains("Customization") {
                "customization_id"
            } else {
                "product_id"
            });
        }
        _ => {}
    }
    [
        F::Company,
        F::FirstName,
        F::LastName,
        F::Email,
        F::Telephone,
        F::StreetLine1,
        F::StreetLine2,
        F::StreetAddress,
        F::City,
        F::Region,
        F::PostalCode,
        F::CountryCode,
        F::DeliveryType,
        F::CustomizationId,
        F::ResellerOrganizationId,
    ]
    .into_iter()
    .find(|f| message.contains(&format!("Input for {} ", f.label())))
    .map(F::wire_name)
}

/// Entra's `country` is free text: a 2-letter code, or a few common names.
fn country_code(text: &str) -> Option<String> {
    let t = text.trim();
    if t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic()) {
        return Some(t.to_ascii_uppercase());
    }
    const NAMES: &[(&str, &str)] = &[
        ("united states", "US"),
        ("united states of america", "US"),
        ("usa", "US"),
        ("canada", "CA"),
        ("united kingdom", "GB"),
        ("germany", "DE"),
        ("france", "FR"),
        ("sweden", "SE"),
        ("netherlands", "NL"),
        ("india", "IN"),
        ("australia", "AU"),
        ("japan", "JP"),
    ];
    let lower = t.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, c)| (*c).to_owned())
}

/// The recipient and address: each field the order gives, else the user's Entra
/// profile's; an error names every required field neither has (the first one is the
/// error's field).
fn fill_from_entra(
    user: &graph::User,
    label: &str,
    c: &Contact,
    via: Via,
) -> Result<(Recipient, MailingAddress), IntakeError> {
    // (Entra attribute, the order's field) of each required field neither gives.
    let mut missing: Vec<(&'static str, &'static str)> = Vec::new();
    let mut take = |given: &Option<String>,
                    entra: &Option<String>,
                    attr: &'static str,
                    field: &'static str| {
        if let Some(v) = given {
            return v.clone();
        }
        match entra.as_deref().map(str::trim) {
            Some(x) if !x.is_empty() => x.to_owned(),
            _ => {
                missing.push((attr, field));
                String::new()
            }
        }
    };
    let phone = user.mobile_phone.clone().or_else(|| {
        user.business_phones
            .as_ref()
            .and_then(|p| p.first().cloned())
    });
    let country = user.country.as_deref().and_then(country_code);
    let recipient = Recipient {
        recipient_company: take(
            &c.recipient_company,
            &user.company_name,
            "companyName",
            "recipient_company",
        ),
        recipient_email: c
            .recipient_email
            .clone()
            .or_else(|| user.mail.clone())
            .unwrap_or_default(),
        recipient_firstname: c
            .recipient_firstname
            .clone()
            .or_else(|| user.given_name.clone())
            .unwrap_or_default(),
        recipient_lastname: c
            .recipient_lastname
            .clone()
            .or_else(|| user.surname.clone())
            .unwrap_or_default(),
        recipient_telephone: take(
            &c.recipient_telephone,
            &phone,
            "mobilePhone or businessPhones",
            "recipient_telephone",
        ),
    };
    let address = MailingAddress {
        street_line1: take(
            &c.street_line1,
            &user.street_address,
            "streetAddress",
            "street_line1",
        ),
        street_line2: c.street_line2.clone().unwrap_or_default(),
        street_line3: String::new(),
        city: take(&c.city, &user.city, "city", "city"),
        region: c
            .region
            .clone()
            .or_else(|| user.state.clone())
            .unwrap_or_default(),
        postal_code: take(
            &c.postal_code,
            &user.postal_code,
            "postalCode",
            "postal_code",
        ),
        country_code_2: take(
            &c.country_code_2,
            &country,
            "country (a 2-letter code)",
            "country_code_2",
        ),
    };
    let Some(&(_, first)) = missing.first() else {
        return Ok((recipient, address));
    };
    let attrs: Vec<&str> = missing.iter().map(|(a, _)| *a).collect();
    let it = if missing.len() == 1 { "it" } else { "them" };
    let fix = match via {
        Via::Api => format!("set {it} or pass `recipient`/`mailing_address` in the request"),
        Via::Group => {
            format!("set {it} in Entra: the group trigger ships to the profile's address")
        }
        Via::Csv => {
            let cols: Vec<String> = missing.iter().map(|(_, f)| format!("`{f}`")).collect();
            let column = if cols.len() == 1 { "column" } else { "columns" };
            format!(
                "set {it} in Entra or fill the row's {} {column}",
                cols.join(", ")
            )
        }
    };
    Err(IntakeError::at(
        first,
        ServiceError::Validation(format!(
            "user {label} has no {} in Entra; {fix}",
            attrs.join(", ")
        )),
    ))
}
