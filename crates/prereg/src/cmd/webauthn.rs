//! `prereg webauthn ...` (placeholder until its issue lands).

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {}
}
