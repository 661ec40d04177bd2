//! Tests of JSON ⇄ value conversion, one per kind of value and of mistake.

use serde_json::{Value, json};
use wasmtime::component::Val;

use super::{args_to_vals, val_to_json};
use crate::tools::testing::{resolve_of, tool};
use crate::tools::{ArgError, ToolOutput};

const TYPES: &str = "
    record header { name: string, value: string }
    record opts { limit: option<u32>, tag: string }
    variant body { empty, text(string), bytes(list<u8>) }
    enum method { get, post }
    flags perms { read, write, exec }
";

/// Converts `value` as the single parameter `p` of type `ty`.
fn convert(ty: &str, value: Value) -> Result<Val, ArgError> {
    let (resolve, ty) = resolve_of(TYPES, ty);
    let params = [("p".to_string(), ty)];
    args_to_vals(&resolve, &params, &json!({ "p": value })).map(|mut v| v.remove(0))
}

/// The error for `value` as `p: ty`, as displayed.
fn refused(ty: &str, value: Value) -> String {
    match convert(ty, value.clone()) {
        Ok(val) => panic!("{ty}: {value} was accepted as {val:?}"),
        Err(err) => err.to_string(),
    }
}

fn s(text: &str) -> Val {
    Val::String(text.into())
}

#[test]
fn scalars_convert() {
    assert_eq!(convert("bool", json!(true)), Ok(Val::Bool(true)));
    assert_eq!(convert("u8", json!(255)), Ok(Val::U8(255)));
    assert_eq!(convert("s8", json!(-128)), Ok(Val::S8(-128)));
    assert_eq!(convert("u16", json!(65535)), Ok(Val::U16(65535)));
    assert_eq!(convert("s16", json!(-32768)), Ok(Val::S16(-32768)));
    assert_eq!(
        convert("u32", json!(4_294_967_295u32)),
        Ok(Val::U32(u32::MAX))
    );
    assert_eq!(convert("s32", json!(i32::MIN)), Ok(Val::S32(i32::MIN)));
    assert_eq!(convert("u64", json!(u64::MAX)), Ok(Val::U64(u64::MAX)));
    assert_eq!(convert("s64", json!(i64::MIN)), Ok(Val::S64(i64::MIN)));
    assert_eq!(convert("u32", json!(5.0)), Ok(Val::U32(5)));
    assert_eq!(convert("f32", json!(0.5)), Ok(Val::Float32(0.5)));
    assert_eq!(convert("f64", json!(-1e300)), Ok(Val::Float64(-1e300)));
    assert_eq!(convert("f64", json!(3)), Ok(Val::Float64(3.0)));
    assert_eq!(convert("char", json!("é")), Ok(Val::Char('é')));
    assert_eq!(convert("char", json!("🦀")), Ok(Val::Char('🦀')));
    assert_eq!(convert("string", json!("")), Ok(s("")));
}

#[test]
fn compound_values_convert() {
    assert_eq!(
        convert("list<u8>", json!([0, 255])),
        Ok(Val::List(vec![Val::U8(0), Val::U8(255)]))
    );
    assert_eq!(
        convert("list<bool, 2>", json!([true, false])),
        Ok(Val::FixedLengthList(vec![
            Val::Bool(true),
            Val::Bool(false)
        ]))
    );
    assert_eq!(
        convert("tuple<string, s8>", json!(["a", -1])),
        Ok(Val::Tuple(vec![s("a"), Val::S8(-1)]))
    );
    assert_eq!(
        convert("list<header>", json!([{"value": "v", "name": "n"}])),
        Ok(Val::List(vec![Val::Record(vec![
            ("name".into(), s("n")),
            ("value".into(), s("v")),
        ])]))
    );
    assert_eq!(
        convert("method", json!("post")),
        Ok(Val::Enum("post".into()))
    );
    assert_eq!(
        convert("perms", json!(["exec", "read"])),
        Ok(Val::Flags(vec!["read".into(), "exec".into()]))
    );
    assert_eq!(convert("perms", json!([])), Ok(Val::Flags(vec![])));
}

#[test]
fn variants_take_bare_names_or_single_key_objects() {
    assert_eq!(
        convert("body", json!("empty")),
        Ok(Val::Variant("empty".into(), None))
    );
    assert_eq!(
        convert("body", json!({"text": "hi"})),
        Ok(Val::Variant("text".into(), Some(Box::new(s("hi")))))
    );
    assert_eq!(
        convert("body", json!({"bytes": [1]})),
        Ok(Val::Variant(
            "bytes".into(),
            Some(Box::new(Val::List(vec![Val::U8(1)])))
        ))
    );
}

#[test]
fn options_take_null_or_the_value_and_may_be_omitted() {
    assert_eq!(convert("option<u8>", json!(null)), Ok(Val::Option(None)));
    assert_eq!(
        convert("option<u8>", json!(7)),
        Ok(Val::Option(Some(Box::new(Val::U8(7)))))
    );
    assert_eq!(
        convert("opts", json!({"tag": "t"})),
        Ok(Val::Record(vec![
            ("limit".into(), Val::Option(None)),
            ("tag".into(), s("t")),
        ]))
    );

    let t = tool("", "(url: string, limit: option<u32>)");
    assert_eq!(
        t.args_to_vals(&json!({"url": "u"})),
        Ok(vec![s("u"), Val::Option(None)])
    );
    assert_eq!(
        t.args_to_vals(&json!({"url": "u", "limit": null})),
        Ok(vec![s("u"), Val::Option(None)])
    );
}

#[test]
fn nested_results_take_ok_or_err_objects() {
    assert_eq!(
        convert("result<string, u8>", json!({"ok": "yes"})),
        Ok(Val::Result(Ok(Some(Box::new(s("yes"))))))
    );
    assert_eq!(
        convert("result<string, u8>", json!({"err": 4})),
        Ok(Val::Result(Err(Some(Box::new(Val::U8(4))))))
    );
    assert_eq!(
        convert("result", json!({"ok": null})),
        Ok(Val::Result(Ok(None)))
    );
    assert_eq!(
        convert("result<_, u8>", json!({"ok": null})),
        Ok(Val::Result(Ok(None)))
    );
}

#[test]
fn wrong_json_types_name_what_was_expected() {
    assert_eq!(
        refused("string", json!(5)),
        r#"argument "p": expected string, got number 5"#
    );
    assert_eq!(
        refused("bool", json!("true")),
        r#"argument "p": expected boolean, got string "true""#
    );
    assert_eq!(
        refused("f64", json!(null)),
        r#"argument "p": expected number, got null"#
    );
    assert_eq!(
        refused("header", json!([1, 2])),
        r#"argument "p": expected object, got array of 2 items"#
    );
    assert_eq!(
        refused("list<u8>", json!({"a": 1})),
        r#"argument "p": expected array, got object with key "a""#
    );
    assert_eq!(
        refused(
            "list<header>",
            json!([{"name": "a", "value": "b"}, {"name": 5, "value": "b"}])
        ),
        r#"argument "p[1].name": expected string, got number 5"#
    );
}

#[test]
fn integers_out_of_range_or_not_whole_are_refused() {
    assert_eq!(
        refused("u8", json!(256)),
        r#"argument "p": expected integer from 0 to 255, got number 256"#
    );
    assert_eq!(
        refused("u8", json!(-1)),
        r#"argument "p": expected integer from 0 to 255, got number -1"#
    );
    assert_eq!(
        refused("s8", json!(128)),
        r#"argument "p": expected integer from -128 to 127, got number 128"#
    );
    assert_eq!(
        refused("u32", json!(1.5)),
        r#"argument "p": expected integer from 0 to 4294967295, got number 1.5"#
    );
    assert_eq!(
        refused("s64", json!("1")),
        r#"argument "p": expected integer from -9223372036854775808 to 9223372036854775807, got string "1""#
    );
    // Beyond 2^53 a number with a fraction or exponent is not exact.
    assert!(refused("u64", json!(1e19)).contains("got number 1e+19"));
    assert!(convert("u64", json!(9_007_199_254_740_992.0)).is_err());
    assert_eq!(
        convert("u64", json!(9_007_199_254_740_991.0)),
        Ok(Val::U64(9_007_199_254_740_991))
    );
    assert_eq!(
        convert("u64", serde_json::from_str("18446744073709551615").unwrap()),
        Ok(Val::U64(u64::MAX))
    );
}

#[test]
fn floats_beyond_f32_are_refused() {
    assert_eq!(
        refused("f32", json!(1e39)),
        r#"argument "p": expected number within the range of f32, got number 1e+39"#
    );
}

#[test]
fn chars_must_be_exactly_one_character() {
    let expected = r#"argument "p": expected string of exactly one character, got string "ab""#;
    assert_eq!(refused("char", json!("ab")), expected);
    assert!(refused("char", json!("")).contains(r#"got string """#));
}

#[test]
fn records_refuse_unknown_and_missing_fields() {
    assert_eq!(
        refused(
            "list<header>",
            json!([{"name": "a", "value": "b", "nmae": "c"}])
        ),
        r#"argument "p[0]": expected only the fields "name", "value", got unknown key "nmae""#
    );
    assert_eq!(
        refused("header", json!({"name": "a"})),
        r#"argument "p.value": expected string, got nothing (the field is missing)"#
    );
}

#[test]
fn bad_enum_flag_and_variant_cases_are_refused() {
    assert_eq!(
        refused("method", json!("put")),
        r#"argument "p": expected one of "get", "post", got string "put""#
    );
    assert_eq!(
        refused("perms", json!(["read", "delete"])),
        r#"argument "p[1]": expected one of "read", "write", "exec", got string "delete""#
    );
    assert_eq!(
        refused("perms", json!(["read", "read"])),
        r#"argument "p[1]": expected a flag not given before, got string "read""#
    );
    assert_eq!(
        refused("perms", json!("read")),
        r#"argument "p": expected array of distinct flags, got string "read""#
    );

    let cases = r#"expected one of "empty", {"text": …}, {"bytes": …}"#;
    assert_eq!(
        refused("body", json!("html")),
        format!(r#"argument "p": {cases}, got string "html""#)
    );
    // A case with payload needs it; one without takes the bare name only.
    assert_eq!(
        refused("body", json!("text")),
        format!(r#"argument "p": {cases}, got string "text""#)
    );
    assert_eq!(
        refused("body", json!({"empty": null})),
        format!(r#"argument "p": {cases}, got object with key "empty""#)
    );
    assert_eq!(
        refused("body", json!({"text": "a", "bytes": []})),
        format!(r#"argument "p": {cases}, got object with 2 keys"#)
    );
    assert_eq!(
        refused("body", json!({"bytes": [1, 300]})),
        r#"argument "p.bytes[1]": expected integer from 0 to 255, got number 300"#
    );
}

#[test]
fn tuples_and_fixed_lists_must_have_their_length() {
    assert_eq!(
        refused("tuple<string, s8>", json!(["a", 1, 2])),
        r#"argument "p": expected array of 2 items, got array of 3 items"#
    );
    assert_eq!(
        refused("tuple<string, s8>", json!(["a", "b"])),
        r#"argument "p[1]": expected integer from -128 to 127, got string "b""#
    );
    assert_eq!(
        refused("list<u8, 4>", json!([1])),
        r#"argument "p": expected array of 4 items, got array of 1 items"#
    );
}

#[test]
fn nested_results_refuse_other_shapes() {
    let expected = r#"argument "p": expected object {"ok": …} or {"err": …}, got"#;
    assert_eq!(
        refused("result<string>", json!({"value": "x"})),
        format!(r#"{expected} object with key "value""#)
    );
    assert_eq!(
        refused("result<string>", json!({"ok": "a", "err": null})),
        format!("{expected} object with 2 keys")
    );
    assert_eq!(
        refused("result<string>", json!({"err": 1})),
        r#"argument "p.err": expected null, got number 1"#
    );
}

#[test]
fn the_arguments_object_is_checked_as_a_whole() {
    let t = tool(TYPES, "(url: string, headers: list<header>)");
    assert_eq!(
        t.args_to_vals(&json!(["u"])).unwrap_err().to_string(),
        "arguments: expected object of arguments, got array of 1 items"
    );
    let err = t
        .args_to_vals(&json!({"url": "u", "headers": [], "body": "x"}))
        .unwrap_err();
    assert_eq!(
        err,
        ArgError {
            path: String::new(),
            expected: r#"only the parameters "url", "headers""#.into(),
            got: r#"unknown key "body""#.into(),
        }
    );
    assert_eq!(
        t.args_to_vals(&json!({"url": "u"}))
            .unwrap_err()
            .to_string(),
        r#"argument "headers": expected array, got nothing (the parameter is missing)"#
    );
    assert_eq!(
        tool("", "()")
            .args_to_vals(&json!({"x": 1}))
            .unwrap_err()
            .to_string(),
        r#"arguments: expected no parameters, got unknown key "x""#
    );
    assert_eq!(tool("", "()").args_to_vals(&json!({})), Ok(vec![]));
}

#[test]
fn long_values_are_cut_in_errors() {
    let long = "x".repeat(10_000);
    let message = refused("u8", json!(long));
    assert_eq!(
        message,
        format!(
            r#"argument "p": expected integer from 0 to 255, got string "{}"…"#,
            "x".repeat(40)
        )
    );
    let message = refused(
        "header",
        json!({ long.clone(): 1, "name": "a", "value": "b" }),
    );
    assert!(message.len() < 150, "{message}");
}

#[test]
fn values_round_trip_through_json() {
    for (ty, value) in [
        ("bool", json!(false)),
        ("u64", json!(u64::MAX)),
        ("s64", json!(i64::MIN)),
        ("s16", json!(-3)),
        ("f64", json!(2.5)),
        ("f32", json!(0.1)),
        ("char", json!("é")),
        ("string", json!("text")),
        ("list<u8>", json!([1, 2, 3])),
        ("list<s32, 2>", json!([-1, 1])),
        ("tuple<string, bool>", json!(["a", true])),
        ("header", json!({"name": "n", "value": "v"})),
        ("opts", json!({"limit": null, "tag": "t"})),
        ("opts", json!({"limit": 3, "tag": "t"})),
        ("body", json!("empty")),
        ("body", json!({"bytes": [0, 255]})),
        ("method", json!("get")),
        ("perms", json!(["read", "exec"])),
        ("option<string>", json!(null)),
        ("option<list<option<u8>>>", json!([1, null])),
        ("result<string, u8>", json!({"err": 3})),
        ("result", json!({"ok": null})),
    ] {
        let val = convert(ty, value.clone()).unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_eq!(val_to_json(&val), value, "{ty}");
    }
}

#[test]
fn floats_json_cannot_hold_come_out_as_null() {
    assert_eq!(val_to_json(&Val::Float64(f64::NAN)), Value::Null);
    assert_eq!(val_to_json(&Val::Float64(f64::INFINITY)), Value::Null);
    assert_eq!(val_to_json(&Val::Float32(f32::NEG_INFINITY)), Value::Null);
    assert_eq!(val_to_json(&Val::Float32(0.1)), json!(0.1));
}

#[test]
fn a_top_level_result_splits_ok_from_tool_errors() {
    let t = tool(TYPES, "() -> result<header, string>");
    let header = Val::Record(vec![("name".into(), s("n")), ("value".into(), s("v"))]);
    assert_eq!(
        t.output(&[Val::Result(Ok(Some(Box::new(header))))]),
        ToolOutput::Ok(json!({"name": "n", "value": "v"}))
    );
    assert_eq!(
        t.output(&[Val::Result(Err(Some(Box::new(s("denied")))))]),
        ToolOutput::ToolError(json!("denied"))
    );

    let t = tool("", "() -> result");
    assert_eq!(
        t.output(&[Val::Result(Ok(None))]),
        ToolOutput::Ok(Value::Null)
    );
    assert_eq!(
        t.output(&[Val::Result(Err(None))]),
        ToolOutput::ToolError(Value::Null)
    );
}

#[test]
fn other_results_are_plain_output() {
    let t = tool("type outcome = result<u8, string>;", "() -> list<outcome>");
    assert_eq!(
        t.output(&[Val::List(vec![Val::Result(Err(Some(Box::new(s("e")))))])]),
        ToolOutput::Ok(json!([{"err": "e"}]))
    );
    let t = tool("", "() -> option<u8>");
    assert_eq!(t.output(&[Val::Option(None)]), ToolOutput::Ok(Value::Null));
    let t = tool("", "()");
    assert_eq!(t.result_count(), 0);
    assert_eq!(t.output(&[]), ToolOutput::Ok(Value::Null));
}

#[test]
fn an_aliased_top_level_result_is_still_a_tool_result() {
    let t = tool("type outcome = result<u8, string>;", "() -> outcome");
    assert_eq!(
        t.output(&[Val::Result(Err(Some(Box::new(s("e")))))]),
        ToolOutput::ToolError(json!("e"))
    );
}
