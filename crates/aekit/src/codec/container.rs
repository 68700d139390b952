//! The `.aez` file of a compressed image: 21 bytes of header, the payload, a checksum.
//!
//! | bytes | what |
//! |---|---|
//! | 3 | `AEZ` |
//! | 1 | format version ([`FORMAT_VERSION`]) |
//! | 8 | the model's fingerprint (the first 8 bytes of [`crate::trained::TrainedModel::fingerprint`]) |
//! | 2 + 2 | width and height (u16 LE), the image's own size before any padding |
//! | 1 | colour: 1 grey, 3 RGB |
//! | 4 | payload length (u32 LE) |
//! | n | payload (the range-coded latents) |
//! | 4 | CRC-32 of every byte before it |
//!
//! Small on purpose: at MNIST's 28x28 a few bytes of header are a visible share of a file.
//! The fingerprint is a guard against mistakes (decoding with the wrong model), not a
//! signature.

use crate::error::{Error, Result};
use std::path::Path;

/// The first bytes of a `.aez` file.
pub const MAGIC: &[u8; 3] = b"AEZ";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of a file around its payload (header and checksum).
pub const OVERHEAD: usize = 3 + 1 + 8 + 2 + 2 + 1 + 4 + 4;

/// The colour of a compressed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// One channel.
    Grey,
    /// Three channels.
    Rgb,
}

impl Colour {
    /// Channels of the colour.
    pub fn channels(self) -> usize {
        match self {
            Colour::Grey => 1,
            Colour::Rgb => 3,
        }
    }
}

/// A compressed image as its file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    /// The first 8 bytes of the fingerprint of the model that made it.
    pub model: [u8; 8],
    /// The image's width in pixels.
    pub width: u16,
    /// The image's height in pixels.
    pub height: u16,
    /// Grey or RGB.
    pub colour: Colour,
    /// The range-coded latents.
    pub payload: Vec<u8>,
}

/// The 8 bytes of a model fingerprint (hex, as [`crate::trained::TrainedModel::fingerprint`]
/// gives it) that a file records.
pub fn model_tag(fingerprint: &str) -> Result<[u8; 8]> {
    let bytes: Vec<u8> = (0..8)
        .map(|i| {
            fingerprint
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Input(format!("`{fingerprint}` is not a model fingerprint")))?;
    Ok(bytes.try_into().expect("16 hex digits are 8 bytes"))
}

impl Compressed {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let length = u32::try_from(self.payload.len())
            .map_err(|_| Error::Input("a payload of more than 4 GiB".into()))?;
        let mut bytes = Vec::with_capacity(OVERHEAD + self.payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.model);
        bytes.extend_from_slice(&self.width.to_le_bytes());
        bytes.extend_from_slice(&self.height.to_le_bytes());
        bytes.push(self.colour.channels() as u8);
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }

    /// Reads a file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |what: &str| Error::data(path, what.to_string());
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad(
                "is not an aekit compressed image (it does not start with AEZ)",
            ));
        }
        if bytes.len() < OVERHEAD {
            return Err(bad("is truncated: it is shorter than its header"));
        }
        let version = bytes[3];
        if version != FORMAT_VERSION {
            return Err(Error::data(
                path,
                format!(
                    "is a compressed image of format version {version}; this aekit reads \
                     version {FORMAT_VERSION}"
                ),
            ));
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let model: [u8; 8] = bytes[4..12].try_into().expect("8 bytes");
        let (width, height) = (u16_at(12), u16_at(14));
        let colour = match bytes[16] {
            1 => Colour::Grey,
            3 => Colour::Rgb,
            other => {
                return Err(Error::data(
                    path,
                    format!("has {other} colour channels; a compressed image has 1 or 3"),
                ));
            }
        };
        let length = u32::from_le_bytes(bytes[17..21].try_into().expect("4 bytes")) as usize;
        let expected = OVERHEAD.checked_add(length);
        match expected {
            Some(n) if n == bytes.len() => {}
            Some(n) if n > bytes.len() => {
                return Err(bad("is truncated: it ends before its payload does"));
            }
            _ => return Err(bad("is corrupted: its length disagrees with its header")),
        }
        let body = bytes.len() - 4;
        let stored = u32::from_le_bytes(bytes[body..].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[..body]) != stored {
            return Err(bad("is corrupted: its checksum does not match its content"));
        }
        if width == 0 || height == 0 {
            return Err(bad("is corrupted: it records an empty image"));
        }
        Ok(Self {
            model,
            width,
            height,
            colour,
            payload: bytes[21..body].to_vec(),
        })
    }

    /// Refuses the file unless it was made by the model with `fingerprint`.
    pub fn check_model(&self, fingerprint: &str, path: &Path) -> Result<()> {
        if model_tag(fingerprint)? != self.model {
            return Err(Error::data(
                path,
                format!(
                    "was compressed by another model (fingerprint {}...), not this one ({}...): \
                     decompress it with the run that made it",
                    self.model
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                    &fingerprint[..16.min(fingerprint.len())]
                ),
            ));
        }
        Ok(())
    }

    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINGERPRINT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn sample() -> Compressed {
        Compressed {
            model: model_tag(FINGERPRINT).unwrap(),
            width: 28,
            height: 28,
            colour: Colour::Grey,
            payload: vec![1, 2, 3, 4, 5, 6, 7, 8],
        }
    }

    #[test]
    fn files_round_trip_with_the_stated_overhead() {
        let file = sample();
        let bytes = file.to_bytes().unwrap();
        assert_eq!(bytes.len(), OVERHEAD + 8);
        let path = Path::new("x.aez");
        assert_eq!(Compressed::from_bytes(&bytes, path).unwrap(), file);
        file.check_model(FINGERPRINT, path).unwrap();
    }

    #[test]
    fn damaged_foreign_and_other_models_files_are_named_errors() {
        let bytes = sample().to_bytes().unwrap();
        let path = Path::new("x.aez");
        let error = |b: &[u8]| Compressed::from_bytes(b, path).unwrap_err().to_string();
        for cut in [0, 2, 10, OVERHEAD, bytes.len() - 1] {
            let e = error(&bytes[..cut]);
            assert!(
                e.contains("x.aez") && (e.contains("truncated") || e.contains("not an aekit")),
                "{cut}: {e}"
            );
        }
        for at in [4, 12, 16, 21, bytes.len() - 2] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x01;
            let e = error(&flipped);
            assert!(
                e.contains("corrupted") || e.contains("checksum") || e.contains("channels"),
                "{at}: {e}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(error(&longer).contains("corrupted"));
        let mut version = bytes.clone();
        version[3] = 2;
        assert!(error(&version).contains("version 2"));
        assert!(error(b"\x89PNG\r\n\x1a\n....").contains("not an aekit compressed image"));
        let other = FINGERPRINT.replace('0', "f");
        let e = sample().check_model(&other, path).unwrap_err().to_string();
        assert!(e.contains("another model") && e.contains("x.aez"), "{e}");
        assert!(model_tag("xyz").is_err());
    }
}
