//! Regenerates the committed sandbox attestation CA in `crates/authenticator/sandbox-ca/`.
//! Run only to rotate it: every sandbox that pinned the old root must then be updated.
//!
//! `cargo run -p authenticator --example gen_sandbox_ca`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sandbox-ca");
    std::fs::create_dir_all(&dir)?;
    let ca = authenticator::generate_sandbox_ca()?;
    std::fs::write(dir.join("root.pem"), &ca.root_pem)?;
    std::fs::write(dir.join("root.key.pem"), ca.root_key_pem.as_bytes())?;
    std::fs::write(dir.join("intermediate.pem"), &ca.intermediate_pem)?;
    std::fs::write(
        dir.join("intermediate.key.pem"),
        ca.intermediate_key_pem.as_bytes(),
    )?;
    println!("wrote {}", dir.display());
    Ok(())
}
