//! The shared log suite (`anklet_tests::log_suite`) against the `anklet-lite` binary: one real
//! process with a receiver and a handler plugin, `log.split_by_plugin: true`.

anklet_tests::suite_tests!(env!("CARGO_BIN_EXE_anklet-lite"), log_suite::{
    split_by_plugin_routes_each_plugins_lines,
    unopenable_plugin_log_exits_1,
});
