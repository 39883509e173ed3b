//! - JPEG: compiles csrc/jpeg_region.c against the system libjpeg-turbo when its header is found
//!   (Debian: libjpeg62-turbo-dev) and sets `cfg(augloader_libjpeg)`; without it, JPEGs are
//!   decoded in full by the `image` crate. AUGLOADER_NO_LIBJPEG=1 forces the fallback.
//! - libtorch: makes binaries find it without LD_LIBRARY_PATH (rpath to the libtorch used at
//!   build time) and, with feature `cuda`, keeps libtorch_cuda linked.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(augloader_libjpeg)");
    println!("cargo:rerun-if-changed=csrc/jpeg_region.c");
    println!("cargo:rerun-if-env-changed=AUGLOADER_NO_LIBJPEG");
    if std::env::var_os("AUGLOADER_NO_LIBJPEG").is_none()
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

    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
}
