//! The crate's one error type, and the one place where it becomes an NC code.

use std::fmt;
use std::io;

use crate::codes::*;

/// Why an operation failed. Backends return these; `code()` turns them into
/// netCDF's negative status codes at the C boundary.
#[derive(Debug)]
pub enum Error {
    /// The key holds no content: missing, an intermediate key, or the root.
    /// Also: the dataset to open does not exist.
    Empty,
    /// A read past the end of an object.
    Edge,
    /// A bad argument: a rejected key, a NULL pointer, a prefix/leaf conflict...
    Invalid(&'static str),
    /// A mutation through a map opened read-only.
    ReadOnly,
    /// Create over something that is not a dataset, or NOCLOBBER rules.
    Exists,
    /// `close(delete)` of a directory that holds no dataset: refused,
    /// nothing removed.
    NotDataset,
    /// The backend was not built in (or does not exist).
    NotBuilt,
    /// A dataset path or URL that cannot be parsed.
    Url,
    /// An allocation failed.
    NoMem,
    /// The dataset is locked by another writer.
    Locked,
    /// A map handle that is not open (closed, or never ours).
    BadHandle,
    /// A read-only map's snapshot was overwritten by a writer (a GNZ header
    /// that outgrew its region): reopen the map.
    Stale,
    /// The file is not in the expected format (or is corrupt).
    Format(String),
    /// The store refused our credentials.
    Auth,
    /// An S3 failure other than not-found/denied.
    S3(String),
    /// An invariant of the library broke (a bug, or a caught panic).
    Internal(&'static str),
    /// An operating-system failure.
    Io(io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The leaf rules' refusals (README, "Keys"), worded alike by every
    /// backend: an object where objects lie below, an object below one.
    pub const PREFIX_OF_OBJECTS: Error = Error::Invalid("key is a prefix of existing objects");
    pub const BELOW_AN_OBJECT: Error = Error::Invalid("key lies below an existing object");
    /// The root (`/`) is always an intermediate key.
    pub const ROOT_NOT_OBJECT: Error = Error::Invalid("the root is not an object");

    /// The netCDF status code for this error. Never positive.
    pub fn code(&self) -> i32 {
        match self {
            Error::Empty => NC_EEMPTY,
            Error::Edge => NC_EEDGE,
            Error::Invalid(_) => NC_EINVAL,
            Error::ReadOnly => NC_EPERM,
            Error::Exists => NC_EEXIST,
            Error::NotDataset => NC_EPERM,
            Error::NotBuilt => NC_ENOTBUILT,
            Error::Url => NC_EURL,
            Error::NoMem => NC_ENOMEM,
            Error::Locked => NC_EACCESS,
            Error::BadHandle => NC_EBADID,
            Error::Stale => NC_EACCESS,
            Error::Format(_) => NC_ENOTNC,
            Error::Auth => NC_EAUTH,
            Error::S3(_) => NC_ES3,
            Error::Internal(_) => NC_EINTERNAL,
            Error::Io(e) => io_code(e),
        }
    }
}

/// OS errors: "not there" is `NC_EEMPTY` (the zmap model), permission problems
/// are `NC_EAUTH` and `NC_EPERM` (read-only file system), everything else is
/// an access failure as in netCDF.
fn io_code(e: &io::Error) -> i32 {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => NC_EEMPTY,
        Some(libc::EACCES) | Some(libc::EPERM) => NC_EAUTH,
        Some(libc::EROFS) => NC_EPERM,
        Some(libc::ENOMEM) => NC_ENOMEM,
        Some(libc::ENAMETOOLONG) | Some(libc::EFBIG) | Some(libc::EXDEV) | Some(libc::ELOOP) => {
            NC_EINVAL
        }
        _ => match e.kind() {
            io::ErrorKind::NotFound => NC_EEMPTY,
            io::ErrorKind::PermissionDenied => NC_EAUTH,
            io::ErrorKind::OutOfMemory => NC_ENOMEM,
            _ => NC_EACCESS,
        },
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::Io(e.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(why) => write!(f, "{}: {why}", strerror(self.code())),
            Error::Format(why) => write!(f, "{}: {why}", strerror(self.code())),
            Error::S3(why) => write!(f, "{}: {why}", strerror(self.code())),
            Error::Internal(why) => write!(f, "{}: {why}", strerror(self.code())),
            Error::Io(e) => write!(f, "{}: {e}", strerror(self.code())),
            Error::Stale => write!(
                f,
                "{}: the snapshot of this read-only map was overwritten by a writer; reopen it",
                strerror(self.code())
            ),
            _ => f.write_str(strerror(self.code())),
        }
    }
}

impl std::error::Error for Error {}

/// The static message for an NC status code.
pub fn strerror(code: i32) -> &'static str {
    NC_CODES
        .iter()
        .find(|(_, value, _)| *value == code)
        .map(|(_, _, msg)| *msg)
        .unwrap_or("NetCDF: Unknown error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_error_maps_to_a_positive_code() {
        for errno in 1..200 {
            let code = Error::Io(io::Error::from_raw_os_error(errno)).code();
            assert!(code < 0, "errno {errno} gave {code}");
        }
    }

    #[test]
    fn messages_match_netcdf() {
        assert_eq!(
            strerror(NC_EEMPTY),
            "NetCDF: Attempt to read empty NCZarr map key"
        );
        assert_eq!(strerror(NC_EURL), "NetCDF: Malformed URL");
        assert_eq!(strerror(12345), "NetCDF: Unknown error");
    }
}
