//! `prereg batch FILE.csv` (docs/batch.md) against the in-process sandboxes: the binary
//! run as an admin would, with the connector's configuration.

use crate::common::{in_process, prereg};
use serde_json::Value;

fn lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prereg_batch_orders_the_good_rows_of_a_csv_and_names_the_bad_ones() {
    let dir = format!("prereg-batch-cli-{}", std::process::id());
    let w = in_process(&dir, None, "").await;
    let config = w.config.to_str().unwrap();
    let file = w.dir.join("keys.csv");
    std::fs::write(
        &file,
        "user,product,contacts,city\n\
         AdeleV@contoso.onmicrosoft.com,1/1/C19881,,\n\
         DiegoS@contoso.onmicrosoft.com,1/1/C19881,it-desk@contoso.example,Tacoma\n\
         EnricoC@contoso.onmicrosoft.com,1/1/C19881,,\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let out = prereg(&["batch", file, "--config", config, "--process"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "one row is refused: exit 1");
    assert!(err.contains("1 of 3 rows were refused"), "{err}");
    let rows = lines(&out);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0]["line"].as_u64(), rows[0]["status"].as_str()),
        (Some(2), Some("created"))
    );
    assert_eq!(rows[1]["status"], "created", "{rows:?}");
    // Enrico has no address, phone or company in Entra: the refusal names the columns.
    assert_eq!(rows[2]["line"], 4);
    assert_eq!(rows[2]["status"], "refused");
    assert_eq!(rows[2]["field"], "recipient_company");
    let why = rows[2]["error"].as_str().unwrap();
    assert!(
        why.contains("has no companyName") && why.contains("`street_line1`"),
        "{why}"
    );

    // The two shipments exist at the fulfiller; Diego's carries the file's city.
    let v: Value = reqwest::Client::new()
        .get(format!("{}/v1/shipments_exact", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shipments = v["shipments"].as_array().unwrap();
    assert_eq!(shipments.len(), 2, "{v}");
    assert!(shipments.iter().any(|s| s["city"] == "Tacoma"), "{v}");

    // Run again: the two are open (nothing new), the summary counts them.
    let out = prereg(&["batch", file, "--config", config, "--summary"]);
    assert!(!out.status.success());
    let sum = lines(&out);
    assert_eq!(sum.len(), 1, "{sum:?}");
    assert_eq!(sum[0]["rows"], 3);
    assert_eq!(sum[0]["already_open"], 2);
    assert_eq!(sum[0]["refused"], 1);
    assert_eq!(sum[0]["created"], 0);

    // A file that is not such a CSV orders nothing and says why.
    let bad = w.dir.join("bad.csv");
    std::fs::write(&bad, "login,product\nx,1/1/C19881\n").unwrap();
    let out = prereg(&["batch", bad.to_str().unwrap(), "--config", config]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unknown column \"login\""), "{err}");
    let _ = std::fs::remove_dir_all(&w.dir);
}
