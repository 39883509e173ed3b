//! - JPEG: compiles csrc/jpeg_region.c against the system libjpeg-turbo when its header is found
//!   (Debian: libjpeg62-turbo-dev) and sets `cfg(augloader_libjpeg)`; without it, JPEGs are
//!   decoded in full by the `image` crate. AUGLOADER_NO_LIBJPEG=1 forces the fallback. With
//!   feature `bundled-jpeg`, against libjpeg-turbo built from source instead (self-contained
//!   Python wheels).
//!
//! libtorch's rpath and CUDA link belong to the binaries (cli/build.rs): link arguments of a
//! build script reach only its own package's targets.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(augloader_libjpeg)");
    println!("cargo:rerun-if-changed=csrc/jpeg_region.c");
    println!("cargo:rerun-if-env-changed=AUGLOADER_NO_LIBJPEG");
    // Feature `bundled-jpeg`: libjpeg-turbo (as mozjpeg-sys vendors it, with its SIMD when nasm
    // is found) built from source and linked statically; its headers come from mozjpeg-sys.
    let bundled = std::env::var_os("DEP_JPEG_INCLUDE");
    if std::env::var_os("CARGO_FEATURE_BUNDLED_JPEG").is_some() {
        require_nasm();
        let mut b = cc::Build::new();
        for dir in std::env::split_paths(bundled.as_deref().unwrap_or_default()) {
            b.include(dir);
        }
        b.file("csrc/jpeg_region.c").opt_level(2).warnings(false);
        b.compile("augloader_jpeg");
        println!("cargo:rustc-cfg=augloader_libjpeg");
    } else if std::env::var_os("AUGLOADER_NO_LIBJPEG").is_none()
        && cc::Build::new()
            .file("csrc/jpeg_region.c")
            .opt_level(2)
            .warnings(false)
            .cargo_warnings(false)
            .try_compile("augloader_jpeg")
            .is_ok()
    {
        println!("cargo:rustc-link-lib=jpeg");
        println!("cargo:rustc-cfg=augloader_libjpeg");
    }
}

/// libjpeg-turbo without nasm builds without its SIMD and decodes 1.5-2x slower, with only a
/// cargo warning that pip hides: stop with a message instead, unless asked not to.
fn require_nasm() {
    println!("cargo:rerun-if-env-changed=AUGLOADER_ALLOW_NO_SIMD");
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("nasm").is_file()));
    if !found && std::env::var_os("AUGLOADER_ALLOW_NO_SIMD").is_none() {
        eprintln!(
            "error: nasm is not on PATH: libjpeg-turbo would build without its SIMD and decode JPEGs \
             1.5-2x slower. Install it (apt-get install nasm, dnf install nasm, brew install \
             nasm; or `source scripts/nasm.sh`, which unpacks Debian's package without root), \
             or set AUGLOADER_ALLOW_NO_SIMD=1 to build the slow decoder anyway. Prebuilt wheels: \
             scripts/build_wheel.sh."
        );
        std::process::exit(1);
    }
}
