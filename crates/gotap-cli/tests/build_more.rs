//! `gotap build` beyond the single-module case (issue #4): Go workspaces, PGO, spans buffered
//! when main returns, and `go build -toolexec` without `gotap build`. The program is
//! crates/gotap-cli/tests/go/workspace/app: it serves one request and returns from main, so its
//! span reaches the collector only if the runtime flushes at exit (the batch delay is set to a
//! minute below).
use gotap_testkit::collector::Collector;
use gotap_testkit::{bin_dir, free_port, gotap_bin, gotap_command, repo_root, Proc, Toolchain};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Woven builds recompile the standard library: one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

const TC: Toolchain = Toolchain::Go126;

/// A fresh copy of tests/go/workspace (go.work + app + lib) in a temporary directory.
fn workspace_copy(name: &str) -> PathBuf {
    let src = repo_root().join("crates/gotap-cli/tests/go/workspace");
    let dst = std::env::temp_dir().join(format!("gotap-build-more-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    copy_tree(&src, &dst);
    dst
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Every file under `dir` with its content, to check that a build left the tree as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn run_in(dir: &Path, cmd: &mut Command) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    cmd.current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env_remove("GOTAP_WEAVE_CONFIG")
        .output()
        .unwrap()
}

fn gotap(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_in(dir, gotap_command(TC).args(args).envs(env.iter().copied()))
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs the woven app (one request, then main returns) with a batch delay of a minute; returns
/// how long it took to exit after the request, and the spans the collector then has.
fn serve_one_request(
    bin: &Path,
    name: &str,
    env: &[(&str, &str)],
) -> (Duration, Vec<(String, String)>) {
    let col = Collector::start(&format!("gotap-build-more-col-{name}"));
    let port = free_port();
    let mut child = Command::new(bin)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("OTEL_SERVICE_NAME", "oneshot")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut child = Proc(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "app said {line:?}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.contains("hello from lib"), "{resp}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the app did not return from main"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t0.elapsed();
    assert!(status.success(), "app exited with {status}");
    // The collector writes its file asynchronously: give it a moment, not the batch delay.
    let got = col.wait_for(Duration::from_secs(10), |spans| !spans.is_empty());
    (took, got.into_iter().map(|s| (s.scope, s.name)).collect())
}

fn env_off() -> [(&'static str, &'static str); 1] {
    [("GOWORK", "off")]
}

fn assert_server_span(got: &[(String, String)]) {
    assert!(
        got.iter()
            .any(|(scope, name)| scope == "gotap/net/http/server" && name == "GET"),
        "the span of the only request was not delivered when main returned: {got:?}"
    );
}

/// A two-module workspace: gotap passes a temporary go.work through GOWORK (the go command refuses
/// -modfile there); the workspace stays byte-identical, the library module is resolved through
/// the workspace, and the span of a program that returns from main right after its request is
/// flushed at exit.
#[test]
fn workspace_build_and_flush_when_main_returns() {
    let ws = workspace_copy("work");
    let before = snapshot(&ws);
    let bin = bin_dir().join("oneshot-workspace-woven");
    let o = bin.display().to_string();
    let res = gotap(&ws, &["build", "-o", &o, "./app"], &[]);
    ok(&res, "gotap build in a workspace");
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("the workspace's go line is raised from go 1.23"),
        "{err}"
    );
    assert_eq!(snapshot(&ws), before, "gotap build changed the workspace");
    let (took, got) = serve_one_request(&bin, "work", &[]);
    assert_server_span(&got);
    assert!(took < Duration::from_secs(10), "exit took {took:?}");

    // The woven binary's module list is the workspace's plus the runtime; the main module keeps
    // its own language version (go.work's go line is the one raised).
    let bi = Command::new(TC.go())
        .args(["version", "-m"])
        .arg(&bin)
        .output()
        .unwrap();
    let bi = String::from_utf8_lossy(&bi.stdout);
    assert!(
        bi.contains("dep\texample.com/lib") && bi.contains("dep\tgotap.dev/gotaprt"),
        "{bi}"
    );
    assert!(
        bi.contains("DefaultGODEBUG="),
        "GODEBUG defaults of go 1.23 expected in {bi}"
    );
    let plain = bin_dir().join("oneshot-workspace-plain");
    ok(
        &run_in(
            &ws,
            TC.command().args(["build", "-o"]).arg(&plain).arg("./app"),
        ),
        "go build",
    );
    let godebug = |text: &str| {
        text.lines()
            .find(|l| l.contains("DefaultGODEBUG="))
            .map(str::to_owned)
    };
    let pbi = Command::new(TC.go())
        .args(["version", "-m"])
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(
        godebug(&bi),
        godebug(&String::from_utf8_lossy(&pbi.stdout)),
        "DefaultGODEBUG differs from the plain build"
    );

    // gotap test in the workspace: the library's test binary links the runtime and passes.
    std::fs::write(ws.join("lib/lib_test.go"), "package lib\n\nimport \"testing\"\n\nfunc TestGreeting(t *testing.T) {\n\tif Greeting() != \"lib\" {\n\t\tt.Fatal(Greeting())\n\t}\n}\n").unwrap();
    let test_bin = bin_dir().join("lib-workspace-woven.test");
    let t = test_bin.display().to_string();
    ok(
        &gotap(&ws, &["test", "-c", "-o", &t, "./lib"], &[]),
        "gotap test -c in a workspace",
    );
    let nm = Command::new(TC.go())
        .args(["tool", "nm"])
        .arg(&test_bin)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&nm.stdout).contains("gotap.dev/gotaprt.flushAtExit"),
        "the test binary has no gotap runtime"
    );
    ok(
        &Command::new(&test_bin)
            .arg("-test.run=TestGreeting")
            .output()
            .unwrap(),
        "the woven test binary",
    );
    let _ = std::fs::remove_dir_all(&ws);
}

/// Vendoring in a workspace (`go work vendor`) is refused, naming what to do instead.
#[test]
fn workspace_vendor_dir_is_refused_clearly() {
    let ws = workspace_copy("vendor");
    std::fs::create_dir_all(ws.join("vendor")).unwrap();
    std::fs::write(ws.join("vendor/modules.txt"), "").unwrap();
    let res = gotap(&ws, &["build", "./app"], &[]);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("vendoring is not supported by gotap build")
            && err.contains("-mod=readonly")
            && err.contains("--probes")
            && err.lines().count() == 1,
        "{err}"
    );
    // The advice works: -mod=readonly builds from the module cache.
    let bin = bin_dir().join("oneshot-workspace-readonly");
    let o = bin.display().to_string();
    ok(
        &gotap(&ws, &["build", "-mod=readonly", "-o", &o, "./app"], &[]),
        "gotap build -mod=readonly with a vendor dir",
    );
    let _ = std::fs::remove_dir_all(&ws);
}

/// `-pgo=auto` with a default.pgo recorded from the program itself: PGO compiles what the weaver
/// wrote (the profile's positions are the original ones, which //line keeps), and the woven
/// program still traces and flushes at exit. Module mode (GOWORK=off).
#[test]
fn pgo_auto_and_file_builds_work() {
    let ws = workspace_copy("pgo");
    let app = ws.join("app");
    // Record a profile with a plain build of the program serving its request.
    let plain = bin_dir().join("oneshot-pgo-plain");
    ok(
        &run_in(
            &app,
            TC.command()
                .env("GOWORK", "off")
                .args(["build", "-o"])
                .arg(&plain)
                .arg("."),
        ),
        "go build",
    );
    let profile = app.join("default.pgo");
    let port = free_port();
    let mut child = Proc(
        Command::new(&plain)
            .env("ADDR", format!("127.0.0.1:{port}"))
            .env("CPUPROFILE", &profile)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Kept open until the app exits: it prints "bye" last (a closed pipe would kill it).
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    out.read_line(&mut String::new()).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    s.read_to_string(&mut String::new()).unwrap();
    assert!(child.0.wait().unwrap().success());
    assert!(std::fs::metadata(&profile).unwrap().len() > 0);

    let bin = bin_dir().join("oneshot-pgo-woven");
    let o = bin.display().to_string();
    ok(
        &gotap(&app, &["build", "-pgo=auto", "-o", &o, "."], &env_off()),
        "gotap build -pgo=auto",
    );
    let bi = Command::new(TC.go())
        .args(["version", "-m"])
        .arg(&bin)
        .output()
        .unwrap();
    let bi = String::from_utf8_lossy(&bi.stdout);
    let want = format!("-pgo={}", profile.display());
    assert!(
        bi.lines()
            .any(|l| l.contains("build\t") && l.contains(&want)),
        "no {want} in the build info:\n{bi}"
    );
    let (_, got) = serve_one_request(&bin, "pgo", &[]);
    assert_server_span(&got);

    // -pgo=FILE, a profile outside the package.
    let other = ws.join("cpu.pprof");
    std::fs::copy(&profile, &other).unwrap();
    let flag = format!("-pgo={}", other.display());
    ok(
        &gotap(&app, &["build", &flag, "-o", &o, "."], &env_off()),
        "gotap build -pgo=FILE",
    );
    let bi = Command::new(TC.go())
        .args(["version", "-m"])
        .arg(&bin)
        .output()
        .unwrap();
    let bi = String::from_utf8_lossy(&bi.stdout);
    assert!(
        bi.lines()
            .any(|l| l.contains("build\t") && l.contains(&flag)),
        "no {flag} in the build info:\n{bi}"
    );
    let (_, got) = serve_one_request(&bin, "pgo-file", &[]);
    assert_server_span(&got);
    let _ = std::fs::remove_dir_all(&ws);
}

/// `go build -toolexec='gotap toolexec'` alone weaves but links no runtime: the link fails with
/// one line saying to use `gotap build`, instead of producing a program that traces nothing.
#[test]
fn toolexec_alone_refuses_to_link_a_program_without_runtime() {
    let ws = workspace_copy("toolexec");
    let app = ws.join("app");
    let bin = bin_dir().join("oneshot-toolexec-alone");
    let res = run_in(
        &app,
        TC.command()
            .env("GOWORK", "off")
            .arg("build")
            .arg(format!("-toolexec={} toolexec", gotap_bin().display()))
            .arg("-o")
            .arg(&bin)
            .arg("."),
    );
    assert!(
        !res.status.success(),
        "the link of a program without the runtime succeeded"
    );
    let err = String::from_utf8_lossy(&res.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("does not link the gotap runtime"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("gotap build"), "{line}");
    let _ = std::fs::remove_dir_all(&ws);
}

/// `gotap build --print-goflags`: a plain `go build` with the printed GOFLAGS links the runtime
/// and traces like `gotap build`; the same inputs print the same flags (stable cache paths).
#[test]
fn print_goflags_makes_a_plain_go_build_trace() {
    let ws = workspace_copy("goflags");
    let app = ws.join("app");
    let env = [("GOWORK", "off")];
    let res = gotap(&app, &["build", "--print-goflags", "."], &env);
    ok(&res, "gotap build --print-goflags");
    let flags = String::from_utf8(res.stdout).unwrap().trim().to_owned();
    assert!(
        flags.starts_with("-modfile=")
            && flags.contains(" -overlay=")
            && flags.contains(" '-toolexec="),
        "{flags}"
    );
    let again = gotap(&app, &["build", "--print-goflags", "."], &env);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        flags,
        "not stable"
    );

    let bin = bin_dir().join("oneshot-goflags");
    let res = run_in(
        &app,
        TC.command()
            .env("GOWORK", "off")
            .env("GOFLAGS", format!("-modcacherw {flags}"))
            .arg("build")
            .arg("-o")
            .arg(&bin)
            .arg("."),
    );
    ok(&res, "go build with the printed GOFLAGS");
    let (_, got) = serve_one_request(&bin, "goflags", &[]);
    assert_server_span(&got);

    // In a workspace GOFLAGS cannot say GOWORK: refused in one sentence.
    let res = gotap(&ws, &["build", "--print-goflags", "./app"], &[]);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("--print-goflags is not supported in a workspace") && err.lines().count() == 1,
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&ws);
}

/// Probe mode: the linker's identity (`link -V=full`, part of every link's cache key) names the
/// gotap executable that writes the USDT notes, so a gotap with another site table never reuses
/// executables annotated by an older one. Two copies of gotap are two executables.
#[test]
fn probe_mode_link_identity_names_the_notes_writer() {
    let dir = std::env::temp_dir().join(format!("gotap-link-id-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.json");
    std::fs::write(
        &plan,
        r#"{"weaver":"/nonexistent","rules":[],"go_version":"go1.26","hash":"h","packages":[],"best_effort":false,"runtime_dir":"/nonexistent","probes":true}"#,
    )
    .unwrap();
    let goroot = String::from_utf8(
        TC.command()
            .args(["env", "GOROOT"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let link = Path::new(goroot.trim()).join("pkg/tool/linux_amd64/link");
    let copy = dir.join("gotap-copy");
    gotap_testkit::install_exe(&gotap_bin(), &copy);
    let id = |gotap: &Path| -> String {
        let o = Command::new(gotap)
            .arg("toolexec")
            .arg(&link)
            .arg("-V=full")
            .env("GOTAP_WEAVE_CONFIG", &plan)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let a = id(&gotap_bin());
    assert!(a.contains(" gotap-probes@") && a.contains("+notes-"), "{a}");
    assert_eq!(a, id(&gotap_bin()), "same executable, same identity");
    let b = id(&copy);
    assert_ne!(a, b, "another notes writer must key links apart");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real vendored module (`go mod vendor`): SDK mode refuses it in one line naming both ways
/// out (the go command reads vendor/modules.txt outside any overlay, docs/build.md "Vendoring"),
/// and probe mode builds it from vendor/ with the tree left as it was.
#[test]
fn vendored_module_is_refused_in_sdk_mode_and_builds_with_probes() {
    let dir = std::env::temp_dir().join(format!("gotap-build-vendored-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("go.mod"),
        "module example.com/vendored\n\ngo 1.25.0\n\nrequire golang.org/x/sys v0.30.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.go"),
        // The server is linked (so its probe site is) but not started.
        "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n\n\t\"golang.org/x/sys/unix\"\n)\n\nfunc main() {\n\tif len(os.Args) > 1 {\n\t\thttp.ListenAndServe(os.Args[1], nil)\n\t}\n\tfmt.Println(unix.Getpid(), http.StatusOK)\n}\n",
    )
    .unwrap();
    let go = |args: &[&str]| {
        run_in(
            &dir,
            TC.command()
                .args(args)
                .env("GOSUMDB", "off")
                .env("GOFLAGS", "-mod=mod -modcacherw"),
        )
    };
    ok(
        &go(&["mod", "download", "golang.org/x/sys"]),
        "go mod download",
    );
    ok(&go(&["mod", "vendor"]), "go mod vendor");
    assert!(
        dir.join("vendor/golang.org/x/sys/unix").is_dir()
            && dir.join("vendor/modules.txt").is_file()
    );
    let before = snapshot(&dir);

    let res = gotap(&dir, &["build", "-o", "/dev/null", "."], &[]);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("vendoring is not supported by gotap build")
            && err.contains("-mod=mod")
            && err.contains("--probes")
            && err.lines().count() == 1,
        "{err}"
    );
    let res = gotap(&dir, &["build", "-mod=vendor", "-o", "/dev/null", "."], &[]);
    assert_eq!(
        res.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );

    let bin = bin_dir().join("vendored-probes");
    ok(
        &gotap(
            &dir,
            &[
                "build",
                "--probes",
                "-mod=vendor",
                "-o",
                bin.to_str().unwrap(),
                ".",
            ],
            &[],
        ),
        "gotap build --probes -mod=vendor",
    );
    let out = Command::new(&bin).output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).ends_with(" 200\n"),
        "{out:?}"
    );
    let notes = String::from_utf8_lossy(
        &Command::new("readelf")
            .args(["-n"])
            .arg(&bin)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        notes.contains("http_server"),
        "no USDT notes in the vendored probe build:\n{notes}"
    );
    assert!(snapshot(&dir) == before, "the vendored tree changed");
    let _ = std::fs::remove_dir_all(&dir);
}
