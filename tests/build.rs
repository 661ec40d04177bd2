//! Builds every example tool in `guest-examples/` (the hostile-guest suite's
//! `hostile` tool among them) for `wasm32-wasip2`, appends its documented WIT
//! package as the `airlock-docs` custom section (toolchains drop doc comments;
//! the host reads tool descriptions from this section), and writes the
//! results' paths as constants, so tests always run the current source. The
//! finished components are `target/guests/NAME.wasm`.

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

    let built = target_dir.join("wasm32-wasip2").join("release");
    let mut constants = String::new();
    for name in ["clients", "echo", "fetch", "hostile"] {
        let raw = std::fs::read(built.join(format!("{name}.wasm"))).expect("the guest was built");
        let docs = documented_package(root, &guests.join(name).join("wit"));
        let path = target_dir.join(format!("{name}.wasm"));
        std::fs::write(&path, append_custom_section(raw, "airlock-docs", &docs)).unwrap();
        // A tool's declaration travels beside the component, as
        // `<component>.airlock.toml`, so the component stays as built.
        // `hostile` declares nothing on purpose.
        let declaration = guests.join(name).join("airlock.toml");
        if declaration.exists() {
            std::fs::copy(
                &declaration,
                target_dir.join(format!("{name}.wasm.airlock.toml")),
            )
            .unwrap_or_else(|e| panic!("copying {}: {e}", declaration.display()));
        }
        constants.push_str(&format!(
            "pub const {}: &str = {:?};\n",
            name.to_uppercase(),
            path.display().to_string()
        ));
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(dest, constants).unwrap();
}

/// The guest's WIT package, with doc comments, in the binary WIT format.
fn documented_package(root: &Path, wit_dir: &Path) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    resolve.push_dir(root.join("wit")).expect("parsing wit/");
    let (package, _) = resolve
        .push_dir(wit_dir)
        .unwrap_or_else(|e| panic!("parsing {}: {e:#}", wit_dir.display()));
    wit_component::encode(&resolve, package).expect("encoding the WIT package")
}

/// Appends a custom section to the end of a component.
fn append_custom_section(mut component: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut contents = Vec::new();
    leb128(&mut contents, name.len());
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(payload);
    component.push(0);
    leb128(&mut component, contents.len());
    component.extend_from_slice(&contents);
    component
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
