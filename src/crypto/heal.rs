//! Lost devices heal: when the homeserver no longer knows a twin's device (an admin deleted it,
//! the homeserver's data was reset or replaced), the twin gets a new device and a fresh Olm
//! account, signed by its cross-signing identity (carried over from the old store, or made
//! anew when its keys are gone). The old store is kept aside, never deleted; the owner is told
//! once; and a twin whose new device is gone again soon after waits instead of looping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ruma::UserId;

use super::{
    Crypto, CryptoError,
    machine::{TwinMachine, stored_device, twin_dir},
};

/// Shortest time between two new devices of one twin.
const HEAL_INTERVAL: Duration = Duration::from_secs(600);

/// Folder (inside a twin's crypto folder) where replaced stores are kept.
const RETIRED: &str = "retired";

/// What the owner reads once their twin has a new device.
const NEW_DEVICE_NOTICE: &str = "🔑 The homeserver no longer knew my encrypted device, so I \
    set up a new one (signed by my own identity, so your client trusts it as before). Messages \
    sent to me before now may stay unreadable to me: if you are waiting for an answer, please \
    send your message again.";

impl Crypto {
    /// Gives `twin` a new device (see the module docs). Refused, and recorded as a problem
    /// shown in `/health` and `doctor`, when the twin got one less than ten minutes ago.
    pub async fn heal(&self, twin: &UserId) -> Result<(), CryptoError> {
        let slot = self.machines.slot(twin);
        let mut open = slot.machine.lock().await;
        // Another task healed while this one waited for the slot: its device is the new one.
        let healed_meanwhile = self.healed_recently(twin);
        if healed_meanwhile
            && let Some(machine) = open.as_ref()
            && machine.device_exists().await.unwrap_or(true)
        {
            return Ok(());
        }
        self.heal_locked(twin, &mut open, "the homeserver does not know the device")
            .await
    }

    fn healed_recently(&self, twin: &UserId) -> bool {
        self.heals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(twin)
            .is_some_and(|at| at.elapsed() < HEAL_INTERVAL)
    }

    /// [`Crypto::heal`] with the twin's slot held.
    pub(super) async fn heal_locked(
        &self,
        twin: &UserId,
        open: &mut Option<std::sync::Arc<TwinMachine>>,
        why: &str,
    ) -> Result<(), CryptoError> {
        if self.healed_recently(twin) {
            let problem = format!(
                "the homeserver lost the twin's new device again ({why}); it waits before making \
                 another"
            );
            self.record_problem(twin, &problem).await;
            return Err(CryptoError::HealRefused(problem));
        }
        self.heals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(twin.to_owned(), Instant::now());
        match self.replace_device(twin, open).await {
            Ok(device) => {
                self.metrics.devices_recreated.inc();
                if let Err(err) = self.store.clear_twin_problem(twin).await {
                    tracing::warn!(%err, "cannot clear the twin's problem");
                }
                let key = format!("new-device:{device}");
                if let Err(err) = self
                    .store
                    .add_owner_notice(twin, &key, NEW_DEVICE_NOTICE)
                    .await
                {
                    tracing::warn!(%err, "cannot keep the new-device notice for the owner");
                }
                let _ = self.healed.send(twin.to_owned());
                tracing::warn!(%twin, %device, %why, "the twin has a new device");
                Ok(())
            }
            Err(err) => {
                self.record_problem(twin, &format!("cannot make a new device: {err}"))
                    .await;
                Err(err)
            }
        }
    }

    async fn replace_device(
        &self,
        twin: &UserId,
        open: &mut Option<std::sync::Arc<TwinMachine>>,
    ) -> Result<ruma::OwnedDeviceId, CryptoError> {
        let dir = twin_dir(&self.root, twin);
        let old_device = stored_device(&dir).await;
        // The identity's private keys, from the open machine or its store.
        let export = match open.take() {
            Some(machine) => machine.export_cross_signing().await,
            None => match &old_device {
                Some(device) => match TwinMachine::load(
                    self.matrix.clone(),
                    &dir,
                    &self.keys,
                    twin,
                    device.clone(),
                )
                .await
                {
                    Ok(machine) => machine.export_cross_signing().await,
                    Err(err) => {
                        tracing::warn!(%twin, %err, "the old crypto store cannot be read; the identity is made anew");
                        None
                    }
                },
                None => None,
            },
        };
        if let Some(device) = &old_device {
            retire(&dir, device.as_str()).await?;
        }
        // After a reset of the homeserver's data the twin itself is gone too.
        self.matrix.register_puppet(twin.localpart()).await?;
        let machine = TwinMachine::create(self.matrix.clone(), &dir, &self.keys, twin).await?;
        // Learn the identity the homeserver holds, so the old private keys can be matched to it.
        machine.pump().await?;
        match export {
            Some(export) => {
                if let Err(err) = machine.import_cross_signing(export).await {
                    tracing::warn!(%twin, %err, "the identity could not be carried over; making a new one");
                }
            }
            None => tracing::info!(%twin, "no identity to carry over; making a new one"),
        }
        machine.start().await?;
        let device = machine.device_id().to_owned();
        *open = Some(std::sync::Arc::new(machine));
        Ok(device)
    }

    async fn record_problem(&self, twin: &UserId, problem: &str) {
        if let Err(err) = self.store.set_twin_problem(twin, problem).await {
            tracing::warn!(%err, "cannot record the twin's problem");
        }
    }
}

/// Moves a device's store to `<twin>/retired/<device>-<time>`, and forgets it as current.
async fn retire(dir: &std::path::Path, device: &str) -> Result<(), CryptoError> {
    let retired = dir.join(RETIRED);
    tokio::fs::create_dir_all(&retired)
        .await
        .map_err(|e| CryptoError::io(&retired, e))?;
    let from = dir.join(device);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let to = retired.join(format!("{device}-{stamp}"));
    if tokio::fs::try_exists(&from).await.unwrap_or(false) {
        tokio::fs::rename(&from, &to)
            .await
            .map_err(|e| CryptoError::io(&from, e))?;
    }
    let id_file = dir.join("device_id");
    match tokio::fs::remove_file(&id_file).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CryptoError::io(&id_file, e)),
    }
    tracing::info!(from = %from.display(), to = %to.display(), "kept the old crypto store aside");
    Ok(())
}
