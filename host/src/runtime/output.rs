//! How big a tool's result is once lifted out of the guest.

use wasmtime::component::Val;

/// Bytes `vals` take as data: string bytes, one byte per flag or small
/// scalar, eight per wide scalar, plus one per list element, field or case,
/// so that a list of a million empty records still counts.
pub(super) fn size(vals: &[Val]) -> u64 {
    vals.iter().map(val_size).sum()
}

fn val_size(val: &Val) -> u64 {
    match val {
        Val::Bool(_) | Val::U8(_) | Val::S8(_) => 1,
        Val::U16(_) | Val::S16(_) => 2,
        Val::U32(_) | Val::S32(_) | Val::Float32(_) | Val::Char(_) => 4,
        Val::U64(_) | Val::S64(_) | Val::Float64(_) => 8,
        Val::String(s) => s.len() as u64,
        Val::Enum(name) => name.len() as u64,
        Val::List(items) | Val::Tuple(items) => items.iter().map(|v| 1 + val_size(v)).sum(),
        Val::Record(fields) => fields.iter().map(|(_, v)| 1 + val_size(v)).sum(),
        Val::Flags(names) => names.len() as u64,
        Val::Variant(_, v) | Val::Option(v) => 1 + v.as_deref().map_or(0, val_size),
        Val::Result(r) => {
            1 + r
                .as_ref()
                .map_or_else(|e| e, |o| o)
                .as_deref()
                .map_or(0, val_size)
        }
        // Handles and futures cannot be tool results; count them as small.
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_count_their_bytes() {
        assert_eq!(size(&[Val::String("héllo".into())]), 6);
    }

    #[test]
    fn nested_values_count_every_level() {
        let record = Val::Record(vec![
            ("a".into(), Val::String("xyz".into())),
            ("b".into(), Val::List(vec![Val::U64(1), Val::U64(2)])),
        ]);
        let wrapped = Val::Result(Ok(Some(Box::new(Val::Option(Some(Box::new(record)))))));
        // result 1 + option 1 + fields (1 + 3) + (1 + list (1 + 8) * 2)
        assert_eq!(size(&[wrapped]), 1 + 1 + 4 + 1 + 18);
    }

    #[test]
    fn empty_elements_still_count() {
        let many = Val::List(vec![Val::Tuple(vec![]); 1000]);
        assert_eq!(size(&[many]), 1000);
    }
}
