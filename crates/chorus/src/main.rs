//! `chorus`: the server binary. It takes nats-server's flags and config files, so it can be
//! renamed `nats-server` and scripts keep working; `chorus --dev` starts a single node with
//! everything that exists turned on and no configuration.
//!
//! Signals, as nats-server: SIGINT/SIGTERM shut down gracefully, SIGUSR2 enters lame-duck
//! mode, SIGHUP reloads the config file, SIGUSR1 reopens the log file. `--signal` sends them
//! to a running server.

mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chorus_conf::Options;
use chorus_conf::flags::{self, Cli, Command};
use chorus_server::Server;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match flags::parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}", flags::usage());
            return ExitCode::from(1);
        }
    };
    match cmd {
        Command::Help => {
            println!("{}", flags::usage());
            ExitCode::SUCCESS
        }
        Command::HelpTls => {
            println!("{TLS_USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!(
                "chorus: v{} (nats-server compatible: v{})",
                chorus_server::info::CHORUS_VERSION,
                chorus_server::info::COMPAT_VERSION
            );
            ExitCode::SUCCESS
        }
        Command::Signal { signal, pid } => match send_signal(&signal, pid.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::from(1)
            }
        },
        Command::TestConfig(cli) => match load_options(&cli) {
            Ok(o) if let Err(e) = chorus_server::check_accounts(&o) => {
                eprintln!("chorus: {e}");
                ExitCode::from(1)
            }
            Ok(_) => {
                let f = cli.config_file.as_ref().map(|p| p.display().to_string());
                println!("chorus: configuration file {} is valid", f.unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chorus: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Run(cli) => {
            let opts = match load_options(&cli) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("chorus: {e:#}");
                    return ExitCode::from(1);
                }
            };
            logging::init(&opts);
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("chorus: cannot start runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match rt.block_on(run(cli, opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

const TLS_USAGE: &str = "TLS Options:
    --tls                        Enable TLS, do not verify clients (default: false)
    --tlscert <file>             Server certificate file
    --tlskey <file>              Private key for server certificate
    --tlsverify                  Enable TLS, verify client certificates
    --tlscacert <file>           Client certificate CA for verification";

/// Config file first, then flags on top (flags win, as in nats-server), then `--dev`
/// defaults for whatever neither set.
fn load_options(cli: &Cli) -> Result<Options> {
    let mut opts = match &cli.config_file {
        Some(path) => {
            let (opts, warnings) = Options::from_file(path)
                .with_context(|| format!("configuration file {}", path.display()))?;
            for w in warnings {
                eprintln!("chorus: warning: {w}");
            }
            opts
        }
        None => Options::default(),
    };
    if cli.dev {
        apply_dev_defaults(&mut opts);
    }
    cli.apply(&mut opts);
    opts.validate().context("invalid configuration")?;
    Ok(opts)
}

/// `--dev`: everything that exists turned on, nothing to configure. Monitoring on 8222,
/// WebSocket on 8080 without TLS (for nats.ws in a browser on the same machine); JetStream
/// with its store in ./.chorus.
fn apply_dev_defaults(opts: &mut Options) {
    if opts.http_port.is_none() {
        opts.http_port = Some(8222);
    }
    if opts.websocket.as_ref().is_none_or(|w| w.port.is_none()) {
        // No host: the client listener's, so `--dev -a 127.0.0.1` keeps both on loopback.
        opts.websocket = Some(chorus_conf::WebsocketOptions {
            port: Some(8080),
            no_tls: true,
            ..Default::default()
        });
    }
    if opts.server_name.is_empty() {
        opts.server_name = "chorus-dev".to_string();
    }
    opts.jetstream.enabled = true;
    if opts.jetstream.store_dir.is_none() {
        opts.jetstream.store_dir = Some(std::path::PathBuf::from("./.chorus"));
    }
}

async fn run(cli: Cli, opts: Options) -> Result<()> {
    tracing::info!(
        "Starting chorus v{} (nats-server v{} compatible)",
        chorus_server::info::CHORUS_VERSION,
        chorus_server::info::COMPAT_VERSION
    );
    if let Some(f) = &opts.config_file {
        tracing::info!("Using configuration file: {}", f.display());
    }
    if let Some(pid_file) = &opts.pid_file {
        std::fs::write(pid_file, std::process::id().to_string())
            .with_context(|| format!("writing pid file {}", pid_file.display()))?;
    }
    let server = Server::start(opts.clone()).await?;
    if cli.dev {
        println!("chorus --dev is up:");
        println!("  clients     {}", server.client_url());
        if let Some(ws) = server.websocket_url() {
            println!("  websocket   {ws}   (nats.ws: connect({{servers: \"{ws}\"}}))");
        }
        if let Some(m) = server.monitor_addr() {
            println!("  monitoring  http://127.0.0.1:{}/varz", m.port());
        }
        let js = chorus_server::jetstream::store_dir(&opts);
        println!("  jetstream   streams in {} (consumers: not yet)", js.display());
    }

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    let mut sigusr2 = signal(SignalKind::user_defined2())?;
    loop {
        tokio::select! {
            _ = sigint.recv() => {
                tracing::info!("Trapped \"interrupt\" signal");
                break;
            }
            _ = sigterm.recv() => {
                tracing::info!("Trapped \"terminated\" signal");
                break;
            }
            _ = sigusr2.recv() => {
                tracing::info!("Trapped \"user defined signal 2\" signal");
                server.lame_duck().await;
                remove_pid_file(&opts.pid_file);
                return Ok(());
            }
            _ = sigusr1.recv() => {
                tracing::info!("Trapped \"user defined signal 1\" signal: log file reopened");
            }
            _ = sighup.recv() => {
                tracing::info!("Trapped \"hangup\" signal");
                match reload_options(&cli) {
                    Ok(new) => {
                        if let Err(e) = server.reload(new) {
                            tracing::error!("Failed to reload server configuration: {e}");
                        }
                    }
                    Err(e) => tracing::error!("Failed to reload server configuration: {e:#}"),
                }
            }
        }
    }
    server.shutdown().await;
    remove_pid_file(&opts.pid_file);
    Ok(())
}

fn reload_options(cli: &Cli) -> Result<Options> {
    if cli.config_file.is_none() {
        anyhow::bail!("config reload not supported without a configuration file");
    }
    load_options(cli)
}

fn remove_pid_file(p: &Option<PathBuf>) {
    if let Some(p) = p {
        let _ = std::fs::remove_file(p);
    }
}

/// `--signal stop|quit|term|reopen|reload|ldm[=<pid or pid file>]`.
fn send_signal(name: &str, pid: Option<&str>) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let sig = match name {
        "stop" | "quit" | "term" => Signal::SIGTERM,
        "reopen" => Signal::SIGUSR1,
        "reload" => Signal::SIGHUP,
        "ldm" => Signal::SIGUSR2,
        "kill" => Signal::SIGKILL,
        other => anyhow::bail!("unknown signal \"{other}\""),
    };
    let pids: Vec<i32> = match pid {
        Some(p) => match p.parse() {
            Ok(n) => vec![n],
            Err(_) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("pid file {p}"))?;
                vec![text.trim().parse().with_context(|| format!("pid in {p}"))?]
            }
        },
        None => find_servers()?,
    };
    match pids.len() {
        0 => anyhow::bail!("no chorus process running"),
        1 => {}
        _ => anyhow::bail!(
            "multiple chorus processes running ({pids:?}): name one with --signal {name}=<pid>"
        ),
    }
    kill(Pid::from_raw(pids[0]), sig).with_context(|| format!("signal {name} to {}", pids[0]))?;
    Ok(())
}

/// Other processes running this same executable, as nats-server's `pgrep` lookup does.
fn find_servers() -> Result<Vec<i32>> {
    let me = std::process::id() as i32;
    let exe = std::env::current_exe()?;
    let name = exe.file_name().map(|n| n.to_os_string());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(target) = std::fs::read_link(entry.path().join("exe"))
            && target.file_name().map(|n| n.to_os_string()) == name
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}
