//! Component uploads in pieces (`plugin.upload`), for components larger than
//! one NATS message (a Python component is ~18 MB; NATS allows 1 MB by
//! default, 8 MB on the embedded server).
//!
//! A client picks an upload id and sends the bytes in order, each piece base64
//! in `{"upload", "offset", "data"}`; offset 0 starts (or restarts) the upload,
//! any other offset must equal the bytes received so far. `plugin.deploy` with
//! `{"upload": id}` then takes the bytes. Invariants: at most [`MAX_UPLOADS`]
//! uploads are held, each at most [`MAX_COMPONENT_BYTES`], and one untouched for
//! [`UPLOAD_TTL`] is dropped, so abandoned uploads cannot fill memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use signalbox_model::FieldError;

/// Largest component accepted, in bytes.
pub(crate) const MAX_COMPONENT_BYTES: usize = 128 * 1024 * 1024;
/// Uploads held at once.
pub(crate) const MAX_UPLOADS: usize = 8;
/// An upload untouched this long is dropped.
pub(crate) const UPLOAD_TTL: Duration = Duration::from_secs(600);

/// One piece of an upload.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Piece {
    /// The client's id for the upload: 1–64 characters of `[A-Za-z0-9_-]`.
    pub upload: String,
    /// Where this piece starts.
    pub offset: usize,
    /// The bytes, base64 (standard alphabet, padded).
    pub data: String,
}

/// Uploads in progress.
#[derive(Default)]
pub(crate) struct Uploads {
    inner: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

/// Checks an upload id.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Uploads {
    /// Adds a piece; returns the bytes received so far.
    pub fn add(&self, piece: Piece) -> Result<usize, FieldError> {
        if !valid_id(&piece.upload) {
            return Err(FieldError::new(
                "upload",
                "must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(piece.data.as_bytes())
            .map_err(|e| FieldError::new("data", format!("must be base64: {e}")))?;
        let mut uploads = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        uploads.retain(|_, (_, touched)| now.duration_since(*touched) < UPLOAD_TTL);
        if piece.offset == 0 {
            if !uploads.contains_key(&piece.upload) && uploads.len() >= MAX_UPLOADS {
                return Err(FieldError::new(
                    "upload",
                    format!(
                        "{MAX_UPLOADS} uploads are in progress already; finish or abandon one (they expire after {} s)",
                        UPLOAD_TTL.as_secs()
                    ),
                ));
            }
            uploads.insert(piece.upload.clone(), (Vec::new(), now));
        }
        let Some((bytes, touched)) = uploads.get_mut(&piece.upload) else {
            return Err(FieldError::new(
                "offset",
                format!(
                    "no upload {:?} in progress; start it at offset 0",
                    piece.upload
                ),
            ));
        };
        if piece.offset != bytes.len() {
            return Err(FieldError::new(
                "offset",
                format!("expected offset {}, got {}", bytes.len(), piece.offset),
            ));
        }
        if bytes.len() + data.len() > MAX_COMPONENT_BYTES {
            uploads.remove(&piece.upload);
            return Err(FieldError::new(
                "data",
                format!("the component exceeds {MAX_COMPONENT_BYTES} bytes; upload dropped"),
            ));
        }
        bytes.extend_from_slice(&data);
        *touched = now;
        Ok(bytes.len())
    }

    /// Takes the bytes of a finished upload.
    pub fn take(&self, id: &str) -> Option<Vec<u8>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .map(|(bytes, _)| bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn piece(id: &str, offset: usize, data: &[u8]) -> Piece {
        Piece {
            upload: id.into(),
            offset,
            data: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    #[test]
    fn pieces_must_arrive_in_order_and_restart_at_zero() {
        let u = Uploads::default();
        assert_eq!(u.add(piece("a", 0, b"abc")).unwrap(), 3);
        assert_eq!(u.add(piece("a", 3, b"de")).unwrap(), 5);
        let e = u.add(piece("a", 4, b"x")).unwrap_err();
        assert_eq!(e.field, "offset");
        assert!(e.rule.contains("expected offset 5"), "{e:?}");
        assert_eq!(u.add(piece("a", 0, b"z")).unwrap(), 1);
        assert_eq!(u.take("a").unwrap(), b"z");
        assert!(u.take("a").is_none());
        assert_eq!(u.add(piece("b", 2, b"x")).unwrap_err().field, "offset");
        assert_eq!(
            u.add(piece("bad id!", 0, b"x")).unwrap_err().field,
            "upload"
        );
        let mut bad = piece("c", 0, b"");
        bad.data = "not base64!".into();
        assert_eq!(u.add(bad).unwrap_err().field, "data");
    }

    #[test]
    fn at_most_max_uploads_are_held() {
        let u = Uploads::default();
        for i in 0..MAX_UPLOADS {
            u.add(piece(&format!("u{i}"), 0, b"x")).unwrap();
        }
        assert_eq!(
            u.add(piece("one-more", 0, b"x")).unwrap_err().field,
            "upload"
        );
        // Restarting one already held is fine.
        u.add(piece("u0", 0, b"y")).unwrap();
    }
}
