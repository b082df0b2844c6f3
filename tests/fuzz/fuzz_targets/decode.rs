//! Any bytes given to the content decoder give an item or an error with a reason, never a
//! panic; an accepted item survives a round trip through its own JSON.
#![no_main]

use cordon_domain::{ContentItem, DecodeLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    match ContentItem::decode(Some(data), &limits) {
        Ok(item) => {
            let _ = item.classifier_text();
            let again = serde_json::to_vec(&item).expect("an item serializes");
            let back = ContentItem::decode(Some(&again), &limits).expect("its own JSON decodes");
            assert_eq!(back, item);
        }
        Err(e) => {
            assert!(!e.code().is_empty());
            let _ = e.to_string();
        }
    }
});
