//! Keeping only some classes for training (`[data] train_classes` / `exclude_classes`): the
//! one-class protocol of anomaly detection (train on what is normal; evaluate on the whole
//! test split) as a config, not a script. Classes are named by label (`3`) or by class name
//! (`"circle"`, a sub-folder's name).

use super::Dataset;
use serde::{Deserialize, Serialize};

/// A class, by its label or by its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ClassRef {
    /// The label value (0, 1, ...).
    Label(u32),
    /// The class name (a class sub-folder's name, a CSV label's text).
    Name(String),
}

impl std::fmt::Display for ClassRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassRef::Label(label) => write!(f, "{label}"),
            ClassRef::Name(name) => write!(f, "\"{name}\""),
        }
    }
}

/// Which classes a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassFilter<'a> {
    /// Only these.
    Keep(&'a [ClassRef]),
    /// All but these.
    Exclude(&'a [ClassRef]),
}

impl ClassFilter<'_> {
    /// The config key the filter comes from, for messages.
    pub fn key(&self) -> &'static str {
        match self {
            ClassFilter::Keep(_) => "data.train_classes",
            ClassFilter::Exclude(_) => "data.exclude_classes",
        }
    }

    /// The labels of `data` the filter keeps; an error (naming the key) for unlabelled data
    /// or a class the data does not have.
    pub fn kept_labels(&self, data: &Dataset) -> Result<Vec<bool>, String> {
        if data.labels.is_none() {
            return Err(format!(
                "`{}` keeps classes by label, but {} has no labels",
                self.key(),
                data.name
            ));
        }
        let classes = super::targets::classes_of(data);
        let refs = match self {
            ClassFilter::Keep(refs) | ClassFilter::Exclude(refs) => *refs,
        };
        let mut chosen = vec![false; classes];
        for class in refs {
            let index = resolve(class, &data.class_names, classes).ok_or_else(|| {
                let names: Vec<String> = (0..classes)
                    .map(|i| match data.class_names.get(i) {
                        Some(name) if name != &i.to_string() => format!("{i} ({name})"),
                        _ => i.to_string(),
                    })
                    .collect();
                format!(
                    "`{}`: {} has no class {class}; its classes are {}",
                    self.key(),
                    data.name,
                    names.join(", ")
                )
            })?;
            chosen[index] = true;
        }
        Ok(match self {
            ClassFilter::Keep(_) => chosen,
            ClassFilter::Exclude(_) => chosen.into_iter().map(|c| !c).collect(),
        })
    }

    /// The samples of `data` in the kept classes.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset, String> {
        let kept = self.kept_labels(data)?;
        let labels = data.labels.as_deref().unwrap_or_default();
        let indices: Vec<usize> = (0..data.len())
            .filter(|&i| kept[labels[i] as usize])
            .collect();
        Ok(data.subset(&indices))
    }
}

/// The label index a class reference names: a name is looked up among the class names; a
/// number is the label itself.
fn resolve(class: &ClassRef, names: &[String], classes: usize) -> Option<usize> {
    match class {
        ClassRef::Label(label) => ((*label as usize) < classes).then_some(*label as usize),
        ClassRef::Name(name) => names.iter().position(|n| n == name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;

    fn labelled() -> Dataset {
        let mut data = Dataset::unlabelled("toy", SampleShape::features(1), vec![0.0; 6]);
        data.labels = Some(vec![0, 1, 2, 1, 0, 2]);
        data.class_names = vec!["circle".into(), "square".into(), "cross".into()];
        data
    }

    #[test]
    fn keeps_or_excludes_by_label_or_name() {
        let data = labelled();
        let keep = [ClassRef::Label(1)];
        let kept = ClassFilter::Keep(&keep).apply(&data).unwrap();
        assert_eq!(kept.labels, Some(vec![1, 1]));
        let exclude = [ClassRef::Name("circle".into())];
        let rest = ClassFilter::Exclude(&exclude).apply(&data).unwrap();
        assert_eq!(rest.labels, Some(vec![1, 2, 1, 2]));
    }

    #[test]
    fn an_unknown_class_names_the_key_and_the_classes() {
        let data = labelled();
        let keep = [ClassRef::Label(7)];
        let err = ClassFilter::Keep(&keep).apply(&data).unwrap_err();
        assert!(
            err.contains("data.train_classes") && err.contains("0 (circle)"),
            "{err}"
        );
        let unlabelled = Dataset::unlabelled("t", SampleShape::features(1), vec![0.0]);
        let err = ClassFilter::Keep(&keep).apply(&unlabelled).unwrap_err();
        assert!(err.contains("has no labels"), "{err}");
    }
}
