//! A client connection's bytes, watched for request smuggling: hyper quietly
//! drops `Content-Length` when `Transfer-Encoding` is present, where tug
//! refuses the request with 400 instead, so the head is scanned as it is read.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Shared between the scanner and the request handler of one connection.
pub(crate) struct ConnFlags {
    /// The current request head has both Content-Length and Transfer-Encoding.
    conflict: AtomicBool,
    /// Bytes read now belong to a request head.
    armed: AtomicBool,
}

impl Default for ConnFlags {
    fn default() -> Self {
        ConnFlags {
            conflict: AtomicBool::new(false),
            armed: AtomicBool::new(true),
        }
    }
}

impl ConnFlags {
    pub fn conflict(&self) -> bool {
        self.conflict.load(Ordering::Acquire)
    }
    /// The previous request is over: the next bytes start a head.
    pub fn rearm(&self) {
        if !self.conflict() {
            self.armed.store(true, Ordering::Release);
        }
    }
}

/// Longest header name looked at, with its colon ("transfer-encoding:").
const NAME: usize = 18;

pub(crate) struct ScanIo {
    inner: TcpStream,
    /// Bytes read from `inner` before, served first.
    read: bytes::Bytes,
    flags: Arc<ConnFlags>,
    line: [u8; NAME],
    len: usize,
    saw_length: bool,
    saw_encoding: bool,
    /// The head's first line (the request line) is not a header.
    first: bool,
}

impl ScanIo {
    pub fn new(inner: TcpStream, flags: Arc<ConnFlags>, read: bytes::Bytes) -> Self {
        ScanIo {
            inner,
            read,
            flags,
            line: [0; NAME],
            len: 0,
            saw_length: false,
            saw_encoding: false,
            first: true,
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if !self.flags.armed.load(Ordering::Relaxed) {
                return;
            }
            match b {
                b'\r' => {}
                b'\n' => {
                    if self.len == 0 && !self.first {
                        if self.saw_length && self.saw_encoding {
                            self.flags.conflict.store(true, Ordering::Release);
                        }
                        self.saw_length = false;
                        self.saw_encoding = false;
                        self.first = true;
                        self.flags.armed.store(false, Ordering::Release);
                    } else if self.len > 0 {
                        let name = &self.line[..self.len.min(NAME)];
                        if !self.first {
                            self.saw_length |= name.starts_with(b"content-length:");
                            self.saw_encoding |= name.starts_with(b"transfer-encoding:");
                        }
                        self.first = false;
                    }
                    self.len = 0;
                }
                _ => {
                    if self.len < NAME {
                        self.line[self.len] = b.to_ascii_lowercase();
                    }
                    self.len += 1;
                }
            }
        }
    }
}

impl AsyncRead for ScanIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = if self.read.is_empty() {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        } else {
            let n = self.read.len().min(buf.remaining());
            let head = self.read.split_to(n);
            buf.put_slice(&head);
            Poll::Ready(Ok(()))
        };
        if let Poll::Ready(Ok(())) = &r {
            if self.flags.armed.load(Ordering::Relaxed) {
                self.scan(&buf.filled()[before..]);
            }
        }
        r
    }
}

impl AsyncWrite for ScanIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
