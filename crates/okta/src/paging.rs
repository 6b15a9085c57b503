//! Okta's cursor pagination: a list answer carries `Link` headers, `<url>; rel="self"`
//! and, when more follow, `<url>; rel="next"` (developer.okta.com "Pagination": "the
//! cursor is opaque", follow the `next` link as given). Okta sends one `Link` header per
//! relation; RFC 8288 also allows several links in one header, comma-separated, so
//! both forms are read.

use reqwest::header::{HeaderMap, LINK};

/// The URL of the `rel="next"` link, if any.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_links)
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
        .map(|(url, _)| url)
}

/// `<a>; rel="x", <b>; rel="y z"` → `[(a, [x]), (b, [y, z])]`.
fn split_links(value: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = value.trim();
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let url = rest[open + 1..open + close].to_owned();
        let after = &rest[open + close + 1..];
        // Parameters run to the next link (a comma followed by '<') or the end.
        let end = after
            .find(",<")
            .or_else(|| after.find(", <"))
            .unwrap_or(after.len());
        let params = &after[..end];
        let mut rels = Vec::new();
        for p in params.split(';') {
            let p = p.trim();
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("rel")
            {
                rels.extend(
                    v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .map(str::to_owned),
                );
            }
        }
        out.push((url, rels));
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_is_found_in_separate_or_joined_link_headers() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static("<https://o.okta.com/api/v1/users?limit=2>; rel=\"self\""),
        );
        h.append(
            LINK,
            HeaderValue::from_static(
                "<https://o.okta.com/api/v1/users?after=00u2&limit=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).unwrap(),
            "https://o.okta.com/api/v1/users?after=00u2&limit=2"
        );
        let mut joined = HeaderMap::new();
        joined.insert(
            LINK,
            HeaderValue::from_static(
                "<https://a/x?limit=1>; rel=\"self\", <https://a/x?after=b&limit=1>; rel=next",
            ),
        );
        assert_eq!(next_link(&joined).unwrap(), "https://a/x?after=b&limit=1");
        let mut only_self = HeaderMap::new();
        only_self.insert(
            LINK,
            HeaderValue::from_static("<https://a/x>; rel=\"self\""),
        );
        assert_eq!(next_link(&only_self), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
