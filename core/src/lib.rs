//! zmap-core: netCDF-C's zmap key/object storage layer, in Rust, without C.
//!
//! Layers, each depending only on those below it:
//! `map` (rules shared by all backends) → `store` (one module per backend)
//! → `key`, `location`, `error`. The C ABI is the `zmap` crate (libzmap/),
//! the `zmap` tool is zmap-cli (cli/), the netCDF bridge is zmap-netcdf
//! (bridge/); all three build on this crate.
//!
//! A library never writes to its host's stdout or stderr: diagnostics go
//! through status codes and `Map::warnings`, and tools print them. The print
//! macros are denied here (the `zmap` tool is its own crate and may print);
//! libzmap/tests/no_output.rs also refuses direct uses of the standard streams.

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod codes;
pub mod error;
pub mod key;
pub mod location;
pub mod map;
pub mod paths;
pub mod process;
pub mod quiet;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use error::{Error, Result};
pub use key::Key;
pub use map::Map;
pub use store::Impl;
