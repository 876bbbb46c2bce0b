//! Any bytes as what `anka -j` printed: the envelope parser, the failure classifier and every
//! plan that reads a body must answer, never panic, and every plan must finish. The first byte
//! picks the exit status and the command; the rest is split into stdout and stderr.
#![no_main]

use anklet_core::handler::{DiskSpace, VmCmd};
use anklet_core::ids::{TemplateId, VmName};
use anklet_core::labels::VmSpec;
use anklet_core::vm::output::{interpret, interpret_run, parse_envelope};
use anklet_core::vm::{AnkaSettings, Exit, ProcessOutput, Step, VmCallPlan};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let cut = rest.len().min(usize::from(first) * 3);
    let (stderr, stdout) = rest.split_at(cut);
    let exit = match first % 5 {
        0 | 1 => Exit::Code(0),
        2 => Exit::Code(i32::from(first)),
        3 => Exit::Signal(9),
        _ => Exit::TimedOut {
            after: Duration::from_secs(1),
        },
    };
    let out = ProcessOutput {
        exit,
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
        stdout_dropped: 0,
        stderr_dropped: 0,
    };
    let _ = parse_envelope(stdout);
    let _ = interpret(&out);
    let _ = interpret_run(&out);

    let spec = VmSpec {
        template: TemplateId("c0847bc9".into()),
        tag: (first & 8 == 0).then(|| "v1".to_owned()),
    };
    let vm = VmName("anklet-vm-h-1-1".into());
    let cmd = match (first >> 4) % 5 {
        0 => VmCmd::Inventory,
        1 => VmCmd::CheckDownloadSize { spec },
        2 => VmCmd::PullTemplate { spec },
        3 => VmCmd::InspectVm { vm },
        _ => VmCmd::Delete { vm },
    };
    let settings = AnkaSettings {
        registry_url: None,
        scripts_dir: "/s".into(),
        registration_url: "https://github.com/o/r".into(),
        runner_group: None,
    };
    let mut plan = VmCallPlan::new(&cmd, &settings, Duration::from_secs(1));
    // Every step gets the same answer; a list can name many templates, so allow for each.
    for _ in 0..10_000 {
        match plan.step() {
            Step::Run(_) => plan.feed(out.clone()),
            Step::ProbeDisk => plan.feed_disk(Ok(DiskSpace {
                total_bytes: u64::from(first) << 30,
                available_bytes: u64::from(first) << 20,
            })),
            Step::Done(_) => return,
        }
    }
    panic!("plan did not finish");
});
