//! The `.aez` file of a compressed image: 11 to 17 bytes of header, the payload, a checksum.
//!
//! | bytes | what |
//! |---|---|
//! | 2 | `AZ` |
//! | 1 | format version ([`FORMAT_VERSION`]) in the high nibble, colour in the low one (1 grey, 3 RGB) |
//! | 4 | the model's fingerprint (the first 4 bytes of [`crate::trained::TrainedModel::fingerprint`]) |
//! | 1-3 + 1-3 | width and height (LEB128 varints), the image's own size before any padding |
//! | 1-5 | payload length (LEB128 varint) |
//! | n | payload (the range-coded latents) |
//! | 4 | CRC-32 of every byte before it |
//!
//! Small on purpose: at MNIST's 28x28 every byte is 0.01 bits per pixel, and the header of a
//! 28x28 digit is 15 bytes. The fingerprint is a guard against mistakes (decoding with the
//! wrong model), not a signature.

use crate::error::{Error, Result};
use std::path::Path;

/// The first bytes of a `.aez` file.
pub const MAGIC: &[u8; 2] = b"AZ";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 2;
/// Bytes of the model fingerprint a file records.
pub const TAG_LEN: usize = 4;
/// The smallest header and checksum around a payload (sizes and length below 128).
pub const MIN_OVERHEAD: usize = 2 + 1 + TAG_LEN + 1 + 1 + 1 + 4;

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
    /// The first bytes of the fingerprint of the model that made it.
    pub model: [u8; TAG_LEN],
    /// The image's width in pixels.
    pub width: u16,
    /// The image's height in pixels.
    pub height: u16,
    /// Grey or RGB.
    pub colour: Colour,
    /// The range-coded latents.
    pub payload: Vec<u8>,
}

/// The bytes of a model fingerprint (hex, as [`crate::trained::TrainedModel::fingerprint`]
/// gives it) that a file records.
pub fn model_tag(fingerprint: &str) -> Result<[u8; TAG_LEN]> {
    let bytes: Vec<u8> = (0..TAG_LEN)
        .map(|i| {
            fingerprint
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Input(format!("`{fingerprint}` is not a model fingerprint")))?;
    Ok(bytes.try_into().expect("TAG_LEN bytes"))
}

/// Appends `value` as an unsigned LEB128 varint.
fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return;
        }
        bytes.push(low | 0x80);
    }
}

/// Reads an unsigned LEB128 varint of at most `max_bytes` at `*at` (`None` when it runs past
/// the end, is longer, or is not in its shortest form).
fn get_varint(bytes: &[u8], at: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // An overlong encoding (a last byte of 0 after the first) is refused, so that
            // every file has one spelling (found by the aez_file fuzz target).
            return (i == 0 || byte != 0).then_some(value);
        }
    }
    None
}

impl Compressed {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(MIN_OVERHEAD + 6 + self.payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.push((FORMAT_VERSION << 4) | self.colour.channels() as u8);
        bytes.extend_from_slice(&self.model);
        put_varint(&mut bytes, u64::from(self.width));
        put_varint(&mut bytes, u64::from(self.height));
        put_varint(&mut bytes, self.payload.len() as u64);
        bytes.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }

    /// Bytes of this file's header and checksum.
    pub fn overhead(&self) -> usize {
        let varint = |v: u64| ((64 - v.max(1).leading_zeros()) as usize).div_ceil(7);
        2 + 1
            + TAG_LEN
            + varint(u64::from(self.width))
            + varint(u64::from(self.height))
            + varint(self.payload.len() as u64)
            + 4
    }

    /// Reads a file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |what: &str| Error::data(path, what.to_string());
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad(
                "is not an aekit compressed image (it does not start with AZ)",
            ));
        }
        if bytes.len() < MIN_OVERHEAD {
            return Err(bad("is truncated: it is shorter than its header"));
        }
        let version = bytes[2] >> 4;
        if version != FORMAT_VERSION {
            return Err(Error::data(
                path,
                format!(
                    "is a compressed image of format version {version}; this aekit reads \
                     version {FORMAT_VERSION}"
                ),
            ));
        }
        let colour = match bytes[2] & 0x0F {
            1 => Colour::Grey,
            3 => Colour::Rgb,
            other => {
                return Err(Error::data(
                    path,
                    format!("has {other} colour channels; a compressed image has 1 or 3"),
                ));
            }
        };
        let model: [u8; TAG_LEN] = bytes[3..3 + TAG_LEN].try_into().expect("TAG_LEN bytes");
        let mut at = 3 + TAG_LEN;
        let truncated = || bad("is truncated or corrupted: its header's sizes cannot be read");
        let size = |at: &mut usize| -> Result<u16> {
            let v = get_varint(bytes, at, 3).ok_or_else(truncated)?;
            u16::try_from(v).map_err(|_| bad("is corrupted: it records a size above 65535"))
        };
        let width = size(&mut at)?;
        let height = size(&mut at)?;
        let length = get_varint(bytes, &mut at, 5).ok_or_else(truncated)?;
        let expected = usize::try_from(length)
            .ok()
            .and_then(|n| at.checked_add(n))
            .and_then(|n| n.checked_add(4));
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
            payload: bytes[at..body].to_vec(),
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
        assert_eq!(bytes.len(), MIN_OVERHEAD + 8);
        assert_eq!(file.overhead(), MIN_OVERHEAD);
        // Sizes of two varint bytes, and the largest.
        for (w, h) in [(300u16, 7u16), (65535, 65535)] {
            let big = Compressed {
                width: w,
                height: h,
                ..sample()
            };
            let bytes = big.to_bytes().unwrap();
            assert_eq!(bytes.len(), big.overhead() + 8);
            assert_eq!(
                Compressed::from_bytes(&bytes, Path::new("x.aez")).unwrap(),
                big
            );
        }
        let path = Path::new("x.aez");
        assert_eq!(Compressed::from_bytes(&bytes, path).unwrap(), file);
        file.check_model(FINGERPRINT, path).unwrap();
    }

    #[test]
    fn damaged_foreign_and_other_models_files_are_named_errors() {
        let bytes = sample().to_bytes().unwrap();
        let path = Path::new("x.aez");
        let error = |b: &[u8]| Compressed::from_bytes(b, path).unwrap_err().to_string();
        for cut in [0, 1, 10, MIN_OVERHEAD, bytes.len() - 1] {
            let e = error(&bytes[..cut]);
            assert!(
                e.contains("x.aez") && (e.contains("truncated") || e.contains("not an aekit")),
                "{cut}: {e}"
            );
        }
        for at in [2, 4, 8, 10, 12, bytes.len() - 2] {
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
        version[2] = (7 << 4) | 1;
        assert!(error(&version).contains("version 7"));
        assert!(error(b"\x89PNG\r\n\x1a\n....").contains("not an aekit compressed image"));
        let other = FINGERPRINT.replace('0', "f");
        let e = sample().check_model(&other, path).unwrap_err().to_string();
        assert!(e.contains("another model") && e.contains("x.aez"), "{e}");
        assert!(model_tag("xyz").is_err());
    }
}
