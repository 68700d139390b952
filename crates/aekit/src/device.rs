//! Choosing where tensors live: Burn's `flex` CPU backend by default, a GPU through the
//! `vulkan`/`wgpu` features, the number of CPU threads, and how the process allocates
//! memory for CPU tensors.
//!
//! `--device gpu` needs aekit built with `--features vulkan` (Vulkan only) or `--features wgpu`
//! (wgpu picks a graphics API: Vulkan, then GL on Linux). The GPU is acquired once per process
//! (the default adapter, preferring a high-power GPU). When the build has no GPU backend, or
//! no adapter is found, [`plain_device`] returns an error that names the feature and suggests
//! `--device cpu`; it does not panic. A *software* adapter (Mesa's llvmpipe or lavapipe, which
//! run on the CPU and are much slower than `flex`) is refused unless the environment variable
//! [`ALLOW_SOFTWARE_GPU_ENV`] is `1`.

use crate::error::{Error, Result};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Set this environment variable to `1` to let `--device gpu` run on a software (CPU)
/// adapter such as llvmpipe or lavapipe, which aekit refuses otherwise.
pub const ALLOW_SOFTWARE_GPU_ENV: &str = "AEKIT_ALLOW_SOFTWARE_GPU";

/// The error of `--device gpu` in a build without a GPU backend.
pub const NO_GPU_BUILD: &str = "--device gpu: this build of aekit has no GPU backend: rebuild it \
     with `--features vulkan` (or `--features wgpu`) on a machine with a GPU driver, or use \
     `--device cpu`";

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

/// The GPU feature this build of aekit has (`"vulkan"` or `"wgpu"`), if any.
pub fn gpu_feature() -> Option<&'static str> {
    if cfg!(feature = "vulkan") {
        Some("vulkan")
    } else if cfg!(feature = "wgpu") {
        Some("wgpu")
    } else {
        None
    }
}

/// The plain (no autodiff) device for a choice.
///
/// `Gpu` acquires the default GPU adapter the first time it is asked for (later calls reuse
/// it, or repeat the first error). See the module documentation for what happens without a
/// GPU or with a software adapter.
pub fn plain_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        DeviceChoice::Gpu => gpu::device(),
    }
}

/// The GPU adapter `--device gpu` uses, as `name (type, graphics API)`, once [`plain_device`]
/// has acquired it; `None` before that, on failure, or in a build without a GPU backend.
pub fn gpu_adapter() -> Option<String> {
    gpu::adapter()
}

#[cfg(not(any(feature = "vulkan", feature = "wgpu")))]
mod gpu {
    use super::NO_GPU_BUILD;
    use crate::error::{Error, Result};
    use burn::tensor::Device;

    pub(super) fn device() -> Result<Device> {
        Err(Error::Training(NO_GPU_BUILD.into()))
    }

    pub(super) fn adapter() -> Option<String> {
        None
    }
}

#[cfg(any(feature = "vulkan", feature = "wgpu"))]
mod gpu {
    use super::{ALLOW_SOFTWARE_GPU_ENV, gpu_feature};
    use crate::error::{Error, Result};
    use burn::tensor::Device;
    use burn::tensor::wgpu::{WgpuBackend, wgpu};
    use std::sync::OnceLock;

    /// The acquired device and its adapter's description, or the error message.
    type Acquired = std::result::Result<(Device, String), String>;

    /// Burn registers a wgpu runtime once per process; the first answer is kept.
    static GPU: OnceLock<Acquired> = OnceLock::new();

    pub(super) fn device() -> Result<Device> {
        match GPU.get_or_init(acquire) {
            Ok((device, _)) => Ok(device.clone()),
            Err(message) => Err(Error::Training(message.clone())),
        }
    }

    pub(super) fn adapter() -> Option<String> {
        GPU.get()
            .and_then(|acquired| acquired.as_ref().ok())
            .map(|(_, adapter)| adapter.clone())
    }

    /// The graphics API the build asks for: pinned to Vulkan with `vulkan`, wgpu's choice
    /// with `wgpu` alone.
    fn requested_api() -> WgpuBackend {
        if cfg!(feature = "vulkan") {
            WgpuBackend::Vulkan
        } else {
            WgpuBackend::Auto
        }
    }

    fn acquire() -> Acquired {
        let feature = gpu_feature().unwrap_or("wgpu");
        let api = requested_api();
        let where_ = if api == WgpuBackend::Vulkan {
            "Vulkan"
        } else {
            "any graphics API wgpu supports here"
        };
        // wgpu reports a missing adapter as an error, but a broken driver can still panic;
        // either way the user gets one line, not a backtrace.
        let attempt =
            std::panic::catch_unwind(|| Device::wgpu_options().graphics_api(api).init_with_setup());
        let (device, setup) = match attempt {
            Ok(Ok(acquired)) => acquired,
            Ok(Err(error)) => {
                return Err(format!(
                    "--device gpu: no usable GPU found on {where_} (this aekit was built with \
                     the `{feature}` feature): {error}. Check the GPU driver{}, or use \
                     `--device cpu`",
                    if api == WgpuBackend::Vulkan {
                        " and the Vulkan loader (`vulkaninfo`)"
                    } else {
                        ""
                    }
                ));
            }
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("the GPU runtime panicked");
                return Err(format!(
                    "--device gpu: the GPU runtime failed to start on {where_} (this aekit was \
                     built with the `{feature}` feature): {detail}. Check the GPU driver, or \
                     use `--device cpu`"
                ));
            }
        };
        let info = setup.adapter.get_info();
        let adapter = format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend);
        if info.device_type == wgpu::DeviceType::Cpu {
            if !software_allowed() {
                return Err(format!(
                    "--device gpu: the only GPU adapter found is `{adapter}`, a software \
                     renderer that runs on the CPU (much slower than `--device cpu`); use \
                     `--device cpu`, or set {ALLOW_SOFTWARE_GPU_ENV}=1 to use it anyway"
                ));
            }
            eprintln!(
                "warning: --device gpu is using the software adapter `{adapter}` \
                 ({ALLOW_SOFTWARE_GPU_ENV}=1); expect it to be slower than `--device cpu`"
            );
        }
        tracing::info!("--device gpu: using {adapter}");
        Ok((device, adapter))
    }

    /// Whether [`ALLOW_SOFTWARE_GPU_ENV`] is set to `1` (or `true`/`yes`).
    fn software_allowed() -> bool {
        std::env::var(ALLOW_SOFTWARE_GPU_ENV)
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    }
}

/// Sets the number of CPU threads the kernels use (once per process; later calls are ignored).
///
/// When the process may run on at least `threads` CPUs, each kernel thread is bound to a CPU
/// of its own (Linux; `AEKIT_NO_PIN=1` turns it off). Why: unbound, the scheduler often
/// starts both worker threads of a 2-core machine on the same core and takes tens of
/// milliseconds of shared work to move one away, so every short command (scoring 10,000
/// images takes 45 ms) ran its first 50-80 ms on one core: a first scoring pass took 0.075 s
/// against 0.043 s for the next (`bench/results/2026-12-01-anomaly-throughput.txt`). Bound,
/// the first pass is as fast as the rest.
pub fn set_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(Error::config(
            "--threads",
            "the thread count must be at least 1",
        ));
    }
    // The global pool can only be built once; a second call (e.g. in tests) keeps the first.
    let _ = pool_builder(threads).build_global();
    flush_subnormals();
    Ok(())
}

/// Makes the calling thread's floating-point unit treat subnormal numbers (below about
/// 1.2e-38 in f32) as zero, in inputs and results (x86's FTZ and DAZ bits, ARM's FZ bit).
///
/// Why: as a network trains, saturated sigmoids, shrinking gradients and Adam's moments
/// produce subnormals, and x86 cores compute with them through a microcode assist that
/// costs on the order of a hundred cycles per operation. Measured on a segmentation model
/// whose epochs fell from 1,420 to 825 samples/s over 8 epochs, and on a saturated model at
/// 148 samples/s against 2,000 (`bench/results/2026-12-01-subnormals.txt`). Values that
/// small carry nothing a loss can see. `AEKIT_KEEP_SUBNORMALS=1` leaves the unit as it is.
pub fn flush_subnormals() {
    if std::env::var_os("AEKIT_KEEP_SUBNORMALS").is_some_and(|v| v == "1") {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register; setting
        // FTZ (bit 15) and DAZ (bit 6) changes only how subnormals are rounded.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= (1 << 15) | (1 << 6);
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: as above, for FPCR's flush-to-zero bit (24).
        unsafe {
            let mut fpcr: u64;
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
            fpcr |= 1 << 24;
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack));
        }
    }
}

/// A thread pool of `threads` kernel threads, each bound to a CPU of its own where
/// [`pinning_cpus`] allows.
fn pool_builder(threads: usize) -> rayon::ThreadPoolBuilder {
    let cpus = pinning_cpus(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |index| {
            if let Some(cpus) = &cpus {
                pin_current_thread(cpus[index % cpus.len()]);
            }
            flush_subnormals();
        })
}

/// The CPUs the kernel threads are bound to, one each: the first `threads` CPUs this process
/// may run on, or `None` when binding is off or there are fewer CPUs than threads.
fn pinning_cpus(threads: usize) -> Option<Vec<usize>> {
    if std::env::var_os("AEKIT_NO_PIN").is_some_and(|v| v == "1") {
        return None;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
            return None;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        (cpus.len() >= threads).then(|| cpus.into_iter().take(threads).collect())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = threads;
        None
    }
}

/// Binds the calling thread to `cpu` (best effort: a refusal leaves it unbound).
fn pin_current_thread(cpu: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: as in `pinning_cpus`; sched_setaffinity only reads the set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = cpu;
}

/// Keeps freed tensor buffers in the process for reuse instead of handing them back to the
/// operating system after every operation (glibc on Linux; elsewhere nothing changes).
///
/// Why: a training step allocates and frees the same large buffers (a conv layer's maps are
/// megabytes) over and over. By default glibc serves such sizes with fresh `mmap`s or trims
/// its heap after they are freed, so every step pays page faults and the kernel zeroing the
/// pages again: a fifth of the conv autoencoder's step in a profile. Serving allocations up
/// to 32 MiB from the heap and never trimming it made that step 1.6x faster with the same
/// peak memory (`bench/results/2026-11-24-conv-kernels.txt`). Call it once, at the start of a
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choice_parses_cpu_and_gpu_only() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("gpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Gpu);
        let error = "cuda".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(
            error.contains("`cuda`") && error.contains("`cpu` or `gpu`"),
            "{error}"
        );
    }

    /// The CPUs the calling thread may run on.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn allowed_cpus() -> Vec<usize> {
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) },
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect()
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn kernel_threads_get_a_cpu_each_when_there_are_enough() {
        let available = allowed_cpus();
        let threads = available.len().min(2);
        let pool = pool_builder(threads).build().unwrap();
        let mut bound: Vec<Vec<usize>> = pool.broadcast(|_| allowed_cpus());
        bound.sort();
        if std::env::var_os("AEKIT_NO_PIN").is_some_and(|v| v == "1") {
            assert!(bound.iter().all(|cpus| *cpus == available));
        } else {
            let expected: Vec<Vec<usize>> = available[..threads].iter().map(|&c| vec![c]).collect();
            assert_eq!(bound, expected);
        }
        // More threads than CPUs: nobody is bound.
        let pool = pool_builder(available.len() + 1).build().unwrap();
        assert!(
            pool.broadcast(|_| allowed_cpus())
                .iter()
                .all(|cpus| *cpus == available)
        );
    }

    #[test]
    fn cpu_is_flex() {
        assert_eq!(plain_device(DeviceChoice::Cpu).unwrap(), Device::flex());
    }

    #[cfg(not(any(feature = "vulkan", feature = "wgpu")))]
    #[test]
    fn device_gpu_without_a_gpu_feature_names_the_features_and_cpu() {
        assert_eq!(gpu_feature(), None);
        let error = plain_device(DeviceChoice::Gpu).unwrap_err().to_string();
        assert_eq!(error, NO_GPU_BUILD);
        for needle in ["--features vulkan", "--features wgpu", "--device cpu"] {
            assert!(error.contains(needle), "`{needle}` missing from: {error}");
        }
        assert_eq!(gpu_adapter(), None);
    }

    /// With a GPU feature, `--device gpu` either finds a hardware adapter (or an allowed
    /// software one) and computes on it, or fails with one clear line; it never panics, and
    /// asking again gives the same answer.
    #[cfg(any(feature = "vulkan", feature = "wgpu"))]
    #[test]
    fn device_gpu_with_a_gpu_feature_computes_or_explains() {
        use burn::tensor::{Tensor, TensorData};
        let feature = gpu_feature().expect("a GPU feature is on");
        match plain_device(DeviceChoice::Gpu) {
            Ok(device) => {
                assert_ne!(device, Device::flex());
                assert!(gpu_adapter().is_some());
                let x =
                    Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0], [1, 2]), &device);
                let sum = (x.clone() * x).sum().into_scalar::<f32>();
                assert_eq!(sum, 5.0);
                assert_eq!(plain_device(DeviceChoice::Gpu).unwrap(), device);
            }
            Err(error) => {
                let error = error.to_string();
                assert!(error.starts_with("--device gpu: "), "{error}");
                assert!(error.contains("--device cpu"), "{error}");
                assert!(
                    error.contains(&format!("`{feature}` feature"))
                        || error.contains(ALLOW_SOFTWARE_GPU_ENV),
                    "{error}"
                );
                assert!(!error.contains('\n'), "one line: {error}");
                assert_eq!(gpu_adapter(), None);
                let again = plain_device(DeviceChoice::Gpu).unwrap_err().to_string();
                assert_eq!(again, error);
            }
        }
    }
}
