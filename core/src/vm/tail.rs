//! The bounded capture of a child's output both runtimes use: the newest bytes are kept (anka's
//! answer is the last line) and the dropped ones counted, so a pull that prints progress for an
//! hour cannot grow memory, and the log can say how much was cut.

/// The newest `limit` bytes of a stream and how many older bytes were dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputTail {
    buf: Vec<u8>,
    dropped: u64,
    limit: usize,
}

impl OutputTail {
    /// An empty tail keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            dropped: 0,
            limit,
        }
    }

    /// Appends a chunk; the front is trimmed only once twice the bound is reached, so each byte
    /// is moved at most once on average.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > self.limit.saturating_mul(2).max(1) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.buf.len() > self.limit {
            let excess = self.buf.len() - self.limit;
            self.buf.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The kept bytes (at most `limit`) and the count of dropped ones; leaves the tail empty.
    pub fn take(&mut self) -> (Vec<u8>, u64) {
        self.trim();
        (
            std::mem::take(&mut self.buf),
            std::mem::take(&mut self.dropped),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_and_counts_the_rest() {
        let mut t = OutputTail::new(4);
        for chunk in [b"ab".as_slice(), b"cdef", b"ghijk"] {
            t.push(chunk);
        }
        assert_eq!(t.take(), (b"hijk".to_vec(), 7));
        let mut none = OutputTail::new(0);
        none.push(b"xyz");
        assert_eq!(none.take(), (Vec::new(), 3));
        let mut small = OutputTail::new(10);
        small.push(b"abc");
        assert_eq!(small.take(), (b"abc".to_vec(), 0));
    }
}
