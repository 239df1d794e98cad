//! cilp-track
