//! libzmap's own heap: mimalloc is the Rust global allocator of the library,
//! so the index, the objects of a MEM map and every buffer come from a heap
//! the host program does not share.
//!
//! Why: with the host's glibc heap, MEM created 2.1–2.4M objects/s in a
//! fresh process but 0.13–1.4M after the same process had used HDF5
//! (netCDF-4 files: a heap left fragmented, large-bin searches for every
//! 1 KiB object), and every map paid page faults for memory that glibc had
//! just given back to the kernel (BENCHMARKS.md, "Issue 14, third part").
//! Memory handed to C (`NClist` contents, strings, paths) is still the C
//! library's `malloc`, freed by the documented functions or `free`.
//!
//! mimalloc prints nothing unless told to by `MIMALLOC_*` environment
//! variables, which it reads when the library is loaded; `silence` runs
//! before that (a constructor of higher priority than mimalloc's own, 101)
//! and fixes the options that print, so the library stays silent
//! (ctests/test_no_output.c runs a child with those variables set).

#[global_allocator]
static HEAP: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns off everything mimalloc could print (verbose messages, errors and
/// warnings, statistics at exit), before it reads its environment.
extern "C" fn silence() {
    use libmimalloc_sys::{
        mi_option_set, mi_option_show_errors, mi_option_show_stats, mi_option_verbose,
    };
    for option in [
        mi_option_verbose,
        mi_option_show_errors,
        mi_option_show_stats,
    ] {
        // SAFETY: `mi_option_set` only stores the value in mimalloc's static
        // option table (no allocation, no other state); valid before its
        // initialisation, which then keeps options already set.
        unsafe { mi_option_set(option, 0) };
    }
}

/// `silence` as an ELF constructor of priority 100: the dynamic loader (and
/// a static link's startup code) runs it before mimalloc's constructor of
/// priority 101 in the same object.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array.00100"]
static SILENCE_FIRST: extern "C" fn() = silence;
