//! Serde helpers that round-trip non-finite floats through JSON.
//!
//! `serde_json` writes `NaN`/`inf` as `null`, which then fails to read back
//! into an `f64`. A diverged run (loss = NaN) must still produce readable
//! metrics, so these helpers write non-finite values as the strings `"NaN"`,
//! `"inf"` and `"-inf"` and accept numbers, those strings and `null` (as NaN)
//! when reading.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};

/// String used for a non-finite value, `None` for finite ones.
pub(crate) fn non_finite_str(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("inf")
    } else if v == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// Parse a float written by this crate (also accepts `nan`, `+inf`, `infinity`).
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

/// Format a float for text files: shortest round-trip representation,
/// scientific notation only for very small or very large magnitudes.
pub(crate) fn format_f64(v: f64) -> String {
    if let Some(s) = non_finite_str(v) {
        return s.to_owned();
    }
    let a = v.abs();
    if a == 0.0 || (1e-4..1e15).contains(&a) { format!("{v}") } else { format!("{v:e}") }
}

fn ser<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    match non_finite_str(v) {
        Some(txt) => s.serialize_str(txt),
        None => s.serialize_f64(v),
    }
}

struct F64Visitor;

impl<'de> Visitor<'de> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or one of \"NaN\", \"inf\", \"-inf\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse_f64(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
}

/// `#[serde(with = "crate::floats::f64_lossless")]` for `f64` fields.
pub mod f64_lossless {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        ser(*v, s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(F64Visitor)
    }
}

/// `#[serde(with = "crate::floats::opt_f64_lossless")]` for `Option<f64>` fields.
pub(crate) mod opt_f64_lossless {
    use super::*;
    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => ser(*x, s),
            None => s.serialize_none(),
        }
    }
    struct OptVisitor;
    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("null, a number or one of \"NaN\", \"inf\", \"-inf\"")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(F64Visitor).map(Some)
        }
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_option(OptVisitor)
    }
}

/// `#[serde(with = "crate::floats::map_f64_lossless")]` for `BTreeMap<String, f64>` fields.
pub(crate) mod map_f64_lossless {
    use super::*;
    struct Lossless(f64);
    impl serde::Serialize for Lossless {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            ser(self.0, s)
        }
    }
    impl<'de> serde::Deserialize<'de> for Lossless {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(F64Visitor).map(Lossless)
        }
    }
    pub(crate) fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            map.serialize_entry(k, &Lossless(*v))?;
        }
        map.end()
    }
    struct MapVisitor;
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map from metric name to number")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = a.next_entry::<String, Lossless>()? {
                out.insert(k, v.0);
            }
            Ok(out)
        }
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        for v in [0.0, 1.0, -2.5, 0.1, 1e-5, 3e-12, 1e20, 123456.789, f64::INFINITY, f64::NEG_INFINITY] {
            let s = format_f64(v);
            assert_eq!(parse_f64(&s), Some(v), "{s}");
        }
        assert!(parse_f64(&format_f64(f64::NAN)).unwrap().is_nan());
        assert_eq!(format_f64(0.001), "0.001");
        assert_eq!(format_f64(1e-5), "1e-5");
    }
}
