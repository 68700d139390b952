//! Input corruption for denoising autoencoders: the input is corrupted on the fly at every
//! training step while the target stays clean. Works with any family.

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Which corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CorruptionKind {
    /// Add `N(0, sigma^2)` noise, then clip to [0, 1].
    Gaussian,
    /// Set a random fraction `p` of the values to 0.
    Masking,
    /// Set a random fraction `p` of the values to 0 or 1 (half each).
    SaltAndPepper,
}

/// `[model.corruption]`: how inputs are corrupted during training (a denoising autoencoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorruptionConfig {
    /// `gaussian`, `masking` or `salt-and-pepper`.
    pub kind: CorruptionKind,
    /// Standard deviation of the Gaussian noise.
    #[serde(default = "default_sigma")]
    pub sigma: f64,
    /// Fraction of values masked, or set to salt and pepper.
    #[serde(default = "default_p")]
    pub p: f64,
    /// Clip Gaussian-noised values to [0, 1] (the pixel range).
    #[serde(default = "default_clip")]
    pub clip: bool,
}

fn default_sigma() -> f64 {
    0.5
}

fn default_p() -> f64 {
    0.25
}

fn default_clip() -> bool {
    true
}

impl CorruptionConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            CorruptionKind::Gaussian if !(self.sigma.is_finite() && self.sigma >= 0.0) => Err(
                format!("model.corruption.sigma must be >= 0, not {}", self.sigma),
            ),
            CorruptionKind::Masking | CorruptionKind::SaltAndPepper
                if !(0.0..=1.0).contains(&self.p) =>
            {
                Err(format!(
                    "model.corruption.p must be in [0, 1], not {}",
                    self.p
                ))
            }
            _ => Ok(()),
        }
    }

    /// Corrupts `values` in place.
    pub fn apply(&self, values: &mut [f32], rng: &mut StdRng) {
        match self.kind {
            CorruptionKind::Gaussian => {
                let normal = Normal::new(0.0f32, self.sigma as f32).expect("sigma was validated");
                for v in values.iter_mut() {
                    *v += normal.sample(rng);
                    if self.clip {
                        *v = v.clamp(0.0, 1.0);
                    }
                }
            }
            CorruptionKind::Masking => {
                for v in values.iter_mut() {
                    if rng.random_bool(self.p) {
                        *v = 0.0;
                    }
                }
            }
            CorruptionKind::SaltAndPepper => {
                for v in values.iter_mut() {
                    if rng.random_bool(self.p) {
                        *v = if rng.random_bool(0.5) { 1.0 } else { 0.0 };
                    }
                }
            }
        }
    }

    /// A corrupted copy of `values`.
    pub fn corrupted(&self, values: &[f32], rng: &mut StdRng) -> Vec<f32> {
        let mut out = values.to_vec();
        self.apply(&mut out, rng);
        out
    }
}

impl std::str::FromStr for CorruptionConfig {
    type Err = String;

    /// Parses `gaussian:SIGMA`, `masking:P` or `salt-and-pepper:P` (as `--noise` takes it).
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "expected gaussian:SIGMA, masking:P or salt-and-pepper:P (e.g. gaussian:0.5)";
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: {usage}"))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: `{value}` is not a number; {usage}"))?;
        let kind = match kind.trim() {
            "gaussian" => CorruptionKind::Gaussian,
            "masking" => CorruptionKind::Masking,
            "salt-and-pepper" => CorruptionKind::SaltAndPepper,
            other => return Err(format!("`{text}`: unknown noise `{other}`; {usage}")),
        };
        let config = CorruptionConfig {
            kind,
            sigma: value,
            p: value,
            clip: true,
        };
        config
            .validate()
            .map_err(|e| format!("`{text}`: {}", e.replace("model.corruption.", "")))?;
        Ok(config)
    }
}

impl std::fmt::Display for CorruptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            CorruptionKind::Gaussian => write!(f, "gaussian:{}", self.sigma),
            CorruptionKind::Masking => write!(f, "masking:{}", self.p),
            CorruptionKind::SaltAndPepper => write!(f, "salt-and-pepper:{}", self.p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_specs_parse_and_bad_ones_say_why() {
        let g: CorruptionConfig = "gaussian:0.5".parse().unwrap();
        assert_eq!((g.kind, g.sigma), (CorruptionKind::Gaussian, 0.5));
        let m: CorruptionConfig = "masking:0.3".parse().unwrap();
        assert_eq!((m.kind, m.p), (CorruptionKind::Masking, 0.3));
        assert_eq!(m.to_string(), "masking:0.3");
        let s: CorruptionConfig = "salt-and-pepper:0.1".parse().unwrap();
        assert_eq!(s.kind, CorruptionKind::SaltAndPepper);
        for bad in [
            "gaussian",
            "blur:0.2",
            "masking:x",
            "masking:1.5",
            "gaussian:-1",
        ] {
            let error = bad.parse::<CorruptionConfig>().unwrap_err();
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }

    fn config(kind: CorruptionKind) -> CorruptionConfig {
        CorruptionConfig {
            kind,
            sigma: 0.5,
            p: 0.3,
            clip: true,
        }
    }

    #[test]
    fn gaussian_noise_has_the_set_spread_and_is_clipped() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut unclipped = CorruptionConfig {
            clip: false,
            ..config(CorruptionKind::Gaussian)
        };
        let noisy = unclipped.corrupted(&vec![0.5; 20000], &mut rng);
        let var = noisy.iter().map(|v| (v - 0.5) * (v - 0.5)).sum::<f32>() / noisy.len() as f32;
        assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
        unclipped.clip = true;
        let noisy = unclipped.corrupted(&vec![0.5; 20000], &mut rng);
        assert!(noisy.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn masking_and_salt_and_pepper_touch_the_set_fraction() {
        let mut rng = StdRng::seed_from_u64(2);
        let masked = config(CorruptionKind::Masking).corrupted(&vec![0.5; 20000], &mut rng);
        let zeros = masked.iter().filter(|&&v| v == 0.0).count() as f64 / 20000.0;
        assert!((zeros - 0.3).abs() < 0.02, "{zeros}");
        let sp = config(CorruptionKind::SaltAndPepper).corrupted(&vec![0.5; 20000], &mut rng);
        let salt = sp.iter().filter(|&&v| v == 1.0).count() as f64 / 20000.0;
        let pepper = sp.iter().filter(|&&v| v == 0.0).count() as f64 / 20000.0;
        assert!(
            (salt - 0.15).abs() < 0.02 && (pepper - 0.15).abs() < 0.02,
            "{salt} {pepper}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = CorruptionConfig {
            p: 1.5,
            ..config(CorruptionKind::Masking)
        };
        assert!(bad.validate().unwrap_err().contains("model.corruption.p"));
        let bad = CorruptionConfig {
            sigma: -1.0,
            ..config(CorruptionKind::Gaussian)
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("model.corruption.sigma")
        );
    }
}
