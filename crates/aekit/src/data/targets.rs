//! Per-sample targets beyond the input: named columns of real values that a data set carries
//! (a rotated digit's angle, a column of a targets CSV), and what a head learns from them
//! (resolved per split by [`resolve`]): class indices or real values, each with a presence
//! flag, so that labels may exist for only some samples.
//!
//! Also the two derivations that make targets from the data itself: `[data] rotate` (each
//! image rotated by a seeded random angle, the angle a target) and `[data] targets_csv` (a
//! CSV of `id,name...` beside the data, empty cells for missing values).

use super::Dataset;
use super::classes::ClassRef;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// The name of the target a data set's own labels give.
pub const LABEL: &str = "label";

/// The name of the target `[data] rotate` adds: each image's angle in degrees.
pub const ANGLE: &str = "angle";

/// One real value per sample, `NaN` where the sample has none.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    /// The target's name, as heads refer to it (`target = "angle"`).
    pub name: String,
    /// One value per sample; `NaN` marks a missing one.
    pub values: Vec<f32>,
}

/// What a head learns from, for each sample of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadTargets {
    /// The class index (as `f32`) or the real value of each sample; 0 where missing.
    pub values: Vec<f32>,
    /// Whether each sample has its target.
    pub present: Vec<bool>,
}

impl HeadTargets {
    /// Number of samples that have their target.
    pub fn count(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }

    /// The targets of the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> HeadTargets {
        HeadTargets {
            values: indices.iter().map(|&i| self.values[i]).collect(),
            present: indices.iter().map(|&i| self.present[i]).collect(),
        }
    }
}

/// How the class targets of a head are made from the data's labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMapping<'a> {
    /// Fine classes by group: group `g` holds the labels `groups[g]` (coarse labels).
    pub groups: &'a [Vec<ClassRef>],
}

/// Which of a head's targets to keep for training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Thinning {
    /// Every target the data has.
    All,
    /// A seeded fraction of them, spread over the classes.
    Fraction(f64, u64),
    /// A seeded number of them, spread over the classes.
    Count(usize, u64),
}

/// The targets named `name` of `data` as class indices: its labels for `"label"` (mapped to
/// groups when `mapping` is given), or an integer-valued column. `classes` bounds the
/// indices (a value outside is an error naming it). The error strings name the head.
pub fn class_targets(
    data: &Dataset,
    name: &str,
    mapping: Option<&ClassMapping<'_>>,
    classes: usize,
) -> Result<HeadTargets, String> {
    let mut targets = if name == LABEL {
        let labels = data.labels.as_ref().ok_or_else(|| {
            format!(
                "{} has no labels for target \"label\" (a folder of class sub-folders, a CSV \
                 label_column or an IDX folder has them)",
                data.name
            )
        })?;
        HeadTargets {
            values: labels.iter().map(|&l| l as f32).collect(),
            present: vec![true; labels.len()],
        }
    } else {
        let column = column(data, name)?;
        let mut targets = HeadTargets {
            values: vec![0.0; column.values.len()],
            present: vec![false; column.values.len()],
        };
        for (i, &v) in column.values.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            if v.fract() != 0.0 || v < 0.0 {
                return Err(format!(
                    "target \"{name}\" of sample {i} is {v}, not a class index (0, 1, 2, ...)"
                ));
            }
            targets.values[i] = v;
            targets.present[i] = true;
        }
        targets
    };
    if let Some(mapping) = mapping {
        let fine = group_table(mapping.groups, data)?;
        for (value, present) in targets.values.iter_mut().zip(&targets.present) {
            if *present {
                *value = fine[*value as usize] as f32;
            }
        }
    }
    if let Some((i, v)) = targets
        .values
        .iter()
        .zip(&targets.present)
        .enumerate()
        .find(|(_, (v, p))| **p && **v as usize >= classes)
        .map(|(i, (v, _))| (i, *v))
    {
        return Err(format!(
            "sample {i} has class {v} in target \"{name}\", outside the head's {classes} classes \
             (0 to {})",
            classes - 1
        ));
    }
    Ok(targets)
}

/// Group index of every fine label: each of the data's classes must be in exactly one group.
fn group_table(groups: &[Vec<ClassRef>], data: &Dataset) -> Result<Vec<usize>, String> {
    let classes = classes_of(data);
    let mut group_of = vec![None; classes];
    for (g, members) in groups.iter().enumerate() {
        for class in members {
            let index = match class {
                ClassRef::Label(l) => ((*l as usize) < classes).then_some(*l as usize),
                ClassRef::Name(n) => data.class_names.iter().position(|c| c == n),
            }
            .ok_or_else(|| {
                format!(
                    "groups: {} has no class {class} (its classes are 0 to {})",
                    data.name,
                    classes.saturating_sub(1)
                )
            })?;
            if let Some(other) = group_of[index] {
                return Err(format!(
                    "groups: class {class} is named twice (in group {other} and group {g})"
                ));
            }
            group_of[index] = Some(g);
        }
    }
    let missing: Vec<String> = group_of
        .iter()
        .enumerate()
        .filter(|(_, g)| g.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "groups: class(es) {} of {} are in no group; every class needs one",
            missing.join(", "),
            data.name
        ));
    }
    Ok(group_of.into_iter().map(|g| g.unwrap_or(0)).collect())
}

/// Number of classes a labelled data set has (its class names, or its largest label + 1).
pub fn classes_of(data: &Dataset) -> usize {
    let largest = data
        .labels
        .as_ref()
        .and_then(|l| l.iter().max())
        .map_or(0, |&l| l as usize + 1);
    largest.max(data.class_names.len())
}

/// The targets named `name` of `data` as real values.
pub fn real_targets(data: &Dataset, name: &str) -> Result<HeadTargets, String> {
    if name == LABEL {
        return Err(
            "target \"label\" holds classes; a regression head needs a real-valued target \
             (\"angle\" of `[data] rotate`, or a column of `[data] targets_csv`)"
                .into(),
        );
    }
    let column = column(data, name)?;
    Ok(HeadTargets {
        values: column
            .values
            .iter()
            .map(|&v| if v.is_nan() { 0.0 } else { v })
            .collect(),
        present: column.values.iter().map(|v| !v.is_nan()).collect(),
    })
}

fn column<'a>(data: &'a Dataset, name: &str) -> Result<&'a TargetColumn, String> {
    data.targets.iter().find(|c| c.name == name).ok_or_else(|| {
        let known: Vec<&str> = std::iter::once(LABEL)
            .filter(|_| data.labels.is_some())
            .chain(data.targets.iter().map(|c| c.name.as_str()))
            .collect();
        format!(
            "{} has no target \"{name}\"; it has {}",
            data.name,
            if known.is_empty() {
                "none (add `[data] rotate` or `[data] targets_csv`)".to_string()
            } else {
                known
                    .iter()
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    })
}

/// Keeps only some of the present targets (seeded, spread over the classes for class
/// targets: one of each class in turn), for semi-supervised experiments.
pub fn thin(targets: &mut HeadTargets, thinning: Thinning, by_class: bool) {
    let present: Vec<usize> = (0..targets.present.len())
        .filter(|&i| targets.present[i])
        .collect();
    let (keep, seed) = match thinning {
        Thinning::All => return,
        Thinning::Fraction(f, seed) => (((present.len() as f64) * f).round() as usize, seed),
        Thinning::Count(n, seed) => (n, seed),
    };
    let keep = keep.clamp(1, present.len().max(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut groups: Vec<Vec<usize>> = if by_class {
        let classes = present
            .iter()
            .map(|&i| targets.values[i] as usize + 1)
            .max()
            .unwrap_or(0);
        let mut groups = vec![Vec::new(); classes];
        for &i in &present {
            groups[targets.values[i] as usize].push(i);
        }
        groups
    } else {
        vec![present]
    };
    for group in &mut groups {
        group.shuffle(&mut rng);
    }
    let mut kept = vec![false; targets.present.len()];
    for i in super::round_robin(&groups, keep) {
        kept[i] = true;
    }
    targets.present = kept;
}

/// Rotates every image of `data` by a seeded angle drawn uniformly from `range` (degrees,
/// counter-clockwise, about the centre, bilinear, zeros outside) and adds the angles as the
/// target column `"angle"`.
pub fn rotate(data: &mut Dataset, range: [f64; 2], seed: u64) -> Result<()> {
    let shape = data.shape;
    if !shape.is_image() {
        return Err(Error::config(
            "data.rotate",
            format!(
                "{} holds table rows, not images; only images rotate",
                data.name
            ),
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let len = shape.len();
    let mut angles = Vec::with_capacity(data.len());
    let mut rotated = vec![0.0f32; len];
    for i in 0..data.len() {
        let angle = if range[0] == range[1] {
            range[0]
        } else {
            rng.random_range(range[0]..range[1])
        };
        let sample = &mut data.values[i * len..(i + 1) * len];
        rotate_image(sample, &mut rotated, shape, angle);
        sample.copy_from_slice(&rotated);
        angles.push(angle as f32);
    }
    data.targets.retain(|c| c.name != ANGLE);
    data.targets.push(TargetColumn {
        name: ANGLE.into(),
        values: angles,
    });
    Ok(())
}

/// With `[data] rotate_every_use`: each sample of a batch (`indices` into `data`, whose
/// `unrotated` images they are read from) rotated by a fresh angle drawn from `range` with
/// `rng` into `batch` (one sample after another); returns the angles in degrees.
pub fn rotate_afresh(
    data: &Dataset,
    indices: &[usize],
    range: [f64; 2],
    rng: &mut rand::rngs::StdRng,
    batch: &mut [f32],
) -> Vec<f32> {
    let Some(unrotated) = &data.unrotated else {
        return Vec::new();
    };
    let len = data.shape.len();
    indices
        .iter()
        .zip(batch.chunks_mut(len))
        .map(|(&i, out)| {
            let angle = if range[0] == range[1] {
                range[0]
            } else {
                rng.random_range(range[0]..range[1])
            };
            rotate_image(&unrotated[i * len..(i + 1) * len], out, data.shape, angle);
            angle as f32
        })
        .collect()
}

/// `source` rotated by `degrees` counter-clockwise into `out` (same shape, every channel).
fn rotate_image(source: &[f32], out: &mut [f32], shape: super::SampleShape, degrees: f64) {
    let (h, w) = (shape.height, shape.width);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let plane = h * w;
    for y in 0..h {
        for x in 0..w {
            // The source point that lands on (x, y): the inverse rotation. Image rows grow
            // downwards, so a counter-clockwise turn on screen flips the sine's sign.
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let sx = cos * dx - sin * dy + cx;
            let sy = sin * dx + cos * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
            let at = |c: usize, yy: f64, xx: f64| -> f32 {
                if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 {
                    0.0
                } else {
                    source[c * plane + yy as usize * w + xx as usize]
                }
            };
            for c in 0..shape.channels {
                let top = at(c, y0, x0) * (1.0 - fx) + at(c, y0, x0 + 1.0) * fx;
                let bottom = at(c, y0 + 1.0, x0) * (1.0 - fx) + at(c, y0 + 1.0, x0 + 1.0) * fx;
                out[c * plane + y * w + x] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
}

/// Reads a targets CSV (`id,name1,name2...`, a header row, empty cells for missing values)
/// into columns for the samples of `data`. A row's `id` is a sample's file name (its path
/// relative to the data folder, or its bare name) when the samples were read from files,
/// else the sample's position in the source (0, 1, ...). Every sample needs a row.
pub fn read_targets_csv(path: &Path, data: &Dataset, root: &Path) -> Result<Vec<TargetColumn>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| Error::data(path, "is empty; it needs a header row `id,<target>...`"))?;
    let names: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
    if names.len() < 2 || names[0] != "id" {
        return Err(Error::data(
            path,
            format!("line 1: the header must be `id,<target>...`, not `{header}`"),
        ));
    }
    let lookup = sample_ids(data, root);
    let mut columns: Vec<TargetColumn> = names[1..]
        .iter()
        .map(|name| TargetColumn {
            name: name.clone(),
            values: vec![f32::NAN; data.len()],
        })
        .collect();
    let mut seen = vec![false; data.len()];
    for (line, row) in lines {
        let cells: Vec<&str> = row.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            return Err(Error::data(
                path,
                format!(
                    "line {}: {} cells, but the header names {}",
                    line + 1,
                    cells.len(),
                    names.len()
                ),
            ));
        }
        let index = *lookup.get(cells[0]).ok_or_else(|| {
            Error::data(
                path,
                format!(
                    "line {}: id `{}` is no sample of {} ({} samples; ids are {})",
                    line + 1,
                    cells[0],
                    data.name,
                    data.len(),
                    if data.paths.is_empty() {
                        "positions 0, 1, ..."
                    } else {
                        "file names"
                    }
                ),
            )
        })?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(Error::data(
                path,
                format!("line {}: id `{}` has a second row", line + 1, cells[0]),
            ));
        }
        for (column, cell) in columns.iter_mut().zip(&cells[1..]) {
            if cell.is_empty() {
                continue;
            }
            let value: f32 = cell
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| {
                    Error::data(
                        path,
                        format!(
                            "line {}, column `{}`: `{cell}` is not a finite number",
                            line + 1,
                            column.name
                        ),
                    )
                })?;
            column.values[index] = value;
        }
    }
    let rows = seen.iter().filter(|&&s| s).count();
    if rows != data.len() {
        return Err(Error::data(
            path,
            format!(
                "has rows for {rows} of the {} samples of {}; every sample needs a row (leave \
                 its cells empty when its targets are missing)",
                data.len(),
                data.name
            ),
        ));
    }
    Ok(columns)
}

/// Every id a targets CSV may give a sample, to its index.
fn sample_ids(data: &Dataset, root: &Path) -> std::collections::HashMap<String, usize> {
    let mut ids = std::collections::HashMap::new();
    if data.paths.len() == data.len() {
        for (i, path) in data.paths.iter().enumerate() {
            if let Ok(relative) = path.strip_prefix(root) {
                ids.insert(relative.to_string_lossy().replace('\\', "/"), i);
            }
            if let Some(name) = path.file_name() {
                ids.entry(name.to_string_lossy().into_owned()).or_insert(i);
            }
        }
    } else {
        for i in 0..data.len() {
            ids.insert(i.to_string(), i);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;

    fn digits(labels: Vec<u32>) -> Dataset {
        let mut data = Dataset::unlabelled(
            "digits",
            SampleShape::image(1, 3, 3),
            vec![0.0; 9 * labels.len()],
        );
        data.labels = Some(labels);
        data
    }

    #[test]
    fn groups_map_fine_labels_to_coarse_ones_and_refuse_gaps_and_repeats() {
        let data = digits(vec![0, 1, 2, 3, 2]);
        let groups = vec![
            vec![ClassRef::Label(0), ClassRef::Label(2)],
            vec![ClassRef::Label(1), ClassRef::Label(3)],
        ];
        let mapping = ClassMapping { groups: &groups };
        let coarse = class_targets(&data, LABEL, Some(&mapping), 2).unwrap();
        assert_eq!(coarse.values, vec![0.0, 1.0, 0.0, 1.0, 0.0]);
        let missing = vec![vec![ClassRef::Label(0)], vec![ClassRef::Label(1)]];
        let err =
            class_targets(&data, LABEL, Some(&ClassMapping { groups: &missing }), 2).unwrap_err();
        assert!(err.contains("2, 3") && err.contains("no group"), "{err}");
        let twice = vec![
            vec![ClassRef::Label(0), ClassRef::Label(1)],
            vec![ClassRef::Label(1), ClassRef::Label(2), ClassRef::Label(3)],
        ];
        let err =
            class_targets(&data, LABEL, Some(&ClassMapping { groups: &twice }), 2).unwrap_err();
        assert!(err.contains("class 1 is named twice"), "{err}");
    }

    #[test]
    fn a_label_outside_the_heads_classes_is_named() {
        let data = digits(vec![0, 1, 7]);
        let err = class_targets(&data, LABEL, None, 5).unwrap_err();
        assert!(
            err.contains("sample 2 has class 7") && err.contains("5 classes"),
            "{err}"
        );
    }

    #[test]
    fn thinning_keeps_a_seeded_count_spread_over_the_classes() {
        let data = digits((0..100).map(|i| i % 10).collect());
        let mut targets = class_targets(&data, LABEL, None, 10).unwrap();
        thin(&mut targets, Thinning::Count(20, 3), true);
        assert_eq!(targets.count(), 20);
        let mut per_class = [0; 10];
        for (v, p) in targets.values.iter().zip(&targets.present) {
            if *p {
                per_class[*v as usize] += 1;
            }
        }
        assert_eq!(per_class, [2; 10], "two of each class");
        let mut again = class_targets(&data, LABEL, None, 10).unwrap();
        thin(&mut again, Thinning::Count(20, 3), true);
        assert_eq!(again, targets, "seeded");
        let mut fraction = class_targets(&data, LABEL, None, 10).unwrap();
        thin(&mut fraction, Thinning::Fraction(0.05, 3), true);
        assert_eq!(fraction.count(), 5);
    }

    #[test]
    fn rotation_turns_images_and_records_the_angle() {
        // A bright pixel right of the centre of a 5x5 image ends above the centre after a
        // quarter turn counter-clockwise.
        let mut values = vec![0.0; 25];
        values[2 * 5 + 4] = 1.0;
        let mut data = Dataset::unlabelled("dot", SampleShape::image(1, 5, 5), values);
        rotate(&mut data, [90.0, 90.0], 0).unwrap();
        assert!((data.values[2] - 1.0).abs() < 1e-5, "{:?}", data.values);
        assert!((data.values.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(data.targets[0].name, ANGLE);
        assert_eq!(data.targets[0].values, vec![90.0]);
        let mut table = Dataset::unlabelled("rows", SampleShape::features(4), vec![0.0; 8]);
        let err = rotate(&mut table, [-45.0, 45.0], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only images rotate"), "{err}");
    }

    #[test]
    fn rotation_afresh_turns_the_unrotated_image_and_reports_its_angle() {
        let mut values = vec![0.0; 2 * 25];
        values[2 * 5 + 4] = 1.0;
        values[25 + 2 * 5 + 3] = 0.5;
        let mut data = Dataset::unlabelled("dots", SampleShape::image(1, 5, 5), values);
        data.unrotated = Some(data.values.clone());
        let mut fixed = data.clone();
        rotate(&mut fixed, [90.0, 90.0], 7).unwrap();
        // Batch order [1, 0]; a fixed range gives the fixed rotation's images exactly.
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut batch = vec![9.0; 50];
        let angles = rotate_afresh(&data, &[1, 0], [90.0, 90.0], &mut rng, &mut batch);
        assert_eq!(angles, vec![90.0, 90.0]);
        assert_eq!(&batch[..25], &fixed.values[25..]);
        assert_eq!(&batch[25..], &fixed.values[..25]);
        // Drawn angles lie in the range, differ between draws, and repeat with the seed.
        let draw = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut out = vec![0.0; 50];
            rotate_afresh(&data, &[0, 1], [-45.0, 45.0], &mut rng, &mut out)
        };
        let first = draw(3);
        assert!(first.iter().all(|a| (-45.0..45.0).contains(a)), "{first:?}");
        assert_ne!(first[0], first[1]);
        assert_eq!(draw(3), first);
        assert_ne!(draw(4), first);
        // Without unrotated images there is nothing to draw from.
        data.unrotated = None;
        assert!(rotate_afresh(&data, &[0], [0.0, 1.0], &mut rng, &mut batch).is_empty());
    }

    #[test]
    fn a_targets_csv_fills_columns_by_position_and_names_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let data = digits(vec![0, 1, 2]);
        let path = dir.path().join("targets.csv");
        std::fs::write(&path, "id,size\n0,1.5\n1,\n2,3\n").unwrap();
        let columns = read_targets_csv(&path, &data, dir.path()).unwrap();
        assert_eq!(columns[0].name, "size");
        assert_eq!(columns[0].values[0], 1.5);
        assert!(columns[0].values[1].is_nan());
        std::fs::write(&path, "id,size\n0,1\n1,2\n").unwrap();
        let err = read_targets_csv(&path, &data, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("rows for 2 of the 3 samples"), "{err}");
        std::fs::write(&path, "id,size\n0,1\n1,2\n9,3\n").unwrap();
        let err = read_targets_csv(&path, &data, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4: id `9` is no sample"), "{err}");
        std::fs::write(&path, "id,size\n0,1\n1,x\n2,3\n").unwrap();
        let err = read_targets_csv(&path, &data, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3, column `size`: `x`"), "{err}");
    }
}
