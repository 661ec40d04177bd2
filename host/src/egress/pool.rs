//! Upstream connections kept open between requests.
//!
//! A connection is keyed by (scheme, host, port, checked address): it is
//! reused only for a request to the same origin that resolved to, and was
//! checked at, the same address, so a name that now resolves elsewhere never
//! rides an old connection to the old address. A connection goes back to the
//! pool only after its response body was read to the end (hyper closes it
//! otherwise) and is dropped after [`IDLE_TIMEOUT`] unused.

use crate::manifest::pattern::{HostName, Scheme};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long an unused connection is kept. Shorter than the keep-alive of
/// common servers, so that an upstream rarely closes one just as it is
/// reused (a request the upstream never saw is retried on a new one).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Unused connections kept per key; more are closed.
pub const MAX_IDLE_PER_KEY: usize = 64;

/// Where a connection goes: the origin and the address that was checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Scheme of the origin.
    pub scheme: Scheme,
    /// Canonical host of the origin (the TLS name for `https`).
    pub host: HostName,
    /// Port of the origin.
    pub port: u16,
    /// The resolved address that passed the address check.
    pub addr: SocketAddr,
}

/// Idle HTTP/1.1 connections by [`PoolKey`].
pub struct Pool<B> {
    idle: Mutex<Idle<B>>,
}

struct Idle<B> {
    by_key: HashMap<PoolKey, Vec<(SendRequest<B>, Instant)>>,
    last_sweep: Instant,
}

impl<B> Default for Pool<B> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(Idle {
                by_key: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl<B> Pool<B> {
    /// The most recently used open connection for `key`, if any.
    pub fn checkout(&self, key: &PoolKey) -> Option<SendRequest<B>> {
        let mut idle = self.lock();
        let list = idle.by_key.get_mut(key)?;
        let found = loop {
            match list.pop() {
                Some((sender, since)) if fresh(&sender, since) => break Some(sender),
                Some(_) => continue,
                None => break None,
            }
        };
        if list.is_empty() {
            idle.by_key.remove(key);
        }
        found
    }

    /// Keeps `sender` for the next request to `key`.
    pub fn checkin(&self, key: PoolKey, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        // Connections to origins nobody calls any more are dropped here,
        // at most once per timeout, instead of by a timer task.
        if now.duration_since(idle.last_sweep) > IDLE_TIMEOUT {
            idle.by_key.retain(|_, list| {
                list.retain(|(s, since)| fresh(s, *since));
                !list.is_empty()
            });
            idle.last_sweep = now;
        }
        let list = idle.by_key.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_KEY {
            list.push((sender, now));
        }
    }

    /// Number of idle connections held.
    pub fn idle_count(&self) -> usize {
        self.lock().by_key.values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle<B>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fresh<B>(sender: &SendRequest<B>, since: Instant) -> bool {
    !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT
}

/// A response body that hands its connection back to the pool once the
/// body has been read to the end.
pub struct Returning<I: Body, B> {
    inner: I,
    home: Option<(Arc<Pool<B>>, PoolKey, SendRequest<B>)>,
}

impl<I: Body, B> Returning<I, B> {
    /// Wraps `inner`, the body of a response received over `sender`.
    pub fn new(inner: I, pool: Arc<Pool<B>>, key: PoolKey, sender: SendRequest<B>) -> Self {
        Returning {
            inner,
            home: Some((pool, key, sender)),
        }
    }

    fn give_back(&mut self) {
        if let Some((pool, key, sender)) = self.home.take() {
            pool.checkin(key, sender);
        }
    }
}

impl<I: Body, B> Drop for Returning<I, B> {
    fn drop(&mut self) {
        // A body with nothing left (read to the end, or empty as after HEAD
        // or 204) frees its connection. One dropped before its end leaves
        // unread bytes on the connection: the sender is dropped with it and
        // hyper closes the connection.
        if self.inner.is_end_stream() {
            self.give_back();
        }
    }
}

impl<I, B> Body for Returning<I, B>
where
    I: Body<Data = Bytes> + Unpin,
    B: Unpin,
{
    type Data = Bytes;
    type Error = I::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, I::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.give_back(),
            Poll::Ready(Some(Err(_))) => {
                this.home.take();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
