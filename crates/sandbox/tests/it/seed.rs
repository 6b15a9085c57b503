//! The committed example seed is the built-in one, and a seed file is checked on load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox::fulfiller::Seed;
use std::path::Path;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/example.json")
}

#[test]
fn the_committed_example_seed_is_the_default_seed() {
    if std::env::var_os("UPDATE_SEED").is_some() {
        let text = serde_json::to_string_pretty(&Seed::default()).unwrap();
        std::fs::write(example(), text + "\n").unwrap();
    }
    assert_eq!(Seed::load(&example()).unwrap(), Seed::default());
}

#[test]
fn an_inconsistent_seed_is_refused_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("sandbox-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = serde_json::to_value(Seed::default()).unwrap();
    seed["inventory"][0]["product_id"] = 4242.into();
    let p = dir.join("bad.json");
    std::fs::write(&p, seed.to_string()).unwrap();
    let e = Seed::load(&p).unwrap_err().to_string();
    assert!(e.contains("unknown product 4242"), "{e}");
    let mut seed = serde_json::to_value(Seed::default()).unwrap();
    seed["organization_id"] = "short".into();
    std::fs::write(&p, seed.to_string()).unwrap();
    assert!(Seed::load(&p).unwrap_err().to_string().contains("base58"));
    std::fs::write(&p, "{\"tokens\": []}").unwrap();
    assert!(
        Seed::load(&p)
            .unwrap_err()
            .to_string()
            .contains("parsing the seed")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
