//! Doc comments for components that lost them.
//!
//! The component binary format has no place for documentation, and the
//! toolchains that build components (wit-bindgen with wasm-component-ld) drop
//! it. A tool's build can keep it by encoding its WIT package with
//! `wit_component::encode`, which carries the docs, and appending that to the
//! component as the custom section [`DOCS_SECTION`] with [`embed_docs`].
//! [`describe`](super::describe) then copies the docs onto the decoded
//! component's WIT, matching package, interface, function, type, field and
//! case names. Items the package does not match keep empty docs.

use wit_component::DecodedWasm;
use wit_parser::{
    InterfaceId, PackageId, Resolve, TypeDef, TypeDefKind, WorldId, WorldItem, WorldKey,
};

use super::ToolsError;

/// Name of the custom section holding a tool's documented WIT package.
pub const DOCS_SECTION: &str = "airlock-docs";

/// Appends `wit_package` to `component` as the [`DOCS_SECTION`] custom
/// section, so that [`describe`](super::describe) finds the doc comments.
///
/// `wit_package` is a binary WIT package as `wit_component::encode` writes
/// it; it is checked to decode. A component that already has the section is
/// refused.
pub fn embed_docs(component: &[u8], wit_package: &[u8]) -> Result<Vec<u8>, ToolsError> {
    match wit_component::decode(component) {
        Ok(DecodedWasm::Component(..)) => {}
        Ok(DecodedWasm::WitPackage(..)) => return Err(ToolsError::NotAComponent),
        Err(e) => return Err(ToolsError::Decode(format!("{e:#}"))),
    }
    decode_package(wit_package)?;
    if find_section(component)?.is_some() {
        return Err(ToolsError::Docs(format!(
            "the component already has a {DOCS_SECTION:?} section"
        )));
    }

    let mut contents = Vec::new();
    leb128(&mut contents, DOCS_SECTION.len());
    contents.extend_from_slice(DOCS_SECTION.as_bytes());
    contents.extend_from_slice(wit_package);
    let mut out = component.to_vec();
    out.push(0);
    leb128(&mut out, contents.len());
    out.extend_from_slice(&contents);
    Ok(out)
}

/// The contents of the top-level [`DOCS_SECTION`] of `component`, if any.
///
/// Walks the top-level sections, so a component cut short inside one is
/// refused here.
pub(crate) fn find_section(component: &[u8]) -> Result<Option<&[u8]>, ToolsError> {
    let malformed = |rest: &[u8]| {
        let offset = component.len() - rest.len();
        ToolsError::Decode(format!("the section at offset {offset} runs past the end"))
    };
    let mut rest = component.get(8..).ok_or_else(|| malformed(&[]))?;
    let mut found = None;
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, after_size) = read_leb128(after_id).ok_or_else(|| malformed(rest))?;
        if after_size.len() < size {
            return Err(malformed(rest));
        }
        let (section, after) = after_size.split_at(size);
        let start = rest;
        rest = after;
        if id != 0 {
            continue;
        }

        let (name_len, after_len) = read_leb128(section).ok_or_else(|| malformed(start))?;
        if after_len.len() < name_len {
            return Err(malformed(start));
        }
        let (name, data) = after_len.split_at(name_len);
        if name == DOCS_SECTION.as_bytes() {
            if found.is_some() {
                return Err(ToolsError::Docs(format!(
                    "more than one {DOCS_SECTION:?} section"
                )));
            }
            found = Some(data);
        }
    }
    Ok(found)
}

/// Decodes a binary WIT package.
pub(crate) fn decode_package(bytes: &[u8]) -> Result<(Resolve, PackageId), ToolsError> {
    match wit_component::decode(bytes) {
        Ok(DecodedWasm::WitPackage(resolve, package)) => Ok((resolve, package)),
        Ok(DecodedWasm::Component(..)) => Err(ToolsError::Docs(
            "expected a WIT package, found a component".into(),
        )),
        Err(e) => Err(ToolsError::Docs(format!("not a WIT package: {e:#}"))),
    }
}

/// Copies the docs of `documented` and its `package` onto the matching items
/// of `target`.
pub(crate) fn inject(
    target: &mut Resolve,
    world: WorldId,
    (documented, package): (&Resolve, PackageId),
) {
    // Named interfaces, exported or used by exports, match by package name.
    let named: Vec<_> = target.interfaces.iter().map(|(id, _)| id).collect();
    for id in named {
        let iface = &target.interfaces[id];
        let (Some(name), Some(pkg)) = (&iface.name, iface.package) else {
            continue;
        };
        let found = documented
            .package_names
            .get(&target.packages[pkg].name)
            .and_then(|p| documented.packages[*p].interfaces.get(name));
        if let Some(&source) = found {
            copy_interface(target, id, documented, source);
        }
    }

    // Functions and inline interfaces exported by the world itself match by
    // export name in the worlds of the documented package.
    let keys: Vec<_> = target.worlds[world].exports.keys().cloned().collect();
    for key in keys {
        let WorldKey::Name(name) = &key else { continue };
        let Some(source) = documented_world_export(documented, package, name) else {
            continue;
        };
        let item = target.worlds[world]
            .exports
            .get_mut(&key)
            .expect("key listed");
        match (item, source) {
            (WorldItem::Function(func), WorldItem::Function(doc)) => {
                func.docs = doc.docs.clone();
            }
            (WorldItem::Interface { id, .. }, WorldItem::Interface { id: source, .. }) => {
                let id = *id;
                copy_interface(target, id, documented, *source);
            }
            _ => {}
        }
    }
}

fn documented_world_export<'a>(
    documented: &'a Resolve,
    package: PackageId,
    name: &str,
) -> Option<&'a WorldItem> {
    let key = WorldKey::Name(name.to_string());
    let mut worlds = documented.packages[package].worlds.values();
    worlds.find_map(|world| documented.worlds[*world].exports.get(&key))
}

fn copy_interface(
    target: &mut Resolve,
    id: InterfaceId,
    documented: &Resolve,
    source: InterfaceId,
) {
    let source = &documented.interfaces[source];
    let iface = &mut target.interfaces[id];
    iface.docs = source.docs.clone();
    for (name, func) in iface.functions.iter_mut() {
        if let Some(doc) = source.functions.get(name) {
            func.docs = doc.docs.clone();
        }
    }

    let types: Vec<_> = iface.types.iter().map(|(n, t)| (n.clone(), *t)).collect();
    for (name, ty) in types {
        if let Some(doc) = source.types.get(&name) {
            copy_type(&mut target.types[ty], &documented.types[*doc]);
        }
    }
}

fn copy_type(target: &mut TypeDef, source: &TypeDef) {
    target.docs = source.docs.clone();
    match (&mut target.kind, &source.kind) {
        (TypeDefKind::Record(t), TypeDefKind::Record(s)) => {
            for field in &mut t.fields {
                if let Some(doc) = s.fields.iter().find(|f| f.name == field.name) {
                    field.docs = doc.docs.clone();
                }
            }
        }
        (TypeDefKind::Variant(t), TypeDefKind::Variant(s)) => {
            for case in &mut t.cases {
                if let Some(doc) = s.cases.iter().find(|c| c.name == case.name) {
                    case.docs = doc.docs.clone();
                }
            }
        }
        (TypeDefKind::Enum(t), TypeDefKind::Enum(s)) => {
            for case in &mut t.cases {
                if let Some(doc) = s.cases.iter().find(|c| c.name == case.name) {
                    case.docs = doc.docs.clone();
                }
            }
        }
        (TypeDefKind::Flags(t), TypeDefKind::Flags(s)) => {
            for flag in &mut t.flags {
                if let Some(doc) = s.flags.iter().find(|f| f.name == flag.name) {
                    flag.docs = doc.docs.clone();
                }
            }
        }
        _ => {}
    }
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 of at most 32 bits, as section sizes are.
fn read_leb128(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::describe;
    use crate::tools::testing::component;

    const DOCUMENTED: &str = r#"
        package airlock-examples:fetch@0.1.0;
        /// Plain HTTP.
        interface http {
            /// One header.
            record header {
                /// Header name, case-insensitive.
                name: string,
                value: string,
            }
            /// How to send the body.
            variant body {
                /// No body at all.
                empty,
                /// UTF-8 text.
                text(string),
            }
            /// Fetches `url` and returns the body.
            get: func(url: string, headers: list<header>, body: body) -> string;
        }
        world fetch {
            export http;
            /// Answers pong.
            export ping: func() -> string;
        }
    "#;

    fn documented_component() -> Vec<u8> {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("fetch.wit", DOCUMENTED).unwrap();
        let package = wit_component::encode(&resolve, pkg).unwrap();
        embed_docs(&component(DOCUMENTED), &package).unwrap()
    }

    #[test]
    fn embedded_docs_become_descriptions() {
        let tools = describe(&documented_component(), "fetch").unwrap();
        assert_eq!(tools[0].name, "fetch.ping");
        assert_eq!(tools[0].description, "Answers pong.");
        assert_eq!(tools[1].description, "Fetches `url` and returns the body.");

        let props = &tools[1].input_schema["properties"];
        let header = &props["headers"]["items"];
        assert_eq!(header["description"], json!("One header."));
        assert_eq!(
            header["properties"]["name"]["description"],
            json!("Header name, case-insensitive.")
        );
        assert_eq!(header["properties"]["value"].get("description"), None);
        assert_eq!(props["body"]["description"], json!("How to send the body."));
        assert_eq!(
            props["body"]["oneOf"][1]["description"],
            json!("UTF-8 text.")
        );
    }

    #[test]
    fn a_component_with_docs_still_validates_and_converts() {
        let tools = describe(&documented_component(), "fetch").unwrap();
        let vals = tools[1]
            .args_to_vals(&json!({"url": "https://x", "headers": [], "body": "empty"}))
            .unwrap();
        assert_eq!(vals.len(), 3);
    }

    #[test]
    fn embedding_twice_or_embedding_a_component_is_refused() {
        let embedded = documented_component();
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("fetch.wit", DOCUMENTED).unwrap();
        let package = wit_component::encode(&resolve, pkg).unwrap();
        let err = embed_docs(&embedded, &package).unwrap_err();
        assert!(err.to_string().contains("already has"), "{err}");

        let plain = component(DOCUMENTED);
        let err = embed_docs(&plain, &plain).unwrap_err();
        assert!(err.to_string().contains("found a component"), "{err}");
    }

    #[test]
    fn a_garbled_docs_section_is_a_load_error() {
        let plain = component(DOCUMENTED);
        let mut bytes = plain.clone();
        let mut contents = Vec::new();
        leb128(&mut contents, DOCS_SECTION.len());
        contents.extend_from_slice(DOCS_SECTION.as_bytes());
        contents.extend_from_slice(b"not a package");
        bytes.push(0);
        leb128(&mut bytes, contents.len());
        bytes.extend_from_slice(&contents);
        let err = describe(&bytes, "fetch").unwrap_err();
        assert!(matches!(err, ToolsError::Docs(_)), "{err}");
    }

    #[test]
    fn leb128_round_trips_section_sizes() {
        for value in [0, 1, 127, 128, 300, 16_384, u32::MAX as usize] {
            let mut bytes = Vec::new();
            leb128(&mut bytes, value);
            bytes.push(0xff);
            assert_eq!(read_leb128(&bytes), Some((value, &[0xff][..])));
        }
        assert_eq!(read_leb128(&[0x80, 0x80]), None);
    }
}
