//! From a parsed header to the index of objects (gnz-format.md Part 2: which
//! arrays are objects), and back (an object as an array of the header).

use std::path::Path;

use super::format::{ArrayOut, Parsed};
use super::index::{Index, Layout, Object};
use super::json::Object as JsonObject;
use crate::error::Result;
use crate::key::Key;
use crate::store::is_dataset_marker;

/// The key of an array name (gnz-format.md Part 2), if it has one.
pub(super) fn key_of(name: &str) -> Option<Key<'_>> {
    let key = Key::parse(name.as_bytes()).ok()?;
    let canonical = if name.starts_with('/') {
        key.as_str() == name
    } else {
        key.as_str()[1..] == *name
    };
    (canonical && !key.is_root()).then_some(key)
}

/// What the store takes from a loaded header.
pub(super) struct Built {
    pub(super) objects: Index,
    /// The names of the arrays that are not objects (not a valid key, or
    /// clashing with another array's key), and their extents.
    pub(super) skipped: Vec<String>,
    pub(super) foreign: Vec<(u64, u64)>,
    /// How many arrays the header lists, and whether one of them is a
    /// dataset marker at the top.
    pub(super) arrays: usize,
    pub(super) marked: bool,
    pub(super) metadata: JsonObject,
    pub(super) extra: JsonObject,
    pub(super) generation: u64,
}

/// The objects of a header (in name order, so that of two clashing arrays
/// the same one is always skipped).
pub(super) fn build(parsed: Parsed<'_>) -> Result<Built> {
    let generation = parsed.generation();
    let arrays = &parsed.arrays;
    let mut order: Vec<usize> = (0..arrays.len()).collect();
    if !parsed.sorted {
        order.sort_by(|&a, &b| arrays[a].name.cmp(&arrays[b].name));
    }
    let mut objects = Index::default();
    let mut skipped = Vec::new();
    let mut foreign = Vec::new();
    let mut marked = false;
    for i in order {
        let a = &arrays[i];
        let key = key_of(&a.name);
        if let Some(k) = &key {
            let top = &k.as_str()[1..];
            marked |= !top.contains('/') && is_dataset_marker(top);
        }
        let Some(key) =
            key.filter(|k| !objects.contains(k.as_str()) && objects.check_leaf(k.as_str()).is_ok())
        else {
            skipped.push(a.name.to_string());
            if a.nbytes > 0 {
                foreign.push((a.offset, a.offset + a.nbytes));
            }
            continue;
        };
        let object = Object {
            offset: if a.nbytes == 0 { 0 } else { a.offset },
            len: a.nbytes,
            cap: a.nbytes,
            committed: a.nbytes,
            born: 0,
            name: (a.name != key.as_str()).then(|| a.name.as_ref().into()),
            layout: (!a.is_plain()).then(|| {
                Box::new(Layout {
                    dtype: a.dtype.as_ref().into(),
                    shape: a.shape.as_slice().to_vec(),
                    order: a.order,
                })
            }),
        };
        objects.insert(key.as_str(), object);
    }
    Ok(Built {
        objects,
        skipped,
        foreign,
        arrays: arrays.len(),
        marked,
        metadata: parsed.metadata,
        extra: parsed.extra,
        generation,
    })
}

/// An object as an array of the header.
pub(super) fn array_out<'a>(name: &'a str, o: &'a Object) -> ArrayOut<'a> {
    let offset = if o.len == 0 { 0 } else { o.offset };
    match &o.layout {
        Some(l) => ArrayOut {
            name,
            offset,
            dtype: &l.dtype,
            order: l.order,
            shape: &l.shape,
        },
        None => ArrayOut {
            name,
            offset,
            dtype: "|u1",
            order: "C",
            shape: std::slice::from_ref(&o.len),
        },
    }
}

/// The diagnostic of an open that skipped arrays (`Store::warnings`): the
/// library never prints it itself.
pub(super) fn skipped_warning(path: &Path, skipped: &[String]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let shown: Vec<String> = skipped.iter().take(5).map(|n| format!("{n:?}")).collect();
    let more = if skipped.len() > 5 {
        format!(" and {} more", skipped.len() - 5)
    } else {
        String::new()
    };
    Some(format!(
        "{}: GNZ arrays that are not valid zmap keys were skipped and the file is \
         read-only: {}{more}",
        path.display(),
        shown.join(", ")
    ))
}
