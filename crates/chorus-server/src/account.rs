//! Accounts: the unit of subject isolation. Every client is bound to one; messages never cross
//! accounts except through exports/imports (the auth issue adds those).

use chorus_sublist::Sublist;

use crate::client::SubRef;

/// The account clients land in when no accounts are configured, as in nats-server.
pub const GLOBAL_ACCOUNT: &str = "$G";

#[derive(Debug)]
pub struct Account {
    pub name: String,
    pub sublist: Sublist<SubRef>,
}

impl Account {
    pub fn new(name: &str, cache: bool) -> Self {
        let sublist = if cache { Sublist::new() } else { Sublist::without_cache() };
        Account { name: name.to_string(), sublist }
    }
}
