//! The NCZM_NC4 backend (feature "nc4") calls the system libnetcdf:
//! pkg-config's `netcdf` when it is there, else plain `-lnetcdf` from the
//! linker's default paths.

use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if env::var_os("CARGO_FEATURE_NC4").is_none() {
        return;
    }
    if pkg_config::Config::new()
        .atleast_version("4.4")
        .probe("netcdf")
        .is_err()
    {
        println!("cargo:rustc-link-lib=netcdf");
    }
}
