//! Checkpoint and VAE switching before a task is sent: the task's checkpoint is resolved
//! against the backend's model list (re-read once when it is not found) and loaded through
//! `/sdapi/v1/options` only when it differs from the loaded one; the VAE likewise.
//! Must not: send `override_settings.sd_model_checkpoint`, or change any option other than
//! `sd_model_checkpoint` / `sd_vae`.

use std::time::Duration;

use scheduler_api::BackendState;
use serde_json::{Map, Value};

use super::Worker;
use super::outcome::Outcome;
use crate::model::TaskRow;
use crate::sdnext::{SdModel, resolve_checkpoint, strip_hash};

impl Worker {
    /// Loads the task's checkpoint (and VAE) unless the backend has it already.
    pub(super) async fn ensure_checkpoint(&mut self, task: &TaskRow) -> Result<(), Outcome> {
        let client = self.backend.client.clone();
        let stale = self
            .last_run_end
            .is_none_or(|t| t.elapsed() > Duration::from_secs(2));
        if stale {
            match client.loaded_checkpoint().await {
                Ok(l) => self.backend.status().loaded = l.map(|l| l.title),
                Err(e) if e.is_outage() => return Err(self.released(&e)),
                Err(_) => {}
            }
        }
        let Some(wanted) = task.checkpoint.as_deref() else {
            // Whatever is loaded, but something must be loaded.
            let known = self.backend.status().loaded.clone();
            if known.is_none() {
                match client.loaded_checkpoint().await {
                    Ok(Some(l)) => self.backend.status().loaded = Some(l.title),
                    Ok(None) => {
                        self.set_state(BackendState::Loading, None);
                        return Err(Outcome::Release("backend has no model loaded yet".into()));
                    }
                    Err(e) if e.is_outage() => return Err(self.released(&e)),
                    Err(e) => return Err(Outcome::failed(e.to_string())),
                }
            }
            return self.ensure_vae(task, None).await;
        };
        let cached = self.backend.status().models.clone().unwrap_or_default();
        let model = match resolve_checkpoint(&cached, wanted) {
            Some(m) => m.clone(),
            None => match self.backend.refresh_models().await {
                Ok(models) => match resolve_checkpoint(&models, wanted) {
                    Some(m) => m.clone(),
                    None => {
                        return Err(Outcome::failed(format!("checkpoint not found: {wanted}")));
                    }
                },
                Err(e) if e.is_outage() => return Err(self.released(&e)),
                Err(e) => return Err(Outcome::failed(e.to_string())),
            },
        };
        let loaded = self.backend.status().loaded.clone();
        if loaded.as_deref().is_some_and(|l| same_model(l, &model)) {
            return self.ensure_vae(task, None).await;
        }
        let mut opts = Map::new();
        opts.insert(
            "sd_model_checkpoint".into(),
            Value::String(model.title.clone()),
        );
        self.ensure_vae(task, Some(opts)).await?;
        self.backend.count_load();
        match client.loaded_checkpoint().await {
            Ok(Some(l))
                if same_model(&l.title, &model)
                    || l.filename.as_deref() == Some(&model.filename) =>
            {
                let mut s = self.backend.status();
                s.loaded = Some(l.title);
                s.state = Some(BackendState::Up);
                Ok(())
            }
            Ok(other) => {
                self.backend.status().loaded = other.as_ref().map(|l| l.title.clone());
                let _ = self.backend.refresh_models().await;
                Err(Outcome::failed(format!(
                    "checkpoint switch failed: wanted {}, backend has {}",
                    model.title,
                    other.map(|l| l.title).unwrap_or_else(|| "no model".into())
                )))
            }
            Err(e) if e.is_outage() => Err(self.released(&e)),
            Err(e) => Err(Outcome::failed(e.to_string())),
        }
    }

    /// Sends `opts` (a checkpoint switch) plus `sd_vae` when the task's VAE differs from
    /// the one we set last.
    async fn ensure_vae(
        &mut self,
        task: &TaskRow,
        opts: Option<Map<String, Value>>,
    ) -> Result<(), Outcome> {
        let switching = opts.is_some();
        let mut opts = opts.unwrap_or_default();
        if let Some(vae) = &task.vae
            && (switching || self.backend.status().vae.as_deref() != Some(vae.as_str()))
        {
            // An unknown VAE name is refused before touching /options.
            const BUILTIN: &[&str] = &["Automatic", "Default", "None", "TAESD", "REPA-E"];
            if !BUILTIN.iter().any(|b| b.eq_ignore_ascii_case(vae)) {
                match self.backend.client.sd_vaes().await {
                    Ok(list) if !list.iter().any(|v| v == vae) => {
                        return Err(Outcome::failed(format!("vae not found: {vae}")));
                    }
                    Err(e) if e.is_outage() => return Err(self.released(&e)),
                    _ => {}
                }
            }
            opts.insert("sd_vae".into(), Value::String(vae.clone()));
        }
        if opts.is_empty() {
            return Ok(());
        }
        match self.backend.client.set_options(&opts).await {
            Ok(()) => {
                let mut s = self.backend.status();
                if let Some(v) = &task.vae {
                    s.vae = Some(v.clone());
                }
                if switching {
                    s.loaded = None;
                }
                Ok(())
            }
            Err(e) if e.is_outage() => Err(self.released(&e)),
            Err(e) => Err(Outcome::failed(format!("setting options failed: {e}"))),
        }
    }
}

/// Whether a loaded title is the model wanted (titles gain a ` [hash]` after first load).
fn same_model(loaded: &str, model: &SdModel) -> bool {
    loaded == model.title || strip_hash(loaded) == strip_hash(&model.title)
}
