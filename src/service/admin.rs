//! Who may administer users and keys, and how their changes are recorded: an access token holding
//! `latchkey.admin` (asked for by name at login), or a client certificate whose identity the edge
//! found on `LATCHKEY_ADMIN_CALLERS`; the command line, run where the database is, is trusted.

use super::{Service, ServiceError, ServiceResult};
use crate::domain::{
    caller::CallerIdentity,
    event::{EventKind, NewEvent, Origin},
};

/// Who makes an administrative change, for its account event: the address it came from and a name
/// for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub ip: String,
    who: String,
}

impl Admin {
    /// An operator at the command line, beside the database.
    pub fn command_line() -> Self {
        Self {
            ip: String::new(),
            who: "the command line".to_owned(),
        }
    }

    /// "by …": the detail an account event of this admin's change starts with.
    pub(super) fn by(&self) -> String {
        format!("by {}", self.who)
    }

    /// The account event of this admin's change to `user_id`.
    pub(super) fn event(&self, user_id: &str, kind: EventKind) -> NewEvent {
        let origin = Origin {
            ip: self.ip.clone(),
            ..Origin::default()
        };
        NewEvent::new(user_id, kind, origin).with_detail(self.by())
    }
}

impl Service {
    /// The admin behind a call: `certified` is the client certificate's identity when the edge
    /// found it on the admin list (it is enough); otherwise the bearer token must be active and
    /// hold `latchkey.admin`. No bearer, or an inactive one: ACCESS_TOKEN_INVALID; an active one
    /// without the scope: NOT_ALLOWED.
    pub fn admin(
        &self,
        bearer: Option<&str>,
        certified: Option<&CallerIdentity>,
        ip: String,
    ) -> ServiceResult<Admin> {
        if let Some(identity) = certified {
            return Ok(Admin {
                ip,
                who: format!("caller {identity}"),
            });
        }
        let caller = self.authenticate(bearer)?;
        if !caller.is_admin() {
            return Err(ServiceError::NotAllowed);
        }
        Ok(Admin {
            ip,
            who: format!("admin {}", caller.user_id),
        })
    }
}
