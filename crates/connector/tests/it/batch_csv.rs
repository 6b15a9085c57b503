//! The CSV batch, `POST /v1/batch` (docs/batch.md), against the sandboxes: a file with
//! rows of both modes, a few of them bad, ordered in one call; each bad row refused
//! naming its column, every other one carried to `complete` with one shipment each at
//! the fulfiller. Then what refuses a whole file, and a file sent twice.

use crate::faults_batch::entra_user;
use crate::okta_common::{GROUP, OktaWorld, Options, seed_user, start_with};
use crate::pg;
use connector::store::Store;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;

/// The header of the must-show file.
const HEADER: &str = "user,product,idp,contacts,recipient_lastname,street_line1,country_code_2";
const PRODUCT: &str = "1/1/C19881";

/// A world with `entra` extra Entra users (`fault{i}@contoso.onmicrosoft.com`, full
/// profiles) and `okta` extra Okta users (`user1NN@example.com`), Okta approval `auto`,
/// and keys in stock for all of them.
async fn world(entra: usize, okta: usize, database_url: Option<String>) -> OktaWorld {
    let mut tenant = sandbox::entra::TenantSeed::default();
    tenant.users.extend((0..entra).map(entra_user));
    let mut org = sandbox::okta::seed::OrgSeed::default();
    org.users
        .extend((0..okta).map(|n| seed_user(100 + n, true)));
    start_with(Options {
        approval: "auto",
        seed: Some(org),
        entra_seed: Some(tenant),
        database_url,
        stock: Some((entra + okta) as u64 + 20),
        ..Default::default()
    })
    .await
}

/// `POST /v1/batch` with `body` as `content_type`, an optional `Idempotency-Key`.
async fn post_csv(
    w: &OktaWorld,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut r = w
        .http
        .post(format!("{}/v1/batch{query}", w.connector))
        .bearer_auth(w.token().await)
        .header("content-type", content_type)
        .body(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The bad rows of the must-show file: (the row, the column its refusal names, a piece
/// of the refusal's words). Entra users `entra..entra + 3` exist for them alone.
fn bad_rows(entra: usize) -> Vec<(String, &'static str, &'static str)> {
    let (a, b, c) = (entra, entra + 1, entra + 2);
    vec![
        (
            format!("nobody@contoso.onmicrosoft.com,{PRODUCT},entra,,,,"),
            "user",
            "Could not find user: nobody@contoso.onmicrosoft.com",
        ),
        (
            format!("fault{a}@contoso.onmicrosoft.com,99/1/C19881,entra,,,,"),
            "product",
            "Product ID 99 is not in this organization's catalogue",
        ),
        (
            format!("fault{b}@contoso.onmicrosoft.com,{PRODUCT},entra,,Wolfeschlegelsteinhausen,,"),
            "recipient_lastname",
            "Input for Last Name exceeded limit of 20 characters",
        ),
        (
            format!("fault{c}@contoso.onmicrosoft.com,{PRODUCT},entra,,,,USA"),
            "country_code_2",
            "Input for Country Code must be a 2-letter ISO country code",
        ),
        (format!(",{PRODUCT},okta,,,,"), "user", "`user` is empty"),
    ]
}

/// A file of `entra + okta + 5` rows: `entra` good Entra-mode rows (every third with PIN
/// contacts, every fifth with its own street), `okta` good Okta-mode rows (the mapped
/// group as the product), and the five bad rows spread through it. Returns the file
/// and, per bad row, its line and what its refusal must name.
fn must_show_file(entra: usize, okta: usize) -> (String, Vec<(u64, &'static str, &'static str)>) {
    let mut good: Vec<String> = Vec::new();
    for i in 0..entra {
        let contacts = if i % 3 == 0 {
            format!("pin-{i}@contoso.example; desk-{i}@contoso.example")
        } else {
            String::new()
        };
        let street = if i % 5 == 0 {
            format!("\"{i} Override Road, Suite 5\"")
        } else {
            String::new()
        };
        good.push(format!(
            "fault{i}@contoso.onmicrosoft.com,{PRODUCT},entra,{contacts},,{street},"
        ));
    }
    for n in 0..okta {
        // Every fourth Okta-mode row ships to its own street (over the Okta profile's).
        let street = if n % 4 == 0 {
            format!("{n} Okta Override Ave")
        } else {
            String::new()
        };
        good.push(format!(
            "user{:03}@example.com,{GROUP},okta,,,{street},",
            100 + n
        ));
    }
    let mut lines = vec![HEADER.to_owned()];
    let mut expect = Vec::new();
    let bad = bad_rows(entra);
    let every = (good.len() / bad.len()).max(1);
    let mut bad = bad.into_iter();
    for (i, row) in good.into_iter().enumerate() {
        if i % every == every / 2
            && let Some((b, field, words)) = bad.next()
        {
            lines.push(b);
            expect.push((lines.len() as u64, field, words));
        }
        lines.push(row);
    }
    for (b, field, words) in bad {
        lines.push(b);
        expect.push((lines.len() as u64, field, words));
    }
    (lines.join("\r\n") + "\r\n", expect)
}

/// The must-show: a file of both modes with five bad rows (an unknown user, an unknown
/// product, an over-long field, a bad country code, an empty user) in one call: each bad
/// row refused naming its column in the existing validation's words, nothing recorded
/// for it; every other row created, then carried to `complete` with one shipment each.
async fn must_show(entra: usize, okta: usize, database_url: Option<String>) {
    let w = world(entra + 3, okta, database_url).await;
    let (file, expect) = must_show_file(entra, okta);
    let rows = entra + okta + 5;
    let (s, v) = post_csv(&w, "", "text/csv; charset=utf-8", file, None).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["rows"], rows, "{v}");
    assert_eq!(v["created"], entra + okta, "{v}");
    assert_eq!(v["refused"], 5, "{v}");
    assert_eq!(v["already_open"], 0, "{v}");
    assert_eq!(v["unavailable"], 0, "{v}");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), rows);
    let by_line: HashMap<u64, &Value> = data
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r))
        .collect();
    for (line, field, words) in &expect {
        let r = by_line[line];
        assert_eq!(r["status"], "refused", "line {line}: {r}");
        assert_eq!(r["field"], *field, "line {line}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(error.contains(words), "line {line}: {error}");
        assert!(r.get("request_id").is_none(), "line {line}: {r}");
    }
    // The Entra-mode rows have their shipment already; the Okta ones are recorded.
    let mut ids = Vec::new();
    for r in data.iter().filter(|r| r["status"] == "created") {
        if r["idp"] == "entra" {
            assert_eq!(r["shipment_id"].as_str().unwrap().len(), 22, "{r}");
        }
        ids.push(r["request_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), entra + okta);

    // Nothing half-written: only the good rows' requests exist.
    let (_, all) = w.call(Method::GET, "/v1/fpr/shipments?limit=1", None).await;
    assert_eq!(all["total_count"], entra + okta, "{all}");

    // Processing carries every good row to complete.
    let mut done = false;
    for _ in 0..60 {
        w.advance().await;
        w.process().await;
        if all_complete(&w, &ids).await {
            done = true;
            break;
        }
    }
    let mut states: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let r = w.state.store.get_request(id).await.unwrap().unwrap();
        *states.entry(r.state.as_str().to_owned()).or_default() += 1;
    }
    assert!(done, "not every row completed: {states:?}");

    // One shipment per good row at the fulfiller, each the connector's.
    let shipments = w.fulfiller_shipments().await;
    assert_eq!(shipments.len(), entra + okta);
    let mut per_request: HashMap<String, usize> = HashMap::new();
    for s in &shipments {
        *per_request
            .entry(s["customer_reference"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(ids.iter().all(|id| per_request.get(id) == Some(&1)));
    // A street from the file overrode Entra's; the others came from Entra.
    let street = |i: usize| {
        shipments
            .iter()
            .find(|s| s["recipient_email"] == format!("fault{i}@contoso.onmicrosoft.com"))
            .map(|s| s["street_line1"].as_str().unwrap().to_owned())
    };
    assert_eq!(street(0).as_deref(), Some("0 Override Road, Suite 5"));
    assert_eq!(street(1).as_deref(), Some("1 Chaos Way"));
    // Okta mode too: the row's street over the Okta profile's, the rest the profile's.
    if okta > 1 {
        let okta_street = |n: usize| {
            shipments
                .iter()
                .find(|s| s["recipient_email"] == format!("user{:03}@example.com", 100 + n))
                .map(|s| s["street_line1"].as_str().unwrap().to_owned())
        };
        assert_eq!(okta_street(0).as_deref(), Some("0 Okta Override Ave"));
        let profile = seed_user(101, true).profile.street_address;
        assert_eq!(okta_street(1), profile);
    }
    // Entra-mode PINs went to the row's contacts (else the recipient's mail), Okta's to
    // the user.
    let mails: Vec<String> = w.mail.messages().into_iter().flat_map(|m| m.to).collect();
    assert!(
        mails.contains(&"pin-0@contoso.example".to_owned()),
        "{mails:?}"
    );
    assert!(
        mails.contains(&"desk-0@contoso.example".to_owned()),
        "{mails:?}"
    );
    assert!(
        mails.contains(&"fault1@contoso.onmicrosoft.com".to_owned()),
        "{mails:?}"
    );
    if okta > 0 {
        assert!(
            mails.contains(&"user100@example.com".to_owned()),
            "{mails:?}"
        );
    }
}

async fn all_complete(w: &OktaWorld, ids: &[String]) -> bool {
    for id in ids {
        let r = w.state.store.get_request(id).await.unwrap().unwrap();
        if r.state.as_str() != "complete" {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_row_csv_with_5_bad_rows_refuses_each_naming_its_column_and_completes_the_other_195_on_sqlite()
 {
    must_show(150, 45, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_with_5_bad_rows_refuses_each_naming_its_column_and_completes_the_others_on_postgres()
{
    let db = pg::TestDb::create("prereg_batch_csv").await;
    must_show(30, 10, Some(db.url.clone())).await;
    db.drop_db().await;
}

/// A file that is not such a CSV is refused whole, in the guide's error shape, and
/// nothing is recorded: the wrong content type (415), then 400 for a body that is not
/// UTF-8 text, no header, an unknown or repeated column, no `product` column, a row with
/// more cells than the header, no rows, more than 1000 rows, a bad `?idp=`.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_such_a_csv_is_refused_whole_naming_why() {
    let w = world(1, 0, None).await;
    let good = format!("user,product\nfault0@contoso.onmicrosoft.com,{PRODUCT}\n");
    let (s, v) = post_csv(&w, "", "application/json", good.clone(), None).await;
    assert_eq!(s, 415, "{v}");
    assert_eq!(v["error_code"], "api_error");
    assert_eq!(v["error_data"]["error_type"], "unsupported_media_type");

    let mut too_many = String::from("user,product\n");
    for i in 0..1001 {
        too_many.push_str(&format!("u{i}@contoso.onmicrosoft.com,{PRODUCT}\n"));
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("", b"\xff\xfe\x00u\x00s".to_vec(), "not UTF-8"),
        ("", Vec::new(), "no header row"),
        ("", b"{\"users\": [\"a\"]}".to_vec(), "unknown column"),
        (
            "",
            b"user,product,pin\nx,1/1/C\n".to_vec(),
            "unknown column \"pin\"",
        ),
        (
            "",
            b"user,product,User\nx,1/1/C,y\n".to_vec(),
            "appears twice",
        ),
        ("", b"user,city\nx,Boston\n".to_vec(), "no `product` column"),
        (
            "",
            b"user,product\nx,1/1/C,extra\n".to_vec(),
            "line 2: the row has 3 cells, the header has 2",
        ),
        ("", b"user,product\n\n".to_vec(), "no rows"),
        ("", too_many.into_bytes(), "more than 1000 rows"),
        ("?idp=azure", good.clone().into_bytes(), "query"),
    ];
    for (query, body, words) in cases {
        let (s, v) = post_csv(&w, query, "text/csv", body, None).await;
        assert_eq!(s, 400, "{words}: {v}");
        assert_eq!(v["error_code"], "api_error", "{v}");
        assert_eq!(v["error_data"]["error_type"], "validation", "{v}");
        let m = v["error_message"].as_str().unwrap();
        assert!(m.contains(words), "{words}: {m}");
    }
    let (_, all) = w.call(Method::GET, "/v1/fpr/shipments?limit=1", None).await;
    assert_eq!(all["total_count"], 0, "{all}");
    assert_eq!(w.fulfiller_shipments().await.len(), 0);
}

/// The same file sent again: under the same `Idempotency-Key` each row answers
/// `created` with the first call's request (`replayed`), without a key each user's open
/// request answers `already_open`; a user twice in one file is ordered once. Nothing
/// is ordered twice, in either mode. A row's mode comes from `?idp=` when it has no
/// `idp` cell; an Okta-mode row may not override the profile.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_sent_twice_orders_nothing_twice() {
    let w = world(2, 2, None).await;
    let file = format!(
        "USER, Product ,idp,street_line1\n\
         user100@example.com,{GROUP},,\n\
         fault0@contoso.onmicrosoft.com,{PRODUCT},entra,\n\
         user101@example.com,{GROUP},,\n\
         FAULT0@contoso.onmicrosoft.com,{PRODUCT},entra,\n\
         user101@example.com,{GROUP},,1 Elsewhere St\n"
    );
    let (s, first) = post_csv(&w, "?idp=okta", "text/csv", file.clone(), Some("k-1")).await;
    assert_eq!(s, 202, "{first}");
    let d = first["data"].as_array().unwrap();
    let status: Vec<&str> = d.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        status,
        [
            "created",
            "created",
            "created",
            "already_open",
            "already_open"
        ],
        "{first}"
    );
    assert_eq!(d[0]["idp"], "okta");
    assert_eq!(
        d[3]["request_id"], d[1]["request_id"],
        "the same user, once"
    );
    assert_eq!(
        d[4]["request_id"], d[2]["request_id"],
        "the same user, once"
    );
    assert_eq!(first["created"], 3);

    // Its answer lost, the caller sends it again under the same key.
    let (s, again) = post_csv(&w, "?idp=okta", "text/csv", file.clone(), Some("k-1")).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["created"], 0, "{again}");
    for i in 0..3 {
        let r = &again["data"][i];
        assert_eq!(r["status"], "created", "{r}");
        assert_eq!(r["replayed"], true, "{r}");
        assert_eq!(r["request_id"], d[i]["request_id"], "{r}");
    }

    // Without a key: the users' open requests.
    let (s, plain) = post_csv(&w, "?idp=okta", "text/csv", file, None).await;
    assert_eq!(s, 202, "{plain}");
    assert_eq!(plain["created"], 0, "{plain}");
    for i in 0..3 {
        let r = &plain["data"][i];
        assert_eq!(r["status"], "already_open", "{r}");
        assert_eq!(r["request_id"], d[i]["request_id"], "{r}");
    }
    let (_, all) = w.call(Method::GET, "/v1/fpr/shipments?limit=1", None).await;
    assert_eq!(all["total_count"], 3, "{all}");
    w.process().await;
    assert_eq!(w.fulfiller_shipments().await.len(), 3, "one per person");

    // An Okta-mode row whose override breaks the fulfiller's limit is refused naming
    // the column (before anything is recorded); PIN contacts do not apply to Okta mode.
    let (s, v) = post_csv(
        &w,
        "?idp=okta",
        "text/csv",
        format!(
            "user,product,recipient_lastname,contacts\n\
             user100@example.com,{GROUP},Wolfeschlegelsteinhausen,\n\
             user101@example.com,{GROUP},,pin@example.com\n"
        ),
        None,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"][0]["status"], "refused", "{v}");
    assert_eq!(v["data"][0]["field"], "recipient_lastname", "{v}");
    assert!(
        v["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("the fulfiller allows 20"),
        "{v}"
    );
    assert_eq!(v["data"][1]["field"], "contacts", "{v}");
}
