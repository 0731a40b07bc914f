//! `--flag value` / `--flag=value` parsing. Every flag takes a value; a flag given twice keeps
//! the last value; any flag left unread by the subcommand is an error, so a typo in the harness
//! fails loudly instead of silently running with a default.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

#[derive(Debug)]
pub struct Args {
    flags: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(argv: &[String]) -> Result<Self> {
        let mut flags = BTreeMap::new();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?} (flags are --name value)");
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = it.next().with_context(|| format!("--{name} needs a value"))?;
                    (name.to_string(), v.clone())
                }
            };
            flags.insert(name, value);
        }
        Ok(Self { flags })
    }

    pub fn string(&mut self, name: &str) -> Result<String> {
        self.flags.remove(name).with_context(|| format!("--{name} is required"))
    }

    pub fn string_or(&mut self, name: &str, default: &str) -> String {
        self.flags.remove(name).unwrap_or_else(|| default.to_string())
    }

    pub fn u64(&mut self, name: &str) -> Result<u64> {
        let v = self.string(name)?;
        parse_u64(name, &v)
    }

    pub fn u64_or(&mut self, name: &str, default: u64) -> Result<u64> {
        match self.flags.remove(name) {
            Some(v) => parse_u64(name, &v),
            None => Ok(default),
        }
    }

    /// Rejects flags no subcommand asked for.
    pub fn finish(self) -> Result<()> {
        if let Some(name) = self.flags.keys().next() {
            bail!("unknown flag --{name}");
        }
        Ok(())
    }
}

fn parse_u64(name: &str, v: &str) -> Result<u64> {
    let n: u64 = v.replace('_', "").parse().with_context(|| format!("--{name} {v:?}"))?;
    if n == 0 {
        bail!("--{name} must be positive");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn both_spellings_and_defaults() {
        let mut a = Args::parse(&argv("--count 10 --url=nats://x:1 --size 1_024")).unwrap();
        assert_eq!(a.u64("count").unwrap(), 10);
        assert_eq!(a.string("url").unwrap(), "nats://x:1");
        assert_eq!(a.u64_or("size", 16).unwrap(), 1024);
        assert_eq!(a.u64_or("warmup", 7).unwrap(), 7);
        a.finish().unwrap();
    }

    #[test]
    fn errors() {
        assert!(Args::parse(&argv("count 1")).is_err());
        assert!(Args::parse(&argv("--count")).is_err());
        let mut a = Args::parse(&argv("--count x --zero 0")).unwrap();
        assert!(a.u64("count").is_err());
        assert!(a.u64("zero").is_err());
        assert!(a.string("missing").is_err());
        let a = Args::parse(&argv("--extra 1")).unwrap();
        assert!(a.finish().is_err());
    }
}
