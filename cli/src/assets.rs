//! What `zmap --help` shows after the options, and the man pages and shell
//! completions generated from the clap definitions (the hidden
//! `zmap generate-assets DIR`, run by the CMake build).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use clap::Command;
use clap_complete::Shell;
use roff::{roman, Roff};

/// The examples of `zmap --help` and of the man page: (command, what it
/// does). Each is also a line of README's examples, which
/// tests/cli_readme.rs runs.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "zmap ls -lR ds.zarr",
        "every key of a FILE (NCZarr) dataset, with sizes",
    ),
    (
        "zmap tree ds.zarr",
        "every object with its content, like netCDF's zmapio",
    ),
    (
        "zmap cat ds.zarr /temperature/.zattrs",
        "one object's bytes",
    ),
    (
        "zmap cp ds.zarr ds.gnz",
        "pack the directory into one GNZ file",
    ),
    (
        "zmap cp ds.gnz s3://my-bucket/ds",
        "push it to S3 (AWS_* variables configure the client)",
    ),
    (
        "zmap verify s3://my-bucket/ds",
        "read every object back and check the structures",
    ),
    (
        "zmap compact ds.gnz",
        "rewrite a GNZ file without the holes that rewrites left",
    ),
];

/// How dataset arguments name their backend.
const DATASETS: &str = "DIR or file://DIR → FILE; PATH.gnz → GNZ; PATH.nc or PATH.nz4 → NC4; PATH.zip or PATH.ozx → ZIP; s3://BUCKET/ROOT or \
                        http(s)://HOST:PORT/BUCKET/ROOT → S3; mem://NAME → memory (one process). \
                        A file: URL's #mode=nczarr,file or #mode=gnz fragment names the backend; \
                        --backend overrides the guess.";

const EXIT_STATUS: &str =
    "0 ok, 1 usage error, 2 NC error (its message, code and the key involved on stderr).";

/// The text after the options in `zmap --help`.
pub fn after_help() -> String {
    let width = EXAMPLES.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut text = String::from("Examples:\n");
    for (command, what) in EXAMPLES {
        text.push_str(&format!("  {command:width$}   {what}\n"));
    }
    text.push_str(&format!(
        "\nDatasets: {DATASETS}\nExit status: {EXIT_STATUS}"
    ));
    text
}

/// Writes, below `dir`, the files as they are installed below a prefix's
/// `share/`: man/man1/zmap.1 and zmap-COMMAND.1, the bash, zsh and fish
/// completions.
pub fn generate(cmd: Command, dir: &Path) -> io::Result<()> {
    let man_dir = dir.join("man/man1");
    fs::create_dir_all(&man_dir)?;
    // One page per subcommand (zmap-ls.1, …), then zmap.1 with its own
    // EXAMPLES, DATASETS and EXIT STATUS sections replacing clap_mangen's
    // flowed "EXTRA" rendering of the help footer.
    clap_mangen::generate_to(cmd.clone(), &man_dir)?;
    let mut page = Vec::new();
    write_main_page(cmd.clone(), &mut page)?;
    fs::write(man_dir.join("zmap.1"), page)?;

    let name = cmd.get_name().to_string();
    for (shell, sub_dir, file) in [
        (Shell::Bash, "bash-completion/completions", name.clone()),
        (Shell::Zsh, "zsh/site-functions", format!("_{name}")),
        (
            Shell::Fish,
            "fish/vendor_completions.d",
            format!("{name}.fish"),
        ),
    ] {
        let target = dir.join(sub_dir);
        fs::create_dir_all(&target)?;
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut text);
        fs::write(target.join(file), text)?;
    }
    Ok(())
}

fn write_main_page(cmd: Command, w: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd.disable_help_subcommand(true));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in EXAMPLES {
        roff.control("TP", []);
        roff.text([roman(*command)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["DATASETS"]);
    roff.text([roman(DATASETS)]);
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(EXIT_STATUS)]);
    roff.to_writer(w)?;
    man.render_version_section(w)
}
