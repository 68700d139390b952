//! Choosing where tensors live: Burn's `flex` CPU backend by default, a GPU through the
//! `vulkan`/`wgpu` features, and the number of CPU threads.

use crate::error::{Error, Result};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Where a run computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// The `flex` CPU backend.
    #[default]
    Cpu,
    /// A GPU through Vulkan/wgpu (needs the crate built with `--features vulkan` or `wgpu`).
    Gpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" => Ok(DeviceChoice::Gpu),
            other => Err(Error::config(
                "--device",
                format!("unknown device `{other}`: expected `cpu` or `gpu`"),
            )),
        }
    }
}

/// The plain (no autodiff) device for a choice.
pub fn plain_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        DeviceChoice::Gpu => Err(Error::Training(
            "no GPU backend in this build of aekit: rebuild with `--features vulkan` (or `wgpu`) \
             on a machine with a GPU driver, or use `--device cpu`"
                .into(),
        )),
    }
}

/// Sets the number of CPU threads the kernels use (once per process; later calls are ignored).
pub fn set_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(Error::config(
            "--threads",
            "the thread count must be at least 1",
        ));
    }
    // The global pool can only be built once; a second call (e.g. in tests) keeps the first.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    Ok(())
}
