//! End-to-end tests: the real `fetch` component, the real `airlock` binary,
//! and real peers on loopback: httpbin (from PyPI) as the upstream, and
//! `oidc-provider` (from npm) as the OAuth authorization server.

mod audit;
mod canary;
mod clients;
mod declare;
mod fetch;
mod hostile;
mod mcp_consent;
mod mcp_http;
mod mcp_stdio;
mod oauth_canary;
mod oauth_kill;
mod oauth_link;
mod oauth_presets;
mod oauth_refresh;
mod oauth_support;
mod pool;
mod serve_api;
mod serve_auth;
mod serve_support;
mod support;
mod sweep;
mod vault_cli;
