//! The `fetch` example tool: the most common agent tool, an HTTP client.
//!
//! It holds no credentials. The host decides whether each request may go
//! out, attaches the user's token itself, and removes any echo of it from the
//! response before this code can read it.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "airlock-examples:fetch/fetch-tool",
    generate_all,
});

use exports::airlock_examples::fetch::http::{Guest, Header, Response};
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

/// Largest response body this tool reads, in bytes.
const MAX_BODY: usize = 16 << 20;

struct Fetch;

impl Guest for Fetch {
    fn fetch(url: String, method: Option<String>, headers: Option<Vec<Header>>, body: Option<String>) -> Result<Response, String> {
        let (scheme, authority, path) = split_url(&url)?;
        let fields = Fields::new();
        let headers = headers.unwrap_or_default();
        let has_length = headers.iter().any(|h| h.name.eq_ignore_ascii_case("content-length"));
        if let (Some(body), false) = (&body, has_length) {
            // Declare the length so servers that refuse chunked uploads work.
            fields.append("content-length", body.len().to_string().as_bytes()).map_err(|e| format!("content-length refused: {e:?}"))?;
        }
        let has_agent = headers.iter().any(|h| h.name.eq_ignore_ascii_case("user-agent"));
        if let (false, Some(agent)) = (has_agent, airlock::tool::config::get("user_agent")) {
            // The operator's value, or the default from this tool's declaration.
            fields.append("user-agent", agent.as_bytes()).map_err(|e| format!("user-agent refused: {e:?}"))?;
        }
        for h in headers {
            fields
                .append(&h.name, h.value.as_bytes())
                .map_err(|e| format!("header {:?} refused: {e:?}", h.name))?;
        }

        let request = OutgoingRequest::new(fields);
        request.set_method(&parse_method(method.as_deref().unwrap_or("GET"))).map_err(|()| "invalid method".to_string())?;
        request.set_scheme(Some(&scheme)).map_err(|()| "invalid scheme".to_string())?;
        request.set_authority(Some(&authority)).map_err(|()| format!("invalid authority {authority:?}"))?;
        request.set_path_with_query(Some(&path)).map_err(|()| format!("invalid path {path:?}"))?;
        let outgoing = request.body().map_err(|()| "request body unavailable".to_string())?;

        // Hand the request over first, so the host reads the body while it
        // is written and a large body cannot fill the buffer and stall.
        let pending = outgoing_handler::handle(request, None).map_err(describe)?;
        if let Some(body) = body {
            let stream = outgoing.write().map_err(|()| "request body stream unavailable".to_string())?;
            for chunk in body.as_bytes().chunks(4096) {
                stream.blocking_write_and_flush(chunk).map_err(|e| format!("writing request body: {}", stream_error(e)))?;
            }
        }
        OutgoingBody::finish(outgoing, None).map_err(describe)?;

        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or("response not ready")?
            .map_err(|()| "response already taken")?
            .map_err(describe)?;

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| Header { name, value: String::from_utf8_lossy(&value).into_owned() })
            .collect();
        let incoming = response.consume().map_err(|()| "response body unavailable".to_string())?;
        let stream = incoming.stream().map_err(|()| "response body stream unavailable".to_string())?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_BODY {
                        return Err(format!("response body larger than {MAX_BODY} bytes"));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("reading response body: {}", stream_error(e))),
            }
        }
        Ok(Response { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
    }
}

/// Splits `scheme://authority/path?query` without normalizing anything: the
/// host canonicalizes and checks the parts itself.
fn split_url(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("url {url:?} has no scheme"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok((scheme, authority.to_string(), path))
}

fn parse_method(m: &str) -> Method {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(m.to_string()),
    }
}

/// The WIT name of an error, so callers can match on it.
fn describe(e: ErrorCode) -> String {
    match e {
        ErrorCode::HttpRequestDenied => "HTTP-request-denied".to_string(),
        other => format!("{other:?}"),
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "closed".to_string(),
        StreamError::LastOperationFailed(err) => err.to_debug_string(),
    }
}

export!(Fetch);
