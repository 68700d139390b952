//! The built-in generated data set "shapes": grey square images of one white shape (circle,
//! square, triangle or cross) on black, at a random position, size and rotation.
//!
//! It needs no download, is generated in milliseconds and is deterministic for a seed, which
//! makes it the data set of the examples, the quick-start and the tests. Shapes are drawn
//! from signed distance functions, so their edges are anti-aliased (a pixel's value is the
//! part of it the shape covers, approximately), and always lie wholly inside the image.

use super::{Dataset, SampleShape};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::f32::consts::TAU;

/// The class names; a sample's label is the index of its shape here.
pub const CLASS_NAMES: [&str; 4] = ["circle", "square", "triangle", "cross"];

/// The smallest image side the shapes are drawn at recognisably.
pub const MIN_SIZE: usize = 8;

/// Seed offset of the test split, so that it never repeats the training samples.
const TEST_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;

/// The training split of `samples` images and a test split a fifth as large (at least one),
/// both of `size x size` pixels.
pub fn splits(samples: usize, size: usize, seed: u64) -> (Dataset, Dataset) {
    let mut train = generate(samples, size, seed);
    let mut test = generate(
        (samples / 5).max(1),
        size,
        seed.wrapping_add(TEST_SEED_OFFSET),
    );
    train.name = "shapes (train)".into();
    test.name = "shapes (test)".into();
    (train, test)
}

/// Generates `count` grey `size x size` images with values in [0, 1]. The four shapes occur
/// equally often (within one) in a random order; the same seed gives the same images.
pub fn generate(count: usize, size: usize, seed: u64) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut labels: Vec<u32> = (0..count).map(|i| (i % CLASS_NAMES.len()) as u32).collect();
    labels.shuffle(&mut rng);
    let pixels = size * size;
    let mut values = vec![0.0f32; count * pixels];
    if pixels > 0 {
        for (image, &label) in values.chunks_exact_mut(pixels).zip(&labels) {
            let shape = Shape::random(label, size as f32, &mut rng);
            shape.draw(image, size);
        }
    }
    Dataset {
        name: "shapes".into(),
        shape: SampleShape::image(1, size, size),
        values,
        labels: Some(labels),
        class_names: CLASS_NAMES.iter().map(|n| n.to_string()).collect(),
        paths: Vec::new(),
        targets: Vec::new(),
        paired: None,
        unrotated: None,
    }
}

/// One shape placed in an image.
struct Shape {
    label: u32,
    /// Centre in pixels.
    centre: (f32, f32),
    /// The shape's "radius" in pixels (see [`Shape::extent`]).
    radius: f32,
    /// Sine and cosine of the rotation.
    sin: f32,
    cos: f32,
}

impl Shape {
    fn random(label: u32, side: f32, rng: &mut impl Rng) -> Shape {
        let radius = side * rng.random_range(0.18..0.32);
        let mut shape = Shape {
            label,
            centre: (0.0, 0.0),
            radius,
            sin: 0.0,
            cos: 1.0,
        };
        // A one-pixel margin keeps the anti-aliased edge inside the image too.
        let margin = shape.extent() + 1.0;
        shape.centre = (
            uniform(rng, margin, side - margin),
            uniform(rng, margin, side - margin),
        );
        let angle = rng.random_range(0.0..TAU);
        (shape.sin, shape.cos) = angle.sin_cos();
        shape
    }

    /// The distance from the centre to the farthest point of the shape, whatever the
    /// rotation.
    fn extent(&self) -> f32 {
        let r = self.radius;
        match self.label {
            0 => r,
            1 => SQUARE_HALF_SIDE * r * std::f32::consts::SQRT_2,
            2 => TRIANGLE_CIRCUMRADIUS * r,
            _ => r.hypot(CROSS_HALF_WIDTH * r),
        }
    }

    /// Signed distance in pixels from the point `(x, y)` (relative to the centre, already
    /// rotated into the shape's frame) to the shape's edge: negative inside.
    fn distance(&self, x: f32, y: f32) -> f32 {
        let r = self.radius;
        match self.label {
            0 => x.hypot(y) - r,
            1 => box_distance(x, y, SQUARE_HALF_SIDE * r, SQUARE_HALF_SIDE * r),
            2 => triangle_distance(x, y, TRIANGLE_CIRCUMRADIUS * r * 3f32.sqrt() / 2.0),
            _ => {
                let (long, wide) = (r, CROSS_HALF_WIDTH * r);
                box_distance(x, y, long, wide).min(box_distance(x, y, wide, long))
            }
        }
    }

    /// Draws the shape into a `size x size` image (only the pixels near it are visited).
    fn draw(&self, image: &mut [f32], size: usize) {
        let reach = self.extent() + 1.0;
        let span = |c: f32| {
            let lo = (c - reach).floor().max(0.0) as usize;
            let hi = ((c + reach).ceil().max(0.0) as usize).min(size);
            lo..hi
        };
        let (cx, cy) = self.centre;
        for y in span(cy) {
            let dy = y as f32 + 0.5 - cy;
            for x in span(cx) {
                let dx = x as f32 + 0.5 - cx;
                let (u, v) = (self.cos * dx + self.sin * dy, self.cos * dy - self.sin * dx);
                // Coverage of a pixel by an edge at signed distance d: 1/2 - d, clamped.
                image[y * size + x] = (0.5 - self.distance(u, v)).clamp(0.0, 1.0);
            }
        }
    }
}

/// Half the side of a square, as a fraction of its radius (so that its area is close to
/// that of a circle of the same radius).
const SQUARE_HALF_SIDE: f32 = 0.85;
/// The circumradius of a triangle, as a fraction of its radius (a triangle is otherwise
/// much smaller than the other shapes).
const TRIANGLE_CIRCUMRADIUS: f32 = 1.3;
/// Half the width of a cross's bars, as a fraction of their half length.
const CROSS_HALF_WIDTH: f32 = 0.3;

/// A uniform value in `lo..hi`, or the midpoint when the range is empty (tiny images).
fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        (lo + hi) / 2.0
    }
}

/// Signed distance to an axis-aligned box of half sizes `hx`, `hy` centred at the origin.
fn box_distance(x: f32, y: f32, hx: f32, hy: f32) -> f32 {
    let (qx, qy) = (x.abs() - hx, y.abs() - hy);
    qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0)
}

/// Signed distance to an equilateral triangle of half side `h` centred at its centroid
/// (after Inigo Quilez's formula).
fn triangle_distance(x: f32, y: f32, h: f32) -> f32 {
    let k = 3f32.sqrt();
    let (mut px, mut py) = (x.abs() - h, y + h / k);
    if px + k * py > 0.0 {
        (px, py) = ((px - k * py) / 2.0, (-k * px - py) / 2.0);
    }
    px -= px.clamp(-2.0 * h, 0.0);
    -px.hypot(py) * py.signum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(50, 28, 7);
        let b = generate(50, 28, 7);
        let c = generate(50, 28, 8);
        assert_eq!(a, b);
        assert_ne!(a.values, c.values);
        let (train, test) = splits(50, 28, 7);
        assert_eq!(train.values, a.values);
        assert_eq!(test.len(), 10);
        assert_ne!(test.values[..784], train.values[..784]);
    }

    #[test]
    fn labels_are_balanced_and_values_in_range() {
        let data = generate(1001, 28, 3);
        assert_eq!(data.len(), 1001);
        assert_eq!(data.shape, SampleShape::image(1, 28, 28));
        assert_eq!(data.class_names, CLASS_NAMES);
        assert_eq!(data.label_counts(), Some(vec![251, 250, 250, 250]));
        let (lo, hi) = data.value_range();
        assert_eq!((lo, hi), (0.0, 1.0));
        // Labels come in a random order, not round-robin.
        assert_ne!(data.labels.as_ref().unwrap()[..8], [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn every_image_shows_its_whole_shape() {
        let size = 28;
        let data = generate(400, size, 11);
        for i in 0..data.len() {
            let image = data.sample(i);
            let ink: f32 = image.iter().sum();
            assert!(ink > 15.0, "image {i} is nearly empty ({ink})");
            assert!(image.contains(&1.0), "image {i} has no solid pixel");
            // The border stays black: no shape is cut off by the image's edge.
            for j in 0..size {
                for index in [j, (size - 1) * size + j, j * size, j * size + size - 1] {
                    assert_eq!(image[index], 0.0, "image {i} touches the border");
                }
            }
        }
        // Anti-aliased edges: some pixels lie strictly between black and white.
        assert!(data.values.iter().any(|&v| v > 0.1 && v < 0.9));
    }

    #[test]
    fn shapes_cover_plausible_areas() {
        // A circle of radius 10 covers about pi * 100 pixels.
        let shape = Shape {
            label: 0,
            centre: (20.0, 20.0),
            radius: 10.0,
            sin: 0.0,
            cos: 1.0,
        };
        let mut image = vec![0.0; 40 * 40];
        shape.draw(&mut image, 40);
        let area: f32 = image.iter().sum();
        assert!((area - std::f32::consts::PI * 100.0).abs() < 3.0, "{area}");
        // An equilateral triangle of circumradius R covers 3 * sqrt(3) / 4 * R^2 pixels.
        let mut image = vec![0.0; 40 * 40];
        Shape { label: 2, ..shape }.draw(&mut image, 40);
        let area: f32 = image.iter().sum();
        let circumradius = TRIANGLE_CIRCUMRADIUS * 10.0;
        let expected = 3.0 * 3f32.sqrt() / 4.0 * circumradius * circumradius;
        assert!((area - expected).abs() < 3.0, "{area} vs {expected}");
    }

    #[test]
    fn small_and_degenerate_sizes_do_not_panic() {
        for size in [0, 1, 2, MIN_SIZE] {
            let data = generate(8, size, 0);
            assert_eq!(data.values.len(), 8 * size * size);
        }
        assert!(generate(0, 28, 0).is_empty());
    }

    #[test]
    fn fast_enough() {
        let start = std::time::Instant::now();
        let data = generate(6000, 28, 0);
        let elapsed = start.elapsed();
        assert_eq!(data.len(), 6000);
        // Well under a second even in an unoptimised test build on a busy machine.
        assert!(elapsed.as_secs_f32() < 3.0, "took {elapsed:?}");
        println!("6000 shapes of 28x28 in {elapsed:?}");
    }
}
