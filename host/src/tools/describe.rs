//! From component bytes to tool definitions: decoding, walking the exports,
//! naming the tools and refusing what cannot be called with JSON.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wit_component::DecodedWasm;
use wit_parser::{Function, FunctionKind, Resolve, WorldId, WorldItem, WorldKey};

use super::check::{self, Unsupported};
use super::{ToolDef, ToolsError, docs, schema};

/// Decodes `component` and describes each exported function as a tool.
pub(crate) fn describe(component: &[u8], prefix: &str) -> Result<Vec<ToolDef>, ToolsError> {
    check_preamble(component)?;
    // Walking the sections first also gives a direct answer for a file
    // that was cut short.
    let docs_section = docs::find_section(component)?;
    let decoded =
        wit_component::decode(component).map_err(|e| ToolsError::Decode(format!("{e:#}")))?;
    let (mut resolve, world) = match decoded {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => return Err(ToolsError::NotAComponent),
    };

    if let Some(section) = docs_section {
        let (documented, package) = docs::decode_package(section)?;
        docs::inject(&mut resolve, world, (&documented, package));
    }
    describe_world(resolve, world, prefix)
}

/// Describes the exports of `world` as tools named under `prefix`.
pub(crate) fn describe_world(
    resolve: Resolve,
    world: WorldId,
    prefix: &str,
) -> Result<Vec<ToolDef>, ToolsError> {
    let resolve = Arc::new(resolve);
    let exports = exported_functions(&resolve, world);
    if exports.is_empty() {
        return Err(ToolsError::NoExports);
    }

    let names = tool_names(&exports, prefix)?;
    exports
        .iter()
        .zip(names)
        .map(|(export, name)| tool_def(&resolve, export, name))
        .collect()
}

/// An exported function and the interface it is exported in, if any.
struct Export<'a> {
    /// Full name (`ns:pkg/iface@1.0.0`) and short name (`iface`).
    interface: Option<(String, String)>,
    func: &'a Function,
}

fn exported_functions(resolve: &Resolve, world: WorldId) -> Vec<Export<'_>> {
    let mut exports = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        match item {
            WorldItem::Function(func) => exports.push(Export {
                interface: None,
                func,
            }),
            WorldItem::Interface { id, .. } => {
                let iface = &resolve.interfaces[*id];
                let short = match key {
                    WorldKey::Name(name) => name.clone(),
                    WorldKey::Interface(_) => iface.name.clone().unwrap_or_default(),
                };
                let full = resolve.name_world_key(key);
                exports.extend(iface.functions.values().map(|func| Export {
                    interface: Some((full.clone(), short.clone())),
                    func,
                }));
            }
            WorldItem::Type { .. } => {}
        }
    }
    exports
}

/// `{prefix}.{function}`, qualified by the interface's short name for
/// function names that several exports share.
fn tool_names(exports: &[Export<'_>], prefix: &str) -> Result<Vec<String>, ToolsError> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for export in exports {
        *count.entry(export.func.name.as_str()).or_default() += 1;
    }

    let mut seen = HashSet::new();
    let mut names = Vec::with_capacity(exports.len());
    for export in exports {
        let func = export.func.name.as_str();
        let mut parts = vec![prefix];
        if let Some((_, short)) = &export.interface
            && count[func] > 1
        {
            parts.push(short);
        }
        parts.push(func);
        parts.retain(|part| !part.is_empty());
        let name = parts.join(".");
        if !seen.insert(name.clone()) {
            return Err(ToolsError::DuplicateName(name));
        }
        names.push(name);
    }
    Ok(names)
}

fn tool_def(
    resolve: &Arc<Resolve>,
    export: &Export<'_>,
    name: String,
) -> Result<ToolDef, ToolsError> {
    let func = export.func;
    let unsupported = |Unsupported { location, ty }| ToolsError::UnsupportedType {
        tool: name.clone(),
        location,
        ty,
    };

    // Resource functions take or make handles; async ones need the async ABI.
    let kind = match func.kind {
        FunctionKind::Freestanding => None,
        FunctionKind::AsyncFreestanding => Some("async func"),
        _ => Some("resource function"),
    };
    if let Some(kind) = kind {
        return Err(unsupported(Unsupported {
            location: "function".into(),
            ty: kind.into(),
        }));
    }

    for param in &func.params {
        let location = format!("parameter {:?}", param.name);
        check::check(resolve, &param.ty, &location).map_err(unsupported)?;
    }
    if let Some(result) = &func.result {
        check::check(resolve, result, "result").map_err(unsupported)?;
    }

    let params: Vec<_> = func.params.iter().map(|p| (p.name.clone(), p.ty)).collect();
    Ok(ToolDef {
        interface: export.interface.as_ref().map(|(full, _)| full.clone()),
        function: func.name.clone(),
        description: func
            .docs
            .contents
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_string(),
        input_schema: schema::input(resolve, &params),
        output_schema: func
            .result
            .and_then(|ty| schema::output(resolve, &ty))
            .filter(schema::is_object),
        resolve: Arc::clone(resolve),
        params,
        result: func.result,
        name,
    })
}

/// Tells a core module from a component before the decoder gives a less
/// direct answer.
fn check_preamble(bytes: &[u8]) -> Result<(), ToolsError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ToolsError::Decode(
            "not a WebAssembly binary: the \\0asm preamble is missing".into(),
        ));
    }
    // Bytes 6 and 7 are the layer: 0 for a core module, 1 for a component.
    if bytes[6..8] == [0, 0] {
        return Err(ToolsError::NotAComponent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::describe as public_describe;
    use crate::tools::testing::{component, parsed};

    const FETCH: &str = r#"
        package airlock-examples:fetch@0.1.0;
        interface http {
            record header { name: string, value: string }
            get: func(url: string, headers: list<header>) -> result<string, string>;
            head: func(url: string) -> u16;
        }
        interface mirror {
            get: func(key: string) -> option<string>;
        }
        world fetch {
            export http;
            export mirror;
            export ping: func() -> string;
        }
    "#;

    #[test]
    fn every_export_becomes_a_tool_with_its_export_path() {
        let tools = public_describe(&component(FETCH), "fetch").unwrap();
        let got: Vec<_> = tools
            .iter()
            .map(|t| (t.name.as_str(), t.interface.as_deref(), t.function.as_str()))
            .collect();
        // In the order the component lists its exports.
        assert_eq!(
            got,
            [
                ("fetch.ping", None, "ping"),
                (
                    "fetch.http.get",
                    Some("airlock-examples:fetch/http@0.1.0"),
                    "get"
                ),
                (
                    "fetch.head",
                    Some("airlock-examples:fetch/http@0.1.0"),
                    "head"
                ),
                (
                    "fetch.mirror.get",
                    Some("airlock-examples:fetch/mirror@0.1.0"),
                    "get"
                ),
            ]
        );
    }

    #[test]
    fn result_count_and_output_schema_follow_the_result() {
        let tools = public_describe(&component(FETCH), "fetch").unwrap();
        assert_eq!(tools[1].name, "fetch.http.get");
        assert_eq!(tools[1].result_count(), 1);
        // `string`, `u16` and `option<string>` are not objects.
        assert!(tools.iter().all(|t| t.output_schema.is_none()));

        let wit = "package t:t; world w { record r { a: u8 } export f: func() -> result<r>; export g: func(); }";
        let tools = public_describe(&component(wit), "").unwrap();
        assert_eq!(tools[0].name, "f");
        assert_eq!(
            tools[0].output_schema.as_ref().unwrap()["required"],
            json!(["a"])
        );
        assert_eq!(tools[1].result_count(), 0);
        assert_eq!(tools[1].output_schema, None);
    }

    #[test]
    fn components_built_from_wit_keep_no_docs_and_describe_anyway() {
        let wit =
            "package t:t; interface api { /// Gets it.\n f: func(); } world w { export api; }";
        let tools = public_describe(&component(wit), "t").unwrap();
        assert_eq!(tools[0].description, "");
    }

    #[test]
    fn the_resolve_walker_takes_descriptions_from_function_docs() {
        let (resolve, world) = parsed(
            "package t:t; interface api {\n/// Gets a page.\n///\n/// Follows nothing.\nf: func(); } world w { export api; }",
        );
        let tools = describe_world(resolve, world, "t").unwrap();
        assert_eq!(tools[0].description, "Gets a page.\n\nFollows nothing.");
    }

    #[test]
    fn unsupported_types_name_the_tool_and_the_location() {
        let wit = "package t:t; interface api { resource blob; record req { url: string, body: own<blob> }
            get: func(h: req); } world w { export api; }";
        let err = public_describe(&component(wit), "fetch").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"tool "fetch.get": parameter "h", field "body": type own<blob> cannot be passed as JSON"#
        );

        let wit = "package t:t; world w { export f: func() -> list<option<option<u8>>>; }";
        let err = public_describe(&component(wit), "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"tool "t.f": result, list item: type option<option<u8>> cannot be passed as JSON"#
        );
    }

    #[test]
    fn resource_functions_are_refused() {
        let wit =
            "package t:t; interface api { resource r { constructor(); } } world w { export api; }";
        let err = public_describe(&component(wit), "t").unwrap_err();
        assert!(
            matches!(&err, ToolsError::UnsupportedType { location, ty, .. }
                if location == "function" && ty == "resource function"),
            "{err}"
        );
    }

    #[test]
    fn a_component_without_functions_is_refused() {
        let wit = "package t:t; interface api { type x = u8; } world w { export api; }";
        let err = public_describe(&component(wit), "t").unwrap_err();
        assert!(matches!(err, ToolsError::NoExports), "{err}");
    }

    #[test]
    fn the_same_short_name_twice_is_a_duplicate() {
        let wit = "package t:t; interface api { f: func(); } world w { export api; export x: interface { f: func(); } }";
        let tools = public_describe(&component(wit), "t").unwrap();
        assert_eq!(tools[1].name, "t.x.f");
        assert_eq!(tools[1].interface.as_deref(), Some("x"));

        let wit = "package t:t;
            package a:b { interface api { f: func(); } }
            package c:d { interface api { f: func(); } }
            world w { export a:b/api; export c:d/api; }";
        let err = public_describe(&component(wit), "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"two exported functions would both be named "t.api.f""#
        );
    }

    #[test]
    fn core_modules_packages_and_garbage_are_told_apart() {
        let core = b"\0asm\x01\0\0\0".to_vec();
        assert!(matches!(
            public_describe(&core, "t"),
            Err(ToolsError::NotAComponent)
        ));

        let mut resolve = Resolve::default();
        let pkg = resolve
            .push_str("t.wit", "package t:t; interface api { f: func(); }")
            .unwrap();
        let package = wit_component::encode(&resolve, pkg).unwrap();
        assert!(matches!(
            public_describe(&package, "t"),
            Err(ToolsError::NotAComponent)
        ));

        let err = public_describe(b"hello world", "t").unwrap_err();
        assert!(err.to_string().contains("preamble is missing"), "{err}");

        // Cut inside the last section, which is never empty.
        let mut truncated = component(FETCH);
        truncated.pop();
        let err = public_describe(&truncated, "t").unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");

        // Cut between sections, the rest is a valid component with fewer
        // exports; cut inside a nested module, it is not.
        let whole = component(FETCH);
        for cut in (9..whole.len()).step_by(97) {
            if let Ok(tools) = public_describe(&whole[..cut], "t") {
                assert!(tools.len() < 4, "cut at {cut}");
            }
        }
    }
}
