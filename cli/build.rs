//! Makes the `augloader` binary find libtorch without LD_LIBRARY_PATH: an rpath to the libtorch
//! it was built against (torch-sys's build metadata).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
