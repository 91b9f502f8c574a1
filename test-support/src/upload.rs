//! A streamed upload for the replay tests: a one-shot body (not `Clone`) that yields its chunks one per
//! poll, then optional trailers. Large uploads are slices of one shared buffer, so 100 MiB costs no
//! more memory than 1 MiB.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};

/// A one-shot streamed body.
pub struct Upload {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// The size hint is exact (as with a `Content-Length`) rather than unknown (a chunked stream).
    exact: bool,
    /// After the last chunk, wait forever instead of ending: a client still uploading.
    stall: bool,
}

impl Upload {
    /// These chunks, with an unknown length.
    pub fn chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
            trailers: None,
            exact: false,
            stall: false,
        }
    }

    /// `len` bytes of a fixed pseudo-random pattern, in chunks of `chunk` bytes, with an unknown length.
    pub fn pattern(len: u64, chunk: usize) -> Self {
        let source = source();
        let mut chunks = VecDeque::new();
        let (mut offset, mut left) = (0usize, len);
        while left > 0 {
            let n = (chunk as u64).min(left).min((source.len() - offset) as u64) as usize;
            chunks.push_back(source.slice(offset..offset + n));
            offset = (offset + n) % source.len();
            left -= n as u64;
        }
        Self::chunks(chunks)
    }

    /// Ends with these trailers.
    pub fn with_trailers(mut self, trailers: HeaderMap) -> Self {
        self.trailers = Some(trailers);
        self
    }

    /// Reports an exact size hint.
    pub fn exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Never ends after its last chunk.
    pub fn stalled(mut self) -> Self {
        self.stall = true;
        self
    }

    /// The number of bytes.
    #[allow(clippy::len_without_is_empty)] // an upload's size is all its users ask
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    /// The SHA-256 of the bytes.
    pub fn sha256(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for chunk in &self.chunks {
            hash.update(chunk);
        }
        hash.finalize().into()
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(trailers) = self.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if self.stall {
            return Poll::Pending;
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.exact && !self.stall && self.chunks.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact && !self.stall {
            SizeHint::with_exact(self.len())
        } else {
            SizeHint::default()
        }
    }
}

/// 1 MiB and 7 bytes of xorshift output: not a multiple of any chunk size, so no two chunks of an
/// upload are alike and a chunk sent in place of another changes the hash.
fn source() -> Bytes {
    static SOURCE: OnceLock<Bytes> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let mut x = 0x2545_F491_4F6C_DD1Du64;
            let bytes: Vec<u8> = (0..(1 << 20) + 7)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Bytes::from(bytes)
        })
        .clone()
}
