//! Makes the `augloader` binary find libtorch without LD_LIBRARY_PATH (an rpath to the libtorch
//! it was built against, from torch-sys's build metadata) and, with feature `cuda`, keeps
//! libtorch_cuda linked: no symbol of it is referenced, so the linker would drop it and
//! `--device cuda` would find no CUDA. A binary of your own that depends on augloader and
//! needs CUDA adds the same three link arguments in its build script.
fn main() {
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
