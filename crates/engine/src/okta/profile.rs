//! Shipping data for an Okta user: the Okta profile (okta.md §9), or the HR CSV keyed
//! by login, or the fields a CSV batch row gave (the fulfiller's field names), checked
//! against the fulfiller's limits before anything is ordered.

use std::collections::{BTreeMap, HashMap};
use yubienterprise::fpr::{MailingAddress, Recipient};

/// One profile attribute the order needs: Okta attribute, the Admin Console label, the
/// fulfiller's limit, and whether it is required.
struct Field {
    attr: &'static str,
    label: &'static str,
    /// The fulfiller's field (a CSV batch row's column) that overrides it.
    column: &'static str,
    max: usize,
    required: bool,
}

const FIELDS: &[Field] = &[
    Field {
        attr: "firstName",
        column: "recipient_firstname",
        label: "First name",
        max: 15,
        required: true,
    },
    Field {
        attr: "lastName",
        column: "recipient_lastname",
        label: "Last name",
        max: 20,
        required: true,
    },
    Field {
        attr: "email",
        column: "recipient_email",
        label: "Primary email",
        max: 80,
        required: true,
    },
    Field {
        attr: "primaryPhone",
        column: "recipient_telephone",
        label: "Primary phone",
        max: 40,
        required: true,
    },
    Field {
        attr: "organization",
        column: "recipient_company",
        label: "Organization",
        max: 20,
        required: true,
    },
    Field {
        attr: "streetAddress",
        column: "street_line1",
        label: "Street address",
        max: 60,
        required: true,
    },
    Field {
        attr: "city",
        column: "city",
        label: "City",
        max: 60,
        required: true,
    },
    Field {
        attr: "state",
        column: "region",
        label: "State",
        max: 50,
        required: false,
    },
    Field {
        attr: "zipCode",
        column: "postal_code",
        label: "Zip code",
        max: 50,
        required: true,
    },
    Field {
        attr: "countryCode",
        column: "country_code_2",
        label: "Country code",
        max: 2,
        required: true,
    },
];

/// HR data: login (lowercase) → Okta attribute name → value.
#[derive(Debug, Default, Clone)]
pub struct HrData {
    rows: HashMap<String, HashMap<String, String>>,
    path: String,
}

impl HrData {
    /// Reads a CSV file whose header names a `login` column and Okta attribute names
    /// (`firstName`, `streetAddress`, ...). Quoted fields (`"a, b"`, `""` for a quote)
    /// are understood.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses CSV text (see [`HrData::load`]).
    pub fn parse(text: &str, path: &str) -> Result<Self, String> {
        let records = parse_csv(text);
        let mut it = records.into_iter();
        let header = it.next().ok_or("the HR CSV is empty")?;
        let login_col = header
            .iter()
            .position(|h| h.trim() == "login")
            .ok_or("the HR CSV's header has no `login` column")?;
        let mut rows = HashMap::new();
        for rec in it {
            let Some(login) = rec.get(login_col).map(|s| s.trim().to_lowercase()) else {
                continue;
            };
            if login.is_empty() {
                continue;
            }
            let fields = header
                .iter()
                .zip(rec.iter())
                .filter(|(h, v)| h.trim() != "login" && !v.trim().is_empty())
                .map(|(h, v)| (h.trim().to_owned(), v.trim().to_owned()))
                .collect();
            rows.insert(login, fields);
        }
        Ok(Self {
            rows,
            path: path.to_owned(),
        })
    }

    fn get(&self, login: &str, attr: &str) -> Option<&str> {
        self.rows
            .get(&login.to_lowercase())
            .and_then(|r| r.get(attr))
            .map(String::as_str)
    }
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => rec.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                rec.push(std::mem::take(&mut field));
                if rec.iter().any(|f| !f.is_empty()) {
                    out.push(std::mem::take(&mut rec));
                } else {
                    rec.clear();
                }
            }
            (false, c) => field.push(c),
        }
    }
    rec.push(field);
    if rec.iter().any(|f| !f.is_empty()) {
        out.push(rec);
    }
    out
}

fn attr<'a>(p: &'a okta::UserProfile, name: &str) -> Option<&'a str> {
    let v = match name {
        "firstName" => p.first_name.as_deref(),
        "lastName" => p.last_name.as_deref(),
        "email" => p.email.as_deref(),
        "primaryPhone" => p.primary_phone.as_deref().or(p.mobile_phone.as_deref()),
        "organization" => p.organization.as_deref(),
        "streetAddress" => p.street_address.as_deref(),
        "city" => p.city.as_deref(),
        "state" => p.state.as_deref(),
        "zipCode" => p.zip_code.as_deref(),
        "countryCode" => p.country_code.as_deref(),
        _ => None,
    };
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// The columns a CSV batch row may give for an Okta-mode order: each overrides one
/// profile attribute (and `street_line2`, which the profile does not have).
pub fn override_columns() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .map(|f| f.column)
        .chain(std::iter::once(STREET_LINE2))
}

/// The second address line: no Okta profile attribute, a batch row may give it.
const STREET_LINE2: &str = "street_line2";

/// Checks a batch row's overrides against the fulfiller's limits before anything is
/// recorded: the first bad one as (column, why).
pub fn check_overrides(o: &BTreeMap<String, String>) -> Result<(), (&'static str, String)> {
    for (column, value) in o {
        let n = value.chars().count();
        if column == STREET_LINE2 {
            let max = yubienterprise::validate::limits::STREET_LINE;
            if n > max {
                return Err((
                    STREET_LINE2,
                    format!("`{STREET_LINE2}` has {n} characters, the fulfiller allows {max}"),
                ));
            }
            continue;
        }
        let Some(f) = FIELDS.iter().find(|f| f.column == column) else {
            continue;
        };
        if n > f.max {
            return Err((
                f.column,
                format!(
                    "`{}` has {n} characters, the fulfiller allows {}",
                    f.column, f.max
                ),
            ));
        }
        if f.attr == "countryCode" && !(n == 2 && value.chars().all(|c| c.is_ascii_alphabetic())) {
            return Err((
                f.column,
                format!("`{}` {value:?} is not a 2-letter ISO 3166-1 code", f.column),
            ));
        }
    }
    Ok(())
}

/// The recipient and address for the order (each field from the order's `overrides`,
/// else the HR file, else the Okta profile), or a message naming every missing or too
/// long field and where to set it.
pub fn shipping(
    profile: &okta::UserProfile,
    hr: Option<&HrData>,
    overrides: &BTreeMap<String, String>,
) -> Result<(Recipient, MailingAddress), String> {
    let mut values: HashMap<&str, String> = HashMap::new();
    let mut missing = Vec::new();
    let mut too_long = Vec::new();
    for f in FIELDS {
        let v = overrides
            .get(f.column)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .or_else(|| hr.and_then(|h| h.get(&profile.login, f.attr)))
            .or_else(|| attr(profile, f.attr));
        match v {
            None if f.required => missing.push(format!("{} (\"{}\")", f.attr, f.label)),
            None => {}
            Some(v) if v.chars().count() > f.max => too_long.push(format!(
                "{} (\"{}\") has {} characters, the fulfiller allows {}",
                f.attr,
                f.label,
                v.chars().count(),
                f.max
            )),
            Some(v) => {
                values.insert(f.attr, v.to_owned());
            }
        }
    }
    let country = values
        .get("countryCode")
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_default();
    let country_ok = country.is_empty()
        || (country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()));
    if !country_ok {
        too_long.push(format!(
            "countryCode (\"Country code\") {country:?} is not a 2-letter ISO 3166-1 code"
        ));
    }
    if matches!(country.as_str(), "US" | "CA") {
        match values.get("state") {
            None => missing.push("state (\"State\"; a 2-letter code for US and CA)".to_owned()),
            Some(s) if s.len() != 2 => too_long.push(format!(
                "state (\"State\") {s:?} must be the 2-letter code for US and CA"
            )),
            Some(_) => {}
        }
    }
    if !missing.is_empty() || !too_long.is_empty() {
        let where_ = match hr {
            Some(h) => format!(
                "set them on the user's Okta profile (Directory > People > {} > Profile) or in the HR file {}",
                profile.login, h.path
            ),
            None => format!(
                "set them on the user's Okta profile (Directory > People > {} > Profile)",
                profile.login
            ),
        };
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing profile fields: {}", missing.join(", ")));
        }
        if !too_long.is_empty() {
            parts.push(format!(
                "fields over the fulfiller's limits: {}",
                too_long.join("; ")
            ));
        }
        return Err(format!(
            "{}; {where_}, then set the request back to ongoing (POST /v1/fpr/shipments/{{id}}/retry)",
            parts.join("; ")
        ));
    }
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    Ok((
        Recipient {
            recipient_company: v("organization"),
            recipient_email: v("email"),
            recipient_firstname: v("firstName"),
            recipient_lastname: v("lastName"),
            recipient_telephone: v("primaryPhone"),
        },
        MailingAddress {
            street_line1: v("streetAddress"),
            street_line2: overrides
                .get(STREET_LINE2)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default(),
            street_line3: String::new(),
            city: v("city"),
            region: v("state"),
            postal_code: v("zipCode"),
            country_code_2: country,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn profile() -> okta::UserProfile {
        okta::UserProfile {
            login: "a@example.com".into(),
            email: Some("a@example.com".into()),
            first_name: Some("Ann".into()),
            last_name: Some("Lee".into()),
            primary_phone: Some("555 0100".into()),
            organization: Some("Example".into()),
            street_address: Some("1 Main St".into()),
            city: Some("Boston".into()),
            state: Some("MA".into()),
            zip_code: Some("02101".into()),
            country_code: Some("us".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_full_profile_fills_the_order() {
        let (r, a) = shipping(&profile(), None, &BTreeMap::new()).unwrap();
        assert_eq!(r.recipient_firstname, "Ann");
        assert_eq!(a.country_code_2, "US");
    }

    #[test]
    fn every_missing_field_is_named_with_where_to_set_it() {
        let mut p = profile();
        p.street_address = None;
        p.primary_phone = None;
        p.last_name = Some("x".repeat(30));
        let e = shipping(&p, None, &BTreeMap::new()).unwrap_err();
        assert!(e.contains("streetAddress (\"Street address\")"), "{e}");
        assert!(e.contains("primaryPhone"), "{e}");
        assert!(
            e.contains("lastName (\"Last name\") has 30 characters, the fulfiller allows 20"),
            "{e}"
        );
        assert!(e.contains("Directory > People > a@example.com"), "{e}");
    }

    #[test]
    fn the_hr_file_fills_and_overrides_the_profile() {
        let hr = HrData::parse(
            "login,streetAddress,city\n\"A@example.com\",\"2 Side St, Unit 4\",Cambridge\n",
            "hr.csv",
        )
        .unwrap();
        let mut p = profile();
        p.street_address = None;
        let (_, a) = shipping(&p, Some(&hr), &BTreeMap::new()).unwrap();
        assert_eq!(a.street_line1, "2 Side St, Unit 4");
        assert_eq!(a.city, "Cambridge");
    }

    #[test]
    fn a_batch_rows_fields_win_over_the_hr_file_and_the_profile() {
        let hr = HrData::parse("login,city\na@example.com,Cambridge\n", "hr.csv").unwrap();
        let o: BTreeMap<String, String> = [
            ("city", "Somerville"),
            ("street_line2", "Unit 4"),
            ("recipient_telephone", "555 0199"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (r, a) = shipping(&profile(), Some(&hr), &o).unwrap();
        assert_eq!(a.city, "Somerville");
        assert_eq!(a.street_line2, "Unit 4");
        assert_eq!(r.recipient_telephone, "555 0199");
        assert_eq!(a.street_line1, "1 Main St", "the profile fills the rest");
    }

    #[test]
    fn overrides_over_the_fulfillers_limits_are_named_by_column() {
        let o = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let (c, e) = check_overrides(&o("recipient_lastname", &"x".repeat(21))).unwrap_err();
        assert_eq!(c, "recipient_lastname");
        assert!(e.contains("21 characters, the fulfiller allows 20"), "{e}");
        assert_eq!(
            check_overrides(&o("country_code_2", "USA")).unwrap_err().0,
            "country_code_2"
        );
        assert_eq!(
            check_overrides(&o("street_line2", &"x".repeat(61)))
                .unwrap_err()
                .0,
            "street_line2"
        );
        assert!(check_overrides(&o("city", "Boston")).is_ok());
        let all: Vec<&str> = override_columns().collect();
        assert_eq!(all.len(), 11, "{all:?}");
    }
}
