//! Learned compression with a trained codec (`aekit compress`, `aekit decompress`): an
//! image of any size is padded to the transforms' multiple, analysed, its latents rounded
//! and range-coded with the model's integer tables into a `.aez` file
//! ([`crate::codec::container`]); decompression decodes the latents with the same tables,
//! synthesises and crops back.
//!
//! The tables are made once per weight file from the prior and kept in the run
//! (`entropy-tables-<best|final>.json`, with the fingerprint of the model they belong to):
//! `compress` writes them when they are missing, `decompress` only reads them, so a file
//! decodes to the same latents on every machine.

use crate::codec::container::{self, Colour, Compressed};
use crate::codec::entropy::{self, ChannelTable};
use crate::error::{Error, Result};
use crate::models::{Autoencoder, CodecModel};
use crate::trained::TrainedModel;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An image as the codec sees it: values in [0, 1], channels x height x width.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `channels * height * width` values, channel after channel.
    pub values: Vec<f32>,
}

impl Picture {
    /// Reads an image file at its own size: grey images stay grey, colour ones are RGB
    /// (an alpha channel is dropped).
    pub fn load(path: &Path) -> Result<Self> {
        let image = image::open(path)
            .map_err(|e| Error::data(path, format!("cannot read the image: {e}")))?;
        let grey = !image.color().has_color();
        let (width, height) = (image.width() as usize, image.height() as usize);
        let values: Vec<f32> = if grey {
            image
                .to_luma8()
                .into_raw()
                .iter()
                .map(|&v| f32::from(v) / 255.0)
                .collect()
        } else {
            let rgb = image.to_rgb8().into_raw();
            (0..3)
                .flat_map(|c| {
                    rgb.iter()
                        .skip(c)
                        .step_by(3)
                        .map(|&v| f32::from(v) / 255.0)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        Ok(Self {
            channels: if grey { 1 } else { 3 },
            height,
            width,
            values,
        })
    }

    /// The picture as 8-bit pixels, interleaved (what a PNG holds).
    pub fn to_bytes(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        (0..plane)
            .flat_map(|i| (0..self.channels).map(move |c| (i, c)))
            .map(|(i, c)| byte(self.values[c * plane + i]))
            .collect()
    }

    /// Writes the picture as a PNG (atomically).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let (w, h) = (self.width as u32, self.height as u32);
        let bytes = self.to_bytes();
        let tmp = crate::run_dir::tmp_path(path).with_extension("png");
        let saved = if self.channels == 1 {
            image::GrayImage::from_raw(w, h, bytes)
                .map(|i| i.save_with_format(&tmp, image::ImageFormat::Png))
        } else {
            image::RgbImage::from_raw(w, h, bytes)
                .map(|i| i.save_with_format(&tmp, image::ImageFormat::Png))
        };
        match saved {
            Some(Ok(())) => std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)),
            Some(Err(e)) => Err(Error::data(path, format!("cannot write the image: {e}"))),
            None => Err(Error::data(path, "the picture's size and values disagree")),
        }
    }
}

/// The entropy tables of a weight file, as stored in the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTables {
    /// The model they were made from ([`TrainedModel::fingerprint`]).
    fingerprint: String,
    tables: Vec<ChannelTable>,
}

/// A trained codec ready to compress and decompress: the model and its integer tables.
pub struct Codec<'a> {
    model: &'a TrainedModel,
    codec: &'a CodecModel,
    tables: Vec<ChannelTable>,
    fingerprint: String,
}

/// `RUN/entropy-tables-<best|final>.json` of the weights `model` was opened with.
pub fn tables_path(model: &TrainedModel) -> PathBuf {
    let stem = if model.weights_path() == model.run().model_path() {
        "final"
    } else {
        "best"
    };
    model
        .run()
        .path()
        .join(format!("entropy-tables-{stem}.json"))
}

impl<'a> Codec<'a> {
    /// The codec of `model` with its stored tables; when `create` and they are missing (or
    /// belong to other weights), they are made from the prior and stored first.
    pub fn open(model: &'a TrainedModel, create: bool) -> Result<Self> {
        let Autoencoder::Codec(codec) = model.model() else {
            return Err(Error::Unsupported(format!(
                "{}: a `{}` model does not compress; train a codec (kind = \"codec\", e.g. \
                 configs/codec.toml)",
                model.run().path().display(),
                model.kind()
            )));
        };
        let fingerprint = model.fingerprint()?;
        let path = tables_path(model);
        let stored: Option<StoredTables> = if path.is_file() {
            Some(crate::run_dir::read_json(&path)?)
        } else {
            None
        };
        let tables = match stored {
            Some(stored) if stored.fingerprint == fingerprint => {
                for table in &stored.tables {
                    table
                        .validate()
                        .map_err(|e| Error::data(&path, e.to_string()))?;
                }
                if stored.tables.len() != codec.latent_channels() {
                    return Err(Error::data(
                        &path,
                        format!(
                            "holds {} tables for a model with {} latent channels",
                            stored.tables.len(),
                            codec.latent_channels()
                        ),
                    ));
                }
                stored.tables
            }
            _ if create => {
                let tables = codec.entropy_tables()?;
                let stored = StoredTables {
                    fingerprint: fingerprint.clone(),
                    tables,
                };
                crate::run_dir::write_json(&path, &stored)?;
                stored.tables
            }
            Some(_) => {
                return Err(Error::data(
                    &path,
                    "belongs to other weights of this run; run `aekit compress` with these \
                     weights to make them again (files compressed with the old ones cannot be \
                     decoded with them)",
                ));
            }
            None => {
                return Err(Error::data(
                    &path,
                    "is missing: the run has no entropy tables for these weights (`aekit \
                     compress` writes them; copy them with the run)",
                ));
            }
        };
        Ok(Self {
            model,
            codec,
            tables,
            fingerprint,
        })
    }

    fn check_channels(&self, channels: usize, what: &Path) -> Result<()> {
        let expected = self.model.sample_shape().channels;
        if channels != expected {
            return Err(Error::data(
                what,
                format!(
                    "has {} colour channel{}; the codec was trained on {} ({})",
                    channels,
                    if channels == 1 { "" } else { "s" },
                    expected,
                    if expected == 1 {
                        "grey images"
                    } else {
                        "RGB images"
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Compresses `picture` (read from `source`, named in errors).
    pub fn compress(&self, picture: &Picture, source: &Path) -> Result<Compressed> {
        self.check_channels(picture.channels, source)?;
        if picture.width > usize::from(u16::MAX) || picture.height > usize::from(u16::MAX) {
            return Err(Error::data(source, "is larger than 65535 pixels on a side"));
        }
        let m = self.codec.size_multiple();
        let (ph, pw) = (
            picture.height.next_multiple_of(m),
            picture.width.next_multiple_of(m),
        );
        let padded = pad_replicate(picture, ph, pw);
        let device = self.model.device();
        let x = Tensor::<4>::from_data(
            TensorData::new(padded, [1, picture.channels, ph, pw]),
            device,
        );
        let latents = self.codec.analyse(x).round();
        let [_, c, h, w] = latents.dims();
        let symbols: Vec<i32> = latents
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Input(format!("latents: {e:?}")))?
            .iter()
            .map(|&v| v as i32)
            .collect();
        debug_assert_eq!(symbols.len(), c * h * w);
        let plane = h * w;
        let payload = entropy::encode(&self.tables, &symbols, |i| i / plane)?;
        Ok(Compressed {
            model: container::model_tag(&self.fingerprint)?,
            width: picture.width as u16,
            height: picture.height as u16,
            colour: if picture.channels == 1 {
                Colour::Grey
            } else {
                Colour::Rgb
            },
            payload,
        })
    }

    /// Decompresses `file` (read from `source`, named in errors).
    pub fn decompress(&self, file: &Compressed, source: &Path) -> Result<Picture> {
        file.check_model(&self.fingerprint, source)?;
        self.check_channels(file.colour.channels(), source)?;
        let m = self.codec.size_multiple();
        let (height, width) = (usize::from(file.height), usize::from(file.width));
        let (h, w) = (height.div_ceil(m), width.div_ceil(m));
        let c = self.codec.latent_channels();
        let plane = h * w;
        let symbols = entropy::decode(&self.tables, &file.payload, c * plane, |i| i / plane)
            .map_err(|e| Error::data(source, e.to_string()))?;
        let latents: Vec<f32> = symbols.iter().map(|&s| s as f32).collect();
        let device = self.model.device();
        let y = Tensor::<4>::from_data(TensorData::new(latents, [1, c, h, w]), device);
        let x = self.codec.synthesise(y).clamp(0.0, 1.0);
        let [_, channels, ph, pw] = x.dims();
        let padded = x
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Input(format!("output: {e:?}")))?;
        let mut values = Vec::with_capacity(channels * height * width);
        for ch in 0..channels {
            for row in 0..height {
                let start = ch * ph * pw + row * pw;
                values.extend_from_slice(&padded[start..start + width]);
            }
        }
        Ok(Picture {
            channels,
            height,
            width,
            values,
        })
    }
}

/// `picture` padded to `height x width` by repeating its last row and column.
fn pad_replicate(picture: &Picture, height: usize, width: usize) -> Vec<f32> {
    let (h, w) = (picture.height, picture.width);
    let mut out = Vec::with_capacity(picture.channels * height * width);
    for c in 0..picture.channels {
        for y in 0..height {
            let row = &picture.values[c * h * w + y.min(h - 1) * w..][..w];
            out.extend_from_slice(row);
            out.extend(std::iter::repeat_n(row[w - 1], width - w));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_repeats_the_edges_and_pictures_interleave_for_png() {
        let picture = Picture {
            channels: 1,
            height: 2,
            width: 3,
            values: vec![0.0, 0.5, 1.0, 0.25, 0.75, 1.0],
        };
        let padded = pad_replicate(&picture, 4, 4);
        assert_eq!(
            padded,
            vec![
                0.0, 0.5, 1.0, 1.0, 0.25, 0.75, 1.0, 1.0, 0.25, 0.75, 1.0, 1.0, 0.25, 0.75, 1.0,
                1.0
            ]
        );
        let rgb = Picture {
            channels: 3,
            height: 1,
            width: 2,
            values: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        };
        assert_eq!(rgb.to_bytes(), vec![255, 0, 0, 0, 255, 0]);
    }
}
