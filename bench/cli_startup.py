"""Cold-start time of `skyaudio --help` (must stay light: no torch/diffusers import).

python bench/cli_startup.py [--runs 10] [--json out.json]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def time_command(args: list[str], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return timings


def heavy_modules_imported() -> list[str]:
    probe = (
        "import sys; from skyaudio_cli.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'diffusers', 'transformers', 'huggingface_hub')\n"
        "print('HEAVY=' + ','.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return [m for m in done.stdout.strip().splitlines()[-1].removeprefix("HEAVY=").split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    timings = time_command([sys.executable, "-m", "skyaudio_cli", "--help"], args.runs)
    python_only = time_command([sys.executable, "-c", "pass"], args.runs)
    result = {
        "command": "skyaudio --help",
        "runs": args.runs,
        "median_s": round(statistics.median(timings), 4),
        "min_s": round(min(timings), 4),
        "python_startup_median_s": round(statistics.median(python_only), 4),
        "heavy_modules_imported": heavy_modules_imported(),
    }
    print(json.dumps(result, indent=2))
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
