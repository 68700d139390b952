//! Small statistics used by the applications: clustering agreement, image quality, the normal
//! quantile.

pub mod cluster_metrics;
pub mod image_quality;
pub mod kmeans;
pub mod normal;
pub mod npy;
pub mod tsne;
