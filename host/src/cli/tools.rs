//! `airlock tools`: list tools with their schemas.

use airlock::runtime::Host;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(config: &airlock::manifest::Config, args: Args) -> anyhow::Result<i32> {
    let host = Host::load(config, airlock::audit::AuditLog::disabled())?;
    let tools = host.tools();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tools)?);
        return Ok(0);
    }
    if tools.is_empty() {
        println!("no tools loaded (config: {})", config.file.display());
    }
    for tool in tools {
        println!(
            "{}\n  {}",
            tool.name,
            tool.description.replace('\n', "\n  ")
        );
        println!("  input: {}", serde_json::to_string(&tool.input_schema)?);
        if let Some(output) = &tool.output_schema {
            println!("  output: {}", serde_json::to_string(output)?);
        }
        println!("  component sha256: {}\n", tool.component);
    }
    Ok(0)
}
