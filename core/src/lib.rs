//! libzmap: netCDF-C's zmap key/object storage layer with a C ABI.
//!
//! Layers, each depending only on those below it:
//! `ffi` (the C boundary) → `map` (rules shared by all backends) →
//! `store` (one module per backend) → `key`, `location`, `error`.
//!
//! A library never writes to its host's stdout or stderr: diagnostics go
//! through status codes and `Map::warnings`, and tools print them. The print
//! macros are denied here (the `zmap` binary is its own crate and may print);
//! tests/no_output.rs also refuses direct uses of the standard streams.

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod codes;
pub mod error;
#[cfg(feature = "capi")]
pub mod ffi;
pub mod key;
pub mod location;
pub mod map;
pub mod paths;
pub mod quiet;
pub mod store;

pub use error::{Error, Result};
pub use key::Key;
pub use map::Map;
pub use store::Impl;
