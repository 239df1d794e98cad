//! `.npy` parser: any bytes must give `Ok` or a `DataError` naming the path, never a panic,
//! and a successful parse must be self-consistent.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npy");
    match cilp_data::npy::parse_npy(data, path) {
        Ok(arr) => {
            assert_eq!(arr.shape.iter().product::<usize>(), arr.data.len());
            let mut out = vec![0f32; arr.data.len()];
            cilp_data::npy::parse_npy_into(data, path, &arr.shape, &mut out).expect("same bytes parse again");
            assert_eq!(
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                arr.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        Err(e) => assert!(e.to_string().contains("fuzz.npy")),
    }
    let mut out = vec![0f32; 64 * 64];
    if let Err(e) = cilp_data::npy::parse_npy_into(data, path, &[64, 64], &mut out) {
        assert!(e.to_string().contains("fuzz.npy"));
    }
});
