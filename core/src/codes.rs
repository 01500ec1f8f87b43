// netCDF status codes: the values and the spelling of netcdf.h.
//
// This file is the one list of codes. The crate uses the constants; build.rs
// `include!`s it to write the matching `#define`s into zmap.h, so it must stay
// free of `use` statements and of anything but constants.

macro_rules! nc_codes {
    ($($name:ident = $val:literal => $msg:literal,)*) => {
        $(
            #[allow(dead_code)]
            pub const $name: i32 = $val;
        )*
        /// `(name, value, message)` of every status libzmap can return.
        #[allow(dead_code)]
        pub const NC_CODES: &[(&str, i32, &str)] = &[$((stringify!($name), $val, $msg)),*];
    };
}

nc_codes! {
    NC_NOERR = 0 => "No error",
    NC_EBADID = -33 => "NetCDF: Not a valid ID",
    NC_EEXIST = -35 => "NetCDF: File exists && NC_NOCLOBBER",
    NC_EINVAL = -36 => "NetCDF: Invalid argument",
    NC_EPERM = -37 => "NetCDF: Write to read only",
    NC_ENOTNC = -51 => "NetCDF: Unknown file format",
    NC_EEDGE = -57 => "NetCDF: Start+count exceeds dimension bound",
    NC_ENOMEM = -61 => "NetCDF: Memory allocation (malloc) failure",
    NC_EIO = -68 => "NetCDF: I/O failure",
    NC_EDAPURL = -74 => "NetCDF: Malformed URL",
    NC_EACCESS = -77 => "NetCDF: Access failure",
    NC_EAUTH = -78 => "NetCDF: Authorization failure",
    NC_ENOTFOUND = -90 => "NetCDF: file not found",
    NC_EINTERNAL = -92 => "NetCDF: Internal library error; Please contact Unidata support",
    NC_ENOTBUILT = -128 => "NetCDF: Attempt to use feature that was not turned on when netCDF was built.",
    NC_ENCZARR = -137 => "NetCDF: NCZarr error",
    NC_ES3 = -138 => "NetCDF: AWS S3 error",
    NC_EEMPTY = -139 => "NetCDF: Attempt to read empty NCZarr map key",
}

/// netcdf.h spells `NC_EURL` as an alias of `NC_EDAPURL`.
#[allow(dead_code)]
pub const NC_EURL: i32 = NC_EDAPURL;

/// netCDF mode flags that the zmap API reads (values and spelling of netcdf.h).
#[allow(dead_code)]
pub const NC_MODE_FLAGS: &[(&str, &str)] = &[
    ("NC_NOWRITE", "0x0000"),
    ("NC_WRITE", "0x0001"),
    ("NC_CLOBBER", "0x0000"),
    ("NC_NOCLOBBER", "0x0004"),
    ("NC_NETCDF4", "0x1000"),
];
