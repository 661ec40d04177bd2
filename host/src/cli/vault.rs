//! `airlock vault`: store, list, remove, revoke and rekey linked accounts.

use airlock::broker::{AtProvider, Broker};
use airlock::secret::Secret;
use airlock::vault::{KeySource, LocalVault, MasterKey, TokenRecord};
use anyhow::{Context as _, bail};
use std::io::Read as _;
use std::sync::Arc;
use zeroize::Zeroizing;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store a token for (user, connection), read from standard input.
    Put {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        /// The connection it was issued for.
        #[arg(long)]
        connection: String,
        /// Seconds until the token expires.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Scopes the token carries, comma-separated.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List linked accounts without their tokens.
    List,
    /// Remove the token for (user, connection).
    Rm {
        /// The user.
        #[arg(long)]
        user: String,
        /// The connection.
        #[arg(long)]
        connection: String,
    },
    /// Revoke the link at the provider (where it has a revocation
    /// endpoint), then remove it from the vault.
    Revoke {
        /// The user.
        #[arg(long)]
        user: String,
        /// The connection.
        #[arg(long)]
        connection: String,
    },
    /// Re-encrypt every record under a new master key. With a key file, a
    /// new key replaces it; with a key from the environment, name the
    /// variable that holds the new key, then switch the config to it.
    Rekey {
        /// Environment variable holding the new key (32 bytes as base64 or
        /// 64 hex digits); required when the current key is from the
        /// environment.
        #[arg(long)]
        new_key_env: Option<String>,
    },
}

pub async fn run(config: &airlock::manifest::Config, command: Command) -> anyhow::Result<i32> {
    let vault = LocalVault::open(&config.vault.dir, &config.vault.key)?;
    match command {
        Command::Put {
            user,
            connection,
            expires_in,
            scopes,
        } => {
            if !config.connections.contains_key(&connection) {
                bail!(
                    "no connection named {connection:?} in {}",
                    config.file.display()
                );
            }
            let mut input = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut input)
                .context("reading the token from standard input")?;
            let token =
                Secret::new(input.to_vec()).context("the token read from standard input")?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let record = TokenRecord {
                access_token: token,
                refresh_token: None,
                expires_at: expires_in.map(|s| now + s),
                issued_at: Some(now),
                scopes,
                version: 0,
            };
            let version = vault.put(&user, &connection, record)?;
            println!(
                "stored token for user {user:?}, connection {connection:?} (version {version})"
            );
        }
        Command::List => {
            let records = vault.list()?;
            if records.is_empty() {
                println!("no linked accounts in {}", vault.file().display());
            } else {
                println!(
                    "{:<24} {:<16} {:<22} {:<8} SCOPES",
                    "USER", "CONNECTION", "EXPIRES", "REFRESH"
                );
                for r in records {
                    let expires = r.expires_at.map_or("never".to_string(), format_unix);
                    println!(
                        "{:<24} {:<16} {:<22} {:<8} {}",
                        r.user,
                        r.connection,
                        expires,
                        if r.refreshable { "yes" } else { "no" },
                        r.scopes.join(",")
                    );
                }
            }
        }
        Command::Rm { user, connection } => {
            if vault.remove(&user, &connection)? {
                println!("removed token for user {user:?}, connection {connection:?}");
            } else {
                bail!("no token stored for user {user:?}, connection {connection:?}");
            }
        }
        Command::Revoke { user, connection } => {
            if !config.connections.contains_key(&connection) {
                bail!(
                    "no connection named {connection:?} in {}",
                    config.file.display()
                );
            }
            let broker = Broker::from_config(config, Arc::new(vault))?;
            let revoked = broker.revoke(&user, &connection).await?;
            match (revoked.at_provider, revoked.removed) {
                (_, false) => bail!("no token stored for user {user:?}, connection {connection:?}"),
                (AtProvider::Revoked, true) => println!(
                    "revoked at the provider and removed: user {user:?}, connection {connection:?}"
                ),
                (AtProvider::AlreadyGone, true) => println!(
                    "removed user {user:?}, connection {connection:?}; the provider no longer knew the grant, so nothing was left to revoke there"
                ),
                (AtProvider::NoEndpoint, true) => println!(
                    "removed user {user:?}, connection {connection:?}; the provider has no revocation endpoint, so the grant stays until the user removes it there"
                ),
            }
        }
        Command::Rekey { new_key_env } => {
            let report = match (&config.vault.key, new_key_env) {
                (KeySource::File(path), None) => vault.rekey_file(path)?,
                (_, Some(var)) => {
                    let new = MasterKey::load(&KeySource::Env(var.clone()))?;
                    let report = vault.rekey_to(&new)?;
                    println!("set the vault key to the value of {var} before the next start");
                    report
                }
                (KeySource::Env(var), None) => bail!(
                    "the vault key comes from {var}; pass --new-key-env NAME with the new key"
                ),
            };
            println!(
                "re-encrypted {} records: key {} -> {}",
                report.records, report.old_key, report.new_key
            );
        }
    }
    Ok(0)
}

fn format_unix(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match secs.checked_sub(now) {
        Some(left) => format!("{secs} (in {left}s)"),
        None => format!("{secs} (expired)"),
    }
}
