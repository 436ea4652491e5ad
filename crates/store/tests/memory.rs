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
