//! What both Redis stores (the blocking one here and the tokio one in `anklet`) need from the
//! redis crate beyond core's scripts: how to reach the server and which errors mean the
//! connection must be rebuilt. One copy, so the two stores cannot drift.

use anklet_core::config::DatabaseSettings;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

/// An error after which the connection cannot be trusted (the reply may still be in flight).
pub fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// The server is replaying its append-only file after a restart.
pub fn is_loading(e: &redis::RedisError) -> bool {
    e.code() == Some("LOADING")
}

/// The connection description for `db`, announcing the client as `lib`. The password goes
/// into the connection info only, which is never formatted; the error text names no secret.
pub fn connection_info(db: &DatabaseSettings, lib: &str) -> Result<redis::ConnectionInfo, String> {
    let addr = if db.tls_enabled {
        ConnectionAddr::TcpTls {
            host: db.url.clone(),
            port: db.port,
            insecure: db.tls_insecure,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(db.url.clone(), db.port)
    };
    let mut redis = RedisConnectionInfo::default()
        .set_db(i64::from(db.database))
        .set_lib_name(lib, env!("CARGO_PKG_VERSION"));
    if !db.user.is_empty() {
        redis = redis.set_username(&db.user);
    }
    if !db.password.is_empty() {
        redis = redis.set_password(db.password.expose());
    }
    let info = addr.into_connection_info().map_err(|e| e.to_string())?;
    Ok(info.set_redis_settings(redis))
}
