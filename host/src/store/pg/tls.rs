//! TLS to the database. A database on another machine carries every task, result and the
//! password over the network: the connection is encrypted and the server's certificate
//! verified (its chain against the system's roots, plus the PEM file
//! `AGENT_SCHEDULER_DATABASE_CA` names for a private CA or a self-signed server, and its name
//! against the URL's host), through native-tls — the TLS the host already links for reqwest.
//!
//! The URL's `sslmode` says how much: `disable` (never), `prefer` (the default: TLS when the
//! server offers it, verified; plain otherwise, with a warning in the log), `require` (TLS or
//! no connection). A loopback host (or a Unix socket) with the default `prefer` connects
//! plainly: nothing leaves the machine, and the certificate of a local server (Debian's
//! self-signed "snakeoil") would not verify.

use std::net::IpAddr;

use postgres_native_tls::MakeTlsConnector;
use tokio_postgres::config::{Config, Host, SslMode};

use crate::store::StoreError;

/// The environment variable naming a PEM file of extra CA certificates.
pub const CA_ENV: &str = "AGENT_SCHEDULER_DATABASE_CA";

/// The connector every connection of a store uses.
pub type Tls = MakeTlsConnector;

/// Whether every host of `config` is this machine.
pub fn is_local(config: &Config) -> bool {
    config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    })
}

/// Settles `config`'s TLS mode (a local database with the default mode: plain) and makes
/// the connector: the system's roots plus the certificates of `AGENT_SCHEDULER_DATABASE_CA`.
pub fn connector(config: &mut Config) -> Result<Tls, StoreError> {
    let ca = std::env::var_os(CA_ENV).filter(|p| !p.is_empty());
    connector_with_ca(config, ca.as_deref().map(std::path::Path::new))
}

/// [`connector`] with the extra CA certificates of the PEM file `ca`.
pub fn connector_with_ca(
    config: &mut Config,
    ca: Option<&std::path::Path>,
) -> Result<Tls, StoreError> {
    if is_local(config) && config.get_ssl_mode() == SslMode::Prefer {
        config.ssl_mode(SslMode::Disable);
    }
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = ca {
        let shown = path.display().to_string();
        let pem = std::fs::read(path)
            .map_err(|e| StoreError::Postgres(format!("{CA_ENV} {shown}: {e}")))?;
        let certs = native_tls::Certificate::stack_from_pem(&pem)
            .map_err(|e| StoreError::Postgres(format!("{CA_ENV} {shown}: {e}")))?;
        if certs.is_empty() {
            return Err(StoreError::Postgres(format!(
                "{CA_ENV} {shown}: no PEM certificate in it"
            )));
        }
        for c in certs {
            builder.add_root_certificate(c);
        }
    }
    let tls = builder
        .build()
        .map_err(|e| StoreError::Postgres(format!("TLS: {e}")))?;
    Ok(MakeTlsConnector::new(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_databases_connect_plainly_unless_told() {
        for (url, local) in [
            ("postgres://u@127.0.0.1/db", true),
            ("postgres://u@localhost:5433/db", true),
            ("postgres://u@[::1]/db", true),
            ("postgres://u@db.lan/db", false),
            ("postgres://u@10.0.0.5/db", false),
            ("postgres://u@127.0.0.1,db.lan/db", false),
        ] {
            let mut c: Config = url.parse().unwrap();
            assert_eq!(is_local(&c), local, "{url}");
            connector(&mut c).unwrap();
            let want = if local {
                SslMode::Disable
            } else {
                SslMode::Prefer
            };
            assert_eq!(c.get_ssl_mode(), want, "{url}");
        }
        let mut c: Config = "postgres://u@127.0.0.1/db?sslmode=require".parse().unwrap();
        connector(&mut c).unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Require, "told: kept");
    }
}
