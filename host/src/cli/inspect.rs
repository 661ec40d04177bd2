//! `airlock inspect`: what a component is, offers and declares.

use airlock::manifest::{Declaration, DeclaredUrl};
use airlock::runtime::find_declaration;
use anyhow::Context as _;
use sha2::Digest as _;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component (.wasm) to inspect.
    component: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let path = &args.component;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    println!("component {}", path.display());
    println!("sha256 {}", hex::encode(sha2::Sha256::digest(&bytes)));

    let declaration = find_declaration(&bytes, path)?;
    match &declaration {
        Some(d) => print_declaration(d),
        None => println!(
            "\ndeclaration: none (grants apply as the operator writes them; a strict tool refuses to load)"
        ),
    }

    // Tools are named after the declared name, as an operator would
    // usually name the tool in the config.
    let prefix = match &declaration {
        Some(d) => d.name.clone(),
        None => path
            .file_stem()
            .map_or_else(|| "tool".into(), |s| s.to_string_lossy().into_owned()),
    };
    let tools = airlock::tools::describe(&bytes, &prefix)?;
    println!("\ntools ({}):", tools.len());
    for tool in tools {
        println!("  {}", tool.name);
        for line in tool.description.lines() {
            println!("    {line}");
        }
        println!("    input: {}", serde_json::to_string(&tool.input_schema)?);
        if let Some(output) = &tool.output_schema {
            println!("    output: {}", serde_json::to_string(output)?);
        }
    }
    Ok(0)
}

fn print_declaration(d: &Declaration) {
    println!("\ndeclaration {} (from {})", d.name, d.source.display());
    println!("  version {}", d.version);
    println!("  connections:");
    if d.connections.is_empty() {
        println!("    none");
    }
    for (name, c) in &d.connections {
        let scopes = if c.any_scopes {
            "any scopes the operator grants".to_owned()
        } else if c.scopes.is_empty() {
            "no scopes".to_owned()
        } else {
            format!("scopes {}", c.scopes.join(" "))
        };
        println!("    {name}: {scopes}");
    }
    println!("  endpoints:");
    if d.endpoints.is_empty() {
        println!("    none");
    }
    for e in &d.endpoints {
        let url = match &e.url {
            DeclaredUrl::Any => "* (any URL the operator grants)".to_owned(),
            DeclaredUrl::Pattern(p) => p.to_string(),
        };
        let binding = match &e.connection {
            Some(c) => format!("connection {c}"),
            None => "unauthenticated".to_owned(),
        };
        println!("    {} {url} ({binding})", e.methods);
    }
    println!("  config:");
    if d.config.is_empty() {
        println!("    none");
    }
    for (key, k) in &d.config {
        let default = match &k.default {
            Some(v) => format!("default {v:?}"),
            None => "no default".to_owned(),
        };
        match &k.description {
            Some(text) => println!("    {key}: {default}; {text}"),
            None => println!("    {key}: {default}"),
        }
    }
}
