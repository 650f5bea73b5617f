//! The global budget of header bytes in flight. Each connection counts the bytes it has
//! read since its current request began, until hyper has the whole head and calls the
//! service; the sum over all connections stays under `LIMIT`. A read that takes the sum
//! past it sheds the connections whose unfinished heads began longest ago: slowloris
//! trickles and stalls, so its connections are the old ones, while a reader's request
//! arrives whole within a moment. A shed connection's next read fails and hyper closes it.
//!
//! Without it, every connection may buffer `MAX_HEADER_BUFFER` (64 KiB): 512 of them
//! holding 60 KB each took the daemon from 22 to 58 MB.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::task::AtomicWaker;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Header bytes in flight over all connections. A browser's request head is 0.5 to 2 KB:
/// 512 connections of ordinary requests use a tenth of it, and one request may still use
/// its whole 64 KiB while a hundred others do too.
pub const LIMIT: usize = 8 << 20;

/// Every connection's count, for one listener.
pub struct Budget {
    limit: usize,
    total: AtomicUsize,
    heads: Mutex<HashMap<u64, Arc<Head>>>,
    next_id: AtomicU64,
    epoch: Instant,
    /// Connections shed, for `/metrics`.
    shed: Counter,
}

/// One connection's unfinished head.
pub struct Head {
    id: u64,
    /// Bytes read since the current request began.
    pending: AtomicUsize,
    /// When its first byte was read, in nanoseconds since the budget's epoch (+1, so that
    /// 0 says no head is under way).
    since: AtomicU64,
    shed: AtomicBool,
    /// The task waiting to read, woken when the connection is shed.
    waker: AtomicWaker,
}

impl Budget {
    pub fn new(limit: usize, shed: Counter) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            total: AtomicUsize::new(0),
            heads: Mutex::default(),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            shed,
        })
    }

    /// `stream`, counted against this budget.
    pub fn meter<S>(self: &Arc<Self>, stream: S) -> Metered<S> {
        let head = Arc::new(Head {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            pending: AtomicUsize::new(0),
            since: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        self.lock().insert(head.id, Arc::clone(&head));
        Metered {
            stream,
            head,
            budget: Arc::clone(self),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Head>>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, head: &Head, n: usize) {
        if head.pending.fetch_add(n, Ordering::AcqRel) == 0 {
            let now = self.epoch.elapsed().as_nanos() as u64 + 1;
            head.since.store(now, Ordering::Release);
        }
        let total = self.total.fetch_add(n, Ordering::AcqRel) + n;
        if total > self.limit {
            self.shed_slowest();
        }
    }

    /// Sheds the connections whose heads began first until those left hold at most the
    /// limit. Only when over it: a scan of at most `MAX_CONNECTIONS` heads.
    fn shed_slowest(&self) {
        let heads = self.lock();
        let mut under_way: Vec<(u64, usize, &Arc<Head>)> = heads
            .values()
            .filter(|h| !h.shed.load(Ordering::Acquire))
            .map(|h| {
                (
                    h.since.load(Ordering::Acquire),
                    h.pending.load(Ordering::Acquire),
                    h,
                )
            })
            .filter(|(since, pending, _)| *since > 0 && *pending > 0)
            .collect();
        let mut held: usize = under_way.iter().map(|(_, pending, _)| pending).sum();
        under_way.sort_unstable_by_key(|(since, _, _)| *since);
        for (_, pending, head) in under_way {
            if held <= self.limit {
                break;
            }
            head.shed.store(true, Ordering::Release);
            head.waker.wake();
            self.shed.inc();
            held -= pending;
        }
    }

    fn release(&self, head: &Head) {
        let pending = head.pending.swap(0, Ordering::AcqRel);
        head.since.store(0, Ordering::Release);
        self.total.fetch_sub(pending, Ordering::AcqRel);
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

/// What a request carries of its connection's count: the service is called once the head
/// is whole, and `head_read` gives its bytes back.
#[derive(Clone)]
pub struct Ticket {
    head: Arc<Head>,
    budget: Arc<Budget>,
}

/// A middleware around every router the accept loop serves: the request's head has been
/// read whole, so its bytes no longer count.
pub async fn head_read(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(ticket) = request.extensions().get::<Ticket>() {
        ticket.budget.release(&ticket.head);
    }
    next.run(request).await
}

/// A connection's stream, whose reads count against the budget until its head is read.
pub struct Metered<S> {
    stream: S,
    head: Arc<Head>,
    budget: Arc<Budget>,
}

impl<S> Metered<S> {
    pub fn ticket(&self) -> Ticket {
        Ticket {
            head: Arc::clone(&self.head),
            budget: Arc::clone(&self.budget),
        }
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        self.budget.release(&self.head);
        self.budget.lock().remove(&self.head.id);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.head.shed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shed: the slowest unfinished request head while header bytes were over budget",
            )));
        }
        let before = buf.filled().len();
        this.head.waker.register(cx.waker());
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len() - before;
            if n > 0 {
                this.budget.read(&this.head, n);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test(flavor = "current_thread")]
    async fn over_budget_the_oldest_unfinished_heads_are_shed_and_a_finished_one_counts_nothing() {
        let shed = Counter::default();
        let budget = Budget::new(100, shed.clone());
        let mut streams = Vec::new();
        for _ in 0..3 {
            let (client, server) = tokio::io::duplex(1024);
            streams.push((client, budget.meter(server)));
        }
        let mut buf = [0u8; 64];
        use tokio::io::AsyncWriteExt;
        // The first connection's head begins first, the others after it.
        for (client, _) in &mut streams {
            client.write_all(&[b'x'; 40]).await.expect("write");
        }
        for (_, server) in &mut streams {
            assert_eq!(server.read(&mut buf).await.expect("read"), 40);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // 120 bytes against 100: the oldest head is shed, the others read on.
        assert!(
            streams[0].1.read(&mut buf).await.is_err(),
            "the oldest shed"
        );
        assert_eq!(shed.get(), 1);
        streams[1].0.write_all(b"y").await.expect("write");
        assert_eq!(streams[1].1.read(&mut buf).await.expect("read"), 1);
        // A head read whole gives its bytes back; a dropped connection too.
        let ticket = streams[1].1.ticket();
        ticket.budget.release(&ticket.head);
        assert_eq!(budget.total(), 80);
        streams.remove(0);
        assert_eq!(budget.total(), 40);
        drop(streams);
        assert_eq!(budget.total(), 0);
        assert!(budget.lock().is_empty());
    }
}
