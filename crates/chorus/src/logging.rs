//! Log lines in nats-server's layout: `[pid] 2026/11/27 08:00:00.123456 [INF] message`.
//! `-D` enables `[DBG]`, `-V` protocol traces `[TRC]`; `logtime: false` drops the timestamp.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use chorus_conf::Options;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct NatsFormat {
    pid: u32,
    logtime: bool,
}

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "[{}] ", self.pid)?;
        if self.logtime {
            write_utc(&mut w, SystemTime::now())?;
            w.write_char(' ')?;
        }
        let tag = match *event.metadata().level() {
            Level::ERROR => "[ERR]",
            Level::WARN => "[WRN]",
            Level::INFO => "[INF]",
            Level::DEBUG => "[DBG]",
            Level::TRACE => "[TRC]",
        };
        write!(w, "{tag} ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// `2006/01/02 15:04:05.000000` in UTC, without pulling in a calendar crate.
fn write_utc(w: &mut Writer<'_>, t: SystemTime) -> fmt::Result {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    write!(
        w,
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

pub fn init(opts: &Options) {
    let level = if opts.trace {
        tracing::level_filters::LevelFilter::TRACE
    } else if opts.debug {
        tracing::level_filters::LevelFilter::DEBUG
    } else {
        tracing::level_filters::LevelFilter::INFO
    };
    let format = NatsFormat { pid: std::process::id(), logtime: opts.logtime };
    // openraft narrates every election and unreachable peer at info and error: Chorus logs
    // what an operator needs itself (leaders, membership, failures); openraft's own lines
    // only with tracing on.
    let raft = if opts.trace { "openraft=warn" } else { "openraft=off" };
    let filter = tracing_subscriber::EnvFilter::new(format!("{level},{raft}"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).event_format(format);
    let file = opts.log_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("chorus: cannot open log file {}: {e}", p.display()))
            .ok()
    });
    match file {
        Some(f) => builder.with_writer(std::sync::Mutex::new(f)).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}
