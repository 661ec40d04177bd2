//! Content codings of responses that carry an echo risk.
//!
//! When a token was attached, the response guard must see the body as the
//! guest will: an echo inside a gzip stream is invisible to a byte search.
//! The host therefore decodes `gzip` and `deflate` itself, streaming, with
//! the decoded size capped by the response limit (so a gzip bomb stops at
//! the cap, never at the end of the bomb), and refuses every other coding.

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use std::io::Write as _;

/// Longest coding name quoted back in an error.
const MAX_CODING_NAME: usize = 32;

/// How a response body is encoded, once every layer is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coding {
    /// Plain bytes.
    Identity,
    /// `gzip` or `x-gzip`.
    Gzip,
    /// `deflate`: zlib-wrapped as the RFC says, or raw as some servers send.
    Deflate,
}

/// A coding the guard cannot look inside; the response is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl Coding {
    /// Reads the layers of `Content-Encoding` and of `Transfer-Encoding`
    /// (other than `chunked`, which the HTTP client removes). One layer of
    /// gzip or deflate is decoded; anything else, stacked layers included,
    /// is [`Unsupported`] with the codings named (at most 32 bytes, visible
    /// ASCII only, since the upstream chose them).
    pub fn of(headers: &http::HeaderMap) -> Result<Coding, Unsupported> {
        let mut layers = Vec::new();
        for (name, skip) in [
            (http::header::TRANSFER_ENCODING, "chunked"),
            (http::header::CONTENT_ENCODING, "identity"),
        ] {
            for value in headers.get_all(name) {
                let text = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
                layers.extend(
                    text.split(',')
                        .map(|c| c.trim().to_string())
                        .filter(|c| !c.is_empty() && c != skip),
                );
            }
        }
        match layers.as_slice() {
            [] => Ok(Coding::Identity),
            [one] if one == "gzip" || one == "x-gzip" => Ok(Coding::Gzip),
            [one] if one == "deflate" => Ok(Coding::Deflate),
            _ => Err(Unsupported(quote(&layers.join(", ")))),
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The decoded body passed the limit.
    #[error("decoded body is larger than {0} bytes")]
    TooLarge(u64),
    /// The bytes are not valid for their coding.
    #[error("response body is not valid {0}")]
    Invalid(&'static str),
}

/// A streaming decoder with a cap on the bytes it will ever produce.
pub struct Decoder {
    state: State,
    limit: u64,
    produced: u64,
}

enum State {
    Gzip(GzDecoder<Sink>),
    /// Deflate before its first two bytes show whether it is zlib-wrapped.
    Sniff(Vec<u8>),
    Zlib(ZlibDecoder<Sink>),
    Raw(DeflateDecoder<Sink>),
}

/// Where a decoder writes: refuses to grow past its budget, so decoding
/// stops within one internal buffer (32 KiB) of the cap.
struct Sink {
    out: Vec<u8>,
    budget: u64,
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() as u64 + buf.len() as u64 > self.budget {
            return Err(std::io::Error::other(TOO_LARGE));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOO_LARGE: &str = "decoded body over the limit";

impl Decoder {
    /// A decoder for `coding` that fails once more than `limit` decoded
    /// bytes would come out. `None` for [`Coding::Identity`].
    pub fn new(coding: &Coding, limit: u64) -> Option<Decoder> {
        let state = match coding {
            Coding::Identity => return None,
            Coding::Gzip => State::Gzip(GzDecoder::new(Sink::new(limit))),
            Coding::Deflate => State::Sniff(Vec::new()),
        };
        Some(Decoder {
            state,
            limit,
            produced: 0,
        })
    }

    /// Decodes `input`; returns the plain bytes it completed.
    pub fn push(&mut self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        if let State::Sniff(seen) = &mut self.state {
            seen.extend_from_slice(input);
            if seen.len() < 2 {
                return Ok(Vec::new());
            }
            let head = std::mem::take(seen);
            let budget = self.limit - self.produced;
            // A zlib header: compression method 8 and a check multiple of 31.
            self.state = if head[0] & 0x0f == 8 && u16::from_be_bytes([head[0], head[1]]) % 31 == 0
            {
                State::Zlib(ZlibDecoder::new(Sink::new(budget)))
            } else {
                State::Raw(DeflateDecoder::new(Sink::new(budget)))
            };
            return self.push(&head);
        }
        let (result, sink) = match &mut self.state {
            State::Gzip(d) => (d.write_all(input), d.get_mut()),
            State::Zlib(d) => (d.write_all(input), d.get_mut()),
            State::Raw(d) => (d.write_all(input), d.get_mut()),
            State::Sniff(_) => unreachable!("handled above"),
        };
        let out = sink.take();
        self.produced += out.len() as u64;
        result.map_err(|e| self.error(&e))?;
        Ok(out)
    }

    /// Ends the stream; returns the last plain bytes. A stream cut short is
    /// an error: its end was never seen, so neither was all of the body.
    pub fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let (result, sink) = match &mut self.state {
            State::Gzip(d) => (d.try_finish(), d.get_mut()),
            State::Zlib(d) => (d.try_finish(), d.get_mut()),
            State::Raw(d) => (d.try_finish(), d.get_mut()),
            State::Sniff(seen) if seen.is_empty() => return Ok(Vec::new()),
            State::Sniff(_) => return Err(DecodeError::Invalid("deflate")),
        };
        let out = sink.take();
        self.produced += out.len() as u64;
        result.map_err(|e| self.error(&e))?;
        Ok(out)
    }

    fn error(&self, err: &std::io::Error) -> DecodeError {
        if err.to_string() == TOO_LARGE {
            return DecodeError::TooLarge(self.limit);
        }
        DecodeError::Invalid(match self.state {
            State::Gzip(_) => "gzip",
            _ => "deflate",
        })
    }
}

impl Sink {
    fn new(budget: u64) -> Sink {
        Sink {
            out: Vec::new(),
            budget,
        }
    }

    /// Hands over what was written so far; the budget shrinks by as much.
    fn take(&mut self) -> Vec<u8> {
        let out = std::mem::take(&mut self.out);
        self.budget -= out.len() as u64;
        out
    }
}

/// `text` cut to [`MAX_CODING_NAME`] bytes of visible ASCII.
fn quote(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_CODING_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_in_chunks(
        coding: Coding,
        data: &[u8],
        chunk: usize,
        limit: u64,
    ) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(&coding, limit).unwrap();
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            out.extend(d.push(c)?);
        }
        out.extend(d.finish()?);
        Ok(out)
    }

    #[test]
    fn codings_are_read_from_both_headers() {
        assert_eq!(Coding::of(&headers(&[])), Ok(Coding::Identity));
        assert_eq!(
            Coding::of(&headers(&[("content-encoding", "identity")])),
            Ok(Coding::Identity)
        );
        assert_eq!(
            Coding::of(&headers(&[("content-encoding", "GZip")])),
            Ok(Coding::Gzip)
        );
        assert_eq!(
            Coding::of(&headers(&[("transfer-encoding", "gzip, chunked")])),
            Ok(Coding::Gzip)
        );
        assert_eq!(
            Coding::of(&headers(&[("content-encoding", "deflate")])),
            Ok(Coding::Deflate)
        );
    }

    #[test]
    fn stacked_and_unknown_codings_are_unsupported() {
        for (name, value, named) in [
            ("content-encoding", "br", "br"),
            ("content-encoding", "gzip, gzip", "gzip, gzip"),
            ("transfer-encoding", "gzip, chunked", "gzip, gzip"),
            ("content-encoding", "zstd", "zstd"),
        ] {
            let mut h = headers(&[(name, value)]);
            if named == "gzip, gzip" && name == "transfer-encoding" {
                h.append("content-encoding", "gzip".parse().unwrap());
            }
            assert_eq!(Coding::of(&h), Err(Unsupported(named.into())), "{value}");
        }
        let long = "x".repeat(100);
        let Err(Unsupported(named)) = Coding::of(&headers(&[("content-encoding", &long)])) else {
            panic!("a long coding name was accepted");
        };
        assert_eq!(named.len(), MAX_CODING_NAME);
    }

    #[test]
    fn gzip_decodes_at_every_chunk_size() {
        let plain: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let packed = gzip(&plain);
        for chunk in [1, 7, 512, packed.len()] {
            assert_eq!(
                decode_in_chunks(Coding::Gzip, &packed, chunk, 1 << 20).unwrap(),
                plain,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn deflate_decodes_zlib_and_raw() {
        let plain = b"the same text, twice: the same text, twice".repeat(40);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&plain).unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&plain).unwrap();
        for packed in [z.finish().unwrap(), r.finish().unwrap()] {
            for chunk in [1, 3, packed.len()] {
                assert_eq!(
                    decode_in_chunks(Coding::Deflate, &packed, chunk, 1 << 20).unwrap(),
                    plain
                );
            }
        }
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros packs into about 64 KiB.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 256 << 10, "bomb is {} bytes", bomb.len());

        let mut d = Decoder::new(&Coding::Gzip, 1 << 20).unwrap();
        let mut out = 0;
        let mut err = None;
        for c in bomb.chunks(16 << 10) {
            match d.push(c) {
                Ok(o) => out += o.len(),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err, Some(DecodeError::TooLarge(1 << 20)));
        assert!(out <= 1 << 20, "released {out} bytes");
    }

    #[test]
    fn truncated_and_garbage_streams_are_invalid() {
        let packed = gzip(b"hello hello hello hello");
        assert_eq!(
            decode_in_chunks(Coding::Gzip, &packed[..packed.len() - 4], 5, 1 << 20),
            Err(DecodeError::Invalid("gzip"))
        );
        assert_eq!(
            decode_in_chunks(Coding::Gzip, b"definitely not gzip", 5, 1 << 20),
            Err(DecodeError::Invalid("gzip"))
        );
        assert_eq!(
            decode_in_chunks(Coding::Deflate, b"\xff\xff\xff\xff not deflate", 5, 1 << 20),
            Err(DecodeError::Invalid("deflate"))
        );
    }
}
