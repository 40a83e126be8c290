//! The rthub binary as a child process, for tests that need what only a process has: its log
//! output, its open-file limit, its exit.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    output: Arc<Mutex<String>>,
    dir: std::path::PathBuf,
}

/// Start `rthub --listen 127.0.0.1:0` on a fresh SQLite file with `args`, through `sh -c` with
/// `prefix` before the binary (e.g. `ulimit -n 64;`), and wait for its listening line.
pub fn spawn(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    let dir = std::env::temp_dir().join(format!("rthub_proc_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}", dir.join("rthub.db").display());
    let mut command_line = format!(
        "{prefix} exec '{}' --listen 127.0.0.1:0 --database '{database}'",
        env!("CARGO_BIN_EXE_rthub")
    );
    for arg in args {
        command_line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&command_line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("RTHUB_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let _ = tx.send(line[at + "listening on ".len()..].trim().to_owned());
            }
            let mut out = sink.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let origin = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(origin) => origin,
        Err(_) => {
            let _ = child.kill();
            panic!("rthub did not start:\n{}", output.lock().unwrap());
        }
    };
    Process {
        child,
        origin,
        output,
        dir,
    }
}

impl Process {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Everything the process printed so far, stdout and stderr.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Wait until the output contains `text`, at most `wait`.
    pub fn wait_for_output(&self, text: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.output().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stop the process (SIGTERM, then SIGKILL) and return all it printed.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader threads end at EOF; give them a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(&self.dir);
        self.output()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
