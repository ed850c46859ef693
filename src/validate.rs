//! Checks of the daemon's config values that need no cluster and no network: Kubernetes object
//! names (DNS-1123), webhook URLs, and reading the config file within a size cap. They run
//! before `cellwarden run` connects anywhere, so a bad setting fails in milliseconds, by name.

use std::io::Read;
use std::path::Path;

/// The largest config file read, bytes. A real `cellwarden.yaml` is a few KiB; `--config
/// /dev/zero` (or a log file passed by mistake) must fail at once, not fill memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The file at `path` as text, refused when it is larger than [`MAX_CONFIG_BYTES`].
pub fn read_capped(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "config {} is larger than {} KiB; is it the right file?",
            path.display(),
            MAX_CONFIG_BYTES >> 10
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "config {} is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Why `name` is not a DNS-1123 label (namespaces): at most 63 characters of lower-case
/// letters, digits and `-`, starting and ending with a letter or digit.
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is longer than 63 characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!(
            "{name:?} has {c:?}; only lower-case letters, digits and '-' are allowed (DNS-1123)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!("{name:?} must start and end with a letter or digit (DNS-1123)"));
    }
    Ok(())
}

/// Why `name` is not a DNS-1123 subdomain (Lease and most object names): at most 253
/// characters, DNS-1123 labels joined by `.`.
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    name.split('.')
        .try_for_each(dns1123_label)
        .map_err(|e| format!("{e} (in {name:?})"))
}

/// Why `url` is not an absolute `http` or `https` URL with a host.
pub fn http_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} must be http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_names_are_lower_case_letters_digits_and_dashes() {
        assert!(dns1123_label("cellwarden").is_ok() && dns1123_label("cell-1").is_ok());
        for bad in ["", "Cellwarden", "cell_1", "-cell", "cell-", &"a".repeat(64), "cell.1"] {
            assert!(dns1123_label(bad).is_err(), "{bad:?}");
        }
        assert!(dns1123_subdomain("cellwarden-leader-cell-1-cell-2").is_ok());
        assert!(dns1123_subdomain("a.b").is_ok());
        assert!(dns1123_subdomain("cellwarden-leader-Cell 1").is_err());
        assert!(dns1123_subdomain("a..b").is_err());
    }

    #[test]
    fn webhook_urls_are_absolute_http() {
        assert!(http_url("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(http_url("http://127.0.0.1:9/hook").is_ok());
        for bad in ["not a url", "hooks.example.com/x", "ftp://h/x", "file:///etc/passwd"] {
            assert!(http_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_config_file_past_the_cap_is_refused_without_reading_it_whole() {
        let t = std::time::Instant::now();
        let err = read_capped(Path::new("/dev/zero")).unwrap_err();
        assert!(err.contains("larger than 1024 KiB"), "{err}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
