//! The broker's handle on cluster metadata: the controller behind a mutex (it orders the metadata
//! log) and the current image, swapped atomically so that readers never wait for writers.

use crate::errors::KafkaError;
use std::sync::{Arc, Mutex, RwLock};
use strom_metadata::controller::ControllerSettings;
use strom_metadata::{Controller, MetadataError, MetadataImage};

pub struct MetadataStore {
    controller: Mutex<Controller>,
    image: RwLock<Arc<MetadataImage>>,
}

impl MetadataStore {
    pub fn open(data_dir: &std::path::Path, settings: ControllerSettings) -> Result<MetadataStore, MetadataError> {
        let controller = Controller::open(data_dir, settings)?;
        let image = RwLock::new(controller.image());
        Ok(MetadataStore { controller: Mutex::new(controller), image })
    }

    /// The current image. Cheap: one `Arc` clone.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs one controller operation and publishes the resulting image. Returns the operation's
    /// result and the image after it.
    pub fn write<T>(
        &self,
        op: impl FnOnce(&mut Controller) -> Result<T, MetadataError>,
    ) -> (Result<T, KafkaError>, Arc<MetadataImage>) {
        let mut controller = self.controller.lock().unwrap_or_else(|p| p.into_inner());
        let result = op(&mut controller).map_err(KafkaError::from);
        let image = controller.image();
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&image);
        (result, image)
    }
}
