//! libzmap: netCDF-C's zmap API (the 2020 zmap.h) in C, on `zmap_core`.
//!
//! This crate is the C boundary only (`ffi`): it checks pointers, converts
//! C values to the core's Rust types and back, and maps results to NC status
//! codes. Storage, keys and the map rules are the core's (`zmap_core`).
//! build.rs generates include/zmap.h from `ffi` with cbindgen and gives the
//! shared library its soname and symbol versions.
//!
//! A library never writes to its host's stdout or stderr (tests/no_output.rs).

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod ffi;
