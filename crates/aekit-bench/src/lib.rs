//! aekit's benchmarks, kept out of the library: [`anomaly`] (the one-class protocol on
//! MNIST beside PCA and k-NN, `aekit bench anomaly`), [`speed`] (training and inference throughput
//! and peak memory of a config's model, `aekit bench speed`), [`quality`] (the reference
//! configs beside PCA, `aekit bench quality`) and [`report`] (the command, machine and date a
//! benchmark report starts with), [`search`] (similar-image search on codes beside raw pixels and
//! PCA, `aekit bench search`). Per-operation timings are in `tests/op_timing.rs`.

pub mod anomaly;
pub mod codec;
pub mod quality;
pub mod report;
pub mod search;
pub mod speed;
