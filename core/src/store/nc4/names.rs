//! Key segments and netCDF group names (nc4-layout.md): a segment whose
//! first character is `.` is stored with `_` in its place, and a group name
//! starting with `_` reads back with `.`.
//!
//! So a segment that itself starts with `_` has no group name that reads
//! back as it: the NC4 backend refuses such keys with `NC_EINVAL` (every
//! function, reads included), and the 2020 mapping stays exact both ways.
//! Segments netCDF cannot name are refused the same way: a first character
//! other than a letter, digit, `.` or a non-ASCII character; a trailing
//! space; text that is not in Unicode NFC (netCDF would store the NFC form,
//! and the key would come back spelled differently).

use std::ffi::CString;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::error::{Error, Result};
use crate::key;

/// The group name of a key segment (already a valid segment), NUL-terminated
/// for libnetcdf.
pub fn group_name(segment: &str) -> Result<CString> {
    let bytes = segment.as_bytes();
    let first = *bytes.first().ok_or(Error::Invalid("empty key segment"))?;
    let mut name = Vec::with_capacity(bytes.len() + 1);
    match first {
        b'_' => return Err(Error::Invalid(
            "NC4: a key segment starting with '_' cannot be stored (it would read back with '.')",
        )),
        b'.' => {
            name.push(b'_');
            name.extend_from_slice(&bytes[1..]);
        }
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | 0x80.. => name.extend_from_slice(bytes),
        _ => {
            return Err(Error::Invalid(
                "NC4: a key segment must start with a letter, digit, '.' or a non-ASCII character",
            ))
        }
    }
    if bytes.last() == Some(&b' ') {
        return Err(Error::Invalid("NC4: a key segment cannot end with a space"));
    }
    if !segment.is_ascii() && !is_nfc(segment) {
        return Err(Error::Invalid("NC4: a key segment must be in Unicode NFC"));
    }
    CString::new(name).map_err(|_| Error::Invalid("NUL in key"))
}

fn is_nfc(text: &str) -> bool {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => text.nfc().eq(text.chars()),
    }
}

/// The key segment a group name stands for; `None` for a name no key can
/// have (it is then not listed).
pub fn segment(group_name: &str) -> Option<String> {
    let segment = match group_name.strip_prefix('_') {
        Some(rest) => format!(".{rest}"),
        None => group_name.to_string(),
    };
    key::check_segment(&segment).ok()?;
    Some(segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::NC_EINVAL;

    fn name(segment: &str) -> String {
        group_name(segment).unwrap().into_string().unwrap()
    }

    #[test]
    fn leading_dot_is_stored_as_underscore() {
        assert_eq!(name(".zarray"), "_zarray");
        assert_eq!(name(".nczarr"), "_nczarr");
        assert_eq!(name("..x"), "_.x");
        assert_eq!(name("..."), "_..");
        assert_eq!(name("a.b"), "a.b");
        assert_eq!(name("0.0.1"), "0.0.1");
        assert_eq!(name("é"), "é");
        assert_eq!(segment("_zarray").unwrap(), ".zarray");
        assert_eq!(segment("_.x").unwrap(), "..x");
        assert_eq!(segment("meta1").unwrap(), "meta1");
    }

    #[test]
    fn every_stored_name_reads_back_as_its_segment() {
        for s in [
            ".zarray", "..x", "...", "data", "c", "0.1", "a b", "Z", "é.x",
        ] {
            assert_eq!(segment(&name(s)).as_deref(), Some(s));
        }
    }

    #[test]
    fn segments_without_a_group_name_are_invalid() {
        for s in ["_x", "_", "__", "-x", "+", " a", "a ", "#", "e\u{301}"] {
            let err = group_name(s).unwrap_err();
            assert_eq!(err.code(), NC_EINVAL, "{s:?}");
        }
    }

    #[test]
    fn unreadable_group_names_are_skipped() {
        // "_" and "_." would be the segments "." and "..".
        assert_eq!(segment("_"), None);
        assert_eq!(segment("_."), None);
        assert_eq!(segment("a\\b"), None);
    }
}
