//! # aekit
//!
//! An autoencoder toolkit: load data, build an autoencoder from a TOML config, train it into
//! a run directory, then evaluate it and apply it.
//!
//! The path of data through the library:
//!
//! - [`data`]: loads a data set (IDX, image folder, CSV, or the built-in generated shapes)
//!   into an in-memory [`data::Dataset`] and splits it into training and validation samples.
//! - [`config`]: the run configuration (`[data]`, `[model]`, `[train]` tables of a TOML file,
//!   with `--set key=value` overrides).
//! - [`models`]: the autoencoder families, one module each, behind the [`models::Autoencoder`]
//!   enum that the rest of the library uses.
//! - [`loss`]: reconstruction losses and the evaluation metrics; [`kernels`]: vectorised
//!   element-wise math for the CPU backend.
//! - [`train`]: the training loop (optimizer, progress, checkpoints, early stopping, resume).
//! - [`run_dir`]: the run directory a training run writes and later commands read.
//! - [`eval`], [`reconstruct`], [`plots`]: what is done with a trained run.
//!
//! Computation runs on Burn's `flex` CPU backend by default (see [`device`]).

pub mod apps;
pub mod codec;
pub mod config;
pub mod config_reference;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
// `macro_use`: the loss module compiles its element-wise loops with `simd_dispatch!` too.
#[macro_use]
pub mod kernels;
pub mod loss;
pub mod models;
pub mod pca;
pub mod plots;
pub mod reconstruct;
pub mod run_dir;
pub mod stats;
pub mod train;
pub mod trained;

pub use error::{Error, Result};
