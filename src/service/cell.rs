//! `ServiceCell`: the service as the edges hold it. The servers start before the store is reached
//! (so health can say NOT_SERVING meanwhile); `app` fills the cell once it is. It lives here, not in
//! `app`, because the edges hold it and `app` builds the edges: the imports then run one way.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use super::{Service, ServiceError, ServiceResult};

/// Empty until the store has been reached at start-up, and every call answers STORE_UNAVAILABLE
/// until then.
pub struct ServiceCell {
    service: OnceLock<Arc<Service>>,
    ready: watch::Sender<bool>,
}

impl Default for ServiceCell {
    fn default() -> Self {
        Self {
            service: OnceLock::new(),
            ready: watch::Sender::new(false),
        }
    }
}

impl ServiceCell {
    pub fn get(&self) -> ServiceResult<&Arc<Service>> {
        self.service.get().ok_or_else(|| {
            ServiceError::StoreUnavailable("starting: the store has not been reached yet".into())
        })
    }

    /// Fills the cell once; later calls change nothing.
    pub fn set(&self, service: Arc<Service>) {
        if self.service.set(service).is_ok() {
            self.ready.send_replace(true);
        }
    }

    /// Waits until the cell is filled.
    pub async fn wait(&self) -> Arc<Service> {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
        self.service
            .get()
            .cloned()
            .expect("filled before `ready` turned true")
    }
}
