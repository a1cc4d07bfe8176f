//! The `anthill` binary as a user runs it: `check` prints diagnostics and a summary and sets the exit code.

use std::path::Path;
use std::process::Command;

fn anthill(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anthill"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run anthill");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_bundled_domains_passes() {
    let (code, stdout, stderr) = anthill(&["check", "domains/"]);
    assert_eq!(code, 0, "{stderr}");
    let domains = std::fs::read_dir("domains")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sexp"))
        .count();
    let plural = if domains == 1 { "" } else { "s" };
    assert_eq!(stdout, format!("checked {domains} domain{plural}: 0 errors, 0 warnings\n"));
}

#[test]
fn check_reports_errors_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("anthill-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.sexp");
    std::fs::write(&bad, "(domain bad\n  (id thing-id)\n  (aggregate thing (key thing-id) (state (n u23 0))))\n")
        .unwrap();
    let (code, stdout, stderr) = anthill(&["check", "--color", "never", bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1);
    assert_eq!(stdout, "checked 1 domain: 1 error, 0 warnings\n");
    assert!(stderr.contains("error[E0201]: unknown type `u23`"), "{stderr}");
    assert!(stderr.contains("bad.sexp:3:45"), "{stderr}");
    assert!(stderr.contains("help: did you mean `u32`?"), "{stderr}");
}

#[test]
fn check_missing_path_is_a_usage_error() {
    let (code, _, stderr) = anthill(&["check", "no/such/dir"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no/such/dir: no such file or directory"), "{stderr}");
}

#[test]
fn explain_prints_a_code() {
    let (code, stdout, _) = anthill(&["explain", "e0201"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("E0201 (error): unknown type"), "{stdout}");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/diagnostics.md").exists(),
        "explain refers to docs/diagnostics.md"
    );
}

/// `anthill serve` on a free port of its own, on the stores in `data`.
struct Served {
    child: std::process::Child,
    address: String,
}

impl Served {
    fn start(data: &Path) -> Served {
        Served::start_with(data, &[])
    }

    fn start_with(data: &Path, options: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_anthill"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
            .args(options)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run anthill serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        // The server logs the address it listens on once it is ready.
        let address = loop {
            let line = lines.next().expect("the server logs where it listens").unwrap();
            if let Some(at) = line.find("on http://") {
                break line[at + "on http://".len()..].split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Served { child, address }
    }

    /// One request, `Connection: close`: the status and the body.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.address).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
    }

    /// Stops the server as an operator does (SIGTERM) and returns its exit code.
    fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn store_commands_read_beside_a_running_server_rebuild_through_it_and_alone() {
    use std::io::{BufRead, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Served::start(dir.path());
    let (status, body) = server.call("POST", "/ledger/account/acc-1/open", r#"{"owner": "ann", "overdraft-limit": 0}"#);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.call("POST", "/ledger/account/acc-1/deposit", r#"{"amount": "2.50"}"#);
    assert_eq!(status, 200);
    // The global feed has both once the server's indexer took them (the long poll waits for the first).
    let (_, page) = server.call("GET", "/events?since=0&wait_ms=30000", "");
    let mut seen = serde_json::from_str::<serde_json::Value>(&page).unwrap()["events"].as_array().unwrap().len();
    while seen < 2 {
        let (_, page) = server.call("GET", &format!("/events?since={seen}&wait_ms=30000"), "");
        seen += serde_json::from_str::<serde_json::Value>(&page).unwrap()["events"].as_array().unwrap().len();
    }

    // Reads, beside the running server (another process).
    let (code, stdout, stderr) = anthill(&["state", "account", "acc-1", "--data", data]);
    assert_eq!(code, 0, "{stderr}");
    let state: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((state["version"].as_u64(), state["state"]["balance"].as_str()), (Some(2), Some("2.50")));
    let (code, stdout, stderr) = anthill(&["events", "--domain", "ledger", "--data", data]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    assert_eq!(events.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(events[1]["event"]["type"], "deposited");
    assert!(stderr.contains("events: 2/2, done"), "plain progress lines off a terminal: {stderr}");
    let (code, stdout, stderr) = anthill(&["events", "--data", data, "--since", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0]["seq"].as_u64(), events[0]["domain"].as_str()), (Some(2), Some("ledger")));

    // Bad names: exit 2, with the valid ones.
    let (code, _, stderr) = anthill(&["state", "acount", "acc-1", "--data", data]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no aggregate `acount`") && stderr.contains("`ledger/account`"), "{stderr}");
    let (code, _, stderr) = anthill(&["events", "--domain", "nowhere", "--data", data]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`ledger`"), "{stderr}");
    let (code, _, stderr) = anthill(&["rebuild-view", "nope", "--data", data]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`ledger/account-activity`"), "{stderr}");

    // Writers: refused beside the server, naming it; through the server with --http.
    let (code, _, stderr) = anthill(&["rebuild-view", "account-activity", "--data", data]);
    assert_eq!(code, 1);
    assert!(stderr.contains("the store is in use") && stderr.contains("--http"), "{stderr}");
    assert!(stderr.contains(&format!("process {}", server.child.id())), "{stderr}");
    let (code, _, stderr) = anthill(&["serve", "--listen", "127.0.0.1:0", "--data", data]);
    assert_eq!(code, 1);
    assert!(stderr.contains("anthill.lock"), "{stderr}");
    let url = format!("http://{}", server.address);
    let (code, stdout, stderr) = anthill(&["rebuild-view", "account-activity", "--data", data, "--http", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""events":2"#), "{stdout}");

    // `events --follow` prints what there is, then new events as they come (here: through the server's index).
    let mut follow = Command::new(env!("CARGO_BIN_EXE_anthill"))
        .args(["events", "--follow", "--data", data])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut followed = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    for seq in 1..=2 {
        let line: serde_json::Value = serde_json::from_str(&followed.next().unwrap().unwrap()).unwrap();
        assert_eq!(line["seq"], seq);
    }
    let (status, _) = server.call("POST", "/ledger/account/acc-2/open", r#"{"owner": "bob", "overdraft-limit": 0}"#);
    assert_eq!(status, 200);
    let line: serde_json::Value = serde_json::from_str(&followed.next().unwrap().unwrap()).unwrap();
    assert_eq!((line["seq"].as_u64(), line["id"].as_str()), (Some(3), Some("acc-2")));
    follow.kill().unwrap();
    follow.wait().unwrap();

    // A shutdown ends open event streams instead of waiting for them.
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    stream.write_all(b"GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut text = String::new();
    while !text.contains("id: 2") {
        assert!(reader.read_line(&mut text).unwrap() > 0, "the stream is open: {text}");
    }
    assert_eq!(server.terminate(), Some(0));
    reader.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("text/event-stream"), "{text}");

    // Without a server, the store's owner is free: the command rebuilds on its own.
    let (code, stdout, stderr) = anthill(&["rebuild-view", "account-activity", "--data", data]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""events":3"#), "{stdout}");
    assert!(stderr.contains("rebuilding: 3/3, done"), "{stderr}");
    let (code, stdout, _) = anthill(&["events", "--data", data, "--limit", "1"]);
    assert_eq!((code, lines(&stdout).len()), (0, 1));
}

#[test]
fn events_follow_keeps_reading_while_the_server_grows_its_map() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // A 1 MiB map: the commands below fill it several times over, so the server doubles it several times.
    let server = Served::start_with(dir.path(), &["--map-size-mb", "1", "--partitions", "1"]);
    let (status, body) = server.call("POST", "/ledger/account/acc-0/open", r#"{"owner": "ann", "overdraft-limit": 0}"#);
    assert_eq!(status, 200, "{body}");
    let mut follow = Command::new(env!("CARGO_BIN_EXE_anthill"))
        .args(["events", "--follow", "--domain", "ledger", "--data", data])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut followed = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&followed.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);

    let (requests, per_request) = (12, 1_000);
    for request in 0..requests {
        let items: Vec<serde_json::Value> = (0..per_request)
            .map(|i| {
                serde_json::json!({
                    "aggregate": "account",
                    "id": format!("acc-{request}-{i}"),
                    "command": "open",
                    "body": {"owner": "someone with a fairly long name, to fill pages", "overdraft-limit": 0},
                })
            })
            .collect();
        let (status, body) = server.call("POST", "/ledger/commands", &serde_json::Value::from(items).to_string());
        assert_eq!(status, 200, "{body}");
    }
    let map_files: u64 = std::fs::read_dir(dir.path().join("ledger"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    assert!(map_files > 2 << 20, "the store outgrew its first map: {map_files} bytes");

    // Every event, in order, including those written after the server grew the map.
    let last = 1 + requests * per_request;
    for seq in 2..=last {
        let line = followed.next().expect("events --follow is still running").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["seq"], seq, "{line}");
    }
    follow.kill().unwrap();
    let _ = follow.wait();
    assert_eq!(server.terminate(), Some(0));
}
