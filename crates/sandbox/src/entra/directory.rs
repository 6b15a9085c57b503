//! Users, the manager, groups and members, with `$select` as Graph does it: the default
//! property set without it, exactly the named properties with it (unset ones as null or
//! `[]`), and 400 `Request_BadRequest` for a property `user` does not have.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use graph::ApiVersion;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use super::seed::SeedUser;
use super::tokens::Caller;
use super::{Entra, GraphFailure};

const USER_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Properties a user has besides those [`graph::User`] names.
const OTHER_USER_PROPERTIES: &[&str] = &[
    "accountEnabled",
    "department",
    "usageLocation",
    "createdDateTime",
    "faxNumber",
    "onPremisesSyncEnabled",
];
const ARRAY_PROPERTIES: &[&str] = &["otherMails", "businessPhones"];

/// 403 unless the caller holds one of `any_of`.
pub(crate) fn require(caller: &Caller, any_of: &[&str], code: &str) -> Result<(), GraphFailure> {
    if caller.roles.iter().any(|r| any_of.contains(&r.as_str())) {
        return Ok(());
    }
    let message = if code == "accessDenied" {
        format!(
            "Request Authorization failed: the app {} needs one of the application permissions {}",
            caller.client_id,
            any_of.join(", ")
        )
    } else {
        format!(
            "Insufficient privileges to complete the operation. The app {} needs one of {}.",
            caller.client_id,
            any_of.join(", ")
        )
    };
    Err(GraphFailure::new(StatusCode::FORBIDDEN, code, message))
}

/// The `$select` list, checked against the user type.
fn select(query: &HashMap<String, String>) -> Result<Option<Vec<String>>, GraphFailure> {
    let Some(raw) = query.get("$select") else {
        return Ok(None);
    };
    let known = known_user_properties();
    let mut out = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(p)) else {
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!(
                    "Could not find a property named '{p}' on type 'Microsoft.DirectoryServices.User'."
                ),
            ));
        };
        out.push(k.clone());
    }
    Ok(Some(out))
}

fn known_user_properties() -> Vec<String> {
    let mut keys: Vec<String> = graph::users::SHIPPING_SELECT
        .iter()
        .chain(graph::users::DEFAULT_USER_PROPERTIES)
        .chain(OTHER_USER_PROPERTIES)
        .chain(&["userType"])
        .map(|s| (*s).to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The user as JSON with exactly `props` (unset: null, or `[]` for collections).
fn project(user: &SeedUser, props: &[String]) -> Map<String, Value> {
    let full = serde_json::to_value(&user.user).unwrap_or(Value::Null);
    let mut out = Map::new();
    for p in props {
        let v = match p.as_str() {
            // Enabled unless the seed says otherwise.
            "accountEnabled" => full.get(p).cloned().unwrap_or(Value::Bool(true)),
            "userType" => full.get(p).cloned().unwrap_or_else(|| "Member".into()),
            _ => full.get(p).cloned().unwrap_or_else(|| {
                if ARRAY_PROPERTIES.contains(&p.as_str()) {
                    json!([])
                } else {
                    Value::Null
                }
            }),
        };
        out.insert(p.clone(), v);
    }
    out
}

fn default_props() -> Vec<String> {
    graph::users::DEFAULT_USER_PROPERTIES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

fn context(entra: &Entra, v: ApiVersion, what: &str, props: &Option<Vec<String>>) -> String {
    let sel = props
        .as_ref()
        .map(|p| format!("({})", p.join(",")))
        .unwrap_or_default();
    format!("{}/{}/$metadata#{what}{sel}", entra.base_url(), v.as_str())
}

/// `GET /users/{id|upn}`.
pub(crate) async fn user(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphFailure> {
    require(&caller, USER_READ, "Authorization_RequestDenied")?;
    let sel = select(&q)?;
    let u = entra
        .find_user(&key)
        .ok_or_else(|| GraphFailure::user_not_found(&key))?;
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        format!("{}/$entity", context(&entra, v, "users", &sel)).into(),
    );
    out.extend(project(&u, sel.as_deref().unwrap_or(&default_props())));
    Ok(Json(Value::Object(out)))
}

fn as_directory_object(u: &SeedUser, sel: &Option<Vec<String>>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("@odata.type".into(), "#microsoft.graph.user".into());
    out.extend(project(u, sel.as_deref().unwrap_or(&default_props())));
    out
}

/// `GET /users/{id|upn}/manager`.
pub(crate) async fn manager(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphFailure> {
    require(&caller, USER_READ, "Authorization_RequestDenied")?;
    let sel = select(&q)?;
    let u = entra
        .find_user(&key)
        .ok_or_else(|| GraphFailure::user_not_found(&key))?;
    let m = u
        .manager
        .as_deref()
        .and_then(|m| entra.find_user(m))
        .ok_or_else(|| GraphFailure::user_not_found("manager"))?;
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        format!(
            "{}/$metadata#directoryObjects/$entity",
            entra.base_url().to_owned() + "/" + v.as_str()
        )
        .into(),
    );
    out.extend(as_directory_object(&m, &sel));
    Ok(Json(Value::Object(out)))
}

fn group_json(g: &super::seed::SeedGroup) -> Value {
    json!({
        "id": g.id,
        "displayName": g.display_name,
        "description": g.description,
        "mail": null,
        "mailEnabled": g.mail_enabled,
        "securityEnabled": g.security_enabled,
        "groupTypes": [],
    })
}

/// `GET /groups` with an optional `$filter=displayName eq '...'`.
pub(crate) async fn groups(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphFailure> {
    require(&caller, GROUP_READ, "Authorization_RequestDenied")?;
    let name = match q.get("$filter") {
        None => None,
        Some(f) => Some(parse_display_name_filter(f).ok_or_else(|| {
            GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!("Unsupported query: the sandbox filters groups by displayName eq '<name>' only, not {f:?}."),
            )
        })?),
    };
    let seed = entra.seed();
    let value: Vec<Value> = seed
        .groups
        .iter()
        .filter(|g| {
            name.as_ref()
                .is_none_or(|n| g.display_name.eq_ignore_ascii_case(n))
        })
        .map(group_json)
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/{}/$metadata#groups", entra.base_url(), v.as_str()),
        "value": value,
    })))
}

/// `displayName eq 'A ''quoted'' name'` → `A 'quoted' name`.
fn parse_display_name_filter(f: &str) -> Option<String> {
    let rest = f.trim().strip_prefix("displayName")?.trim_start();
    let rest = rest.strip_prefix("eq")?.trim();
    let inner = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// `GET /groups/{id}`.
pub(crate) async fn group(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphFailure> {
    require(&caller, GROUP_READ, "Authorization_RequestDenied")?;
    let seed = entra.seed();
    let g = seed
        .groups
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| GraphFailure::user_not_found(&id))?;
    let mut out = json!({"@odata.context": format!("{}/{}/$metadata#groups/$entity", entra.base_url(), v.as_str())});
    if let (Some(o), Value::Object(g)) = (out.as_object_mut(), group_json(g)) {
        o.extend(g);
    }
    Ok(Json(out))
}

/// `GET /groups/{id}/members` (`$select`, `$top`, `$skiptoken`).
pub(crate) async fn members(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphFailure> {
    require(&caller, GROUP_READ, "Authorization_RequestDenied")?;
    let sel = select(&q)?;
    let top: usize = match q.get("$top") {
        None => 100,
        Some(t) => t
            .parse()
            .ok()
            .filter(|n| (1..=999).contains(n))
            .ok_or_else(|| {
                GraphFailure::new(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!("Invalid value '{t}' for $top: 1 to 999."),
                )
            })?,
    };
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let member_keys = {
        let seed = entra.seed();
        seed.groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(&id))
            .ok_or_else(|| GraphFailure::user_not_found(&id))?
            .members
            .clone()
    };
    let all: Vec<Value> = member_keys
        .iter()
        .filter_map(|m| entra.find_user(m))
        .map(|u| Value::Object(as_directory_object(&u, &sel)))
        .collect();
    let page: Vec<Value> = all.iter().skip(skip).take(top).cloned().collect();
    let mut out = json!({
        "@odata.context": format!("{}/{}/$metadata#directoryObjects", entra.base_url(), v.as_str()),
        "value": page,
    });
    if skip + top < all.len()
        && let Some(o) = out.as_object_mut()
    {
        let mut next = format!(
            "{}/{}/groups/{id}/members?$top={top}&$skiptoken={}",
            entra.base_url(),
            v.as_str(),
            skip + top
        );
        if let Some(s) = q.get("$select") {
            next.push_str(&format!("&$select={s}"));
        }
        o.insert("@odata.nextLink".into(), next.into());
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_name_filters_unquote() {
        assert_eq!(
            super::parse_display_name_filter("displayName eq 'FIDO Users'").as_deref(),
            Some("FIDO Users")
        );
        assert_eq!(
            super::parse_display_name_filter("displayName eq 'O''Brien'").as_deref(),
            Some("O'Brien")
        );
        assert!(super::parse_display_name_filter("startswith(displayName,'x')").is_none());
    }
}
