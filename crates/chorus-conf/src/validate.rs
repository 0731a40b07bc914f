//! Rules across options that nats-server checks before it starts (`validateOptions`).

use crate::auth::{CONNECTION_TYPES, Permissions, check_subjects};
use crate::convert::is_valid_subject;
use crate::duration::format_go_duration;
use crate::error::ConfError;
use crate::options::{DEFAULT_SYSTEM_ACCOUNT, Options};

fn fail<T>(msg: impl Into<String>) -> Result<T, ConfError> {
    Err(ConfError::Validation(msg.into()))
}

fn check_permissions(p: &Option<Permissions>) -> Result<(), String> {
    let Some(p) = p else { return Ok(()) };
    if let Some(pb) = &p.publish {
        check_subjects(&pb.allow, false).map_err(|e| format!("publish allow: {e}"))?;
        check_subjects(&pb.deny, false).map_err(|e| format!("publish deny: {e}"))?;
    }
    if let Some(sb) = &p.subscribe {
        check_subjects(&sb.allow, true).map_err(|e| format!("subscribe allow: {e}"))?;
        check_subjects(&sb.deny, true).map_err(|e| format!("subscribe deny: {e}"))?;
    }
    Ok(())
}

fn check_connection_types(types: &[String]) -> Result<(), ConfError> {
    for t in types {
        if !CONNECTION_TYPES.contains(&t.to_ascii_uppercase().as_str()) {
            return fail(format!("unknown connection type {t:?}"));
        }
    }
    Ok(())
}

/// An absolute `http(s)://host[:port]` URL, as nats-server requires for allowed origins.
fn check_origin(origin: &str) -> Result<(), String> {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!("unable to parse allowed origin: parse {origin:?}: invalid URI"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "unable to parse allowed origin {origin:?}: allowed origins must be absolute URLs \
             with http or https scheme"
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("unable to parse allowed origin {origin:?}: host is required"));
    }
    Ok(())
}

impl Options {
    /// Checks the rules nats-server checks across options before it starts; the first
    /// broken rule is returned, with nats-server's wording.
    pub fn validate(&self) -> Result<(), ConfError> {
        if !self.lame_duck_duration.is_zero()
            && self.lame_duck_grace_period >= self.lame_duck_duration
        {
            return fail(format!(
                "lame duck grace period ({}) should be strictly lower than lame duck duration ({})",
                format_go_duration(self.lame_duck_grace_period),
                format_go_duration(self.lame_duck_duration)
            ));
        }
        if self.max_payload > self.max_pending {
            return fail(format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                self.max_payload, self.max_pending
            ));
        }
        if self.server_name.contains(' ') {
            return fail("server name cannot contain spaces");
        }
        self.validate_operators()?;
        self.validate_auth()?;
        if let Some(c) = &self.cluster {
            if c.name.as_deref().is_some_and(|n| n.contains(' ')) {
                return fail("cluster name cannot contain spaces");
            }
            let mode = c.compression.mode.to_ascii_lowercase();
            let known = [
                "not supported",
                "not_supported",
                "off",
                "disabled",
                "false",
                "accept",
                "on",
                "enabled",
                "true",
                "auto",
                "s2_auto",
                "fast",
                "s2_fast",
                "better",
                "s2_better",
                "best",
                "s2_best",
            ];
            if !known.contains(&mode.as_str()) {
                return fail(format!("unsupported compression mode {:?}", c.compression.mode));
            }
        }
        if let Some(d) = &self.jetstream.domain {
            let subj = format!("$JS.{d}.API");
            if !is_valid_subject(&subj) {
                return fail(format!(
                    "invalid domain name: derived {subj:?} is not a valid subject"
                ));
            }
        }
        self.validate_js_domains()?;
        self.validate_websocket()
    }

    fn validate_operators(&self) -> Result<(), ConfError> {
        if self.operator.is_empty() {
            if self.default_sentinel.is_some() {
                return fail("default sentinel requires operators and accounts");
            }
            return Ok(());
        }
        if self.resolver.is_none() {
            return fail("operators require an account resolver to be configured");
        }
        if !self.accounts.is_empty() {
            return fail("operators do not allow Accounts to be configured directly");
        }
        if !self.authorization.users.is_empty() || !self.authorization.nkeys.is_empty() {
            return fail("operators do not allow users to be configured directly");
        }
        if !self.trusted_keys.is_empty() {
            return fail("conflicting options for 'TrustedKeys' and 'TrustedOperators'");
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfError> {
        let auth = &self.authorization;
        if auth.token.is_some() && (!auth.users.is_empty() || !auth.nkeys.is_empty()) {
            return fail("Can not have a token and a users array");
        }
        if auth.user.is_some() && (!auth.users.is_empty() || !auth.nkeys.is_empty()) {
            return fail("Can not have a single user/pass and a users array");
        }
        if (auth.user.is_some() || auth.password.is_some()) && auth.token.is_some() {
            return fail("Cannot have a user/pass and token");
        }
        for u in &auth.users {
            check_connection_types(&u.allowed_connection_types)?;
            if let Err(e) = check_permissions(&u.permissions) {
                return fail(format!("invalid permissions for user {:?}: {e}", u.user));
            }
        }
        for u in &auth.nkeys {
            check_connection_types(&u.allowed_connection_types)?;
            if let Err(e) = check_permissions(&u.permissions) {
                return fail(format!("invalid permissions for nkey {:?}: {e}", u.nkey));
            }
        }
        if let Some(n) = &auth.no_auth_user {
            self.validate_no_auth_user(n)?;
        }
        Ok(())
    }

    fn validate_no_auth_user(&self, name: &str) -> Result<(), ConfError> {
        if !self.operator.is_empty() {
            return fail("no_auth_user not compatible with Trusted Operator");
        }
        let auth = &self.authorization;
        if auth.users.is_empty() && auth.nkeys.is_empty() {
            return fail(format!(
                "no_auth_user: \"{name}\" present, but users/nkeys are not defined"
            ));
        }
        if auth.users.iter().any(|u| u.user == name) || auth.nkeys.iter().any(|u| u.nkey == name) {
            return Ok(());
        }
        fail(format!(
            "no_auth_user: \"{name}\" not present as user or nkey in authorization block or \
             account configuration"
        ))
    }

    fn validate_js_domains(&self) -> Result<(), ConfError> {
        let sys = self.system_account.as_deref().unwrap_or(DEFAULT_SYSTEM_ACCOUNT);
        for (acc, domain) in &self.default_js_domain {
            if self.operator.is_empty() && acc != "$G" {
                match self.accounts.iter().find(|a| &a.name == acc) {
                    None => {
                        return fail(format!(
                            "in non operator mode, `default_js_domain` references non existing \
                             account {acc:?}"
                        ));
                    }
                    Some(a) if a.jetstream.is_some() && !domain.is_empty() => {
                        return fail(format!(
                            "default_js_domain contains account name {acc:?} with enabled \
                             JetStream"
                        ));
                    }
                    Some(_) => {}
                }
            }
            if acc == sys {
                return fail(format!("system account {acc:?} can not be in default_js_domain"));
            }
            if !domain.is_empty() && !is_valid_subject(&format!("$JS.{domain}.API")) {
                return fail(format!(
                    "default_js_domain contains account {acc:?} with invalid domain name \
                     {domain:?}"
                ));
            }
        }
        Ok(())
    }

    fn validate_websocket(&self) -> Result<(), ConfError> {
        let Some(ws) = &self.websocket else {
            return Ok(());
        };
        if ws.port.is_none() {
            return Ok(());
        }
        if ws.tls.is_none() && !ws.no_tls {
            return fail("websocket requires TLS configuration");
        }
        for o in &ws.allowed_origins {
            if let Err(e) = check_origin(o) {
                return fail(e);
            }
        }
        if let Some(n) = &ws.no_auth_user {
            self.validate_no_auth_user(n)?;
        }
        let auth = &self.authorization;
        let has_users = !auth.users.is_empty() || !auth.nkeys.is_empty();
        if let (true, Some(a)) = (has_users, &ws.authorization) {
            {
                if a.user.as_deref().is_some_and(|s| !s.is_empty()) {
                    return fail(
                        "websocket authentication username not compatible with presence of \
                         users/nkeys",
                    );
                }
                if a.token.as_deref().is_some_and(|s| !s.is_empty()) {
                    return fail(
                        "websocket authentication token not compatible with presence of \
                         users/nkeys",
                    );
                }
            }
        }
        if let Some(c) = &ws.jwt_cookie
            && self.operator.is_empty()
            && self.trusted_keys.is_empty()
        {
            return fail(format!(
                "trusted operators or trusted keys configuration is required for JWT \
                 authentication via cookie {c:?}"
            ));
        }
        for (k, _) in &ws.headers {
            let lk = k.to_ascii_lowercase();
            if matches!(
                lk.as_str(),
                "host" | "content-length" | "connection" | "upgrade" | "nats-no-masking"
            ) {
                return fail(format!("websocket: invalid header {k:?} not allowed"));
            }
            if lk.starts_with("sec-websocket-") {
                return fail(format!(
                    "websocket: invalid header {k:?}, \"Sec-WebSocket-\" prefix not allowed"
                ));
            }
        }
        Ok(())
    }
}
