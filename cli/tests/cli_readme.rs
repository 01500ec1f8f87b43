//! README's `zmap` examples run as they are written: every ```sh block of
//! the section "The `zmap` tool", in order, with bash, in one empty directory,
//! with the `zmap` under test first on PATH. The S3 block runs against the
//! test server (`ZMAP_TEST_S3_URL`, set by scripts/seaweedfs.sh): its
//! `export AWS_…` lines are left out (the server's variables are already set)
//! and `s3://my-bucket/ds` becomes a dataset below the server's URL; without a
//! server it is skipped. The examples of `zmap --help` must be lines of these
//! blocks, so that they are run too.

use std::path::Path;
use std::process::Command;

const ZMAP: &str = env!("CARGO_BIN_EXE_zmap");
const README: &str = include_str!("../../README.md");
const SECTION: &str = "## The `zmap` tool";
const S3_DATASET: &str = "s3://my-bucket/ds";

/// The ```sh blocks of README's zmap section.
fn example_blocks() -> Vec<String> {
    let start = README.find(SECTION).expect("README has the zmap section");
    let section = &README[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unterminated ```sh block in README");
    blocks
}

fn run_block(dir: &Path, block: &str) {
    let bin_dir = Path::new(ZMAP).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "README example failed ({}):\n{block}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // Not a terminal: no progress bar, no escape sequences.
    assert!(
        !stderr.contains('\x1b') && !stdout.contains('\x1b'),
        "{stderr}"
    );
}

#[test]
fn readme_examples_run() {
    let status = Command::new("ncgen").arg("-h").output();
    assert!(
        status.is_ok(),
        "ncgen (Debian package netcdf-bin, installed by scripts/setup.sh) is needed"
    );
    let blocks = example_blocks();
    assert!(
        blocks.len() >= 4,
        "README has {} example blocks",
        blocks.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut s3_block_seen = false;
    for block in &blocks {
        if !block.contains("s3://") {
            run_block(dir.path(), block);
            continue;
        }
        s3_block_seen = true;
        let Ok(base) = std::env::var("ZMAP_TEST_S3_URL") else {
            println!("skipped the S3 example: ZMAP_TEST_S3_URL is not set (run under scripts/seaweedfs.sh)");
            continue;
        };
        let dataset = format!(
            "{}/readme-{}",
            base.trim_end_matches('/'),
            std::process::id()
        );
        let local: String = block
            .lines()
            .filter(|line| !line.starts_with("export AWS_"))
            .map(|line| line.replace(S3_DATASET, &dataset) + "\n")
            .collect();
        assert!(!local.contains("s3://"), "{local}");
        run_block(dir.path(), &local);
        run_block(dir.path(), &format!("zmap rm -r {dataset} /\n"));
    }
    assert!(s3_block_seen, "README has no S3 example");
    // What the examples made.
    assert!(dir.path().join("ds.zarr/.zgroup").is_file());
    assert!(dir.path().join("back.zarr/temperature/0.0").is_file());
    assert!(dir.path().join("ds.gnz").is_file());
}

#[test]
fn help_examples_are_readme_examples() {
    let out = Command::new(ZMAP).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let examples = help
        .split_once("\nExamples:\n")
        .expect("zmap --help shows examples")
        .1;
    let run: Vec<String> = example_blocks()
        .iter()
        .flat_map(|b| {
            b.lines()
                .map(|l| l.split('#').next().unwrap().trim().to_string())
        })
        .collect();
    let mut n = 0;
    for line in examples.lines().take_while(|l| l.starts_with("  zmap ")) {
        let (command, _what) = line.trim().split_once("   ").expect("COMMAND   WHAT");
        assert!(
            run.iter().any(|r| r == command.trim()),
            "`{command}` of zmap --help is not a README example"
        );
        n += 1;
    }
    assert!(n >= 5, "only {n} examples in zmap --help");
}
