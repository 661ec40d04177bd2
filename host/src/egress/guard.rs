//! The response guard: removes every echo of the injected secret from a
//! response before the guest can read it, and enforces the body limits.
//!
//! Header values are rewritten whole. The body is rewritten as it streams:
//! the last `longest form - 1` bytes of each chunk are held back until the
//! next chunk arrives, so a copy that straddles two chunks is still found.
//! A gzip or deflate body is decoded first (see [`super::decode`]), and
//! trailers are redacted like headers.
//!
//! # What counts as an echo
//!
//! Every form of [`Secret::echo_forms`] (raw, JSON-escaped, percent-encoded,
//! hex, and the base64 and base64url cores), matched ignoring ASCII case,
//! so an upstream that upper- or lower-cases what it echoes is caught. Case
//! is ignored for the base64 forms too, although a case change alters the
//! bytes they decode to: the change is undone by trial. Each group of four
//! base64 characters decodes on its own to three bytes; a case-folded group
//! has at most 16 case variants, and a wrong variant seldom decodes to the
//! visible ASCII a secret is made of, so a guest holding a case-folded
//! base64 echo narrows each group to one or two candidates and the token to
//! a few dozen (see the test `case_folded_base64_is_recoverable`). Ignoring
//! case costs nothing in practice: an unrelated match needs at least 16
//! base64 characters equal but for case.
//!
//! An encoding applied after a case change (the hex, base64 or all-escaped
//! percent form of the upper- or lower-cased token) is found too:
//! [`Secret::echo_forms`] includes the forms of both case-folded spellings.
//!
//! # What one response cannot show
//!
//! The guard sees one response at a time. A secret echoed in pieces across
//! responses, none holding a whole form, reaches the guest piece by piece,
//! and the guest joins them: the first goal of the threat model ("no secret
//! reaches the guest") then rests on the grants, not on the guard. The
//! generic way to ask for pieces is closed: a request that carries an
//! injected token may not set `Range` or `If-Range` ([`is_slicing_header`];
//! the gate denies it as `forbidden_header`). What stays open is slicing an
//! upstream offers in its own terms (an echo with an offset or length
//! parameter, a paginated or truncated reflection of request headers): no
//! generic rule recognizes it, so granting such an endpoint on a token's
//! audience amounts to granting the token to the tool; grant a tool the
//! endpoints it needs rather than a whole audience (`/**`).

use super::CallContext;
use super::decode::{Coding, DecodeError, Decoder, Unsupported};
use crate::secret::Secret;
use aho_corasick::{AhoCorasick, MatchKind};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::Error as HttpError;

/// What an echo of a secret is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Finds and replaces the encodings of one or more secrets.
#[derive(Debug, Clone)]
pub struct Redactor {
    matcher: Arc<AhoCorasick>,
    hold: usize,
}

impl Redactor {
    /// A redactor for every echo form of `secrets`.
    pub fn new(secrets: &[&Secret]) -> Redactor {
        let forms: Vec<_> = secrets.iter().flat_map(|s| s.echo_forms()).collect();
        let hold = forms.iter().map(|f| f.len()).max().unwrap_or(1) - 1;
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(forms.iter().map(|f| f.as_slice()))
            .expect("secret forms build an automaton");
        Redactor {
            matcher: Arc::new(matcher),
            hold,
        }
    }

    /// Redacts a complete value; returns it and the number of replacements.
    pub fn redact(&self, input: &[u8]) -> (Vec<u8>, u64) {
        let mut out = Vec::with_capacity(input.len());
        let mut count = 0;
        let mut cursor = 0;
        for m in self.matcher.find_iter(input) {
            out.extend_from_slice(&input[cursor..m.start()]);
            out.extend_from_slice(REDACTED);
            cursor = m.end();
            count += 1;
        }
        out.extend_from_slice(&input[cursor..]);
        (out, count)
    }

    /// Redacts `headers` in place: values are rewritten, and a header
    /// whose name holds an echo (a name cannot hold `[REDACTED]`) is
    /// dropped. Returns the number of replacements.
    pub fn redact_headers(&self, headers: &mut http::HeaderMap) -> u64 {
        let mut count = 0;
        let names: Vec<http::HeaderName> = headers.keys().cloned().collect();
        for name in names {
            let (_, n) = self.redact(name.as_str().as_bytes());
            if n > 0 {
                count += n;
                headers.remove(&name);
            }
        }
        for value in headers.values_mut() {
            let (clean, n) = self.redact(value.as_bytes());
            if n > 0 {
                count += n;
                *value = http::HeaderValue::from_bytes(&clean)
                    .unwrap_or(http::HeaderValue::from_static("[REDACTED]"));
            }
        }
        count
    }
}

/// Whether a request header asks for a slice of the response (`Range`,
/// `If-Range`), ignoring ASCII case. A request that carries an injected
/// token may not set one: each slice of an echo would pass the guard alone.
pub fn is_slicing_header(name: &str) -> bool {
    ["range", "if-range"]
        .iter()
        .any(|slicing| slicing.eq_ignore_ascii_case(name))
}

/// Cleans the head of a response that answered a request carrying a
/// secret: redacts its headers and picks how to decode its body. Returns the
/// number of redactions and the decoder, or the error the guest gets for a
/// coding the guard cannot look inside.
pub(super) fn guard_head(
    redactor: &Redactor,
    parts: &mut http::response::Parts,
    limit: u64,
) -> Result<(u64, Option<Decoder>), HttpError> {
    let redactions = redactor.redact_headers(&mut parts.headers);
    let coding = Coding::of(&parts.headers)
        .map_err(|Unsupported(named)| HttpError::HttpResponseContentCoding(Some(named)))?;
    // The guest gets the decoded body, framed anew.
    for name in [
        http::header::CONTENT_LENGTH,
        http::header::CONTENT_ENCODING,
        http::header::TRANSFER_ENCODING,
    ] {
        parts.headers.remove(name);
    }
    Ok((redactions, Decoder::new(&coding, limit)))
}

/// Streaming state of the redactor over one body.
#[derive(Debug)]
struct Stream {
    redactor: Redactor,
    held: Vec<u8>,
}

impl Stream {
    /// Feeds a chunk; returns the bytes that are safe to release.
    fn push(&mut self, chunk: &[u8], count: &AtomicU64) -> Vec<u8> {
        self.held.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.held);
        // Any copy starting before `safe` lies wholly inside `buf`.
        let safe = buf.len().saturating_sub(self.redactor.hold);

        let mut out = Vec::with_capacity(buf.len());
        let mut cursor = 0;
        for m in self.redactor.matcher.find_iter(&buf) {
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&buf[cursor..m.start()]);
            out.extend_from_slice(REDACTED);
            cursor = m.end();
            count.fetch_add(1, Ordering::Relaxed);
        }
        let release = cursor.max(safe);
        out.extend_from_slice(&buf[cursor..release]);
        self.held = buf[release..].to_vec();
        out
    }

    /// Releases what is still held at the end of the body.
    fn finish(&mut self, count: &AtomicU64) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        let (out, n) = self.redactor.redact(&held);
        count.fetch_add(n, Ordering::Relaxed);
        out
    }
}

/// Counters a guarded body updates, read by the audit record.
#[derive(Debug, Default)]
pub struct BodyStats {
    /// Bytes received from the upstream.
    pub bytes: AtomicU64,
    /// Echoes replaced.
    pub redactions: AtomicU64,
}

/// A response body with a size cap, a between-bytes timeout and, when a
/// secret was injected, decoding and redaction of its data and trailers.
pub struct GuardedBody<B> {
    inner: B,
    stream: Option<Stream>,
    decoder: Option<Decoder>,
    limit: u64,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    stats: Arc<BodyStats>,
    done: bool,
    trailers: Option<http::HeaderMap>,
    call: Arc<CallContext>,
    on_end: Option<Box<dyn FnOnce(&BodyStats) + Send>>,
}

impl<B> GuardedBody<B> {
    /// Guards `inner`, decoding it with `decoder` first when there is one.
    /// A body over `limit` bytes (received or decoded) fails and trips the
    /// call's `max_response_bytes` limit. `on_end` runs once when the body
    /// ends, fails or is dropped.
    pub(super) fn new(
        inner: B,
        redactor: Option<Redactor>,
        decoder: Option<Decoder>,
        limit: u64,
        idle: Duration,
        call: Arc<CallContext>,
        on_end: Box<dyn FnOnce(&BodyStats) + Send>,
    ) -> Self {
        GuardedBody {
            inner,
            stream: redactor.map(|redactor| Stream {
                redactor,
                held: Vec::new(),
            }),
            decoder,
            limit,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            stats: Arc::default(),
            done: false,
            trailers: None,
            call,
            on_end: Some(on_end),
        }
    }

    fn end(&mut self) {
        self.done = true;
        if let Some(f) = self.on_end.take() {
            f(&self.stats);
        }
    }

    fn fail(&mut self, error: HttpError) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let HttpError::HttpResponseBodySize(_) = error {
            self.call.trip("max_response_bytes", self.limit);
        }
        self.end();
        Poll::Ready(Some(Err(error)))
    }

    /// Decodes, counts and redacts one data frame.
    fn data(&mut self, frame: Bytes) -> Result<Bytes, HttpError> {
        let received = self
            .stats
            .bytes
            .fetch_add(data_len(&frame), Ordering::Relaxed);
        if received + data_len(&frame) > self.limit {
            return Err(HttpError::HttpResponseBodySize(Some(self.limit)));
        }
        let plain = match self.decoder.as_mut() {
            Some(d) => Bytes::from(d.push(&frame).map_err(decode_error)?),
            None => frame,
        };
        Ok(self.redact(plain))
    }

    /// Ends decoding and redaction; returns what they still held.
    fn tail(&mut self) -> Result<Bytes, HttpError> {
        let decoded = match self.decoder.as_mut() {
            Some(d) => d.finish().map_err(decode_error)?,
            None => Vec::new(),
        };
        let mut rest = self.stream_push(decoded);
        if let Some(s) = self.stream.as_mut() {
            rest.extend(s.finish(&self.stats.redactions));
        }
        Ok(Bytes::from(rest))
    }

    fn redact(&mut self, plain: Bytes) -> Bytes {
        match self.stream.is_some() {
            true => Bytes::from(self.stream_push(plain.to_vec())),
            false => plain,
        }
    }

    fn stream_push(&mut self, plain: Vec<u8>) -> Vec<u8> {
        match self.stream.as_mut() {
            Some(s) => s.push(&plain, &self.stats.redactions),
            None => plain,
        }
    }
}

impl<B> Drop for GuardedBody<B> {
    fn drop(&mut self) {
        self.end();
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<HttpError>,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        loop {
            if let Some(trailers) = this.trailers.take() {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => {
                    if this.timer.as_mut().poll(cx).is_ready() {
                        return this.fail(HttpError::ConnectionReadTimeout);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(e))) => return this.fail(e.into()),
                Poll::Ready(None) => {
                    let tail = match this.tail() {
                        Ok(tail) => tail,
                        Err(e) => return this.fail(e),
                    };
                    this.end();
                    if tail.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            this.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + this.idle);
            let frame = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    let Ok(mut trailers) = frame.into_trailers() else {
                        continue;
                    };
                    // Trailers come last: release what is held, then them.
                    let tail = match this.tail() {
                        Ok(tail) => tail,
                        Err(e) => return this.fail(e),
                    };
                    if let Some(s) = &this.stream {
                        let n = s.redactor.redact_headers(&mut trailers);
                        this.stats.redactions.fetch_add(n, Ordering::Relaxed);
                    }
                    this.trailers = Some(trailers);
                    this.end();
                    if tail.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
            };
            match this.data(frame) {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Err(e) => return this.fail(e),
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Decoding and redaction change the length, so promise nothing.
        SizeHint::default()
    }
}

fn decode_error(e: DecodeError) -> HttpError {
    match e {
        DecodeError::TooLarge(limit) => HttpError::HttpResponseBodySize(Some(limit)),
        DecodeError::Invalid(_) => HttpError::HttpResponseContentCoding(Some(e.to_string())),
    }
}

fn data_len(b: &Bytes) -> u64 {
    b.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const TOKEN: &str = "canary-tok/en+0123456789abcdef";

    fn redactor() -> Redactor {
        Redactor::new(&[&Secret::new(TOKEN.as_bytes().to_vec()).unwrap()])
    }

    fn stream_through(chunks: &[&[u8]]) -> (String, u64) {
        let mut s = Stream {
            redactor: redactor(),
            held: vec![],
        };
        let count = AtomicU64::new(0);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c, &count));
        }
        out.extend(s.finish(&count));
        (
            String::from_utf8(out).unwrap(),
            count.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn copy_split_at_every_point_is_redacted() {
        let body = format!("{{\"Authorization\": \"Bearer {TOKEN}\"}}");
        for split in 0..=body.len() {
            let (a, b) = body.as_bytes().split_at(split);
            let (out, n) = stream_through(&[a, b]);
            assert_eq!(
                out, "{\"Authorization\": \"Bearer [REDACTED]\"}",
                "split at {split}"
            );
            assert_eq!(n, 1);
        }
    }

    #[test]
    fn byte_at_a_time_stream_is_redacted() {
        let body = format!("x{TOKEN}y{TOKEN}z");
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(
            stream_through(&chunks),
            ("x[REDACTED]y[REDACTED]z".into(), 2)
        );
    }

    #[test]
    fn encoded_echoes_are_redacted() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {TOKEN}"));
        let pct = "canary-tok%2Fen%2B0123456789abcdef";
        for text in [b64.as_str(), pct] {
            let (out, n) = redactor().redact(text.as_bytes());
            assert!(n >= 1, "{text}");
            assert!(String::from_utf8(out).unwrap().contains("[REDACTED]"));
        }
    }

    #[test]
    fn header_names_holding_an_echo_are_dropped() {
        let mut headers = http::HeaderMap::new();
        let name = http::HeaderName::from_bytes(format!("x-{TOKEN}").as_bytes()).unwrap_or_else(
            // The test token has a `/`, not a token character: use its hex.
            |_| {
                http::HeaderName::from_bytes(format!("x-{}", hex::encode(TOKEN)).as_bytes())
                    .unwrap()
            },
        );
        headers.insert(name, http::HeaderValue::from_static("1"));
        headers.insert("x-fine", http::HeaderValue::from_static("yes"));
        headers.insert(
            "x-echo",
            http::HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        );
        assert_eq!(redactor().redact_headers(&mut headers), 2);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["x-fine"], "yes");
        assert_eq!(headers["x-echo"], "Bearer [REDACTED]");
    }

    #[test]
    fn encodings_of_a_case_changed_token_are_redacted() {
        use base64::Engine as _;
        for folded in [TOKEN.to_ascii_uppercase(), TOKEN.to_ascii_lowercase()] {
            for text in [
                hex::encode(&folded),
                hex::encode_upper(&folded),
                base64::engine::general_purpose::STANDARD.encode(format!("x{folded}")),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("xy{folded}")),
                folded
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>(),
            ] {
                let (out, n) = redactor().redact(text.as_bytes());
                let out = String::from_utf8(out).unwrap();
                assert!(n >= 1 && out.contains("[REDACTED]"), "{text} -> {out}");
                assert!(out.len() < text.len(), "{text} -> {out}");
            }
        }
    }

    #[test]
    fn case_changed_echoes_are_redacted() {
        let hex = hex::encode(TOKEN);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {TOKEN}"));
        let mixed_hex: String = hex
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        for text in [
            TOKEN.to_ascii_uppercase(),
            format!("Bearer {}", TOKEN.to_ascii_uppercase()),
            "CANARY-TOK%2fEN%2b0123456789ABCDEF".to_string(),
            "canary%2dtok%2fen%2b0123456789abcdef".to_ascii_uppercase(),
            mixed_hex,
            b64.to_ascii_lowercase(),
            b64.to_ascii_uppercase(),
        ] {
            let (out, n) = redactor().redact(text.as_bytes());
            let out = String::from_utf8(out).unwrap();
            assert!(n >= 1 && out.contains("[REDACTED]"), "{text} -> {out}");
            assert!(
                !out.to_ascii_lowercase().contains("0123456789abcdef"),
                "{out}"
            );
        }
    }

    #[test]
    fn case_changed_copy_split_at_every_point_is_redacted() {
        let body = format!("<{}>", TOKEN.to_ascii_uppercase());
        for split in 0..=body.len() {
            let (a, b) = body.as_bytes().split_at(split);
            assert_eq!(
                stream_through(&[a, b]),
                ("<[REDACTED]>".to_string(), 1),
                "split at {split}"
            );
        }
    }

    /// Why base64 forms are matched ignoring case: the guest can undo a
    /// case change group by group, keeping the variants that decode to
    /// bytes a secret may hold (visible ASCII).
    #[test]
    fn case_folded_base64_is_recoverable() {
        use base64::engine::general_purpose::STANDARD;
        let folded = STANDARD.encode(TOKEN).to_ascii_lowercase();
        let mut candidates: Vec<Vec<u8>> = vec![vec![]];
        let mut variants_tried = 1u64;
        for group in folded.as_bytes().chunks(4) {
            let letters: Vec<usize> = (0..group.len())
                .filter(|&i| group[i].is_ascii_alphabetic())
                .collect();
            variants_tried <<= letters.len();
            let mut fits = Vec::new();
            for mask in 0..1u32 << letters.len() {
                let mut g = group.to_vec();
                for (bit, &i) in letters.iter().enumerate() {
                    if mask >> bit & 1 == 1 {
                        g[i].make_ascii_uppercase();
                    }
                }
                if let Ok(bytes) = STANDARD.decode(&g)
                    && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
                {
                    fits.push(bytes);
                }
            }
            candidates = candidates
                .iter()
                .flat_map(|c| fits.iter().map(move |f| [c.as_slice(), f].concat()))
                .collect();
        }
        assert!(candidates.iter().any(|c| c == TOKEN.as_bytes()));
        assert!(
            candidates.len() <= 64,
            "{} candidates of {variants_tried} case variants",
            candidates.len()
        );
        assert!(variants_tried > 1 << 30);
    }

    #[test]
    fn only_range_headers_slice_a_response() {
        for name in ["Range", "range", "IF-RANGE", "If-Range"] {
            assert!(is_slicing_header(name), "{name}");
        }
        for name in ["accept-ranges", "content-range", "x-range", "ranges"] {
            assert!(!is_slicing_header(name), "{name}");
        }
    }

    #[test]
    fn unrelated_text_is_untouched() {
        let text = b"nothing to see here, canary-tok but not the rest";
        assert_eq!(
            stream_through(&[text]),
            (String::from_utf8(text.to_vec()).unwrap(), 0)
        );
    }
}
