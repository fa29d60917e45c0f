//! A UTF-8 string that shares the memory of the frame it was decoded from.

use bytes::Bytes;
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// Valid UTF-8 held in [`Bytes`]: decoding a string field is a reference-counted slice of the
/// frame, not a copy.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StrBytes(Bytes);

impl StrBytes {
    /// Checks that `bytes` is UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<StrBytes, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(StrBytes(bytes))
    }

    pub const fn from_static_str(s: &'static str) -> StrBytes {
        StrBytes(Bytes::from_static(s.as_bytes()))
    }

    pub fn from_string(s: String) -> StrBytes {
        StrBytes(Bytes::from(s.into_bytes()))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from checked UTF-8 (`from_utf8`) or from `str`s.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for StrBytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for StrBytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for StrBytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for StrBytes {
    fn from(s: String) -> StrBytes {
        StrBytes::from_string(s)
    }
}

impl From<&'static str> for StrBytes {
    fn from(s: &'static str) -> StrBytes {
        StrBytes::from_static_str(s)
    }
}

impl PartialEq<str> for StrBytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StrBytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for StrBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for StrBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}
