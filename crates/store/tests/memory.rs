//! The conformance suite on the memory store.

mod conformance;

use conformance::{Harness, RETENTION};
use sessiond_store::{MemoryStore, StoreOptions};
use std::sync::Arc;

async fn harness() -> Option<Harness> {
    let store = Arc::new(MemoryStore::new(StoreOptions {
        superseded_retention: RETENTION,
        ..StoreOptions::default()
    }));
    let dumped = store.clone();
    Some(Harness {
        store: store.into_store(),
        dump: Box::new(move || {
            let text = dumped.dump();
            Box::pin(async move { text.into_bytes() })
        }),
        guard: Box::new(()),
        sweeps: true,
        enumerates: true,
    })
}

conformance_suite!(harness);

/// The same suite through a near cache (`near_cache.rs`): with every write
/// made through this one instance, every answer must be the store's.
mod near_cache {
    use super::*;
    use sessiond_store::NearCacheConfig;

    async fn cached() -> Option<Harness> {
        let mut h = harness().await?;
        let opts = StoreOptions {
            superseded_retention: RETENTION,
            ..StoreOptions::default()
        };
        let config = NearCacheConfig {
            capacity: 1000,
            max_age: std::time::Duration::from_secs(60),
        };
        let (store, invalidator) = h.store.clone().with_near_cache(config, &opts);
        invalidator.restored();
        h.store = store;
        Some(h)
    }

    conformance_suite!(cached);
}
