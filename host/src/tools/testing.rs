//! Test helpers: components and resolves built from WIT text.

use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{ManglingAndAbi, Resolve, Type, WorldItem};

use super::ToolDef;

/// Builds a component whose only world is in `wit`, with a dummy core module
/// behind it. Doc comments do not survive this path: the binary format has
/// no place for them.
pub(crate) fn component(wit: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("test.wit", wit).expect("test wit parses");
    let world = resolve.select_world(&[pkg], None).expect("one world");
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("metadata embeds");
    ComponentEncoder::default()
        .module(&module)
        .expect("module accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// A resolve with `types` and `f: func(p: <param>)` in interface `api`, and
/// the type of `p`.
pub(crate) fn resolve_of(types: &str, param: &str) -> (Resolve, Type) {
    let wit = format!("package test:t@0.1.0; interface api {{ {types} f: func(p: {param}); }}");
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("test.wit", &wit).expect("test wit parses");
    let api = resolve.packages[pkg].interfaces["api"];
    let ty = resolve.interfaces[api].functions["f"].params[0].ty;
    (resolve, ty)
}

/// The tool for `f` in a component exporting `interface api { <types>
/// f: func<sig>; }`.
pub(crate) fn tool(types: &str, sig: &str) -> ToolDef {
    let wit = format!(
        "package test:t@0.1.0; interface api {{ {types} f: func{sig}; }} world w {{ export api; }}"
    );
    let mut tools = super::describe(&component(&wit), "t").expect("test component describes");
    assert_eq!(tools.len(), 1);
    tools.remove(0)
}

/// The exported interfaces of the only world in `wit`, parsed as text so
/// that doc comments are kept.
pub(crate) fn parsed(wit: &str) -> (Resolve, wit_parser::WorldId) {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("test.wit", wit).expect("test wit parses");
    let world = resolve.select_world(&[pkg], None).expect("one world");
    assert!(
        resolve.worlds[world]
            .exports
            .values()
            .any(|item| matches!(item, WorldItem::Interface { .. } | WorldItem::Function(_)))
    );
    (resolve, world)
}
