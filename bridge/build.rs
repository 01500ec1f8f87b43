//! libzmap_netcdf's SONAME and export list (exports.map): exactly netCDF
//! 4.9's zmap functions of src/exports.rs; the core is built without its C
//! API, and C symbols of dependencies stay local.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=exports.map");
    if env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        let dir = env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
        // rustc exports the #[no_mangle] C functions of dependencies too (the
        // version scripts are merged); their archives are kept local.
        println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs=ALL");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzmap_netcdf.so.0");
    }
}
