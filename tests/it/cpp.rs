//! The generated C++ and the `switchboard` C++ runtime (`cpp/`) against Rust and C++ peers (and
//! a C++ client against our Python runtime's Jobs server) over the Unix socket and over MQTT v5
//! (the loopback mosquitto), methods, signals, properties and actions (goals with feedback,
//! cancel, results and declared errors), a C++ client's call (and goal) failing with a
//! transport error when its server is killed, a C++ client calling again after its (private)
//! broker restarts, malformed frames and answers sent to a C++ server and a C++ client, the
//! generated C++ of every example interface (and the C++ snippets of its Markdown reference)
//! compiled warning-free with g++ and with clang++, and clang-tidy clean on the runtime.
//!
//! The first test to need it generates C++ for `examples/interfaces/*.yaml` and the thermostat
//! with `switchboard_codegen` into the target directory, and builds `cpp/tests/` with CMake
//! (the runtime, one object per generated header, and the peers in `cpp/tests/peers/`) with
//! `-Wall -Wextra -Werror -pedantic`, in one build directory that later runs reuse. A machine
//! without `cmake`, a C++ compiler or nlohmann/json prints "skipped: …"; under `CI=true` that is
//! a failure. The MQTT tests use the shared broker on 127.0.0.1:1883, one fresh instance each.
//!
//! A third build directory, `build-clang`, compiles the same project with clang++ and writes a
//! compilation database, which clang-tidy then runs against with the checks of
//! `cpp/.clang-tidy` (every finding an error) on each of the runtime's source files.
//!
//! With `SWITCHBOARD_CPP_SANITIZE=1` (`.ci/run`'s sanitizer step) the peers come from a second
//! build directory compiled with `-fsanitize=address,undefined -fno-sanitize-recover=all`, so
//! every round trip and fault case above runs under AddressSanitizer (leaks included) and
//! UndefinedBehaviorSanitizer, and a finding makes the peer exit non-zero and the test fail.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use switchboard::{
    Endpoint,
    action::{GoalError, GoalStatus},
    error::{CallError, ErrorCode, MethodError},
    server::ServerOptions,
    transport::unix::UnixEndpoint,
};
use switchboard_testkit::{
    ChildProcess, SocketDir,
    broker::{PrivateMosquitto, shared_mosquitto},
    prerequisite, wait_for_path,
};
use switchboard_tests::{
    fixtures::{FAILING_COUNT, PANICKING_COUNT, resets_at, serve_jobs},
    jobs::{BadInput, CountError, JobsClient, LookupError, NotFound, QuotaExceeded},
    thermostat::{Mode, ThermostatClient},
};

use crate::{mqtt::raw, suite::within};

/// A fresh MQTT instance id, so tests sharing the broker never see each other.
fn unique(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("cpp-{tag}-{}-{n}", std::process::id())
}

/// A Rust server (`switchboard-test-server`, the thermostat) serving `where` in a process of its
/// own; once a Rust client has found it over `endpoint`, returns it.
async fn rust_test_server(where_: &str, endpoint: &Endpoint) -> ChildProcess {
    let server = ChildProcess::spawn(env!("CARGO_BIN_EXE_switchboard-test-server"), &[where_]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match ThermostatClient::connect(endpoint).await {
            Ok(client) => {
                client.close();
                return server;
            }
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the Rust server is not reachable within 30 s: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The interface files whose C++ must compile.
fn interface_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/interfaces"))
        .expect("read examples/interfaces")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files.push(repo().join("examples/thermostat/thermostat.yaml"));
    files
}

/// Writes `contents` to `path` unless it already holds them, so CMake rebuilds only what changed.
fn write_if_changed(path: &Path, contents: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("a parent")).map_err(|e| e.to_string())?;
    std::fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))
}

/// Whether the peers are the sanitized build (`SWITCHBOARD_CPP_SANITIZE=1`).
fn sanitized() -> bool {
    std::env::var_os("SWITCHBOARD_CPP_SANITIZE").is_some_and(|value| value == "1")
}

/// The compiler flags of the C++ tests' build: warnings as errors, plus the sanitizers when
/// [`sanitized`].
fn cxx_flags() -> String {
    let mut flags = String::from("-Wall -Wextra -Werror -pedantic");
    if sanitized() {
        flags.push_str(
            " -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer",
        );
    }
    flags
}

/// Where the C++ tests' generated code and build directories live.
fn cpp_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cpp")
}

/// The C++ of every interface, generated once per test process (the builds share it); returns
/// the directory holding one generated interface per subdirectory.
fn generated() -> Result<&'static Path, String> {
    static GENERATED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    GENERATED.get_or_init(generate).as_deref().map_err(Clone::clone)
}

/// Generates the C++ of every interface into the target directory.
fn generate() -> Result<PathBuf, String> {
    let generated = cpp_root().join("generated");
    // With the base version of the compatibility matrix, for a C++ client of an older version.
    let evolving = repo().join("tests/interfaces/evolve/v1.yaml");
    for file in interface_files().into_iter().chain([evolving]) {
        let loaded = switchboard_codegen::load_file(&file).map_err(|e| e.to_string())?;
        let iface = loaded.parsed.interface.as_ref().ok_or("interface has errors")?;
        let name = switchboard_codegen::source_name(&file);
        let files =
            switchboard_codegen::generate_files(iface, &name, switchboard_codegen::Lang::Cpp)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        let dir = generated.join(namespace(&files)?);
        for f in &files {
            write_if_changed(&dir.join(&f.path), &f.contents)?;
        }
    }
    write_doc_samples()?;
    write_reference_snippets()?;
    Ok(generated)
}

/// The namespace of a generated C++ library, which names the directory of its header
/// (`include/<namespace>/<namespace>.hpp`).
fn namespace(files: &[switchboard_codegen::GeneratedFile]) -> Result<String, String> {
    let header = files
        .iter()
        .find(|f| f.path.extension().is_some_and(|ext| ext == "hpp"))
        .ok_or("no header generated")?;
    let dir = header.path.parent().and_then(Path::file_name).ok_or("header path")?;
    Ok(dir.to_string_lossy().into_owned())
}

/// The ```cpp blocks of docs/cpp.md, in order.
fn doc_samples() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("docs/cpp.md")).expect("read docs/cpp.md");
    cpp_blocks(&doc)
}

/// The ```cpp blocks of a Markdown text, in order.
fn cpp_blocks(markdown: &str) -> Vec<String> {
    let mut samples = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```cpp") => current = Some(String::new()),
            (Some(_), "```") => samples.extend(current.take()),
            (Some(sample), line) => {
                sample.push_str(line);
                sample.push('\n');
            }
            (None, _) => {}
        }
    }
    samples
}

/// Writes each C++ sample of docs/cpp.md to `doc-samples/sample_N.cpp`, where `cpp/tests`
/// compiles it against the thermostat's generated header: a sample with its own `main` as it
/// is, a fragment as the body of a function.
fn write_doc_samples() -> Result<(), String> {
    let dir = cpp_root().join("doc-samples");
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clear {}: {e}", dir.display()))?;
    }
    for (n, sample) in doc_samples().iter().enumerate() {
        let source = if sample.contains("int main(") {
            sample.clone()
        } else {
            format!(
                "#include <cstdio>\n#include <thermostat/thermostat.hpp>\n\nvoid doc_sample() {{\n{sample}}}\n"
            )
        };
        write_if_changed(&dir.join(format!("sample_{}.cpp", n + 1)), &source)?;
    }
    Ok(())
}

/// Where the C++ snippets of the interfaces' Markdown references are written.
fn reference_snippets_dir() -> PathBuf {
    cpp_root().join("reference-snippets")
}

/// The C++ snippets of each interface's generated Markdown reference (its ```cpp blocks, client
/// and server, one after the other), with the namespace of the interface's generated C++.
fn reference_snippets() -> Result<Vec<(String, String)>, String> {
    let mut snippets = Vec::new();
    for file in interface_files() {
        let loaded = switchboard_codegen::load_file(&file).map_err(|e| e.to_string())?;
        let iface = loaded.parsed.interface.as_ref().ok_or("interface has errors")?;
        let name = switchboard_codegen::source_name(&file);
        let files_in = |lang| {
            switchboard_codegen::generate_files(iface, &name, lang)
                .map_err(|e| format!("{}: {e}", file.display()))
        };
        let namespace = namespace(&files_in(switchboard_codegen::Lang::Cpp)?)?;
        let reference = files_in(switchboard_codegen::Lang::Markdown)?;
        snippets.push((namespace, cpp_blocks(&reference[0].contents).concat()));
    }
    Ok(snippets)
}

/// Writes [`reference_snippets`] to `reference-snippets/<namespace>.cpp`, where `cpp/tests`
/// compiles each against its interface's generated header.
fn write_reference_snippets() -> Result<(), String> {
    for (namespace, snippet) in reference_snippets()? {
        write_if_changed(&reference_snippets_dir().join(format!("{namespace}.cpp")), &snippet)?;
    }
    Ok(())
}

/// Generates the C++ of every interface and builds `cpp/tests` with the default compiler (with
/// the sanitizers when [`sanitized`]); returns the build directory.
fn build() -> Result<PathBuf, String> {
    Command::new("cmake").arg("--version").output().map_err(|e| {
        format!("cmake is not installed ({e}); apt-get install cmake g++ nlohmann-json3-dev libmosquitto-dev")
    })?;
    // The sanitized build has a directory of its own, so neither build invalidates the other.
    let build = cpp_root().join(if sanitized() { "build-sanitize" } else { "build" });
    let mut options = vec![format!("-DCMAKE_CXX_FLAGS={}", cxx_flags())];
    if sanitized() {
        options.push("-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined".to_owned());
    }
    // The sanitized build makes the peers only: every header is compiled by the plain build.
    let targets: &[&str] = if sanitized() {
        &["client_check", "peer_server", "compat_check", "member_check"]
    } else {
        &[]
    };
    configure_and_build(&build, &options, targets)?;
    Ok(build)
}

/// Configures `cpp/tests` in `build` (a Debug build of the generated code, plus `options`) and
/// builds `targets` (all of them when empty).
fn configure_and_build(build: &Path, options: &[String], targets: &[&str]) -> Result<(), String> {
    let generated = generated()?;
    let source = repo().join("cpp/tests");
    forget_a_build_of_another_checkout(build, &source)?;
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(&source)
        .arg("-B")
        .arg(build)
        .arg(format!("-DSB_GENERATED={}", generated.display()))
        .arg(format!("-DSB_DOC_SAMPLES={}", cpp_root().join("doc-samples").display()))
        .arg(format!("-DSB_REFERENCE_SNIPPETS={}", reference_snippets_dir().display()))
        .arg("-DCMAKE_BUILD_TYPE=Debug")
        .args(options);
    run(&mut configure)
    .map_err(|e| format!("cannot configure the C++ tests (are a C++20 compiler, nlohmann-json3-dev and libmosquitto-dev installed?): {e}"))?;
    let mut compile = Command::new("cmake");
    compile.arg("--build").arg(build).arg("-j2");
    for target in targets {
        compile.args(["--target", target]);
    }
    run(&mut compile)
}

/// Builds `cpp/tests` (the runtime, every generated header and the peers) with clang++ and
/// `-Wall -Wextra -Werror -pedantic` in a build directory of its own, with a compilation
/// database for clang-tidy; once per test process. `None` (after the notice) when this machine
/// has no clang++ or cmake.
fn built_with_clang() -> Option<&'static Path> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        for program in ["cmake", "clang++"] {
            Command::new(program).arg("--version").output().map_err(|e| {
                format!("{program} is not installed ({e}); apt-get install cmake clang clang-tidy")
            })?;
        }
        let build = cpp_root().join("build-clang");
        let options = [
            "-DCMAKE_CXX_COMPILER=clang++".to_owned(),
            "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror -pedantic".to_owned(),
            "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON".to_owned(),
        ];
        configure_and_build(&build, &options, &[])?;
        Ok(build)
    });
    match built {
        Ok(dir) => Some(dir),
        Err(error) if error.contains("is not installed") => {
            prerequisite::missing(error);
            None
        }
        Err(error) => panic!("building the C++ tests with clang++ failed:\n{error}"),
    }
}

/// Removes `build` when CMake configured it for another source directory: the target
/// directory (and with it `build`) may be shared by several checkouts, and CMake refuses to
/// reuse a cache made for a different source.
fn forget_a_build_of_another_checkout(build: &Path, source: &Path) -> Result<(), String> {
    let Ok(cache) = std::fs::read_to_string(build.join("CMakeCache.txt")) else {
        return Ok(());
    };
    let configured_for = cache
        .lines()
        .find_map(|line| line.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL="))
        .map(PathBuf::from);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    match configured_for {
        Some(dir) if same(&dir, source) => Ok(()),
        _ => std::fs::remove_dir_all(build)
            .map_err(|e| format!("remove the stale C++ build {}: {e}", build.display())),
    }
}

/// The build directory, built once per test process; `None` (after the notice) when this
/// machine cannot build C++.
fn built() -> Option<&'static Path> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build) {
        Ok(dir) => Some(dir),
        Err(error) if error.starts_with("cmake is not installed") => {
            prerequisite::missing(error);
            None
        }
        Err(error) => panic!("building the C++ tests failed:\n{error}"),
    }
}

/// Runs `client_check ROLE WHERE` and fails the test with its report unless every check passed;
/// returns what it printed.
async fn client_check(
    build: &Path,
    role: &str,
    where_: impl AsRef<std::ffi::OsStr>,
) -> std::process::Output {
    let program = build.join("client_check");
    let socket = where_.as_ref().to_os_string();
    let role = role.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(program).arg(role).arg(socket).stdin(Stdio::null()).output()
    });
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the C++ client finishes within 60 s")
        .expect("the blocking task runs")
        .expect("client_check starts");
    assert!(
        output.status.success(),
        "the C++ client's checks failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `client_check ROLE` against our Python runtime's Jobs server
/// (`tests/python/jobs_server.py`, the behaviour of the Rust `serve_jobs`) serving at `url`.
async fn client_check_on_python_jobs(
    build: &Path,
    env: &crate::python::PyEnv,
    role: &str,
    url: &str,
) {
    let mut server = env.spawn("jobs_server.py", &[url]);
    crate::python::expect_line(&mut server, "READY").await;
    client_check(build, role, url).await;
    crate::python::stop_python_server(&mut server).await;
}

/// Waits (at most `limit`) for the first line a peer prints on its standard output, which must
/// be `expected`: the peer says it is ready for the test's next step.
async fn first_line(peer: &mut Child, expected: &str, what: &str, limit: Duration) {
    let stdout = peer.stdout.take().expect("the peer's standard output is piped");
    let said = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(limit, said)
        .await
        .unwrap_or_else(|_| panic!("{what} said nothing within {limit:?}"))
        .expect("the blocking task runs")
        .unwrap_or_else(|error| panic!("cannot read {what}'s output: {error}"));
    assert_eq!(line.trim(), expected, "{what} did not say `{expected}`");
}

/// Waits (at most `limit`) for a peer to end, and returns what it printed.
async fn finished(peer: Child, what: &str, limit: Duration) -> std::process::Output {
    let output = tokio::task::spawn_blocking(move || peer.wait_with_output());
    tokio::time::timeout(limit, output)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .expect("the blocking task runs")
        .unwrap_or_else(|error| panic!("{what} did not run: {error}"))
}

/// A C++ server process, stopped by closing its standard input (and killed if it lingers).
struct CppServer {
    child: Child,
}

impl CppServer {
    fn start(build: &Path, role: &str, socket: impl AsRef<std::ffi::OsStr>) -> Self {
        let mut child = Command::new(build.join("peer_server"))
            .arg(role)
            .arg(socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peer_server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read peer_server's first line");
        assert_eq!(line.trim(), "ready", "peer_server did not start");
        CppServer { child }
    }

    /// Closes its standard input and expects a clean exit.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("peer_server exits");
        assert!(status.success(), "peer_server exited with {status}");
    }
}

impl Drop for CppServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_cpp_of_every_example_interface_compiles_warning_free() {
    // `built` compiles every generated header with -Wall -Wextra -Werror -pedantic.
    let Some(build) = built() else { return };
    if sanitized() {
        eprintln!("the sanitized build compiles the peers only; the plain build checks this");
        return;
    }
    assert_every_interface_compiled(build);
}

/// Asserts that `build` has an object for the generated C++ of every interface file.
fn assert_every_interface_compiled(build: &Path) {
    for file in interface_files() {
        let stem =
            file.file_stem().and_then(|s| s.to_str()).expect("a file name").replace('-', "_");
        let objects = build.join(format!("CMakeFiles/compile_{stem}.dir"));
        assert!(objects.is_dir(), "no object was built for {}", file.display());
    }
}

#[test]
fn the_cpp_of_every_example_interface_compiles_warning_free_under_clang() {
    if sanitized() {
        eprintln!(
            "the sanitized run builds with the default compiler only; the plain run checks this"
        );
        return;
    }
    // `built_with_clang` compiles the runtime, every generated header and the peers with
    // clang++ -Wall -Wextra -Werror -pedantic.
    let Some(build) = built_with_clang() else { return };
    assert_every_interface_compiled(build);
    assert!(build.join("peer_server").is_file(), "clang++ built no peer_server");
}

/// clang-tidy, with the checks of `cpp/.clang-tidy` (every finding an error), on each source
/// file of the runtime and the runtime headers they include, finds nothing.
#[test]
fn clang_tidy_finds_nothing_in_the_cpp_runtime() {
    if sanitized() {
        eprintln!("the plain run checks this");
        return;
    }
    if let Err(error) = Command::new("clang-tidy").arg("--version").output() {
        prerequisite::missing(format!(
            "clang-tidy is not installed ({error}); apt-get install clang-tidy"
        ));
        return;
    }
    let Some(build) = built_with_clang() else { return };
    let mut sources: Vec<PathBuf> = std::fs::read_dir(repo().join("cpp/src"))
        .expect("read cpp/src")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cpp"))
        .collect();
    sources.sort();
    assert!(sources.len() >= 6, "the runtime's sources are missing: {sources:?}");
    // Two at a time: a clang-tidy run takes tens of seconds per file.
    let queue = std::sync::Mutex::new(sources.into_iter());
    let findings = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some(source) = queue.lock().expect("queue").next() else { return };
                    let output = Command::new("clang-tidy")
                        .arg("-p")
                        .arg(build)
                        .arg("--quiet")
                        .arg(&source)
                        .stdin(Stdio::null())
                        .output()
                        .expect("clang-tidy runs");
                    let stdout = String::from_utf8_lossy(&output.stdout);
                    if !output.status.success()
                        || stdout.contains("warning:")
                        || stdout.contains("error:")
                    {
                        findings.lock().expect("findings").push(format!(
                            "{} ({}):\n{stdout}{}",
                            source.display(),
                            output.status,
                            String::from_utf8_lossy(&output.stderr)
                        ));
                    }
                }
            });
        }
    });
    let findings = findings.into_inner().expect("findings");
    assert!(findings.is_empty(), "clang-tidy found:\n{}", findings.join("\n"));
}

/// Every ```cpp block of docs/cpp.md compiles (with g++ and with clang++, warnings as errors)
/// against the thermostat's generated header.
#[test]
fn every_cpp_sample_in_the_docs_compiles() {
    let Some(build) = built() else { return };
    if sanitized() {
        eprintln!("the sanitized build compiles the peers only; the plain build checks this");
        return;
    }
    let samples = doc_samples();
    assert!(samples.len() >= 2, "docs/cpp.md should show serving and calling: {samples:?}");
    let mut builds = vec![build];
    builds.extend(built_with_clang());
    for build in builds {
        for n in 1..=samples.len() {
            let dir = build.join(format!("CMakeFiles/doc_sample_{n}.dir"));
            assert!(
                object_in(&dir),
                "sample {n} of docs/cpp.md was not compiled in {}",
                build.display()
            );
        }
    }
}

/// The C++ snippets of the Markdown reference of every example interface and the thermostat
/// (a client that uses one item of each kind, and a server) compile, with g++ and with clang++,
/// warnings as errors, against that interface's generated header.
#[test]
fn the_cpp_snippets_of_every_markdown_reference_compile() {
    let Some(build) = built() else { return };
    if sanitized() {
        eprintln!("the sanitized build compiles the peers only; the plain build checks this");
        return;
    }
    let snippets = reference_snippets().expect("the references' C++ snippets");
    assert_eq!(snippets.len(), interface_files().len());
    for (namespace, snippet) in &snippets {
        // A reference without them would compile trivially.
        assert!(snippet.contains("Client::connect(where)"), "no client for {namespace}: {snippet}");
        assert!(
            snippet.contains("Server::serve(std::make_shared<My"),
            "no server for {namespace}: {snippet}"
        );
    }
    let mut builds = vec![build];
    builds.extend(built_with_clang());
    for build in builds {
        for (namespace, _) in &snippets {
            let dir = build.join(format!("CMakeFiles/reference_{namespace}.dir"));
            assert!(
                object_in(&dir),
                "the C++ snippets of {namespace}'s reference were not compiled in {}",
                build.display()
            );
        }
    }
}

/// The C++ thermostat example (examples/thermostat-cpp): the runtime installed with CMake into a
/// prefix of its own, the example configured against it with `find_package(switchboard)` and
/// the thermostat's generated C++ and built with warnings as errors; then its client reads,
/// boosts (and is refused a boost), sets and preheats (with every feedback) through its server
/// over the Unix socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_thermostat_example_builds_on_the_installed_runtime_and_runs() {
    if sanitized() {
        eprintln!("the plain run checks this");
        return;
    }
    let Some(_) = built() else { return };
    let example = tokio::task::spawn_blocking(build_example).await.expect("the blocking task runs");
    let example =
        example.unwrap_or_else(|error| panic!("building the C++ example failed:\n{error}"));
    let dir = SocketDir::new();
    let socket = dir.path("thermostat");
    let mut server = Command::new(example.join("thermostat_server"))
        .arg(&socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("thermostat_server starts");
    first_line(&mut server, "serving", "thermostat_server", Duration::from_secs(30)).await;
    let client =
        Command::new(example.join("thermostat_client")).arg(&socket).stdin(Stdio::null()).output();
    let client = tokio::task::spawn_blocking(move || client);
    let output = tokio::time::timeout(Duration::from_secs(60), client)
        .await
        .expect("thermostat_client finishes within 60 s")
        .expect("the blocking task runs")
        .expect("thermostat_client runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "thermostat_client failed ({}):\n{printed}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "status: 19.5 °C, 2 readings",
        "boosted until 20",
        "refused: ClientError",
        "set-point: 22.5",
        "preheating: 20.50 °C (25 %)",
        "preheating: 23.50 °C (100 %)",
        "preheated to 23.50 °C",
    ] {
        assert!(
            printed.contains(expected),
            "thermostat_client should print {expected:?}:\n{printed}"
        );
    }
    drop(server.stdin.take());
    let status = server.wait().expect("thermostat_server exits");
    assert!(status.success(), "thermostat_server exited with {status}");
    assert!(!socket.exists(), "thermostat_server left its socket behind");
}

/// Installs the runtime (`cpp/`) into `install/` and builds `examples/thermostat-cpp` against
/// it, each in a build directory of its own; returns the example's build directory.
fn build_example() -> Result<PathBuf, String> {
    let root = cpp_root();
    let runtime_source = repo().join("cpp");
    let runtime_build = root.join("build-runtime");
    let prefix = root.join("install");
    forget_a_build_of_another_checkout(&runtime_build, &runtime_source)?;
    run(Command::new("cmake")
        .arg("-S")
        .arg(&runtime_source)
        .arg("-B")
        .arg(&runtime_build)
        .arg("-DCMAKE_BUILD_TYPE=Debug"))?;
    run(Command::new("cmake").arg("--build").arg(&runtime_build).arg("-j2"))?;
    run(Command::new("cmake").arg("--install").arg(&runtime_build).arg("--prefix").arg(&prefix))?;
    let source = repo().join("examples/thermostat-cpp");
    let build = root.join("build-example");
    forget_a_build_of_another_checkout(&build, &source)?;
    run(Command::new("cmake")
        .arg("-S")
        .arg(&source)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .arg(format!("-DTHERMOSTAT_GENERATED={}", generated()?.join("thermostat").display()))
        .arg("-DCMAKE_BUILD_TYPE=Debug")
        .arg("-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror -pedantic"))?;
    run(Command::new("cmake").arg("--build").arg(&build).arg("-j2"))?;
    Ok(build)
}

/// Whether a CMake target directory holds a compiled object.
fn object_in(dir: &Path) -> bool {
    walk(dir).iter().any(|path| path.extension().is_some_and(|ext| ext == "o"))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_calls_watches_and_subscribes_to_a_rust_thermostat() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("thermostat");
    let program = env!("CARGO_BIN_EXE_switchboard-test-server");
    let mut server = ChildProcess::spawn(program, &[socket.to_str().expect("a UTF-8 path")]);
    wait_for_path(&socket, Duration::from_secs(10)).await.expect("the Rust server listens");
    client_check(build, "thermostat", &socket).await;
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_catches_the_declared_errors_of_a_rust_server() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let server = serve_jobs(&dir.endpoint("jobs"), ServerOptions::default()).await;
    client_check(build, "jobs", &dir.path("jobs")).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_calls_watches_and_subscribes_to_a_cpp_thermostat() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("thermostat");
    let server = CppServer::start(build, "thermostat", &socket);
    rust_client_against_cpp_thermostat(Endpoint::unix(UnixEndpoint::at(&socket))).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_calls_watches_and_subscribes_to_a_cpp_thermostat_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("thermostat");
    let url = format!("{}?instance={instance}", broker.url);
    let server = CppServer::start(build, "thermostat", &url);
    rust_client_against_cpp_thermostat(Endpoint::parse(&url).expect("a valid MQTT URL")).await;
    server.stop();
    // The C++ server's clean close cleared what it had retained.
    raw::clear_retained(&broker.url, &instance).await;
}

/// A Rust client against `peer_server thermostat` at `endpoint`.
async fn rust_client_against_cpp_thermostat(endpoint: Endpoint) {
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");

    let status = within("getStatus", client.get_status()).await.expect("getStatus");
    assert_eq!((status.mode, status.celsius, status.history), (Mode::Heat, 19.5, vec![19.0, 19.5]));
    let before = switchboard::chrono::Utc::now();
    let ends = within("boost", client.boost(1.0, switchboard::Duration::minutes(30), None))
        .await
        .expect("boost");
    let late = ends - before - switchboard::Duration::minutes(30);
    assert!(
        late >= switchboard::Duration::zero() && late < switchboard::Duration::seconds(10),
        "{late}"
    );
    match within("boost", client.boost(11.0, switchboard::Duration::zero(), None)).await {
        Err(CallError::Remote(error)) => {
            assert_eq!((error.code(), error.name()), (ErrorCode::ClientError, "ClientError"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match within("boost", client.boost(1.0, switchboard::Duration::zero(), Some("throw".into())))
        .await
    {
        Err(CallError::Remote(error)) => {
            assert_eq!((error.code(), error.name()), (ErrorCode::ServerError, "Internal"));
            assert!(!error.message().contains("secret"), "{}", error.message());
        }
        other => panic!("expected Internal, got {other:?}"),
    }

    let mut watch = within("watch", client.watch_setpoint()).await.expect("watch");
    let first = within("first value", watch.next()).await.expect("open").expect("a value");
    assert_eq!(first, 21.0);
    within("set", client.set_setpoint(23.5)).await.expect("set");
    let second = within("second value", watch.next()).await.expect("open").expect("a value");
    assert_eq!(second, 23.5);
    assert_eq!(within("get", client.get_setpoint()).await.expect("get"), 23.5);
    assert_eq!(within("mode", client.get_mode()).await.expect("mode"), Mode::Heat);

    let mut readings =
        within("subscribe", client.subscribe_temperature_changed()).await.expect("subscribe");
    for _ in 0..3 {
        let reading = within("a reading", readings.next()).await.expect("open").expect("a reading");
        assert_eq!(reading.celsius, 20.25);
        let age = switchboard::chrono::Utc::now() - reading.measured_at;
        assert!(age < switchboard::Duration::seconds(10), "{age}");
    }
    drop(readings);
    drop(watch);
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_gets_the_declared_errors_of_a_cpp_server() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("jobs");
    let server = CppServer::start(build, "jobs", &socket);
    rust_client_against_cpp_jobs(Endpoint::unix(UnixEndpoint::at(&socket))).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_gets_the_declared_errors_of_a_cpp_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("jobs");
    let url = format!("{}?instance={instance}", broker.url);
    let server = CppServer::start(build, "jobs", &url);
    rust_client_against_cpp_jobs(Endpoint::parse(&url).expect("a valid MQTT URL")).await;
    server.stop();
    raw::clear_retained(&broker.url, &instance).await;
}

/// A Rust client against `peer_server jobs` at `endpoint`.
async fn rust_client_against_cpp_jobs(endpoint: Endpoint) {
    let client = within("connect", JobsClient::connect(&endpoint)).await.expect("connect");
    assert_eq!(within("lookup", client.lookup("abc".into())).await.expect("found"), "ABC");
    match within("lookup", client.lookup("missing".into())).await {
        Err(MethodError::Declared(LookupError::NotFound(NotFound { key }))) => {
            assert_eq!(key, "missing")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match within("lookup", client.lookup("quota".into())).await {
        Err(MethodError::Declared(LookupError::QuotaExceeded(quota))) => {
            assert_eq!(quota, QuotaExceeded { used: 7, limit: 5, resets_at: Some(resets_at()) });
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    let mut notices = within("subscribe", client.subscribe_notice()).await.expect("subscribe");
    within("round trip", client.lookup("x".into())).await.expect("found");
    within("note", client.note("hello".into(), false)).await.expect("sent");
    let notice = within("notice", notices.next()).await.expect("open").expect("a notice");
    assert_eq!(notice.text, "hello");
    drop(notices);
    client.close();
}

/// Goals of `count` from a C++ client (`client_check actions`: acceptance, a declared
/// rejection, every feedback in order, cancelling before the start, while running and after the
/// end, a declared error, a failing handler, two goals at once) against the Rust Jobs server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_runs_goals_on_a_rust_server() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let server = serve_jobs(&dir.endpoint("jobs"), ServerOptions::default()).await;
    client_check(build, "actions", &dir.path("jobs")).await;
    server.shutdown().await;
}

/// The same against the C++ Jobs server (`peer_server jobs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_runs_goals_on_a_cpp_server() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("jobs");
    let server = CppServer::start(build, "jobs", &socket);
    client_check(build, "actions", &socket).await;
    server.stop();
}

/// The same against our Python runtime's Jobs server (tests/python/jobs_server.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_runs_goals_on_a_python_server() {
    let Some(build) = built() else { return };
    let Some(env) = crate::python::py() else { return };
    client_check_on_python_jobs(build, env, "actions", &crate::python::socket_url()).await;
}

/// A Rust client's goals on the C++ Jobs server over the Unix socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_runs_goals_on_a_cpp_server() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("jobs");
    let server = CppServer::start(build, "jobs", &socket);
    rust_client_runs_goals_on_cpp_jobs(Endpoint::unix(UnixEndpoint::at(&socket))).await;
    server.stop();
}

/// A Rust client against `peer_server jobs` at `endpoint`: every feedback in order and the
/// result, a declared rejection, cancelling while running and before the start, a declared
/// error while running, and a failing handler's `Internal` without its text.
async fn rust_client_runs_goals_on_cpp_jobs(endpoint: Endpoint) {
    let client = within("connect", JobsClient::connect(&endpoint)).await.expect("connect");
    let mut goal = within("send", client.count(50, 0, 0)).await.expect("accepted");
    let mut seen = Vec::new();
    while let Some(feedback) = within("feedback", goal.next_feedback()).await {
        seen.push(feedback.value);
    }
    assert_eq!(seen, (1..=50).collect::<Vec<_>>(), "every feedback, in order");
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 50);
    assert_eq!(goal.status(), GoalStatus::Succeeded);

    match within("send", client.count(-1, 1, 0)).await {
        Err(MethodError::Declared(CountError::BadInput(BadInput { field, reason }))) => {
            assert_eq!((field.as_str(), reason.as_str()), ("to", "must not be negative"));
        }
        other => panic!("expected a BadInput rejection, got {other:?}"),
    }

    let mut goal = within("send", client.count(10_000, 10, 0)).await.expect("accepted");
    assert_eq!(within("feedback", goal.next_feedback()).await.expect("a feedback").value, 1);
    assert_eq!(within("cancel", goal.cancel()).await.expect("cancel"), GoalStatus::Canceling);
    assert!(matches!(within("result", goal.result()).await, Err(GoalError::Cancelled)));

    let mut goal = within("send", client.count(5, 10, 30_000)).await.expect("accepted");
    assert_eq!(within("cancel", goal.cancel()).await.expect("cancel"), GoalStatus::Canceling);
    assert!(matches!(within("result", goal.result()).await, Err(GoalError::Cancelled)));
    assert!(within("feedback", goal.next_feedback()).await.is_none(), "no feedback was sent");

    let goal = within("send", client.count(FAILING_COUNT, 1, 0)).await.expect("accepted");
    match within("result", goal.result()).await {
        Err(GoalError::Declared(CountError::QuotaExceeded(quota))) => {
            assert_eq!(quota, QuotaExceeded { used: 1, limit: 1, resets_at: None });
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }

    let goal = within("send", client.count(PANICKING_COUNT, 1, 0)).await.expect("accepted");
    match within("result", goal.result()).await {
        Err(GoalError::Call(CallError::Remote(error))) => {
            assert_eq!((error.name(), error.code()), ("Internal", ErrorCode::ServerError));
            assert!(!error.message().contains("secret"), "the handler's text is not sent");
        }
        other => panic!("expected Internal, got {other:?}"),
    }
    client.close();
}

/// Goals over MQTT (the shared broker, an instance of their own), as above: a C++ client
/// against the Rust Jobs server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_runs_goals_on_a_rust_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("rust-goals");
    let url = format!("{}?instance={instance}", broker.url);
    let server =
        serve_jobs(&Endpoint::parse(&url).expect("a valid MQTT URL"), ServerOptions::default())
            .await;
    client_check(build, "actions", &url).await;
    server.shutdown().await;
    raw::clear_retained(&broker.url, &instance).await;
}

/// A C++ client against the C++ Jobs server over MQTT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_runs_goals_on_a_cpp_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("cpp-goals");
    let url = format!("{}?instance={instance}", broker.url);
    let server = CppServer::start(build, "jobs", &url);
    client_check(build, "actions", &url).await;
    server.stop();
    raw::clear_retained(&broker.url, &instance).await;
}

/// A C++ client against our Python runtime's Jobs server over MQTT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_runs_goals_on_a_python_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(env) = crate::python::py() else { return };
    let Some(url) = crate::python::mqtt_url() else { return };
    client_check_on_python_jobs(build, env, "actions", &url).await;
}

/// A Rust client's goals on the C++ Jobs server over MQTT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_runs_goals_on_a_cpp_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("cpp-goals-rust");
    let url = format!("{}?instance={instance}", broker.url);
    let server = CppServer::start(build, "jobs", &url);
    rust_client_runs_goals_on_cpp_jobs(Endpoint::parse(&url).expect("a valid MQTT URL")).await;
    server.stop();
    raw::clear_retained(&broker.url, &instance).await;
}

/// Our Python runtime's Jobs client (tests/python/jobs_client.py, the one the Rust and Python
/// Jobs servers pass) against the C++ Jobs server over the Unix socket: methods with declared,
/// undeclared and internal errors, goals with feedback, cancel, results, declared errors and a
/// late attach, and a command's broadcast notice (the C++ server sends no event to one client,
/// so the client skips that check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_passes_against_a_cpp_server() {
    let Some(build) = built() else { return };
    let Some(env) = crate::python::py() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("jobs");
    let server = CppServer::start(build, "jobs", &socket);
    let url = format!("unix://{}", socket.display());
    let mut client = env.spawn("jobs_client.py", &[&url, "--broadcast-only"]);
    crate::python::expect_line(&mut client, "PASS").await;
    server.stop();
}

/// The same over MQTT (the shared broker, an instance of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_passes_against_a_cpp_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(env) = crate::python::py() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("cpp-jobs-python");
    let url = format!("{}?instance={instance}", broker.url);
    let server = CppServer::start(build, "jobs", &url);
    let mut client = env.spawn("jobs_client.py", &[&url, "--broadcast-only"]);
    crate::python::expect_line(&mut client, "PASS").await;
    server.stop();
    raw::clear_retained(&broker.url, &instance).await;
}

/// A C++ client's goal in flight ends with a transport error once its Unix server is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_clients_goal_fails_when_its_unix_server_is_killed() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("jobs");
    let server = CppServer::start(build, "jobs", &socket);
    let mut child = Command::new(build.join("client_check"))
        .arg("action-fault")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client_check starts");
    first_line(&mut child, "in flight", "client_check", Duration::from_secs(60)).await;
    drop(server); // kills it
    let output = finished(child, "client_check", Duration::from_secs(90)).await;
    assert!(
        output.status.success(),
        "the C++ client's goal did not end with a transport error ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_catches_the_declared_errors_of_a_cpp_server() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("jobs");
    let server = CppServer::start(build, "jobs", &socket);
    client_check(build, "jobs", &socket).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_calls_watches_and_subscribes_to_a_rust_thermostat_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("rust-thermostat");
    let url = format!("{}?instance={instance}", broker.url);
    let endpoint = Endpoint::parse(&url).expect("a valid MQTT URL");
    let mut server = rust_test_server(&url, &endpoint).await;
    client_check(build, "thermostat", &url).await;
    server.kill();
    raw::clear_retained(&broker.url, &instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_catches_the_declared_errors_of_a_rust_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("rust-jobs");
    let endpoint =
        Endpoint::parse(&format!("{}?instance={instance}", broker.url)).expect("a valid MQTT URL");
    let server = serve_jobs(&endpoint, ServerOptions::default()).await;
    client_check(build, "jobs", format!("{}?instance={instance}", broker.url)).await;
    server.shutdown().await;
    raw::clear_retained(&broker.url, &instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_catches_the_declared_errors_of_a_cpp_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("cpp-jobs");
    let url = format!("{}?instance={instance}", broker.url);
    let server = CppServer::start(build, "jobs", &url);
    client_check(build, "jobs", &url).await;
    server.stop();
    raw::clear_retained(&broker.url, &instance).await;
}

/// The bad frames a Rust server answers with clear errors (`crate::unix::bad_frames_get_clear_errors`:
/// too short, an unknown kind, an unknown method, arguments of the wrong type or not JSON, an
/// oversized frame) get the same answers from a C++ server, which goes on serving a client
/// connected meanwhile and then exits cleanly (under the sanitizers, without a finding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_server_answers_malformed_frames_and_goes_on() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("thermostat");
    let server = CppServer::start(build, "thermostat", &socket);
    let endpoint = Endpoint::unix(UnixEndpoint::at(&socket));
    let bystander = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    let path = socket.clone();
    let report =
        tokio::task::spawn_blocking(move || crate::unix::bad_frames_get_clear_errors(&path));
    // A hang guard only: each exchange has its own read timeout. A sanitized peer is slower.
    tokio::time::timeout(Duration::from_secs(30), report)
        .await
        .expect("the raw exchanges finish within 30 s")
        .expect("the C++ server answers every bad frame");
    let status = within("getStatus", bystander.get_status()).await;
    assert_eq!(status.expect("the C++ server still serves others").celsius, 19.5);
    bystander.close();
    server.stop();
}

/// A C++ client against our Python runtime's Jobs server (tests/python/jobs_server.py, the
/// behaviour of the Rust `serve_jobs`) over the Unix socket: a method's answer, both declared
/// errors with their fields, an undeclared error by name, and a command's signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_catches_the_declared_errors_of_a_python_server() {
    let Some(build) = built() else { return };
    let Some(env) = crate::python::py() else { return };
    client_check_on_python_jobs(build, env, "jobs", &crate::python::socket_url()).await;
}

/// The same over MQTT (the shared broker, an instance of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_catches_the_declared_errors_of_a_python_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(env) = crate::python::py() else { return };
    let Some(url) = crate::python::mqtt_url() else { return };
    client_check_on_python_jobs(build, env, "jobs", &url).await;
}

/// A C++ client against a fake server that answers badly (`client_check malformed`): an answer
/// that is not JSON and one of the wrong type fail those calls with `DecodeError`; a frame too
/// short for a header, a frame of an unknown kind, an answer to a call never made and a signal
/// that is not JSON are skipped, and the next answer arrives; an oversized frame ends the
/// connection, failing the call with `TransportError`. Under the sanitizers, without a finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_survives_malformed_answers() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("bad-answers");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind the fake server");
    let fake = std::thread::spawn(move || answer_badly(&listener));
    client_check(build, "malformed", &socket).await;
    let fake = tokio::task::spawn_blocking(move || fake.join());
    within("the fake server", fake)
        .await
        .expect("the blocking task runs")
        .expect("the fake server saw the calls it expected");
}

/// The fake server of [`a_cpp_client_survives_malformed_answers`]: one connection, four
/// `getStatus` calls, each answered as that test says.
fn answer_badly(listener: &std::os::unix::net::UnixListener) {
    use std::io::Write;

    use switchboard_transport_unix::frame::{Frame, Kind};

    use crate::unix::{read_frame, write_frame};

    let (mut stream, _) = listener.accept().expect("the C++ client connects");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("a read timeout");
    let hello = read_frame(&mut stream).expect("a HELLO");
    assert_eq!(hello.kind, Kind::Hello);
    let welcome = r#"{"protocol":1,"interface":"Thermostat","instance":"default"}"#;
    write_frame(&mut stream, &Frame::new(Kind::Welcome, "Thermostat").with_payload(welcome));
    fn next_call(stream: &mut std::os::unix::net::UnixStream, what: &str) -> u64 {
        let call = read_frame(stream).unwrap_or_else(|| panic!("a call ({what})"));
        assert_eq!((call.kind, call.name.as_str()), (Kind::Call, "getStatus"), "{what}");
        call.id
    }
    let reply = |id: u64, payload: &'static str| {
        Frame::new(Kind::Reply, "getStatus").with_id(id).with_payload(payload)
    };

    let id = next_call(&mut stream, "not JSON");
    let not_json = reply(id, "{not json");
    let id = next_call(&mut stream, "the wrong type");
    let wrong_type = reply(id, r#"{"mode":1,"celsius":"warm","history":[]}"#);
    // Answered in this order, on the same connection: the first two before the third call.
    write_frame(&mut stream, &not_json);
    write_frame(&mut stream, &wrong_type);

    let id = next_call(&mut stream, "after skipped frames");
    stream.write_all(&[0, 0, 0, 3, 0x11, 0, 0]).expect("a frame too short");
    let mut unknown_kind = reply(id, "{}").to_vec().expect("encodable");
    unknown_kind[4] = 0x5f;
    stream.write_all(&unknown_kind).expect("a frame of an unknown kind");
    write_frame(&mut stream, &reply(id + 1000, r#"{"mode":0,"celsius":1.0,"history":[]}"#));
    write_frame(&mut stream, &Frame::new(Kind::Signal, "temperatureChanged").with_payload("{bad"));
    write_frame(&mut stream, &reply(id, r#"{"mode":1,"celsius":19.5,"history":[19.0]}"#));

    next_call(&mut stream, "oversized");
    stream.write_all(&u32::MAX.to_be_bytes()).expect("an oversized length");
    // The client closes the connection; nothing more comes.
    assert!(read_frame(&mut stream).is_none(), "the client sent more after the oversized frame");
}

/// A C++ client over MQTT whose broker is restarted (a private mosquitto, killed and started
/// again, its retained messages lost): once libmosquitto has reconnected and the Rust server has
/// announced itself again, the client's calls are answered again (`client_check
/// broker-restart`); until then they fail cleanly. Under the sanitizers, without a finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_calls_again_after_its_broker_restarts() {
    use std::io::Write;

    let Some(build) = built() else { return };
    let Some(mut broker) = PrivateMosquitto::start() else { return };
    let url = format!("{}?instance={}", broker.url(), unique("restart"));
    let endpoint = Endpoint::parse(&url).expect("a valid MQTT URL");
    let mut server = rust_test_server(&url, &endpoint).await;
    let mut child = Command::new(build.join("client_check"))
        .arg("broker-restart")
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client_check starts");
    first_line(&mut child, "connected", "client_check", Duration::from_secs(60)).await;
    tokio::task::block_in_place(|| broker.restart());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"restarted\n").expect("tell client_check");
    drop(stdin);
    let output = finished(child, "client_check", Duration::from_secs(90)).await;
    assert!(
        output.status.success(),
        "the C++ client did not call again after the broker's restart ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    server.kill();
}

/// Runs `client_check fault WHERE` against `server`: once the C++ client says its call is in
/// flight, the server is killed (SIGKILL), and the client must see that call fail with a
/// transport error (not its 120 s timeout) and exit 0.
async fn a_call_in_flight_fails_when_the_server_is_killed(
    build: &Path,
    where_: &str,
    mut server: ChildProcess,
) {
    let mut child = Command::new(build.join("client_check"))
        .arg("fault")
        .arg(where_)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client_check starts");
    first_line(&mut child, "in flight", "client_check", Duration::from_secs(60)).await;
    server.kill();
    let output = finished(child, "client_check", Duration::from_secs(90)).await;
    assert!(
        output.status.success(),
        "the C++ client's call did not fail with a transport error ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_clients_call_fails_when_its_unix_server_is_killed() {
    let Some(build) = built() else { return };
    let dir = SocketDir::new();
    let socket = dir.path("thermostat");
    let program = env!("CARGO_BIN_EXE_switchboard-test-server");
    let server = ChildProcess::spawn(program, &[socket.to_str().expect("a UTF-8 path")]);
    wait_for_path(&socket, Duration::from_secs(10)).await.expect("the Rust server listens");
    a_call_in_flight_fails_when_the_server_is_killed(
        build,
        socket.to_str().expect("UTF-8"),
        server,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_clients_call_fails_when_its_mqtt_server_is_killed() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("killed");
    let url = format!("{}?instance={instance}", broker.url);
    let endpoint = Endpoint::parse(&url).expect("a valid MQTT URL");
    let server = rust_test_server(&url, &endpoint).await;
    a_call_in_flight_fails_when_the_server_is_killed(build, &url, server).await;
    raw::clear_retained(&broker.url, &instance).await;
}

/// Where a test of versions serves its peers: an endpoint per tag, with the address a C++ peer
/// takes, on the Unix socket (a fresh directory) or MQTT (the shared broker, an instance per
/// tag, whose retained messages [`Place::clear`] removes).
enum Place {
    Unix(SocketDir),
    Mqtt { url: String, instances: std::sync::Mutex<Vec<String>> },
}

impl Place {
    fn unix() -> Self {
        Place::Unix(SocketDir::new())
    }

    fn mqtt(broker_url: &str) -> Self {
        Place::Mqtt { url: broker_url.to_owned(), instances: std::sync::Mutex::default() }
    }

    /// The endpoint `tag` names, for Rust peers, and the same place for C++ peers.
    fn at(&self, tag: &str) -> (Endpoint, String) {
        match self {
            Place::Unix(dir) => {
                (dir.endpoint(tag), dir.path(tag).to_str().expect("a UTF-8 path").to_owned())
            }
            Place::Mqtt { url, instances } => {
                let instance = unique(tag);
                let at = format!("{url}?instance={instance}");
                instances.lock().expect("not poisoned").push(instance);
                (Endpoint::parse(&at).expect("a valid MQTT URL"), at)
            }
        }
    }

    /// Removes what the servers left on the broker.
    async fn clear(self) {
        if let Place::Mqtt { url, instances } = self {
            for instance in instances.into_inner().expect("not poisoned") {
                raw::clear_retained(&url, &instance).await;
            }
        }
    }
}

/// The file of `version` of the compatibility matrix.
fn evolve_file(version: &str) -> PathBuf {
    repo().join(format!("tests/interfaces/evolve/{version}.yaml"))
}

/// What `client_check` printed after `prefix` on a line of its own.
fn said_after<'a>(output: &'a std::process::Output, prefix: &str) -> &'a str {
    let stdout = std::str::from_utf8(&output.stdout).expect("UTF-8 output");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("client_check printed no `{prefix}` line:\n{stdout}"))
}

/// A C++ client generated from the base version of the compatibility matrix
/// (tests/interfaces/evolve/v1.yaml) against Rust servers of newer versions: a compatible server
/// accepts it, and its decoders ignore the struct member it does not know; against a server
/// that lacks its method `ping` it connects, and the call fails before it is sent with the
/// error and text the Rust client of v1 fails it with; a server that a change breaks it against
/// is refused with the Rust client's words.
async fn cpp_client_of_v1_meets_newer_rust_servers(build: &Path, place: &Place) {
    use crate::evolve::serve_version;
    use switchboard_tests::evolve::v1;

    let (endpoint, where_) = place.at("newer");
    let _newer = serve_version("added_struct_field", &endpoint).await;
    client_check(build, "evolving-newer", &where_).await;

    let (endpoint, where_) = place.at("lacking");
    let _lacking = serve_version("removed_method", &endpoint).await;
    let rust = within("connect", v1::EvolvingClient::connect(&endpoint))
        .await
        .expect("a Rust client of v1 connects to a server without `ping`");
    let Err(CallError::Remote(expected)) = within("ping", rust.ping()).await else {
        panic!("the Rust client's call to `ping` should fail as unknown");
    };
    let output = client_check(build, "evolving-lacking", &where_).await;
    assert_eq!(said_after(&output, "unknown: "), expected.message());

    let (endpoint, where_) = place.at("breaking");
    let _breaking = serve_version("changed_type", &endpoint).await;
    let Err(expected) = within("connect", v1::EvolvingClient::connect(&endpoint)).await else {
        panic!("a server of changed_type should refuse a Rust client of v1");
    };
    let output = client_check(build, "evolving-breaking", &where_).await;
    assert_eq!(said_after(&output, "refused: "), expected.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_meets_rust_servers_of_newer_versions() {
    let Some(build) = built() else { return };
    cpp_client_of_v1_meets_newer_rust_servers(build, &Place::unix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_meets_rust_servers_of_newer_versions_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let place = Place::mqtt(&broker.url);
    cpp_client_of_v1_meets_newer_rust_servers(build, &place).await;
    place.clear().await;
}

/// A C++ client of a version with one member more than v1 (a method, signal, property, command
/// or action) against a Rust server of v1, run by `member_check` through the runtime's
/// `ClientConnection`: it connects, and every use of the member (a call; a subscription; a read,
/// an update and a watch; a command; a goal) fails before anything is sent, with the error a
/// Rust client of that version fails it with (`Agreement::refusal`: code 9, `UnknownMethod`,
/// `UnknownSignal`, ..., and the same message).
async fn cpp_client_uses_members_a_rust_server_lacks(build: &Path, place: &Place) {
    use switchboard_core::compat::{self, Member, MemberKind};

    let (endpoint, where_) = place.at("v1");
    let _server = crate::evolve::serve_version("v1", &endpoint).await;
    let server = crate::evolve::hello_of(&evolve_file("v1"));
    for (version, kind, name) in [
        ("added_method", MemberKind::Method, "boost"),
        ("added_signal", MemberKind::Signal, "alarm"),
        ("added_property", MemberKind::Property, "limit"),
        ("added_command", MemberKind::Command, "ring"),
        ("added_action", MemberKind::Action, "preheat"),
    ] {
        let client = crate::evolve::hello_of(&evolve_file(version));
        let member = Member { kind, name: name.to_owned() };
        let expected = compat::check(&client, &server)
            .unwrap_or_else(|e| panic!("a client of {version} fits a server of v1: {e}"))
            .refusal(&member);
        let hello = std::env::temp_dir().join(format!("{}.json", unique(version)));
        std::fs::write(&hello, serde_json::to_vec(&client).expect("a Hello as JSON"))
            .expect("write the client's Hello");
        let mut command = Command::new(build.join("member_check"));
        command.args([where_.as_str(), hello.to_str().expect("UTF-8"), kind.section(), name]);
        let output = tokio::task::spawn_blocking(move || command.stdin(Stdio::null()).output());
        let output = tokio::time::timeout(Duration::from_secs(60), output)
            .await
            .expect("member_check finishes within 60 s")
            .expect("the blocking task runs")
            .expect("member_check starts");
        let _ = std::fs::remove_file(&hello);
        assert!(
            output.status.success(),
            "member_check failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let said: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("member_check prints JSON");
        let uses = said["uses"].as_array().unwrap_or_else(|| panic!("{version}: {said}"));
        assert!(!uses.is_empty(), "{version}: the member was used");
        for used in uses {
            assert_eq!(
                (&used["code"], &used["name"], &used["message"]),
                (
                    &serde_json::json!(expected.code().as_u8()),
                    &serde_json::json!(expected.name()),
                    &serde_json::json!(expected.message())
                ),
                "{version}: {used}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_fails_each_use_of_a_member_its_server_lacks() {
    let Some(build) = built() else { return };
    cpp_client_uses_members_a_rust_server_lacks(build, &Place::unix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_client_fails_each_use_of_a_member_its_server_lacks_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let place = Place::mqtt(&broker.url);
    cpp_client_uses_members_a_rust_server_lacks(build, &place).await;
    place.clear().await;
}

/// The rows of the compatibility matrix (tests/it/evolve.rs) whose old version is v1, with a
/// C++ server of v1 as the old server and a Rust server of the row's new version: Rust clients
/// of v1 meet the Rust server, and Rust clients of the new version the C++ server, which admits
/// or refuses them by the rules, and sends its description in its WELCOME (Unix) or interface
/// info (MQTT) for them to learn what it lacks.
async fn matrix_rows_against_a_cpp_server_of_v1(build: &Path, place: &Place) {
    use crate::evolve::{Servers, serve_version, versions};

    macro_rules! rows {
        ($($row:ident),* $(,)?) => {$(
            let row = stringify!($row);
            if let ("v1", new_version) = versions(row) {
                let (old, old_where) = place.at(&format!("{row}-old"));
                let (new, _) = place.at(&format!("{row}-new"));
                let cpp = CppServer::start(build, "evolving", &old_where);
                let rust = serve_version(new_version, &new).await;
                crate::evolve::$row(&Servers { old, new }).await;
                drop(rust);
                cpp.stop();
            }
        )*};
    }
    crate::evolve::every_body!(rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_clients_of_other_versions_meet_a_cpp_server() {
    use switchboard_tests::evolve::changed_type;

    let Some(build) = built() else { return };
    let place = Place::unix();
    matrix_rows_against_a_cpp_server_of_v1(build, &place).await;
    // The C++ server refuses with the words of a Rust server.
    let expected = switchboard_core::compat::check(
        &crate::evolve::hello_of(&evolve_file("changed_type")),
        &crate::evolve::hello_of(&evolve_file("v1")),
    )
    .expect_err("changed_type breaks against v1")
    .to_string();
    let (endpoint, where_) = place.at("refusing");
    let cpp = CppServer::start(build, "evolving", &where_);
    let Err(error) = within("connect", changed_type::EvolvingClient::connect(&endpoint)).await
    else {
        panic!("the C++ server of v1 should refuse a client of changed_type");
    };
    assert_eq!(error.message(), expected);
    cpp.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_clients_of_other_versions_meet_a_cpp_server_over_mqtt() {
    let Some(build) = built() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let place = Place::mqtt(&broker.url);
    matrix_rows_against_a_cpp_server_of_v1(build, &place).await;
    place.clear().await;
}

/// The C++ runtime's compatibility check (`cpp/src/compat.cpp`, run by `compat_check`) decides
/// every pair of [`crate::evolve::ClassifierCases`] as the Rust one does: the same members
/// lacking, or the same refusal, word for word.
#[test]
fn cpp_classifier_agrees_with_rust() {
    let Some(build) = built() else { return };
    crate::evolve::ClassifierCases::all().assert_agree("C++", |input| {
        Command::new(build.join("compat_check"))
            .arg(input)
            .stdin(Stdio::null())
            .output()
            .expect("compat_check starts")
    });
}
