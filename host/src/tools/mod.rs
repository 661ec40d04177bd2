//! Tools: what a component exports, described for an agent and called with
//! JSON.
//!
//! Every function a component exports is a tool. [`describe`] decodes the
//! component's WIT, names each function, takes its doc comment as the
//! description and derives JSON Schemas for its parameters and result.
//! [`ToolDef::args_to_vals`] turns the JSON arguments of a call into
//! [`Val`]s, refusing anything the input schema would refuse, before any guest
//! code runs; [`ToolDef::output`] turns the returned values back into JSON.
//! The module does no I/O: it receives component bytes and returns values.
//!
//! # JSON mapping
//!
//! The schemas and the conversions follow one table, in both directions:
//!
//! | WIT | JSON | schema |
//! |---|---|---|
//! | `bool` | boolean | `{"type": "boolean"}` |
//! | `s8` … `s64`, `u8` … `u64` | integer | `integer` with the type's `minimum` and `maximum` |
//! | `f32`, `f64` | number | `number` (`f32` bounded by its finite range) |
//! | `char` | string of one Unicode scalar | `string`, `minLength` and `maxLength` 1 |
//! | `string` | string | `string` |
//! | `list<T>`, `list<u8>` too | array | `array` with `items` |
//! | `list<T, N>` | array of exactly `N` items | `array` with `minItems` = `maxItems` = `N` |
//! | `tuple<..>` | array of fixed length | `array` with `prefixItems`, `items: false` |
//! | `record` | object | `object`, every field `required` except `option` fields, `additionalProperties: false` |
//! | `variant` | case name, or `{"case": payload}` | `oneOf` one alternative per case |
//! | `enum` | case name | `string` with `enum` |
//! | `flags` | array of distinct flag names | `array` of `enum` strings, `uniqueItems` |
//! | `option<T>` | `T` or `null` | `anyOf` of `T` and `null` |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` (`null` when absent) | `oneOf` of both objects |
//!
//! Integers are refused when out of range or not whole (`1.5`); a whole number
//! written with a fraction (`5.0`) is accepted below 2^53, beyond which only
//! exact integer literals are. `f32` values beyond its finite range are
//! refused. On output a NaN or infinite float becomes `null`, and output
//! schemas allow `null` for floats accordingly.
//!
//! Arguments are a JSON object keyed by parameter name. Unknown keys are
//! refused, and so are missing ones except for `option` parameters and
//! fields, which may be omitted or `null`. A variant case without payload is
//! written as its bare name, never as `{"case": null}`.
//!
//! A top-level `result<T, E>` is how a tool reports failure: `ok(t)` is the
//! output `t`, `err(e)` is a [`ToolOutput::ToolError`] carrying `e`, and the
//! output schema is that of `T`.
//!
//! Types with no JSON form are refused when the component is described, not
//! when it is called: resources (`own`, `borrow`), `future`, `stream`,
//! `error-context`, `map` (off by default in wasmtime) and `option<option<T>>`
//! (whose `none` and `some(none)` would both be `null`). So are async
//! functions and resource functions.
//!
//! # Descriptions
//!
//! The component binary format has no place for doc comments, and components
//! built with wit-bindgen and wasm-component-ld carry none. A tool's build can
//! put its documented WIT package into the component with [`embed_docs`];
//! [`describe`] then takes descriptions from it, matched by package,
//! interface, function, type, field and case names. Without it descriptions
//! are empty.

mod check;
mod convert;
mod describe;
mod docs;
mod schema;
#[cfg(test)]
mod testing;

use std::sync::Arc;

use serde_json::Value;
use wasmtime::component::Val;
use wit_parser::{Resolve, Type};

pub use docs::{DOCS_SECTION, embed_docs};

/// One exported function of a component, described as a tool.
#[derive(Clone, Debug)]
pub struct ToolDef {
    /// The tool's name: `{prefix}.{function}`, or
    /// `{prefix}.{interface}.{function}` when several exported interfaces
    /// have a function of that name.
    pub name: String,
    /// Full name of the exported interface the function belongs to, as the
    /// runtime looks it up (`airlock-examples:fetch/http@0.1.0`); `None` for a
    /// function exported directly by the world.
    pub interface: Option<String>,
    /// The function's name in WIT, kebab-case.
    pub function: String,
    /// The function's doc comment, or empty when the component carries none.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: Value,
    /// JSON Schema of the output (for `result<T, E>`, that of `T`).
    ///
    /// MCP requires an output schema to describe an object, so this is
    /// `Some` only when the output is a JSON object (a record, a variant whose
    /// cases all carry payloads, a nested result); for any other output, and
    /// for functions without result, it is `None`.
    pub output_schema: Option<Value>,
    resolve: Arc<Resolve>,
    params: Vec<(String, Type)>,
    result: Option<Type>,
}

/// What a tool call returned, as JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolOutput {
    /// The tool succeeded: the `ok` payload of a top-level `result`, the
    /// value of any other result type, or `null` when there is none.
    Ok(Value),
    /// The tool returned `err(e)` from a top-level `result`; this is `e`.
    ToolError(Value),
}

/// Why a component cannot be turned into tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolsError {
    /// The bytes are not a valid WebAssembly component.
    #[error("component could not be decoded: {0}")]
    Decode(String),
    /// The bytes are a core module or a WIT package, not a component.
    #[error("not a component: a core module or a WIT package was given")]
    NotAComponent,
    /// The component exports no function at all.
    #[error("the component exports no functions, so it has no tools")]
    NoExports,
    /// A parameter or result has a type with no JSON form.
    #[error("tool {tool:?}: {location}: type {ty} cannot be passed as JSON")]
    UnsupportedType {
        /// Name of the tool.
        tool: String,
        /// Where in the signature, e.g. `parameter "h", field "body"`.
        location: String,
        /// The offending type, written as in WIT.
        ty: String,
    },
    /// Two exported functions would get the same tool name.
    #[error("two exported functions would both be named {0:?}")]
    DuplicateName(String),
    /// The documentation section or package could not be used.
    #[error("tool documentation: {0}")]
    Docs(String),
}

/// Why the JSON arguments of a call do not fit the tool's parameters.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{} expected {expected}, got {got}", where_(path))]
pub struct ArgError {
    /// Where the problem is: a parameter name, followed by `.field` and
    /// `[index]` steps (`headers[2].name`); empty for the arguments object.
    pub path: String,
    /// What the schema allows there.
    pub expected: String,
    /// What was given, with long strings truncated.
    pub got: String,
}

fn where_(path: &str) -> String {
    if path.is_empty() {
        "arguments:".to_string()
    } else {
        format!("argument {path:?}:")
    }
}

/// Describes every exported function of `component` as a tool named
/// `{prefix}.{function}`.
///
/// Descriptions come from the documentation section added by
/// [`embed_docs`] when there is one, and are empty otherwise.
pub fn describe(component: &[u8], prefix: &str) -> Result<Vec<ToolDef>, ToolsError> {
    describe::describe(component, prefix)
}

impl ToolDef {
    /// Converts the JSON arguments of a call into the function's parameters,
    /// in order.
    ///
    /// `args` must be an object keyed by parameter name; unknown keys and
    /// missing parameters are refused, except that `option` parameters may be
    /// omitted or `null`.
    pub fn args_to_vals(&self, args: &Value) -> Result<Vec<Val>, ArgError> {
        convert::args_to_vals(&self.resolve, &self.params, args)
    }

    /// Number of results the function returns: 0 or 1.
    pub fn result_count(&self) -> usize {
        usize::from(self.result.is_some())
    }

    /// Turns what the function returned into the tool's output.
    ///
    /// `results` holds [`Self::result_count`] values as the runtime received
    /// them; a top-level `err(e)` becomes [`ToolOutput::ToolError`].
    pub fn output(&self, results: &[Val]) -> ToolOutput {
        let Some(value) = results.first() else {
            return ToolOutput::Ok(Value::Null);
        };
        let top_level_result = self
            .result
            .is_some_and(|ty| check::is_result(&self.resolve, &ty));
        match value {
            Val::Result(Ok(ok)) if top_level_result => {
                ToolOutput::Ok(ok.as_deref().map_or(Value::Null, convert::val_to_json))
            }
            Val::Result(Err(err)) if top_level_result => {
                ToolOutput::ToolError(err.as_deref().map_or(Value::Null, convert::val_to_json))
            }
            other => ToolOutput::Ok(convert::val_to_json(other)),
        }
    }

    /// The function's parameters: names and WIT types.
    pub fn params(&self) -> impl ExactSizeIterator<Item = (&str, &Type)> {
        self.params.iter().map(|(name, ty)| (name.as_str(), ty))
    }

    /// The decoded WIT the parameter and result types refer to.
    pub fn resolve(&self) -> &Resolve {
        &self.resolve
    }
}
