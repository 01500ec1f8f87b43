//! Generates include/zmap.h from src/ffi with cbindgen, and sets the soname.
//!
//! The header is written to $OUT_DIR/zmap.h on every build; the committed
//! copy in include/ is refreshed only with ZMAP_UPDATE_HEADER=1, and a test
//! (tests/header.rs) fails when the two differ.

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;

include!("src/codes.rs");

/// The preprocessor part of the header that cbindgen cannot derive: netCDF's
/// macros, spelled as netcdf.h spells them and guarded so either header may
/// come first.
fn macros() -> String {
    let mut text = String::new();
    text.push_str("\n/* The zmap API's 64-bit size type (netCDF's ncconfigure.h). */\n");
    text.push_str("#ifndef HAVE_SIZE64_T\n#define HAVE_SIZE64_T 1\ntypedef unsigned long long size64_t;\n#endif\n");
    // The API table's function pointers name `struct NCZMAP` before its
    // definition; a file-scope tag declaration keeps that one type in C.
    text.push_str("\nstruct NCZMAP;\nstruct NCZMAP_API;\nstruct NClist;\n");
    text.push_str("\n/* netCDF status codes (as in netcdf.h) that zmap functions return. */\n");
    for (name, value, message) in NC_CODES {
        let spelled = if *value == 0 {
            "0".to_string()
        } else {
            format!("({value})")
        };
        let _ = writeln!(
            text,
            "#ifndef {name}\n#define {name} {spelled} /**< {message} */\n#endif"
        );
    }
    text.push_str("#ifndef NC_EURL\n#define NC_EURL (NC_EDAPURL)\n#endif\n");
    text.push_str(
        "\n/* netCDF mode flags read by nczmap_create/nczmap_open (as in netcdf.h). */\n",
    );
    for (name, value) in NC_MODE_FLAGS {
        let _ = writeln!(text, "#ifndef {name}\n#define {name} {value}\n#endif");
    }
    text.push_str(
        r#"
/* Flag bit of nczmap_create/open `flags`: byte-range (read-only) access. */
#define NCZM_FLAG_BYTERANGE 8

#define NCZM_SEP "/"
#define NCZM_DOT '.'
/* Mnemonic for nczm_localize. */
#define LOCALIZE 1

/* NClist accessors (as in netCDF's nclist.h). */
#define nclistclear(l) nclistsetlength((l),0)
#define nclistextend(l,len) nclistsetalloc((l),(len)+((l)->alloc))
#define nclistcontents(l) ((l)==NULL?NULL:(l)->content)
#define nclistlength(l) ((l)==NULL?0:(l)->length)

/* NCZM_MEM is the in-memory backend, the seed's NCZM_UNDEF. */
#define NCZM_MEM NCZM_UNDEF
/* The default map implementation: one GNZ container file. */
#define NCZM_DEFAULT NCZM_GNZ
"#,
    );
    text
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=ZMAP_UPDATE_HEADER");

    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    // The ABI is the seed's; soname version 1 from the first release on.
    let soname_version = if major == "0" { "1".to_string() } else { major };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzmap.so.{soname_version}");

    if env::var_os("CARGO_FEATURE_NC4").is_some() {
        link_netcdf();
    }

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(macros());
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate zmap.h");

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings.write_to_file(out_dir.join("zmap.h"));
    if env::var_os("ZMAP_UPDATE_HEADER").is_some() {
        bindings.write_to_file(crate_dir.join("include/zmap.h"));
    }
}

/// The NCZM_NC4 backend calls the system libnetcdf: pkg-config's `netcdf`
/// when it is there, else plain `-lnetcdf` from the linker's default paths.
fn link_netcdf() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if pkg_config::Config::new()
        .atleast_version("4.4")
        .probe("netcdf")
        .is_err()
    {
        println!("cargo:rustc-link-lib=netcdf");
    }
}
