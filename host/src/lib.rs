//! Airlock runs AI-agent tools as WebAssembly components that call APIs on
//! behalf of a user without ever holding a credential.
//!
//! A tool's only way out of its sandbox is outbound HTTP through `wasi:http`.
//! Every request passes the egress gate ([`egress`]): it is checked against the
//! operator's grants ([`policy`]), the calling user's token for the matching
//! connection is attached from the vault ([`broker`], [`vault`]), and any copy
//! of that token is removed from the response before the tool sees it. The
//! [`runtime`] loads components, lists their exports as tools ([`tools`]) and
//! runs each call in a fresh instance.
//!
//! See `DESIGN.md` for the threat model and the rules every module follows.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod broker;
pub mod egress;
pub mod manifest;
pub mod policy;
pub mod runtime;
pub mod secret;
pub mod serve;
pub mod tools;
pub mod vault;
