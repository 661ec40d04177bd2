//! `airlock vault`: store, list and remove linked accounts.

use airlock::secret::Secret;
use airlock::vault::{LocalVault, TokenRecord};
use anyhow::{Context as _, bail};
use std::io::Read as _;
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
}

pub fn run(config: &airlock::manifest::Config, command: Command) -> anyhow::Result<i32> {
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
