//! Support for Airlock's end-to-end tests: the example tools, compiled from
//! `guest-examples/` by this crate's build script, and the real peer servers
//! the tests run against, started on loopback.

pub mod peers;

/// Paths of the compiled example tools.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
