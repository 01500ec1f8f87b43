//! The `zmap` tool as a shipped program: its help examples, the man pages and
//! shell completions `zmap generate-assets` writes (what CMake installs), and
//! its silence when its output is not a terminal.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const ZMAP: &str = env!("CARGO_BIN_EXE_zmap");

fn zmap(args: &[&str]) -> Output {
    let out = Command::new(ZMAP)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run zmap");
    assert!(
        out.status.success(),
        "zmap {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

const SUBCOMMANDS: &[&str] = &[
    "ls", "tree", "cat", "put", "rm", "info", "verify", "compact", "cp", "backends",
];

#[test]
fn help_shows_examples() {
    for flag in ["--help", "-h"] {
        let help = text(&zmap(&[flag]).stdout);
        let examples = help.split_once("\nExamples:\n").expect("examples").1;
        for command in [
            "zmap ls -lR",
            "zmap cp ds.zarr ds.gnz",
            "zmap verify",
            "zmap compact",
        ] {
            assert!(
                examples.contains(command),
                "{flag}: no `{command}`:\n{help}"
            );
        }
        assert!(help.contains("Exit status:"), "{help}");
        // The generator is not part of the user-facing interface.
        assert!(!help.contains("generate-assets"), "{help}");
    }
}

#[test]
fn generated_assets_are_complete_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    zmap(&["generate-assets", share.to_str().unwrap()]);

    let man1 = share.join("man/man1");
    let page = fs::read_to_string(man1.join("zmap.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH zmap 1"),
        "{page}"
    );
    for section in [
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        ".SH EXAMPLES",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(section), "zmap.1 has no {section}");
    }
    assert!(page.contains("zmap cp ds.zarr ds.gnz"));
    assert!(
        !page.contains("zmap\\-help") && !page.contains("generate"),
        "{page}"
    );
    for sub in SUBCOMMANDS {
        let sub_page = fs::read_to_string(man1.join(format!("zmap-{sub}.1")))
            .unwrap_or_else(|e| panic!("zmap-{sub}.1: {e}"));
        assert!(
            sub_page.contains(&format!(".TH zmap-{sub} 1")),
            "{sub_page}"
        );
    }
    let cp_page = fs::read_to_string(man1.join("zmap-cp.1")).unwrap();
    assert!(cp_page.contains("resume"), "{cp_page}");
    if have("man") {
        let out = Command::new("man")
            .arg("-l")
            .arg(man1.join("zmap.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let shown = text(&out.stdout);
        assert!(
            shown.contains("EXAMPLES") && shown.contains("zmap compact ds.gnz"),
            "{shown}"
        );
    }

    let bash = share.join("bash-completion/completions/zmap");
    let zsh = share.join("zsh/site-functions/_zmap");
    let fish = share.join("fish/vendor_completions.d/zmap.fish");
    for file in [&bash, &zsh, &fish] {
        let script = fs::read_to_string(file).unwrap();
        assert!(
            script.contains("compact") && script.contains("resume"),
            "{file:?}"
        );
        assert!(!script.contains("generate-assets"), "{file:?}");
    }
    // bash accepts the script, and it completes subcommands and options.
    assert_eq!(
        complete_bash(&bash, &["zmap", "c"]),
        ["cat", "compact", "cp"]
    );
    let cp_options = complete_bash(&bash, &["zmap", "cp", "--re"]);
    assert_eq!(cp_options, ["--resume"]);
    if have("zsh") {
        let ok = Command::new("zsh").arg("-n").arg(&zsh).status().unwrap();
        assert!(ok.success(), "zsh -n rejects _zmap");
    }
    if have("fish") {
        let ok = Command::new("fish")
            .arg("--no-execute")
            .arg(&fish)
            .status()
            .unwrap();
        assert!(ok.success(), "fish rejects zmap.fish");
    }
}

/// What the bash completion offers for the command line `words` (the last
/// word is the one being completed), sorted.
fn complete_bash(script: &Path, words: &[&str]) -> Vec<String> {
    let check = Command::new("bash").arg("-n").arg(script).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", text(&check.stderr));
    let line = words.join(" ");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         COMP_LINE='{line}'\n\
         COMP_POINT={}\n\
         _zmap zmap '{}' '{}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        line.len(),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut offered: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    offered.sort();
    offered
}

/// A dataset of a few hundred objects: on a terminal its copy draws a bar
/// at once and redraws it while it lasts (tests/cli_copy.rs checks that side).
fn many_objects(root: &Path) {
    for group in 0..10 {
        let dir = root.join(format!("g{group}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".zarray"), b"{\"zarr_format\": 2}").unwrap();
        for chunk in 0..30 {
            fs::write(dir.join(format!("{chunk}")), vec![group as u8; 4 * 1024]).unwrap();
        }
    }
    fs::write(root.join(".zgroup"), b"{\"zarr_format\": 2}").unwrap();
}

#[test]
fn long_copies_are_silent_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    many_objects(&src);
    let gnz = dir.path().join("copy.gnz");
    let src_arg = src.to_str().unwrap();
    let gnz_arg = gnz.to_str().unwrap();
    // stdout and stderr are pipes (Command::output).
    for args in [
        vec!["cp", "-j", "2", src_arg, gnz_arg],
        vec!["cp", gnz_arg, dir.path().join("back").to_str().unwrap()],
    ] {
        let out = zmap(&args);
        assert!(
            out.stdout.is_empty(),
            "{args:?}: stdout {}",
            text(&out.stdout)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: stderr {}",
            text(&out.stderr)
        );
    }
    // verify prints its one-line result, and no bar.
    let out = zmap(&["verify", gnz_arg]);
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert!(
        !shown.contains('\x1b') && !shown.contains('\r'),
        "{shown:?}"
    );
    assert_eq!(shown.trim(), "verify: 311 objects, 1228998 bytes: ok");
    // stderr redirected to a file is not a terminal either.
    let log = dir.path().join("log");
    let status = Command::new(ZMAP)
        .args(["cp", gnz_arg, dir.path().join("again").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(dir.path().join("err")).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(fs::read(&log).unwrap(), b"");
    assert_eq!(fs::read(dir.path().join("err")).unwrap(), b"");
}
