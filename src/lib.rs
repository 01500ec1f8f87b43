//! libzmap: netCDF-C's zmap key/object storage layer with a C ABI.
//!
//! Layers, each depending only on those below it:
//! `ffi` (the C boundary) → `map` (rules shared by all backends) →
//! `store` (one module per backend) → `key`, `location`, `error`.

pub mod codes;
pub mod error;
pub mod ffi;
pub mod key;
pub mod location;
pub mod map;
pub mod paths;
pub mod store;

pub use error::{Error, Result};
pub use key::Key;
pub use map::Map;
pub use store::Impl;
