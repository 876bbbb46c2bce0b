//! Signals into [`Control`] messages, Anklet's way: the first SIGINT or SIGTERM asks for a
//! graceful stop, a second one for an immediate exit; SIGQUIT asks to drain.

use super::Control;
use signal_hook::consts::{SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::mpsc::{Receiver, channel};

/// Starts listening; the receiver gets one [`Control`] per signal.
pub fn controls() -> std::io::Result<Receiver<Control>> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGQUIT])?;
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stops = 0;
            for signal in signals.forever() {
                let control = match signal {
                    SIGQUIT => Control::Drain,
                    _ => {
                        stops += 1;
                        if stops == 1 {
                            Control::Stop
                        } else {
                            Control::Abort
                        }
                    }
                };
                if tx.send(control).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}
