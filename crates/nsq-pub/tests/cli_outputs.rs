//! nsq-pub never destroys its input or a good out file: an output that is an input (by name,
//! hard link, symbolic link or `< file`) or another output is refused before any file is
//! touched, and a run that is killed or cannot start leaves the out files that were there.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use nsq_test_support::{HANG, Nsqd, closed_addr};

use common::{Running, nsq_pub, numbered_lines, run, topic_names};

const INPUT: &[u8] = b"one\ntwo\nthree\n";

/// Each refused layout exits 2 naming the flag, publishes nothing, and leaves every file as it
/// was: `--failed-out same.txt same.txt` (the natural retry loop), the same through a hard link
/// and a symbolic link, `--report-json` on the input, `--unknown-out` on standard input's file,
/// and two outputs that are one file.
#[test]
fn an_output_that_is_an_input_or_another_output_is_refused_untouched() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let same = path("same.txt");
    std::fs::write(&same, INPUT).unwrap();
    let (hard, soft) = (path("hard.txt"), path("soft.txt"));
    std::fs::hard_link(&same, &hard).unwrap();
    std::os::unix::fs::symlink(&same, &soft).unwrap();
    let other = path("other.txt");
    let base = ["--topic", "t", "--nsqd-tcp-address", addr.as_str()];
    let cases: [(Vec<&str>, bool, &str); 6] = [
        (vec!["--failed-out", &same, &same], false, "--failed-out"),
        (vec!["--failed-out", &hard, &same], false, "--failed-out"),
        (vec!["--failed-out", &soft, &same], false, "--failed-out"),
        (vec!["--report-json", &same, &same], false, "--report-json"),
        (vec!["--unknown-out", &same], true, "--unknown-out"),
        (
            vec!["--failed-out", &other, "--unknown-out", &other, &same],
            false,
            "same file",
        ),
    ];
    for (extra, from_stdin, named) in cases {
        let mut command = nsq_pub();
        command.args(base).args(&extra);
        if from_stdin {
            command.stdin(std::fs::File::open(&same).unwrap());
        }
        let finished = if from_stdin {
            let output = command.output().expect("run nsq-pub");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        } else {
            let finished = Running::spawn(&mut command, Vec::new()).wait();
            (finished.code, finished.stderr)
        };
        assert_eq!(finished.0, Some(2), "{extra:?}: stderr:\n{}", finished.1);
        assert!(
            finished.1.contains(named),
            "{extra:?}: stderr:\n{}",
            finished.1
        );
        assert_eq!(
            std::fs::read(&same).unwrap(),
            INPUT,
            "{extra:?} touched the input"
        );
        assert!(!Path::new(&other).exists(), "{extra:?} created an output");
    }
    assert!(topic_names(&nsqd).is_empty(), "{:?}", topic_names(&nsqd));
}

/// An existing `--failed-out` (a previous run's) stays whole when this run cannot start (no
/// nsqd: exit 4) and when it is killed (SIGKILL) part way; a run that ends replaces it.
#[test]
fn a_run_that_does_not_end_leaves_the_previous_out_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let failed = dir.path().join("failed.txt");
    let previous = b"kept-1\nkept-2\n";
    std::fs::write(&failed, previous).unwrap();
    let failed_arg = failed.display().to_string();

    let down = closed_addr().to_string();
    let finished = run(
        [
            "--topic",
            "t",
            "--nsqd-tcp-address",
            &down,
            "--failed-out",
            &failed_arg,
        ],
        INPUT,
    );
    finished.assert_code(4);
    assert_eq!(std::fs::read(&failed).unwrap(), previous, "after exit 4");

    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let (input, _) = numbered_lines("killed-", 50_000);
    let mut command = nsq_pub();
    command.args([
        "--topic",
        "killed",
        "--nsqd-tcp-address",
        &addr,
        "--rate",
        "10000",
        "--failed-out",
        &failed_arg,
    ]);
    let mut running = Running::spawn(&mut command, input);
    let deadline = Instant::now() + HANG;
    while nsqd.topic_depth("killed").unwrap_or(0) < 1_000 {
        assert!(running.is_running(), "nsq-pub ended before it was killed");
        assert!(Instant::now() < deadline, "nothing stored");
        std::thread::sleep(Duration::from_millis(10));
    }
    running.kill();
    assert_eq!(std::fs::read(&failed).unwrap(), previous, "after SIGKILL");

    run(
        [
            "--topic",
            "t2",
            "--nsqd-tcp-address",
            &addr,
            "--failed-out",
            &failed_arg,
        ],
        INPUT,
    )
    .assert_code(0);
    assert_eq!(
        std::fs::read(&failed).unwrap(),
        b"",
        "a run that ends writes its own"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter()
            .all(|name| name == "failed.txt" || name.to_string_lossy().ends_with(".partial")),
        "{left:?}"
    );
}
