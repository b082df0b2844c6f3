//! `cordon user add|list`: account management from the command line (the first admin).

use crate::config::Config;
use crate::UserCommand;
use anyhow::{Context, Result};
use std::process::ExitCode;
use tracing::info;

/// `cordon user add|list`: account management from the command line (the first admin).
pub async fn user(config: &Config, action: UserCommand) -> Result<ExitCode> {
    let store = super::connect_store(config).await?;
    match action {
        UserCommand::Add {
            username,
            role,
            sso,
        } => {
            let role = cordon_review::Role::parse(&role).with_context(|| {
                format!("role must be moderator, senior or admin, not `{role}`")
            })?;
            let password = if sso {
                None
            } else {
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    eprint!("password for {username} (input is shown; pipe it in to hide it): ");
                }
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                anyhow::ensure!(
                    !line.is_empty(),
                    "no password on standard input (use --sso for a single-sign-on account)"
                );
                Some(line)
            };
            let account = store.add_account("cli", &username, role, password).await?;
            println!("{}", serde_json::to_string(&account)?);
            info!(username = %account.username, role = role.as_str(), "account created");
        }
        UserCommand::List => {
            for account in store.accounts().await? {
                println!("{}", serde_json::to_string(&account)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
