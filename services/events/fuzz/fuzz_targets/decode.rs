//! Any bytes on any stream: a decoded event that re-encodes and decodes to
//! itself, or an error naming a reason; never a panic.
#![no_main]

use dvc_events::{Event, Stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for stream in Stream::ALL {
        match Event::decode(stream, data) {
            Ok(event) => {
                let bytes = serde_json::to_vec(&event).expect("a decoded event encodes");
                assert_eq!(Event::decode(stream, &bytes).as_ref(), Ok(&event));
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
