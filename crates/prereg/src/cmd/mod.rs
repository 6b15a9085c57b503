//! One module per command family. Shared input helpers live here.

pub mod batch;
pub mod bench;
pub mod chaos;
pub mod console;
pub mod data;
pub mod demo;
pub mod depot;
pub mod entra;
pub mod envelope;
pub mod key;
pub mod okta;
pub mod pg;
pub mod sandbox;
pub mod serve;
pub mod webauthn;
pub mod yubico;

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

/// Prints a server's one JSON ready line on stdout and flushes it, so a script reading
/// the first line knows the server listens.
pub fn print_ready_line(line: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("writing the ready line")?;
    out.flush().context("writing the ready line")
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM: the clean stop of the servers
/// `prereg sandbox` and `prereg serve` run.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait for SIGTERM only.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
