//! The autotuning cache file: per adapter and driver, each shape class's chosen tile and the
//! time per product it measured, `{ adapter: { shape class: { "tile", "ns_per_product" } } }`,
//! written atomically and read leniently (what cannot be read is timed again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Stores `choice` for `class` on `adapter` in the cache file `path`, keeping every other entry
/// the file holds: under an exclusive lock ([`lock`], so that processes tuning at once, the
/// ranks of an MPI job say, all keep their choices), the file is read, the entry set and the
/// file written atomically, creating its folder.
pub(super) fn store(path: &Path, adapter: &str, class: &str, choice: &Choice) -> Result<()> {
    let io = |action: &'static str, at: &Path| {
        let path = at.display().to_string();
        move |source| crate::Error::Io {
            action,
            path,
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("could not create", dir))?;
    }
    let _lock = lock(path);
    let mut table = std::fs::read(path)
        .ok()
        .and_then(|bytes| read_table(&bytes))
        .unwrap_or_default();
    table
        .entry(adapter.to_string())
        .or_default()
        .insert(class.to_string(), choice.clone());
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
    // The lock is released when `_lock` is dropped, after the write.
    fsio::write_atomic(path, &json)
}

/// An exclusive lock on the cache file `path` (on `path` + `.lock`), held until the file it
/// returns is dropped; `None` where the file system does not lock, the writes then going on
/// without it.
pub(super) fn lock(path: &Path) -> Option<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(lock_path))
        .ok()?;
    lock.lock().ok()?;
    Some(lock)
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

/// The adapter, driver and kernels a choice holds for: name, backend, driver and its version,
/// and the fingerprint of the kernels' sources ([`super::kernels_fingerprint`]).
pub(super) fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} / {:?} / {} {} / kernels {:016x}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        super::kernels_fingerprint()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_storing_at_once_keep_every_choice() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("cache").join("autotune.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, br#"{"other adapter": {"1x1x1": "large"}}"#).unwrap();
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let path = &path;
                scope.spawn(move || {
                    for n in 0..10 {
                        let choice = Choice::Measured {
                            tile: "small".into(),
                            ns_per_product: f64::from(n),
                        };
                        store(path, "adapter", &format!("{writer}x{n}"), &choice).expect("stored");
                    }
                });
            }
        });
        let table = read_table(&std::fs::read(&path).unwrap()).expect("a table");
        assert_eq!(table["adapter"].len(), 40, "every writer's every choice");
        assert_eq!(
            table["other adapter"]["1x1x1"],
            Choice::Named("large".into())
        );
    }
}
