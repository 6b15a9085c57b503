//! `prereg console ...`: helpers for the admin console (docs/console.md).

use anyhow::Context;
use std::io::{BufRead, Read};

/// Console helpers.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Reads a password on standard input (one line, at least 12 characters) and prints
    /// its argon2id PHC string, for `[console] admin_password_hash`.
    HashPassword,
}

/// Runs a console command.
pub fn run(c: Command) -> anyhow::Result<()> {
    match c {
        Command::HashPassword => {
            let mut line = String::new();
            // At most 1 KiB: a password, not a file.
            std::io::stdin()
                .lock()
                .take(1024)
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 12 {
                anyhow::bail!("the password must be at least 12 characters");
            }
            let phc = connector::console::auth::hash_password(password)
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
            println!("{phc}");
            Ok(())
        }
    }
}
