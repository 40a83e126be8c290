//! The `webpubsub.*` roles of a client token: what a connection may do with groups before
//! the application's own channel rules are asked. A connection without roles may only send
//! `event`s.
//!
//! - `webpubsub.joinLeaveGroup` / `webpubsub.sendToGroup`: any group;
//! - `webpubsub.joinLeaveGroup.<group>` / `webpubsub.sendToGroup.<group>`: that group;
//! - `webpubsub.joinLeaveGroups.<pattern>` / `webpubsub.sendToGroups.<pattern>` (the
//!   emulator's wildcard forms): `*` matches within a `.`-separated segment, `**` across
//!   segments, `?` one character.

const JOIN: &str = "webpubsub.joinLeaveGroup";
const SEND: &str = "webpubsub.sendToGroup";
const JOIN_PATTERN: &str = "webpubsub.joinLeaveGroups.";
const SEND_PATTERN: &str = "webpubsub.sendToGroups.";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Grant {
    any: bool,
    groups: Vec<String>,
    patterns: Vec<String>,
}

impl Grant {
    fn allows(&self, group: &str) -> bool {
        self.any
            || self.groups.iter().any(|g| g == group)
            || self
                .patterns
                .iter()
                .any(|p| glob(p.as_bytes(), group.as_bytes()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    join: Grant,
    send: Grant,
}

impl Permissions {
    pub fn from_roles<'a>(roles: impl IntoIterator<Item = &'a str>) -> Self {
        let mut permissions = Self::default();
        for role in roles {
            if role == JOIN {
                permissions.join.any = true;
            } else if role == SEND {
                permissions.send.any = true;
            } else if let Some(pattern) = role.strip_prefix(JOIN_PATTERN) {
                permissions.join.patterns.push(pattern.to_owned());
            } else if let Some(pattern) = role.strip_prefix(SEND_PATTERN) {
                permissions.send.patterns.push(pattern.to_owned());
            } else if let Some(group) = role.strip_prefix(JOIN).and_then(|r| r.strip_prefix('.')) {
                permissions.join.groups.push(group.to_owned());
            } else if let Some(group) = role.strip_prefix(SEND).and_then(|r| r.strip_prefix('.')) {
                permissions.send.groups.push(group.to_owned());
            }
        }
        permissions
    }

    /// Every group operation allowed (rthub's own tokens: its channel rules decide).
    pub fn all() -> Self {
        Self::from_roles([JOIN, SEND])
    }

    pub fn may_join_leave(&self, group: &str) -> bool {
        self.join.allows(group)
    }

    pub fn may_send(&self, group: &str) -> bool {
        self.send.allows(group)
    }
}

/// `*` within a segment, `**` across, `?` one character; backtracking over short names.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        [b'*', rest @ ..] => {
            let segment = name.iter().position(|&b| b == b'.').unwrap_or(name.len());
            (0..=segment).any(|skip| glob(rest, &name[skip..]))
        }
        [b'?', rest @ ..] => !name.is_empty() && glob(rest, &name[1..]),
        [first, rest @ ..] => name.first() == Some(first) && glob(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_any_one_or_matching_groups() {
        let none = Permissions::from_roles([]);
        assert!(!none.may_join_leave("app:a") && !none.may_send("app:a"));
        let all = Permissions::all();
        assert!(all.may_join_leave("x") && all.may_send("y"));
        let one = Permissions::from_roles([
            "webpubsub.joinLeaveGroup.app:a",
            "webpubsub.sendToGroup.app:b",
        ]);
        assert!(one.may_join_leave("app:a") && !one.may_join_leave("app:b"));
        assert!(one.may_send("app:b") && !one.may_send("app:a"));
        let patterns = Permissions::from_roles([
            "webpubsub.joinLeaveGroups.app:room.*",
            "webpubsub.sendToGroups.team.**",
        ]);
        assert!(patterns.may_join_leave("app:room.1"));
        assert!(!patterns.may_join_leave("app:room.1.2"));
        assert!(patterns.may_send("team.a.b") && !patterns.may_send("teams"));
        assert!(glob(b"a?c", b"abc") && !glob(b"a?c", b"ac"));
    }
}
