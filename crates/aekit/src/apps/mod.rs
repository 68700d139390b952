//! What a trained model is used for, one module per application. Each is a library function
//! over a [`crate::trained::TrainedModel`] that returns data (and writes pictures or files
//! only where it is asked to); the CLI's commands are thin wrappers around them.
//!
//! - [`codes`]: codes to `.npy`/`.csv` files and back (`aekit encode`, `aekit decode`).
//! - [`latent_map`]: 2-D maps of the codes beside the raw inputs' (`aekit latent-map`).
//! - [`cluster`]: k-means on codes beside raw inputs, with NMI, ARI, accuracy (`aekit cluster`).
//! - [`generate`]: samples, interpolations and the latent manifold (`aekit sample`, ...).
//! - [`denoise`]: noisy inputs cleaned, PSNR and SSIM (`aekit denoise`, `aekit eval --noise`).
//! - [`activations`]: which code units fire for which inputs (`aekit activations`).
//! - [`report`]: one self-contained HTML page about a run (`aekit report`).
//! - [`compress`]: learned compression into `.aez` files and back (`aekit compress`, `aekit decompress`).
//! - [`search`]: an index of codes and their nearest neighbours (`aekit index`, `aekit similar`).
//! - [`classify`]: a classifier on a trained run's encoder (`aekit classify`).

pub mod activations;
pub mod anomaly;
pub mod classify;
pub mod cluster;
pub mod codes;
pub mod compress;
pub mod denoise;
pub mod generate;
pub mod image_to_image;
pub mod latent_map;
pub mod report;
pub mod search;

use crate::error::{Error, Result};
use std::path::Path;

/// Refuses to write `path` when it exists and `force` is not set, and when its folder does
/// not exist: no output replaces a file by accident, and a typo in a folder name gets a
/// clear message rather than "No such file or directory".
pub fn check_output(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        return Err(Error::data(
            path,
            "already exists; use --force to replace it, or choose another --out",
        ));
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(Error::data(
            path,
            format!("the folder {} does not exist", parent.display()),
        ));
    }
    Ok(())
}

/// Refuses an output whose extension is not one of `allowed` (lower case, without dot).
pub fn check_extension(path: &Path, allowed: &[&str]) -> Result<String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if allowed.contains(&extension.as_str()) {
        Ok(extension)
    } else {
        Err(Error::data(
            path,
            format!(
                "the output must end in {}",
                allowed
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_never_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.png");
        check_output(&file, false).unwrap();
        std::fs::write(&file, "x").unwrap();
        let error = check_output(&file, false).unwrap_err().to_string();
        assert!(
            error.contains("already exists") && error.contains("--force"),
            "{error}"
        );
        check_output(&file, true).unwrap();
        let error = check_output(&dir.path().join("missing/a.png"), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
        assert_eq!(check_extension(&file, &["png"]).unwrap(), "png");
        let error = check_extension(&file, &["npy", "csv"])
            .unwrap_err()
            .to_string();
        assert!(error.contains(".npy or .csv"), "{error}");
    }
}
