//! Subscription files named in the config (`subscriptions = [...]`): each
//! path is a file or a directory of `*.yaml`, `*.yml` and `*.json` files, read
//! in name order, parsed with the model's rules. They are stored at start
//! through the same path as `sub.add`.

use std::path::{Path, PathBuf};

use signalbox_model::Subscription;

use super::error::StartError;

/// Reads subscription files: each path is a file or a directory of `*.yaml`,
/// `*.yml` and `*.json` files (read in name order).
pub fn read_subscription_files(
    paths: &[PathBuf],
) -> Result<Vec<(PathBuf, Subscription)>, StartError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| StartError::SubscriptionFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_subscription_file(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(&path).map_err(|e| StartError::SubscriptionFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let sub = Subscription::from_yaml(&text).map_err(|e| StartError::SubscriptionFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            Ok((path, sub))
        })
        .collect()
}

fn is_subscription_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}
