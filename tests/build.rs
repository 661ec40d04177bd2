//! Builds every example tool in `guest-examples/` for `wasm32-wasip2` and
//! writes their paths as constants, so tests always run the current source.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let guests = root.join("guest-examples");
    let target_dir = root.join("target").join("guests");
    for dir in [guests.as_path(), &root.join("wit")] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .arg("build")
        .arg("--release")
        .arg("--target=wasm32-wasip2")
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let status = cargo
        .status()
        .expect("running cargo for the guest examples");
    assert!(
        status.success(),
        "building guest-examples for wasm32-wasip2 failed"
    );

    let out = target_dir.join("wasm32-wasip2").join("release");
    let mut constants = String::new();
    for name in ["fetch"] {
        let path = out.join(format!("{name}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        // The tool's declaration travels beside the component, as
        // `<component>.airlock.toml`, so the component stays as built.
        let declaration = guests.join(name).join("airlock.toml");
        std::fs::copy(&declaration, out.join(format!("{name}.wasm.airlock.toml")))
            .unwrap_or_else(|e| panic!("copying {}: {e}", declaration.display()));
        constants.push_str(&format!(
            "pub const {}: &str = {:?};\n",
            name.to_uppercase(),
            path.display().to_string()
        ));
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(dest, constants).unwrap();
}
