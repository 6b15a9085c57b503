//! The CSV batch, both modes (docs/batch.md): a CSV file with a header row, one person a
//! row, read into [`Row`]s ([`parse`]), then each row ordered ([`run`]): Entra-mode rows
//! through the intake ([`crate::intake`], the shipment created at once), Okta-mode rows
//! through Okta mode's batch trigger ([`crate::okta::start_request_once`]). What
//! `POST /v1/batch` and `prereg batch FILE.csv` share.
//!
//! A file that cannot be read as such a CSV (not UTF-8, no header, an unknown or
//! repeated column, a row with more or fewer cells than the header, no rows, more than
//! [`MAX_ROWS`]) is refused whole ([`CsvError`]), before anything is ordered. After
//! that each row stands alone: a bad row is refused naming its column, the others are
//! ordered.

use crate::domain::Idp;
use crate::error::ServiceError;
use crate::intake::{self, Contact, Duplicates, Intake, IntakeError, Item, Order, Via};
use crate::okta::triggers::StartError;
use crate::okta::{Order as OktaOrder, Started};
use crate::services::Services;
use envelope::PinChoice;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many rows per file (the Okta batch's limit too).
pub const MAX_ROWS: usize = 1000;

/// The length of the PIN generated for each Entra-mode row (the create calls' `generate`
/// PIN; a CSV never carries a PIN).
pub const ENTRA_PIN_LENGTH: u8 = 8;

/// The columns of every mode; with [`CONTACT_COLUMNS`], the columns a file may have
/// ([`columns`]). `user` and `product` are required; every other may be left out, or
/// left empty in a row.
const LEAD_COLUMNS: &[&str] = &["user", "product", "idp", "contacts", "delivery_type"];

/// The columns a file may have, in the order docs/batch.md lists them.
pub fn columns() -> impl Iterator<Item = &'static str> {
    LEAD_COLUMNS.iter().chain(CONTACT_COLUMNS).copied()
}

/// The columns that override the identity provider's profile: the user's Entra profile
/// in Entra mode, the Okta profile and the HR file in Okta mode.
const CONTACT_COLUMNS: &[&str] = &[
    "recipient_company",
    "recipient_email",
    "recipient_firstname",
    "recipient_lastname",
    "recipient_telephone",
    "street_line1",
    "street_line2",
    "city",
    "region",
    "postal_code",
    "country_code_2",
];

/// Why a whole file was refused (nothing was ordered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CsvError(pub String);

/// One row of the file: its line and its cells by column (trimmed; an empty cell is
/// absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line of the file the row starts on (the header is line 1).
    pub line: u64,
    cells: HashMap<&'static str, String>,
}

impl Row {
    /// A cell, when the row fills it.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells.get(column).map(String::as_str)
    }
}

/// Reads a CSV file (UTF-8, an optional byte-order mark, a header row naming
/// [`columns`], case and surrounding spaces ignored) into its rows; blank lines are
/// skipped.
pub fn parse(bytes: &[u8]) -> Result<Vec<Row>, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Cells are trimmed here, not by the reader: its trimming loses the records'
    // positions (the lines the results name).
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| csv_error(bytes, &e))?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(CsvError(
            "the CSV has no header row: its first line must name the columns, e.g. `user,product`"
                .into(),
        ));
    }
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.len());
    for name in &header {
        let lower = name.trim().to_ascii_lowercase();
        let Some(known) = self::columns().find(|c| *c == lower) else {
            return Err(CsvError(format!(
                "unknown column {name:?} in the header (line 1); the columns are: {}",
                self::columns().collect::<Vec<_>>().join(", ")
            )));
        };
        if columns.contains(&known) {
            return Err(CsvError(format!(
                "column `{known}` appears twice in the header (line 1)"
            )));
        }
        columns.push(known);
    }
    for required in ["user", "product"] {
        if !columns.contains(&required) {
            return Err(CsvError(format!(
                "the header (line 1) has no `{required}` column; `user` and `product` are required"
            )));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(bytes, &e))?;
        if rows.len() == MAX_ROWS {
            return Err(CsvError(format!(
                "the CSV has more than {MAX_ROWS} rows; split it into files of at most {MAX_ROWS}"
            )));
        }
        let line = record.position().map_or(0, |p| line_at(bytes, p.byte()));
        let cells = columns
            .iter()
            .zip(record.iter().map(str::trim))
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| (*c, v.to_owned()))
            .collect();
        rows.push(Row { line, cells });
    }
    if rows.is_empty() {
        return Err(CsvError(
            "the CSV has a header but no rows: add one row per person".into(),
        ));
    }
    Ok(rows)
}

/// The line (from 1) of the record the reader says starts at byte `at`. The reader's
/// own line count is one short after a CRLF (it counts the `\n` once the next record
/// is read), so the line is counted here: the newlines before the record's first byte
/// (the reader's start may point at the end of the previous line, or a blank line).
fn line_at(bytes: &[u8], at: u64) -> u64 {
    let mut start = usize::try_from(at).unwrap_or(bytes.len()).min(bytes.len());
    while bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|b| **b == b'\n').count() as u64
}

/// A reader's error in the file's terms (its line).
fn csv_error(bytes: &[u8], e: &csv::Error) -> CsvError {
    let at = |p: Option<&csv::Position>| {
        p.map_or(String::new(), |p| {
            format!("line {}: ", line_at(bytes, p.byte()))
        })
    };
    CsvError(match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "{}the row has {len} cells, the header has {expected_len}; quote a cell that holds a comma (\"a, b\")",
            at(pos.as_ref())
        ),
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "{}the CSV is not UTF-8 text; save it as UTF-8 (CSV UTF-8)",
            at(pos.as_ref())
        ),
        _ => format!("the CSV cannot be read: {e}"),
    })
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A request was recorded (Entra mode: its shipment exists at the fulfiller, unless
    /// `shipment_id` is null: then the processor creates it).
    Created,
    /// The user already has an open request (`request_id`): nothing new.
    AlreadyOpen,
    /// The row is wrong (`field`, `error`): nothing was recorded for it.
    Refused,
    /// The identity provider or the database failed just then: nothing was recorded;
    /// send the row again.
    Unavailable,
}

/// One row's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowResult {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    /// The `user` cell.
    pub user: String,
    /// The row's mode (`entra`, `okta`); absent when the `idp` cell is not one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp: Option<&'static str>,
    /// What became of it.
    pub status: Status,
    /// The request (created, already open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Entra mode, created: the fulfiller's shipment id (null while the processor
    /// creates it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<Option<String>>,
    /// Created by an earlier call under the same `Idempotency-Key`: nothing new.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// Refused: the column at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// Refused or unavailable: why, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Refused by the fulfiller: its error code (`validation_error`, `unknown_product`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl RowResult {
    fn new(row: &Row, idp: Option<Idp>, status: Status) -> Self {
        Self {
            line: row.line,
            user: row.get("user").unwrap_or_default().to_owned(),
            idp: idp.map(Idp::as_str),
            status,
            request_id: None,
            shipment_id: None,
            replayed: false,
            field: None,
            error: None,
            code: None,
        }
    }

    fn refused(row: &Row, idp: Option<Idp>, field: &'static str, error: String) -> Self {
        Self {
            field: Some(field),
            error: Some(error),
            ..Self::new(row, idp, Status::Refused)
        }
    }
}

/// How many rows ended each way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Rows in the file.
    pub rows: usize,
    /// Requests recorded.
    pub created: usize,
    /// Users who had an open request.
    pub already_open: usize,
    /// Rows refused (named column).
    pub refused: usize,
    /// Rows to send again.
    pub unavailable: usize,
}

impl Summary {
    /// Counts the results.
    pub fn of(results: &[RowResult]) -> Self {
        let mut s = Self {
            rows: results.len(),
            ..Self::default()
        };
        for r in results {
            match r.status {
                Status::Created if !r.replayed => s.created += 1,
                // A replayed row was created by the first call.
                Status::Created => {}
                Status::AlreadyOpen => s.already_open += 1,
                Status::Refused => s.refused += 1,
                Status::Unavailable => s.unavailable += 1,
            }
        }
        s
    }
}

/// Orders every row: `vendor_concurrency` rows at a time, each row's result in the
/// file's order, `progress` called as each one is known. `default_idp` is the mode of
/// rows without an `idp` cell. With `idempotency` (`(client, key)`), each row is
/// recorded under the key, its mode and its user as written, so the same file sent
/// again under the same key answers its rows `created` with the first call's request
/// ids (`replayed`) and orders nothing.
///
/// The same user twice in a file (as written, case aside) is ordered once: the later
/// rows answer `already_open` with the first row's request.
pub async fn run(
    state: &Arc<Services>,
    rows: &[Row],
    default_idp: Idp,
    idempotency: Option<(&str, &str)>,
    progress: &(dyn Fn(&RowResult) + Send + Sync),
) -> Vec<RowResult> {
    let mut first_of: HashMap<(Option<Idp>, String), usize> = HashMap::new();
    let mut earlier: Vec<Option<usize>> = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let key = (
            row_idp(row, default_idp).ok(),
            row.get("user").unwrap_or_default().to_lowercase(),
        );
        earlier.push(match row.get("user") {
            Some(_) => first_of.get(&key).copied(),
            None => None,
        });
        first_of.entry(key).or_insert(i);
    }
    let at_once = state.config.processing.vendor_concurrency.max(1);
    let dup = &earlier;
    // By index: a future that borrows nothing from its argument is `Send` for the
    // HTTP handler.
    let mut results: Vec<RowResult> = futures_util::stream::iter(0..rows.len())
        .map(|i| async move {
            let row = &rows[i];
            match dup[i] {
                // Settled below, once the first row's result is known.
                Some(_) => RowResult::new(row, row_idp(row, default_idp).ok(), Status::AlreadyOpen),
                None => {
                    let r = order_row(state, row, default_idp, idempotency).await;
                    progress(&r);
                    r
                }
            }
        })
        .buffered(at_once)
        .collect()
        .await;
    for (i, first) in earlier.iter().enumerate() {
        let Some(first) = *first else { continue };
        let (first_line, first_request) = (results[first].line, results[first].request_id.clone());
        let r = &mut results[i];
        match first_request {
            Some(id) => r.request_id = Some(id),
            None => {
                r.status = Status::Refused;
                r.field = Some("user");
                r.error = Some(format!(
                    "the same user as line {first_line}, which was not ordered; fix that row (each person once a file)"
                ));
            }
        }
        progress(r);
    }
    if results
        .iter()
        .any(|r| r.status == Status::Created && !r.replayed)
    {
        state.runner.kick();
    }
    results
}

/// A row's mode: its `idp` cell, else the call's.
fn row_idp(row: &Row, default: Idp) -> Result<Idp, String> {
    match row.get("idp").map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("entra") => Ok(Idp::Entra),
        Some("okta") => Ok(Idp::Okta),
        Some(other) => Err(format!("`idp` must be entra or okta, not {other:?}")),
    }
}

/// Orders one row (after the file was read).
async fn order_row(
    state: &Arc<Services>,
    row: &Row,
    default_idp: Idp,
    idempotency: Option<(&str, &str)>,
) -> RowResult {
    let idp = match row_idp(row, default_idp) {
        Ok(i) => i,
        Err(m) => return RowResult::refused(row, None, "idp", m),
    };
    let Some(user) = row.get("user") else {
        let who = match idp {
            Idp::Entra => "the user's Entra object id or UPN",
            Idp::Okta => "the user's Okta login or id",
        };
        return RowResult::refused(
            row,
            Some(idp),
            "user",
            format!("`user` is empty: name {who}"),
        );
    };
    let key = idempotency.map(|(client, key)| {
        (
            client,
            format!("csv-batch\n{key}\n{}\n{user}", idp.as_str()),
        )
    });
    let once = key.as_ref().map(|(c, k)| (*c, k.as_str()));
    match idp {
        Idp::Entra => entra_row(state, row, user, once).await,
        Idp::Okta => okta_row(state, row, user, once).await,
    }
}

/// A `product` cell as the fulfiller's order line: `PRODUCT_ID/INVENTORY_PRODUCT_ID/CUSTOMIZATION_ID`.
fn product_triple(cell: &str) -> Option<Item> {
    let mut parts = cell.split('/').map(str::trim);
    let (Some(p), Some(i), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(Item {
        product_id: p.parse().ok()?,
        inventory_product_id: i.parse().ok()?,
        customization_id: Some(c).filter(|c| !c.is_empty())?.to_owned(),
    })
}

async fn entra_row(
    state: &Arc<Services>,
    row: &Row,
    user: &str,
    once: Option<(&str, &str)>,
) -> RowResult {
    let refuse = |field, m: String| RowResult::refused(row, Some(Idp::Entra), field, m);
    let id_ok = user.len() <= 256
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@'".contains(c));
    if !id_ok {
        return refuse(
            "user",
            "`user` must be the user's Entra object id or UPN".into(),
        );
    }
    let Some(item) = row.get("product").and_then(product_triple) else {
        return refuse(
            "product",
            format!(
                "`product` must be PRODUCT_ID/INVENTORY_PRODUCT_ID/CUSTOMIZATION_ID in Entra mode (e.g. 1/1/C19881), not {:?}",
                row.get("product").unwrap_or_default()
            ),
        );
    };
    let delivery_type = match row.get("delivery_type") {
        None => None,
        Some("1") => Some(1),
        Some("2") => Some(2),
        Some(other) => {
            return refuse(
                "delivery_type",
                format!("`delivery_type` must be 1 (standard) or 2 (expedited), not {other:?}"),
            );
        }
    };
    let cell = |c: &str| row.get(c).map(str::to_owned);
    let order = Order {
        user: user.to_owned(),
        pin: PinChoice::Generate {
            length: ENTRA_PIN_LENGTH,
        },
        min_pin_length: ENTRA_PIN_LENGTH,
        contact: Contact::from_fields(cell),
        delivery_type,
        item,
        emails_to: row
            .get("contacts")
            .map(|c| {
                c.split(';')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        reseller_organization_id: None,
        address_validation_bypass: None,
        via: Via::Csv,
        keys: 1,
    };
    match intake::create(state, order, once, Duplicates::Refuse).await {
        Ok(Intake::Created {
            request_id,
            shipment_id,
        }) => RowResult {
            request_id: Some(request_id),
            shipment_id: Some(Some(shipment_id)),
            ..RowResult::new(row, Some(Idp::Entra), Status::Created)
        },
        Ok(Intake::Replayed {
            request_id,
            shipment_id,
        }) => RowResult {
            request_id: Some(request_id),
            shipment_id: Some(shipment_id),
            replayed: true,
            ..RowResult::new(row, Some(Idp::Entra), Status::Created)
        },
        Ok(Intake::AlreadyOpen { request_id }) => RowResult {
            request_id: Some(request_id),
            ..RowResult::new(row, Some(Idp::Entra), Status::AlreadyOpen)
        },
        Err(e) => entra_refusal(row, e),
    }
}

/// An Entra-mode row's intake error as its result: refused naming the column, kept (the
/// fulfiller did not answer: the processor creates the shipment), or unavailable.
fn entra_refusal(row: &Row, e: IntakeError) -> RowResult {
    let base = |status| RowResult::new(row, Some(Idp::Entra), status);
    let column = e.field.map(|f| match f {
        "user_id" => "user",
        "product_id" | "inventory_product_id" | "customization_id" => "product",
        "emails_to" => "contacts",
        "street_line3" => "street_line2",
        other => CONTACT_COLUMNS
            .iter()
            .chain(["delivery_type"].iter())
            .find(|c| **c == other)
            .copied()
            .unwrap_or("user"),
    });
    match e.error {
        ServiceError::FulfillerUnavailable {
            message,
            request_id,
        } if !request_id.is_empty() => RowResult {
            request_id: Some(request_id),
            shipment_id: Some(None),
            error: Some(message),
            ..base(Status::Created)
        },
        ServiceError::FulfillerUnavailable { message, .. }
        | ServiceError::IdpUnavailable(message) => RowResult {
            error: Some(message),
            ..base(Status::Unavailable)
        },
        ServiceError::Internal(m) => {
            tracing::error!(line = row.line, error = %m, "internal error ordering a CSV row");
            RowResult {
                error: Some("internal error; see the connector's log; send the row again".into()),
                ..base(Status::Unavailable)
            }
        }
        ServiceError::Fulfiller { code, message } => RowResult {
            field: column,
            error: Some(message),
            code: Some(code),
            ..base(Status::Refused)
        },
        other => RowResult {
            field: column,
            error: Some(other.to_string()),
            ..base(Status::Refused)
        },
    }
}

async fn okta_row(
    state: &Arc<Services>,
    row: &Row,
    user: &str,
    once: Option<(&str, &str)>,
) -> RowResult {
    let refuse = |field, m: String| RowResult::refused(row, Some(Idp::Okta), field, m);
    let Some(o) = state.okta.as_ref() else {
        return refuse("idp", "Okta mode is off (no [okta] section)".into());
    };
    if row.get("contacts").is_some() {
        return refuse(
            "contacts",
            "`contacts` applies to Entra-mode rows: in Okta mode Okta mails the PIN to the user (send-pin); leave it empty".into(),
        );
    }
    if row.get("delivery_type").is_some() {
        return refuse(
            "delivery_type",
            "`delivery_type` applies to Entra-mode rows: Okta-mode orders ship with [okta] delivery_type; leave it empty".into(),
        );
    }
    // The recipient and address columns the row fills win over the Okta profile (and
    // the HR file) when the order is composed; checked against the fulfiller's limits
    // now, so a bad cell is refused naming its column instead of failing the request later.
    let overrides: std::collections::BTreeMap<String, String> = CONTACT_COLUMNS
        .iter()
        .filter_map(|c| row.get(c).map(|v| ((*c).to_owned(), v.to_owned())))
        .collect();
    if let Err((column, why)) = crate::okta::profile::check_overrides(&overrides) {
        return refuse(column, why);
    }
    let product = row.get("product").unwrap_or_default();
    let order = match (o.config.group(product), product_triple(product)) {
        (Some(g), _) => OktaOrder {
            shipping_overrides: overrides,
            ..OktaOrder::from(g)
        },
        (None, Some(item)) => OktaOrder {
            group_id: None,
            product_id: item.product_id,
            inventory_product_id: item.inventory_product_id,
            customization_id: item.customization_id,
            shipping_overrides: overrides,
            key: Default::default(),
        },
        (None, None) => {
            return refuse(
                "product",
                format!(
                    "`product` must be a group mapped in [okta] groups or PRODUCT_ID/INVENTORY_PRODUCT_ID/CUSTOMIZATION_ID, not {product:?}"
                ),
            );
        }
    };
    match crate::okta::start_request_once(state, user, order, "batch", once).await {
        Ok(Started::Created(r)) => RowResult {
            request_id: Some(r.id),
            ..RowResult::new(row, Some(Idp::Okta), Status::Created)
        },
        Ok(Started::Replayed(id)) => RowResult {
            request_id: Some(id),
            replayed: true,
            ..RowResult::new(row, Some(Idp::Okta), Status::Created)
        },
        Ok(Started::Duplicate(id)) => RowResult {
            request_id: Some(id),
            ..RowResult::new(row, Some(Idp::Okta), Status::AlreadyOpen)
        },
        Err(StartError::Refused(m)) => refuse("user", m),
        Err(StartError::Unavailable(m)) => RowResult {
            error: Some(m),
            ..RowResult::new(row, Some(Idp::Okta), Status::Unavailable)
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_name_their_lines_and_trimmed_cells() {
        let rows = parse(
            b"\xEF\xBB\xBF User , product,city\r\na@x.com, 1/1/C ,\r\n\r\n\"b@x.com\",1/1/C,\"Lon\r\ndon\"\r\nc@x.com,1/1/C,Paris\r\n",
        )
        .unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4, 6]);
        assert_eq!(rows[0].get("user"), Some("a@x.com"));
        assert_eq!(rows[0].get("product"), Some("1/1/C"));
        assert_eq!(rows[0].get("city"), None);
        assert_eq!(rows[1].get("city"), Some("Lon\r\ndon"));
    }

    #[test]
    fn a_product_is_three_ids() {
        let item = product_triple("1/ 18 /C19881").unwrap();
        assert_eq!(
            (
                item.product_id,
                item.inventory_product_id,
                item.customization_id.as_str()
            ),
            (1, 18, "C19881")
        );
        for bad in ["1/1", "1/1/", "x/1/C", "1/1/C/2", "00gsandboxyk5nfc001", ""] {
            assert!(product_triple(bad).is_none(), "{bad}");
        }
    }
}
