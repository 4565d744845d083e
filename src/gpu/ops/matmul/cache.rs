//! The autotuning cache file: per adapter and driver, each shape class's chosen tile and the
//! time per product it measured, `{ adapter: { shape class: { "tile", "ns_per_product" } } }`,
//! written atomically and read leniently (what cannot be read is timed again).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::fsio;

/// One shape class's choice as the cache file stores it: the tile and the time per product it
/// measured (an entry written by hand, or by an earlier version, may be the tile's name alone).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Choice {
    /// The tile, and its measured nanoseconds per product.
    Measured { tile: String, ns_per_product: f64 },
    /// The tile alone: taken as it stands.
    Named(String),
}

impl Choice {
    /// The choice a cache file's entry holds: `{"tile", "ns_per_product"}` or a tile's name.
    pub(super) fn read(value: &serde_json::Value) -> Option<Self> {
        if let Some(name) = value.as_str() {
            return Some(Choice::Named(name.to_string()));
        }
        Some(Choice::Measured {
            tile: value.get("tile")?.as_str()?.to_string(),
            ns_per_product: value.get("ns_per_product")?.as_f64()?,
        })
    }

    /// The entry a cache file holds for it.
    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            Choice::Measured {
                tile,
                ns_per_product,
            } => serde_json::json!({"tile": tile, "ns_per_product": ns_per_product}),
            Choice::Named(tile) => serde_json::json!(tile),
        }
    }

    /// The tile's name.
    pub(super) fn tile(&self) -> &str {
        match self {
            Choice::Measured { tile, .. } | Choice::Named(tile) => tile,
        }
    }
}

/// The shapes a tuner has settled, per adapter key, as the cache file stores them:
/// `{ adapter: { shape class: { "tile", "ns_per_product" } } }`.
pub(super) type Table = BTreeMap<String, BTreeMap<String, Choice>>;

/// Writes `table` to the cache file `path`, atomically, creating its folder.
pub(super) fn save(path: &std::path::Path, table: &Table) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io {
            action: "could not create",
            path: dir.display().to_string(),
            source,
        })?;
    }
    let plain: BTreeMap<&String, BTreeMap<&String, serde_json::Value>> = table
        .iter()
        .map(|(adapter, classes)| {
            let classes = classes
                .iter()
                .map(|(c, choice)| (c, choice.to_json()))
                .collect();
            (adapter, classes)
        })
        .collect();
    let json =
        serde_json::to_vec_pretty(&plain).expect("a table of strings and numbers serialises");
    fsio::write_atomic(path, &json)
}

/// The table a cache file holds; `None` when it is not one (an entry it cannot read is left
/// out, to be timed again).
pub(super) fn read_table(bytes: &[u8]) -> Option<Table> {
    let plain: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(bytes).ok()?;
    Some(
        plain
            .into_iter()
            .map(|(adapter, classes)| {
                let classes = classes
                    .into_iter()
                    .filter_map(|(class, value)| Some((class, Choice::read(&value)?)))
                    .collect();
                (adapter, classes)
            })
            .collect(),
    )
}

/// The adapter and driver a choice holds for: name, backend, driver and its version.
pub(super) fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} / {:?} / {} {}",
        info.name, info.backend, info.driver, info.driver_info
    )
}
