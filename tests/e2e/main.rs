//! End-to-end tests: the real `fetch` component, the real `airlock` binary,
//! and real peers on loopback: httpbin (from PyPI) as the upstream, and
//! `oidc-provider` (from npm) as the OAuth authorization server.

mod canary;
mod fetch;
mod oauth_canary;
mod oauth_kill;
mod oauth_link;
mod oauth_presets;
mod oauth_refresh;
mod oauth_support;
mod support;
mod vault_cli;
