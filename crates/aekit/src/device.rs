//! Choosing where tensors live: Burn's `flex` CPU backend by default, a GPU through the
//! `vulkan`/`wgpu` features, the number of CPU threads, and how the process allocates
//! memory for CPU tensors.

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

/// Keeps freed tensor buffers in the process for reuse instead of handing them back to the
/// operating system after every operation (glibc on Linux; elsewhere nothing changes).
///
/// Why: a training step allocates and frees the same large buffers (a conv layer's maps are
/// megabytes) over and over. By default glibc serves such sizes with fresh `mmap`s or trims
/// its heap after they are freed, so every step pays page faults and the kernel zeroing the
/// pages again: a fifth of the conv autoencoder's step in a profile. Serving allocations up
/// to 32 MiB from the heap and never trimming it made that step 1.4x faster with the same
/// peak memory (`bench/results/2026-11-24-speed.txt`). Call it once, at the start of a
/// process, before the first tensor is made; `AEKIT_DEFAULT_MALLOC=1` skips it.
pub fn tune_allocator() {
    if std::env::var_os("AEKIT_DEFAULT_MALLOC").is_some_and(|v| v == "1") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // 32 MiB is glibc's largest mmap threshold on 64-bit systems.
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        // SAFETY: mallopt only changes allocator parameters; called before other threads
        // allocate (the CLI calls it first thing in `main`).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        }
    }
}
