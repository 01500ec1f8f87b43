//! libzmap_netcdf: netCDF 4.9's zmap functions (`nczmap_create`, ...,
//! unversioned, netCDF's signatures and enum numbers) on libzmap's core, so
//! that libnetcdf.so.19's NCZarr stores GNZ files and S3 datasets through
//! libzmap: existing programs with `LD_PRELOAD`, new ones by linking it
//! before `-lnetcdf`. README, "Using libzmap from netCDF".
//!
//! Layers: `exports` (the C boundary) → `host` (netCDF's own functions and
//! its ABI generation), `route` (which URLs are ours), `maps` (our open maps
//! on `zmap_core::Map`), `abi` (netCDF's structs).
//!
//! A library never prints: the only output is the opt-in request log of S3
//! maps (`maps::log_requests`).

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod abi;
pub mod exports;
pub mod host;
pub mod maps;
pub mod route;
