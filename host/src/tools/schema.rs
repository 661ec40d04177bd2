//! JSON Schemas (draft 2020-12) of WIT types, following the mapping in the
//! module docs. Types are checked by `check` first, so every type reaching
//! here has a JSON form.

use serde_json::{Map, Value, json};
use wit_parser::{Docs, Resolve, Type, TypeDefKind};

use super::check;

/// Which way values flow: arguments in, results out. They differ only in
/// that a float can come out as `null` (NaN and infinities).
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Input,
    Output,
}

/// Schema of the arguments object of a function with `params`.
pub(crate) fn input(resolve: &Resolve, params: &[(String, Type)]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, ty) in params {
        properties.insert(name.clone(), schema(resolve, ty, Direction::Input));
        if !check::is_option(resolve, ty) {
            required.push(Value::String(name.clone()));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Schema of what a function returning `ty` outputs: the `ok` type of a
/// top-level `result`, `None` when that has no payload.
pub(crate) fn output(resolve: &Resolve, ty: &Type) -> Option<Value> {
    let shown = match check::dealias(resolve, ty) {
        Type::Id(id) => match &resolve.types[id].kind {
            TypeDefKind::Result(r) => r.ok?,
            _ => *ty,
        },
        _ => *ty,
    };
    Some(schema(resolve, &shown, Direction::Output))
}

/// Whether `schema` only admits JSON objects.
pub(crate) fn is_object(schema: &Value) -> bool {
    schema.get("type") == Some(&json!("object"))
}

fn schema(resolve: &Resolve, ty: &Type, dir: Direction) -> Value {
    let id = match ty {
        Type::Bool => return json!({"type": "boolean"}),
        Type::U8 => return integer(u8::MIN, u8::MAX),
        Type::U16 => return integer(u16::MIN, u16::MAX),
        Type::U32 => return integer(u32::MIN, u32::MAX),
        Type::U64 => return integer(u64::MIN, u64::MAX),
        Type::S8 => return integer(i8::MIN, i8::MAX),
        Type::S16 => return integer(i16::MIN, i16::MAX),
        Type::S32 => return integer(i32::MIN, i32::MAX),
        Type::S64 => return integer(i64::MIN, i64::MAX),
        Type::F32 if dir == Direction::Input => {
            return json!({"type": "number", "minimum": f32::MIN, "maximum": f32::MAX});
        }
        Type::F64 if dir == Direction::Input => return json!({"type": "number"}),
        Type::F32 | Type::F64 => return json!({"type": ["number", "null"]}),
        Type::Char => return json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => return json!({"type": "string"}),
        // Refused by `check`; a schema nothing matches keeps this total.
        Type::ErrorContext => return json!({"not": {}}),
        Type::Id(id) => *id,
    };

    let def = &resolve.types[id];
    let mut out = match &def.kind {
        TypeDefKind::Type(t) => schema(resolve, t, dir),
        TypeDefKind::Record(record) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for field in &record.fields {
                let mut field_schema = schema(resolve, &field.ty, dir);
                // A field's own docs say more than those of its type.
                if let Some(docs) = text(&field.docs) {
                    field_schema["description"] = docs;
                }
                properties.insert(field.name.clone(), field_schema);
                if !check::is_option(resolve, &field.ty) {
                    required.push(Value::String(field.name.clone()));
                }
            }
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        }
        TypeDefKind::Variant(variant) => {
            let cases = variant.cases.iter().map(|case| {
                let payload = case.ty.as_ref().map(|t| schema(resolve, t, dir));
                let mut alternative = match payload {
                    None => json!({"type": "string", "const": case.name}),
                    Some(payload) => single_key(&case.name, payload),
                };
                if let Some(docs) = text(&case.docs) {
                    alternative["description"] = docs;
                }
                alternative
            });
            let cases: Vec<_> = cases.collect();
            let mut out = json!({ "oneOf": cases });
            if variant.cases.iter().all(|c| c.ty.is_some()) {
                out["type"] = json!("object");
            } else if variant.cases.iter().all(|c| c.ty.is_none()) {
                out["type"] = json!("string");
            }
            out
        }
        TypeDefKind::Enum(e) => {
            let names: Vec<_> = e.cases.iter().map(|c| c.name.as_str()).collect();
            json!({"type": "string", "enum": names})
        }
        TypeDefKind::Flags(f) => {
            let names: Vec<_> = f.flags.iter().map(|f| f.name.as_str()).collect();
            json!({
                "type": "array",
                "items": {"type": "string", "enum": names},
                "uniqueItems": true,
            })
        }
        TypeDefKind::Tuple(tuple) => {
            let items: Vec<_> = tuple
                .types
                .iter()
                .map(|t| schema(resolve, t, dir))
                .collect();
            json!({
                "type": "array",
                "prefixItems": items,
                "items": false,
                "minItems": tuple.types.len(),
                "maxItems": tuple.types.len(),
            })
        }
        TypeDefKind::List(t) => json!({"type": "array", "items": schema(resolve, t, dir)}),
        TypeDefKind::FixedLengthList(t, n) => json!({
            "type": "array",
            "items": schema(resolve, t, dir),
            "minItems": n,
            "maxItems": n,
        }),
        TypeDefKind::Option(t) => json!({"anyOf": [schema(resolve, t, dir), {"type": "null"}]}),
        TypeDefKind::Result(r) => {
            let payload = |t: &Option<Type>| {
                t.as_ref()
                    .map_or(json!({"type": "null"}), |t| schema(resolve, t, dir))
            };
            json!({
                "type": "object",
                "oneOf": [single_key("ok", payload(&r.ok)), single_key("err", payload(&r.err))],
            })
        }
        // Refused by `check`; a schema nothing matches keeps this total.
        TypeDefKind::Handle(_)
        | TypeDefKind::Resource
        | TypeDefKind::Future(_)
        | TypeDefKind::Stream(_)
        | TypeDefKind::Map(..)
        | TypeDefKind::Unknown => json!({"not": {}}),
    };

    // A named type's docs describe it wherever it is used.
    if let Some(docs) = text(&def.docs)
        && out.get("description").is_none()
    {
        out["description"] = docs;
    }
    out
}

fn integer(min: impl Into<Value>, max: impl Into<Value>) -> Value {
    json!({"type": "integer", "minimum": min.into(), "maximum": max.into()})
}

/// `{"<key>": payload}` and nothing else.
fn single_key(key: &str, payload: Value) -> Value {
    json!({
        "type": "object",
        "properties": { key: payload },
        "required": [key],
        "additionalProperties": false,
    })
}

fn text(docs: &Docs) -> Option<Value> {
    let text = docs.contents.as_deref()?.trim();
    (!text.is_empty()).then(|| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::testing::{resolve_of, tool};

    fn input_of(types: &str, param: &str) -> Value {
        let (resolve, ty) = resolve_of(types, param);
        schema(&resolve, &ty, Direction::Input)
    }

    #[test]
    fn scalars_have_exact_schemas() {
        for (param, expected) in [
            ("bool", json!({"type": "boolean"})),
            (
                "u8",
                json!({"type": "integer", "minimum": 0, "maximum": 255}),
            ),
            (
                "s8",
                json!({"type": "integer", "minimum": -128, "maximum": 127}),
            ),
            (
                "u16",
                json!({"type": "integer", "minimum": 0, "maximum": 65535}),
            ),
            (
                "s16",
                json!({"type": "integer", "minimum": -32768, "maximum": 32767}),
            ),
            (
                "u32",
                json!({"type": "integer", "minimum": 0, "maximum": 4294967295u32}),
            ),
            (
                "s32",
                json!({"type": "integer", "minimum": -2147483648, "maximum": 2147483647}),
            ),
            (
                "u64",
                json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
            ),
            (
                "s64",
                json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
            ),
            (
                "f32",
                json!({"type": "number", "minimum": f32::MIN, "maximum": f32::MAX}),
            ),
            ("f64", json!({"type": "number"})),
            (
                "char",
                json!({"type": "string", "minLength": 1, "maxLength": 1}),
            ),
            ("string", json!({"type": "string"})),
        ] {
            assert_eq!(input_of("", param), expected, "{param}");
        }
    }

    #[test]
    fn lists_tuples_and_options_have_exact_schemas() {
        assert_eq!(
            input_of("", "list<u8>"),
            json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}})
        );
        assert_eq!(
            input_of("", "list<bool, 3>"),
            json!({"type": "array", "items": {"type": "boolean"}, "minItems": 3, "maxItems": 3})
        );
        assert_eq!(
            input_of("", "tuple<string, bool>"),
            json!({
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "boolean"}],
                "items": false, "minItems": 2, "maxItems": 2,
            })
        );
        assert_eq!(
            input_of("", "option<string>"),
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
        );
    }

    #[test]
    fn records_require_all_but_option_fields() {
        assert_eq!(
            input_of("record r { a: string, b: option<bool> }", "r"),
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "b": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
                },
                "required": ["a"],
                "additionalProperties": false,
            })
        );
    }

    #[test]
    fn variants_enums_and_flags_have_exact_schemas() {
        assert_eq!(
            input_of("variant v { none, one(u8) }", "v"),
            json!({"oneOf": [
                {"type": "string", "const": "none"},
                {
                    "type": "object",
                    "properties": {"one": {"type": "integer", "minimum": 0, "maximum": 255}},
                    "required": ["one"],
                    "additionalProperties": false,
                },
            ]})
        );
        assert_eq!(
            input_of("variant v { a(u8), b(u8) }", "v")["type"],
            json!("object")
        );
        assert_eq!(input_of("variant v { a, b }", "v")["type"], json!("string"));
        assert_eq!(
            input_of("enum e { red, green }", "e"),
            json!({"type": "string", "enum": ["red", "green"]})
        );
        assert_eq!(
            input_of("flags fl { read, write }", "fl"),
            json!({
                "type": "array",
                "items": {"type": "string", "enum": ["read", "write"]},
                "uniqueItems": true,
            })
        );
    }

    #[test]
    fn nested_results_are_ok_or_err_objects() {
        let only_ok = |payload: Value| json!({"type": "object", "properties": {"ok": payload}, "required": ["ok"], "additionalProperties": false});
        let only_err = |payload: Value| json!({"type": "object", "properties": {"err": payload}, "required": ["err"], "additionalProperties": false});
        assert_eq!(
            input_of("", "result<string, bool>"),
            json!({"type": "object", "oneOf": [
                only_ok(json!({"type": "string"})),
                only_err(json!({"type": "boolean"})),
            ]})
        );
        assert_eq!(
            input_of("", "result"),
            json!({"type": "object", "oneOf": [
                only_ok(json!({"type": "null"})),
                only_err(json!({"type": "null"})),
            ]})
        );
    }

    #[test]
    fn aliases_are_followed() {
        assert_eq!(
            input_of("type id = u8; type key = id;", "key"),
            input_of("", "u8")
        );
    }

    #[test]
    fn input_schema_lists_parameters_and_requires_non_options() {
        let t = tool("", "(url: string, limit: option<u32>)");
        assert_eq!(
            t.input_schema,
            json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "limit": {"anyOf": [
                        {"type": "integer", "minimum": 0, "maximum": 4294967295u32},
                        {"type": "null"},
                    ]},
                },
                "required": ["url"],
                "additionalProperties": false,
            })
        );
    }

    #[test]
    fn output_schema_is_the_ok_type_and_only_objects_are_exposed() {
        let record = "record page { status: u16, body: f64 }";
        let t = tool(record, "() -> result<page, string>");
        let schema = t.output_schema.unwrap();
        assert_eq!(schema["required"], json!(["status", "body"]));
        // Floats can come out as null (NaN, infinities).
        assert_eq!(
            schema["properties"]["body"],
            json!({"type": ["number", "null"]})
        );

        assert_eq!(tool(record, "() -> page").output_schema.unwrap(), schema);
        assert_eq!(tool(record, "() -> result<_, page>").output_schema, None);
        assert_eq!(tool(record, "() -> list<page>").output_schema, None);
        assert_eq!(tool(record, "() -> string").output_schema, None);
        assert!(
            tool(record, "() -> result<result<u8, page>>")
                .output_schema
                .is_some()
        );
    }
}
