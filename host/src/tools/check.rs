//! Which WIT types have a JSON form, checked once when a component is
//! described, so that schema generation and conversion can rely on it.

use wit_parser::{Handle, Resolve, Type, TypeDefKind};

/// Deepest nesting of types accepted in one parameter or result.
///
/// JSON arguments nest at most 128 levels when parsed, so deeper types could
/// never be filled; the limit also bounds the recursion of every walk below.
pub(crate) const MAX_DEPTH: usize = 64;

/// Most type nodes accepted in one parameter or result once expanded, which
/// bounds the size of its schema.
pub(crate) const MAX_NODES: usize = 10_000;

/// A type with no JSON form, and where it sits in the signature.
#[derive(Debug, PartialEq)]
pub(crate) struct Unsupported {
    pub(crate) location: String,
    pub(crate) ty: String,
}

/// Checks that `ty`, found at `location` (such as `parameter "h"`), and
/// everything inside it has a JSON form.
pub(crate) fn check(resolve: &Resolve, ty: &Type, location: &str) -> Result<(), Unsupported> {
    let mut walk = Walk {
        resolve,
        path: vec![location.to_string()],
        nodes: 0,
    };
    walk.ty(ty)
}

/// Follows `type a = b` aliases down to the type that has a shape.
pub(crate) fn dealias(resolve: &Resolve, ty: &Type) -> Type {
    let mut ty = *ty;
    // Aliases cannot form cycles in a valid Resolve; the bound is a guard.
    for _ in 0..MAX_DEPTH {
        match ty {
            Type::Id(id) => match &resolve.types[id].kind {
                TypeDefKind::Type(inner) => ty = *inner,
                _ => break,
            },
            _ => break,
        }
    }
    ty
}

/// Whether `ty` is a `result`, looking through aliases.
pub(crate) fn is_result(resolve: &Resolve, ty: &Type) -> bool {
    match dealias(resolve, ty) {
        Type::Id(id) => matches!(resolve.types[id].kind, TypeDefKind::Result(_)),
        _ => false,
    }
}

/// Whether `ty` is an `option`, looking through aliases.
pub(crate) fn is_option(resolve: &Resolve, ty: &Type) -> bool {
    match dealias(resolve, ty) {
        Type::Id(id) => matches!(resolve.types[id].kind, TypeDefKind::Option(_)),
        _ => false,
    }
}

/// Writes `ty` as it would appear in WIT: named types by name, anonymous
/// ones by structure.
pub(crate) fn wit_name(resolve: &Resolve, ty: &Type) -> String {
    wit_name_at(resolve, ty, 0)
}

fn wit_name_at(resolve: &Resolve, ty: &Type, depth: usize) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => return "error-context".into(),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    if depth >= MAX_DEPTH {
        return "…".into();
    }
    let name = |t: &Type| wit_name_at(resolve, t, depth + 1);
    let opt = |t: &Option<Type>| t.as_ref().map(name);
    let resource = |r: &wit_parser::TypeId| {
        resolve.types[*r]
            .name
            .clone()
            .unwrap_or_else(|| "resource".into())
    };
    match &def.kind {
        TypeDefKind::Handle(Handle::Own(r)) => format!("own<{}>", resource(r)),
        TypeDefKind::Handle(Handle::Borrow(r)) => format!("borrow<{}>", resource(r)),
        TypeDefKind::List(t) => format!("list<{}>", name(t)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", name(t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", name(k), name(v)),
        TypeDefKind::Option(t) => format!("option<{}>", name(t)),
        TypeDefKind::Tuple(t) => {
            let items: Vec<_> = t.types.iter().map(name).collect();
            format!("tuple<{}>", items.join(", "))
        }
        TypeDefKind::Result(r) => match (opt(&r.ok), opt(&r.err)) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{ok}>"),
            (None, Some(err)) => format!("result<_, {err}>"),
            (Some(ok), Some(err)) => format!("result<{ok}, {err}>"),
        },
        TypeDefKind::Future(t) => opt(t).map_or("future".into(), |t| format!("future<{t}>")),
        TypeDefKind::Stream(t) => opt(t).map_or("stream".into(), |t| format!("stream<{t}>")),
        TypeDefKind::Type(t) => name(t),
        TypeDefKind::Record(_) => "record".into(),
        TypeDefKind::Variant(_) => "variant".into(),
        TypeDefKind::Enum(_) => "enum".into(),
        TypeDefKind::Flags(_) => "flags".into(),
        TypeDefKind::Resource => "resource".into(),
        TypeDefKind::Unknown => "unknown".into(),
    }
}

struct Walk<'a> {
    resolve: &'a Resolve,
    path: Vec<String>,
    nodes: usize,
}

impl Walk<'_> {
    fn ty(&mut self, ty: &Type) -> Result<(), Unsupported> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.fail(format!(
                "{} (more than {MAX_NODES} nested types)",
                self.name(ty)
            )));
        }
        if self.path.len() > MAX_DEPTH {
            return Err(self.fail(format!(
                "{} (nested more than {MAX_DEPTH} deep)",
                self.name(ty)
            )));
        }
        let id = match ty {
            Type::ErrorContext => return Err(self.fail(self.name(ty))),
            Type::Id(id) => *id,
            _ => return Ok(()),
        };

        match &self.resolve.types[id].kind {
            TypeDefKind::Type(t) => self.ty(t),
            TypeDefKind::Record(r) => {
                for field in &r.fields {
                    self.within(format!("field {:?}", field.name), &field.ty)?;
                }
                Ok(())
            }
            TypeDefKind::Variant(v) => {
                for case in &v.cases {
                    if let Some(t) = &case.ty {
                        self.within(format!("case {:?}", case.name), t)?;
                    }
                }
                Ok(())
            }
            TypeDefKind::Tuple(t) => {
                for (i, item) in t.types.iter().enumerate() {
                    self.within(format!("tuple item {i}"), item)?;
                }
                Ok(())
            }
            TypeDefKind::List(t) | TypeDefKind::FixedLengthList(t, _) => {
                self.within("list item".into(), t)
            }
            // `none` and `some(none)` would both be `null`.
            TypeDefKind::Option(t) if is_option(self.resolve, t) => Err(self.fail(self.name(ty))),
            TypeDefKind::Option(t) => self.ty(t),
            TypeDefKind::Result(r) => {
                if let Some(t) = &r.ok {
                    self.within("ok".into(), t)?;
                }
                if let Some(t) = &r.err {
                    self.within("err".into(), t)?;
                }
                Ok(())
            }
            TypeDefKind::Enum(_) | TypeDefKind::Flags(_) => Ok(()),
            TypeDefKind::Handle(_)
            | TypeDefKind::Resource
            | TypeDefKind::Future(_)
            | TypeDefKind::Stream(_)
            | TypeDefKind::Map(..)
            | TypeDefKind::Unknown => Err(self.fail(self.name(ty))),
        }
    }

    fn within(&mut self, step: String, ty: &Type) -> Result<(), Unsupported> {
        self.path.push(step);
        let checked = self.ty(ty);
        self.path.pop();
        checked
    }

    fn name(&self, ty: &Type) -> String {
        wit_name(self.resolve, ty)
    }

    fn fail(&self, ty: String) -> Unsupported {
        Unsupported {
            location: self.path.join(", "),
            ty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::testing::resolve_of;

    fn check_param(types: &str, param: &str) -> Result<(), Unsupported> {
        let (resolve, ty) = resolve_of(types, param);
        check(&resolve, &ty, "parameter \"p\"")
    }

    #[test]
    fn resource_inside_a_record_is_located_by_field() {
        let err = check_param(
            "resource blob; record req { url: string, body: own<blob> }",
            "req",
        )
        .unwrap_err();
        assert_eq!(err.location, "parameter \"p\", field \"body\"");
        assert_eq!(err.ty, "own<blob>");
    }

    #[test]
    fn every_type_without_json_form_is_refused() {
        for (types, param, location, ty) in [
            ("resource r;", "borrow<r>", "parameter \"p\"", "borrow<r>"),
            ("", "future<u8>", "parameter \"p\"", "future<u8>"),
            ("", "stream", "parameter \"p\"", "stream"),
            ("", "error-context", "parameter \"p\"", "error-context"),
            (
                "",
                "list<option<option<u8>>>",
                "parameter \"p\", list item",
                "option<option<u8>>",
            ),
            (
                "type o = option<string>;",
                "option<o>",
                "parameter \"p\"",
                "option<o>",
            ),
            (
                "",
                "result<_, map<string, u8>>",
                "parameter \"p\", err",
                "map<string, u8>",
            ),
            (
                "variant v { a(tuple<u8, stream<u8>>) }",
                "v",
                "parameter \"p\", case \"a\", tuple item 1",
                "stream<u8>",
            ),
        ] {
            let err = check_param(types, param).unwrap_err();
            assert_eq!(
                (err.location.as_str(), err.ty.as_str()),
                (location, ty),
                "{param}"
            );
        }
    }

    #[test]
    fn every_type_with_json_form_is_accepted() {
        let types = "record r { a: option<u8>, b: list<tuple<s64, f32>> }
            variant v { none, some(r) } enum e { x, y } flags fl { p, q }
            type alias = list<u8, 4>;";
        for param in [
            "bool",
            "s8",
            "u64",
            "f64",
            "char",
            "string",
            "r",
            "v",
            "e",
            "fl",
            "alias",
            "option<list<option<u8>>>",
            "result<option<string>, e>",
            "result",
        ] {
            assert_eq!(check_param(types, param), Ok(()), "{param}");
        }
    }

    #[test]
    fn types_nested_too_deep_are_refused() {
        let deep = format!(
            "{}u8{}",
            "list<".repeat(MAX_DEPTH + 1),
            ">".repeat(MAX_DEPTH + 1)
        );
        let err = check_param("", &deep).unwrap_err();
        assert!(err.ty.contains("nested more than 64 deep"), "{}", err.ty);
    }

    #[test]
    fn types_that_expand_too_far_are_refused() {
        // Each level doubles the expanded size: 2^14 nodes from 14 records.
        let mut types = String::from("record t0 { a: u8, b: u8 }");
        for i in 1..14 {
            types += &format!(" record t{i} {{ a: t{}, b: t{} }}", i - 1, i - 1);
        }
        let err = check_param(&types, "t13").unwrap_err();
        assert!(
            err.ty.contains("more than 10000 nested types"),
            "{}",
            err.ty
        );
    }
}
