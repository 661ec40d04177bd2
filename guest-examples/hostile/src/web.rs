//! Outbound HTTP used to smuggle, exfiltrate, flood and redirect.

use crate::Hostile;
use crate::exports::airlock_examples::hostile::web::{Guest, Header, Request, Response};
use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use crate::wasi::io::streams::{OutputStream, StreamError};

impl Guest for Hostile {
    fn send(request: Request) -> Result<Response, String> {
        let (outgoing, body) = build(&request)?;
        let pending = outgoing_handler::handle(outgoing, None).map_err(describe)?;
        write_body(body, request.body.as_deref().unwrap_or("").as_bytes())?;
        receive(pending)
    }

    fn follow(request: Request, hops: u32) -> Result<Response, String> {
        let mut request = request;
        for _ in 0..=hops {
            let response = Self::send(request.clone())?;
            let location = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("location"));
            match location {
                Some(l) if (300..400).contains(&response.status) => redirect(&mut request, &l.value)?,
                _ => return Ok(response),
            }
        }
        Err(format!("more than {hops} redirects"))
    }

    fn burst(request: Request, count: u32) -> Result<u32, String> {
        let mut answered = 0;
        for i in 0..count {
            Self::send(request.clone()).map_err(|e| format!("request {i}: {e}"))?;
            answered += 1;
        }
        Ok(answered)
    }

    fn upload(request: Request, bytes: u64) -> Result<Response, String> {
        let (outgoing, body) = build(&request)?;
        let pending = outgoing_handler::handle(outgoing, None).map_err(describe)?;
        let stream = body.write().map_err(|()| "body stream unavailable".to_string())?;
        let chunk = vec![b'u'; 4096];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if let Err(e) = stream.blocking_write_and_flush(&chunk[..n]) {
                return Err(format!("writing at {}: {}", bytes - left, stream_error(e)));
            }
            left -= n as u64;
        }
        drop(stream);
        OutgoingBody::finish(body, None).map_err(describe)?;
        receive(pending)
    }

    fn trap_mid_request(request: Request) -> Result<Response, String> {
        let mut request = request;
        request.headers.push(Header { name: "content-length".into(), value: "1000000".into() });
        let (outgoing, body) = build(&request)?;
        let _pending = outgoing_handler::handle(outgoing, None).map_err(describe)?;
        let stream = body.write().map_err(|()| "body stream unavailable".to_string())?;
        let _ = stream.blocking_write_and_flush(&[b'x'; 1000]);
        core::arch::wasm32::unreachable()
    }
}

/// Builds the request exactly as given, without fixing anything.
fn build(request: &Request) -> Result<(OutgoingRequest, OutgoingBody), String> {
    let fields = Fields::new();
    let has_length = request.headers.iter().any(|h| h.name.eq_ignore_ascii_case("content-length"));
    if let (Some(body), false) = (&request.body, has_length) {
        fields.append("content-length", body.len().to_string().as_bytes()).map_err(|e| format!("content-length refused: {e:?}"))?;
    }
    for h in &request.headers {
        fields.append(&h.name, h.value.as_bytes()).map_err(|e| format!("header {:?} refused: {e:?}", h.name))?;
    }
    let outgoing = OutgoingRequest::new(fields);
    outgoing.set_method(&method(&request.method)).map_err(|()| format!("method {:?} refused", request.method))?;
    outgoing.set_scheme(Some(&scheme(&request.scheme))).map_err(|()| format!("scheme {:?} refused", request.scheme))?;
    outgoing.set_authority(Some(&request.authority)).map_err(|()| format!("authority {:?} refused", request.authority))?;
    outgoing.set_path_with_query(Some(&request.path)).map_err(|()| format!("path {:?} refused", request.path))?;
    let body = outgoing.body().map_err(|()| "request body unavailable".to_string())?;
    Ok((outgoing, body))
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    if !bytes.is_empty() {
        let stream: OutputStream = body.write().map_err(|()| "body stream unavailable".to_string())?;
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("writing body: {}", stream_error(e)))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(describe)
}

/// Waits for the response and reads its body and trailers.
fn receive(pending: FutureIncomingResponse) -> Result<Response, String> {
    pending.subscribe().block();
    let response = pending.get().ok_or("response not ready")?.map_err(|()| "response already taken")?.map_err(describe)?;
    let status = response.status();
    let headers = entries(&response.headers());
    let incoming = response.consume().map_err(|()| "response body unavailable".to_string())?;
    let stream = incoming.stream().map_err(|()| "response body stream unavailable".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading body: {}", stream_error(e))),
        }
    }
    drop(stream);
    let future = IncomingBody::finish(incoming);
    future.subscribe().block();
    let trailers = match future.get() {
        Some(Ok(Ok(Some(t)))) => entries(&t),
        Some(Ok(Ok(None))) => Vec::new(),
        Some(Ok(Err(e))) => return Err(format!("trailers: {}", describe(e))),
        _ => return Err("trailers unavailable".into()),
    };
    Ok(Response { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), trailers })
}

fn entries(fields: &Fields) -> Vec<Header> {
    fields.entries().into_iter().map(|(name, value)| Header { name, value: String::from_utf8_lossy(&value).into_owned() }).collect()
}

/// Points `request` at an absolute or root-relative `location`.
fn redirect(request: &mut Request, location: &str) -> Result<(), String> {
    if let Some(path) = location.strip_prefix('/') {
        request.path = format!("/{path}");
        return Ok(());
    }
    let (scheme, rest) = location.split_once("://").ok_or_else(|| format!("location {location:?} not understood"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    request.scheme = scheme.to_string();
    request.authority = rest[..end].to_string();
    request.path = if end == rest.len() { "/".into() } else { rest[end..].to_string() };
    Ok(())
}

fn method(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn scheme(s: &str) -> Scheme {
    match s {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    }
}

/// The WIT name of an error, so tests can match on it.
fn describe(e: ErrorCode) -> String {
    match e {
        ErrorCode::HttpRequestDenied => "HTTP-request-denied".to_string(),
        other => format!("{other:?}"),
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "closed".to_string(),
        StreamError::LastOperationFailed(err) => match crate::wasi::http::types::http_error_code(&err) {
            Some(code) => describe(code),
            None => err.to_debug_string(),
        },
    }
}
