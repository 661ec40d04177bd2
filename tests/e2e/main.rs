//! End-to-end tests: the real `fetch` component, the real `airlock` binary,
//! and httpbin (from PyPI) as the upstream, all on loopback.

mod canary;
mod declare;
mod fetch;
mod support;
