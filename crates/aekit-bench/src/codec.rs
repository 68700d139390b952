//! The learned-compression benchmark behind `aekit bench codec`: on MNIST test images, bits
//! per pixel, PSNR and SSIM of each trained codec (one per lambda) beside PNG (lossless, for
//! reference), JPEG at several qualities (the `image` crate's encoder) and lossy WebP
//! (libwebp through the `webp` crate). Sizes are counted from the real files, whole and
//! without each format's fixed header (at 28x28 a JPEG header outweighs its data):
//!
//! - aekit: the `.aez` header and checksum ([`Compressed::overhead`]: 14 or 15 bytes at 28x28);
//! - PNG: signature, IHDR, IEND and the IDAT chunk's framing (57 bytes);
//! - JPEG: everything up to the end of the start-of-scan segment, and the EOI marker;
//! - WebP: the RIFF and VP8 chunk headers and the VP8 frame header (30 bytes; lossy files).
//!
//! PSNR is `10 log10(1 / mean MSE)` over all images (8-bit pixels scaled to [0, 1]), SSIM the
//! mean over images (11x11 Gaussian window). Encode and decode speeds are images per second
//! on one thread of the benchmark (the codec's transforms use the kernel threads).

use aekit::apps::compress::{Codec, Picture};
use aekit::codec::container::Compressed;
use aekit::data::Dataset;
use aekit::device::DeviceChoice;
use aekit::error::{Error, Result};
use aekit::run_dir::WeightsChoice;
use aekit::stats::image_quality;
use aekit::trained::TrainedModel;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the benchmark runs.
#[derive(Debug, Clone)]
pub struct CodecOptions {
    /// Trained codec runs (one point each).
    pub runs: Vec<PathBuf>,
    /// The MNIST folder.
    pub data: PathBuf,
    /// The first this many test images.
    pub images: usize,
    /// JPEG qualities.
    pub jpeg_qualities: Vec<u8>,
    /// WebP qualities.
    pub webp_qualities: Vec<u8>,
    /// Where the codecs compute.
    pub device: DeviceChoice,
}

/// One point of the table: a format at one setting.
#[derive(Debug, Clone, PartialEq)]
pub struct CodecPoint {
    /// The format (`aekit`, `JPEG`, `WebP`, `PNG`).
    pub format: String,
    /// Its setting (a run's lambda, a quality).
    pub setting: String,
    /// Bits per pixel of whole files.
    pub bpp: f64,
    /// Bits per pixel without the fixed header.
    pub bpp_no_header: f64,
    /// PSNR (dB) of the decoded images.
    pub psnr: f64,
    /// Mean SSIM of the decoded images.
    pub ssim: f64,
    /// Images encoded per second.
    pub encode_per_s: f64,
    /// Images decoded per second.
    pub decode_per_s: f64,
}

/// Runs the benchmark.
pub fn run(options: &CodecOptions) -> Result<Vec<CodecPoint>> {
    let (_, test) =
        aekit::data::config::load_dataset_path(&options.data, false, &Default::default())?;
    let test = test.ok_or_else(|| Error::data(&options.data, "has no test split"))?;
    let pictures = pictures(&test, options.images);
    let mut points = Vec::new();
    for run in &options.runs {
        points.push(aekit_point(run, &pictures, options.device)?);
    }
    points.push(measure("PNG", "lossless", &pictures, png)?);
    for &q in &options.jpeg_qualities {
        points.push(measure("JPEG", &format!("q{q}"), &pictures, |p| {
            jpeg(p, q)
        })?);
    }
    for &q in &options.webp_qualities {
        points.push(measure("WebP", &format!("q{q}"), &pictures, |p| {
            webp_lossy(p, q)
        })?);
    }
    Ok(points)
}

/// The first `n` images of `data` as pictures (8-bit values, as files hold them).
fn pictures(data: &Dataset, n: usize) -> Vec<Picture> {
    let shape = data.shape;
    let len = shape.len();
    (0..n.min(data.len()))
        .map(|i| Picture {
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
            values: data.values[i * len..(i + 1) * len]
                .iter()
                .map(|v| (v * 255.0).round() / 255.0)
                .collect(),
        })
        .collect()
}

/// An encoded file: its bytes, its header's bytes, and its decoding.
struct Encoded {
    bytes: usize,
    header: usize,
    decoded: Vec<f32>,
    encode_seconds: f64,
    decode_seconds: f64,
}

fn measure(
    format: &str,
    setting: &str,
    pictures: &[Picture],
    codec: impl Fn(&Picture) -> Result<Encoded>,
) -> Result<CodecPoint> {
    let encoded = pictures.iter().map(&codec).collect::<Result<Vec<_>>>()?;
    Ok(point(format, setting, pictures, &encoded))
}

fn point(format: &str, setting: &str, pictures: &[Picture], encoded: &[Encoded]) -> CodecPoint {
    let pixels: usize = pictures.iter().map(|p| p.height * p.width).sum();
    let bytes: usize = encoded.iter().map(|e| e.bytes).sum();
    let headers: usize = encoded.iter().map(|e| e.header).sum();
    let mut squared = 0.0;
    let mut values = 0usize;
    let mut ssim = 0.0;
    for (p, e) in pictures.iter().zip(encoded) {
        for (a, b) in p.values.iter().zip(&e.decoded) {
            squared += f64::from(a - b).powi(2);
        }
        values += p.values.len();
        ssim += image_quality::ssim(&p.values, &e.decoded, p.height, p.width, p.channels, 1.0)
            .unwrap_or(f64::NAN);
    }
    let mse = squared / values.max(1) as f64;
    let n = encoded.len().max(1) as f64;
    let (enc, dec): (f64, f64) = encoded.iter().fold((0.0, 0.0), |(a, b), e| {
        (a + e.encode_seconds, b + e.decode_seconds)
    });
    CodecPoint {
        format: format.into(),
        setting: setting.into(),
        bpp: 8.0 * bytes as f64 / pixels.max(1) as f64,
        bpp_no_header: 8.0 * (bytes - headers) as f64 / pixels.max(1) as f64,
        psnr: if mse > 0.0 {
            -10.0 * mse.log10()
        } else {
            f64::INFINITY
        },
        ssim: ssim / n,
        encode_per_s: n / enc.max(1e-9),
        decode_per_s: n / dec.max(1e-9),
    }
}

fn aekit_point(run: &Path, pictures: &[Picture], device: DeviceChoice) -> Result<CodecPoint> {
    let model = TrainedModel::open(run, device, WeightsChoice::Best)?;
    let codec = Codec::open(&model, true)?;
    let lambda = match &model.config().model {
        aekit::models::ModelConfig::Codec(c) => c.lambda,
        _ => f64::NAN,
    };
    let name = Path::new("bench.aez");
    let encoded = pictures
        .iter()
        .map(|p| {
            let started = Instant::now();
            let file = codec.compress(p, name)?;
            let header = file.overhead();
            let bytes = file.to_bytes()?;
            let encode_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let decoded = codec.decompress(&Compressed::from_bytes(&bytes, name)?, name)?;
            let decode_seconds = started.elapsed().as_secs_f64();
            // As a PNG would hold it: 8-bit pixels.
            let decoded = decoded
                .values
                .iter()
                .map(|v| (v * 255.0).round() / 255.0)
                .collect();
            Ok(Encoded {
                bytes: bytes.len(),
                header,
                decoded,
                encode_seconds,
                decode_seconds,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(point(
        "aekit",
        &format!("lambda {lambda}"),
        pictures,
        &encoded,
    ))
}

fn from_grey(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&v| f32::from(v) / 255.0).collect()
}

fn encoding_error(format: &str, e: impl std::fmt::Display) -> Error {
    Error::Input(format!("{format}: {e}"))
}

fn png(p: &Picture) -> Result<Encoded> {
    use image::ImageEncoder;
    let (w, h) = (p.width as u32, p.height as u32);
    let started = Instant::now();
    let mut file = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut file,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(&p.to_bytes(), w, h, image::ExtendedColorType::L8)
    .map_err(|e| encoding_error("PNG", e))?;
    let encode_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let decoded = image::load_from_memory(&file)
        .map_err(|e| encoding_error("PNG", e))?
        .to_luma8();
    let decode_seconds = started.elapsed().as_secs_f64();
    Ok(Encoded {
        bytes: file.len(),
        header: 57,
        decoded: from_grey(decoded.as_raw()),
        encode_seconds,
        decode_seconds,
    })
}

fn jpeg(p: &Picture, quality: u8) -> Result<Encoded> {
    use image::ImageEncoder;
    let (w, h) = (p.width as u32, p.height as u32);
    let started = Instant::now();
    let mut file = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, quality)
        .write_image(&p.to_bytes(), w, h, image::ExtendedColorType::L8)
        .map_err(|e| encoding_error("JPEG", e))?;
    let encode_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let decoded = image::load_from_memory(&file)
        .map_err(|e| encoding_error("JPEG", e))?
        .to_luma8();
    let decode_seconds = started.elapsed().as_secs_f64();
    Ok(Encoded {
        bytes: file.len(),
        header: jpeg_header(&file) + 2,
        decoded: from_grey(decoded.as_raw()),
        encode_seconds,
        decode_seconds,
    })
}

/// Bytes of a JPEG file up to the end of its start-of-scan segment.
fn jpeg_header(file: &[u8]) -> usize {
    let mut at = 2; // SOI
    while at + 4 <= file.len() && file[at] == 0xFF {
        let marker = file[at + 1];
        let length = usize::from(u16::from_be_bytes([file[at + 2], file[at + 3]]));
        at += 2 + length;
        if marker == 0xDA {
            return at.min(file.len());
        }
    }
    at.min(file.len())
}

fn webp_lossy(p: &Picture, quality: u8) -> Result<Encoded> {
    let (w, h) = (p.width as u32, p.height as u32);
    let rgb: Vec<u8> = p.to_bytes().iter().flat_map(|&v| [v, v, v]).collect();
    let started = Instant::now();
    let file = webp::Encoder::from_rgb(&rgb, w, h)
        .encode(f32::from(quality))
        .to_vec();
    let encode_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let decoded = webp::Decoder::new(&file)
        .decode()
        .ok_or_else(|| encoding_error("WebP", "cannot decode its own file"))?
        .to_image()
        .to_luma8();
    let decode_seconds = started.elapsed().as_secs_f64();
    Ok(Encoded {
        bytes: file.len(),
        header: 30.min(file.len()),
        decoded: from_grey(decoded.as_raw()),
        encode_seconds,
        decode_seconds,
    })
}

/// The points as a Markdown table.
pub fn table(points: &[CodecPoint]) -> String {
    let mut text = String::from(
        "| format | setting | bpp (whole files) | bpp (no header) | PSNR dB | SSIM | encode img/s | decode img/s |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let _ = writeln!(
            text,
            "| {} | {} | {:.3} | {:.3} | {:.2} | {:.4} | {:.0} | {:.0} |",
            p.format,
            p.setting,
            p.bpp,
            p.bpp_no_header,
            p.psnr,
            p.ssim,
            p.encode_per_s,
            p.decode_per_s
        );
    }
    text
}

/// The rate-distortion plot: PSNR against whole-file bits per pixel, a curve per format.
pub fn plot(points: &[CodecPoint], path: &Path) -> Result<()> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for p in points.iter().filter(|p| p.psnr.is_finite()) {
        match series.iter_mut().find(|(name, _)| *name == p.format) {
            Some((_, s)) => s.push((p.bpp, p.psnr)),
            None => series.push((p.format.clone(), vec![(p.bpp, p.psnr)])),
        }
    }
    aekit::plots::curves(
        path,
        "MNIST test images: PSNR against bits per pixel (whole files)",
        ["bits per pixel", "PSNR (dB)"],
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit() -> Picture {
        Picture {
            channels: 1,
            height: 28,
            width: 28,
            values: (0..784)
                .map(|i| if (i % 28) / 9 == 1 { 1.0 } else { 0.0 })
                .collect(),
        }
    }

    #[test]
    fn baselines_decode_what_they_encode_and_headers_are_counted() {
        let p = digit();
        let png = png(&p).unwrap();
        assert_eq!(png.decoded, p.values, "PNG is lossless");
        assert!(png.bytes > png.header);
        let jpeg = jpeg(&p, 50).unwrap();
        assert!(
            jpeg.header > 100 && jpeg.header < jpeg.bytes,
            "{} of {}",
            jpeg.header,
            jpeg.bytes
        );
        let webp = webp_lossy(&p, 50).unwrap();
        assert_eq!(webp.decoded.len(), 784);
        let point = point("JPEG", "q50", std::slice::from_ref(&p), &[jpeg]);
        assert!(
            point.psnr > 15.0 && point.bpp > point.bpp_no_header,
            "{point:?}"
        );
        let table = table(&[point]);
        assert_eq!(table.lines().count(), 3);
    }
}
