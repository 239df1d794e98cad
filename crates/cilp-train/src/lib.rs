//! cilp-train
