//! The one type that holds credential bytes.
//!
//! A [`Secret`] has no `Display`, prints a placeholder in `Debug`, and wipes
//! its memory on drop. Its bytes leave it in exactly four ways, all in this
//! file: as an HTTP header value ([`Secret::header_value`]), as the set of
//! encodings the response guard searches for ([`Secret::echo_forms`]), as
//! plaintext handed to the vault's sealing step ([`Secret::seal_with`]), and
//! as a form parameter of the broker's requests to a provider's token or
//! revocation endpoint ([`Secret::oauth_param`]).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use http::HeaderValue;
use zeroize::{Zeroize, Zeroizing};

/// Shortest secret the host accepts. Redacting every echo of a very short
/// value would mangle unrelated response bytes, and such values are not real
/// credentials.
pub const MIN_SECRET_LEN: usize = 16;

/// Credential bytes: an access token, a refresh token or a client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

/// Why a value cannot be a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("secret is {0} bytes long; at least {MIN_SECRET_LEN} are required")]
    TooShort(usize),
    /// Contains bytes that cannot appear in an HTTP header value.
    #[error("secret contains whitespace or control characters at byte {0}")]
    BadByte(usize),
}

impl Secret {
    /// Wraps `bytes` after checking they can be sent in a header.
    ///
    /// Leading and trailing ASCII whitespace (such as the newline that
    /// `echo token | airlock vault put` adds) is trimmed first.
    pub fn new(mut bytes: Vec<u8>) -> Result<Secret, SecretError> {
        let trimmed = Zeroizing::new(bytes.trim_ascii().to_vec());
        bytes.zeroize();
        if let Some(at) = trimmed.iter().position(|b| !(0x21..=0x7e).contains(b)) {
            return Err(SecretError::BadByte(at));
        }
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort(trimmed.len()));
        }
        Ok(Secret(trimmed.as_slice().into()))
    }

    /// Builds the header value `{prefix}{secret}`, marked sensitive so that
    /// hyper never logs or indexes it.
    pub fn header_value(&self, prefix: &str) -> HeaderValue {
        let mut raw = Zeroizing::new(Vec::with_capacity(prefix.len() + self.0.len()));
        raw.extend_from_slice(prefix.as_bytes());
        raw.extend_from_slice(&self.0);
        let mut value =
            HeaderValue::from_bytes(&raw).expect("secret bytes were checked to be visible ASCII");
        value.set_sensitive(true);
        value
    }

    /// Every byte string that an upstream could echo this secret as: raw,
    /// percent-encoded (upper and lower hex), JSON-escaped, hex, and the
    /// alignment-independent core of its standard and URL-safe base64 forms at
    /// each of the three offsets a base64 encoder can start it at.
    ///
    /// The same forms of the upper- and lower-cased secret are included, so
    /// that an upstream that changes the case and then encodes (hex of an
    /// upper-cased token, say) is caught too.
    pub fn echo_forms(&self) -> Vec<Zeroizing<Vec<u8>>> {
        let upper = Zeroizing::new(self.0.to_ascii_uppercase());
        let lower = Zeroizing::new(self.0.to_ascii_lowercase());
        let mut forms = forms_of(&self.0);
        forms.extend(forms_of(&upper));
        forms.extend(forms_of(&lower));
        forms.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
        forms.dedup_by(|a, b| a.as_slice() == b.as_slice());
        forms
    }

    /// Hands the plaintext to `seal`, the vault's encryption step, and returns
    /// what it produced.
    pub fn seal_with<T>(&self, seal: impl FnOnce(&[u8]) -> T) -> T {
        seal(&self.0)
    }

    /// The secret as a form parameter for the broker's own requests to a
    /// provider's token or revocation endpoint (a refresh token being spent
    /// or a token being revoked). Nothing else may call it.
    pub(crate) fn oauth_param(&self) -> String {
        String::from_utf8(self.0.to_vec()).expect("secret bytes were checked to be visible ASCII")
    }

    /// Length of the secret in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a secret has at least [`MIN_SECRET_LEN`] bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The echo forms of one spelling of a secret; see [`Secret::echo_forms`].
fn forms_of(raw: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms: Vec<Zeroizing<Vec<u8>>> = vec![Zeroizing::new(raw.to_vec())];

    let mut percent_upper = Zeroizing::new(Vec::new());
    let mut percent_symbols = Zeroizing::new(Vec::new());
    let mut percent_all = Zeroizing::new(Vec::new());
    let mut json = Zeroizing::new(Vec::new());
    for &b in raw.iter() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            percent_upper.push(b);
        } else {
            percent_upper.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
        // Encoders that escape every byte but letters and digits.
        if b.is_ascii_alphanumeric() {
            percent_symbols.push(b);
        } else {
            percent_symbols.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
        percent_all.extend_from_slice(format!("%{b:02X}").as_bytes());
        match b {
            b'/' | b'"' | b'\\' => json.extend_from_slice(&[b'\\', b]),
            _ => json.push(b),
        }
    }
    let percent_lower = Zeroizing::new(lowercase_escapes(&percent_upper));
    let percent_all_lower = Zeroizing::new(lowercase_escapes(&percent_all));
    let percent_symbols_lower = Zeroizing::new(lowercase_escapes(&percent_symbols));
    forms.extend([
        percent_upper,
        percent_lower,
        percent_symbols,
        percent_symbols_lower,
        percent_all,
        percent_all_lower,
        json,
    ]);

    let hex_lower = Zeroizing::new(hex::encode(raw).into_bytes());
    let hex_upper = Zeroizing::new(hex::encode_upper(raw).into_bytes());
    forms.extend([hex_lower, hex_upper]);

    // A base64 encoder groups input in threes, so the secret's encoding
    // depends on where in a group it starts. Skip the bytes that share a
    // group with unknown neighbours; the rest encodes the same anywhere.
    for offset in 0..3 {
        let start = (3 - offset) % 3;
        let whole = (raw.len() - start) / 3 * 3;
        let core = &raw[start..start + whole];
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            forms.push(Zeroizing::new(engine.encode(core).into_bytes()));
        }
    }
    forms
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

fn lowercase_escapes(encoded: &[u8]) -> Vec<u8> {
    let mut out = encoded.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i] == b'%' {
            for b in out.iter_mut().skip(i + 1).take(2) {
                b.make_ascii_lowercase();
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = secret("canary-0123456789abcdef");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn short_or_spaced_values_are_refused() {
        assert_eq!(
            Secret::new(b"short".to_vec()),
            Err(SecretError::TooShort(5))
        );
        assert_eq!(
            Secret::new(b"has a space in it!!".to_vec()),
            Err(SecretError::BadByte(3))
        );
        assert_eq!(secret("  trimmed-token-value-123\n").len(), 23);
    }

    #[test]
    fn header_value_is_sensitive() {
        let v = secret("abcdefghijklmnopq").header_value("Bearer ");
        assert!(v.is_sensitive());
        assert_eq!(v.as_bytes(), b"Bearer abcdefghijklmnopq");
    }

    #[test]
    fn base64_forms_match_at_every_alignment() {
        let s = secret("tok/en+with=odd-chars_0123456789");
        let forms = s.echo_forms();
        for prefix in ["", "a", "ab", "abc", "Authorization: Bearer "] {
            let text = format!("{prefix}tok/en+with=odd-chars_0123456789 trailing");
            for encoded in [STANDARD.encode(&text), URL_SAFE_NO_PAD.encode(&text)] {
                assert!(
                    forms.iter().any(|f| contains(encoded.as_bytes(), f)),
                    "no form found in base64 of {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn percent_and_hex_forms_are_present() {
        let s = secret("tok/en+with=odd-chars_0123456789");
        let forms = s.echo_forms();
        for needle in [
            "tok%2Fen%2Bwith%3Dodd-chars_0123456789",
            "tok%2fen%2bwith%3dodd-chars_0123456789",
            "tok\\/en+with=odd-chars_0123456789",
            // Regression: an encoder that escapes every non-alphanumeric
            // byte, `-` and `_` included, got the token past the guard.
            "tok%2Fen%2Bwith%3Dodd%2Dchars%5F0123456789",
            "tok%2fen%2bwith%3dodd%2dchars%5f0123456789",
        ] {
            assert!(
                forms.iter().any(|f| f.as_slice() == needle.as_bytes()),
                "{needle}"
            );
        }
        let hex = hex::encode("tok/en+with=odd-chars_0123456789");
        assert!(forms.iter().any(|f| f.as_slice() == hex.as_bytes()));
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
