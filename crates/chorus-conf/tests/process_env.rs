//! `$VAR` references read the real process environment.
//!
//! The workspace forbids `unsafe`, and `std::env::set_var` is unsafe, so the test runs
//! itself again as a child process with the variables set.

use std::path::Path;
use std::process::Command;

const CHILD_FLAG: &str = "CHORUS_CONF_PROCESS_ENV_CHILD";

#[test]
fn variables_come_from_the_process_environment() {
    if std::env::var_os(CHILD_FLAG).is_some() {
        return child();
    }
    let unique = format!("CHORUS_CONF_TEST_{}", std::process::id());
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "variables_come_from_the_process_environment", "--nocapture"])
        .env(CHILD_FLAG, &unique)
        .env(&unique, "4555")
        .env("BROWSER_PASSWORD", "from-process-env")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHILD-CHECKED"));
}

fn child() {
    let unique = std::env::var(CHILD_FLAG).unwrap();
    let map = chorus_conf::parse_str(&format!("port: ${unique}"), None).unwrap();
    let (o, _) = chorus_conf::Options::from_map(&map).unwrap();
    assert_eq!(o.port, 4555);

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/choiros.conf");
    let src = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"$BROWSER_PASSWORD\"", "$BROWSER_PASSWORD");
    let (o, _) =
        chorus_conf::Options::from_map(&chorus_conf::parse_str(&src, None).unwrap()).unwrap();
    assert_eq!(o.authorization.users[0].password, "from-process-env");
    println!("CHILD-CHECKED");
}
