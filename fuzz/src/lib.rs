//! Helpers shared by the fuzz targets: a scratch folder in memory (`/dev/shm` where it
//! exists) that every run of a target reuses, so one execution costs a file write, not a
//! folder creation.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A scratch folder private to this process (`<shm or tmp>/aekit-fuzz-<target>-<pid>`).
pub fn scratch(target: &str) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("aekit-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the fuzz scratch folder");
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn write(target: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch(target).join(name);
    std::fs::write(&path, bytes).expect("cannot write the fuzz input file");
    path
}

/// Asserts that an error names the file it concerns (the library's rule for every error).
pub fn assert_names_file(error: &aekit::Error, path: &Path) {
    let text = error.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        text.contains(name.as_ref()),
        "error does not name {}: {text}",
        path.display()
    );
}
