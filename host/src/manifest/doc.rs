//! Reading a TOML document one table at a time, so that every problem in
//! it is found, not just the first.
//!
//! The document is parsed once into spanned values. Each table that maps
//! to a typed value (a connection, a tool, one endpoint) is then
//! deserialized on its own: a mistake in one does not hide mistakes in the
//! others, and every error keeps the line and column of the offending key
//! or value in the whole file.

use super::ConfigError;
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A spanned TOML value borrowed from the document text.
pub(crate) type Value<'a> = Spanned<DeValue<'a>>;

/// A TOML document: its text and the name used for it in messages.
pub(crate) struct Doc<'a> {
    text: &'a str,
    file: &'a Path,
}

impl<'a> Doc<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Doc<'a> {
        Doc { text, file }
    }

    /// The file name used in messages.
    pub(crate) fn file(&self) -> &'a Path {
        self.file
    }

    /// Parses the document into its root table, or every syntax error.
    pub(crate) fn root(&self) -> Result<Vec<(Spanned<String>, Value<'a>)>, Vec<ConfigError>> {
        let (root, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            let mut errors: Vec<ConfigError> = errors
                .into_iter()
                .map(|e| self.error(e.span().unwrap_or(0..0), "", e.message()))
                .collect();
            errors.sort_by_key(ConfigError::position);
            return Err(errors);
        }
        Ok(entries(root.into_inner()))
    }

    /// An error at `span`, about `key` (empty when there is none).
    pub(crate) fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    /// The connection an endpoint at `key` binds to: `connection =
    /// "<name>"`, or none with `unauthenticated = true`; one of the two,
    /// never both. `needs` says when a connection is wanted, for the
    /// message when neither is set.
    pub(crate) fn binding(
        &self,
        key: &str,
        url: Range<usize>,
        connection: Option<Spanned<String>>,
        unauthenticated: Option<&Spanned<bool>>,
        needs: &str,
    ) -> Result<Option<Spanned<String>>, ConfigError> {
        match (connection, unauthenticated.is_some_and(|u| *u.get_ref())) {
            (Some(c), false) => Ok(Some(c)),
            (None, true) => Ok(None),
            (Some(c), true) => Err(self.error(
                c.span(),
                key,
                "set connection or unauthenticated = true, not both",
            )),
            (None, false) => Err(self.error(
                url,
                key,
                format!("set connection = \"<name>\" {needs}, or unauthenticated = true"),
            )),
        }
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    /// Deserializes one value; an error is located in the whole document
    /// and names `key`.
    pub(crate) fn de<T: Deserialize<'a>>(
        &self,
        key: &str,
        value: Value<'a>,
    ) -> Result<T, ConfigError> {
        let span = value.span();
        T::deserialize(ValueDeserializer::from(value))
            .map_err(|e| self.error(e.span().unwrap_or(span), key, e.message()))
    }

    /// The entries of a value that must be a table.
    pub(crate) fn table(
        &self,
        key: &str,
        value: Value<'a>,
    ) -> Result<Vec<(Spanned<String>, Value<'a>)>, ConfigError> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(table) => Ok(entries(table)),
            other => Err(self.error(
                span,
                key,
                format!("expected a table, found {}", kind(&other)),
            )),
        }
    }

    /// The items of a value that must be an array.
    pub(crate) fn array(&self, key: &str, value: Value<'a>) -> Result<Vec<Value<'a>>, ConfigError> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(items) => Ok(items.to_vec()),
            other => Err(self.error(
                span,
                key,
                format!("expected an array, found {}", kind(&other)),
            )),
        }
    }

    /// Reassembles entries into one table value spanning `span`, for
    /// deserializing what is left of a table after some keys were taken.
    pub(crate) fn rebuild(
        entries: Vec<(Spanned<String>, Value<'a>)>,
        span: Range<usize>,
    ) -> Value<'a> {
        let mut table = DeTable::new();
        for (key, value) in entries {
            let key_span = key.span();
            table.insert(Spanned::new(key_span, key.into_inner().into()), value);
        }
        Spanned::new(span, DeValue::Table(table))
    }
}

fn entries(table: DeTable<'_>) -> Vec<(Spanned<String>, Value<'_>)> {
    table
        .into_iter()
        .map(|(key, value)| {
            let span = key.span();
            (Spanned::new(span, key.into_inner().into_owned()), value)
        })
        .collect()
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_and_survives_bad_offsets() {
        let text = "a = 1\nbü = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // Offset 9 is the space after "bü" (ü is two bytes).
        assert_eq!(line_column(text, 9), (2, 3));
        // Inside the two bytes of ü: rounds down to its start.
        assert_eq!(line_column(text, 8), (2, 2));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn every_syntax_error_is_reported() {
        let doc = Doc::new("a = \nb = [\n", Path::new("x.toml"));
        let errors = doc.root().unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.position().0).collect();
        assert!(lines.len() >= 2 && lines[0] == 1, "{errors:?}");
        assert!(
            lines.windows(2).all(|w| w[0] <= w[1]),
            "in file order: {lines:?}"
        );
    }
}
