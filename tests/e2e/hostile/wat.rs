//! Components written in WAT, for exact control over what crosses the
//! canonical ABI: out-of-bounds pointers, lengths past the end of memory,
//! invalid UTF-8, unknown discriminants, surrogate chars, a `cabi_realloc`
//! that answers garbage, and compute bombs with no language runtime at all.
//!
//! The core module is written here, its WIT world is embedded with
//! `wit-component`, and `wit-component` wraps it into a component, the same
//! way a toolchain would.

/// The interface every WAT tool exports.
const WIT: &str = r#"
package hostile:abi@0.1.0;

/// Values returned through the canonical ABI.
interface bad {
  /// Two colours.
  enum color { red, green }

  /// Returns "fine".
  text-ok: func() -> string;
  /// Returns a string whose pointer is past the end of memory.
  text-out-of-bounds: func() -> string;
  /// Returns a string whose length runs past the end of memory.
  text-huge-length: func() -> string;
  /// Returns bytes that are not UTF-8.
  text-bad-utf8: func() -> string;
  /// Returns its result through a misaligned pointer.
  text-unaligned: func() -> string;
  /// Returns a result with discriminant 7.
  outcome-bad-discriminant: func() -> result<string, string>;
  /// Returns an enum case that does not exist.
  color-bad-discriminant: func() -> color;
  /// Returns an option with discriminant 2.
  maybe-bad-discriminant: func() -> option<u32>;
  /// Returns a surrogate code point as a char.
  letter-surrogate: func() -> char;
  /// Returns a list of 2^28 u64 values, far past the end of memory.
  many: func() -> list<u64>;
  /// Echoes `text`; the host writes it where `cabi_realloc` says.
  echo: func(text: string) -> string;
  /// Never returns.
  spin: func() -> u32;
  /// Calls itself forever.
  recurse: func() -> u32;
  /// Grows memory one page at a time until refused.
  grow: func() -> u32;
}

/// A tool that exports `bad`.
world bad-tool {
  export bad;
}
"#;

/// The core module: each export does one wrong thing. Memory layout: the
/// return areas at 16..64, "fine" at 64, invalid UTF-8 at 80.
const WAT: &str = r#"
(module
  (memory (export "memory") 1)
  ;; text-ok: (ptr 64, len 4)
  (data (i32.const 16) "\40\00\00\00\04\00\00\00")
  ;; text-out-of-bounds: (ptr 0xfffffff0, len 16)
  (data (i32.const 24) "\f0\ff\ff\ff\10\00\00\00")
  ;; text-huge-length: (ptr 64, len 0x7fffffff)
  (data (i32.const 32) "\40\00\00\00\ff\ff\ff\7f")
  ;; text-bad-utf8: (ptr 80, len 4)
  (data (i32.const 40) "\50\00\00\00\04\00\00\00")
  ;; outcome: discriminant 7, then (ptr 64, len 4)
  (data (i32.const 48) "\07\00\00\00\40\00\00\00\04\00\00\00")
  ;; option<u32>: discriminant 2, then 5
  (data (i32.const 0) "\02\00\00\00\05\00\00\00")
  ;; list<u64>: (ptr 64, len 2^28)
  (data (i32.const 8) "\40\00\00\00\00\00\00\10")
  (data (i32.const 64) "fine")
  (data (i32.const 80) "\ff\fe\c3\28")

  (func (export "hostile:abi/bad@0.1.0#text-ok") (result i32) i32.const 16)
  (func (export "hostile:abi/bad@0.1.0#text-out-of-bounds") (result i32) i32.const 24)
  (func (export "hostile:abi/bad@0.1.0#text-huge-length") (result i32) i32.const 32)
  (func (export "hostile:abi/bad@0.1.0#text-bad-utf8") (result i32) i32.const 40)
  (func (export "hostile:abi/bad@0.1.0#text-unaligned") (result i32) i32.const 17)
  (func (export "hostile:abi/bad@0.1.0#outcome-bad-discriminant") (result i32) i32.const 48)
  (func (export "hostile:abi/bad@0.1.0#color-bad-discriminant") (result i32) i32.const 9)
  (func (export "hostile:abi/bad@0.1.0#maybe-bad-discriminant") (result i32) i32.const 0)
  (func (export "hostile:abi/bad@0.1.0#letter-surrogate") (result i32) i32.const 0xd800)
  (func (export "hostile:abi/bad@0.1.0#many") (result i32) i32.const 8)
  (func (export "hostile:abi/bad@0.1.0#echo") (param i32 i32) (result i32) i32.const 16)
  (func (export "hostile:abi/bad@0.1.0#spin") (result i32)
    (loop $forever (br $forever))
    i32.const 0)
  (func $recurse (export "hostile:abi/bad@0.1.0#recurse") (result i32)
    call $recurse
    i32.const 1
    i32.add)
  (func (export "hostile:abi/bad@0.1.0#grow") (result i32)
    (local $pages i32)
    (loop $more
      (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
        (then
          (local.set $pages (i32.add (local.get $pages) (i32.const 1)))
          (br $more))))
    local.get $pages)
  ;; Every allocation the host asks for lands past the end of memory.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    i32.const 0xfffffff0)
)
"#;

/// The `bad` component.
pub fn bad_component() -> Vec<u8> {
    component(WIT, "bad-tool", WAT)
}

/// Wraps the core module `wat` into a component exporting `world` of `wit`.
pub fn component(wit: &str, world: &str, wat: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).expect("the WAT parses");
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("hostile.wit", wit)
        .expect("the WIT parses");
    let world = resolve
        .select_world(&[package], Some(world))
        .expect("the world exists");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embedding the world");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("a valid core module")
        .validate(true)
        .encode()
        .expect("encoding the component")
}
