//! Canonical byte encoding (`protocol-spec/encoding.md`).
//!
//! Integers are big-endian; variable-length fields carry a `u32` length prefix and have a
//! per-field maximum; fixed-size fields have no prefix. A decoder reads exactly the bytes it
//! was given: trailing bytes are an error, so every value has exactly one encoding.

use thiserror::Error;

/// Why bytes could not be decoded. Always means the peer sent malformed input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the structure did.
    #[error("input truncated while reading {0}")]
    Truncated(&'static str),
    /// Bytes were left after the structure ended.
    #[error("{0} trailing bytes after the structure")]
    TrailingBytes(usize),
    /// A length prefix exceeds the field's maximum.
    #[error("field {field} is {len} bytes, more than the maximum {max}")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Announced length.
        len: usize,
        /// Permitted maximum.
        max: usize,
    },
    /// A version byte this implementation does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A field holds a value outside its domain.
    #[error("invalid value in field {0}")]
    InvalidValue(&'static str),
}

/// Appends canonical encodings to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends bytes without a prefix (fixed-size fields).
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a `u32` length prefix and the bytes.
    ///
    /// Callers only pass values they validated against the field maximum, which is far
    /// below `u32::MAX`; the saturating cast can therefore never change a length.
    pub fn var(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a NUL-terminated domain-separation context.
    pub fn context(&mut self, ctx: &str) -> &mut Self {
        self.buf.extend_from_slice(ctx.as_bytes());
        self.buf.push(0);
        self
    }

    /// The encoded bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads canonical encodings from a slice, never panicking on short input.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a `u32`-prefixed field of at most `max` bytes.
    pub fn var(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong {
                field: what,
                len,
                max,
            });
        }
        self.take(len, what)
    }

    /// Reads and checks the version byte.
    pub fn version(&mut self, expected: u8) -> Result<(), DecodeError> {
        let v = self.u8("version")?;
        if v != expected {
            return Err(DecodeError::UnsupportedVersion(v));
        }
        Ok(())
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn var_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300), n in any::<u64>()) {
            let bytes = Writer::new().u64(n).var(&data).finish();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.u64("n").unwrap(), n);
            prop_assert_eq!(r.var("data", 300).unwrap(), &data[..]);
            prop_assert!(r.finish().is_ok());
        }

        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&data);
            let _ = r.u8("a").and_then(|_| r.var("b", 16)).and_then(|_| r.u64("c"));
        }
    }

    #[test]
    fn over_long_field_is_refused_before_reading() {
        let bytes = Writer::new().var(&[0u8; 10]).finish();
        assert_eq!(
            Reader::new(&bytes).var("f", 9),
            Err(DecodeError::TooLong {
                field: "f",
                len: 10,
                max: 9
            })
        );
    }
}
