//! The gRPC port's accepted connections, for tonic's `serve_with_incoming_shutdown`. tonic has no
//! connection cap and no handshake deadline (h2 waits for a client's preface for ever), so each
//! accepted connection takes a slot or is closed, and is wrapped in [`Guarded`], which fails its
//! reads once the deadline passes before the HTTP/2 handshake is in. With TLS, the TLS handshake
//! comes first, under the same deadline, in a task of its own per connection so that a slow one
//! holds up no other.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::{OwnedSemaphorePermit, mpsc},
    time::{Instant, Sleep},
};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::transport::server::{Connected, TcpIncoming};

use super::{
    Limits, Slots,
    tls::{self, Port, Tls},
    transport::Transport,
};
use crate::domain::caller::Peer;

/// Connections accepted but still in their TLS handshake are not counted here; these are the
/// ones handed to tonic and not yet taken by it.
const HANDED_OVER: usize = 64;

pub type Incoming = Pin<Box<dyn Stream<Item = io::Result<Guarded<Transport>>> + Send>>;

/// Accepted gRPC connections with TCP_NODELAY (without it, Nagle's algorithm and delayed ACKs add
/// up to 40 ms to a call whose response goes out in several writes) and TCP keepalive; each holds
/// a slot, and one accepted beyond the cap is dropped, which closes it. With `tls`, each then goes
/// through its TLS handshake, and one that fails it is dropped.
pub fn grpc_incoming(listener: TcpListener, limits: Limits, tls: Option<Arc<Tls>>) -> Incoming {
    let slots = Slots::new(limits.max_connections, "grpc");
    let accepted = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let Some(tls) = tls else {
        return Box::pin(accepted.filter_map(move |accepted| match accepted {
            Ok(tcp) => {
                let slot = slots.take()?;
                let peer = Peer {
                    addr: tcp.peer_addr().ok(),
                    identity: None,
                };
                let deadline = Instant::now() + limits.handshake_timeout;
                Some(Ok(Guarded::new(
                    Transport::Plain(tcp),
                    peer,
                    slot,
                    deadline,
                )))
            }
            Err(e) => Some(Err(e)),
        }));
    };
    let (handed, incoming) = mpsc::channel(HANDED_OVER);
    tokio::spawn(async move {
        let mut accepted = std::pin::pin!(accepted);
        loop {
            // Ends when tonic drops the incoming stream (the server stopped).
            let next = tokio::select! {
                next = accepted.next() => next,
                () = handed.closed() => break,
            };
            let tcp = match next {
                Some(Ok(tcp)) => tcp,
                Some(Err(e)) => {
                    let _ = handed.send(Err(e)).await;
                    continue;
                }
                None => break,
            };
            let Some(slot) = slots.take() else {
                continue;
            };
            let acceptor = tls.acceptor(Port::Grpc);
            let handed = handed.clone();
            tokio::spawn(async move {
                let addr = tcp.peer_addr().ok();
                let deadline = Instant::now() + limits.handshake_timeout;
                if let Some((stream, identity)) =
                    tls::handshake(acceptor, tcp, deadline, Port::Grpc).await
                {
                    let peer = Peer { addr, identity };
                    let io = Transport::Tls(Box::new(stream));
                    let _ = handed
                        .send(Ok(Guarded::new(io, peer, slot, deadline)))
                        .await;
                }
            });
        }
    });
    Box::pin(ReceiverStream::new(incoming))
}

/// A connection holding its slot (freed when the connection is dropped), its peer as seen when it
/// was accepted and, until the HTTP/2 handshake is in, a deadline on it.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    peer: Peer,
    handshake: Option<Handshake>,
    _slot: OwnedSemaphorePermit,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, peer: Peer, slot: OwnedSemaphorePermit, deadline: Instant) -> Self {
        Self {
            io,
            peer,
            handshake: Some(Handshake {
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                read: 0,
                frame_header: [0; FRAME_HEADER],
            }),
            _slot: slot,
        }
    }
}

/// The client's connection preface, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4).
const PREFACE: usize = 24;
/// Every HTTP/2 frame starts with a 9-byte header, its payload's length in the first three.
const FRAME_HEADER: usize = 9;

/// The HTTP/2 handshake as the server reads it: the preface, then the client's SETTINGS frame
/// (h2 refuses any other first frame, and one longer than its maximum frame size).
#[derive(Debug)]
struct Handshake {
    deadline: Pin<Box<Sleep>>,
    /// Bytes read so far.
    read: usize,
    frame_header: [u8; FRAME_HEADER],
}

impl Handshake {
    /// Takes in bytes the server just read; whether the handshake is now complete.
    fn saw(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            if let Some(slot) = self
                .read
                .checked_sub(PREFACE)
                .and_then(|at| self.frame_header.get_mut(at))
            {
                *slot = byte;
            }
            self.read += 1;
            if self.complete() {
                return true;
            }
        }
        false
    }

    fn complete(&self) -> bool {
        let [a, b, c, ..] = self.frame_header;
        let payload = u32::from_be_bytes([0, a, b, c]) as usize;
        self.read >= PREFACE + FRAME_HEADER && self.read >= PREFACE + FRAME_HEADER + payload
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // h2 keeps a read pending until the handshake is in, so polling the deadline here (which
        // registers this task's waker with the timer) is enough to be woken when it passes.
        if let Some(handshake) = &mut this.handshake
            && handshake.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 handshake within the handshake timeout",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if let Some(handshake) = &mut this.handshake
            && handshake.saw(&buf.filled()[before..])
        {
            this.handshake = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What tonic puts in every request's extensions: the peer address (for the per-address login
/// limit) and the client certificate's identity (for the caller lists).
impl<IO> Connected for Guarded<IO> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Handshake {
        Handshake {
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(10))),
            read: 0,
            frame_header: [0; FRAME_HEADER],
        }
    }

    const PRI: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    #[tokio::test]
    async fn the_handshake_is_in_after_the_preface_and_the_whole_settings_frame() {
        // SETTINGS with one 6-byte setting, then the start of a HEADERS frame.
        let settings = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        let mut all = PRI.to_vec();
        all.extend_from_slice(&settings);
        all.extend_from_slice(&[0, 0, 9, 1]);
        for split in 0..all.len() {
            let mut h = handshake();
            let (first, rest) = all.split_at(split);
            let done_at_first = h.saw(first);
            assert_eq!(
                done_at_first,
                split >= PRI.len() + settings.len(),
                "{split}"
            );
            assert!(done_at_first || h.saw(rest), "{split}");
        }
    }

    #[tokio::test]
    async fn an_empty_settings_frame_completes_it_and_the_preface_alone_does_not() {
        let mut h = handshake();
        assert!(!h.saw(PRI));
        assert!(!h.saw(&[0, 0, 0, 4, 0, 0, 0, 0]));
        assert!(h.saw(&[0]));
    }
}
