//! `airlock check`: validate the config and load every component.

use airlock::runtime::Host;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config: &airlock::manifest::Config, _args: Args) -> anyhow::Result<i32> {
    let host = Host::load(config, airlock::audit::AuditLog::disabled())?;
    println!(
        "{}: ok, {} component(s), {} tool(s), {} connection(s)",
        config.file.display(),
        host.component_count(),
        host.tools().len(),
        config.connections.len()
    );
    Ok(0)
}
