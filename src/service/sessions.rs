//! ListSessions: the live sessions of the caller. (Ending them all, LogoutAll, is with the other
//! revocations in `revoke`.)

use tracing::instrument;

use super::{Caller, Service, ServiceResult};
use crate::domain::UnixMs;

/// A live session as ListSessions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session_id: String,
    pub client_id: String,
    pub device: String,
    pub ip: String,
    pub created_at: UnixMs,
    pub last_used_at: UnixMs,
    pub expires_at: UnixMs,
    pub current: bool,
}

impl Service {
    #[instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_sessions(&self, caller: &Caller) -> ServiceResult<Vec<SessionView>> {
        let sessions = self
            .store
            .live_sessions(&caller.user_id, self.clock.now())
            .await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == caller.session_id,
                expires_at: s.idle_expires_at.min(s.absolute_expires_at),
                session_id: s.id,
                client_id: s.client_id,
                device: s.device,
                ip: s.ip,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            })
            .collect())
    }
}
