//! Account activity: the events listed newest first, for operators (ListEvents, any user) and
//! for users themselves (ListActivity, their own); and ChangePassword, a user's own change.

use std::sync::Arc;

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::{
    domain::{
        event::{AccountEvent, EventKind, NewEvent, Origin},
        page::{PageKind, PageToken, page_size},
        types::{InputError, Password, Username},
    },
    store::EventsPage,
};

/// One page of events, newest first, and the token of the next (empty on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsListing {
    pub events: Vec<Arc<AccountEvent>>,
    pub next_page_token: String,
}

impl Service {
    /// Events of `user_id` (empty: every user's) of the kinds named (none: every kind), newest
    /// first. A kind the contract does not name is `INVALID_ARGUMENT`.
    pub async fn list_events(
        &self,
        user_id: &str,
        kinds: &[String],
        page_size_asked: u32,
        page_token: &str,
    ) -> ServiceResult<EventsListing> {
        let mut parsed: Vec<EventKind> = Vec::new();
        for name in kinds {
            let kind = EventKind::parse(name).ok_or(InputError::Invalid("kinds"))?;
            if !parsed.contains(&kind) {
                parsed.push(kind);
            }
        }
        let user = (!user_id.is_empty()).then_some(user_id);
        self.events_listing(user, &parsed, page_size_asked, page_token)
            .await
    }

    /// The caller's own events, newest first.
    pub async fn list_activity(
        &self,
        caller: &Caller,
        page_size_asked: u32,
        page_token: &str,
    ) -> ServiceResult<EventsListing> {
        self.events_listing(Some(&caller.user_id), &[], page_size_asked, page_token)
            .await
    }

    async fn events_listing(
        &self,
        user_id: Option<&str>,
        kinds: &[EventKind],
        page_size_asked: u32,
        page_token: &str,
    ) -> ServiceResult<EventsListing> {
        let limit = page_size(page_size_asked)?;
        let before = match PageToken::parse(page_token, PageKind::Events)? {
            PageToken::BeforeSeq(seq) => seq,
            _ => i64::MAX,
        };
        // No user id holds a NUL (PostgreSQL text cannot even be asked about one).
        if user_id.is_some_and(|id| id.contains('\0')) {
            return Ok(EventsListing {
                events: Vec::new(),
                next_page_token: String::new(),
            });
        }
        let page = EventsPage {
            user_id,
            kinds,
            before,
            // One more than asked: whether it comes says whether there is a next page.
            limit: limit + 1,
        };
        let mut events = self.store.events_page(&page).await?;
        let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = match events.last() {
            Some(last) if more => PageToken::BeforeSeq(last.seq).encode(),
            _ => String::new(),
        };
        Ok(EventsListing {
            events: events.into_iter().map(Arc::new).collect(),
            next_page_token,
        })
    }

    /// The caller's own password change: the current password is checked as a login's is (a
    /// wrong one is INVALID_CREDENTIALS and counts toward the name's throttling); then every
    /// other session of the user is revoked and the caller's kept. Returns how many were revoked.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: Password,
        new: Password,
        ip: String,
    ) -> ServiceResult<u32> {
        let admission = self.hasher.admit()?;
        let user = self
            .store
            .user_by_id(&caller.user_id)
            .await?
            .ok_or(ServiceError::AccessTokenInvalid)?;
        let username = Username::parse(&user.username)?;
        let (counted, _) = self.admit_attempt(&username).await?;
        let verdict = admission
            .check(current, Some(user.password_hash.expose().clone()))
            .await?;
        let origin = Origin {
            ip,
            session_id: caller.session_id.clone(),
            ..Origin::default()
        };
        if !verdict.matches {
            metrics::counter!("latchkey_login_failures_total").increment(1);
            self.record_failure(&user.id, origin, &counted).await?;
            return Err(ServiceError::InvalidCredentials);
        }
        self.store.clear_throttle(username.as_str()).await?;
        let hash = self.hasher.hash(new).await?;
        let event = NewEvent::new(&user.id, EventKind::PasswordChanged, origin)
            .with_detail("by the user".to_owned());
        self.revoke_other_sessions(&user.id, &caller.session_id, event, hash)
            .await
    }
}
