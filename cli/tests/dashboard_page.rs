//! The deployer's dashboard page in a real browser: headless Chromium (Debian's `chromium`)
//! opens it through the local network's HTTP gateway, on an ordinary host (`?canisterId=`) and
//! a raw one (`<id>.raw.localhost`), while a rollout is paused on a failed canary; the test
//! reads the DOM after the page's scripts ran and saves a screenshot for people
//! (`target/dashboard/dashboard.png`). Needs Chromium: `CHROMIUM_BIN=/usr/bin/chromium cargo
//! test -p deployer-cli --test dashboard_page -- --ignored` (`scripts/test.sh` installs it).

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// Chromium as the machine allows it: as root without its sandbox, and without the background
/// connections a closed network refuses.
fn chromium(args: &[&str]) -> String {
    let binary = std::env::var("CHROMIUM_BIN").expect("CHROMIUM_BIN names the chromium binary");
    let profile = tempdir("chromium-profile");
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("deployer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
#[ignore = "needs Chromium: set CHROMIUM_BIN (scripts/install-chromium.sh installs it)"]
fn the_page_shows_a_paused_rollout_and_its_failure_through_the_gateway() {
    let net = TestNetwork::start("dashboard", 20);
    failing_fleet(&net);
    let started = net
        .admin(&["rollout", "start", "child@2.0.1-bad", "--json"])
        .ok()
        .json();
    let id = started["rollout_id"].as_u64().unwrap();
    let paused = wait_for(&net, id, |info| {
        info["summary"]["phase"].to_string().contains("Paused")
            && info["summary"]["counts"]["active"] == 0
    });
    let counts = &paused["summary"]["counts"];
    let canary = net
        .admin(&["rollout", "events", "--rollout", &id.to_string(), "--json"])
        .ok()
        .stdout;
    assert!(canary.contains("ChildFailed"), "{canary}");

    let port = net.url.rsplit(':').next().unwrap();
    let ordinary = format!("{}/?canisterId={}", net.url, net.deployer);
    let raw = format!("http://{}.raw.localhost:{port}/", net.deployer);
    for url in [&ordinary, &raw] {
        let dom = chromium(&["--dump-dom", url]);
        assert!(
            dom.contains(r#"data-loaded="true""#),
            "{url} did not load: {dom}"
        );
        assert!(dom.contains(&format!(r#"data-rollout="{id}""#)), "{dom}");
        for (count, value) in [
            ("failed", &counts["failed"]),
            ("upgraded", &counts["upgraded"]),
        ] {
            let shown = format!(r#"<span data-count="{count}">{value}</span>"#);
            assert!(dom.contains(&shown), "{shown} not in {dom}");
        }
        assert!(dom.contains(">paused<"), "{dom}");
        // The failure, with its reason, and a link to the child's events.
        assert!(dom.contains("Install failed after"), "{dom}");
        assert!(dom.contains("#child="), "{dom}");
        // Fleet composition: both children are on child@1.0.0 again (the canary was rolled back).
        assert!(dom.contains("child@1.0.0"), "{dom}");
    }
    // `/metrics` through the raw host, as a scraper reads it.
    let metrics = chromium(&["--dump-dom", &format!("{raw}metrics")]);
    let failed = format!(r#"deployer_rollout_children{{rollout="{id}",state="failed"}} 1 "#);
    assert!(metrics.contains(&failed), "{failed} not in {metrics}");

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("dashboard.png");
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1100,1500",
        &ordinary,
    ]);
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
}
