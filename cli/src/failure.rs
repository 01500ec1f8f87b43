//! Why a command failed, and how that becomes a message and an exit status.

use std::fmt::Display;
use std::io;
use std::process::ExitCode;

use zmap_core::codes::{NC_CODES, NC_EURL};
use zmap_core::Error;

#[derive(Debug)]
pub enum Failure {
    /// Bad arguments: exit status 1.
    Usage(String),
    /// An NC error, with the key or dataset it concerns: exit status 2.
    Nc { context: String, error: Error },
    /// Several NC errors already reported one by one (verify): exit status 2.
    Reported { summary: String },
    /// stdout was closed by its reader (`zmap cat … | head`): not an error.
    BrokenPipe,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    pub fn nc(context: impl Display, error: Error) -> Failure {
        Failure::Nc {
            context: context.to_string(),
            error,
        }
    }

    /// Output to stdout failed: a closed pipe ends the command quietly, any
    /// other failure is an I/O error like the library's.
    pub fn stdout(error: io::Error) -> Failure {
        if error.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::nc("<stdout>", Error::Io(error))
        }
    }

    /// Prints the failure on stderr and gives the exit status.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Usage(message) => {
                eprintln!("zmap: {message}");
                eprintln!("Try 'zmap --help' for more information.");
                ExitCode::from(1)
            }
            Failure::Nc { context, error } => {
                eprintln!("zmap: {context}: {}", describe(&error));
                ExitCode::from(2)
            }
            Failure::Reported { summary } => {
                eprintln!("zmap: {summary}");
                ExitCode::from(2)
            }
            Failure::BrokenPipe => ExitCode::SUCCESS,
        }
    }
}

/// `strerror` text (with the library's detail) and the code's name and value:
/// `NetCDF: Attempt to read empty NCZarr map key (NC_EEMPTY -139)`.
pub fn describe(error: &Error) -> String {
    let code = error.code();
    // netcdf.h's own name for -74 is NC_EURL (NC_EDAPURL is its old alias).
    let name = if code == NC_EURL {
        "NC_EURL"
    } else {
        NC_CODES
            .iter()
            .find(|(_, value, _)| *value == code)
            .map(|(name, _, _)| *name)
            .unwrap_or("NC_E?")
    };
    format!("{error} ({name} {code})")
}

/// Attaches the key or dataset an NC error is about.
pub trait At<T> {
    fn at(self, context: impl Display) -> Result<T, Failure>;
}

impl<T> At<T> for zmap_core::Result<T> {
    fn at(self, context: impl Display) -> Result<T, Failure> {
        self.map_err(|error| Failure::nc(context, error))
    }
}
