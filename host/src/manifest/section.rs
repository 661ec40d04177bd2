//! The declaration inside a component: a custom section named
//! [`SECTION`] at the component's top level.
//!
//! Custom sections do not change what a component does, so adding one keeps
//! the component loadable by any runtime; it does change the file's sha256,
//! which is what an operator pins. Only top-level sections count: a custom
//! section of that name inside a nested module or component is ignored.
//! Both functions are pure: bytes in, bytes out.

use super::declaration::{MAX_BYTES, SECTION};
use std::ops::Range;
use wasmparser::{Chunk, Encoding, Parser, Payload};

/// Why a declaration could not be read from or written into a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SectionError {
    /// The bytes are a core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; expected a component built for wasm32-wasip2"
    )]
    CoreModule,
    /// The bytes cannot be parsed as WebAssembly.
    #[error("not a valid WebAssembly component: {0}")]
    Malformed(String),
    /// More than one declaration section.
    #[error("the component has {0} {SECTION:?} sections; expected at most one")]
    Duplicate(usize),
    /// The declaration is not UTF-8 text.
    #[error("the {SECTION:?} section is not UTF-8 text")]
    NotUtf8,
    /// The declaration is larger than [`MAX_BYTES`].
    #[error("the {SECTION:?} section is {0} bytes; at most {MAX_BYTES} are accepted")]
    TooLarge(usize),
}

/// One top-level section: its id and the range of its contents.
struct Section<'a> {
    id: u8,
    contents: Range<usize>,
    /// The name, for a custom section.
    custom: Option<&'a str>,
}

/// The declaration text embedded in `component`, if it has one.
pub fn read(component: &[u8]) -> Result<Option<&str>, SectionError> {
    let mut found = Vec::new();
    for section in sections(component)? {
        if section.custom == Some(SECTION) {
            found.push(section.contents);
        }
    }
    let range = match found.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        many => return Err(SectionError::Duplicate(many.len())),
    };

    // The contents of a custom section start with its name.
    let reader = wasmparser::CustomSectionReader::new(wasmparser::BinaryReader::new(
        &component[range.clone()],
        range.start,
    ))
    .map_err(|e| SectionError::Malformed(e.to_string()))?;
    let data = reader.data();
    if data.len() > MAX_BYTES {
        return Err(SectionError::TooLarge(data.len()));
    }
    std::str::from_utf8(data)
        .map(Some)
        .map_err(|_| SectionError::NotUtf8)
}

/// `component` with `declaration` as its declaration section: any existing
/// one is removed, the new one is appended at the end, and every other
/// section is kept byte for byte.
pub fn embed(component: &[u8], declaration: &str) -> Result<Vec<u8>, SectionError> {
    if declaration.len() > MAX_BYTES {
        return Err(SectionError::TooLarge(declaration.len()));
    }
    let mut wasm = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    wasm.validate_all(component)
        .map_err(|e| SectionError::Malformed(e.to_string()))?;

    let mut out = wasm_encoder::Component::new();
    for section in sections(component)? {
        if section.custom != Some(SECTION) {
            out.section(&wasm_encoder::RawSection {
                id: section.id,
                data: &component[section.contents],
            });
        }
    }
    out.section(&wasm_encoder::CustomSection {
        name: SECTION.into(),
        data: declaration.as_bytes().into(),
    });
    Ok(out.finish())
}

/// The top-level sections of a component, without descending into nested
/// modules and components.
fn sections(bytes: &[u8]) -> Result<Vec<Section<'_>>, SectionError> {
    let malformed = |e: wasmparser::BinaryReaderError| SectionError::Malformed(e.to_string());
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut sections = Vec::new();
    loop {
        let (payload, consumed) = match parser.parse(&bytes[offset..], true).map_err(malformed)? {
            Chunk::Parsed { payload, consumed } => (payload, consumed),
            Chunk::NeedMoreData(_) => {
                return Err(SectionError::Malformed("unexpected end of file".into()));
            }
        };
        match &payload {
            Payload::Version { encoding, .. } if *encoding != Encoding::Component => {
                return Err(SectionError::CoreModule);
            }
            Payload::End(_) => return Ok(sections),
            _ => {}
        }
        let custom = match &payload {
            Payload::CustomSection(reader) => Some(reader.name()),
            _ => None,
        };

        // A nested module or component is consumed by its header alone; its
        // contents end where the section's range ends.
        offset = match payload.as_section() {
            Some((id, contents)) => {
                let end = contents.end;
                sections.push(Section {
                    id,
                    contents,
                    custom,
                });
                end
            }
            None => offset + consumed,
        };
        if offset > bytes.len() {
            return Err(SectionError::Malformed(
                "a section runs past the end".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid component: just the preamble.
    fn empty_component() -> Vec<u8> {
        wasm_encoder::Component::new().finish()
    }

    #[test]
    fn embed_then_read_round_trips_and_replaces() {
        let packed = embed(&empty_component(), "name = \"a\"").unwrap();
        assert_eq!(read(&packed).unwrap(), Some("name = \"a\""));
        let repacked = embed(&packed, "name = \"b\"").unwrap();
        assert_eq!(read(&repacked).unwrap(), Some("name = \"b\""));
        assert_eq!(repacked.len(), packed.len(), "the old section was replaced");
    }

    #[test]
    fn a_component_without_a_declaration_reads_none() {
        assert_eq!(read(&empty_component()).unwrap(), None);
    }

    #[test]
    fn other_sections_are_kept_byte_for_byte() {
        let mut c = wasm_encoder::Component::new();
        c.section(&wasm_encoder::CustomSection {
            name: "producers-like".into(),
            data: b"\x01\x02".as_slice().into(),
        });
        c.section(&wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: b"old".as_slice().into(),
        });
        let original = c.finish();
        let packed = embed(&original, "new").unwrap();
        let kept = sections(&packed).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].custom, Some("producers-like"));
        assert_eq!(
            &packed[kept[0].contents.clone()],
            &original[sections(&original).unwrap()[0].contents.clone()]
        );
        assert_eq!(read(&packed).unwrap(), Some("new"));
    }

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let module = wasm_encoder::Module::new().finish();
        assert_eq!(read(&module), Err(SectionError::CoreModule));
        let err = embed(&module, "x").unwrap_err().to_string();
        assert!(err.contains("component"), "{err}");
        assert!(matches!(
            read(b"not wasm at all"),
            Err(SectionError::Malformed(_))
        ));
        assert!(matches!(read(&[]), Err(SectionError::Malformed(_))));
        let mut truncated = embed(&empty_component(), "name").unwrap();
        truncated.pop();
        assert!(matches!(read(&truncated), Err(SectionError::Malformed(_))));
    }

    #[test]
    fn duplicate_oversized_and_binary_declarations_are_refused() {
        let mut c = wasm_encoder::Component::new();
        for _ in 0..2 {
            c.section(&wasm_encoder::CustomSection {
                name: SECTION.into(),
                data: b"x".as_slice().into(),
            });
        }
        assert_eq!(read(&c.finish()), Err(SectionError::Duplicate(2)));

        let mut c = wasm_encoder::Component::new();
        c.section(&wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: b"\xff\xfe".as_slice().into(),
        });
        assert_eq!(read(&c.finish()), Err(SectionError::NotUtf8));

        let big = "#".repeat(MAX_BYTES + 1);
        assert_eq!(
            embed(&empty_component(), &big),
            Err(SectionError::TooLarge(MAX_BYTES + 1))
        );
    }
}
