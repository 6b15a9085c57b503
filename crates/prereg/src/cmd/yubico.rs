//! `prereg yubico ...`: the guide's four Yubico action cards (Okta Workflows) from the
//! command line, the same functions the connector serves at `/v1/yubico/...`
//! (`connector::okta::cards`, docs/yubico-cards.md).
//!
//! The fulfiller comes from `--config PATH` (a `prereg serve` configuration; the
//! guide's environment variables override it there too) or, without `--config`, from
//! the environment: `YE_API_BASE_URL`, `YED_API_TOKEN` (never a flag: it would show in
//! the process list), `YE_JWKS_TRANSPORT_ENDPOINT`, `YE_JWKS_SIGN_ENDPOINT`.
//!
//! Input is a JSON file (`--input PATH`, `-` for standard input) with the card's field
//! names, flags, or both (a flag overrides the same field of the file). Output is the
//! card's JSON on standard output. A failure prints one line on standard error, naming
//! the field when the input is at fault, and exits 1; nothing is sent to the fulfiller
//! when the input breaks one of its limits.

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use connector::okta::cards::{self, BuildShipmentItem, CardError, CreateShipmentRequest};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

use super::read_input;

/// Where the fulfiller is.
#[derive(Debug, Args)]
pub struct Fulfiller {
    /// A `prereg serve` configuration file to take the fulfiller URL, token and JWKS
    /// endpoints from. Without it they come from YE_API_BASE_URL, YED_API_TOKEN,
    /// YE_JWKS_TRANSPORT_ENDPOINT and YE_JWKS_SIGN_ENDPOINT.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// The input file and fields of "Create Shipment Request".
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    fulfiller: Fulfiller,
    /// JSON file with the card's fields (docs/yubico-cards.md), or `-` for standard
    /// input. Flags override its fields.
    #[arg(long, value_name = "PATH")]
    input: Option<String>,
    /// Company (required, at most 20).
    #[arg(long)]
    company: Option<String>,
    /// Email (at most 80; receives the tracking number).
    #[arg(long)]
    email: Option<String>,
    /// First Name (at most 15).
    #[arg(long)]
    first_name: Option<String>,
    /// Last Name (at most 20).
    #[arg(long)]
    last_name: Option<String>,
    /// Phone Number (required, at most 40 of 0-9+-( ); 255 for IN).
    #[arg(long)]
    phone_number: Option<String>,
    /// Address (required, at most 60).
    #[arg(long)]
    address: Option<String>,
    /// Apt or Unit Number (at most 60).
    #[arg(long)]
    apt_or_unit_number: Option<String>,
    /// City (required, at most 60).
    #[arg(long)]
    city: Option<String>,
    /// Region (2-letter code, required for US and CA).
    #[arg(long)]
    region: Option<String>,
    /// Postal Code (required).
    #[arg(long)]
    postal_code: Option<String>,
    /// Country Code (required, 2-letter ISO).
    #[arg(long)]
    country_code: Option<String>,
    /// Delivery Type: 1 standard (default), 2 expedited.
    #[arg(long)]
    delivery_type: Option<u8>,
    /// A shipment item JSON file (the output of `prereg yubico build-item`), or `-`.
    /// Replaces the input's shipment_items.
    #[arg(long = "item", value_name = "ITEM.json")]
    items: Vec<String>,
}

/// The input file and fields of "Build Shipment Item".
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// JSON file with the card's fields, or `-` for standard input. Flags override it.
    #[arg(long, value_name = "PATH")]
    input: Option<String>,
    /// Customization ID (the organisation's CID).
    #[arg(long)]
    customization_id: Option<String>,
    /// Product ID (the YubiKey model).
    #[arg(long)]
    product_id: Option<u32>,
    /// Inventory Product ID (the inventory bucket).
    #[arg(long)]
    inventory_product_id: Option<u32>,
    /// Quantity (must be 1; the default).
    #[arg(long)]
    quantity: Option<u32>,
    /// PIN Request - Encrypted: the compact JWE from Okta's enroll (`pinRequestJwe`),
    /// or `@FILE` to read it from a file (`@-` for standard input).
    #[arg(long, value_name = "JWE")]
    pin_request: Option<String>,
    /// Credential Requests - Encrypted: a compact JWE from Okta's enroll
    /// (`credRequests[].credRequestJwe`), or `@FILE`. Repeat for several, in order.
    #[arg(long = "credential-request", value_name = "JWE")]
    credential_requests: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// "Create Shipment Request": order a pre-registered YubiKey at the fulfiller
    /// (`POST /v1/fpr/shipments`). Prints {"shipment_id", "shipment_state_id"}.
    CreateShipment(Box<CreateArgs>),
    /// "Get Shipment Details": the state and items of a shipment, with product_data
    /// (serial, version, fido_pin_response, fido_credential_response) once shipped.
    Shipment {
        #[command(flatten)]
        fulfiller: Fulfiller,
        /// The shipment id (22 characters).
        id: String,
    },
    /// "Build Shipment Item": the shipment item the fulfiller takes, from the Okta
    /// enroll JWEs (relayed unchanged). Offline. Prints {"shipment_item": {...}}.
    BuildItem(BuildArgs),
    /// "Get Public Transport Keys and Signing Certificate": the two JWKS. Prints
    /// {"transport_keys_jwks", "signing_public_keys_jwks"}.
    Keys {
        #[command(flatten)]
        fulfiller: Fulfiller,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::BuildItem(a) => {
            let input: BuildShipmentItem = parse(build_input(a)?)?;
            let item = cards::build_shipment_item(&input).map_err(card_error)?;
            print_json(&json!({ "shipment_item": item }))
        }
        Command::CreateShipment(a) => {
            let settings = settings(&a.fulfiller)?;
            let req: CreateShipmentRequest = parse(create_input(&a)?)?;
            // The limits are checked before anything else, so a bad input is reported
            // even when the fulfiller is not configured.
            req.validate().map_err(card_error)?;
            let client = settings.client().map_err(|e| anyhow!(e))?;
            let out =
                block_on(cards::create_shipment_request(&client, &req))?.map_err(card_error)?;
            print_json(&out)
        }
        Command::Shipment { fulfiller, id } => {
            let client = settings(&fulfiller)?.client().map_err(|e| anyhow!(e))?;
            let out = block_on(cards::get_shipment_details(&client, &id))?.map_err(card_error)?;
            print_json(&out)
        }
        Command::Keys { fulfiller } => {
            let settings = settings(&fulfiller)?;
            let (t, s) = settings.jwks_urls().map_err(|e| anyhow!(e))?;
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .context("building the HTTP client")?;
            let out = block_on(cards::get_keys_at(&http, t, s))?.map_err(card_error)?;
            print_json(&out)
        }
    }
}

fn settings(f: &Fulfiller) -> anyhow::Result<cards::FulfillerSettings> {
    match &f.config {
        Some(path) => {
            let config = connector::Config::load(Some(path))
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(cards::FulfillerSettings::from_config(&config))
        }
        None => Ok(cards::FulfillerSettings::from_env(|k| {
            std::env::var(k).ok()
        })),
    }
}

/// The JSON object of `--input`, or an empty one.
fn input_object(arg: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    let Some(arg) = arg else {
        return Ok(Map::new());
    };
    let text = read_input(arg)?;
    match serde_json::from_str::<Value>(&text).with_context(|| format!("{arg} is not JSON"))? {
        Value::Object(m) => Ok(m),
        _ => bail!("{arg} must hold a JSON object with the card's fields"),
    }
}

fn set<T: serde::Serialize>(m: &mut Map<String, Value>, key: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(key.to_owned(), json!(v));
    }
}

fn create_input(a: &CreateArgs) -> anyhow::Result<Value> {
    let mut m = input_object(a.input.as_deref())?;
    set(&mut m, "company", &a.company);
    set(&mut m, "email", &a.email);
    set(&mut m, "first_name", &a.first_name);
    set(&mut m, "last_name", &a.last_name);
    set(&mut m, "phone_number", &a.phone_number);
    set(&mut m, "address", &a.address);
    set(&mut m, "apt_or_unit_number", &a.apt_or_unit_number);
    set(&mut m, "city", &a.city);
    set(&mut m, "region", &a.region);
    set(&mut m, "postal_code", &a.postal_code);
    set(&mut m, "country_code", &a.country_code);
    set(&mut m, "delivery_type", &a.delivery_type);
    if !a.items.is_empty() {
        let items = a
            .items
            .iter()
            .map(|arg| {
                let text = read_input(arg)?;
                let v: Value =
                    serde_json::from_str(&text).with_context(|| format!("{arg} is not JSON"))?;
                // `build-item` prints {"shipment_item": ...}; the API wraps it in "data".
                let item = match v {
                    Value::Object(mut o) if o.contains_key("data") => o
                        .remove("data")
                        .and_then(|mut d| d.get_mut("shipment_item").map(Value::take))
                        .unwrap_or(Value::Null),
                    Value::Object(mut o) if o.contains_key("shipment_item") => {
                        o.remove("shipment_item").unwrap_or(Value::Null)
                    }
                    other => other,
                };
                if !item.is_object() {
                    bail!(
                        "{arg} must hold a shipment item (the output of prereg yubico build-item)"
                    );
                }
                Ok(item)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        m.insert("shipment_items".to_owned(), Value::Array(items));
    }
    Ok(Value::Object(m))
}

/// A JWE argument: the string itself, or `@FILE` (`@-` for standard input).
fn jwe_arg(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => read_input(path),
        None => Ok(arg.to_owned()),
    }
}

fn build_input(a: BuildArgs) -> anyhow::Result<Value> {
    let mut m = input_object(a.input.as_deref())?;
    set(&mut m, "customization_id", &a.customization_id);
    set(&mut m, "product_id", &a.product_id);
    set(&mut m, "inventory_product_id", &a.inventory_product_id);
    set(&mut m, "quantity", &a.quantity);
    if let Some(p) = &a.pin_request {
        m.insert("pin_request".to_owned(), json!(jwe_arg(p)?));
    }
    if !a.credential_requests.is_empty() {
        let creds = a
            .credential_requests
            .iter()
            .map(|c| jwe_arg(c))
            .collect::<anyhow::Result<Vec<_>>>()?;
        m.insert("credential_requests".to_owned(), json!(creds));
    }
    Ok(Value::Object(m))
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    let bytes = serde_json::to_vec(&v).context("encoding the input")?;
    cards::parse_input(&bytes).map_err(card_error)
}

/// One line that says what failed and, when the input is at fault, which field.
fn card_error(e: CardError) -> anyhow::Error {
    match &e {
        CardError::Validation { field, message, .. } => anyhow!("{message} (field {field})"),
        CardError::Refused {
            context,
            status,
            error,
            ..
        } => {
            let code = e.body()["error_data"]["code"]
                .as_str()
                .unwrap_or("error")
                .to_owned();
            let field = error
                .field
                .as_deref()
                .map(|f| format!(" (field {f})"))
                .unwrap_or_default();
            anyhow!(
                "{context}: the fulfiller refused ({status} {code}): {}{field}",
                error.message
            )
        }
        CardError::Unavailable { .. } => anyhow!("{e}"),
    }
}

fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(f))
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v).context("encoding the output")?;
    println!("{text}");
    Ok(())
}
