//! `airlock pack`: embed a tool declaration in a component.

use airlock::manifest::{Declaration, section};
use anyhow::Context as _;
use sha2::Digest as _;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component (.wasm) to declare.
    component: PathBuf,
    /// The declaration (TOML) to embed; it replaces any declaration the
    /// component already carries.
    declaration: PathBuf,
    /// Where to write the packed component [default: over COMPONENT].
    #[arg(short, long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.declaration)
        .with_context(|| format!("reading {}", args.declaration.display()))?;
    if let Err(errors) = Declaration::parse(&text, &args.declaration) {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!(
            "error: {} problem(s) in the declaration; nothing written",
            errors.len()
        );
        return Ok(1);
    }
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let packed = section::embed(&bytes, &text)
        .with_context(|| format!("packing {}", args.component.display()))?;

    // Write beside the target and rename, so a failed write never leaves a
    // half-written component behind.
    let out = args.out.unwrap_or(args.component);
    let tmp = out.with_extension("wasm.airlock-tmp");
    std::fs::write(&tmp, &packed).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", out.display());
    println!("sha256 {}", hex::encode(sha2::Sha256::digest(&packed)));
    Ok(0)
}
