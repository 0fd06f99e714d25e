//! `cargo xtask doctor`: checks this machine for what the full test suite needs (programs,
//! interpreters, the loopback broker) and says how to get whatever is missing.
//!
//! The checks look where the tests look: the mosquitto binary at the path the testkit starts,
//! the shared broker on its port, and Python 3.12 through the same candidates as
//! `tests/interop/setup.sh`. Tests of the doctor itself run it against a made-up machine (a
//! `PATH` of stub programs, ports of their own), so they do not depend on this one.

use std::{
    fmt::Write as _,
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

/// The programs and services a machine offers, as the tests would find them.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// The directories searched for programs, in order, as in `PATH`.
    path: Vec<PathBuf>,
}

impl Machine {
    /// This machine, searched through `$PATH`.
    pub(crate) fn this() -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        Machine { path: std::env::split_paths(&path).collect() }
    }

    /// Where `program` is: itself when it is a path, else the first match on the search path.
    fn find(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            return is_executable(Path::new(program)).then(|| PathBuf::from(program));
        }
        self.path.iter().map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
    }

    /// Runs `program` with `args` (and `env`) and returns the first line it printed, on standard
    /// output or else standard error. Fails with what went wrong when the program cannot be
    /// found or started, or exits unsuccessfully (unless `any_status`).
    fn first_line(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        any_status: bool,
    ) -> Result<String, String> {
        let found = self.find(program).ok_or_else(|| {
            if program.contains('/') {
                format!("{program} does not exist or cannot be run")
            } else {
                format!("`{program}` is not on PATH")
            }
        })?;
        let paths = std::env::join_paths(&self.path).map_err(|e| e.to_string())?;
        let output = Command::new(&found)
            .args(args)
            .envs(env.iter().copied())
            .env("PATH", paths)
            .output()
            .map_err(|e| format!("{} does not start: {e}", found.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first =
            |text: &str| text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned);
        if !output.status.success() && !any_status {
            let why = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default();
            return Err(format!("{} failed ({}): {why}", found.display(), output.status));
        }
        Ok(first(&stdout).or_else(|| first(&stderr)).unwrap_or_default())
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Where the tests expect things: the defaults are switchboard-testkit's.
#[derive(Debug, Clone)]
pub(crate) struct Places {
    /// The mosquitto binary private test brokers run (`switchboard_testkit::broker::MOSQUITTO`).
    pub(crate) mosquitto: String,
    /// The shared MQTT broker (`switchboard_testkit::broker::SHARED_BROKER`).
    pub(crate) mqtt_broker: SocketAddr,
    /// The Redis server benchmark row 9 uses.
    pub(crate) redis: SocketAddr,
    /// nlohmann/json's header, which the C++ runtime (`cpp/`) includes.
    pub(crate) nlohmann_json: String,
    /// The browser the console's test drives (`crates/switchboard-cli/tests/console.rs`).
    pub(crate) chromium: String,
}

impl Default for Places {
    fn default() -> Self {
        Places {
            mosquitto: "/usr/sbin/mosquitto".to_owned(),
            mqtt_broker: SocketAddr::from(([127, 0, 0, 1], 1883)),
            redis: SocketAddr::from(([127, 0, 0, 1], 6379)),
            nlohmann_json: "/usr/include/nlohmann/json.hpp".to_owned(),
            chromium: "/usr/bin/chromium".to_owned(),
        }
    }
}

/// The interpreters `tests/interop/setup.sh` tries for Python 3.12, in its order: an
/// environment variable to set (for pyenv) and the program.
pub(crate) const PYTHON_312_CANDIDATES: &[(Option<(&str, &str)>, &str)] =
    &[(None, "python3.12"), (Some(("PYENV_VERSION", "3.12.1")), "python3"), (None, "python3")];

/// Whether the full test suite needs a prerequisite, or only CI's extra steps and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Without it, some tests of `cargo test --workspace` are skipped (outside CI) or fail.
    Tests,
    /// Only the callgrind gate of `.ci/run` or the benchmarks use it.
    Extra,
}

/// The outcome of one check.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// What was looked for.
    pub(crate) what: String,
    /// Who needs it.
    pub(crate) need: Need,
    /// What uses it, for people.
    pub(crate) used_by: &'static str,
    /// What was found (`Ok`), or why it is missing (`Err`).
    pub(crate) found: Result<String, String>,
    /// How to get it.
    pub(crate) fix: &'static str,
}

/// Checks `machine` for everything the tests need, in the order of the report.
pub(crate) fn examine(machine: &Machine, places: &Places) -> Vec<Finding> {
    let program =
        |name: &str, version_args: &[&str]| machine.first_line(name, version_args, &[], false);
    let mut findings = vec![
        Finding {
            what: "cc".to_owned(),
            need: Need::Tests,
            used_by: "building ring, the TLS crypto of the MQTT transport, which has C parts",
            found: program("cc", &["--version"]),
            fix: "Debian/Ubuntu: `sudo apt-get install build-essential`",
        },
        Finding {
            what: "mosquitto".to_owned(),
            need: Need::Tests,
            used_by: "broker fault and TLS tests, which start brokers of their own",
            // `mosquitto -h` prints its version and exits with status 3.
            found: machine
                .first_line(&places.mosquitto, &["-h"], &[], true)
                .map(|version| format!("{}: {version}", places.mosquitto)),
            fix: "Debian/Ubuntu: `sudo apt-get install mosquitto` \
                  (the tests run /usr/sbin/mosquitto)",
        },
        Finding {
            what: format!("MQTT broker on {}", places.mqtt_broker),
            need: Need::Tests,
            used_by: "the MQTT, Python and StingerIPC interop tests",
            found: accepts_connections(places.mqtt_broker),
            fix: "start mosquitto: `sudo systemctl start mosquitto`, or `mosquitto -d`",
        },
        Finding {
            what: "python3 (3.9 or newer) with venv".to_owned(),
            need: Need::Tests,
            used_by: "the Python runtime's tests and the reference docs' mypy check",
            found: python_version(machine, None, "python3").and_then(|version| {
                at_least(&version, (3, 9)).map(|()| format!("python3: Python {version}"))
            }),
            fix: "Debian/Ubuntu: `sudo apt-get install python3 python3-venv`",
        },
        Finding {
            what: "Python 3.12 with venv".to_owned(),
            need: Need::Tests,
            used_by: "StingerIPC's Python peers (interop tests); its runtime needs 3.12",
            found: python_312(machine),
            fix: "`pyenv install 3.12.1`, or Debian/Ubuntu: \
                  `sudo apt-get install python3.12 python3.12-venv`",
        },
        Finding {
            what: "node".to_owned(),
            need: Need::Tests,
            used_by: "validation of the AsyncAPI documents with the official AsyncAPI parser",
            found: program("node", &["--version"]),
            fix: "Node.js (the pinned parser's dependencies ask for 20.16 or newer): \
                  Debian/Ubuntu `sudo apt-get install nodejs npm`, or https://nodejs.org",
        },
        Finding {
            what: "npm".to_owned(),
            need: Need::Tests,
            used_by: "installing the pinned AsyncAPI parser (`npm ci`)",
            found: program("npm", &["--version"]),
            fix: "Debian/Ubuntu: `sudo apt-get install npm` (it comes with Node.js elsewhere)",
        },
        Finding {
            what: "jq".to_owned(),
            need: Need::Tests,
            used_by: "the bash examples of docs/shell.md, which the CLI tests run",
            found: program("jq", &["--version"]),
            fix: "Debian/Ubuntu: `sudo apt-get install jq`",
        },
    ];
    const CPP_FIX: &str = "Debian/Ubuntu: `sudo apt-get install cmake g++ clang clang-tidy nlohmann-json3-dev libmosquitto-dev`";
    for (name, used_by) in [
        ("cmake", "building the C++ runtime and generated C++ (tests/it/cpp.rs)"),
        ("c++", "compiling the C++ runtime and generated C++ (tests/it/cpp.rs), C++20"),
        ("clang++", "compiling the C++ runtime and generated C++ with clang (tests/it/cpp.rs)"),
        ("clang-tidy", "checking the C++ runtime with cpp/.clang-tidy (tests/it/cpp.rs)"),
    ] {
        findings.push(Finding {
            what: name.to_owned(),
            need: Need::Tests,
            used_by,
            found: program(name, &["--version"]),
            fix: CPP_FIX,
        });
    }
    findings.push(Finding {
        what: "nlohmann/json".to_owned(),
        need: Need::Tests,
        used_by: "the C++ runtime's JSON (tests/it/cpp.rs)",
        found: if Path::new(&places.nlohmann_json).is_file() {
            Ok(places.nlohmann_json.clone())
        } else {
            Err(format!("{} is missing", places.nlohmann_json))
        },
        fix: CPP_FIX,
    });
    findings.push(Finding {
        what: "chromium".to_owned(),
        need: Need::Tests,
        used_by: "the browser console's test (crates/switchboard-cli/tests/console.rs), headless",
        found: if is_executable(Path::new(&places.chromium)) {
            Ok(places.chromium.clone())
        } else {
            Err(format!("{} is missing", places.chromium))
        },
        fix: "Debian/Ubuntu: `sudo apt-get install chromium` (the test runs /usr/bin/chromium)",
    });
    findings.push(Finding {
        what: "tmux".to_owned(),
        need: Need::Tests,
        used_by: "the terminal UI's tests (crates/switchboard-cli/tests/tui.rs)",
        found: program("tmux", &["-V"]),
        fix: "Debian/Ubuntu: `sudo apt-get install tmux`",
    });
    for (name, used_by, fix) in [
        ("bash", "tests/interop/setup.sh and the docs/shell.md examples", "install bash"),
        ("flock", "tests/interop/setup.sh", "Debian/Ubuntu: `sudo apt-get install util-linux`"),
        ("sha256sum", "tests/interop/setup.sh", "Debian/Ubuntu: `sudo apt-get install coreutils`"),
    ] {
        findings.push(Finding {
            what: name.to_owned(),
            need: Need::Tests,
            used_by,
            found: program(name, &["--version"]),
            fix,
        });
    }
    findings.push(Finding {
        what: "valgrind".to_owned(),
        need: Need::Extra,
        used_by: "the callgrind gate of .ci/run and benchmark profiles",
        found: program("valgrind", &["--version"]),
        fix: "Debian/Ubuntu: `sudo apt-get install valgrind`",
    });
    findings.push(Finding {
        what: format!("Redis on {}", places.redis),
        need: Need::Extra,
        used_by: "benchmark row 9 (commlib-py over Redis)",
        found: accepts_connections(places.redis),
        fix: "Debian/Ubuntu: `sudo apt-get install redis-server`",
    });
    findings
}

/// Whether a TCP server listens at `addr`.
fn accepts_connections(addr: SocketAddr) -> Result<String, String> {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Ok(_) => Ok(format!("{addr} accepts connections")),
        Err(e) => Err(format!("nothing accepts connections on {addr} ({e})")),
    }
}

/// The version (`3.12.1`) of the Python that `program` (with `env`) runs, checking on the way
/// that it can make virtual environments (`venv` and `ensurepip`, which Debian packages apart).
fn python_version(
    machine: &Machine,
    env: Option<(&str, &str)>,
    program: &str,
) -> Result<String, String> {
    const PROBE: &str =
        "import sys, venv, ensurepip; print('%d.%d.%d' % tuple(sys.version_info[:3]))";
    let env: Vec<(&str, &str)> = env.into_iter().collect();
    machine.first_line(program, &["-c", PROBE], &env, false)
}

/// Fails unless `version` (`3.11.7`) is at least `minimum`.
fn at_least(version: &str, minimum: (u32, u32)) -> Result<(), String> {
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) if (major, minor) >= minimum => Ok(()),
        (Some(_), Some(_)) => {
            Err(format!("Python {version} is older than {}.{}", minimum.0, minimum.1))
        }
        _ => Err(format!("cannot read a Python version from {version:?}")),
    }
}

/// The first of [`PYTHON_312_CANDIDATES`] that runs Python 3.12 or newer with `venv`.
fn python_312(machine: &Machine) -> Result<String, String> {
    let mut tried = Vec::new();
    for &(env, program) in PYTHON_312_CANDIDATES {
        let label = match env {
            Some((key, value)) => format!("{key}={value} {program}"),
            None => program.to_owned(),
        };
        match python_version(machine, env, program)
            .and_then(|version| at_least(&version, (3, 12)).map(|()| version))
        {
            Ok(version) => return Ok(format!("{label}: Python {version}")),
            Err(why) => tried.push(format!("{label}: {why}")),
        }
    }
    Err(format!("none of the candidates works ({})", tried.join("; ")))
}

/// The report people read: one line per check, and for what is missing, who needs it and how
/// to get it.
pub(crate) fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    let width = findings.iter().map(|f| f.what.len()).max().unwrap_or(0);
    for (need, heading) in [
        (Need::Tests, "What `cargo test --workspace` needs:"),
        (Need::Extra, "What the callgrind gate of .ci/run and the benchmarks also need:"),
    ] {
        let _ = writeln!(out, "{heading}");
        for finding in findings.iter().filter(|f| f.need == need) {
            let what = &finding.what;
            match &finding.found {
                Ok(found) => {
                    let _ = writeln!(out, "  ok       {what:width$}  {found}");
                }
                Err(why) => {
                    let _ = writeln!(out, "  MISSING  {what:width$}  {why}");
                    let _ = writeln!(out, "           {:width$}  used by {}", "", finding.used_by);
                    let _ = writeln!(out, "           {:width$}  get it: {}", "", finding.fix);
                }
            }
        }
        out.push('\n');
    }
    out.push_str(
        "Outside CI, a test that lacks the broker, mosquitto, Python or Node is skipped with a \
         notice; under CI=true it fails.\nThe first test run also installs pinned packages from \
         PyPI and npm into the target directory, so it needs those registries.\n",
    );
    out
}

/// How many prerequisites of the test suite are missing.
pub(crate) fn missing_for_tests(findings: &[Finding]) -> usize {
    findings.iter().filter(|f| f.need == Need::Tests && f.found.is_err()).count()
}

/// Runs the checks on this machine and prints the report; exits with status 1 when the tests
/// lack something.
pub(crate) fn doctor() {
    let findings = examine(&Machine::this(), &Places::default());
    print!("{}", render(&findings));
    match missing_for_tests(&findings) {
        0 => {}
        missing => {
            let noun = if missing == 1 { "prerequisite" } else { "prerequisites" };
            eprintln!("\n{missing} {noun} of the test suite missing on this machine");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A made-up machine: a directory of stub programs that is the whole `PATH`.
    struct StubMachine {
        dir: tempfile::TempDir,
    }

    impl StubMachine {
        fn new() -> Self {
            StubMachine { dir: tempfile::tempdir().expect("a temporary directory") }
        }

        /// Adds a program that runs `script` (POSIX sh).
        fn program(&self, name: &str, script: &str) -> &Self {
            use std::os::unix::fs::PermissionsExt;
            let path = self.dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write a stub");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make the stub executable");
            self
        }

        /// Every program the tests need, in working order, with Python 3.12 as `python3`.
        fn complete() -> Self {
            let machine = StubMachine::new();
            machine
                .program("cc", "echo 'cc (Debian 12.2.0-14) 12.2.0'")
                .program("c++", "echo 'c++ (Debian 12.2.0-14) 12.2.0'")
                .program("cmake", "echo 'cmake version 3.25.1'")
                .program("clang++", "echo 'Debian clang version 14.0.6'")
                .program("clang-tidy", "echo 'Debian LLVM version 14.0.6'")
                .program("mosquitto", "echo 'mosquitto version 2.0.11'; exit 3")
                .program("python3", "echo 3.12.1")
                .program("node", "echo v20.20.2")
                .program("npm", "echo 11.19.1")
                .program("jq", "echo jq-1.6")
                .program("bash", "echo 'GNU bash, version 5.2.15(1)-release'")
                .program("flock", "echo 'flock from util-linux 2.38.1'")
                .program("sha256sum", "echo 'sha256sum (GNU coreutils) 9.1'")
                .program("tmux", "echo 'tmux 3.3a'")
                .program("valgrind", "echo valgrind-3.19.0");
            machine
        }

        fn machine(&self) -> Machine {
            Machine { path: vec![self.dir.path().to_path_buf()] }
        }

        fn places(&self, broker: SocketAddr) -> Places {
            let mosquitto = self.dir.path().join("mosquitto").display().to_string();
            let nlohmann_json = self.dir.path().join("json.hpp");
            std::fs::write(&nlohmann_json, "// a stub").expect("write a stub header");
            let nlohmann_json = nlohmann_json.display().to_string();
            self.program("chromium", "echo 'Chromium 156.0.8078.129'");
            let chromium = self.dir.path().join("chromium").display().to_string();
            Places { mosquitto, mqtt_broker: broker, redis: closed_port(), nlohmann_json, chromium }
        }

        fn remove(&self, name: &str) {
            std::fs::remove_file(self.dir.path().join(name)).expect("remove a stub");
        }
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
    }

    fn find<'a>(findings: &'a [Finding], what: &str) -> &'a Finding {
        findings.iter().find(|f| f.what.starts_with(what)).unwrap_or_else(|| panic!("no {what}"))
    }

    #[test]
    fn a_complete_machine_lacks_nothing() {
        let broker = TcpListener::bind("127.0.0.1:0").unwrap();
        let stubs = StubMachine::complete();
        let findings = examine(&stubs.machine(), &stubs.places(broker.local_addr().unwrap()));
        let missing: Vec<_> = findings.iter().filter(|f| f.found.is_err()).collect();
        // Only the optional Redis, on a closed port, is absent.
        assert_eq!(missing.len(), 1, "{missing:#?}");
        assert_eq!(missing[0].need, Need::Extra);
        assert_eq!(missing_for_tests(&findings), 0);
        let mosquitto = find(&findings, "mosquitto").found.as_ref().unwrap();
        assert!(mosquitto.ends_with(": mosquitto version 2.0.11"), "{mosquitto}");
        assert_eq!(find(&findings, "node").found, Ok("v20.20.2".to_owned()));
        assert_eq!(
            find(&findings, "Python 3.12").found,
            Ok("PYENV_VERSION=3.12.1 python3: Python 3.12.1".to_owned()),
            "python3.12 is absent, so the next candidate answers"
        );
    }

    #[test]
    fn a_program_missing_from_path_is_reported_with_its_fix() {
        let broker = TcpListener::bind("127.0.0.1:0").unwrap();
        let stubs = StubMachine::complete();
        stubs.remove("node");
        let findings = examine(&stubs.machine(), &stubs.places(broker.local_addr().unwrap()));
        assert_eq!(missing_for_tests(&findings), 1);
        assert_eq!(find(&findings, "node").found, Err("`node` is not on PATH".to_owned()));
        let report = render(&findings);
        assert!(report.contains("MISSING  node"), "{report}");
        assert!(report.contains("get it: Node.js (the pinned parser"), "{report}");
        assert!(report.contains("ok       npm"), "{report}");
    }

    #[test]
    fn a_stopped_broker_and_an_absent_mosquitto_are_missing() {
        let stubs = StubMachine::complete();
        stubs.remove("mosquitto");
        let findings = examine(&stubs.machine(), &stubs.places(closed_port()));
        assert_eq!(missing_for_tests(&findings), 2);
        let mosquitto = find(&findings, "mosquitto").found.as_ref().unwrap_err();
        assert!(mosquitto.ends_with("/mosquitto does not exist or cannot be run"), "{mosquitto}");
        let broker = find(&findings, "MQTT broker").found.as_ref().unwrap_err();
        assert!(broker.starts_with("nothing accepts connections on 127.0.0.1:"), "{broker}");
    }

    #[test]
    fn python_312_is_looked_for_as_setup_sh_does() {
        let broker = TcpListener::bind("127.0.0.1:0").unwrap();
        let stubs = StubMachine::complete();
        // A pyenv-like python3: 3.11 unless PYENV_VERSION asks for 3.12.1.
        stubs.program(
            "python3",
            "if [ \"$PYENV_VERSION\" = 3.12.1 ]; then echo 3.12.1; else echo 3.11.7; fi",
        );
        stubs.program("python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127");
        let findings = examine(&stubs.machine(), &stubs.places(broker.local_addr().unwrap()));
        assert_eq!(find(&findings, "python3").found, Ok("python3: Python 3.11.7".to_owned()));
        assert_eq!(
            find(&findings, "Python 3.12").found,
            Ok("PYENV_VERSION=3.12.1 python3: Python 3.12.1".to_owned())
        );

        stubs.program("python3", "echo 3.11.7");
        let findings = examine(&stubs.machine(), &stubs.places(broker.local_addr().unwrap()));
        let why = find(&findings, "Python 3.12").found.as_ref().unwrap_err();
        assert!(why.contains("python3.12: command not found"), "{why}");
        assert!(why.contains("python3: Python 3.11.7 is older than 3.12"), "{why}");
        assert_eq!(missing_for_tests(&findings), 1);
    }

    #[test]
    fn a_python_without_venv_is_missing() {
        let broker = TcpListener::bind("127.0.0.1:0").unwrap();
        let stubs = StubMachine::complete();
        stubs.program(
            "python3",
            "echo \"ModuleNotFoundError: No module named 'ensurepip'\" >&2; exit 1",
        );
        let findings = examine(&stubs.machine(), &stubs.places(broker.local_addr().unwrap()));
        let why = find(&findings, "python3").found.as_ref().unwrap_err();
        assert!(why.ends_with("No module named 'ensurepip'"), "{why}");
    }

    #[test]
    fn the_places_and_candidates_are_the_tests_own() {
        let places = Places::default();
        assert_eq!(places.mosquitto, switchboard_testkit::broker::MOSQUITTO);
        assert_eq!(places.mqtt_broker.to_string(), switchboard_testkit::broker::SHARED_BROKER);
        let setup = std::fs::read_to_string(crate::workspace_root().join("tests/interop/setup.sh"))
            .expect("read setup.sh");
        let listed: Vec<String> = PYTHON_312_CANDIDATES
            .iter()
            .map(|(env, program)| match env {
                Some((key, value)) => format!("\"{key}={value} {program}\""),
                None => format!("\"{program}\""),
            })
            .collect();
        let expected = format!("for candidate in {}; do", listed.join(" "));
        assert!(setup.contains(&expected), "setup.sh no longer tries `{expected}`");
    }
}
