//! Image folders: PNG and JPEG files loaded as samples, either all directly in one folder
//! (unlabelled) or in one sub-folder per class (labels are the sorted sub-folder names).
//!
//! Images are converted to grey (luma) or RGB and, when a target size is given, resized with
//! a triangle (bilinear) filter. Values are scaled to [0, 1] and stored channel by channel
//! (`channels x height x width`), as [`SampleShape`] says. The order is deterministic:
//! classes by name, then files by name.
//!
//! Whether a file is an image is told by its content (the PNG/JPEG signature), not its name.
//! Other files are skipped with a warning, or are an error in strict mode; hidden files
//! (names starting with `.`, such as `.DS_Store`) are always skipped silently.

use super::config::Color;
use super::{Dataset, SampleShape};
use crate::error::{Error, Result};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageFormat};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How images are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageOptions {
    /// Resize every image to `[height, width]`; without it all images must have one size.
    pub size: Option<[usize; 2]>,
    /// Grey (one channel) or RGB (three channels).
    pub color: Color,
    /// A file that is not an image is an error rather than skipped with a warning.
    pub strict: bool,
}

/// Whether a file name ends in `.png`, `.jpg` or `.jpeg` (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["png", "jpg", "jpeg"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Loads a folder of images, or a single image file as a data set of one sample.
pub fn load_path(path: &Path, options: &ImageOptions) -> Result<Dataset> {
    if path.is_dir() {
        load_folder(path, options)
    } else {
        load_file(path, options)
    }
}

/// Loads one image file as a data set of one sample.
pub fn load_file(path: &Path, options: &ImageOptions) -> Result<Dataset> {
    let Some(sample) = load_sample(path, options)? else {
        return Err(Error::data(path, "is not a PNG or JPEG image"));
    };
    let [height, width] = sample.size;
    Ok(Dataset {
        name: path.display().to_string(),
        shape: SampleShape::image(options.color.channels(), height, width),
        values: sample.values,
        labels: None,
        class_names: Vec::new(),
        paths: vec![path.to_path_buf()],
        targets: Vec::new(),
        paired: None,
        unrotated: None,
    })
}

/// Loads a folder of images: directly in it (unlabelled), or in one sub-folder per class
/// (labelled, class names = the sub-folder names in sorted order).
pub fn load_folder(dir: &Path, options: &ImageOptions) -> Result<Dataset> {
    let entries = visible_entries(dir)?;
    let (folders, files): (Vec<PathBuf>, Vec<PathBuf>) =
        entries.into_iter().partition(|p| p.is_dir());

    let root = load_all(&files, options)?;
    let mut classes = Vec::new();
    for folder in &folders {
        let (sub_folders, sub_files): (Vec<PathBuf>, Vec<PathBuf>) = visible_entries(folder)?
            .into_iter()
            .partition(|p| p.is_dir());
        for sub_folder in sub_folders {
            tracing::warn!(
                "skipping {}: class folders are not searched further down",
                sub_folder.display()
            );
        }
        classes.push((folder, load_all(&sub_files, options)?));
    }

    let has_classes = classes.iter().any(|(_, loaded)| loaded.has_images());
    let mut samples: Vec<(LoadedSample, Option<u32>)> = Vec::new();
    let mut class_names = Vec::new();
    if has_classes {
        if let Some(sample) = root.images.first() {
            return Err(Error::data(
                dir,
                format!(
                    "holds images both directly ({}) and in class sub-folders; put every image \
                     in a class sub-folder, or none",
                    sample.path.display()
                ),
            ));
        }
        root.report_skipped(options.strict)?;
        for (folder, loaded) in classes {
            if !loaded.has_images() {
                tracing::warn!(
                    "skipping {}: it holds no images, so it is not a class",
                    folder.display()
                );
                continue;
            }
            loaded.report_skipped(options.strict)?;
            let label = class_names.len() as u32;
            class_names.push(name_of(folder));
            samples.extend(loaded.images.into_iter().map(|s| (s, Some(label))));
        }
    } else {
        root.report_skipped(options.strict)?;
        for (folder, loaded) in &classes {
            loaded.report_skipped(options.strict)?;
            tracing::warn!("skipping {}: it holds no images", folder.display());
        }
        samples.extend(root.images.into_iter().map(|s| (s, None)));
    }

    let Some((first, _)) = samples.first() else {
        return Err(Error::data(
            dir,
            format!(
                "no images found in {} (looked for PNG and JPEG files in it and in its \
                 sub-folders)",
                dir.display()
            ),
        ));
    };
    let [height, width] = first.size;
    if let Some((other, _)) = samples.iter().find(|(s, _)| s.size != first.size) {
        return Err(Error::data(
            dir,
            format!(
                "images differ in size: {} is {}x{} but {} is {}x{} (height x width); set \
                 data.image_size = [height, width] to resize them all",
                first.path.display(),
                height,
                width,
                other.path.display(),
                other.size[0],
                other.size[1]
            ),
        ));
    }
    let channels = options.color.channels();
    let mut values = Vec::with_capacity(samples.len() * channels * height * width);
    let mut labels = Vec::with_capacity(samples.len());
    let mut paths = Vec::with_capacity(samples.len());
    for (sample, label) in samples {
        values.extend_from_slice(&sample.values);
        labels.extend(label);
        paths.push(sample.path);
    }
    Ok(Dataset {
        name: dir.display().to_string(),
        shape: SampleShape::image(channels, height, width),
        values,
        labels: has_classes.then_some(labels),
        class_names,
        paths,
        targets: Vec::new(),
        paired: None,
        unrotated: None,
    })
}

/// One image converted to a sample.
struct LoadedSample {
    path: PathBuf,
    /// `[height, width]` of the sample (after resizing).
    size: [usize; 2],
    values: Vec<f32>,
}

/// The images of one folder and the files in it that are not images.
struct LoadedFolder {
    images: Vec<LoadedSample>,
    skipped: Vec<PathBuf>,
}

impl LoadedFolder {
    fn has_images(&self) -> bool {
        !self.images.is_empty()
    }

    /// Warns about each skipped file, or fails on the first one in strict mode.
    fn report_skipped(&self, strict: bool) -> Result<()> {
        for path in &self.skipped {
            if strict {
                return Err(Error::data(
                    path,
                    "is not a PNG or JPEG image (strict mode: remove it or turn `strict` off to \
                     skip it)",
                ));
            }
            tracing::warn!("skipping {}: not a PNG or JPEG image", path.display());
        }
        Ok(())
    }
}

/// Loads `files` in parallel, keeping their order; the first error in that order wins, so
/// the result does not depend on thread timing.
fn load_all(files: &[PathBuf], options: &ImageOptions) -> Result<LoadedFolder> {
    let loaded: Vec<Result<Option<LoadedSample>>> =
        files.par_iter().map(|p| load_sample(p, options)).collect();
    let mut folder = LoadedFolder {
        images: Vec::new(),
        skipped: Vec::new(),
    };
    for (path, result) in files.iter().zip(loaded) {
        match result? {
            Some(sample) => folder.images.push(sample),
            None => folder.skipped.push(path.clone()),
        }
    }
    Ok(folder)
}

/// Reads and converts one image; `None` when the file is not a PNG or JPEG image at all.
fn load_sample(path: &Path, options: &ImageOptions) -> Result<Option<LoadedSample>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let format = match image::guess_format(&bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => format,
        _ => return Ok(None),
    };
    let image = decode_within_limits(path, &bytes, format)?;
    let (size, values) = convert(&image, options);
    Ok(Some(LoadedSample {
        path: path.to_path_buf(),
        size,
        values,
    }))
}

/// Images wider or taller than this are refused before they are decoded: a few hundred
/// kilobytes of PNG can hold a 20000 x 20000 image that takes gigabytes to decode.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// The most memory the decoder may allocate for one image.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Reads the image's size from its header, refuses one above the limits, then decodes it
/// with the decoder's own allocation limits set.
fn decode_within_limits(path: &Path, bytes: &[u8], format: ImageFormat) -> Result<DynamicImage> {
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| Error::data(path, format!("cannot read the image's header: {e}")))?;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::data(
            path,
            format!(
                "the image is {width}x{height} pixels; aekit decodes images of at most \
                 {MAX_IMAGE_SIDE} pixels a side (shrink it first)"
            ),
        ));
    }
    // The JPEG decoder fills missing scan data in rather than failing, so a few hundred bytes
    // of header claiming 8192x8192 would decode (for seconds) as a grey image. Every 8x8 block
    // costs at least one bit of Huffman code: a file shorter than that is truncated.
    let least_bytes = u64::from(width) * u64::from(height) / 512;
    if format == ImageFormat::Jpeg && (bytes.len() as u64) < least_bytes {
        return Err(Error::data(
            path,
            format!(
                "file is truncated: a {width}x{height} JPEG image needs at least {least_bytes} \
                 bytes, found {}",
                bytes.len()
            ),
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut decoder = reader();
    decoder.limits(limits);
    decoder
        .decode()
        .map_err(|e| Error::data(path, format!("cannot decode the image: {e}")))
}

/// Converts an image to the sample values: colour, size, channel-by-channel layout, [0, 1].
fn convert(image: &DynamicImage, options: &ImageOptions) -> ([usize; 2], Vec<f32>) {
    let own_size = [image.height() as usize, image.width() as usize];
    let [height, width] = options.size.unwrap_or(own_size);
    let resize = own_size != [height, width];
    let values: Vec<f32> = match options.color {
        Color::Grey => {
            let mut grey = image.to_luma32f();
            if resize {
                grey = imageops::resize(&grey, width as u32, height as u32, FilterType::Triangle);
            }
            grey.into_raw()
        }
        Color::Rgb => {
            let mut rgb = image.to_rgb32f();
            if resize {
                rgb = imageops::resize(&rgb, width as u32, height as u32, FilterType::Triangle);
            }
            // Interleaved RGB to one plane per channel.
            let raw = rgb.into_raw();
            (0..3)
                .flat_map(|c| raw.iter().skip(c).step_by(3).copied())
                .collect()
        }
    };
    // Clamped so the [0, 1] promise holds whatever a conversion or filter rounds to.
    let values = values.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    ([height, width], values)
}

/// The entries of a folder that are not hidden, sorted by name.
fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};
    use std::sync::{Arc, Mutex};

    fn grey(dir: &Path, name: &str, width: u32, height: u32, value: u8) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        GrayImage::from_pixel(width, height, Luma([value]))
            .save(&path)
            .unwrap();
        path
    }

    /// Records the messages of the events emitted on this thread.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{value:?}"));
                }
            }
            let mut text = format!("{} ", event.metadata().level());
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn with_recorded_events<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let result = tracing::subscriber::with_default(Recorder(events.clone()), f);
        let events = events.lock().unwrap().clone();
        (result, events)
    }

    #[test]
    fn flat_folder_loads_sorted_in_unit_range() {
        let dir = tempfile::tempdir().unwrap();
        grey(dir.path(), "b.png", 5, 4, 255);
        grey(dir.path(), "a.png", 5, 4, 0);
        let path = dir.path().join("c.jpg");
        RgbImage::from_pixel(5, 4, Rgb([128, 128, 128]))
            .save(&path)
            .unwrap();
        let data = load_folder(dir.path(), &ImageOptions::default()).unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data.shape, SampleShape::image(1, 4, 5));
        assert!(data.labels.is_none());
        assert!(data.sample(0).iter().all(|&v| v == 0.0));
        assert!(data.sample(1).iter().all(|&v| v == 1.0));
        assert!(data.sample(2).iter().all(|&v| (v - 0.5).abs() < 0.05));
    }

    #[test]
    fn class_sub_folders_give_labels() {
        let dir = tempfile::tempdir().unwrap();
        grey(dir.path(), "dogs/1.png", 3, 3, 10);
        grey(dir.path(), "cats/2.png", 3, 3, 20);
        grey(dir.path(), "cats/1.png", 3, 3, 30);
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let data = load_folder(dir.path(), &ImageOptions::default()).unwrap();
        assert_eq!(data.class_names, ["cats", "dogs"]);
        assert_eq!(data.labels.as_deref(), Some(&[0, 0, 1][..]));
        // cats/1.png comes before cats/2.png.
        assert!((data.sample(0)[0] - 30.0 / 255.0).abs() < 1e-6);
        assert_eq!(data.label_counts(), Some(vec![2, 1]));
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_folder(dir.path(), &ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("no images found in {}", dir.path().display())),
            "{error}"
        );
    }

    #[test]
    fn non_image_file_is_skipped_with_a_warning_or_an_error_when_strict() {
        let dir = tempfile::tempdir().unwrap();
        grey(dir.path(), "a.png", 4, 4, 1);
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, "not an image").unwrap();
        std::fs::write(dir.path().join(".DS_Store"), "hidden").unwrap();

        let (data, events) =
            with_recorded_events(|| load_folder(dir.path(), &ImageOptions::default()));
        assert_eq!(data.unwrap().len(), 1);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].starts_with("WARN"), "{events:?}");
        assert!(events[0].contains("notes.txt"), "{events:?}");

        let strict = ImageOptions {
            strict: true,
            ..ImageOptions::default()
        };
        let error = load_folder(dir.path(), &strict).unwrap_err().to_string();
        assert!(error.contains(&notes.display().to_string()), "{error}");
        assert!(error.contains("not a PNG or JPEG image"), "{error}");
    }

    #[test]
    fn corrupt_image_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = grey(dir.path(), "a.png", 4, 4, 1);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let error = load_folder(dir.path(), &ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("a.png") && error.contains("cannot decode"),
            "{error}"
        );
    }

    #[test]
    fn a_huge_image_is_refused_from_its_header_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        // A 20000 x 20000 grey PNG compresses to a few hundred kilobytes.
        let file = std::fs::File::create(&path).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 20_000, 20_000);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder
            .write_header()
            .unwrap()
            .into_stream_writer()
            .unwrap();
        let row = vec![0u8; 20_000];
        for _ in 0..20_000 {
            std::io::Write::write_all(&mut writer, &row).unwrap();
        }
        writer.finish().unwrap();
        let options = ImageOptions {
            size: Some([8, 8]),
            color: Color::Grey,
            strict: false,
        };
        let error = load_file(&path, &options).unwrap_err().to_string();
        assert!(
            error.contains("20000x20000") && error.contains("at most"),
            "{error}"
        );
    }

    #[test]
    fn mixed_sizes_need_a_resize() {
        let dir = tempfile::tempdir().unwrap();
        let a = grey(dir.path(), "a.png", 8, 6, 100);
        let b = grey(dir.path(), "b.png", 5, 7, 200);
        let error = load_folder(dir.path(), &ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("images differ in size"), "{error}");
        assert!(
            error.contains(&format!("{} is 6x8", a.display())),
            "{error}"
        );
        assert!(
            error.contains(&format!("{} is 7x5", b.display())),
            "{error}"
        );
        assert!(error.contains("data.image_size"), "{error}");

        let resized = ImageOptions {
            size: Some([4, 3]),
            color: Color::Rgb,
            strict: false,
        };
        let data = load_folder(dir.path(), &resized).unwrap();
        assert_eq!(data.shape, SampleShape::image(3, 4, 3));
        assert_eq!(data.len(), 2);
        let (lo, hi) = data.value_range();
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        assert!(
            data.sample(0)
                .iter()
                .all(|&v| (v - 100.0 / 255.0).abs() < 1e-3)
        );
    }

    #[test]
    fn rgb_is_stored_channel_by_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("red.png");
        RgbImage::from_pixel(2, 2, Rgb([255, 0, 51]))
            .save(&path)
            .unwrap();
        let options = ImageOptions {
            color: Color::Rgb,
            ..ImageOptions::default()
        };
        let data = load_file(&path, &options).unwrap();
        let expected = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2];
        assert_eq!(data.values.len(), expected.len());
        for (value, expected) in data.values.iter().zip(expected) {
            assert!((value - expected).abs() < 1e-6, "{:?}", data.values);
        }
        let error = load_file(&dir.path().join("missing.png"), &options)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing.png"), "{error}");
    }

    #[test]
    fn images_both_loose_and_in_classes_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        grey(dir.path(), "loose.png", 3, 3, 1);
        grey(dir.path(), "class/a.png", 3, 3, 1);
        let error = load_folder(dir.path(), &ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("loose.png") && error.contains("class sub-folder"),
            "{error}"
        );
    }
}
