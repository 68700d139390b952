//! Full-reference image quality: peak signal-to-noise ratio and the structural similarity
//! index (SSIM) of Wang et al. 2004, for judging reconstructions against their originals.
//!
//! SSIM matches scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=...)`: an 11x11 Gaussian window (sigma 1.5),
//! population covariances, scipy.ndimage's `reflect` border mode, and a crop of the window
//! radius from every side before averaging, so numbers agree with the Python tooling used in
//! the literature. Images are channel-major (CHW): all of channel 0's rows, then channel 1's.

/// Standard deviation of the Gaussian window (Wang et al. 2004).
const SIGMA: f64 = 1.5;
/// Window radius: scipy's `int(truncate * sigma + 0.5)` with scikit-image's `truncate = 3.5`,
/// giving the 11-tap window of Wang et al.
const RADIUS: usize = 5;
/// Side of the square window.
const WINDOW: usize = 2 * RADIUS + 1;
/// Luminance stabiliser: `C1 = (K1 * data_range)^2`.
const K1: f64 = 0.01;
/// Contrast stabiliser: `C2 = (K2 * data_range)^2`.
const K2: f64 = 0.03;

/// Peak signal-to-noise ratio of `test` against `reference` in decibels,
/// `10 log10(peak^2 / MSE)`, with `peak` the largest possible pixel value (the data range).
///
/// Identical inputs give `f64::INFINITY`. Inputs of different lengths, or empty inputs, have
/// no PSNR and give `f64::NAN`.
pub fn psnr(reference: &[f32], test: &[f32], peak: f64) -> f64 {
    if reference.len() != test.len() || reference.is_empty() {
        return f64::NAN;
    }
    let squared_error: f64 = reference
        .iter()
        .zip(test)
        .map(|(&r, &t)| (f64::from(r) - f64::from(t)).powi(2))
        .sum();
    let mean_squared_error = squared_error / reference.len() as f64;
    if mean_squared_error == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (peak * peak / mean_squared_error).log10()
}

/// Mean structural similarity of `test` against `reference`, both `channels x height x
/// width` in channel-major order: SSIM is computed per channel and the channel means are
/// averaged. `data_range` is the spread of possible pixel values (1.0 for `[0, 1]` images).
///
/// Errors when either image has the wrong number of values, when there are no channels, when
/// `data_range` is not positive and finite, or when the image is smaller than the 11x11
/// window in either dimension.
pub fn ssim(
    reference: &[f32],
    test: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    data_range: f64,
) -> Result<f64, String> {
    check_ssim_inputs(reference, test, height, width, channels, data_range)?;
    let kernel = gaussian_kernel();
    let plane = height * width;
    let total: f64 = (0..channels)
        .map(|channel| {
            let span = channel * plane..(channel + 1) * plane;
            let x: Vec<f64> = reference[span.clone()].iter().map(|&v| v.into()).collect();
            let y: Vec<f64> = test[span].iter().map(|&v| v.into()).collect();
            channel_ssim(&x, &y, height, width, &kernel, data_range)
        })
        .sum();
    Ok(total / channels as f64)
}

/// Validates the shapes and range for [`ssim`].
fn check_ssim_inputs(
    reference: &[f32],
    test: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    data_range: f64,
) -> Result<(), String> {
    if channels == 0 {
        return Err("ssim: the image has no channels".to_string());
    }
    if height < WINDOW || width < WINDOW {
        return Err(format!(
            "ssim: the image is {height}x{width}, smaller than the {WINDOW}x{WINDOW} \
             Gaussian window in at least one dimension"
        ));
    }
    let expected = channels * height * width;
    if reference.len() != expected || test.len() != expected {
        return Err(format!(
            "ssim: expected {expected} values ({channels} x {height} x {width}), \
             got {} in the reference and {} in the test image",
            reference.len(),
            test.len()
        ));
    }
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(format!(
            "ssim: data_range must be positive and finite, got {data_range}"
        ));
    }
    Ok(())
}

/// SSIM of one `height x width` plane: the SSIM map from Gaussian-weighted local statistics,
/// averaged over the pixels at least the window radius from every border.
fn channel_ssim(
    x: &[f64],
    y: &[f64],
    height: usize,
    width: usize,
    kernel: &[f64; WINDOW],
    data_range: f64,
) -> f64 {
    let blur = |values: Vec<f64>| gaussian_blur(&values, height, width, kernel);
    let product = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).collect();
    let mean_x = blur(x.to_vec());
    let mean_y = blur(y.to_vec());
    let mean_xx = blur(product(x, x));
    let mean_yy = blur(product(y, y));
    let mean_xy = blur(product(x, y));
    let c1 = (K1 * data_range).powi(2);
    let c2 = (K2 * data_range).powi(2);
    let mut total = 0.0;
    for row in RADIUS..height - RADIUS {
        for column in RADIUS..width - RADIUS {
            let i = row * width + column;
            let (ux, uy) = (mean_x[i], mean_y[i]);
            let variance_x = mean_xx[i] - ux * ux;
            let variance_y = mean_yy[i] - uy * uy;
            let covariance = mean_xy[i] - ux * uy;
            let numerator = (2.0 * ux * uy + c1) * (2.0 * covariance + c2);
            let denominator = (ux * ux + uy * uy + c1) * (variance_x + variance_y + c2);
            total += numerator / denominator;
        }
    }
    total / ((height - 2 * RADIUS) * (width - 2 * RADIUS)) as f64
}

/// The normalised 1-D Gaussian window, as scipy's `_gaussian_kernel1d`.
fn gaussian_kernel() -> [f64; WINDOW] {
    let mut kernel = [0.0; WINDOW];
    for (tap, weight) in kernel.iter_mut().enumerate() {
        let offset = tap as f64 - RADIUS as f64;
        *weight = (-0.5 / (SIGMA * SIGMA) * offset * offset).exp();
    }
    let sum: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|weight| *weight /= sum);
    kernel
}

/// Separable Gaussian filter of a row-major plane, along the rows axis first and then the
/// columns axis (scipy's axis order), with `reflect` borders.
fn gaussian_blur(values: &[f64], height: usize, width: usize, kernel: &[f64; WINDOW]) -> Vec<f64> {
    let mut vertical = vec![0.0; values.len()];
    for row in 0..height {
        for column in 0..width {
            vertical[row * width + column] =
                filter_at(kernel, row, height, |r| values[r * width + column]);
        }
    }
    let mut blurred = vec![0.0; values.len()];
    for row in 0..height {
        for column in 0..width {
            blurred[row * width + column] =
                filter_at(kernel, column, width, |c| vertical[row * width + c]);
        }
    }
    blurred
}

/// The kernel-weighted sum around `position` of a line of `length` values read by `value`.
fn filter_at(
    kernel: &[f64; WINDOW],
    position: usize,
    length: usize,
    value: impl Fn(usize) -> f64,
) -> f64 {
    kernel
        .iter()
        .enumerate()
        .map(|(tap, weight)| {
            let offset = position as isize + tap as isize - RADIUS as isize;
            weight * value(reflect_index(offset, length))
        })
        .sum()
}

/// scipy.ndimage's `reflect` mode (`d c b a | a b c d | d c b a`): the edge value is repeated,
/// so index -1 reads 0 and index `length` reads `length - 1`.
fn reflect_index(index: isize, length: usize) -> usize {
    let length = length as isize;
    // The pattern repeats every two lengths (one forward copy, one mirrored).
    let folded = index.rem_euclid(2 * length);
    let inside = if folded < length {
        folded
    } else {
        2 * length - 1 - folded
    };
    inside as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f64 = 1e-6;

    /// The fixed "noise" added to pixel `i`: a deterministic value in `[-0.5, 0.5]`.
    fn noise(i: usize) -> f64 {
        ((i * 7919 + 13) % 101) as f64 / 100.0 - 0.5
    }

    /// A smooth grey test image, row-major.
    fn gray(height: usize, width: usize) -> Vec<f32> {
        let mut image = Vec::with_capacity(height * width);
        for y in 0..height {
            for x in 0..width {
                image.push((0.5 + 0.4 * (0.3 * x as f64).sin() * (0.2 * y as f64).cos()) as f32);
            }
        }
        image
    }

    /// A blocky multi-channel test image, CHW.
    fn color(channels: usize, height: usize, width: usize) -> Vec<f32> {
        let mut image = Vec::with_capacity(channels * height * width);
        for k in 0..channels {
            for y in 0..height {
                for x in 0..width {
                    image.push((((x * 3 + y * 5 + k * 11) % 23) as f64 / 22.0) as f32);
                }
            }
        }
        image
    }

    fn noisy(image: &[f32], amplitude: f64) -> Vec<f32> {
        image
            .iter()
            .enumerate()
            .map(|(i, &v)| (f64::from(v) + amplitude * noise(i)) as f32)
            .collect()
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= TOLERANCE,
            "got {actual}, expected {expected}"
        );
    }

    // The expected values below came from scikit-image 0.26.0 (`structural_similarity` with
    // gaussian_weights=True, sigma=1.5, use_sample_covariance=False, and
    // `peak_signal_noise_ratio`), scipy 1.17.1, numpy 2.4.6, on the same images built in
    // numpy as float32 and passed to scikit-image as float64.

    #[test]
    fn ssim_gray_28x28_matches_scikit_image() {
        let reference = gray(28, 28);
        let test = noisy(&reference, 0.1);
        assert_close(
            ssim(&reference, &test, 28, 28, 1, 1.0).unwrap(),
            0.9522445061187068,
        );
        assert_close(
            ssim(&reference, &test, 28, 28, 1, 2.0).unwrap(),
            0.9595154843341818,
        );
    }

    #[test]
    fn ssim_smallest_allowed_image_matches_scikit_image() {
        let reference = gray(11, 13);
        let test = noisy(&reference, 0.3);
        assert_close(
            ssim(&reference, &test, 11, 13, 1, 1.0).unwrap(),
            0.7196175115416413,
        );
    }

    #[test]
    fn ssim_three_channels_matches_scikit_image() {
        let reference = color(3, 16, 20);
        let test = noisy(&reference, 0.2);
        assert_close(
            ssim(&reference, &test, 16, 20, 3, 1.0).unwrap(),
            0.9816414790754767,
        );
    }

    #[test]
    fn ssim_of_identical_images_is_one() {
        let image = color(3, 16, 20);
        assert_close(ssim(&image, &image, 16, 20, 3, 1.0).unwrap(), 1.0);
    }

    #[test]
    fn ssim_rejects_small_images_and_bad_shapes() {
        let image = gray(10, 28);
        let message = ssim(&image, &image, 10, 28, 1, 1.0).unwrap_err();
        assert!(message.contains("10x28"), "{message}");
        let image = gray(28, 28);
        assert!(ssim(&image, &image[1..], 28, 28, 1, 1.0).is_err());
        assert!(ssim(&image, &image, 28, 14, 1, 1.0).is_err());
        assert!(ssim(&image, &image, 28, 28, 0, 1.0).is_err());
        assert!(ssim(&image, &image, 28, 28, 1, 0.0).is_err());
    }

    #[test]
    fn psnr_matches_scikit_image() {
        let reference = gray(28, 28);
        assert_close(
            psnr(&reference, &noisy(&reference, 0.1), 1.0),
            30.698361460666103,
        );
        let reference = color(3, 16, 20);
        assert_close(
            psnr(&reference, &noisy(&reference, 0.2), 1.0),
            24.682215347958465,
        );
    }

    #[test]
    fn psnr_edge_cases() {
        let image = gray(4, 4);
        assert_eq!(psnr(&image, &image, 1.0), f64::INFINITY);
        assert!(psnr(&image, &image[1..], 1.0).is_nan());
        assert!(psnr(&[], &[], 1.0).is_nan());
        // MSE 0.01 -> 20 dB at peak 1.
        assert_close(psnr(&[0.0, 0.0], &[0.1, -0.1], 1.0), 20.0);
    }

    #[test]
    fn gaussian_kernel_is_normalised_and_symmetric() {
        let kernel = gaussian_kernel();
        assert_close(kernel.iter().sum(), 1.0);
        for tap in 0..WINDOW {
            assert_eq!(kernel[tap], kernel[WINDOW - 1 - tap]);
        }
    }

    #[test]
    fn reflect_index_repeats_the_edge() {
        let read: Vec<usize> = (-4..8).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(read, vec![3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
        assert_eq!(reflect_index(-1, 1), 0);
        assert_eq!(reflect_index(5, 1), 0);
    }
}
