//! A ClickHouse server of the test's own (same package and project config as
//! the local stack, other ports and a temporary data folder), for tests that
//! stop and restart the server without disturbing tests running beside them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct OwnClickHouse {
    dir: PathBuf,
    pub http_port: u16,
    tcp_port: u16,
    child: Option<Child>,
}

impl OwnClickHouse {
    pub fn start(name: &str) -> OwnClickHouse {
        let dir = std::env::temp_dir().join(format!("dvc-e2e-clickhouse-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = OwnClickHouse { dir, http_port: free_port(), tcp_port: free_port(), child: None };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts the server on the same data folder and waits until it answers.
    pub fn resume(&mut self) {
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/local/clickhouse/config.xml");
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        let log = std::fs::File::create(self.dir.join("stdout.log")).unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", config.display()))
            .arg("--")
            .arg(format!("--http_port={}", self.http_port))
            .arg(format!("--tcp_port={}", self.tcp_port))
            .arg(format!("--path={}/", d("data")))
            .arg(format!("--tmp_path={}/", d("tmp")))
            .arg(format!("--user_files_path={}/", d("user_files")))
            .arg(format!("--format_schema_path={}/", d("format_schemas")))
            .arg(format!("--logger.log={}", d("server.log")))
            .arg(format!("--logger.errorlog={}", d("server.err.log")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("clickhouse-server starts (make deps installs it)");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ping = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_ok();
            if ping {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "own ClickHouse did not start; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server at once (SIGKILL), as a crash or a pulled plug would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnClickHouse {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
