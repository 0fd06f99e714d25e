//! `docs/rust.md` works as written: its files make a crate of its own that builds against this
//! repository (by the path dependencies the page shows) and runs its server and client over the
//! Unix socket and over MQTT. The same crate then shows the build failures the page describes: a
//! renamed interface (no stale generated file may be picked up) and an interface with errors
//! (reported as `switchboard check` reports it, not as an escaped string).
//!
//! The crate is built offline, with this workspace's `Cargo.lock`, into a target directory kept
//! under this crate's, so only the first run compiles its dependencies.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use switchboard_testkit::{SocketDir, broker::shared_mosquitto, python::PeerProcess};

const GUIDE: &str = include_str!("../../docs/rust.md");

/// How long the crate's server and client may take for any one step.
const STEP: Duration = Duration::from_secs(30);

/// The fenced code blocks of `markdown`, as (info string, contents).
fn code_blocks(markdown: &str) -> Vec<(&str, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(&str, String)> = None;
    for line in markdown.lines() {
        match &mut current {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    current = Some((info, String::new()));
                }
            }
            Some(_) if line == "```" => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    blocks
}

/// The files of the guide's crate: each block whose first line is a comment naming its path
/// (`# Cargo.toml`, `// src/main.rs`).
fn guide_files() -> Vec<(String, String)> {
    code_blocks(GUIDE)
        .into_iter()
        .filter_map(|(_, text)| {
            let first = text.lines().next()?;
            let path = first.strip_prefix("# ").or_else(|| first.strip_prefix("// "))?;
            let is_path = path.contains('.') && !path.contains(' ');
            is_path.then(|| (path.to_string(), text.clone()))
        })
        .collect()
}

/// The guide's `text` block that follows `after`, without its final newline.
fn text_block_after(after: &str) -> String {
    let rest = &GUIDE[GUIDE.find(after).unwrap_or_else(|| panic!("the guide says {after:?}"))..];
    let (_, text) = code_blocks(rest)
        .into_iter()
        .find(|(info, _)| *info == "text")
        .unwrap_or_else(|| panic!("a text block after {after:?}"));
    text.trim_end().to_string()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// The guide's crate on disk, and where it builds.
struct UserCrate {
    dir: PathBuf,
    target: PathBuf,
}

impl UserCrate {
    /// Writes the guide's files, with its `../switchboard/` paths pointing at this repository.
    fn write() -> Self {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("user-crate");
        let dir = base.join("greenhouse");
        let _ = std::fs::remove_dir_all(&dir);
        // A kept target directory holds the build-script output of every earlier build whose
        // dependencies hashed differently; only this build's generated files may be counted.
        if let Ok(builds) = std::fs::read_dir(base.join("target/debug/build")) {
            for build in builds.flatten() {
                if build.file_name().to_string_lossy().starts_with("greenhouse-") {
                    let _ = std::fs::remove_dir_all(build.path());
                }
            }
        }
        let files = guide_files();
        let names: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(names, ["Cargo.toml", "greenhouse.yaml", "build.rs", "src/main.rs"]);
        let repo = format!("\"{}/", repo_root().display());
        for (path, text) in files {
            let text = match path.as_str() {
                // The scratch crate is no member of any workspace above it.
                "Cargo.toml" => text.replace("\"../switchboard/", &repo) + "\n[workspace]\n",
                _ => text,
            };
            let target = dir.join(&path);
            std::fs::create_dir_all(target.parent().expect("a parent")).unwrap();
            std::fs::write(target, text).unwrap();
        }
        std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        UserCrate { dir, target: base.join("target") }
    }

    /// `cargo build` of the crate.
    fn build(&self) -> Output {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        Command::new(cargo)
            .args(["build", "--offline", "--color", "never"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs")
    }

    /// Replaces `from` with `to` in the crate's interface file.
    fn edit_interface(&self, from: &str, to: &str) {
        let path = self.dir.join("greenhouse.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "the interface file has {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    /// The crate's binary, run with `args` and `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(self.target.join("debug/greenhouse"));
        command.args(args).envs(env.iter().copied());
        command
    }

    /// The generated files the last build left in its `OUT_DIR`.
    fn generated_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.target.join("debug/build")).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path().join("out/switchboard");
            if name.starts_with("greenhouse-") && dir.exists() {
                for file in std::fs::read_dir(dir).unwrap().flatten() {
                    found.push(file.file_name().to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }
}

/// Whether `output` holds the lines of `expected` one after another, each at the end of its line
/// (Cargo indents what a build script prints, and `main` prefixes its error with `Error: `).
fn shows(output: &str, expected: &str) -> bool {
    let output: Vec<&str> = output.lines().collect();
    let expected: Vec<&str> = expected.lines().collect();
    output
        .windows(expected.len())
        .any(|window| window.iter().zip(&expected).all(|(line, wanted)| line.ends_with(wanted)))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the crate's server and client against each other with `env`, as the guide does.
async fn serve_and_call(user: &UserCrate, env: &[(&str, &str)]) {
    let mut server = PeerProcess::spawn(user.command(&["serve"], env), "greenhouse serve");
    let first = server.next_line(STEP).await;
    assert!(
        first.as_deref().is_some_and(|line| line.starts_with("serving at ")),
        "{first:?}; stderr:\n{}",
        server.stderr()
    );
    let mut client = PeerProcess::spawn(user.command(&["client"], env), "greenhouse client");
    let (status, lines) = client.finish(STEP).await.unwrap();
    assert!(status.success(), "{status}: {lines:?}\n{}", client.stderr());
    let [watered, refused, target, humidity] = lines.as_slice() else {
        panic!("four lines expected: {lines:?}")
    };
    assert!(watered.starts_with("watered at "), "{watered}");
    assert_eq!(refused, "refused: water needs a positive amount");
    assert_eq!(target, "target humidity 65 %");
    assert!(humidity.starts_with("humidity "), "{humidity}");

    let interrupted =
        Command::new("kill").args(["-INT", &server.id().to_string()]).status().expect("kill runs");
    assert!(interrupted.success());
    let (status, lines) = server.finish(STEP).await.unwrap();
    assert!(status.success(), "{status}: {lines:?}\n{}", server.stderr());
    assert!(lines.iter().any(|l| l.starts_with("watering 1.5 l (tomatoes)")), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("stopping; the target humidity was 65 %"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_guide_builds_and_runs_as_written() {
    let user = UserCrate::write();
    let built = user.build();
    assert!(built.status.success(), "the guide's crate does not build:\n{}", text(&built));
    assert_eq!(user.generated_files(), ["green_house.rs", "index.rs"]);

    // Over the Unix socket, at the default location under a private runtime directory.
    let sockets = SocketDir::new();
    let runtime_dir = sockets.path("unused").parent().expect("the directory").to_path_buf();
    let runtime_dir = runtime_dir.display().to_string();
    serve_and_call(&user, &[("XDG_RUNTIME_DIR", &runtime_dir), ("SWITCHBOARD_URL", "")]).await;

    // Over MQTT: only the URL changes.
    if let Some(broker) = shared_mosquitto() {
        let instance = format!("guide-{}", std::process::id());
        let url = format!("{}?instance={instance}", broker.url);
        serve_and_call(&user, &[("SWITCHBOARD_URL", &url)]).await;
        crate::mqtt::raw::clear_retained(&broker.url, &instance).await;
    }

    // A renamed interface: the old generated file is gone, and the build names what exists.
    user.edit_interface("name: GreenHouse", "name: Conservatory");
    let renamed = user.build();
    let output = text(&renamed);
    assert!(!renamed.status.success(), "a stale green_house.rs was used:\n{output}");
    assert_eq!(user.generated_files(), ["conservatory.rs", "index.rs"]);
    let expected = text_block_after("for example after the interface is renamed");
    assert!(shows(&output, &expected), "expected\n{expected}\nin\n{output}");
    user.edit_interface("name: Conservatory", "name: GreenHouse");

    // An interface with errors: the build script prints the rendered diagnostics.
    user.edit_interface("{ name: litres, type: float }", "{ name: litres, type: integr }");
    let broken = user.build();
    let output = text(&broken);
    assert!(!broken.status.success(), "{output}");
    let expected = text_block_after("fails the build with the report `switchboard check` prints");
    assert!(shows(&output, &expected), "expected\n{expected}\nin\n{output}");
}

/// The README's dependency snippet is the guide's, which the test above builds.
#[test]
fn the_readme_dependencies_are_the_guides() {
    let readme = code_blocks(include_str!("../../README.md"));
    let (_, snippet) = readme.iter().find(|(info, _)| *info == "toml").expect("a toml block");
    let (_, manifest) =
        guide_files().into_iter().find(|(path, _)| path == "Cargo.toml").expect("Cargo.toml");
    assert!(manifest.contains(snippet.as_str()), "README:\n{snippet}\nguide:\n{manifest}");
}
