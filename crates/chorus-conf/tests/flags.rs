//! nats-server's command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chorus_conf::flags::{Cli, Command, FlagError, parse_args, usage};
use chorus_conf::{Options, parse_str};

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn run(s: &str) -> Cli {
    match parse_args(args(s)) {
        Ok(Command::Run(cli)) => cli,
        other => panic!("{s:?}: {other:?}"),
    }
}

#[test]
fn every_go_flag_spelling() {
    for s in ["-p 4333", "--p 4333", "-p=4333", "--port=4333", "-port 4333", "--port 4333"] {
        assert_eq!(run(s).port, Some(4333), "{s}");
    }
    for s in ["-D", "--D", "-debug", "--debug=true", "-D=1", "-D=T"] {
        assert_eq!(run(s).debug, Some(true), "{s}");
    }
    assert_eq!(run("-D=false").debug, Some(false));
    assert_eq!(run("-p 0x10").port, Some(16));
    // A value may itself start with a dash.
    assert_eq!(run("--pass -secret-").pass.as_deref(), Some("-secret-"));
}

#[test]
fn all_server_flags() {
    let cli =
        run("-a 127.0.0.1 -n srv -c /etc/c.conf -m 8222 -ms 8443 -js -sd /data -l /tmp/l.log \
         -P /tmp/p.pid -DV -T=false --user u --pass p --auth tok --routes nats://a:1,nats://b:2 \
         --cluster nats://0.0.0.0:6222 --cluster_name c1 --client_advertise adv:4222 \
         --ports_file_dir /tmp --tls --tlscert c.pem --tlskey k.pem --tlscacert ca.pem \
         --tlsverify --dev --no_advertise --connect_retries 3 --profile 6060");
    assert_eq!(cli.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(cli.server_name.as_deref(), Some("srv"));
    assert_eq!(cli.config_file.as_deref(), Some(Path::new("/etc/c.conf")));
    assert_eq!((cli.http_port, cli.https_port), (Some(8222), Some(8443)));
    assert_eq!((cli.jetstream, cli.store_dir.as_deref()), (Some(true), Some(Path::new("/data"))));
    assert_eq!((cli.debug, cli.trace, cli.logtime), (Some(true), Some(true), Some(false)));
    assert_eq!(cli.auth.as_deref(), Some("tok"));
    assert_eq!(cli.cluster_listen.as_deref(), Some("nats://0.0.0.0:6222"));
    assert!(cli.dev);
    assert_eq!(cli.connect_retries, Some(3));
    let cli = run("-VV -n a --name b --server_name c");
    assert_eq!((cli.trace, cli.trace_verbose), (Some(true), Some(true)));
    assert_eq!(cli.server_name.as_deref(), Some("c"), "the last one wins");
}

#[test]
fn commands() {
    assert_eq!(parse_args(args("-v")), Ok(Command::Version));
    assert_eq!(parse_args(args("--version -p 1")), Ok(Command::Version));
    assert_eq!(parse_args(args("-h")), Ok(Command::Help));
    assert_eq!(parse_args(args("help")), Ok(Command::Help));
    assert_eq!(parse_args(args("-p 1 version")), Ok(Command::Version));
    assert_eq!(parse_args(args("--help_tls")), Ok(Command::HelpTls));
    assert_eq!(
        parse_args(args("-sl reload=/var/run/x.pid")),
        Ok(Command::Signal { signal: "reload".into(), pid: Some("/var/run/x.pid".into()) })
    );
    assert_eq!(
        parse_args(args("--signal ldm")),
        Ok(Command::Signal { signal: "ldm".into(), pid: None })
    );
    let Ok(Command::TestConfig(cli)) = parse_args(args("-t -c x.conf")) else { panic!() };
    assert_eq!(cli.config_file, Some(PathBuf::from("x.conf")));
    assert_eq!(parse_args(Vec::<String>::new()), Ok(Command::Run(Cli::default())));
}

#[test]
fn flag_errors() {
    assert_eq!(parse_args(args("-x")), Err(FlagError::Undefined("x".into())));
    assert_eq!(parse_args(args("-p")), Err(FlagError::NeedsArgument("p".into())));
    assert!(matches!(parse_args(args("-p abc")), Err(FlagError::InvalidValue { .. })));
    assert!(matches!(parse_args(args("-D=maybe")), Err(FlagError::InvalidValue { .. })));
    // Go's flag package: a bare word ends the flags; `-D false` leaves "false" behind.
    assert_eq!(parse_args(args("-D false")), Err(FlagError::UnrecognizedCommand("false".into())));
    assert_eq!(
        parse_args(args("-t")).unwrap_err().to_string(),
        "must specify [-c, --config] option to check configuration file syntax"
    );
    assert!(parse_args(args("-sl bogus")).unwrap_err().to_string().contains("unknown signal"));
    assert!(parse_args(args("-sl stop=1=2")).is_err());
    assert_eq!(
        parse_args(args("--tls --tlskey k.pem")).unwrap_err().to_string(),
        "TLS Server certificate must be present and valid"
    );
    // `-tls=false` disables TLS whatever comes with it.
    assert!(parse_args(args("--tlskey k.pem --tls=false")).is_ok());
    assert_eq!(parse_args(args("---p 1")), Err(FlagError::BadSyntax("---p".into())));
    assert_eq!(FlagError::Undefined("x".into()).to_string(), "flag provided but not defined: -x");
}

#[test]
fn flags_override_the_config_file() {
    let map = parse_str(
        "port: 5000\ndebug: true\nserver_name: file\ntls { cert_file: a, key_file: b, timeout: 3 }\ncluster { name: c, port: 6222, routes: [\"nats://x:6222\"] }\njetstream: enabled",
        None,
    )
    .unwrap();
    let (mut o, _) = Options::from_map(&map).unwrap();
    let cli = run(
        "-p 4333 -D=false --cluster_name flagged --routes nats://y:1,nats://z:2 -js=false --user u --pass p",
    );
    cli.apply_checked(&mut o).unwrap();
    assert_eq!(o.port, 4333);
    assert!(!o.debug);
    assert_eq!(o.server_name, "file", "not given, kept");
    let c = o.cluster.as_ref().unwrap();
    assert_eq!(c.name.as_deref(), Some("flagged"));
    assert_eq!(c.routes, ["nats://y:1", "nats://z:2"]);
    assert!(!o.jetstream.enabled);
    assert_eq!(o.authorization.user.as_deref(), Some("u"));
    assert_eq!(o.tls.as_ref().unwrap().timeout, Duration::from_secs(3));

    // TLS flags replace the file's TLS block; -tls=false removes it.
    let mut o2 = o.clone();
    run("--tlscert c.pem --tlskey k.pem --tlsverify").apply(&mut o2);
    let t = o2.tls.unwrap();
    assert_eq!((t.cert_file, t.verify), (Some(PathBuf::from("c.pem")), true));
    let mut o3 = o.clone();
    run("--tls=false").apply(&mut o3);
    assert!(o3.tls.is_none());

    // --cluster with credentials, and an empty one disabling clustering.
    let mut o4 = o.clone();
    run("--cluster nats://ru:rp@127.0.0.1:7244").apply(&mut o4);
    let c = o4.cluster.unwrap();
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(7244)));
    assert_eq!((c.user.as_deref(), c.password.as_deref()), (Some("ru"), Some("rp")));
    let mut o5 = o.clone();
    run("--cluster=").apply(&mut o5);
    assert_eq!(o5.cluster.unwrap().port, None);

    // Routes need a cluster listener.
    let mut plain = Options::default();
    let e = run("--routes nats://a:1").apply_checked(&mut plain).unwrap_err();
    assert_eq!(e.to_string(), "solicited routes require cluster capabilities, e.g. --cluster");
    // -m -1: a random monitoring port; -p 0: the default port.
    let mut o6 = Options::default();
    run("-m -1 -p 0").apply(&mut o6);
    assert_eq!((o6.http_port, o6.port), (Some(0), 4222));
}

#[test]
fn usage_names_chorus_in_nats_layout() {
    let u = usage();
    assert!(u.contains("Usage: chorus [options]"));
    for section in [
        "Server Options:",
        "Logging Options:",
        "JetStream Options:",
        "TLS Options:",
        "Cluster Options:",
        "Common Options:",
    ] {
        assert!(u.contains(section), "{section}");
    }
    assert!(u.contains("--dev"));
    assert!(!u.contains("nats-server"));
}
