//! What an S3 map knows of the server's tree (keys that are objects, keys
//! that are only prefixes, prefixes under which only this map wrote,
//! listings, sizes): pure bookkeeping, so that prefix/leaf checks (Part A3)
//! and sizes need not ask the server every time. See `store.rs`, "What a map
//! remembers".

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::time::{Duration, Instant};

use crate::key::Key;

/// Most keys remembered for prefix/leaf checks.
const KNOWN_LIMIT: usize = 1 << 18;
/// How long a size seen on the server answers `len`, `exists` and reads
/// without asking again (see "What a map remembers").
pub const SIZE_TTL: Duration = Duration::from_millis(100);

/// What this map knows of the server's tree, to check prefix/leaf conflicts
/// (Part A3) without asking every time. See the module documentation.
#[derive(Default)]
pub(super) struct Known {
    /// Keys that are objects on the server.
    pub(super) objects: BTreeSet<String>,
    /// Keys known to be intermediate keys, not objects.
    pub(super) dirs: HashSet<String>,
    /// Keys (`/` = the root) below which the server held nothing when this
    /// map looked; everything there since was written by this map.
    pub(super) fresh: HashSet<String>,
    /// Sizes of objects on the server, as this map last saw them (HEAD, GET,
    /// LIST) or uploaded them: `len`, `exists`, reads past the end and
    /// writes answer from here without a HEAD. See "What a map remembers".
    pub(super) sizes: HashMap<String, (u64, Instant)>,
    /// Complete listings this map made (searches), by prefix (`/` = the
    /// root): the names the server had one level below it then, each with
    /// whether it was an object (else only a prefix of objects). A name not
    /// there was neither an object nor above one, and since then only this
    /// map (whose changes the other fields track) wrote there.
    listed: HashMap<String, HashMap<String, bool>>,
    /// Names in `listed`.
    listed_names: usize,
}

impl Known {
    /// True if the root or a proper ancestor of `key` is fresh.
    pub(super) fn under_fresh(&self, key: &Key) -> bool {
        !self.fresh.is_empty()
            && (self.fresh.contains("/") || key.ancestors().any(|a| self.fresh.contains(a)))
    }

    pub(super) fn has_object_below(&self, key: &str) -> bool {
        let below = format!("{key}/");
        self.objects
            .range::<str, _>((Bound::Included(below.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|k| k.starts_with(&below))
    }

    /// `key` is an object on the server, so its ancestors are intermediate.
    pub(super) fn note_object(&mut self, key: &Key) {
        self.dirs.remove(key.as_str());
        self.objects.insert(key.as_str().to_string());
        self.note_ancestors(key);
    }

    pub(super) fn note_ancestors(&mut self, key: &Key) {
        for a in key.ancestors() {
            if !self.dirs.contains(a) {
                self.dirs.insert(a.to_string());
            }
        }
        if self.objects.len() + self.dirs.len() > KNOWN_LIMIT {
            // Forget everything: checks then ask the server again.
            *self = Known::default();
        }
    }

    pub(super) fn forget(&mut self) {
        *self = Known::default();
    }

    pub(super) fn note_size(&mut self, key: &str, size: u64) {
        if self.sizes.len() >= KNOWN_LIMIT && !self.sizes.contains_key(key) {
            self.sizes.clear();
        }
        self.sizes.insert(key.to_string(), (size, Instant::now()));
    }

    /// The size of `key` last seen, for writes (which already assume that
    /// nobody else changes the dataset while this map is open).
    pub(super) fn note_listing(&mut self, prefix: &str, names: HashMap<String, bool>) {
        if self.listed_names + names.len() > KNOWN_LIMIT {
            self.listed.clear();
            self.listed_names = 0;
            if names.len() > KNOWN_LIMIT {
                return;
            }
        }
        self.listed_names += names.len();
        if let Some(old) = self.listed.insert(prefix.to_string(), names) {
            self.listed_names -= old.len();
        }
    }

    /// What a listing of the parent of `k` (not the root) showed of it:
    /// `None` if there was no such listing, `Some(None)` if it did not show
    /// `k`, else whether `k` was an object.
    pub(super) fn listed(&self, k: &str) -> Option<Option<bool>> {
        let cut = k.rfind('/')?;
        if k.len() <= 1 {
            return None;
        }
        let parent = if cut == 0 { "/" } else { &k[..cut] };
        let names = self.listed.get(parent)?;
        Some(names.get(&k[cut + 1..]).copied())
    }

    /// True if a listing of `key`'s parent did not show `key`: the server
    /// then had no object at or below it.
    pub(super) fn absent(&self, key: &str) -> bool {
        self.listed(key) == Some(None)
    }

    /// True if `key` or one of its ancestors is fresh or was listed
    /// missing: only this map wrote there.
    pub(super) fn unseen(&self, key: &Key) -> bool {
        self.under_fresh(key)
            || self.absent(key.as_str())
            || (!self.listed.is_empty() && key.ancestors().any(|a| self.absent(a)))
    }

    pub(super) fn size(&self, key: &str) -> Option<u64> {
        self.sizes.get(key).map(|&(size, _)| size)
    }

    /// The size of `key` if seen less than `SIZE_TTL` ago, for answers to
    /// `len`, `exists` and reads.
    pub(super) fn recent_size(&self, key: &str) -> Option<u64> {
        self.sizes
            .get(key)
            .filter(|(_, seen)| seen.elapsed() < SIZE_TTL)
            .map(|&(size, _)| size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Key<'_> {
        Key::parse(k.as_bytes()).unwrap()
    }

    #[test]
    fn an_object_makes_its_ancestors_prefixes() {
        let mut known = Known::default();
        known.note_object(&key("/a/b/c"));
        assert!(known.objects.contains("/a/b/c"));
        assert!(known.dirs.contains("/a") && known.dirs.contains("/a/b"));
        assert!(known.has_object_below("/a"));
        assert!(known.has_object_below("/a/b"));
        assert!(!known.has_object_below("/a/b/c"));
        // "/a/bc" is not below "/a/b".
        known.forget();
        known.note_object(&key("/a/bc"));
        assert!(!known.has_object_below("/a/b"));
    }

    #[test]
    fn fresh_prefixes_and_listings_tell_what_only_this_map_wrote() {
        let mut known = Known::default();
        assert!(!known.unseen(&key("/x/y")));
        known.fresh.insert("/x".to_string());
        assert!(known.under_fresh(&key("/x/y")));
        assert!(known.unseen(&key("/x/y")));
        assert!(!known.unseen(&key("/z")));
        let names = HashMap::from([("a".to_string(), true), ("d".to_string(), false)]);
        known.note_listing("/", names);
        assert_eq!(known.listed("/a"), Some(Some(true)));
        assert_eq!(known.listed("/d"), Some(Some(false)));
        assert_eq!(known.listed("/q"), Some(None));
        assert_eq!(known.listed("/d/e"), None);
        assert!(known.absent("/q"));
        // Below a name the listing did not show: only this map wrote there.
        assert!(known.unseen(&key("/q/r")));
        assert!(!known.unseen(&key("/d/e")));
    }

    #[test]
    fn sizes_answer_writes_always_and_reads_only_while_recent() {
        let mut known = Known::default();
        known.note_size("/a", 7);
        assert_eq!(known.size("/a"), Some(7));
        assert_eq!(known.recent_size("/a"), Some(7));
        known
            .sizes
            .insert("/a".to_string(), (7, Instant::now() - SIZE_TTL));
        assert_eq!(known.size("/a"), Some(7));
        assert_eq!(known.recent_size("/a"), None);
        assert_eq!(known.size("/b"), None);
    }

    #[test]
    fn past_the_limit_it_forgets_instead_of_growing() {
        let mut known = Known::default();
        for i in 0..=KNOWN_LIMIT {
            known.note_object(&key(&format!("/k{i}")));
        }
        assert!(known.objects.len() + known.dirs.len() <= KNOWN_LIMIT);
        let many: HashMap<String, bool> =
            (0..=KNOWN_LIMIT).map(|i| (format!("n{i}"), true)).collect();
        known.note_listing("/", many);
        assert_eq!(
            known.listed("/n1"),
            None,
            "a listing past the limit is not kept"
        );
        known.note_listing("/p", HashMap::from([("x".to_string(), true)]));
        assert_eq!(known.listed("/p/x"), Some(Some(true)));
    }
}
