//! Helpers shared by the tool's tests (`tests/cli_*.rs`): run the built
//! `zmap`, and read a directory tree back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const ZMAP: &str = env!("CARGO_BIN_EXE_zmap");

pub fn zmap(args: &[&str]) -> Output {
    Command::new(ZMAP)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run zmap")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn ok(args: &[&str]) -> Output {
    let out = zmap(args);
    assert!(
        out.status.success(),
        "zmap {args:?} failed: {}",
        text(&out.stderr)
    );
    out
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every regular file below `root`, by relative path, with its bytes; and
/// every directory (content `None`).
pub fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if path.is_dir() {
                out.insert(rel, None);
                visit(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}
