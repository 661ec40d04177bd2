//! JSON arguments to component values and component values back to JSON,
//! following the mapping in the module docs and agreeing with `schema`.
//!
//! Types are checked by `check` when a tool is described, so conversion only
//! meets types with a JSON form; the others are refused as arguments rather
//! than trusted.

use serde_json::{Map, Number, Value};
use wasmtime::component::Val;
use wit_parser::{Resolve, Type, TypeDefKind};

use super::ArgError;
use super::check;

/// Longest quoted string echoed in an error, in characters.
const QUOTE_MAX: usize = 40;

/// Converts the arguments object `args` into values for `params`, in order.
pub(crate) fn args_to_vals(
    resolve: &Resolve,
    params: &[(String, Type)],
    args: &Value,
) -> Result<Vec<Val>, ArgError> {
    let root = Path::Root;
    let Value::Object(args) = args else {
        return Err(root.error("object of arguments", args));
    };
    let known = params.iter().map(|(name, _)| name.as_str());
    refuse_unknown_keys(&root, args, known, "parameters")?;

    let mut vals = Vec::with_capacity(params.len());
    for (name, ty) in params {
        let at = Path::Key(&root, name);
        vals.push(member(resolve, ty, args.get(name), &at, "parameter")?);
    }
    Ok(vals)
}

/// Converts a returned value to JSON. Floats that JSON cannot hold (NaN,
/// infinities) become `null`.
pub(crate) fn val_to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => (*n).into(),
        Val::U8(n) => (*n).into(),
        Val::S16(n) => (*n).into(),
        Val::U16(n) => (*n).into(),
        Val::S32(n) => (*n).into(),
        Val::U32(n) => (*n).into(),
        Val::S64(n) => (*n).into(),
        Val::U64(n) => (*n).into(),
        // Through the shortest decimal form, so 0.1f32 stays 0.1.
        Val::Float32(f) => float(f.to_string().parse().unwrap_or(f64::NAN)),
        Val::Float64(f) => float(*f),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(val_to_json).collect())
        }
        Val::Map(pairs) => Value::Array(
            pairs
                .iter()
                .map(|(k, v)| Value::Array(vec![val_to_json(k), val_to_json(v)]))
                .collect(),
        ),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), val_to_json(v)))
                .collect(),
        ),
        Val::Variant(case, None) | Val::Enum(case) => Value::String(case.clone()),
        Val::Variant(case, Some(payload)) => single_key(case, val_to_json(payload)),
        Val::Option(v) => v.as_deref().map_or(Value::Null, val_to_json),
        Val::Result(Ok(v)) => single_key("ok", v.as_deref().map_or(Value::Null, val_to_json)),
        Val::Result(Err(v)) => single_key("err", v.as_deref().map_or(Value::Null, val_to_json)),
        Val::Flags(names) => names.iter().map(|n| Value::String(n.clone())).collect(),
        // Refused when the tool is described; never returned.
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => Value::Null,
    }
}

/// Where a value sits in the arguments, rendered only for errors.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => match parent.render() {
                parent if parent.is_empty() => key.to_string(),
                parent => format!("{parent}.{key}"),
            },
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }

    fn error(&self, expected: impl Into<String>, got: &Value) -> ArgError {
        self.error_got(expected, describe(got))
    }

    fn error_got(&self, expected: impl Into<String>, got: String) -> ArgError {
        ArgError {
            path: self.render(),
            expected: expected.into(),
            got,
        }
    }
}

/// Converts a parameter or record field, which may be absent or `null` when
/// it is an `option`.
fn member(
    resolve: &Resolve,
    ty: &Type,
    value: Option<&Value>,
    at: &Path<'_>,
    what: &str,
) -> Result<Val, ArgError> {
    match value {
        Some(value) => to_val(resolve, ty, value, at),
        None if check::is_option(resolve, ty) => Ok(Val::Option(None)),
        None => Err(at.error_got(
            expectation(resolve, ty),
            format!("nothing (the {what} is missing)"),
        )),
    }
}

fn to_val(resolve: &Resolve, ty: &Type, value: &Value, at: &Path<'_>) -> Result<Val, ArgError> {
    let id = match ty {
        Type::Bool => {
            return value
                .as_bool()
                .map(Val::Bool)
                .ok_or_else(|| at.error("boolean", value));
        }
        Type::U8 => return int(value, at, u8::MIN, u8::MAX, Val::U8),
        Type::U16 => return int(value, at, u16::MIN, u16::MAX, Val::U16),
        Type::U32 => return int(value, at, u32::MIN, u32::MAX, Val::U32),
        Type::U64 => return int(value, at, u64::MIN, u64::MAX, Val::U64),
        Type::S8 => return int(value, at, i8::MIN, i8::MAX, Val::S8),
        Type::S16 => return int(value, at, i16::MIN, i16::MAX, Val::S16),
        Type::S32 => return int(value, at, i32::MIN, i32::MAX, Val::S32),
        Type::S64 => return int(value, at, i64::MIN, i64::MAX, Val::S64),
        Type::F32 => {
            let f = value.as_f64().ok_or_else(|| at.error("number", value))?;
            if f.abs() > f64::from(f32::MAX) {
                return Err(at.error("number within the range of f32", value));
            }
            return Ok(Val::Float32(f as f32));
        }
        Type::F64 => {
            return value
                .as_f64()
                .map(Val::Float64)
                .ok_or_else(|| at.error("number", value));
        }
        Type::Char => {
            let expected = "string of exactly one character";
            let s = value.as_str().ok_or_else(|| at.error(expected, value))?;
            let mut chars = s.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Val::Char(c)),
                _ => Err(at.error(expected, value)),
            };
        }
        Type::String => {
            return value
                .as_str()
                .map(|s| Val::String(s.to_string()))
                .ok_or_else(|| at.error("string", value));
        }
        Type::ErrorContext => return Err(at.error(unsupported(resolve, ty), value)),
        Type::Id(id) => *id,
    };

    match &resolve.types[id].kind {
        TypeDefKind::Type(t) => to_val(resolve, t, value, at),
        TypeDefKind::Record(record) => {
            let obj = value.as_object().ok_or_else(|| at.error("object", value))?;
            let known = record.fields.iter().map(|f| f.name.as_str());
            refuse_unknown_keys(at, obj, known, "fields")?;
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                let field_at = Path::Key(at, &field.name);
                let val = member(resolve, &field.ty, obj.get(&field.name), &field_at, "field")?;
                fields.push((field.name.clone(), val));
            }
            Ok(Val::Record(fields))
        }
        TypeDefKind::Variant(variant) => {
            let expected = || {
                let cases = variant.cases.iter().map(|c| match c.ty {
                    None => format!("{:?}", c.name),
                    Some(_) => format!("{{{:?}: …}}", c.name),
                });
                one_of(cases)
            };
            let (name, payload) = match value {
                Value::String(name) => (name, None),
                Value::Object(obj) if obj.len() == 1 => {
                    let (name, payload) = obj.iter().next().expect("one entry");
                    (name, Some(payload))
                }
                _ => return Err(at.error(expected(), value)),
            };
            let case = variant.cases.iter().find(|c| c.name == *name);
            match (case.map(|c| &c.ty), payload) {
                (Some(None), None) => Ok(Val::Variant(name.clone(), None)),
                (Some(Some(ty)), Some(payload)) => {
                    let payload = to_val(resolve, ty, payload, &Path::Key(at, name))?;
                    Ok(Val::Variant(name.clone(), Some(Box::new(payload))))
                }
                _ => Err(at.error(expected(), value)),
            }
        }
        TypeDefKind::Enum(e) => {
            let names = || one_of(e.cases.iter().map(|c| format!("{:?}", c.name)));
            let name = value.as_str().ok_or_else(|| at.error(names(), value))?;
            if e.cases.iter().any(|c| c.name == name) {
                Ok(Val::Enum(name.to_string()))
            } else {
                Err(at.error(names(), value))
            }
        }
        TypeDefKind::Flags(f) => {
            let expected = "array of distinct flags";
            let items = value.as_array().ok_or_else(|| at.error(expected, value))?;
            let mut set = vec![false; f.flags.len()];
            for (i, item) in items.iter().enumerate() {
                let item_at = Path::Index(at, i);
                let names = || one_of(f.flags.iter().map(|f| format!("{:?}", f.name)));
                let name = item.as_str().ok_or_else(|| item_at.error(names(), item))?;
                let index = f
                    .flags
                    .iter()
                    .position(|f| f.name == name)
                    .ok_or_else(|| item_at.error(names(), item))?;
                if std::mem::replace(&mut set[index], true) {
                    return Err(item_at.error("a flag not given before", item));
                }
            }
            let names = f.flags.iter().zip(set).filter(|(_, on)| *on);
            Ok(Val::Flags(names.map(|(f, _)| f.name.clone()).collect()))
        }
        TypeDefKind::Tuple(tuple) => {
            let n = tuple.types.len();
            let expected = format!("array of {n} items");
            let items = value.as_array().ok_or_else(|| at.error(&expected, value))?;
            if items.len() != n {
                return Err(at.error(expected, value));
            }
            let vals = tuple.types.iter().zip(items).enumerate();
            let vals = vals.map(|(i, (t, v))| to_val(resolve, t, v, &Path::Index(at, i)));
            Ok(Val::Tuple(vals.collect::<Result<_, _>>()?))
        }
        TypeDefKind::List(t) => Ok(Val::List(list(resolve, t, value, at, None)?)),
        TypeDefKind::FixedLengthList(t, n) => {
            let len = Some(*n as usize);
            Ok(Val::FixedLengthList(list(resolve, t, value, at, len)?))
        }
        TypeDefKind::Option(t) => match value {
            Value::Null => Ok(Val::Option(None)),
            value => Ok(Val::Option(Some(Box::new(to_val(resolve, t, value, at)?)))),
        },
        TypeDefKind::Result(r) => {
            let expected = r#"object {"ok": …} or {"err": …}"#;
            let (key, payload) = match value {
                Value::Object(obj) if obj.len() == 1 => obj.iter().next().expect("one entry"),
                _ => return Err(at.error(expected, value)),
            };
            let ty = match key.as_str() {
                "ok" => &r.ok,
                "err" => &r.err,
                _ => return Err(at.error(expected, value)),
            };
            let payload_at = Path::Key(at, key);
            let payload = match (ty, payload) {
                (None, Value::Null) => None,
                (None, other) => return Err(payload_at.error("null", other)),
                (Some(t), v) => Some(Box::new(to_val(resolve, t, v, &payload_at)?)),
            };
            Ok(Val::Result(if key == "ok" {
                Ok(payload)
            } else {
                Err(payload)
            }))
        }
        TypeDefKind::Handle(_)
        | TypeDefKind::Resource
        | TypeDefKind::Future(_)
        | TypeDefKind::Stream(_)
        | TypeDefKind::Map(..)
        | TypeDefKind::Unknown => Err(at.error(unsupported(resolve, ty), value)),
    }
}

fn list(
    resolve: &Resolve,
    ty: &Type,
    value: &Value,
    at: &Path<'_>,
    len: Option<usize>,
) -> Result<Vec<Val>, ArgError> {
    let expected = len.map_or("array".to_string(), |n| format!("array of {n} items"));
    let items = value.as_array().ok_or_else(|| at.error(&expected, value))?;
    if len.is_some_and(|n| n != items.len()) {
        return Err(at.error(expected, value));
    }
    let vals = items.iter().enumerate();
    vals.map(|(i, v)| to_val(resolve, ty, v, &Path::Index(at, i)))
        .collect()
}

/// An integer of a type whose range is `min..=max`. Whole numbers written
/// with a fraction are accepted below 2^53, where `f64` holds them exactly.
fn int<T>(value: &Value, at: &Path<'_>, min: T, max: T, make: fn(T) -> Val) -> Result<Val, ArgError>
where
    T: Copy + Into<i128> + TryFrom<i128> + std::fmt::Display,
{
    let expected = || format!("integer from {min} to {max}");
    let Value::Number(n) = value else {
        return Err(at.error(expected(), value));
    };
    let exact = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
    let whole = match (exact, n.as_f64()) {
        (Some(i), _) => i,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => f as i128,
        _ => return Err(at.error(expected(), value)),
    };
    if whole < min.into() || whole > max.into() {
        return Err(at.error(expected(), value));
    }
    T::try_from(whole)
        .map(make)
        .map_err(|_| at.error(expected(), value))
}

fn refuse_unknown_keys<'a>(
    at: &Path<'_>,
    obj: &Map<String, Value>,
    known: impl Iterator<Item = &'a str> + Clone,
    what: &str,
) -> Result<(), ArgError> {
    let Some(unknown) = obj.keys().find(|k| !known.clone().any(|n| n == k.as_str())) else {
        return Ok(());
    };
    let expected = match known.clone().next() {
        None => format!("no {what}"),
        Some(_) => format!("only the {what} {}", list_names(known)),
    };
    Err(at.error_got(expected, format!("unknown key {}", quote(unknown))))
}

fn list_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<_> = names.map(|n| format!("{n:?}")).collect();
    shorten_list(names)
}

/// `"a", "b" or {"c": …}`, shortened when long.
fn one_of(items: impl Iterator<Item = String>) -> String {
    format!("one of {}", shorten_list(items.collect()))
}

fn shorten_list(mut items: Vec<String>) -> String {
    const SHOWN: usize = 12;
    if items.len() > SHOWN {
        let more = items.len() - SHOWN;
        items.truncate(SHOWN);
        items.push(format!("{more} more"));
    }
    items.join(", ")
}

fn expectation(resolve: &Resolve, ty: &Type) -> String {
    let range = |min: i128, max: i128| format!("integer from {min} to {max}");
    match check::dealias(resolve, ty) {
        Type::Bool => "boolean".into(),
        Type::U8 => range(0, u8::MAX.into()),
        Type::U16 => range(0, u16::MAX.into()),
        Type::U32 => range(0, u32::MAX.into()),
        Type::U64 => range(0, u64::MAX.into()),
        Type::S8 => range(i8::MIN.into(), i8::MAX.into()),
        Type::S16 => range(i16::MIN.into(), i16::MAX.into()),
        Type::S32 => range(i32::MIN.into(), i32::MAX.into()),
        Type::S64 => range(i64::MIN.into(), i64::MAX.into()),
        Type::F32 | Type::F64 => "number".into(),
        Type::Char => "string of exactly one character".into(),
        Type::String => "string".into(),
        Type::Id(id) => match &resolve.types[id].kind {
            TypeDefKind::Record(_) | TypeDefKind::Result(_) => "object".into(),
            TypeDefKind::List(_) | TypeDefKind::FixedLengthList(..) => "array".into(),
            TypeDefKind::Tuple(_) | TypeDefKind::Flags(_) => "array".into(),
            TypeDefKind::Enum(_) => "string".into(),
            _ => format!("value of type {}", check::wit_name(resolve, ty)),
        },
        Type::ErrorContext => unsupported(resolve, ty),
    }
}

fn unsupported(resolve: &Resolve, ty: &Type) -> String {
    format!(
        "no value (type {} cannot be passed as JSON)",
        check::wit_name(resolve, ty)
    )
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn single_key(key: &str, value: Value) -> Value {
    let mut obj = Map::new();
    obj.insert(key.to_string(), value);
    Value::Object(obj)
}

/// What a JSON value is, for error messages: its type and a short form.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(items) => format!("array of {} items", items.len()),
        Value::Object(obj) => match obj.len() {
            1 => format!(
                "object with key {}",
                quote(obj.keys().next().expect("one key"))
            ),
            n => format!("object with {n} keys"),
        },
    }
}

/// `s` quoted, cut to [`QUOTE_MAX`] characters.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}…", &s[..end]),
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
