//! Generates include/zmap.h (at the workspace root, where CMake and users
//! find it) from src/ffi with cbindgen, sets the soname, and
//! gives the shared library its symbol versions.
//!
//! Every C function is exported under a link name `zmap_<name>`
//! (`#[export_name]` in src/ffi), which the header maps the 2020 names onto.
//! The 2020 names themselves are exported too, but only as hidden versions
//! `<name>@ZMAP_1` of a version node with index 3: glibc never binds an
//! unversioned reference (libnetcdf's calls to its own nczmap_*, nclist*) to
//! such a definition, so a process may load libzmap and libnetcdf together.
//! See README, "Linking libzmap together with libnetcdf".
//!
//! The header is written to $OUT_DIR/zmap.h on every build; the committed
//! copy in include/ is refreshed only with ZMAP_UPDATE_HEADER=1, and a test
//! (tests/header.rs) fails when the two differ. The NC4 backend's link to
//! libnetcdf is zmap-core's (core/build.rs).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

include!("../core/src/codes.rs");

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

/// The link-name prefix of every exported function.
const LINK_PREFIX: &str = "zmap_";

/// The C names of the exported functions, in source order: every
/// `#[export_name = "zmap_<name>"]` of src/ffi.
fn exported_names(ffi_dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = fs::read_dir(ffi_dir)
        .expect("src/ffi")
        .map(|entry| entry.expect("src/ffi entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    let marker = format!("#[export_name = \"{LINK_PREFIX}");
    let mut names = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("src/ffi source");
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix(&marker) {
                let name = rest.split('"').next().unwrap_or_default();
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The header part that maps each C name onto its link name.
fn link_name_macros(names: &[String]) -> String {
    let mut text = String::from(concat!(
        "\n/* Link names. Code compiled with this header calls libzmap's exports\n",
        " * zmap_<name> (zmap_nczmap_create, ...), which netCDF-C's libnetcdf does\n",
        " * not define, so its calls reach libzmap whatever else the process loads.\n",
        " * The names below are also exported, but only as hidden symbol versions\n",
        " * <name>@ZMAP_1, which unversioned references (libnetcdf's calls to its\n",
        " * own zmap functions, programs built against an unversioned libzmap)\n",
        " * never bind to: find them with dlsym(h, \"zmap_<name>\") or\n",
        " * dlvsym(h, \"<name>\", \"ZMAP_1\"). README: \"Linking libzmap together\n",
        " * with libnetcdf\". */\n",
    ));
    let mut sorted = names.to_vec();
    sorted.sort();
    for name in sorted {
        let _ = writeln!(text, "#define {name} {LINK_PREFIX}{name}");
    }
    text
}

/// cbindgen declares the functions by their link names; the header declares
/// them by their C names, which the macros of `link_name_macros` (earlier in
/// the header) turn into the link names again.
fn declare_c_names(header: &str) -> String {
    let mut text = String::with_capacity(header.len());
    for line in header.split_inclusive('\n') {
        let declaration = line.trim_end().ends_with(");") && !line.starts_with(['#', ' ', '/']);
        let paren = line.find('(').unwrap_or(0);
        let name_start = line[..paren]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        if declaration && line[name_start..paren].starts_with(LINK_PREFIX) {
            text.push_str(&line[..name_start]);
            text.push_str(&line[name_start + LINK_PREFIX.len()..]);
        } else {
            text.push_str(line);
        }
    }
    text
}

/// The implicit linker script of the shared library: a placeholder version
/// node ZMAP_0 (index 2, which glibc treats as unversioned) and ZMAP_1
/// (index 3) holding every 2020 name as a hidden alias of its link name.
fn version_script(names: &[String]) -> String {
    let mut text = String::from(
        "/* Generated by build.rs: libzmap's symbol versions. */\nVERSION {\n  ZMAP_0 { };\n  ZMAP_1 {\n    global:\n",
    );
    for name in names {
        let _ = writeln!(text, "      {name};");
    }
    text.push_str("  };\n}\n");
    for name in names {
        let _ = writeln!(text, "\"{name}@ZMAP_1\" = {LINK_PREFIX}{name};");
    }
    text
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=../core/src/codes.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=ZMAP_UPDATE_HEADER");

    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    // ABI 2 (0.x): the seed's API under the link names zmap_* (ABI 1 exported
    // the plain names, which bound libnetcdf's own calls to libzmap).
    let soname_version = if major == "0" { "2".to_string() } else { major };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzmap.so.{soname_version}");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let names = exported_names(&crate_dir.join("src/ffi"));

    // Symbol versions need an ELF linker that takes a named version script
    // next to rustc's own anonymous one: lld does (GNU ld refuses the mix),
    // and it is Rust's default linker on x86_64 Linux since 1.90.
    if env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        let script = out_dir.join("zmap_versions.ld");
        fs::write(&script, version_script(&names)).expect("write zmap_versions.ld");
        println!("cargo:rustc-cdylib-link-arg=-fuse-ld=lld");
        // Dependencies' own `#[no_mangle]` functions (crc-fast's C API, say)
        // are not libzmap's ABI: keep every symbol of the linked rlibs local.
        println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
        println!("cargo:rustc-cdylib-link-arg={}", script.display());
    }

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(macros() + &link_name_macros(&names));
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate zmap.h");

    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header = declare_c_names(&String::from_utf8(generated).expect("zmap.h is UTF-8"));
    fs::write(out_dir.join("zmap.h"), &header).expect("write zmap.h");
    if env::var_os("ZMAP_UPDATE_HEADER").is_some() {
        fs::write(crate_dir.join("../include/zmap.h"), &header).expect("write include/zmap.h");
    }
}
