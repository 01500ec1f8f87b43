//! `zmap`: inspect, edit and copy zmap datasets on any backend.
//!
//! Every dataset argument is a path or URL that names its backend:
//! `mem://NAME` → in-memory, `s3://bucket/root` and `http(s)://host[:port]/bucket/root`
//! → S3, a path (or `file:` URL) ending in `.gnz` → GNZ, in `.zip` or `.ozx`
//! → ZIP, anything else (a directory, `file://…`) → FILE. A `file:` URL's
//! `#mode=…` fragment may name the backend (`#mode=nczarr,file`, `#mode=gnz`,
//! `#mode=nczarr,zip`), and `--backend` overrides
//! everything.
//!
//! Exit status: 0 success, 1 bad usage, 2 an NC error (its `strerror`
//! message, its code and the key or dataset involved are printed on stderr).
//!
//! Built on the crate's safe Rust API (`zmap::Map`), not on the C ABI.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    about = "Inspect, edit and copy zmap datasets (FILE directories, GNZ files, ZIP archives, S3, memory)",
    after_help = "Datasets: DIR or file://DIR → FILE; PATH.gnz → GNZ; PATH.zip or PATH.ozx → ZIP; s3://BUCKET/ROOT or \
                  http(s)://HOST:PORT/BUCKET/ROOT → S3; mem://NAME → memory.\n\
                  Exit status: 0 ok, 1 usage error, 2 NC error (message, code and key on stderr)."
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own exit code for usage errors is 2; ours is 1.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
