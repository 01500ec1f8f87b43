//! The libnetcdf this process has loaded: where its own zmap functions are
//! (to pass through what the bridge does not serve) and which zmap ABI
//! generation it speaks.
//!
//! netCDF's definitions are the next ones after ours in the global lookup
//! order (`dlsym(RTLD_NEXT)`): the case of `LD_PRELOAD` and of programs
//! linked with `-lzmap_netcdf -lnetcdf`. A libnetcdf loaded with
//! `dlopen(RTLD_LOCAL)` (Python's extension modules) is outside the global
//! scope: then every loaded object (`dl_iterate_phdr`) is asked, through
//! `dlopen(RTLD_NOLOAD)` + `dlsym`, for `nczmap_create` and `nc_inq_libvers`.
//! The search runs at first use and again until a libnetcdf is found.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crate::abi::{NcList, NcZmap};

/// The zmap ABI generations of netCDF 4.9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// 4.9.0–4.9.2: `write(map, key, start, count, content)`.
    V490,
    /// 4.9.3 and later (4.10): `write(map, key, count, content)`, `nczmap_truncate`.
    V493,
}

/// The generation of a libnetcdf from its version (`nc_inq_libvers`) and
/// whether it defines `nczmap_truncate`; `None` (pass everything through)
/// for versions the bridge does not know or facts that disagree.
pub fn generation(version: Option<(u32, u32, u32)>, has_truncate: bool) -> Option<Generation> {
    match version? {
        (4, 9, 0..=2) if !has_truncate => Some(Generation::V490),
        (4, 9, 3..) | (4, 10, _) if has_truncate => Some(Generation::V493),
        _ => None,
    }
}

/// `major.minor.patch` at the start of `nc_inq_libvers()` ("4.9.0 of Jun
/// ...", "4.9.3-development of ...").
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let head: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = head.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

pub type CreateFn =
    unsafe extern "C" fn(c_int, *const c_char, c_int, u64, *mut c_void, *mut *mut NcZmap) -> c_int;
pub type CloseFn = unsafe extern "C" fn(*mut NcZmap, c_int) -> c_int;
pub type ExistsFn = unsafe extern "C" fn(*mut NcZmap, *const c_char) -> c_int;
pub type LenFn = unsafe extern "C" fn(*mut NcZmap, *const c_char, *mut u64) -> c_int;
pub type ReadFn = unsafe extern "C" fn(*mut NcZmap, *const c_char, u64, u64, *mut c_void) -> c_int;
pub type WriteFn = crate::abi::RawWrite;
pub type SearchFn = unsafe extern "C" fn(*mut NcZmap, *const c_char, *mut NcList) -> c_int;
pub type FeaturesFn = unsafe extern "C" fn(c_int) -> u64;
pub type TruncateFn = unsafe extern "C" fn(c_int, *const c_char) -> c_int;

/// netCDF's own zmap functions, and its generation.
pub struct Host {
    pub generation: Option<Generation>,
    pub version: String,
    pub create: CreateFn,
    pub open: CreateFn,
    pub close: CloseFn,
    pub exists: ExistsFn,
    pub len: LenFn,
    pub read: ReadFn,
    pub write: WriteFn,
    pub search: SearchFn,
    pub features: Option<FeaturesFn>,
    pub truncate: Option<TruncateFn>,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// The loaded libnetcdf, found at first use; `None` while there is none.
pub fn host() -> Option<&'static Host> {
    if let Some(host) = HOST.get() {
        return Some(host);
    }
    let found = find()?;
    Some(HOST.get_or_init(|| found))
}

/// Where symbols are looked up: the next object, or one handle.
#[derive(Clone, Copy)]
struct Source(*mut c_void);

impl Source {
    fn symbol(self, name: &str) -> *mut c_void {
        let Ok(name) = CString::new(name) else {
            return std::ptr::null_mut();
        };
        // SAFETY: a valid handle (RTLD_NEXT or one dlopen returned) and a C string.
        let address = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        if is_ours(address) {
            std::ptr::null_mut()
        } else {
            address
        }
    }
}

/// True if `address` lies in this library (never pass through to ourselves).
fn is_ours(address: *mut c_void) -> bool {
    if address.is_null() {
        return false;
    }
    let mut theirs: libc::Dl_info = unsafe_zeroed();
    let mut mine: libc::Dl_info = unsafe_zeroed();
    let own = crate::exports::nczmap_create as *const c_void;
    // SAFETY: dladdr only reads the loader's tables and fills the structs.
    unsafe {
        if libc::dladdr(address, &mut theirs) == 0 || libc::dladdr(own, &mut mine) == 0 {
            return std::ptr::eq(address, own);
        }
    }
    theirs.dli_fbase == mine.dli_fbase
}

fn unsafe_zeroed() -> libc::Dl_info {
    libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    }
}

fn find() -> Option<Host> {
    let next = Source(libc::RTLD_NEXT);
    if !next.symbol("nczmap_create").is_null() {
        return load(next);
    }
    for name in loaded_objects() {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        // SAFETY: NOLOAD only returns an already loaded object (refcount +1,
        // kept: the object stays loaded as long as we may call into it).
        let handle = unsafe { libc::dlopen(cname.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
        if handle.is_null() {
            continue;
        }
        let source = Source(handle);
        if !source.symbol("nczmap_create").is_null() && !source.symbol("nc_inq_libvers").is_null() {
            return load(source);
        }
        // SAFETY: the handle dlopen returned just above.
        unsafe { libc::dlclose(handle) };
    }
    None
}

/// Names of the loaded objects (the main program's empty name left out).
fn loaded_objects() -> Vec<String> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid info; data is our Vec.
        let (names, name) = unsafe { (&mut *data.cast::<Vec<String>>(), (*info).dlpi_name) };
        if !name.is_null() {
            // SAFETY: a loaded object's name, a NUL-terminated string.
            let name = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
            if !name.is_empty() {
                names.push(name);
            }
        }
        0
    }
    let mut names: Vec<String> = Vec::new();
    // SAFETY: the callback only reads info and pushes to the Vec it is given.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut names as *mut Vec<String>).cast()) };
    names
}

fn load(source: Source) -> Option<Host> {
    macro_rules! function {
        ($name:literal, $ty:ty) => {{
            let address = source.symbol($name);
            if address.is_null() {
                None
            } else {
                // SAFETY: netCDF defines $name with this signature (zmap.h).
                Some(unsafe { std::mem::transmute::<*mut c_void, $ty>(address) })
            }
        }};
    }
    type VersionFn = unsafe extern "C" fn() -> *const c_char;
    let version = function!("nc_inq_libvers", VersionFn)
        .map(|f| {
            // SAFETY: nc_inq_libvers returns a static NUL-terminated string.
            unsafe { CStr::from_ptr(f()) }
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let truncate = function!("nczmap_truncate", TruncateFn);
    Some(Host {
        generation: generation(parse_version(&version), truncate.is_some()),
        version,
        create: function!("nczmap_create", CreateFn)?,
        open: function!("nczmap_open", CreateFn)?,
        close: function!("nczmap_close", CloseFn)?,
        exists: function!("nczmap_exists", ExistsFn)?,
        len: function!("nczmap_len", LenFn)?,
        read: function!("nczmap_read", ReadFn)?,
        write: function!("nczmap_write", WriteFn)?,
        search: function!("nczmap_search", SearchFn)?,
        features: function!("nczmap_features", FeaturesFn),
        truncate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("4.9.0 of Jun 26 2022 09:43:04 $"),
            Some((4, 9, 0))
        );
        assert_eq!(parse_version("4.9.3-development of ..."), Some((4, 9, 3)));
        assert_eq!(parse_version("4.10"), Some((4, 10, 0)));
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn generations() {
        use Generation::*;
        assert_eq!(generation(Some((4, 9, 0)), false), Some(V490));
        assert_eq!(generation(Some((4, 9, 2)), false), Some(V490));
        assert_eq!(generation(Some((4, 9, 3)), true), Some(V493));
        assert_eq!(generation(Some((4, 10, 0)), true), Some(V493));
        // Facts that disagree, and versions the bridge does not know: pass through.
        assert_eq!(generation(Some((4, 9, 0)), true), None);
        assert_eq!(generation(Some((4, 9, 3)), false), None);
        assert_eq!(generation(Some((4, 8, 1)), false), None);
        assert_eq!(generation(Some((4, 11, 0)), true), None);
        assert_eq!(generation(Some((5, 0, 0)), true), None);
        assert_eq!(generation(None, false), None);
    }
}
