//! The settings service: the stored settings, validated changes, and a watch channel that
//! tells the services depending on them (retention) when they change.

use scheduler_api::{Settings, SettingsPatch};
use tokio::sync::watch;

use crate::error::HostError;
use crate::model::Policy;
use crate::model::policy::Rules;
use crate::store::{SharedStore, StoreError};

/// The host's settings.
pub struct SettingsService {
    store: SharedStore,
    current: watch::Sender<Settings>,
}

impl SettingsService {
    /// Loads the stored settings.
    pub async fn load(store: SharedStore) -> Result<SettingsService, StoreError> {
        // A read: on a full disk the writer may not commit even a read (the host must still
        // start).
        let s = store.load_settings().await?;
        Ok(SettingsService {
            store,
            current: watch::channel(s).0,
        })
    }

    /// The settings now.
    pub fn get(&self) -> Settings {
        self.current.borrow().clone()
    }

    /// What the transition function needs of them.
    pub fn policy(&self) -> Policy {
        Policy::from(&*self.current.borrow())
    }

    /// What the scheduling policy needs of them.
    pub fn rules(&self) -> Rules {
        let s = self.current.borrow();
        Rules {
            group_by_checkpoint: s.group_by_checkpoint,
            max_overtakes: s.max_overtakes,
            max_wait_ms: i64::from(s.max_overtaken_minutes) * 60_000,
        }
    }

    /// Reads the stored settings again (on a shared store another host may have changed
    /// them) and tells the subscribers when they changed.
    pub async fn refresh(&self) -> Result<Settings, StoreError> {
        let s = self.store.load_settings().await?;
        self.current.send_if_modified(|c| {
            let changed = *c != s;
            if changed {
                *c = s.clone();
            }
            changed
        });
        Ok(s)
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Settings> {
        self.current.subscribe()
    }

    /// Changes the fields given (validated) and persists them.
    pub async fn update(&self, patch: SettingsPatch) -> Result<Settings, HostError> {
        // The stored settings, not this host's copy: another host sharing the store may
        // have changed other fields since.
        let mut s = self.refresh().await?;
        if let Some(v) = patch.start_paused {
            s.start_paused = v;
        }
        if let Some(v) = patch.history_retention_days {
            if let Some(d) = v
                && !(1..=36_500).contains(&d)
            {
                return Err(HostError::Invalid(
                    "history_retention_days must be 1..=36500 or null".into(),
                ));
            }
            s.history_retention_days = v;
        }
        if let Some(v) = patch.auto_requeue_failed {
            s.auto_requeue_failed = v;
        }
        if let Some(v) = patch.max_attempts {
            if !(1..=100).contains(&v) {
                return Err(HostError::Invalid("max_attempts must be 1..=100".into()));
            }
            s.max_attempts = v;
        }
        if let Some(v) = patch.retry_backoff_s {
            if !(1..=3600).contains(&v) {
                return Err(HostError::Invalid(
                    "retry_backoff_s must be 1..=3600".into(),
                ));
            }
            s.retry_backoff_s = v;
        }
        let range = |name: &str, v: u32, max: u32| {
            if (1..=max).contains(&v) {
                Ok(v)
            } else {
                Err(HostError::Invalid(format!("{name} must be 1..={max}")))
            }
        };
        if let Some(v) = patch.interrupt_grace_s {
            s.interrupt_grace_s = range("interrupt_grace_s", v, 300)?;
        }
        if let Some(v) = patch.stall_timeout_s {
            s.stall_timeout_s = range("stall_timeout_s", v, 86_400)?;
        }
        if let Some(v) = patch.stall_recheck_s {
            s.stall_recheck_s = range("stall_recheck_s", v, 3600)?;
        }
        if let Some(v) = patch.max_answer_mib {
            s.max_answer_mib = range("max_answer_mib", v, 4096)?;
        }
        if let Some(v) = patch.task_timeout_s {
            s.task_timeout_s = v
                .map(|v| range("task_timeout_s (or null)", v, 604_800))
                .transpose()?;
        }
        if let Some(v) = patch.import_max_items {
            s.import_max_items = range("import_max_items", v, 1_000_000)?;
        }
        if let Some(v) = patch.lease_s {
            if !(3..=600).contains(&v) {
                return Err(HostError::Invalid("lease_s must be 3..=600".into()));
            }
            s.lease_s = v;
        }
        if let Some(v) = patch.group_by_checkpoint {
            s.group_by_checkpoint = v;
        }
        if let Some(v) = patch.max_overtakes {
            if v > 10_000 {
                return Err(HostError::Invalid("max_overtakes must be 0..=10000".into()));
            }
            s.max_overtakes = v;
        }
        if let Some(v) = patch.max_overtaken_minutes {
            if v > 10_080 {
                return Err(HostError::Invalid(
                    "max_overtaken_minutes must be 0..=10080".into(),
                ));
            }
            s.max_overtaken_minutes = v;
        }
        let saved = s.clone();
        self.store.save_settings(saved).await?;
        self.current.send_replace(s.clone());
        Ok(s)
    }
}
