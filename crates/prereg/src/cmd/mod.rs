//! One module per command family. Shared input helpers live here.

pub mod envelope;
pub mod key;
pub mod sandbox;
pub mod serve;
pub mod webauthn;

use anyhow::Context;
use std::io::Read;

/// The most any single command-line input (token, file) may be: 256 KiB.
pub const MAX_INPUT: u64 = 256 * 1024;

/// Reads an argument that is a path to a file, or `-` for standard input, capped at
/// [`MAX_INPUT`]. Trailing whitespace is trimmed.
pub fn read_input(arg: &str) -> anyhow::Result<String> {
    let mut buf = String::new();
    if arg == "-" {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_string(&mut buf)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(arg)
            .with_context(|| format!("opening {arg}"))?
            .take(MAX_INPUT + 1)
            .read_to_string(&mut buf)
            .with_context(|| format!("reading {arg}"))?;
    }
    if buf.len() as u64 > MAX_INPUT {
        anyhow::bail!("input {arg} is larger than {MAX_INPUT} bytes");
    }
    Ok(buf.trim_end().to_owned())
}
