//! Signals into [`Control`] messages, Anklet's way, on `tokio::signal::unix`: the first SIGINT
//! or SIGTERM asks for a graceful stop, a second one for an immediate exit; SIGQUIT asks to
//! drain.

use anklet_lite::common::Control;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// Starts listening (on the current tokio runtime); the receiver gets one [`Control`] per
/// signal.
pub fn controls() -> std::io::Result<UnboundedReceiver<Control>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut stops = 0u32;
        loop {
            let control = tokio::select! {
                Some(()) = int.recv() => stop(&mut stops),
                Some(()) = term.recv() => stop(&mut stops),
                Some(()) = quit.recv() => Control::Drain,
                else => return,
            };
            if tx.send(control).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// The first stop is graceful, every later one aborts.
fn stop(stops: &mut u32) -> Control {
    *stops += 1;
    if *stops == 1 {
        Control::Stop
    } else {
        Control::Abort
    }
}
