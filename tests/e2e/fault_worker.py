"""Run `skyaudio` commands in this process with a fault injected at one point of each job.

    python fault_worker.py POINT FAULT [--mount-tmpfs DIR:SIZE] [--listing FILE] -- ARGS...
    python fault_worker.py --cases CASES.json

POINT: audio-decode (the speech is about to be decoded), model-load (the VAE is about to load),
denoising (the first transformer forward; the ffmpeg encoder is running), mux (the video is
encoded, the soundtrack is about to be muxed in), or none.
FAULT: SIGINT/SIGTERM sent to this process alone (`process-INT`, `process-TERM`, as `timeout` and
schedulers do) or to its whole process group (`group-INT`, `group-TERM`, as a terminal's Ctrl-C
does, ffmpeg children included), or `readonly`: the --mount-tmpfs folder is remounted read-only.

The signal is real: it goes through the kernel to the CLI's own handlers. With --mount-tmpfs (run
under `unshare --user --map-root-user --mount`) DIR becomes a tmpfs of SIZE (disk full when the
job outgrows it); the mount dies with the namespace, so --listing FILE records what the command
left in DIR before this process exits.

--cases runs a JSON list of {"point", "fault", "temp", "args"} one after another (torch is
imported once, not once per case) and writes, for each, {"code", "stdout", "stderr", "children"}
to CASES.results.json; `children` are the processes this one still had after the case.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from skyaudio_cli.cli.app import main


def inject(fault: str, tmpfs: Path | None) -> None:
    if fault == "readonly":
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
        return
    target, name = fault.split("-")
    number = getattr(signal, f"SIG{name}")
    if target == "group":
        os.killpg(os.getpgrp(), number)
    else:
        os.kill(os.getpid(), number)


def patch(point: str, fault: str, tmpfs: Path | None):
    """Wrap the function that starts `point` so the fault happens as it is entered (once); returns
    what undoes the patch."""
    from skyaudio_cli.conditioning import vae
    from skyaudio_cli.media import audio, video_writer
    from skyaudio_cli.model.transformer import AudioWanTransformer3DModel

    owner, name = {
        "audio-decode": (audio, "execute_ffmpeg"),
        "model-load": (vae, "load_wan_vae"),
        "denoising": (AudioWanTransformer3DModel, "forward"),
        "mux": (video_writer.VideoWriter, "_mux_audio"),
    }[point]
    real = getattr(owner, name)

    def faulty(*args, **kwargs):
        setattr(owner, name, real)
        inject(fault, tmpfs)
        return real(*args, **kwargs)

    setattr(owner, name, faulty)
    return lambda: setattr(owner, name, real)


def run_cases(cases_file: Path) -> None:
    import contextlib
    import io
    import tempfile

    results = []
    for case in json.loads(cases_file.read_text()):
        tempfile.tempdir = case["temp"]  # what TMPDIR would say to a fresh process
        unpatch = patch(case["point"], case["fault"], None)
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(case["args"])
            except SystemExit as done:
                code = done.code
            finally:
                unpatch()
        results.append(
            {
                "code": code,
                "stdout": stdout.getvalue(),
                "stderr": stderr.getvalue(),
                "children": processes_with(parent=os.getpid()),
            }
        )
    cases_file.with_suffix(".results.json").write_text(json.dumps(results))


def processes_with(*, parent: int | None = None, session: int | None = None) -> list[str]:
    """Names of the live (or unreaped) processes with this parent or in this session."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, _, fields = stat.read_text().rpartition(")")
        except OSError:
            continue  # exited while we looked
        _state, ppid, _group, sid = fields.split()[:4]
        if int(ppid) == parent or int(sid) == session:
            found.append(name.partition("(")[2])
    return found


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("point", nargs="?")
    parser.add_argument("fault", nargs="?")
    parser.add_argument("--mount-tmpfs")
    parser.add_argument("--listing", type=Path)
    parser.add_argument("--cases", type=Path)
    options, args = parser.parse_known_args()
    if options.cases is not None:
        run_cases(options.cases)
        return
    tmpfs = None
    if options.mount_tmpfs:
        folder, size = options.mount_tmpfs.rsplit(":", 1)
        tmpfs = Path(folder)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], check=True)
    if options.point != "none":
        patch(options.point, options.fault, tmpfs)
    try:
        main(args[1:] if args[:1] == ["--"] else args)
    finally:
        if options.listing is not None:
            options.listing.write_text(json.dumps(sorted(os.listdir(tmpfs))))


if __name__ == "__main__":
    sys.exit(run())
