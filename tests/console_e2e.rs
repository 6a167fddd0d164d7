//! The real binary in a real terminal (tmux): opens on the lab fleet grouped by region,
//! filters, shows help, quits cleanly.

#[path = "support/lab.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str, w: u16, h: u16) -> Self {
        let socket = format!("pgshift-e2e-{}", std::process::id());
        let st = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "e2e",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                cmd,
            ])
            .status()
            .expect("tmux (scripts/install-deps installs it)");
        assert!(st.success(), "tmux new-session");
        Self { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "e2e"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "e2e"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(st.success());
    }

    /// Wait until the screen satisfies `ok`, or fail showing the last screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "has-session", "-t", "e2e"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn console_opens_on_the_lab_fleet_filters_and_quits() {
    let lab = support::lab();
    let cmd = format!(
        "env PGSHIFT_STATE_DIR={} PGSHIFT_LAB_PORT13={} PGSHIFT_LAB_PORT15={} XDG_CONFIG_HOME={} {}",
        lab.state.display(),
        support::PORT13,
        support::PORT15,
        lab.state.join("no-config").display(),
        support::bin()
    );
    let t = Tmux::start(&cmd, 120, 40);
    let s = t.wait_for("the fleet grouped by region", |s| {
        s.contains("▾ ch-zrh") && s.contains("▾ ch-gva") && s.contains("▾ de-fra")
    });
    assert!(s.contains("28 apps · 23 candidates"), "{s}");
    assert!(s.contains("ledger-live") && s.contains("9.6 ⚠"), "{s}");

    t.keys(&["/", "clinic", "Enter"]);
    // "cl" alone already shows 2 apps: wait for the whole filter, applied (no input cursor).
    let s = t.wait_for("the applied filter", |s| {
        s.contains("filter: clinic · 2 shown")
    });
    assert!(
        s.contains("clinic-live") && s.contains("clinic-stage"),
        "{s}"
    );
    assert!(!s.contains("shop-live"), "{s}");
    assert!(
        s.contains("image libpq 9.6 cannot do SCRAM"),
        "hint for the selected app: {s}"
    );

    // One key at a time after esc: a terminal can't tell esc-then-? from alt-?.
    t.keys(&["Escape"]);
    t.wait_for("the filter cleared", |s| s.contains("28 shown"));
    t.keys(&["?"]);
    t.wait_for("help", |s| s.contains("Keys — esc closes"));
    t.keys(&["Escape"]);
    t.wait_for("help closed", |s| !s.contains("Keys — esc closes"));
    t.keys(&["Tab"]);
    let s = t.wait_for("one region", |s| s.contains("Apps · ch-zrh · 10 shown"));
    assert!(!s.contains("clinic-live"), "{s}");

    t.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!t.alive(), "q quits the console");
}
