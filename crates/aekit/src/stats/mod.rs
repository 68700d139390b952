//! Small statistics used by the applications: clustering agreement, detection quality, image quality, the normal
//! quantile.

pub mod cluster_metrics;
pub mod detection;
pub mod gaussian;
pub mod image_quality;
pub mod kmeans;
pub mod knn;
pub mod normal;
pub mod npy;
pub mod tsne;
