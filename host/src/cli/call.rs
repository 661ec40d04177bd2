//! `airlock call`: run one tool for one user.

use super::EXIT_AUTHORIZATION_REQUIRED;
use airlock::runtime::{CallError, CallRequest, Host};
use airlock::tools::ToolOutput;
use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tool name, as `airlock tools` lists it.
    tool: String,
    /// The user the call acts for.
    #[arg(long)]
    user: String,
    /// Arguments as a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
}

pub async fn run(config: &airlock::manifest::Config, args: Args) -> anyhow::Result<i32> {
    let json: serde_json::Value =
        serde_json::from_str(&args.args).context("--args is not valid JSON")?;
    let audit = super::open_audit(config)?;
    let host = Host::load(config, audit.clone())?;
    let request = CallRequest {
        tool: args.tool,
        user: args.user,
        caller: "cli".into(),
        args: json,
    };
    let result = host.call(request).await;
    audit.flush().context("flushing the audit log")?;
    match result {
        Ok(out) => match out.output {
            ToolOutput::Ok(value) => {
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(0)
            }
            ToolOutput::ToolError(value) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "error": value }))?
                );
                Ok(1)
            }
        },
        Err(CallError::AuthorizationRequired(required)) => {
            eprintln!(
                "error: authorization required: user must link connection {:?} ({})",
                required.connection, required.reason
            );
            if let Some(url) = &required.consent_url {
                eprintln!("consent: {url}");
            }
            Ok(EXIT_AUTHORIZATION_REQUIRED)
        }
        Err(err) => Err(err.into()),
    }
}
