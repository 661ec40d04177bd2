//! `airlock audit`: verify the hash chain and query events.

use airlock::audit::{Decision, Filter};
use anyhow::bail;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check the hash chain; name the first broken event.
    Verify,
    /// Print events that match every given filter.
    Query {
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
        /// Only this tool.
        #[arg(long)]
        tool: Option<String>,
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Only this decision: allow, deny, authorization_required, error.
        #[arg(long)]
        decision: Option<String>,
        /// At or after this UTC time, such as 2026-12-04 or 2026-12-04T09:30.
        #[arg(long)]
        since: Option<String>,
        /// Before this UTC time.
        #[arg(long)]
        until: Option<String>,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &airlock::manifest::Config, command: Command) -> anyhow::Result<i32> {
    let dir = &config.audit.dir;
    match command {
        Command::Verify => {
            let report = airlock::audit::verify(dir)?;
            println!(
                "{}: chain ok, {} event(s) in {} file(s), last hash {}",
                dir.display(),
                report.events,
                report.files,
                report.last_hash
            );
        }
        Command::Query {
            user,
            tool,
            connection,
            decision,
            since,
            until,
            json,
        } => {
            let decision = match decision.as_deref() {
                None => None,
                Some("allow") => Some(Decision::Allow),
                Some("deny") => Some(Decision::Deny),
                Some("authorization_required") => Some(Decision::AuthorizationRequired),
                Some("error") => Some(Decision::Error),
                Some(other) => bail!(
                    "--decision {other:?}: expected allow, deny, authorization_required or error"
                ),
            };
            let filter = Filter {
                user,
                tool,
                connection,
                decision,
                since,
                until,
            };
            let events = airlock::audit::query(dir, &filter)?;
            let mut text = String::new();
            if json {
                for e in &events {
                    text.push_str(&serde_json::to_string(e)?);
                    text.push('\n');
                }
            } else {
                text = airlock::audit::render_table(&events);
            }
            print_all(&text)?;
        }
    }
    Ok(0)
}

/// Writes `text` to standard output. A reader that stops early (`| head`)
/// is not an error: the output it wanted was written.
fn print_all(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
