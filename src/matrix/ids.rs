//! Mapping between owners and their twins' user IDs (pure).

use ruma::{OwnedUserId, UserId};

/// How twin IDs are formed: `@<owner localpart><suffix>:<server_name>`.
#[derive(Debug, Clone)]
pub struct TwinNaming {
    suffix: String,
    server_name: String,
}

impl TwinNaming {
    /// Naming for a server and a suffix such as `_ai`.
    pub fn new(suffix: impl Into<String>, server_name: impl Into<String>) -> Self {
        Self {
            suffix: suffix.into(),
            server_name: server_name.into(),
        }
    }

    /// The suffix of twin localparts (`_ai`).
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The server name twins live on.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The twin of a local owner; `None` for remote users or IDs that cannot carry a suffix.
    pub fn twin_of(&self, owner: &UserId) -> Option<OwnedUserId> {
        if owner.server_name().as_str() != self.server_name || self.is_twin(owner) {
            return None;
        }
        UserId::parse(format!(
            "@{}{}:{}",
            owner.localpart(),
            self.suffix,
            self.server_name
        ))
        .ok()
    }

    /// The owner of a twin; `None` when `twin` is not a twin ID of this server.
    pub fn owner_of(&self, twin: &UserId) -> Option<OwnedUserId> {
        if twin.server_name().as_str() != self.server_name {
            return None;
        }
        let owner_local = twin.localpart().strip_suffix(&self.suffix)?;
        if owner_local.is_empty() {
            return None;
        }
        UserId::parse(format!("@{owner_local}:{}", self.server_name)).ok()
    }

    /// Whether `user` is a twin of this server.
    pub fn is_twin(&self, user: &UserId) -> bool {
        self.owner_of(user).is_some()
    }

    /// Whether `user` follows the twin convention on any server (`@<name><suffix>:<server>`):
    /// the twins of other matrix-os servers, which count as bots.
    pub fn looks_like_twin(&self, user: &UserId) -> bool {
        user.localpart()
            .strip_suffix(&self.suffix)
            .is_some_and(|owner| !owner.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::user_id;

    use super::*;

    #[test]
    fn twin_and_owner_map_both_ways() {
        let naming = TwinNaming::new("_ai", "example.org");
        let twin = naming.twin_of(user_id!("@alice:example.org")).unwrap();
        assert_eq!(twin, "@alice_ai:example.org");
        assert_eq!(naming.owner_of(&twin).unwrap(), "@alice:example.org");
    }

    #[test]
    fn remote_users_and_twins_have_no_twin() {
        let naming = TwinNaming::new("_ai", "example.org");
        assert!(naming.twin_of(user_id!("@alice:other.org")).is_none());
        assert!(naming.twin_of(user_id!("@alice_ai:example.org")).is_none());
        assert!(naming.owner_of(user_id!("@alice_ai:other.org")).is_none());
        assert!(naming.owner_of(user_id!("@_ai:example.org")).is_none());
        assert!(naming.owner_of(user_id!("@alice:example.org")).is_none());
    }

    #[test]
    fn server_names_with_ports_work() {
        let naming = TwinNaming::new("_ai", "localhost:8448");
        let twin = naming.twin_of(user_id!("@bob:localhost:8448")).unwrap();
        assert_eq!(twin, "@bob_ai:localhost:8448");
    }
}
