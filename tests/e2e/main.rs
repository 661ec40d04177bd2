//! End-to-end tests: the real `fetch` component, the real `airlock` binary,
//! and httpbin (from PyPI) as the upstream, all on loopback.

mod audit;
mod canary;
mod fetch;
mod hostile;
mod mcp_consent;
mod mcp_http;
mod mcp_stdio;
mod serve_api;
mod serve_auth;
mod serve_support;
mod support;
mod sweep;
