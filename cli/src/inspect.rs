//! Read-only commands: ls, tree, cat, info, verify.

use std::io::{self, Write};

use zmap_core::{Error, Key, Map};

use crate::dataset::{self, Entry, Target};
use crate::failure::{describe, At, Failure};
use crate::progress::Progress;

/// Objects are read in pieces of this size (cat, verify, cp).
pub const CHUNK: usize = 1 << 20;

pub fn ls(
    target: &Target,
    prefix: Option<&str>,
    long: bool,
    recursive: bool,
) -> Result<(), Failure> {
    let map = target.open_read()?;
    let prefix = dataset::parse_key(target, prefix.unwrap_or("/"))?;
    let mut out = io::stdout().lock();
    let mut line = |len: Option<u64>, shown: &str| -> Result<(), Failure> {
        let slash = if len.is_none() { "/" } else { "" };
        let text = if long {
            let size = len.map_or_else(|| "-".to_string(), |n| n.to_string());
            format!("{size:>12}  {shown}{slash}\n")
        } else {
            format!("{shown}{slash}\n")
        };
        out.write_all(text.as_bytes()).map_err(Failure::stdout)
    };
    let prefix_len = dataset::object_len(&map, target, &prefix)?;
    if let Some(len) = prefix_len {
        // Like ls of a file: the object itself.
        return line(Some(len), prefix.as_str());
    }
    let children = map.search(&prefix).at(target.key_context(&prefix))?;
    if children.is_empty() && !prefix.is_root() {
        return Err(Failure::nc(target.key_context(&prefix), Error::Empty));
    }
    if recursive {
        dataset::walk(&map, target, &prefix, &mut |entry: &Entry| {
            if entry.key == prefix {
                return Ok(());
            }
            line(entry.len, entry.key.as_str())
        })?;
    } else {
        for name in children {
            let key = prefix.child(&name).at(target.key_context(&prefix))?;
            let len = dataset::object_len(&map, target, &key)?;
            line(len, &name)?;
        }
    }
    out_flush()?;
    map.close(false).at(target)
}

fn out_flush() -> Result<(), Failure> {
    io::stdout().flush().map_err(Failure::stdout)
}

/// zmapio's dump: every key gets a number in depth-first order; objects are
/// printed as `[n] key : (len) |content|`, content raw when the key's last
/// segment starts with '.', lowercase hex otherwise. With a `limit`, only
/// that many bytes of content are shown, followed by `...` when cut.
pub fn tree(target: &Target, prefix: Option<&str>, limit: Option<usize>) -> Result<(), Failure> {
    let map = target.open_read()?;
    let start = dataset::parse_key(target, prefix.unwrap_or("/"))?;
    let mut out = io::stdout().lock();
    let mut index = 0usize;
    dataset::walk(&map, target, &start, &mut |entry: &Entry| {
        let n = index;
        index += 1;
        let Some(len) = entry.len else {
            return Ok(());
        };
        let shown = limit.map_or(len, |l| len.min(l as u64));
        let mut content = vec![0u8; shown as usize];
        map.read(&entry.key, 0, &mut content)
            .at(target.key_context(&entry.key))?;
        let mut line = format!("[{n}] {} : ({len}) |", entry.key).into_bytes();
        if entry.key.name().starts_with('.') {
            line.extend_from_slice(&content);
        } else {
            for byte in &content {
                line.extend_from_slice(format!("{byte:02x}").as_bytes());
            }
        }
        if shown < len {
            line.extend_from_slice(b"...");
        }
        line.extend_from_slice(b"|\n");
        out.write_all(&line).map_err(Failure::stdout)
    })?;
    out.flush().map_err(Failure::stdout)?;
    map.close(false).at(target)
}

/// `--range A:B`: bytes A..B, either end optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: Option<u64>,
    pub end: Option<u64>,
}

pub fn parse_range(text: &str) -> Result<ByteRange, String> {
    let (a, b) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not A:B"))?;
    let number = |s: &str| -> Result<Option<u64>, String> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse::<u64>()
                .map(Some)
                .map_err(|_| format!("'{s}' is not a byte offset"))
        }
    };
    let range = ByteRange {
        start: number(a)?,
        end: number(b)?,
    };
    if let (Some(a), Some(b)) = (range.start, range.end) {
        if b < a {
            return Err(format!("range end {b} is before its start {a}"));
        }
    }
    Ok(range)
}

pub fn cat(target: &Target, key: &str, range: Option<ByteRange>) -> Result<(), Failure> {
    let map = target.open_read()?;
    let key = dataset::parse_object_key(target, key)?;
    let context = target.key_context(&key);
    let len = map.len(&key).at(&context)?;
    let range = range.unwrap_or(ByteRange {
        start: None,
        end: None,
    });
    let start = range.start.unwrap_or(0);
    let end = range.end.unwrap_or(len.max(start));
    if end > len {
        return Err(Failure::nc(
            format!("{context} [{start}:{end}] of {len} bytes"),
            Error::Edge,
        ));
    }
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; CHUNK.min((end - start) as usize)];
    let mut at = start;
    while at < end {
        let n = ((end - at) as usize).min(buf.len());
        map.read(&key, at, &mut buf[..n]).at(&context)?;
        out.write_all(&buf[..n]).map_err(Failure::stdout)?;
        at += n as u64;
    }
    out.flush().map_err(Failure::stdout)?;
    map.close(false).at(target)
}

pub fn info(target: &Target) -> Result<(), Failure> {
    let map = target.open_read()?;
    let (mut objects, mut prefixes, mut bytes) = (0u64, 0u64, 0u64);
    dataset::walk(&map, target, &Key::root(), &mut |entry: &Entry| {
        match entry.len {
            Some(len) => {
                objects += 1;
                bytes += len;
            }
            None if entry.key.is_root() => {}
            None => prefixes += 1,
        }
        Ok(())
    })?;
    let mut lines = vec![
        ("dataset".to_string(), target.location.clone()),
        ("backend".to_string(), map.backend().name().to_string()),
        ("objects".to_string(), objects.to_string()),
        ("intermediate keys".to_string(), prefixes.to_string()),
        ("bytes".to_string(), bytes.to_string()),
    ];
    if let Some(size) = target
        .local_path()
        .filter(|p| p.is_file())
        .and_then(|p| p.metadata().ok())
    {
        lines.push(("file size".to_string(), size.len().to_string()));
    }
    lines.extend(map.stats());
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = io::stdout().lock();
    for (name, value) in lines {
        writeln!(out, "{:<width$} {value}", format!("{name}:")).map_err(Failure::stdout)?;
    }
    out.flush().map_err(Failure::stdout)?;
    map.close(false).at(target)
}

/// Reads every object in full, then runs the backend's own check. Every
/// failure is reported (with its key); the command fails if any occurred.
pub fn verify(target: &Target, quiet: bool) -> Result<(), Failure> {
    let map = target.open_read()?;
    let objects = dataset::objects(&map, target, &Key::root())?;
    let total: u64 = objects.iter().map(|(_, len)| len).sum();
    let progress = Progress::new("verified", total, objects.len() as u64, quiet);
    let mut failures = 0usize;
    let mut buf = vec![0u8; CHUNK];
    for (key, len) in &objects {
        if let Err(e) = read_all(&map, key, *len, &mut buf, &|n| progress.bytes(n)) {
            progress.abandon();
            eprintln!("zmap: {}: {}", target.key_context(key), describe(&e));
            failures += 1;
        }
        progress.object_done();
    }
    if let Err(e) = map.verify() {
        progress.abandon();
        eprintln!("zmap: {target}: backend check: {}", describe(&e));
        failures += 1;
    }
    progress.finish(total, "");
    let _ = map.close(false);
    if failures > 0 {
        return Err(Failure::Reported {
            summary: format!("{target}: verify failed: {failures} error(s)"),
        });
    }
    let mut out = io::stdout().lock();
    writeln!(out, "verify: {} objects, {total} bytes: ok", objects.len())
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}

/// Reads `len` bytes of `key` in pieces through `buf`, checking that the
/// object ends exactly there.
fn read_all(
    map: &Map,
    key: &Key,
    len: u64,
    buf: &mut [u8],
    seen: &dyn Fn(u64),
) -> zmap_core::Result<()> {
    // Only the ranges that hold data are read: holes of a sparse file read
    // as zeros and cannot fail, so the work is bounded by what the file
    // holds, whatever length its header claims.
    let mut done = 0u64;
    while let Some((from, to)) = map.next_data(key, done, len)? {
        seen(from - done);
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(buf.len());
            map.read(key, at, &mut buf[..n])?;
            seen(n as u64);
            at += n as u64;
        }
        done = to;
    }
    seen(len - done);
    // One byte more must be past the end.
    let mut probe = [0u8; 1];
    match map.read(key, len, &mut probe) {
        Err(Error::Edge) => {}
        Ok(()) => return Err(Error::Internal("object longer than its length")),
        Err(e) => return Err(e),
    }
    match map.len(key)? {
        l if l == len => Ok(()),
        _ => Err(Error::Internal("object length changed while reading")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s| parse_range(s);
        assert_eq!(
            r("2:5"),
            Ok(ByteRange {
                start: Some(2),
                end: Some(5)
            })
        );
        assert_eq!(
            r(":5"),
            Ok(ByteRange {
                start: None,
                end: Some(5)
            })
        );
        assert_eq!(
            r("7:"),
            Ok(ByteRange {
                start: Some(7),
                end: None
            })
        );
        assert!(r("5:2").is_err());
        assert!(r("5").is_err());
        assert!(r("a:b").is_err());
        assert!(r("-1:2").is_err());
    }
}
