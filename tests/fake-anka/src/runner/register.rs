//! Token mode (Anklet-compatible templates): the `./register-runner.bash <name> <token> <url>
//! <labels> <group>` built-in registers with the emulator (`POST <base>/_emulator/runner-service/
//! register`, base = scheme://host:port of `<url>`) and stores the returned `.runner` and
//! `.credentials` in the VM's home; `./start-runner.bash` starts the runner from those files.

use std::fs;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AnkaError, Kind};
use crate::home::Home;
use crate::runner::{jit, service, spawn};

/// The emulator's registration answer.
#[derive(Deserialize)]
struct Registered {
    runner: Value,
    credentials: Value,
}

/// `scheme://host[:port]` of a URL.
pub fn base_of(url: &str) -> Result<String, AnkaError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| AnkaError::usage(format!("register-runner: not a URL: {url}")))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(AnkaError::usage(format!(
            "register-runner: no host in {url}"
        )));
    }
    Ok(format!("{scheme}://{authority}"))
}

/// Registers a runner and stores its files in the VM home.
pub fn register(home: &Home, vm: &str, args: &[String]) -> Result<(), AnkaError> {
    let [name, token, url, labels, ..] = args else {
        return Err(AnkaError::usage(
            "usage: ./register-runner.bash <name> <token> <url> <labels> <group>",
        ));
    };
    let base = base_of(url)?;
    let labels: Vec<&str> = labels.split(',').filter(|l| !l.is_empty()).collect();
    let mut resp = service::agent()
        .post(format!("{base}/_emulator/runner-service/register"))
        .send_json(json!({"token": token, "name": name, "labels": labels, "url": url}))
        .map_err(|e| AnkaError::new(Kind::State, format!("register-runner: {e}")))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(AnkaError::new(
            Kind::State,
            format!("register-runner: HTTP {status}"),
        ));
    }
    let reg: Registered = resp
        .body_mut()
        .read_json()
        .map_err(|e| AnkaError::new(Kind::State, format!("register-runner: bad answer: {e}")))?;
    let dir = home.vm_home(vm);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(".runner"), reg.runner.to_string())?;
    fs::write(dir.join(".credentials"), reg.credentials.to_string())?;
    Ok(())
}

/// Starts the runner from the stored `.runner`/`.credentials`.
pub fn start(home: &Home, vm: &str) -> Result<u32, AnkaError> {
    let dir = home.vm_home(vm);
    let read = |f: &str| -> Result<Value, AnkaError> {
        let text = fs::read_to_string(dir.join(f)).map_err(|e| {
            AnkaError::new(
                Kind::State,
                format!("start-runner: no {f} (register first): {e}"),
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| AnkaError::new(Kind::State, format!("start-runner: bad {f}: {e}")))
    };
    let encoded = jit::encode(&read(".runner")?, &read(".credentials")?);
    spawn::spawn(home, vm, &encoded)
}

#[cfg(test)]
mod tests {
    use super::base_of;

    #[test]
    fn base_is_scheme_host_port() {
        assert_eq!(
            base_of("http://127.0.0.1:8080/org/repo").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(base_of("https://x").ok().as_deref(), Some("https://x"));
        assert!(base_of("nope").is_err());
    }
}
