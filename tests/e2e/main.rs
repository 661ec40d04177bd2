//! End-to-end tests: the real `fetch` component, the real `airlock` binary,
//! and httpbin (from PyPI) as the upstream, all on loopback.

mod audit;
mod canary;
mod fetch;
mod hostile;
mod support;
mod sweep;
