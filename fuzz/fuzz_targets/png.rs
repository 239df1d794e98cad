//! PNG decoder: any bytes must give `Ok` or a `DataError` naming the path, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.png");
    match cilp_data::image::decode_png(data, path) {
        Ok(img) => assert_eq!(img.pixels.len(), img.width * img.height * 4),
        Err(e) => assert!(e.to_string().contains("fuzz.png")),
    }
    let mut out = vec![0u8; 64 * 64 * 4];
    if let Err(e) = cilp_data::image::decode_dataset_png_into(data, path, &mut out) {
        assert!(e.to_string().contains("fuzz.png"));
    }
});
