//! `airlock check`: validate the config and every component it names,
//! printing each problem.

use airlock::runtime::Severity;
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Checks the config at `path`; exits 1 when there is an error. Warnings
/// alone (a declared need not granted, an unused grant) exit 0.
pub fn run(path: &Path, _args: Args) -> anyhow::Result<i32> {
    let report = airlock::runtime::check(path);
    for problem in &report.problems {
        println!("{problem}");
    }
    let (errors, warnings) = (
        report.count(Severity::Error),
        report.count(Severity::Warning),
    );
    println!(
        "{}: {}, {errors} error(s), {warnings} warning(s); {} component(s), {} tool(s), {} connection(s)",
        report.file.display(),
        if errors == 0 { "ok" } else { "failed" },
        report.components,
        report.tools,
        report.connections
    );
    Ok(if errors == 0 { 0 } else { 1 })
}
