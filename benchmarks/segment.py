"""Write a deterministic, messy, synthetic segment (the generator lives in the package).

python benchmarks/segment.py --rows 3000 --device-ids --seed 7 -o fixtures/segment.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spotify_audience_sync.sandbox.segment import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-phones", action="store_true")
    parser.add_argument("--device-ids", action="store_true")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    frame = generate(
        args.rows, seed=args.seed, phones=not args.no_phones, device_ids=args.device_ids
    )
    frame.write_csv(args.output)


if __name__ == "__main__":
    main()
