"""Footprints and raster on object storage against the same files on a local path
(prints numbers; not a test).

    python benchmarks/bench_object_storage.py              # 200,000 footprints, 2 workers, 3 rounds
    python benchmarks/bench_object_storage.py -n 1000000 --repeat 1
    python benchmarks/bench_object_storage.py -n 1000000 --files 20 --night   # a prefix of 20 files, then
                                                          # a night with one file replaced, against the full run

The S3 endpoint is moto's server (``moto_server``) in its own process on
127.0.0.1: a real S3 API and real HTTP, but a Python server sharing this
machine's two cores with the survey, so the overhead printed is an upper
bound for a real object store reached over a fast network. Needs
``pip install -e ".[test]"`` (s3fs, moto[server]).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import REPO, generate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def split_into_files(path: Path, files: int) -> Path:
    """The synthetic footprints as ``files`` GeoParquet files of one folder (whole row groups each)."""
    import pyarrow.parquet as pq

    folder = path.with_name(f"{path.stem}-{files}-files")
    if folder.is_dir():
        return folder
    folder.mkdir()
    source = pq.ParquetFile(path)
    groups = range(source.metadata.num_row_groups)
    for i in range(files):
        mine = [g for g in groups if g * files // len(groups) == i]
        if mine:
            pq.write_table(source.read_row_groups(mine), folder / f"part-{i:04d}.parquet",
                           row_group_size=source.metadata.row_group(0).num_rows)
    return folder


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200_000, help="footprints (default 200,000)")
    ap.add_argument("--partition-rows", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of both modes, interleaved; medians printed")
    ap.add_argument("--files", type=int, default=1, help="footprints as this many files under one prefix/folder")
    ap.add_argument("--night", action="store_true",
                    help="then replace one file on S3 (same rows, rewritten) and time the rerun that reuses the rest")
    args = ap.parse_args()

    footprints, ghi = generate(args.n), REPO / "data/demo/ghi_gldas_0p25.tif"
    if args.files > 1:
        footprints = split_into_files(footprints, args.files)

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # set before the workers start: they read S3 with the same environment
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    try:
        import s3fs

        from pvsurvey.config.loading import config_from_dict
        from pvsurvey.pipeline.run import run_survey

        fs = s3fs.S3FileSystem()
        for _ in range(100):
            try:
                fs.mkdir("bench")
                break
            except Exception:  # the server is still starting
                time.sleep(0.1)
        remote_footprints = "s3://bench/footprints" + ("/" if footprints.is_dir() else ".parquet")
        if footprints.is_dir():
            fs.put([str(p) for p in sorted(footprints.iterdir())],
                   [f"bench/footprints/{p.name}" for p in sorted(footprints.iterdir())])
        else:
            fs.put_file(str(footprints), "bench/footprints.parquet")
        fs.put_file(str(ghi), "bench/ghi.tif")

        def config(fp, raster, **parallel):
            # in_process_max_rows 0: both modes start the cluster, however small -n is
            return config_from_dict({
                "name": "bench", "footprints": fp, "irradiance": {"ghi": raster, "units": "kWh/m2/day"},
                "parallel": {"partition_rows": args.partition_rows, "in_process_max_rows": 0, **parallel}}, REPO)

        modes = {"local path": config(str(footprints), str(ghi)),
                 "s3:// (moto)": config(remote_footprints, "s3://bench/ghi.tif")}
        walls: dict[str, list[float]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeat):
                for label, cfg in modes.items():
                    t0 = time.perf_counter()
                    result = run_survey(cfg, Path(tmp) / "run", workers=args.workers, reuse=False)
                    wall = time.perf_counter() - t0
                    walls.setdefault(label, []).append(wall)
                    n = result.manifest["counts"]["input_rows"]
                    print(f"{label:>14}: {n:,} footprints in {wall:6.1f} s = {n / wall:8,.0f} buildings/s "
                          f"(survey step {result.manifest['timings_s'].get('survey', float('nan')):.1f} s)")
            if args.night:  # on S3: a full run that fills the cache, then one file replaced
                cfg = config(remote_footprints, "s3://bench/ghi.tif", in_process_max_rows=100_000)  # the default
                t0 = time.perf_counter()
                run_survey(cfg, Path(tmp) / "night", workers=args.workers)
                full_s = time.perf_counter() - t0
                first = sorted(footprints.iterdir())[0] if footprints.is_dir() else footprints
                target = remote_footprints + first.name if footprints.is_dir() else remote_footprints
                fs.put_file(str(first), target[len("s3://"):])  # same rows, a new object (new ETag)
                t0 = time.perf_counter()
                night = run_survey(cfg, Path(tmp) / "night", workers=args.workers)
                night_s = time.perf_counter() - t0
                p = night.manifest["partitions"]
                print(f"night with 1 of {args.files} file(s) replaced on S3: {night_s:.1f} s vs {full_s:.1f} s for the "
                      f"full run ({100 * night_s / full_s:.0f} %); {p['reused']} partitions reused, "
                      f"{p['surveyed']} surveyed")
        medians = {label: statistics.median(w) for label, w in walls.items()}
        local, remote = medians["local path"], medians["s3:// (moto)"]
        print(f"median: local {local:.1f} s, s3 {remote:.1f} s: object storage costs {100 * (remote / local - 1):+.0f} %")
        size = sum(p.stat().st_size for p in footprints.iterdir()) if footprints.is_dir() else footprints.stat().st_size
        print(f"footprints {size / 2**20:.1f} MiB in {args.files} file(s); {args.n // args.partition_rows} "
              f"partitions read by row group with ranged requests")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
