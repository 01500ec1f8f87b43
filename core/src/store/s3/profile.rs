//! The AWS shared configuration files (`~/.aws/credentials`, `~/.aws/config`)
//! that netCDF and the AWS tools read, for what the `AWS_*` environment
//! variables leave unset: the environment wins, as in every AWS SDK.
//!
//! - Files: `AWS_SHARED_CREDENTIALS_FILE` (default `$HOME/.aws/credentials`)
//!   and `AWS_CONFIG_FILE` (default `$HOME/.aws/config`).
//! - Profile: `AWS_PROFILE` (default `default`): section `[NAME]` in the
//!   credentials file, `[profile NAME]` (or `[default]`) in the config file;
//!   the credentials file wins over the config file.
//! - Keys: `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
//!   `region`, `endpoint_url`. Anything else is ignored.

use std::path::{Path, PathBuf};

/// The settings one profile of the shared files gives.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

impl Profile {
    /// The profile the process's environment names, from its files.
    pub fn from_environment() -> Profile {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let in_home = |rest: &str| home.as_ref().map(|h| h.join(".aws").join(rest));
        let credentials = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| in_home("credentials"));
        let config = var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| in_home("config"));
        let name = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
        Profile::load(credentials.as_deref(), config.as_deref(), &name)
    }

    /// Profile `name` from the two files (missing or unreadable files give
    /// nothing).
    pub fn load(credentials: Option<&Path>, config: Option<&Path>, name: &str) -> Profile {
        let read = |path: Option<&Path>| path.and_then(|p| std::fs::read_to_string(p).ok());
        let mut profile = Profile::default();
        if let Some(text) = read(credentials) {
            profile.fill(&text, |section| section == name);
        }
        if let Some(text) = read(config) {
            let wanted = format!("profile {name}");
            profile.fill(&text, |section| {
                section == wanted || (name == "default" && section == "default")
            });
        }
        profile
    }

    /// Fills what is still unset from the sections of `text` that `wanted`
    /// accepts (INI: `[section]`, `key = value`, `#`/`;` comments).
    fn fill(&mut self, text: &str, wanted: impl Fn(&str) -> bool) {
        let mut inside = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let section = section.split_whitespace().collect::<Vec<_>>().join(" ");
                inside = wanted(&section);
                continue;
            }
            if !inside {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => &mut self.access_key_id,
                "aws_secret_access_key" => &mut self.secret_access_key,
                "aws_session_token" => &mut self.session_token,
                "region" => &mut self.region,
                "endpoint_url" => &mut self.endpoint_url,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_win_over_config_and_profiles_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &credentials,
            "# comment\n[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n\
             [other]\naws_access_key_id = OTHER\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\naws_access_key_id = CONFIG\n\
             [profile other]\nregion = us-east-2\nendpoint_url = http://127.0.0.1:9000\n",
        )
        .unwrap();
        let default = Profile::load(Some(&credentials), Some(&config), "default");
        assert_eq!(default.access_key_id.as_deref(), Some("AK"));
        assert_eq!(default.secret_access_key.as_deref(), Some("SK"));
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.endpoint_url, None);
        let other = Profile::load(Some(&credentials), Some(&config), "other");
        assert_eq!(other.access_key_id.as_deref(), Some("OTHER"));
        assert_eq!(other.secret_access_key, None);
        assert_eq!(other.region.as_deref(), Some("us-east-2"));
        assert_eq!(other.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        let missing = Profile::load(Some(&dir.path().join("none")), None, "default");
        assert_eq!(missing, Profile::default());
    }
}
