//! `zmap`: inspect, edit and copy zmap datasets on any backend.
//!
//! Every dataset argument is a path or URL that names its backend:
//! `mem://NAME` → in-memory, `s3://bucket/root` and `http(s)://host[:port]/bucket/root`
//! → S3, a path (or `file:` URL) ending in `.gnz` → GNZ, in `.nc` or `.nz4` →
//! NC4, in `.zip` or `.ozx` → ZIP, anything else (a directory, `file://…`) → FILE.
//! A `file:` URL's `#mode=…` fragment may name the backend (`#mode=nczarr,file`,
//! `#mode=gnz`, `#mode=nczarr,nz4`, `#mode=nczarr,zip`), and `--backend` overrides
//! everything.
//!
//! Exit status: 0 success, 1 bad usage, 2 an NC error (its `strerror`
//! message, its code and the key or dataset involved are printed on stderr).
//!
//! Built on the crate's safe Rust API (`zmap_core::Map`), not on the C ABI.

use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

mod assets;
mod copy;
mod dataset;
mod failure;
mod inspect;
mod modify;
mod progress;

use dataset::BackendArg;
use failure::Failure;

#[derive(Parser, Debug)]
#[command(
    name = "zmap",
    version,
    about = "Inspect, edit and copy zmap datasets (FILE directories, GNZ files, ZIP archives, netCDF-4 files, S3, memory)"
)]
struct Cli {
    /// Use this backend for every dataset argument instead of guessing it
    /// from the path or URL.
    #[arg(long, short = 'b', global = true, value_enum)]
    backend: Option<BackendArg>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the keys below PREFIX (default: the root); intermediate keys end in '/'.
    Ls(LsArgs),
    /// Dump every object like netCDF's zmapio: `[n] key : (len) |content|`.
    Tree(TreeArgs),
    /// Write an object's bytes (or a byte range of them) to stdout.
    Cat(CatArgs),
    /// Store FILE (or stdin for '-') as the object KEY, replacing its content.
    Put(PutArgs),
    /// Remove the object KEY (with -r: every object below KEY).
    Rm(RmArgs),
    /// Show the backend, object and byte counts and the backend's own statistics.
    Info(UrlArg),
    /// Read every object and check the backend's structures.
    Verify(VerifyArgs),
    /// Rewrite a GNZ file without holes; prints its size before and after.
    Compact(CompactArgs),
    /// Copy a dataset from any backend to any backend.
    #[command(long_about = copy::LONG_ABOUT)]
    Cp(CpArgs),
    /// Tell which backends this build of zmap has.
    Backends,
}

/// `zmap generate-assets DIR`: writes the man pages and shell completions
/// below DIR, laid out as below an install prefix's share/ (run by the CMake
/// build). Parsed apart from `Cli` so that it appears in no help, man page or
/// completion.
#[derive(Parser, Debug)]
#[command(name = "zmap generate-assets")]
struct GenerateAssets {
    /// The directory (created if missing).
    dir: std::path::PathBuf,
}

const GENERATE_ASSETS: &str = "generate-assets";

/// The clap definition with the help footer (examples) that `zmap --help`,
/// the man page and the completions share.
fn cli_command() -> clap::Command {
    Cli::command().after_help(assets::after_help())
}

#[derive(Args, Debug)]
struct UrlArg {
    /// The dataset.
    url: String,
}

#[derive(Args, Debug)]
struct LsArgs {
    /// Show sizes (intermediate keys show '-').
    #[arg(short = 'l')]
    long: bool,
    /// List every key below PREFIX, as full keys, depth first.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// The dataset.
    url: String,
    /// Where to list (a key); default the root.
    prefix: Option<String>,
}

#[derive(Args, Debug)]
struct TreeArgs {
    /// At most this many bytes of each object's content are shown
    /// (a longer content ends in "...").
    #[arg(long, default_value_t = 64, conflicts_with = "full")]
    limit: usize,
    /// Show every byte, exactly as zmapio does.
    #[arg(long)]
    full: bool,
    /// The dataset.
    url: String,
    /// Where to start (a key); default the root.
    prefix: Option<String>,
}

#[derive(Args, Debug)]
struct CatArgs {
    /// Bytes A (inclusive) to B (exclusive); either may be left out: "A:", ":B".
    #[arg(long, value_parser = inspect::parse_range)]
    range: Option<inspect::ByteRange>,
    /// The dataset.
    url: String,
    /// The object.
    key: String,
}

#[derive(Args, Debug)]
struct PutArgs {
    /// Create the dataset if it does not exist.
    #[arg(short = 'c', long)]
    create: bool,
    /// The dataset.
    url: String,
    /// The object to write.
    key: String,
    /// A local file, or '-' for stdin.
    file: String,
}

#[derive(Args, Debug)]
struct RmArgs {
    /// Remove every object below KEY (KEY may be an intermediate key or '/').
    #[arg(short = 'r', long)]
    recursive: bool,
    /// The dataset.
    url: String,
    /// The object (or, with -r, the prefix).
    key: String,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// No progress bar.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The dataset.
    url: String,
}

#[derive(Args, Debug)]
struct CompactArgs {
    /// The GNZ file.
    file: String,
}

#[derive(Args, Debug)]
struct CpArgs {
    /// Objects copied at once.
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Continue an interrupted copy: keep DST's objects that already equal
    /// the source's, copy the rest, remove what the source does not have.
    #[arg(short = 'r', long)]
    resume: bool,
    /// No progress bar and no summary.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Backend of SRC (overrides --backend and the guess from the URL).
    #[arg(long, value_enum)]
    src_backend: Option<BackendArg>,
    /// Backend of DST (overrides --backend and the guess from the URL).
    #[arg(long, value_enum)]
    dst_backend: Option<BackendArg>,
    /// The dataset to copy.
    src: String,
    /// Where to copy it (created; an existing dataset there is replaced).
    dst: String,
}

fn run(cli: Cli) -> Result<(), Failure> {
    let forced = cli.backend;
    let target = |url: &str| dataset::Target::resolve(url, forced);
    match cli.command {
        Command::Ls(a) => inspect::ls(&target(&a.url)?, a.prefix.as_deref(), a.long, a.recursive),
        Command::Tree(a) => {
            let limit = if a.full { None } else { Some(a.limit) };
            inspect::tree(&target(&a.url)?, a.prefix.as_deref(), limit)
        }
        Command::Cat(a) => inspect::cat(&target(&a.url)?, &a.key, a.range),
        Command::Put(a) => modify::put(&target(&a.url)?, &a.key, &a.file, a.create),
        Command::Rm(a) => modify::rm(&target(&a.url)?, &a.key, a.recursive),
        Command::Info(a) => inspect::info(&target(&a.url)?),
        Command::Verify(a) => inspect::verify(&target(&a.url)?, a.quiet),
        Command::Compact(a) => copy::compact(&target(&a.file)?),
        Command::Cp(a) => {
            let src = dataset::Target::resolve(&a.src, a.src_backend.or(forced))?;
            let dst = dataset::Target::resolve(&a.dst, a.dst_backend.or(forced))?;
            let options = copy::CopyOptions {
                jobs: usize::from(a.jobs),
                resume: a.resume,
                quiet: a.quiet,
            };
            copy::cp(&src, &dst, &options)
        }
        Command::Backends => dataset::print_backends(),
    }
}

/// Prints a clap error or help text; clap's own exit code for usage errors
/// is 2, ours is 1.
fn parse_failure(e: clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|first| first == GENERATE_ASSETS) {
        let a = match GenerateAssets::try_parse_from(std::env::args_os().skip(1)) {
            Ok(a) => a,
            Err(e) => return parse_failure(e),
        };
        return match assets::generate(cli_command(), &a.dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => Failure::nc(a.dir.display(), zmap_core::Error::Io(e)).report(),
        };
    }
    let parsed = cli_command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return parse_failure(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
