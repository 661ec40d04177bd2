//! The `airlock` command line: argument parsing and printing only.

mod audit;
mod call;
mod check;
mod connect;
mod inspect;
mod pack;
mod serve;
mod tools;
mod vault;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Run AI-agent tools as WebAssembly components that call APIs for a user
/// without ever holding a credential.
#[derive(Debug, Parser)]
#[command(name = "airlock", version)]
pub struct Cli {
    /// Operator config file. Without it, `./airlock.toml` is used when it
    /// exists, else the embedded defaults (no tools, vault in ./.airlock).
    #[arg(long, global = true, env = "AIRLOCK_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the loaded tools with their JSON Schemas.
    Tools(tools::Args),
    /// Run one tool for one user and print its JSON result.
    Call(call::Args),
    /// Link a user's account for a connection (OAuth consent in a browser).
    Connect(connect::Args),
    /// Manage linked accounts in the vault.
    #[command(subcommand)]
    Vault(vault::Command),
    /// Check the config and every component it names.
    Check(check::Args),
    /// Verify and query the audit log.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Embed a tool declaration in a component and print its new sha256.
    Pack(pack::Args),
    /// Print a component's digest, declaration and tools with schemas.
    Inspect(inspect::Args),
    /// Serve the tools to agent runtimes: MCP (stdio or HTTP) and the HTTP API.
    Serve(serve::Args),
}

/// Exit status for a call that needs the user to link an account.
pub const EXIT_AUTHORIZATION_REQUIRED: i32 = 3;

/// Runs the command line and returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(cli));
    // A blocking read of standard input (`serve --stdio` on a terminal or a
    // file) never returns on its own; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    // These read no config, or read it themselves to report every problem.
    match cli.command {
        Command::Pack(args) => return pack::run(args),
        Command::Inspect(args) => return inspect::run(args),
        Command::Check(args) => {
            let path = cli.config.unwrap_or_else(|| "airlock.toml".into());
            return check::run(&path, args);
        }
        _ => {}
    }
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Tools(args) => tools::run(&config, args),
        Command::Call(args) => call::run(&config, args).await,
        Command::Connect(args) => connect::run(&config, args).await,
        Command::Vault(command) => vault::run(&config, command).await,
        Command::Audit(command) => audit::run(&config, command),
        Command::Serve(args) => serve::run(&config, args).await,
        Command::Pack(_) | Command::Inspect(_) | Command::Check(_) => unreachable!("handled above"),
    }
}

/// The config named on the command line, `./airlock.toml`, or the embedded
/// defaults.
fn load_config(path: Option<&Path>) -> anyhow::Result<airlock::manifest::Config> {
    let default = Path::new("airlock.toml");
    match path {
        Some(p) => Ok(airlock::manifest::Config::load(p)?),
        None if default.exists() => Ok(airlock::manifest::Config::load(default)?),
        None => {
            let cwd = std::env::current_dir().context("current directory")?;
            Ok(airlock::manifest::Config::parse(
                "",
                Path::new("<embedded defaults>"),
                &cwd,
            )?)
        }
    }
}

/// Opens the audit log the config names.
fn open_audit(config: &airlock::manifest::Config) -> anyhow::Result<airlock::audit::AuditLog> {
    let a = &config.audit;
    let settings = airlock::audit::AuditConfig {
        dir: a.dir.clone(),
        max_file_bytes: a.max_file_bytes,
        rotate_daily: a.rotate_daily,
        on_failure: if a.continue_on_failure {
            airlock::audit::FailureMode::ContinueAndAlert
        } else {
            airlock::audit::FailureMode::FailCall
        },
        write_timeout: std::time::Duration::from_millis(a.write_timeout_ms),
    };
    airlock::audit::AuditLog::open(settings)
        .with_context(|| format!("opening audit log in {}", a.dir.display()))
}

fn init_tracing() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| "warn,airlock=info".into());
    // The MCP SDK logs whole requests at debug, tool arguments (URLs with
    // their query strings) included; keep that out unless asked for by name.
    let asked = std::env::var("AIRLOCK_LOG").is_ok_and(|v| v.contains("rmcp"));
    if !asked && let Ok(cap) = "rmcp=info".parse() {
        filter = filter.add_directive(cap);
    }
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
