//! The few libnetcdf functions the NC4 backend calls (netcdf.h, stable since
//! netCDF 4.1), and the one process-wide lock every call is made under:
//! libnetcdf (and HDF5 underneath) is not thread-safe.

use std::cell::Cell;
use std::os::raw::{c_char, c_int, c_uchar, c_void};
use std::sync::{Mutex, MutexGuard};

pub const NC_NOERR: c_int = 0;
pub const NC_NOWRITE: c_int = 0x0000;
pub const NC_WRITE: c_int = 0x0001;
pub const NC_NOCLOBBER: c_int = 0x0004;
pub const NC_NETCDF4: c_int = 0x1000;
pub const NC_UBYTE: c_int = 7;
pub const NC_UNLIMITED: usize = 0;
pub const NC_FORMAT_NETCDF4: c_int = 3;
/// Longest netCDF name, in bytes (without the NUL).
pub const NC_MAX_NAME: usize = 256;

pub const NC_ENOTNC: c_int = -51;
pub const NC_ENOMEM: c_int = -61;
pub const NC_ENOTNC4: c_int = -111;
pub const NC_ENOGRP: c_int = -125;
pub const NC_ENOTVAR: c_int = -49;
pub const NC_EBADNAME: c_int = -59;
pub const NC_ENAMEINUSE: c_int = -42;
pub const NC_EMAXNAME: c_int = -53;
pub const NC_EPERM: c_int = -37;

#[link(name = "netcdf")]
extern "C" {
    pub fn nc_create(path: *const c_char, cmode: c_int, ncidp: *mut c_int) -> c_int;
    pub fn nc_open(path: *const c_char, mode: c_int, ncidp: *mut c_int) -> c_int;
    pub fn nc_close(ncid: c_int) -> c_int;
    pub fn nc_sync(ncid: c_int) -> c_int;
    pub fn nc_inq_format(ncid: c_int, formatp: *mut c_int) -> c_int;
    pub fn nc_inq_grps(ncid: c_int, numgrps: *mut c_int, ncids: *mut c_int) -> c_int;
    pub fn nc_inq_grpname(ncid: c_int, name: *mut c_char) -> c_int;
    pub fn nc_inq_grp_ncid(ncid: c_int, grp_name: *const c_char, grp_ncid: *mut c_int) -> c_int;
    pub fn nc_def_grp(parent_ncid: c_int, name: *const c_char, new_ncid: *mut c_int) -> c_int;
    pub fn nc_inq_nvars(ncid: c_int, nvarsp: *mut c_int) -> c_int;
    pub fn nc_inq_ndims(ncid: c_int, ndimsp: *mut c_int) -> c_int;
    pub fn nc_inq_natts(ncid: c_int, nattsp: *mut c_int) -> c_int;
    pub fn nc_def_dim(ncid: c_int, name: *const c_char, len: usize, idp: *mut c_int) -> c_int;
    pub fn nc_inq_dimlen(ncid: c_int, dimid: c_int, lenp: *mut usize) -> c_int;
    pub fn nc_def_var(
        ncid: c_int,
        name: *const c_char,
        xtype: c_int,
        ndims: c_int,
        dimidsp: *const c_int,
        varidp: *mut c_int,
    ) -> c_int;
    pub fn nc_inq_varid(ncid: c_int, name: *const c_char, varidp: *mut c_int) -> c_int;
    pub fn nc_inq_var(
        ncid: c_int,
        varid: c_int,
        name: *mut c_char,
        xtypep: *mut c_int,
        ndimsp: *mut c_int,
        dimidsp: *mut c_int,
        nattsp: *mut c_int,
    ) -> c_int;
    pub fn nc_put_vara_uchar(
        ncid: c_int,
        varid: c_int,
        startp: *const usize,
        countp: *const usize,
        op: *const c_uchar,
    ) -> c_int;
    pub fn nc_get_vara_uchar(
        ncid: c_int,
        varid: c_int,
        startp: *const usize,
        countp: *const usize,
        ip: *mut c_uchar,
    ) -> c_int;
}

static LIBNETCDF: Mutex<()> = Mutex::new(());

/// Held for every call into libnetcdf, by every map of the process. A panic
/// while it was held leaves libnetcdf as it was: the lock is taken anyway.
pub fn lock() -> MutexGuard<'static, ()> {
    let guard = LIBNETCDF.lock().unwrap_or_else(|e| e.into_inner());
    silence_hdf5();
    guard
}

/// HDF5 prints its error stack to stderr unless told not to, and a
/// thread-safe HDF5 keeps that setting per thread: libnetcdf turns it off
/// only in the thread that first initialised it. A library never prints, so
/// every thread that calls libnetcdf turns it off once for itself. HDF5 is
/// found among the loaded libraries (libnetcdf's dependency), not linked.
fn silence_hdf5() {
    thread_local!(static SILENCED: Cell<bool> = const { Cell::new(false) });
    if SILENCED.with(|s| s.replace(true)) {
        return;
    }
    type SetAuto = unsafe extern "C" fn(i64, *const c_void, *mut c_void) -> c_int;
    // SAFETY: dlsym with a NUL-terminated name only looks the symbol up.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"H5Eset_auto2".as_ptr()) };
    if !f.is_null() {
        // SAFETY: H5Eset_auto2(hid_t estack_id, H5E_auto2_t func, void *data)
        // with hid_t = int64_t (HDF5 >= 1.10); H5E_DEFAULT is 0 and a NULL
        // func turns printing off. Called under the libnetcdf lock.
        unsafe {
            let set_auto: SetAuto = std::mem::transmute::<*mut c_void, SetAuto>(f);
            set_auto(0, std::ptr::null(), std::ptr::null_mut());
        }
    }
}
