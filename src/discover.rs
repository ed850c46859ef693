//! Finding fixture folders: a fixture folder itself, a parent folder of fixtures (searched a few
//! levels deep), or a glob of either.

use cellwarden_collector::fixture::is_fixture_dir;
use std::path::{Path, PathBuf};

/// How deep below a given folder fixtures are looked for.
const MAX_DEPTH: usize = 3;

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if is_fixture_dir(dir) {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    if depth == 0 {
        return Ok(());
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for c in children {
        walk(&c, depth - 1, out)?;
    }
    Ok(())
}

/// The fixture folders named by `args`, sorted and without duplicates.
pub fn fixtures(args: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for arg in args {
        let paths: Vec<PathBuf> = if arg.contains(['*', '?', '[']) {
            glob::glob(arg)
                .map_err(|e| format!("bad glob {arg:?}: {e}"))?
                .filter_map(Result::ok)
                .collect()
        } else {
            vec![PathBuf::from(arg)]
        };
        if paths.is_empty() {
            return Err(format!("{arg}: matches nothing"));
        }
        for p in paths {
            if !p.exists() {
                return Err(format!("{}: no such file or folder", p.display()));
            }
            let before = out.len();
            walk(&p, MAX_DEPTH, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
            if out.len() == before && !arg.contains(['*', '?', '[']) {
                return Err(format!(
                    "{}: no fixture here (a fixture folder has metrics.om or metrics.om.gz)",
                    p.display()
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
