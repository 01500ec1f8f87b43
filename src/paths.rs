//! The `nczm_*` string rules of netCDF 2020 (zmap-api.md Part B §3.2), in
//! safe Rust on byte strings.
